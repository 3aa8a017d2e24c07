package placement

import (
	"strings"
	"testing"

	cefiotv1 "github.com/cefiot/cefiot/proto/gen/cefiot/v1"
)

func worker(id string, kinds []string, labels map[string]string) *cefiotv1.Worker {
	return &cefiotv1.Worker{Id: id, Node: "node-" + id, Kinds: kinds, Labels: labels}
}

func TestPlanAssignsEachWorkloadToAFittingWorker(t *testing.T) {
	wls := []*cefiotv1.Workload{
		{Name: "capture:cam-1", Kind: "capture", NodeSelector: map[string]string{"camera": "cam-1"}},
		{Name: "enrich", Kind: "enrich"},
		{Name: "bridge", Kind: "bridge"},
	}
	workers := []*cefiotv1.Worker{
		worker("c2", []string{"capture"}, map[string]string{"camera": "cam-2"}),
		worker("c1", []string{"capture"}, map[string]string{"camera": "cam-1"}),
		worker("e1", []string{"enrich", "bridge"}, nil),
		worker("e2", []string{"enrich", "bridge"}, nil),
	}
	got := map[string]string{}
	for _, d := range Plan(wls, workers, nil) {
		got[d.Workload] = d.Assign.GetWorkerId()
	}
	want := map[string]string{"capture:cam-1": "c1", "enrich": "e2", "bridge": "e1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s on %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func TestPlanKeepsLiveOwnerAndMovesFromDeadOne(t *testing.T) {
	wls := []*cefiotv1.Workload{{Name: "enrich", Kind: "enrich"}, {Name: "bridge", Kind: "bridge"}}
	workers := []*cefiotv1.Worker{worker("a", []string{"enrich", "bridge"}, nil), worker("b", []string{"enrich", "bridge"}, nil)}
	current := []*cefiotv1.Assignment{
		{Workload: "enrich", WorkerId: "b", Epoch: 5},
		{Workload: "bridge", WorkerId: "gone", Epoch: 6},
	}
	ds := Plan(wls, workers, current)
	if len(ds) != 1 || ds[0].Workload != "bridge" || ds[0].Assign.GetWorkerId() != "a" {
		t.Fatalf("want only bridge moved to a, got %+v", ds)
	}
	if !strings.Contains(ds[0].Reason, "gone") {
		t.Errorf("reason %q should name the dead worker", ds[0].Reason)
	}
}

func TestPlanReleasesDeadOwnerWhenNothingFitsAndDropsUndeclared(t *testing.T) {
	wls := []*cefiotv1.Workload{{Name: "sink", Kind: "sink"}}
	current := []*cefiotv1.Assignment{
		{Workload: "sink", WorkerId: "dead"},
		{Workload: "old", WorkerId: "x"},
	}
	ds := Plan(wls, nil, current)
	if len(ds) != 2 || ds[0].Workload != "sink" || ds[0].Assign != nil || ds[1].Workload != "old" || ds[1].Assign != nil {
		t.Fatalf("got %+v", ds)
	}
}

func TestParseSpecValidates(t *testing.T) {
	good := `
site: edge
workloads:
  - name: capture:cam-1
    kind: capture
    params: {camera: cam-1, source: /v.avi}
  - name: enrich
    kind: enrich
`
	s, err := ParseSpec([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if ws := s.Proto(); len(ws) != 2 || ws[0].Name != "capture:cam-1" || ws[0].Params["source"] != "/v.avi" {
		t.Fatalf("got %v", ws)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown field":  {"site: edge\nworkloadz: []\n", "workloadz"},
		"bad kind":       {"site: edge\nworkloads:\n - {name: x, kind: nope}\n", "workloads[0].kind"},
		"duplicate":      {"site: edge\nworkloads:\n - {name: x, kind: enrich}\n - {name: x, kind: enrich}\n", "workloads[1].name"},
		"capture params": {"site: edge\nworkloads:\n - {name: c, kind: capture}\n", "workloads[0].params"},
		"bad site":       {"site: 'a/b'\n", "site"},
	} {
		_, err := ParseSpec([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want error naming %q, got %v", name, tc.want, err)
		}
	}
}
