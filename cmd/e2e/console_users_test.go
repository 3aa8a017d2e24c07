package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/console"
	"github.com/cefiot/cefiot/libs/console/users"
)

// memoryTrail keeps the audit records the console appends.
type memoryTrail struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (m *memoryTrail) Append(_ context.Context, r audit.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
}

// find returns the records matching every non-empty field of want.
func (m *memoryTrail) find(want audit.Record) []audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []audit.Record
	for _, r := range m.recs {
		if (want.Who == "" || r.Who == want.Who) && (want.Action == "" || r.Action == want.Action) &&
			(want.Result == "" || r.Result == want.Result) && (want.Target == "" || r.Target == want.Target) &&
			(want.Code == "" || r.Code == want.Code) {
			out = append(out, r)
		}
	}
	return out
}

// TestConsoleUsersAndAudit: an administrator manages the console's users
// through its API (operators, viewers and tokens may not); a new user's
// password is generated and shown once; a role or camera change counts at
// once for a logged-in user, and a removed user's session ends; the last
// administrator cannot be removed. Every login (failed ones too), every
// change and every refusal of the console's is in its audit trail, with
// who, what, on what, from where and the result; what it passes on to a
// service is left to the service's trail.
func TestConsoleUsersAndAudit(t *testing.T) {
	dir := t.TempDir()
	site := makeSite(t, dir)
	adaHash, _ := users.Hash("ada's long password")
	aliceHash, _ := users.Hash("alice's long password")
	usersFile := filepath.Join(dir, "users.yaml")
	if err := os.WriteFile(usersFile, []byte("users:\n - {name: ada, role: admin, hash: '"+adaHash+"'}\n - {name: alice, role: operator, hash: '"+aliceHash+"'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var cameras []string
	target := newRecordingTarget(t, func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		cameras = append(cameras, r.Header.Get(access.OnBehalfOf)+"@"+r.Header.Get(access.OnBehalfOfCameras))
	})
	trail := &memoryTrail{}
	f := startConsole(t, site, target, console.Security{Users: &users.Store{Path: usersFile}, TokensFile: filepath.Join(dir, "tokens.yaml"), Audit: trail})
	login := func(user, password string) *http.Client {
		t.Helper()
		c := f.browser()
		f.expect(user+" logs in", f.do(c, "POST", "/api/login", `{"user":"`+user+`","password":"`+password+`"}`), http.StatusOK)
		return c
	}
	ada, alice := login("ada", "ada's long password"), login("alice", "alice's long password")
	f.expect("a wrong password", f.do(f.browser(), "POST", "/api/login", `{"user":"ada","password":"guess"}`), http.StatusUnauthorized)

	f.expect("an operator lists users", f.do(alice, "GET", "/api/users", ""), http.StatusForbidden)
	f.expect("an operator adds a user", f.do(alice, "POST", "/api/users", `{"name":"mallory","role":"admin"}`), http.StatusForbidden)
	f.expect("a bad role", f.do(ada, "POST", "/api/users", `{"name":"yara","role":"root"}`), http.StatusBadRequest)

	// ada adds yara, a viewer of the yard camera: the password comes back once.
	var made struct{ Password string }
	postJSON(t, ada, f.base+"/api/users", `{"name":"yara","role":"viewer","cameras":["yard"]}`, &made)
	if len(made.Password) < users.MinPasswordLength {
		t.Fatalf("the new user's generated password %q", made.Password)
	}
	yara := login("yara", made.Password)
	f.expect("yara reads the bridge", f.do(yara, "GET", "/api/bridge/v1/bridge/status", ""), http.StatusOK)
	f.expect("yara acts", f.do(yara, "POST", "/api/bridge/v1/bridge/pause", "{}"), http.StatusForbidden)

	// A change counts at once for the logged-in yara.
	f.expect("ada makes yara an operator of every camera", f.do(ada, "POST", "/api/users", `{"name":"yara","role":"operator"}`), http.StatusOK)
	f.expect("yara acts now", f.do(yara, "POST", "/api/bridge/v1/bridge/pause", "{}"), http.StatusOK)
	mu.Lock()
	got := strings.Join(cameras, " ")
	mu.Unlock()
	if got != "viewer/yara@yard operator/yara@" {
		t.Errorf("the service was called for %q, want viewer/yara@yard, then operator/yara@ (all cameras)", got)
	}
	if _, err := os.Stat(usersFile); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(usersFile); strings.Contains(string(b), made.Password) {
		t.Fatal("the generated password is stored in clear")
	}

	// A token acts as its role, and never manages users.
	var tok struct{ Secret string }
	postJSON(t, ada, f.base+"/api/tokens", `{"name":"ci","role":"operator"}`, &tok)
	f.expect("a token lists users", f.do(f.browser(), "GET", "/api/users", "", header("Authorization", "Bearer "+tok.Secret)), http.StatusForbidden)

	f.expect("ada removes yara", f.do(ada, "DELETE", "/api/users/yara", ""), http.StatusNoContent)
	f.expect("removed yara's session", f.do(yara, "GET", "/api/me", ""), http.StatusUnauthorized)
	f.expect("ada removes herself, the last administrator", f.do(ada, "DELETE", "/api/users/ada", ""), http.StatusConflict)
	f.expect("a page of another origin adds a user with ada's session", f.do(ada, "POST", "/api/users", `{"name":"eve","role":"admin"}`, header("Origin", "https://evil.example")), http.StatusForbidden)

	const adaID, aliceID = "spiffe://edge/admin/ada", "spiffe://edge/operator/alice"
	for _, want := range []audit.Record{
		{Who: adaID, Action: "POST /api/login", Result: audit.ResultOK, Target: "user=ada"},
		{Who: "unauthenticated", Action: "POST /api/login", Result: audit.ResultRefused, Target: "user=ada", Code: "401"},
		{Who: aliceID, Action: "POST /api/users", Result: audit.ResultRefused, Code: "403"},
		{Who: adaID, Action: "POST /api/users", Result: audit.ResultRefused, Target: "user=yara role=root", Code: "400"},
		{Who: adaID, Action: "POST /api/users", Result: audit.ResultOK, Target: "user=yara role=viewer cameras=yard"},
		{Who: adaID, Action: "POST /api/users", Result: audit.ResultOK, Target: "user=yara role=operator"},
		{Who: "spiffe://edge/viewer/yara", Action: "POST /api/bridge/v1/bridge/pause", Result: audit.ResultRefused, Code: "403"},
		{Who: adaID, Action: "POST /api/tokens", Result: audit.ResultOK},
		{Who: adaID, Action: "DELETE /api/users/yara", Result: audit.ResultOK, Target: "user=yara"},
		{Who: adaID, Action: "DELETE /api/users/ada", Result: audit.ResultRefused, Code: "409"},
		{Who: "unauthenticated", Action: "POST /api/users", Result: audit.ResultRefused, Code: "403"},
	} {
		if len(trail.find(want)) != 1 {
			t.Errorf("audit trail: want one record %+v, have %d", want, len(trail.find(want)))
		}
	}
	if n := len(trail.find(audit.Record{Action: "POST /api/bridge/v1/bridge/pause", Result: audit.ResultOK})); n != 0 {
		t.Errorf("the console audited %d calls it passed on (the service audits them)", n)
	}
	for _, r := range trail.find(audit.Record{}) {
		if r.Service != "console" || r.Site != "edge" || r.From == "" || r.Time.IsZero() {
			t.Errorf("audit record without its service, site, address or time: %+v", r)
		}
		if strings.Contains(r.Target+r.Message, made.Password) || strings.Contains(r.Target+r.Message, "long password") {
			t.Errorf("a password in the audit trail: %+v", r)
		}
	}
}

// newRecordingTarget is a service that answers {} and shows each request
// to seen; it returns its URL.
func newRecordingTarget(t *testing.T, seen func(*http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen(r)
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// postJSON posts body to url and decodes the 200 answer into out.
func postJSON(t *testing.T, c *http.Client, url, body string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s %s: HTTP %d", url, body, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
