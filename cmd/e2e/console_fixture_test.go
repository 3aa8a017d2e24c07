package e2e

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/harness/sitepki"
	"github.com/cefiot/cefiot/libs/logging"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// consoleFixture is a console as cefiot-local serves it (HTTPS, the site's
// console identity) in front of one target, "bridge", and browsers
// without a client certificate that keep cookies.
type consoleFixture struct {
	t    *testing.T
	site sitepki.Site
	base string
}

// startConsole starts the console for the site in dir with sec's users,
// tokens and audit (its server and client identities are filled in).
func startConsole(t *testing.T, site sitepki.Site, targetURL string, sec console.Security) *consoleFixture {
	t.Helper()
	src, err := site.Load(access.Console)
	if err != nil {
		t.Fatal(err)
	}
	sec.Server, sec.Client = src, tlsx.Sites{src}
	srv, err := console.Start("127.0.0.1:0", []console.Target{{Name: "bridge", URL: targetURL}}, logging.Discard(), &sec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return &consoleFixture{t: t, site: site, base: strings.TrimSuffix(srv.URL(), "/")}
}

// makeSite makes a site "edge" under dir.
func makeSite(t *testing.T, dir string) sitepki.Site {
	t.Helper()
	site, err := sitepki.Make(filepath.Join(dir, "edge"), "edge")
	if err != nil {
		t.Fatal(err)
	}
	return site
}

// browser is a client without a certificate, with a cookie jar.
func (f *consoleFixture) browser() *http.Client {
	f.t.Helper()
	c, err := f.site.AnonymousClient()
	if err != nil {
		f.t.Fatal(err)
	}
	c.Jar, _ = cookiejar.New(nil)
	return c
}

// do sends method path with a JSON body (if any), edited by edit, and
// returns the answer (its body closed).
func (f *consoleFixture) do(c *http.Client, method, path, body string, edit ...func(*http.Request)) *http.Response {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, f.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, e := range edit {
		e(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// expect fails the test unless resp has code.
func (f *consoleFixture) expect(what string, resp *http.Response, code int) {
	f.t.Helper()
	if resp.StatusCode != code {
		f.t.Errorf("%s: HTTP %d, want %d", what, resp.StatusCode, code)
	}
}
