// Package smallfs gives tests a real filesystem that fills up: a
// size-limited tmpfs, mounted for one test and grown on demand, so a full
// disk is ENOSPC from the kernel rather than a stand-in error.
package smallfs

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Mount mounts a filesystem of size bytes at dir, creating dir, and
// unmounts it when the test ends; a test that registers its processes'
// cleanups after this call has them stopped first. It skips the test when
// it cannot mount (not root).
func Mount(t testing.TB, dir string, size int64) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a small filesystem needs root")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %d KiB filesystem at %s: %v\n%s", size>>10, dir, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
}

// Grow resizes a filesystem of Mount to size bytes.
func Grow(t testing.TB, dir string, size int64) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", fmt.Sprintf("remount,size=%d", size), dir).CombinedOutput(); err != nil {
		t.Fatalf("grow the filesystem at %s to %d KiB: %v\n%s", dir, size>>10, err, out)
	}
}
