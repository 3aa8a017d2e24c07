package users

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestStorePutDelete: an administrator adds a user (a password generated
// and shown once), changes their role without touching the password, sets
// a new one, and removes them; the last administrator stays.
func TestStorePutDelete(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	if _, err := Bootstrap(path); err != nil {
		t.Fatal(err)
	}
	s := &Store{Path: path}
	pw, err := s.Put(User{Name: "vera", Role: "viewer", Cameras: []string{"door"}}, "")
	if err != nil || len(pw) < MinPasswordLength {
		t.Fatalf("Put a new user: password %q, %v", pw, err)
	}
	f, _ := s.Load()
	vera, ok := f.Find("vera")
	if !ok || !Verify(vera.Hash, pw) || vera.Cameras[0] != "door" {
		t.Fatalf("vera after Put: %+v", vera)
	}
	if again, err := s.Put(User{Name: "vera", Role: "operator"}, ""); err != nil || again != "" {
		t.Fatalf("change the role: %q, %v", again, err)
	}
	f, _ = s.Load()
	if vera, _ = f.Find("vera"); vera.Role != "operator" || !Verify(vera.Hash, pw) || vera.Cameras != nil {
		t.Fatalf("vera after a role change: %+v (the password must stay)", vera)
	}
	if _, err := s.Put(User{Name: "vera", Role: "operator"}, "short"); err == nil {
		t.Fatal("a short password was accepted")
	}
	if _, err := s.Put(User{Name: "vera", Role: "operator"}, "a long new password"); err != nil {
		t.Fatal(err)
	}
	f, _ = s.Load()
	if vera, _ = f.Find("vera"); !Verify(vera.Hash, "a long new password") {
		t.Fatal("the new password does not verify")
	}
	for _, bad := range []User{{Name: "Vera!", Role: "viewer"}, {Name: "x", Role: "root"}, {Name: "x", Role: "viewer", Cameras: []string{"a b"}}} {
		if _, err := s.Put(bad, ""); err == nil {
			t.Errorf("Put(%+v) accepted", bad)
		}
	}
	if ok, err := s.Delete("vera"); !ok || err != nil {
		t.Fatalf("Delete vera: %v, %v", ok, err)
	}
	if ok, _ := s.Delete("vera"); ok {
		t.Fatal("vera deleted twice")
	}
	if _, err := s.Delete("admin"); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("deleting the last admin: %v, want ErrLastAdmin", err)
	}
	if _, err := s.Put(User{Name: "admin", Role: "viewer"}, ""); !errors.Is(err, ErrLastAdmin) {
		t.Fatalf("demoting the last admin: %v, want ErrLastAdmin", err)
	}
}
