// Package s3test starts a real S3-compatible server (versitygw, posix
// backend) on loopback for tests, and a proxy in front of it that can be
// told to refuse writes.
//
// The binary is $CEFIOT_VERSITYGW, or .cache/bin/versitygw of the
// repository (scripts/fetch-versitygw.sh installs it). Without it, tests
// are skipped, or fail when CEFIOT_REQUIRE_S3=1 (make test sets it).
package s3test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/procs"
)

// Credentials of the test server.
const (
	AccessKey = "cefiot-test-access"
	SecretKey = "cefiot-test-secret-key"
)

// Server is a running versitygw.
type Server struct {
	Endpoint string // host:port
	proc     *procs.Proc
}

// Binary returns the versitygw binary, or "" when it is not installed.
func Binary() string {
	if p := os.Getenv("CEFIOT_VERSITYGW"); p != "" {
		return p
	}
	wd, _ := os.Getwd()
	root, err := kafkalocal.FindRepoRoot(wd)
	if err != nil {
		return ""
	}
	p := filepath.Join(root, ".cache", "bin", "versitygw")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// Start starts versitygw on a free loopback port with its data in dir and
// waits until it answers. It skips t (or fails it with CEFIOT_REQUIRE_S3=1)
// when the binary is missing. Stop it with Stop.
func Start(t testing.TB, dir string) *Server {
	t.Helper()
	s, err := StartServer(dir)
	if errors.Is(err, errNoBinary) {
		if os.Getenv("CEFIOT_REQUIRE_S3") == "1" {
			t.Fatalf("%v (run scripts/fetch-versitygw.sh)", err)
		}
		t.Skipf("%v (run scripts/fetch-versitygw.sh)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var errNoBinary = errors.New("s3test: versitygw is not installed")

// StartServer is Start without a testing.TB.
func StartServer(dir string) (*Server, error) {
	bin := Binary()
	if bin == "" {
		return nil, errNoBinary
	}
	addr, err := netx.FreeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	p, err := procs.Start(procs.Spec{
		Name: "versitygw", Path: bin,
		Args:    []string{"--access", AccessKey, "--secret", SecretKey, "--port", addr, "posix", data},
		LogPath: filepath.Join(dir, "versitygw.log"),
	})
	if err != nil {
		return nil, fmt.Errorf("s3test: %w", err)
	}
	s := &Server{Endpoint: addr, proc: p}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("s3test: versitygw exited: %v\n%s", p.ExitError(), p.Tail(20))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("s3test: versitygw does not listen on %s after 30s\n%s", addr, p.Tail(20))
		}
	}
}

// Stop stops the server.
func (s *Server) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.proc.Stop(ctx, 5*time.Second)
}

// Proxy forwards requests to the server; while refusing, it answers every
// write (PUT, POST, DELETE) with 403 AccessDenied, as a bucket whose policy
// denies writes does.
type Proxy struct {
	Endpoint string
	refuse   atomic.Bool
	srv      *httptest.Server
}

// NewProxy starts a proxy in front of s. Close it with Close.
func (s *Server) NewProxy() *Proxy {
	target, _ := url.Parse("http://" + s.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(target)
	p := &Proxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.refuse.Load() && r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.Endpoint = p.srv.Listener.Addr().String()
	return p
}

// Refuse switches refusing writes on or off.
func (p *Proxy) Refuse(on bool) { p.refuse.Store(on) }

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }
