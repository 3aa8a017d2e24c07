package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/console/users"
)

// TestConsoleLogin logs in to the console as cefiot-local serves it (HTTPS,
// users with Argon2id hashes) with a browser that has no client
// certificate: the page loads, nothing else does before a login; a wrong
// password is refused and slowed down after three; the session cookie is
// HttpOnly, Secure and SameSite=Strict with an expiry; the console acts
// for the logged-in person (the service sees operator/alice, whatever the
// browser claims); a viewer may look but not act; API tokens made by an
// operator act as their role and name until revoked; logout ends the
// session.
func TestConsoleLogin(t *testing.T) {
	dir := t.TempDir()
	site := makeSite(t, dir)
	alice, _ := users.Hash("alice's password")
	bob, _ := users.Hash("bob's password")
	usersFile := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(usersFile, []byte("users:\n - {name: alice, role: operator, hash: '"+alice+"'}\n - {name: bob, role: viewer, hash: '"+bob+"'}\n"+
		" - {name: carol, role: viewer, hash: '"+bob+"', cameras: [door]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	people := &users.Store{Path: usersFile}
	var mu sync.Mutex
	var actedFor, leaked, scopes []string
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		actedFor = append(actedFor, r.Header.Get(access.OnBehalfOf))
		scopes = append(scopes, r.Header.Get(access.OnBehalfOfCameras))
		if r.Header.Get("Cookie") != "" || r.Header.Get("Origin") != "" {
			leaked = append(leaked, r.Header.Get("Cookie")+" "+r.Header.Get("Origin"))
		}
		mu.Unlock()
		_, _ = w.Write([]byte("{}"))
	}))
	defer target.Close()
	f := startConsole(t, site, target.URL, console.Security{Users: people, TokensFile: filepath.Join(dir, "tokens.yaml")})
	base, browser, do, expect := f.base, f.browser, f.do, f.expect
	const pause = "/api/bridge/v1/bridge/pause"

	b := browser()
	expect("the page before a login", do(b, "GET", "/", ""), http.StatusOK)
	expect("who am I before a login", do(b, "GET", "/api/me", ""), http.StatusUnauthorized)
	expect("the targets before a login", do(b, "GET", "/api/targets", ""), http.StatusUnauthorized)
	expect("an action before a login", do(b, "POST", pause, "{}"), http.StatusUnauthorized)

	resp := do(b, "POST", "/api/login", `{"user":"alice","password":"alice's password"}`)
	expect("alice logs in", resp, http.StatusOK)
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == console.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.MaxAge <= 0 || cookie.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, an expiry, path /", cookie)
	}
	expect("alice asks who she is", do(b, "GET", "/api/me", ""), http.StatusOK)
	expect("alice pauses the bridge from the console's page", do(b, "POST", pause, "{}", header("Origin", base)), http.StatusOK)
	expect("alice's page claims to act for someone else", do(b, "POST", pause, "{}", header(access.OnBehalfOf, "operator/admin")), http.StatusOK)
	expect("a page of another origin acts with alice's session", do(b, "POST", pause, "{}", header("Origin", "https://evil.example")), http.StatusForbidden)
	mu.Lock()
	got, leaks := strings.Join(actedFor, ","), append([]string(nil), leaked...)
	mu.Unlock()
	if got != "operator/alice,operator/alice" {
		t.Errorf("the service was called for %q, want operator/alice twice", got)
	}
	if len(leaks) > 0 {
		t.Errorf("the console passed the browser's cookie or origin on to the service: %q", leaks)
	}

	v := browser()
	expect("bob logs in", do(v, "POST", "/api/login", `{"user":"bob","password":"bob's password"}`), http.StatusOK)
	expect("bob looks", do(v, "GET", "/api/targets", ""), http.StatusOK)
	expect("bob acts", do(v, "POST", pause, "{}"), http.StatusForbidden)

	// API tokens: operators make them (the secret shown once), a token acts
	// as its role and name, may not manage tokens, and is refused once
	// revoked.
	makeToken := func(c *http.Client, name, role string) (id, secret string, code int) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/api/tokens", strings.NewReader(`{"name":"`+name+`","role":"`+role+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Token  struct{ ID string }
			Secret string
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return out.Token.ID, out.Secret, resp.StatusCode
	}
	_, viewerToken, code := makeToken(b, "ci-bot", "viewer")
	opID, opToken, code2 := makeToken(b, "deployer", "operator")
	if code != http.StatusOK || code2 != http.StatusOK || !strings.HasPrefix(viewerToken, "cft_") {
		t.Fatalf("making tokens: HTTP %d, %d", code, code2)
	}
	if _, _, code := makeToken(v, "bobs-bot", "operator"); code != http.StatusForbidden {
		t.Errorf("a viewer makes a token: HTTP %d, want 403", code)
	}
	bearer := func(tok string) func(*http.Request) { return header("Authorization", "Bearer "+tok) }
	anon := browser()
	expect("the viewer token looks", do(anon, "GET", "/api/targets", "", bearer(viewerToken)), http.StatusOK)
	expect("the viewer token acts", do(anon, "POST", pause, "{}", bearer(viewerToken)), http.StatusForbidden)
	expect("the operator token acts", do(anon, "POST", pause, "{}", bearer(opToken)), http.StatusOK)
	expect("the operator token lists tokens", do(anon, "GET", "/api/tokens", "", bearer(opToken)), http.StatusForbidden)
	expect("a forged token", do(anon, "GET", "/api/targets", "", bearer("cft_000000000000_nope")), http.StatusUnauthorized)
	req, _ := http.NewRequest(http.MethodGet, base+"/api/tokens", nil)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	listing, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(listing), "deployer") || strings.Contains(string(listing), strings.SplitN(strings.TrimPrefix(opToken, "cft_"), "_", 2)[1]) || strings.Contains(string(listing), "hash") {
		t.Errorf("token list %s: want the tokens without their secrets or hashes", listing)
	}
	expect("alice revokes the operator token", do(b, "DELETE", "/api/tokens/"+opID, ""), http.StatusNoContent)
	expect("the revoked token acts", do(anon, "POST", pause, "{}", bearer(opToken)), http.StatusUnauthorized)
	mu.Lock()
	if n := len(actedFor); n == 0 || actedFor[n-1] != "operator/deployer" {
		t.Errorf("the operator token's call was made for %q, want operator/deployer", actedFor)
	}
	mu.Unlock()

	// A viewer limited to a camera: the console names the camera to the
	// service, which answers only about it.
	c := browser()
	expect("carol (door only) logs in", do(c, "POST", "/api/login", `{"user":"carol","password":"bob's password"}`), http.StatusOK)
	expect("carol reads the bridge", do(c, "GET", "/api/bridge/v1/bridge/status", ""), http.StatusOK)
	mu.Lock()
	if n := len(scopes); n == 0 || scopes[n-1] != "door" || actedFor[n-1] != "viewer/carol" {
		t.Errorf("carol's call reached the service as %q limited to %q, want viewer/carol limited to door", actedFor, scopes)
	}
	if scopes[0] != "" {
		t.Errorf("alice (all cameras) was limited to %q", scopes[0])
	}
	mu.Unlock()

	// Logout ends the session; its cookie is worth nothing after.
	expect("alice logs out", do(b, "POST", "/api/logout", "{}"), http.StatusNoContent)
	expect("who am I after logout", do(b, "GET", "/api/me", ""), http.StatusUnauthorized)
	stale := browser()
	stale.Jar.SetCookies(mustURL(t, base), []*http.Cookie{{Name: console.SessionCookie, Value: cookie.Value}})
	expect("the old session cookie", do(stale, "GET", "/api/targets", ""), http.StatusUnauthorized)

	// Wrong passwords: refused, then slowed down (per user and address).
	m := browser()
	for i := range 3 {
		expect("a wrong password", do(m, "POST", "/api/login", `{"user":"alice","password":"guess `+string(rune('a'+i))+`"}`), http.StatusUnauthorized)
	}
	slowed := do(m, "POST", "/api/login", `{"user":"alice","password":"alice's password"}`)
	expect("a fourth attempt at once", slowed, http.StatusTooManyRequests)
	if slowed.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on a slowed login")
	}
	expect("an unknown user", do(browser(), "POST", "/api/login", `{"user":"mallory","password":"x"}`), http.StatusTooManyRequests) // the address is slowed too
	expect("a form instead of JSON", do(m, "POST", "/api/login", "user=alice", header("Content-Type", "application/x-www-form-urlencoded")), http.StatusUnsupportedMediaType)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
