package pglocal

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestCheckReachable(t *testing.T) {
	o := owner{uid: 4242, gid: 4242, cred: nil}
	if err := o.checkReachable(t.TempDir()); err != nil {
		t.Fatalf("as the caller: %v", err)
	}
	parent := t.TempDir()
	// The test's temporary root above parent is 0700: open it to others.
	if err := os.Chmod(filepath.Dir(parent), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "pg")
	o.cred = &syscall.Credential{Uid: 4242, Gid: 4242}
	if err := o.checkReachable(dir); err == nil {
		t.Fatalf("another user reaches %s through a 0700 parent", dir)
	}
	if err := os.Chmod(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := o.checkReachable(dir); err != nil {
		t.Fatalf("through a 0711 parent: %v", err)
	}
}
