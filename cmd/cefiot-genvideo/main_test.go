package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"
)

func TestRealMain(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "s.avi")
	images := filepath.Join(dir, "frames")
	var stdout strings.Builder
	args := []string{"-out", out, "-images", images, "-frames", "30", "-motion-start", "5", "-motion-end", "14", "-width", "320", "-height", "240", "-fps", "10"}
	if err := realMain(context.Background(), args, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "motion in frames 5..14 inclusive (10 frames)") {
		t.Errorf("summary: %q", stdout.String())
	}
	vc, err := gocv.VideoCaptureFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	if n := vc.Get(gocv.VideoCaptureFrameCount); n != 30 {
		t.Errorf("video has %v frames, want 30", n)
	}
	if w := vc.Get(gocv.VideoCaptureFrameWidth); w != 320 {
		t.Errorf("video width %v, want 320", w)
	}
	entries, err := os.ReadDir(images)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 30 {
		t.Errorf("%d images, want 30", len(entries))
	}
}

func TestRealMainErrors(t *testing.T) {
	ctx := context.Background()
	cases := map[string][]string{
		"nothing to do": {},
		"MotionEnd":     {"-out", filepath.Join(t.TempDir(), "x.avi"), "-motion-end", "500"},
		"unexpected":    {"-out", "x.avi", "extra"},
		"-frames":       {"-frames", "many"},
	}
	for want, args := range cases {
		err := realMain(ctx, args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err = %v, want one containing %q", args, err, want)
		}
	}
	if err := realMain(ctx, []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: err = %v, want flag.ErrHelp", err)
	}
}
