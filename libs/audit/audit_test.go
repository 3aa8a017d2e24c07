package audit

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestTargetNamesWhatTheCallActsOnButNoSecret: a request's fields are
// summarized, nested messages too, a camera URL's password is hidden and a
// long value (a spec) is summarized by its size.
func TestTargetNamesWhatTheCallActsOnButNoSecret(t *testing.T) {
	got := Target(&cefiotv1.UpdateCameraRequest{CameraId: "door", Settings: &cefiotv1.CameraSettings{
		Source: proto.String("rtsp://admin:hunter2@10.0.0.5/stream1"), Threshold: proto.Int32(30),
	}})
	if strings.Contains(got, "hunter2") {
		t.Fatalf("the password reached the trail: %s", got)
	}
	if !strings.Contains(got, "camera_id=door") || !strings.Contains(got, "settings{") || !strings.Contains(got, "threshold=30") {
		t.Errorf("target %q", got)
	}
	spec := Target(&cefiotv1.ApplySpecRequest{SpecYaml: "site: edge\nworkloads: []\n"})
	if spec != "spec_yaml=<25 bytes>" {
		t.Errorf("spec target %q", spec)
	}
	if Target(nil) != "" || Target("not a message") != "" {
		t.Error("a target for no request")
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := Record{Time: time.Date(2026, 11, 29, 18, 0, 0, 0, time.UTC), Site: "edge", Who: "spiffe://edge/operator/alice", Role: "operator",
		Service: "scheduler", Action: "/cefiot.v1.SchedulerService/DrainNode", Target: "node=n1", From: "10.0.0.7:4000", Result: ResultOK, Code: "OK"}
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(b)
	if err != nil || back != r {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}
