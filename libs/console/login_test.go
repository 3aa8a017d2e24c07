package console

import (
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/console/users"
)

// TestThrottleSlowsRepeatedFailures: three failures are free; then each
// attempt waits 1 s, doubling, per user and per address; a success clears.
func TestThrottleSlowsRepeatedFailures(t *testing.T) {
	var th throttle
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if w := th.wait(t0, "user:a", "addr:x"); w != 0 {
			t.Fatalf("failure %d: wait %v", i, w)
		}
		th.fail(t0, "user:a", "addr:x")
	}
	if w := th.wait(t0, "user:a"); w != time.Second {
		t.Fatalf("after 3 failures: wait %v, want 1s", w)
	}
	if w := th.wait(t0, "user:b", "addr:x"); w != time.Second {
		t.Fatalf("another user from the same address: wait %v, want 1s", w)
	}
	th.fail(t0, "user:a")
	if w := th.wait(t0.Add(500*time.Millisecond), "user:a"); w != 1500*time.Millisecond {
		t.Fatalf("after 4 failures, half a second on: wait %v, want 1.5s", w)
	}
	for range 20 {
		th.fail(t0, "user:a")
	}
	if w := th.wait(t0, "user:a"); w != maxLoginWait {
		t.Fatalf("many failures: wait %v, want the cap %v", w, maxLoginWait)
	}
	th.succeed("user:a", "addr:x")
	if w := th.wait(t0, "user:a", "addr:x"); w != 0 {
		t.Fatalf("after a success: wait %v", w)
	}
}

func TestSessionsExpire(t *testing.T) {
	var s sessions
	t0 := time.Unix(1000, 0)
	id, exp, err := s.create(users.User{Name: "alice", Role: "operator"}, t0)
	if err != nil || exp != t0.Add(SessionTTL) {
		t.Fatal(err, exp)
	}
	if u, ok := s.get(id, t0.Add(SessionTTL-time.Second)); !ok || u.Name != "alice" {
		t.Fatal("a live session not found")
	}
	if _, ok := s.get(id, t0.Add(SessionTTL+time.Second)); ok {
		t.Fatal("an expired session still works")
	}
	id2, _, _ := s.create(users.User{Name: "bob"}, t0)
	s.remove(id2)
	if _, ok := s.get(id2, t0); ok {
		t.Fatal("a removed session still works")
	}
}
