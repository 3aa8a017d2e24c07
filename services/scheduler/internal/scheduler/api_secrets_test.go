package scheduler

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/placement"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// A camera's password is stored (capture needs it) but never shown: not by
// gRPC, not by REST, not in the answer to a write; and a workload read from
// the API and written back keeps the real password.
func TestAPINeverShowsCameraPasswords(t *testing.T) {
	const secret = "s3cret-pw"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := runScheduler(ctx, t, "site: edge\nworkloads:\n - {name: 'capture:door', kind: capture, params: {camera: door, source: 'rtsp://admin:"+secret+"@10.0.0.5:554/main'}}\n")
	conn, err := grpc.NewClient(s.grpcAddr, s.as(t, sitepki.Admin).DialOption())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	c := cefiotv1.NewSchedulerServiceClient(conn)
	var got *cefiotv1.GetWorkloadResponse
	deadline := time.Now().Add(20 * time.Second)
	for got == nil {
		if r, err := c.GetWorkload(ctx, &cefiotv1.GetWorkloadRequest{Name: "capture:door"}); err == nil {
			got = r
		} else if time.Now().After(deadline) {
			t.Fatalf("the spec was not applied: %v", err)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	shown := func(what string, m any) {
		t.Helper()
		var s string
		switch v := m.(type) {
		case string:
			s = v
		case proto.Message:
			s = protojson.Format(v)
		}
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the camera password:\n%s", what, s)
		}
		if !strings.Contains(s, "admin:xxxxx@10.0.0.5") {
			t.Errorf("%s does not show the masked URL:\n%s", what, s)
		}
	}
	shown("GetWorkload", got)
	list, err := c.ListWorkloads(ctx, &cefiotv1.ListWorkloadsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	shown("ListWorkloads", list)
	for _, path := range []string{"/v1/workloads", "/v1/workloads/capture:door"} {
		resp, err := s.client(t, sitepki.Operator).Get(s.url(path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		shown("GET "+path, string(b))
	}

	// Written back as read, with one setting changed: the stored URL keeps
	// its password, the answer still hides it.
	wl := got.GetWorkload()
	wl.Params["fps"] = "5"
	put, err := c.PutWorkload(ctx, &cefiotv1.PutWorkloadRequest{Workload: wl})
	if err != nil {
		t.Fatal(err)
	}
	shown("PutWorkload", put)
	keys, _ := placement.NewKeys("edge")
	st, err := placement.ReadState(ctx, s.cli, keys)
	if err != nil {
		t.Fatal(err)
	}
	stored := st.Workload("capture:door").GetParams()
	if stored["source"] != "rtsp://admin:"+secret+"@10.0.0.5:554/main" || stored["fps"] != "5" {
		t.Fatalf("stored params after the round trip: %v", stored)
	}
}
