// Package kubeapi runs a real kube-apiserver for tests: the binary built
// from k8s.io/kubernetes by scripts/build-kube-apiserver.sh, on an embedded
// etcd, serving HTTPS on loopback with a static admin token. Its Client
// applies objects server-side (for real, or as a dry run that goes through
// every admission step and stores nothing) and reports the server's
// warnings with each answer.
package kubeapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/cefiot/cefiot/libs/harness/etcdtest"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/procs"
)

// BinaryEnv names the kube-apiserver binary; without it Binary looks in
// the repository's .cache/bin/.
const BinaryEnv = "CEFIOT_KUBE_APISERVER"

// RequireEnv set to 1 makes a missing binary fail the test instead of
// skipping it (make test sets it).
const RequireEnv = "CEFIOT_REQUIRE_KUBE_APISERVER"

// Binary returns the kube-apiserver to run, or skips the test (fails it
// under RequireEnv) when there is none. repoRoot is the repository's root.
func Binary(t testing.TB, repoRoot string) string {
	t.Helper()
	path := os.Getenv(BinaryEnv)
	if path == "" {
		path = filepath.Join(repoRoot, ".cache", "bin", "kube-apiserver")
	}
	if _, err := os.Stat(path); err != nil {
		msg := fmt.Sprintf("no kube-apiserver at %s (make kube-apiserver builds it; %s names another): %v", path, BinaryEnv, err)
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Server is a running kube-apiserver.
type Server struct {
	// Config reaches the server as a member of system:masters.
	Config *rest.Config
	// Addr is the server's host:port; CAFile the certificate it serves
	// (its own, self-signed); ServiceAccountKey the key that signs and
	// checks service account tokens.
	Addr, CAFile, ServiceAccountKey string
	// ServerName is the name its certificate has for the loopback address
	// when it serves on every address ("localhost"; empty: the address).
	ServerName string
	tokens     map[string]string // by user
	proc       *procs.Proc
	log        string
}

// User is an identity the server knows by a token (Server.Token).
type User struct {
	Name   string
	Groups []string
}

// Start runs binary on a fresh embedded etcd and waits until the server
// is ready; both stop when the test ends.
func Start(t testing.TB, binary string) *Server { return StartWith(t, binary, nil) }

// StartWith is Start, with users besides the admin (kubelets, controllers)
// who authenticate by token.
func StartWith(t testing.TB, binary string, users []User) *Server {
	return StartOn(t, binary, users, "")
}

// StartOn is StartWith, serving on ip as well as on the loopback address
// and advertising it, so that pods reach the server through the
// kubernetes Service (empty: the loopback address only, no Service
// endpoints).
func StartOn(t testing.TB, binary string, users []User, ip string) *Server {
	t.Helper()
	member, _ := etcdtest.Start(t)
	dir := t.TempDir()
	addr, err := netx.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(addr, ":")
	listen := []string{"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none"}
	serverName := ""
	if ip != "" {
		serverName = "localhost" // the certificate it makes itself names it so
		// One address to bind, so the wildcard: the token and the
		// client certificates keep strangers out.
		listen = []string{"--bind-address=0.0.0.0", "--advertise-address=" + ip, "--endpoint-reconciler-type=lease"}
	}
	token := randomToken(t)
	tokens := map[string]string{}
	csv := token + `,cefiot-test,cefiot-test,"system:masters"` + "\n"
	for _, u := range users {
		tokens[u.Name] = randomToken(t)
		csv += fmt.Sprintf("%s,%s,%s,%q\n", tokens[u.Name], u.Name, u.Name, strings.Join(u.Groups, ","))
	}
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "certs")
	args := []string{
		"--etcd-servers=http://" + member.Endpoint(),
		"--secure-port=" + port,
		"--cert-dir=" + certDir,
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--anonymous-auth=false",
		"--authorization-mode=Node,RBAC",
		// As kubeadm and k3s clusters: a kubelet may change only its own
		// Node and pods, and not the labels under
		// node-restriction.kubernetes.io/ (off by default in the binary).
		"--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		// As on real clusters: privileged containers are a matter of
		// Pod Security admission, not refused outright.
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	}
	args = append(args, listen...)
	logPath := filepath.Join(dir, "kube-apiserver.log")
	proc, err := procs.Start(procs.Spec{Name: "kube-apiserver", Path: binary, Args: args, LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{proc: proc, log: logPath, Addr: addr, CAFile: filepath.Join(certDir, "apiserver.crt"), ServiceAccountKey: saKey, ServerName: serverName, tokens: tokens}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		proc.Stop(ctx, 10*time.Second)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	started := time.Now()
	if err := s.awaitReady(ctx, addr, certDir, token); err != nil {
		t.Fatal(procs.WithLogTail(err, logPath, procs.LogTail(logPath, 0, 30)))
	}
	t.Logf("kube-apiserver ready in %s at https://%s", time.Since(started).Round(10*time.Millisecond), addr)
	return s
}

// awaitReady waits for the serving certificate the server makes for
// itself, then for /readyz.
func (s *Server) awaitReady(ctx context.Context, addr, certDir, token string) error {
	certFile := filepath.Join(certDir, "apiserver.crt")
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.Config == nil {
			if ca, err := os.ReadFile(certFile); err == nil && len(ca) > 0 {
				s.Config = &rest.Config{Host: "https://" + addr, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca, ServerName: s.ServerName}, QPS: 200, Burst: 400}
			}
		}
		if s.Config != nil {
			if err := s.readyz(ctx); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %w", ctx.Err())
		case <-s.proc.Done():
			return fmt.Errorf("kube-apiserver exited: %w", s.proc.ExitError())
		case <-tick.C:
		}
	}
}

func (s *Server) readyz(ctx context.Context) error {
	hc, err := rest.HTTPClientFor(s.Config)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Config.Host+"/readyz", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("readyz: HTTP " + strconv.Itoa(resp.StatusCode))
	}
	return nil
}

// Token is user's token (one of StartWith's users).
func (s *Server) Token(user string) string { return s.tokens[user] }

// LogTail is the end of the server's log, for failure messages.
func (s *Server) LogTail(lines int) string { return procs.LogTail(s.log, 0, lines) }

func randomToken(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service account key: %w", err)
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}), 0o600)
}
