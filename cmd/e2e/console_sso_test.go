package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/console/users"
	"github.com/cefiot/cefiot/libs/harness/netx"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// nginxPath is Debian's nginx; the test is skipped without it, unless the
// suite requires its real parts (make test).
func nginxPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CEFIOT_REQUIRE_BROWSER") == "1" {
		t.Fatal("nginx is not installed (scripts/install-deps.sh installs nginx-light)")
	}
	t.Skip("nginx is not installed")
	return ""
}

// TestConsoleSingleSignOnThroughNginx puts Debian's nginx in front of the
// console as the trusted proxy that signs people on (HTTP basic auth here,
// as any sign-on module would) and names the user in X-Remote-User, showing
// the site's proxy certificate to the console. The console takes that user
// (role from its users file) and acts for them; a client that sends the
// header itself, with no proxy certificate or with another identity's, is
// refused; a user the proxy signs on who is not a console user is refused.
func TestConsoleSingleSignOnThroughNginx(t *testing.T) {
	nginx := nginxPath(t)
	dir := t.TempDir()
	site, err := sitepki.Make(filepath.Join(dir, "pki"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	usersFile := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(usersFile, []byte("users:\n - {name: alice, role: operator}\n - {name: bob, role: viewer}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var actedFor []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		actedFor = append(actedFor, r.Header.Get(access.OnBehalfOf))
		mu.Unlock()
		_, _ = w.Write([]byte("{}"))
	}))
	defer target.Close()
	load := func(component string) *tlsx.Source {
		src, err := site.Load(component)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	srv, err := console.Start("127.0.0.1:0", []console.Target{{Name: "bridge", URL: target.URL}}, logging.Discard(), &console.Security{
		Server: load(access.Console), Client: tlsx.Sites{load(access.Console)},
		Users: &users.Store{Path: usersFile},
		Proxy: &console.TrustedProxy{Header: "X-Remote-User", Addrs: []string{"127.0.0.1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Close(context.Background()) }()

	// nginx: basic auth (crypt SHA-512 hashes made by openssl), then the
	// console over TLS with the proxy's certificate.
	htpasswd := ""
	for _, u := range []string{"alice", "bob", "mallory"} {
		out, err := exec.Command("openssl", "passwd", "-6", u+"-pw").Output()
		if err != nil {
			t.Fatal(err)
		}
		htpasswd += u + ":" + strings.TrimSpace(string(out)) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(htpasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	listen, err := netx.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	pf := site.Files(access.Proxy)
	// As root, nginx's workers would run as nobody, who cannot read the
	// test's private directory.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(user+`
daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy; fastcgi_temp_path %[1]s/fcgi;
  uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  server {
    listen %[2]s;
    location / {
      auth_basic "cefiot";
      auth_basic_user_file %[1]s/htpasswd;
      proxy_pass %[3]s;
      proxy_set_header X-Remote-User $remote_user;
      proxy_set_header Authorization "";
      proxy_ssl_certificate %[4]s;
      proxy_ssl_certificate_key %[5]s;
      proxy_ssl_trusted_certificate %[6]s;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
    }
  }
}
`, dir, listen, strings.TrimSuffix(srv.URL(), "/"), pf.Cert, pf.Key, pf.CA)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var nginxLog bytes.Buffer
	cmd := exec.Command(nginx, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	cmd.Stderr = &nginxLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers go with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	proxyURL := "http://" + listen

	call := func(c *http.Client, method, url, user string, edit ...func(*http.Request)) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var body *strings.Reader
		if method == http.MethodPost {
			body = strings.NewReader("{}")
		} else {
			body = strings.NewReader("")
		}
		req, _ := http.NewRequestWithContext(ctx, method, url, body)
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
		}
		if user != "" {
			req.SetBasicAuth(user, user+"-pw")
		}
		for _, e := range edit {
			e(req)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Wait for nginx to listen (an event: its port answers).
	deadline := time.Now().Add(20 * time.Second)
	for call(http.DefaultClient, "GET", proxyURL+"/api/me", "") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start:\n%s", nginxLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	const pause = "/api/bridge/v1/bridge/pause"
	forge := func(user string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("X-Remote-User", user) }
	}
	for _, tc := range []struct {
		what, method, url, user string
		client                  *http.Client
		edit                    []func(*http.Request)
		want                    int
	}{
		{"no sign-on at the proxy", "GET", proxyURL + "/api/me", "", http.DefaultClient, nil, http.StatusUnauthorized},
		{"alice signed on asks who she is", "GET", proxyURL + "/api/me", "alice", http.DefaultClient, nil, http.StatusOK},
		{"alice acts", "POST", proxyURL + pause, "alice", http.DefaultClient, nil, http.StatusOK},
		{"alice's browser claims to be bob's proxy header", "POST", proxyURL + pause, "alice", http.DefaultClient, []func(*http.Request){forge("bob")}, http.StatusOK},
		{"bob (a viewer) acts", "POST", proxyURL + pause, "bob", http.DefaultClient, nil, http.StatusForbidden},
		{"mallory, signed on but no console user", "GET", proxyURL + "/api/targets", "mallory", http.DefaultClient, nil, http.StatusUnauthorized},
		{"a client names alice itself, no certificate", "POST", srv.URL() + pause[1:], "", mustAnonymous(t, site), []func(*http.Request){forge("alice")}, http.StatusUnauthorized},
		{"a viewer's certificate names alice", "POST", srv.URL() + pause[1:], "", load(sitepki.Viewer).HTTPClient(), []func(*http.Request){forge("alice")}, http.StatusUnauthorized},
	} {
		if got := call(tc.client, tc.method, tc.url, tc.user, tc.edit...); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.what, got, tc.want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if t.Failed() {
		t.Logf("nginx log:\n%s", nginxLog.String())
	}
	if got := strings.Join(actedFor, ","); got != "operator/alice,operator/alice" {
		t.Errorf("the service was called for %q, want operator/alice twice (never bob, never a forged name)", got)
	}
}

func mustAnonymous(t *testing.T, s sitepki.Site) *http.Client {
	t.Helper()
	c, err := s.AnonymousClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}
