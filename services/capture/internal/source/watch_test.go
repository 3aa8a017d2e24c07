package source

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/videogen"
)

// TestWatchedFolder: a watched folder delivers images as they arrive, in
// name order, skips non-images and files arriving out of order, and never
// ends by itself.
func TestWatchedFolder(t *testing.T) {
	spec := smallSpec()
	spec.Frames = 6
	spec.MotionStart, spec.MotionEnd = 1, 5
	src := t.TempDir()
	if err := videogen.WriteImages(src, spec); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	move := func(i int, as string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(src, videogen.ImageName(i)))
		if err != nil {
			t.Fatal(err)
		}
		// Writers should write a dot-file and rename it; a direct write is
		// picked up once its size is stable.
		if err := os.WriteFile(filepath.Join(dir, as), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := quietOptions()
	opts.Watch, opts.WatchInterval = true, 30*time.Millisecond
	d, err := OpenImageDir(dir, opts)
	if err != nil {
		t.Fatalf("watching an empty folder: %v", err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	next := func() Frame {
		t.Helper()
		f, err := d.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		return f
	}
	move(0, "img-0001.jpg")
	move(1, "img-0002.jpg")
	if f := next(); f.Name != "img-0001.jpg" || f.Index != 0 {
		t.Fatalf("first frame %s #%d", f.Name, f.Index)
	}
	if f := next(); f.Name != "img-0002.jpg" || f.Index != 1 {
		t.Fatalf("second frame %s #%d", f.Name, f.Index)
	}
	if err := os.WriteFile(filepath.Join(dir, "img-0003.jpg"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	move(2, "img-0000.jpg") // sorts before what was read: skipped
	move(3, "img-0004.jpg")
	if f := next(); f.Name != "img-0004.jpg" || f.Index != 2 {
		t.Fatalf("third frame %s #%d", f.Name, f.Index)
	}
	if d.Skipped() != 1 || d.OutOfOrder() != 1 {
		t.Fatalf("skipped %d, out of order %d; want 1 and 1", d.Skipped(), d.OutOfOrder())
	}
	short, c := context.WithTimeout(ctx, 200*time.Millisecond)
	defer c()
	if _, err := d.Next(short); err != context.DeadlineExceeded {
		t.Fatalf("Next on a quiet watched folder = %v, want to wait until the context ends", err)
	}
	e1, _ := WatchEpoch(dir)
	move(4, "img-0005.jpg")
	if e2, _ := WatchEpoch(dir); e1 != e2 {
		t.Fatal("watch epoch changed when a file arrived")
	}
}
