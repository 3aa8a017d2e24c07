package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/cefiot/cefiot/services/sink/internal/store/s3test"
)

// backend makes the object backend and the index of a test store.
type backend struct {
	name string
	fs   bool
	// objects returns the objects of the store whose index is in dir; the
	// same dir gives the same objects (for reopen tests).
	objects func(t testing.TB, dir string) Objects
	// index, when set, opens the index of dir (the same dir gives the same
	// index); nil for the bbolt file in dir.
	index func(ctx context.Context, t testing.TB, dir string) (Index, error)
	// shared: two stores may open one index at once (replicas).
	shared bool
}

func (b backend) open(ctx context.Context, t testing.TB, dir string, logger *slog.Logger) (*Store, error) {
	if b.index == nil {
		return OpenWith(ctx, dir, b.objects(t, dir), logger)
	}
	idx, err := b.index(ctx, t, dir)
	if err != nil {
		return nil, err
	}
	s, err := New(ctx, idx, b.objects(t, dir), logger)
	if err != nil {
		_ = idx.Close()
		return nil, err
	}
	return s, nil
}

func fsBackend() backend {
	return backend{name: "filesystem", fs: true, objects: func(t testing.TB, dir string) Objects {
		o, err := NewFSObjects(dir)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}}
}

const testBucket = "cefiot-store-test"

// sharedS3 is one versitygw for the whole test binary, started on first use
// and stopped by TestMain.
var sharedS3 struct {
	once sync.Once
	srv  *s3test.Server
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedS3.srv != nil {
		sharedS3.srv.Stop()
		os.RemoveAll(sharedS3.dir)
	}
	os.Exit(code)
}

func startS3(t testing.TB) *s3test.Server {
	t.Helper()
	sharedS3.once.Do(func() {
		sharedS3.dir, sharedS3.err = os.MkdirTemp("", "cefiot-s3test-")
		if sharedS3.err == nil {
			sharedS3.srv, sharedS3.err = s3test.StartServer(sharedS3.dir)
		}
	})
	if sharedS3.err != nil || sharedS3.srv == nil {
		// Let s3test decide between skip and fail, with the reason.
		return s3test.Start(t, t.TempDir())
	}
	return sharedS3.srv
}

func s3Config(endpoint, prefix string) S3Config {
	return S3Config{
		Endpoint: endpoint, Bucket: testBucket, Prefix: prefix, CreateBucket: true,
		AccessKey: s3test.AccessKey, SecretKey: s3test.SecretKey,
	}
}

// s3Backend maps every store dir to its own key prefix in one bucket of a
// real versitygw.
func s3Backend(t *testing.T) backend {
	srv := startS3(t)
	return backend{name: "s3", objects: func(t testing.TB, dir string) Objects {
		h := fnv.New64a()
		h.Write([]byte(dir))
		o, err := NewS3Objects(context.Background(), s3Config(srv.Endpoint, fmt.Sprintf("t%x", h.Sum64())))
		if err != nil {
			t.Fatal(err)
		}
		return o
	}}
}

func runContract(t *testing.T, b backend) {
	for _, c := range contract {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

// TestStoreFilesystem runs the store contract on the filesystem backend.
func TestStoreFilesystem(t *testing.T) { runContract(t, fsBackend()) }

// TestStoreS3 runs the same contract on a real S3 server (versitygw).
func TestStoreS3(t *testing.T) { runContract(t, s3Backend(t)) }

// openFresh opens a store on dir's objects with a new, empty index of b's
// kind: the index lost, the objects kept.
func (b backend) openFresh(ctx context.Context, t testing.TB, dir string) *Store {
	t.Helper()
	indexDir := t.TempDir()
	objs := b.objects(t, dir)
	var s *Store
	var err error
	if b.index == nil {
		s, err = OpenWith(ctx, indexDir, objs, testLogger(t))
	} else {
		var idx Index
		if idx, err = b.index(ctx, t, indexDir); err == nil {
			s, err = New(ctx, idx, objs, testLogger(t))
		}
	}
	if err != nil {
		t.Fatalf("open a fresh index on %s's objects: %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
