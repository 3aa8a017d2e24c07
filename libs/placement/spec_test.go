package placement

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestEncodedSpecLoadsBack(t *testing.T) {
	in := &Spec{Site: "edge", Workloads: []WorkloadSpec{
		{Name: "capture:cam-1", Kind: "capture", Params: map[string]string{"camera": "cam-1", "source": "/v/a b.avi"}, SpreadBy: "node"},
		{Name: "enrich", Kind: "enrich"},
	}}
	b, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := LoadSpec(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(in.Workloads[0], out.Workloads[0]) || out.Workloads[1].Name != "enrich" || out.Site != "edge" {
		t.Fatalf("round trip changed the spec:\n%s\n%+v", b, out)
	}
}
