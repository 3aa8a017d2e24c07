package cpu

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"testing"
	"time"
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

// A profile of a process that does three times as much work in burnA as in
// burnB splits in about that ratio.
func TestSplitAttributesSamplesToStages(t *testing.T) {
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
	split := Split(p, []Stage{{Name: "a", Functions: []string{"cpu.burnA"}}, {Name: "b", Functions: []string{"cpu.burnB"}}})
	a, b := split["a"], split["b"]
	if a == 0 || b == 0 {
		t.Fatalf("split %v: both stages should have samples", split)
	}
	if r := float64(a) / float64(b); r < 1.5 || r > 8 {
		t.Fatalf("a/b = %.2f (%v / %v), want about 3", r, a, b)
	}
}
