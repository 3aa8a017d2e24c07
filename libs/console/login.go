package console

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/cefiot/cefiot/libs/console/users"
	"github.com/cefiot/cefiot/libs/pki"
)

// SessionCookie is the console's session cookie: HttpOnly, Secure,
// SameSite=Strict, for SessionTTL.
const SessionCookie = "cefiot_session"

// SessionTTL is how long a login lasts.
const SessionTTL = 12 * time.Hour

// sessions are the logged-in users, by session id (in memory: a console
// restart logs everyone out).
type sessions struct {
	mu   sync.Mutex
	byID map[string]session
}

type session struct {
	user    users.User
	expires time.Time
}

func (s *sessions) create(u users.User, now time.Time) (string, time.Time, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, err
	}
	id := base64.RawURLEncoding.EncodeToString(raw)
	exp := now.Add(SessionTTL)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID == nil {
		s.byID = map[string]session{}
	}
	for k, v := range s.byID { // forget the expired ones
		if now.After(v.expires) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = session{user: u, expires: exp}
	return id, exp, nil
}

func (s *sessions) get(id string, now time.Time) (users.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byID[id]
	if !ok || now.After(v.expires) {
		delete(s.byID, id)
		return users.User{}, false
	}
	return v.user, true
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// throttle slows down failed logins, per user and per address: after
// freeFailures failures in a row, each next attempt must wait, 1 s
// doubling up to maxLoginWait.
type throttle struct {
	mu    sync.Mutex
	fails map[string]failures
}

type failures struct {
	n    int
	last time.Time
}

const (
	freeFailures = 3
	maxLoginWait = time.Minute
)

// wait is how long the attempt for keys must still wait.
func (t *throttle) wait(now time.Time, keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		f := t.fails[k]
		if f.n < freeFailures {
			continue
		}
		d := min(time.Second<<min(f.n-freeFailures, 6), maxLoginWait)
		longest = max(longest, f.last.Add(d).Sub(now))
	}
	return longest
}

func (t *throttle) fail(now time.Time, keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fails == nil {
		t.fails = map[string]failures{}
	}
	for _, k := range keys {
		t.fails[k] = failures{n: t.fails[k].n + 1, last: now}
	}
}

func (t *throttle) succeed(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.fails, k)
	}
}

// login is the console's password login (POST /api/login, JSON
// {"user","password"}), logout (POST /api/logout) and who-am-I (GET
// /api/me).
type login struct {
	site string
	// users reads the users file: at each request, so users added,
	// changed or removed (through the console, a file edit, a renewed
	// Secret) count without a restart.
	users    func() (*users.File, error)
	sessions sessions
	throttle throttle
	now      func() time.Time
	// dummyHash is verified for an unknown user, so the answer takes as
	// long as for a known one.
	dummyHash string
}

func newLogin(site string, f func() (*users.File, error)) *login {
	h, _ := users.Hash("no one's password") // a failure leaves it empty: Verify is then quick, and still false
	return &login{site: site, users: f, now: time.Now, dummyHash: h}
}

// identity is u's identity in the site, as the audit trail names them.
func (l *login) identity(u users.User) string {
	return pki.Identity{Site: l.site, Component: u.Component()}.String()
}

func (l *login) handleLogin(w http.ResponseWriter, r *http.Request) {
	var in struct{ User, Password string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&in); err != nil || in.User == "" {
		writeError(w, http.StatusBadRequest, "login: want JSON {\"user\": ..., \"password\": ...}")
		return
	}
	note := noteOf(r.Context())
	note.target = "user=" + in.User
	addr, _, _ := net.SplitHostPort(r.RemoteAddr)
	keys := []string{"user:" + in.User, "addr:" + addr}
	now := l.now()
	if wait := l.throttle.wait(now, keys...); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "login: too many failed attempts; try again in "+wait.Round(time.Second).String())
		return
	}
	people, err := l.users()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "login: "+err.Error())
		return
	}
	u, ok := people.Find(in.User)
	if !ok || !users.Verify(u.Hash, in.Password) {
		if !ok {
			users.Verify(l.dummyHash, in.Password) // the same time for an unknown user
		}
		l.throttle.fail(now, keys...)
		writeError(w, http.StatusUnauthorized, "login: wrong user or password")
		return
	}
	note.who, note.role = l.identity(u), u.Role
	l.throttle.succeed(keys...)
	id, exp, err := l.sessions.create(u, now)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "login: "+err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", Expires: exp, MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, map[string]string{"user": u.Name, "role": u.Role, "identity": u.Component(), "by": "password"})
}

func (l *login) handleLogout(w http.ResponseWriter, r *http.Request) {
	if u, ok := l.sessionUser(r); ok {
		note := noteOf(r.Context())
		note.who, note.role, note.target = l.identity(u), u.Role, "user="+u.Name
	}
	if c, err := r.Cookie(SessionCookie); err == nil {
		l.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// sessionUser is the logged-in user of r, if any, as the users file has
// them now: a user removed since their login is logged out, and a changed
// role or camera list counts at once.
func (l *login) sessionUser(r *http.Request) (users.User, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return users.User{}, false
	}
	u, ok := l.sessions.get(c.Value, l.now())
	if !ok {
		return users.User{}, false
	}
	people, err := l.users()
	if err != nil {
		return users.User{}, false
	}
	now, ok := people.Find(u.Name)
	if !ok || now.Hash == "" {
		l.sessions.remove(c.Value)
		return users.User{}, false
	}
	return now, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
