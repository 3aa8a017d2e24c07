package ctl

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

// fakeScheduler answers like a scheduler with two nodes.
type fakeScheduler struct {
	cefiotv1.UnimplementedSchedulerServiceServer
	moved *cefiotv1.MoveWorkloadRequest
}

func (f *fakeScheduler) ListNodes(context.Context, *cefiotv1.ListNodesRequest) (*cefiotv1.ListNodesResponse, error) {
	return &cefiotv1.ListNodesResponse{Nodes: []*cefiotv1.Node{
		{Name: "node-1", Labels: map[string]string{"zone": "edge", "camera": "cam-1"}, WorkerIds: []string{"capture-node-1"}, Workloads: []string{"capture:cam-1"}},
		{Name: "node-2", Cordoned: true, Drained: true},
	}}, nil
}

func (f *fakeScheduler) MoveWorkload(_ context.Context, req *cefiotv1.MoveWorkloadRequest) (*cefiotv1.MoveWorkloadResponse, error) {
	if req.GetNode() == "" {
		return nil, status.Error(codes.InvalidArgument, "node: give a target node or worker_id")
	}
	f.moved = req
	return &cefiotv1.MoveWorkloadResponse{Assignment: &cefiotv1.Assignment{Workload: req.GetWorkload(), WorkerId: "enrich-" + req.GetNode(), Node: req.GetNode(), Epoch: 42}}, nil
}

func serve(t *testing.T, f *fakeScheduler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	cefiotv1.RegisterSchedulerServiceServer(s, f)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), append([]string{"-insecure-plaintext"}, args...), &out, &out, func(string) (string, bool) { return "", false })
	return out.String(), err
}

func TestNodesTableAndMove(t *testing.T) {
	f := &fakeScheduler{}
	addr := serve(t, f)
	out, err := run(t, "-scheduler", addr, "nodes")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"NODE", "node-1", "camera=cam-1,zone=edge", "capture:cam-1", "node-2", "drained,no-workers"} {
		if !strings.Contains(out, want) {
			t.Errorf("nodes output lacks %q:\n%s", want, out)
		}
	}
	out, err = run(t, "-scheduler", addr, "move", "enrich", "-node", "node-2")
	if err != nil || f.moved.GetWorkload() != "enrich" || !strings.Contains(out, "epoch 42") {
		t.Fatalf("move: %v, %v\n%s", f.moved, err, out)
	}
	out, err = run(t, "-scheduler", addr, "-o", "json", "move", "-node", "node-2", "enrich")
	if err != nil || !strings.Contains(strings.ReplaceAll(out, " ", ""), `"epoch":"42"`) {
		t.Fatalf("move -o json: %v\n%s", err, out)
	}
}

func TestErrorsNameTheField(t *testing.T) {
	addr := serve(t, &fakeScheduler{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-scheduler", addr, "move", "enrich", "-worker", ""}, "InvalidArgument: node: give a target node"},
		{[]string{"-scheduler", addr, "move"}, "give the workload name"},
		{[]string{"-scheduler", addr, "move", "enrich", "-to-site", "cloud"}, "give -remote"},
		{[]string{"-scheduler", addr, "-o", "yaml", "nodes"}, "flag -o \"yaml\""},
		{[]string{"-scheduler", addr, "frobnicate"}, "unknown command \"frobnicate\""},
		{[]string{"-scheduler", addr, "apply"}, "-f FILE"},
		{[]string{"-scheduler", addr}, "no command given"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: want an error containing %q, got %v", tc.args, tc.want, err)
		}
	}
}
