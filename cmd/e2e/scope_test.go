package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// scopedViewer issues, in both sites of the stack, a viewer limited to
// cameras (the CA signs the scope into the certificate) and loads it.
func scopedViewer(t *testing.T, stack *localstack.Stack, name string, cameras ...string) tlsx.Sites {
	t.Helper()
	component := "viewer/" + name
	for _, site := range stack.Sites() {
		ca, _, err := pki.EnsureCA(stack.PKIDir(site), site, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ca.WriteIssued(stack.PKIDir(site), component, nil, 0, time.Now(), pki.WithCameras(cameras...)); err != nil {
			t.Fatal(err)
		}
	}
	id, err := sitepki.Identity(component, stack.PKI(stack.Sites()[0]), stack.PKI("cloud"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// checkCameraScope: a viewer limited to another camera than the stored
// frame's gets, over gRPC and REST, no frame, event, stats or camera of
// cam-1, and NotFound/404 for a cam-1 frame's id, its picture, its
// thumbnail and its event; a viewer limited to that camera sees them.
func checkCameraScope(ctx context.Context, t *testing.T, stack *localstack.Stack, frame *cefiotv1.StoredFrame) {
	t.Helper()
	type clients struct {
		sink    cefiotv1.SinkServiceClient
		capture cefiotv1.CaptureServiceClient
		http    *http.Client
	}
	dial := func(id tlsx.Sites) clients {
		sinkConn, err := grpc.NewClient(stack.SinkGRPC(), id.DialOption())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sinkConn.Close() })
		capConn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", stack.Config().Ports.CaptureGRPC), id.DialOption())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { capConn.Close() })
		return clients{cefiotv1.NewSinkServiceClient(sinkConn), cefiotv1.NewCaptureServiceClient(capConn), id.HTTPClient()}
	}
	cam := frame.GetCameraId()
	other, own := dial(scopedViewer(t, stack, "yard-only", "yard")), dial(scopedViewer(t, stack, "door-only", cam))
	get := func(c *http.Client, path string) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, stack.SinkHTTP()+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if r, err := other.sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{}); err != nil || len(r.GetFrames()) != 0 {
		t.Errorf("another camera's viewer lists frames: %d, %v; want none", len(r.GetFrames()), err)
	}
	if r, err := other.sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{CameraId: frame.GetCameraId()}); err != nil || len(r.GetFrames()) != 0 {
		t.Errorf("another camera's viewer lists %s's frames: %d, %v; want none", frame.GetCameraId(), len(r.GetFrames()), err)
	}
	if _, err := other.sink.GetFrame(ctx, &cefiotv1.GetFrameRequest{FrameId: frame.GetFrameId()}); status.Code(err) != codes.NotFound {
		t.Errorf("another camera's viewer gets frame %s: %v, want NotFound", frame.GetFrameId(), err)
	}
	for _, path := range []string{"/v1/frames/" + frame.GetFrameId() + "/jpeg", "/v1/frames/" + frame.GetFrameId() + "/thumbnail", "/v1/frames/" + frame.GetFrameId()} {
		if code := get(other.http, path); code != http.StatusNotFound {
			t.Errorf("another camera's viewer GET %s: HTTP %d, want 404", path, code)
		}
	}
	if r, err := other.sink.ListEvents(ctx, &cefiotv1.ListEventsRequest{}); err != nil || len(r.GetEvents()) != 0 {
		t.Errorf("another camera's viewer lists events: %d, %v; want none", len(r.GetEvents()), err)
	}
	if _, err := other.sink.GetEvent(ctx, &cefiotv1.GetEventRequest{EventId: frame.GetEventId()}); status.Code(err) != codes.NotFound {
		t.Errorf("another camera's viewer gets event %s: %v, want NotFound", frame.GetEventId(), err)
	}
	if r, err := other.sink.GetStats(ctx, &cefiotv1.GetStatsRequest{}); err != nil || r.GetFrames() != 0 || len(r.GetCameras()) != 0 {
		t.Errorf("another camera's viewer reads stats: %v, %v; want nothing of %s", r, err, frame.GetCameraId())
	}
	if r, err := other.capture.ListCameras(ctx, &cefiotv1.ListCamerasRequest{}); err != nil || len(r.GetCameras()) != 0 {
		t.Errorf("another camera's viewer lists cameras: %v, %v; want none", r.GetCameras(), err)
	}
	if _, err := other.capture.GetCamera(ctx, &cefiotv1.GetCameraRequest{CameraId: frame.GetCameraId()}); status.Code(err) != codes.NotFound {
		t.Errorf("another camera's viewer gets camera %s: %v, want NotFound", frame.GetCameraId(), err)
	}

	// The camera's own viewer sees it, through both APIs.
	if r, err := own.sink.ListFrames(ctx, &cefiotv1.ListFramesRequest{}); err != nil || len(r.GetFrames()) == 0 {
		t.Errorf("the camera's viewer lists frames: %d, %v; want some", len(r.GetFrames()), err)
	}
	if _, err := own.sink.GetFrame(ctx, &cefiotv1.GetFrameRequest{FrameId: frame.GetFrameId()}); err != nil {
		t.Errorf("the camera's viewer gets frame %s: %v", frame.GetFrameId(), err)
	}
	if code := get(own.http, "/v1/frames/"+frame.GetFrameId()+"/jpeg"); code != http.StatusOK {
		t.Errorf("the camera's viewer GET the frame's JPEG: HTTP %d", code)
	}
	if r, err := own.sink.GetStats(ctx, &cefiotv1.GetStatsRequest{}); err != nil || r.GetFrames() == 0 {
		t.Errorf("the camera's viewer reads stats: %v, %v", r, err)
	}
}
