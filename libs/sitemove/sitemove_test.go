package sitemove

import (
	"testing"

	"github.com/cefiot/cefiot/libs/kafkax"
)

func TestForwardedTopicIsTheBridgeNaming(t *testing.T) {
	if got, want := ForwardedTopic("edge-1", "frames.raw"), kafkax.CloudTopic("edge-1", "frames.raw"); got != want {
		t.Fatalf("ForwardedTopic %q, the bridge names it %q", got, want)
	}
}
