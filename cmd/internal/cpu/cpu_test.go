package cpu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// spin does n units of work; its cost is CPU, whatever the scheduler does.
//
//go:noinline
func spin(n int) uint64 {
	x := uint64(1)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

//go:noinline
func burnA(units int) uint64 { return spin(3 * units) }

//go:noinline
func burnB(units int) uint64 { return spin(units) }

func TestProcessTimeGrowsWithWork(t *testing.T) {
	self := map[string]int{"self": os.Getpid()}
	m, err := Start(self)
	if err != nil {
		t.Fatal(err)
	}
	before, err := ProcessTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Work until this process has used 200 ms more CPU by its own count.
	var x uint64
	deadline := time.Now().Add(30 * time.Second)
	for {
		x += spin(1 << 20)
		now, err := ProcessTime(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 200*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s of busy work used only %v of CPU", now-before)
		}
	}
	used, err := m.Used()
	if err != nil {
		t.Fatal(err)
	}
	if used["self"] < 200*time.Millisecond || x == 0 {
		t.Fatalf("the meter saw %v of CPU, the process %v or more", used["self"], 200*time.Millisecond)
	}
}

// A live profile of busy work comes back parsed, with CPU samples in the
// functions that did the work. (How many samples each function gets
// depends on the machine's load, so the split itself is tested on a
// profile built here.)
func TestFetchTakesALiveProfile(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan uint64)
	go func() {
		var x uint64
		for ctx.Err() == nil {
			x += burnA(1 << 18)
			x += burnB(1 << 18)
		}
		done <- x
	}()
	p, err := Fetch(context.Background(), srv.Client(), srv.URL, 1)
	cancel()
	if <-done == 0 {
		t.Fatal("the busy loops did no work")
	}
	if err != nil {
		t.Fatal(err)
	}
	split := Split(p, []Stage{{Name: "burn", Functions: []string{"cpu.burnA", "cpu.burnB"}}})
	if split["burn"] == 0 {
		t.Fatalf("split %v: the busy functions have no samples", split)
	}
}

// Split gives each sample to the innermost function a stage claims, sums
// CPU time (not sample counts) and leaves the rest to Other.
func TestSplitAttributesSamplesToStages(t *testing.T) {
	fn := func(id uint64, name string) *profile.Function { return &profile.Function{ID: id, Name: name} }
	spin, burnA, burnB, run, idle := fn(1, "example.com/x.spin"), fn(2, "example.com/x.burnA"), fn(3, "example.com/x.burnB"), fn(4, "example.com/x.run"), fn(5, "runtime.idle")
	loc := func(id uint64, f *profile.Function) *profile.Location {
		return &profile.Location{ID: id, Line: []profile.Line{{Function: f}}}
	}
	lSpin, lA, lB, lRun, lIdle := loc(1, spin), loc(2, burnA), loc(3, burnB), loc(4, run), loc(5, idle)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{lSpin, lA, lRun}, Value: []int64{3, 30e6}},
			{Location: []*profile.Location{lSpin, lB, lRun}, Value: []int64{1, 10e6}},
			{Location: []*profile.Location{lSpin, lA, lB, lRun}, Value: []int64{1, 10e6}}, // burnA is innermost
			{Location: []*profile.Location{lIdle}, Value: []int64{2, 20e6}},
		},
		Function: []*profile.Function{spin, burnA, burnB, run, idle},
		Location: []*profile.Location{lSpin, lA, lB, lRun, lIdle},
	}
	got := Split(p, []Stage{{Name: "a", Functions: []string{"x.burnA"}}, {Name: "b", Functions: []string{"x.burnB"}}})
	want := map[string]time.Duration{"a": 40 * time.Millisecond, "b": 10 * time.Millisecond, Other: 20 * time.Millisecond}
	if len(got) != len(want) {
		t.Fatalf("split %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("split %v, want %v", got, want)
		}
	}
	if empty := Split(&profile.Profile{SampleType: []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}}}, nil); len(empty) != 0 {
		t.Errorf("a profile without CPU time split into %v", empty)
	}
}
