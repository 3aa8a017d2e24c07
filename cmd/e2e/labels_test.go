package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/videogen"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// TestPeopleLabelledInRealFootage feeds a camera the first 8 s of real
// footage of people walking (OpenCV's pedestrian sample) on the secure
// local stack, with enrich's HOG person detector on. The stored events are
// found by the label "person" through the sink's API and cefiotctl, and
// not by another label; the stored frames that were looked at carry the
// people's boxes; the event's webhook records say "person" once it is
// seen.
func TestPeopleLabelledInRealFootage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka with a detector; skipped with -short")
	}
	dir := t.TempDir()
	clip := filepath.Join(dir, "hall.avi")
	videogen.WriteFootageClip(t, clip, 80)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	hookLog := &eventLog{}
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hookLog.add(body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)
	hookCA := filepath.Join(dir, "hook-ca.pem")
	writeFile(t, hookCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}))

	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: clip,
		Cameras: []string{"hall"},
		BinaryArgs: map[string][]string{
			"enrich": {"-detector", "hog", "-detect-every", "5", "-webhook-urls", hook.URL + "/hook", "-webhook-ca", hookCA},
		},
	})
	failOnExit(ctx, t, stack, cancel)
	conn, err := grpc.NewClient(stack.SinkGRPC(), stack.Operator().DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sink := cefiotv1.NewSinkServiceClient(conn)

	var people []*cefiotv1.StoredEvent
	awaitState(ctx, t, "an ended event labelled person", func() (bool, string) {
		r, err := sink.ListEvents(ctx, &cefiotv1.ListEventsRequest{Label: "person"})
		if err != nil {
			return false, err.Error() // the sink may not be up yet
		}
		people = r.GetEvents()
		ended := slices.ContainsFunc(people, func(e *cefiotv1.StoredEvent) bool { return e.GetEnded() })
		return ended, fmt.Sprintf("%d events labelled person", len(people))
	})
	for _, e := range people {
		if !slices.Contains(e.GetLabels(), "person") || e.GetCameraId() != "hall" {
			t.Errorf("event %s found by label person: labels %v, camera %s", e.GetEventId(), e.GetLabels(), e.GetCameraId())
		}
	}
	if r, err := sink.ListEvents(ctx, &cefiotv1.ListEventsRequest{Label: "car"}); err != nil || len(r.GetEvents()) != 0 {
		t.Errorf("events labelled car: %v, %v", r.GetEvents(), err)
	}

	// The frames looked at carry the people's boxes, inside the picture.
	ev := people[0]
	r, err := sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{EventId: ev.GetEventId(), PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	labelled := 0
	for _, f := range r.GetFrames() {
		for _, l := range f.GetLabels() {
			b := l.GetBox()
			if l.GetName() != "person" || b.GetX() < 0 || b.GetY() < 0 || b.GetX()+b.GetWidth() > f.GetWidth() || b.GetY()+b.GetHeight() > f.GetHeight() || b.GetWidth() <= 0 {
				t.Errorf("frame %s: label %v in a %dx%d frame", f.GetFrameId(), l, f.GetWidth(), f.GetHeight())
			}
		}
		if len(f.GetLabels()) > 0 {
			labelled++
		}
	}
	t.Logf("event %s: %d frames, %d of them with people; labels %v", ev.GetEventId(), len(r.GetFrames()), labelled, ev.GetLabels())
	if labelled == 0 {
		t.Fatal("no stored frame of the event carries a label")
	}

	// cefiotctl finds it by label.
	cmd := exec.CommandContext(ctx, filepath.Join(binDir(t), "cefiotctl"), "events", "-label", "person", "-since", "0")
	cmd.Env = append(os.Environ(), "CEFIOT_CONFIG="+stack.ClientConfigPath())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), ev.GetEventId()) || !strings.Contains(string(out), "person") {
		t.Errorf("cefiotctl events -label person: %v\n%s", err, out)
	}

	// The webhook heard of the person while the event was open or at
	// its end.
	awaitState(ctx, t, "a webhook record with the label person", func() (bool, string) {
		hookLog.mu.Lock()
		defer hookLog.mu.Unlock()
		for _, e := range hookLog.events {
			if e.EventID == ev.GetEventId() && (e.Type == "update" || e.Type == "end") && slices.Contains(e.Labels, "person") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d records", len(hookLog.events))
	})
}
