package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/pglocal/pgtest"
)

// BenchmarkRebuildPostgres rebuilds a PostgreSQL index from a filesystem
// object store of CEFIOT_REBUILD_FRAMES frames (default 20,000; 100
// cameras, events of 25 frames, 1 KB pictures), written straight to disk
// beforehand (not timed). It reports frames/s and the time for a million.
func BenchmarkRebuildPostgres(b *testing.B) {
	n := 20000
	if v := os.Getenv("CEFIOT_REBUILD_FRAMES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("CEFIOT_REBUILD_FRAMES=%q", v)
		}
	}
	srv := pgtest.Start(b)
	ctx := context.Background()
	dir := b.TempDir()
	objs, err := NewFSObjects(dir)
	if err != nil {
		b.Fatal(err)
	}
	writeObjects(b, dir, n)
	for i := 0; b.Loop(); i++ {
		idx, err := OpenPostgres(ctx, PostgresConfig{DSN: srv.DSN(), Schema: fmt.Sprintf("rebuild_%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		s, err := New(ctx, idx, objs, nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		rep, err := s.Rebuild(ctx)
		took := time.Since(start)
		if err != nil || rep.Indexed != n {
			b.Fatalf("rebuild = %+v, %v; want %d indexed", rep, err, n)
		}
		b.ReportMetric(float64(n)/took.Seconds(), "frames/s")
		b.ReportMetric(took.Seconds()*1e6/float64(n), "s/1M-frames")
		_ = s.Close()
	}
}

// writeObjects writes n frames' JPEGs and meta objects under dir, in the
// store's layout, without fsyncs.
func writeObjects(b *testing.B, dir string, n int) {
	b.Helper()
	picture := fakeJPEG("bench", 1024)
	made := map[string]bool{}
	for i := range n {
		cam := fmt.Sprintf("cam-%02d", i%100)
		m := newFrame(cam, uint64(i), base.Add(time.Duration(i)*40*time.Millisecond))
		m.EventID = fmt.Sprintf("%s-ev-%d", cam, i/2500)
		m.SizeBytes, m.ContentSHA256, m.StoredTime = int64(len(picture)), "00", base
		e := Entry{Meta: m, Path: relPath(m)}
		raw, err := json.Marshal(recordFromEntry(e))
		if err != nil {
			b.Fatal(err)
		}
		for key, data := range map[string][]byte{e.Path: picture, metaPath(m): raw} {
			p := filepath.Join(dir, filepath.FromSlash(key))
			if d := filepath.Dir(p); !made[d] {
				if err := os.MkdirAll(d, 0o755); err != nil {
					b.Fatal(err)
				}
				made[d] = true
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
}
