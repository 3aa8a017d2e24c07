package sitemove

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/cefiot/cefiot/libs/pipeline"
	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// memScheduler is a site's workload API in memory; it assigns nothing.
type memScheduler struct {
	mu        sync.Mutex
	workloads map[string]*cefiotv1.Workload
}

func (m *memScheduler) GetWorkload(_ context.Context, in *cefiotv1.GetWorkloadRequest, _ ...grpc.CallOption) (*cefiotv1.GetWorkloadResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wl, ok := m.workloads[in.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "workload %q not found", in.GetName())
	}
	return &cefiotv1.GetWorkloadResponse{Workload: proto.Clone(wl).(*cefiotv1.Workload)}, nil
}

func (m *memScheduler) PutWorkload(_ context.Context, in *cefiotv1.PutWorkloadRequest, _ ...grpc.CallOption) (*cefiotv1.PutWorkloadResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.workloads[in.GetWorkload().GetName()] = proto.Clone(in.GetWorkload()).(*cefiotv1.Workload)
	return &cefiotv1.PutWorkloadResponse{Workload: in.GetWorkload(), Changed: true}, nil
}

func (m *memScheduler) DeleteWorkload(_ context.Context, in *cefiotv1.DeleteWorkloadRequest, _ ...grpc.CallOption) (*cefiotv1.DeleteWorkloadResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.workloads[in.GetName()]
	delete(m.workloads, in.GetName())
	return &cefiotv1.DeleteWorkloadResponse{Deleted: ok}, nil
}

// A site that never places the remote copy (no worker of its kind) gets
// its declaration taken back, and the home workload is left as it was.
func TestMoveOutWithoutARemoteWorkerChangesNothing(t *testing.T) {
	home := &memScheduler{workloads: map[string]*cefiotv1.Workload{"enrich": {Name: "enrich", Kind: "enrich", Params: map[string]string{"input_topic": "frames.raw"}}}}
	remote := &memScheduler{workloads: map[string]*cefiotv1.Workload{}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var steps []string
	_, err := Move(ctx, Site{Name: "edge", Client: home}, Site{Name: "cloud", Client: remote}, "enrich", "cloud", func(s string) { steps = append(steps, s) })
	if err == nil {
		t.Fatal("move succeeded with nobody to run enrich in the cloud")
	}
	if len(remote.workloads) != 0 {
		t.Errorf("the cloud keeps %v after the failed move", remote.workloads)
	}
	got := home.workloads["enrich"]
	if got.GetSite() != "" || got.GetParams()[pipeline.ParamHandoffTo] != "" || got.GetParams()[pipeline.ParamHandoffID] != "" {
		t.Errorf("home workload changed: %v", got)
	}
	if len(steps) != 1 {
		t.Errorf("steps %q, want only the declaration", steps)
	}
}

func TestMoveRefusesOtherKinds(t *testing.T) {
	home := &memScheduler{workloads: map[string]*cefiotv1.Workload{"capture:cam-1": {Name: "capture:cam-1", Kind: "capture"}}}
	remote := &memScheduler{workloads: map[string]*cefiotv1.Workload{}}
	_, err := Move(context.Background(), Site{Name: "edge", Client: home}, Site{Name: "cloud", Client: remote}, "capture:cam-1", "cloud", nil)
	if err == nil || !strings.Contains(err.Error(), "only enrich can move between sites") {
		t.Errorf("moving capture: %v", err)
	}
}
