package kafkax

import (
	"reflect"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestSetHeadersLeavesOneOfEachOwnedKey(t *testing.T) {
	in := []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "id", Value: []byte("forged")}, {Key: "b", Value: []byte("2")}, {Key: "id", Value: []byte("again")}}
	got := SetHeaders(in, kafka.Header{Key: "id", Value: []byte("real")}, kafka.Header{Key: "site", Value: []byte("door")})
	want := []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "id", Value: []byte("real")}, {Key: "site", Value: []byte("door")}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(in) != 4 || string(in[1].Value) != "forged" {
		t.Fatal("the input headers were modified")
	}
}
