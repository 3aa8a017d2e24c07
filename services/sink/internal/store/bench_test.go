package store

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"
)

const benchJPEGSize = 100 << 10 // 100 KB

func benchStore(b *testing.B) *Store {
	b.Helper()
	s, err := Open(context.Background(), b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchJPEG() []byte {
	data := make([]byte, benchJPEGSize)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	data[0], data[1] = 0xFF, 0xD8
	return data
}

// BenchmarkPut stores new 100 KB frames: SHA-256, atomic file write with two
// fsyncs, one bbolt commit (fsync) each.
func BenchmarkPut(b *testing.B) {
	s := benchStore(b)
	data := benchJPEG()
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m := newFrame(fmt.Sprintf("cam-%d", i%4), uint64(i), base.Add(time.Duration(i)*time.Millisecond))
		if stored, err := s.Put(ctx, m, data); err != nil || !stored {
			b.Fatalf("Put: %v, %v", stored, err)
		}
		i++
	}
}

// BenchmarkPutParallel stores new frames from several goroutines.
func BenchmarkPutParallel(b *testing.B) {
	s := benchStore(b)
	data := benchJPEG()
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	var seq int64
	var mu = make(chan struct{}, 1)
	mu <- struct{}{}
	next := func() int64 { <-mu; seq++; v := seq; mu <- struct{}{}; return v }
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next()
			m := newFrame(fmt.Sprintf("cam-%d", i%4), uint64(i), base.Add(time.Duration(i)*time.Millisecond))
			if _, err := s.Put(ctx, m, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPutReplay re-puts an already stored frame (the idempotent path).
func BenchmarkPutReplay(b *testing.B) {
	s := benchStore(b)
	data := benchJPEG()
	ctx := context.Background()
	m := newFrame("cam-1", 1, base)
	if _, err := s.Put(ctx, m, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if stored, err := s.Put(ctx, m, data); err != nil || stored {
			b.Fatalf("replay: %v, %v", stored, err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := benchStore(b)
	data := benchJPEG()
	ctx := context.Background()
	m := newFrame("cam-1", 1, base)
	if _, err := s.Put(ctx, m, data); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := s.Get(ctx, m.FrameID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList pages 100 frames of one camera out of 2,000 across 4.
func BenchmarkList(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	for i := range 2000 {
		m := newFrame(fmt.Sprintf("cam-%d", i%4), uint64(i), base.Add(time.Duration(i)*time.Second))
		if _, err := s.Put(ctx, m, []byte{0xFF, 0xD8, byte(i)}); err != nil {
			b.Fatal(err)
		}
	}
	q := Query{CameraID: "cam-2", Start: base.Add(100 * time.Second), Limit: 100}
	for b.Loop() {
		page, _, err := s.List(ctx, q)
		if err != nil || len(page) != 100 {
			b.Fatalf("List: %d, %v", len(page), err)
		}
	}
}
