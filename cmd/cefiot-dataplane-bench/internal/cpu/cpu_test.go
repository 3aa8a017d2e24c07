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

//go:noinline
func burnA(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
	}
	return n
}

//go:noinline
func burnB(d time.Duration) int {
	n := 0
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
	}
	return n
}

func TestProcessTimeGrowsWithWork(t *testing.T) {
	m, err := Start(map[string]int{"self": os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if burnA(300*time.Millisecond) == 0 {
		t.Fatal("the busy loop did no work")
	}
	used, err := m.Used()
	if err != nil {
		t.Fatal(err)
	}
	if used["self"] < 200*time.Millisecond || used["self"] > 3*time.Second {
		t.Fatalf("a 300 ms busy loop used %v of CPU", used["self"])
	}
}

// A profile of a process that spends about three times as long in burnA as
// in burnB splits in about that ratio.
func TestSplitAttributesSamplesToStages(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	done := make(chan int)
	go func() {
		n := 0
		for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
			n += burnA(30 * time.Millisecond)
			n += burnB(10 * time.Millisecond)
		}
		done <- n
	}()
	p, err := Fetch(context.Background(), srv.URL, 1)
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
