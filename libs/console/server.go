package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/console/users"
	"github.com/cefiot/cefiot/libs/httpguard"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// Security is who the console is and whom it lets in.
type Security struct {
	// Server is the console's key pair (spiffe://<site>/console) and the
	// trust bundle its users' certificates must chain to.
	Server *tlsx.Source
	// Client calls the targets, with the console's identity in each site.
	Client tlsx.Sites
	// Users may log in with a password (nil: only client certificates
	// get in): the users file, read at each request, so a user removed or
	// changed counts at once. A browser without a certificate gets the
	// login page. Administrators manage the users at /api/users.
	Users *users.Store
	// Proxy, when set, lets a reverse proxy that signs people on (single
	// sign-on) name the user in a header. Users must be set too: the named
	// user's role comes from the users file.
	Proxy *TrustedProxy
	// TokensFile keeps the API tokens (empty: no tokens). A script calls
	// the console's /api/... with "Authorization: Bearer cft_..." and acts
	// as the token's role and name; operators make, list and revoke them
	// at /api/tokens.
	TokensFile string
	// Audit receives a record of each state-changing request the console
	// serves or refuses itself (nil: they are logged only). The requests
	// it passes on are audited by the services.
	Audit audit.Sink
}

// TrustedProxy is the reverse proxy the console believes: it shows the
// site's proxy certificate (access.Proxy), from one of Addrs (any address
// when empty), and names the signed-on user in Header.
type TrustedProxy struct {
	Header string
	Addrs  []string
}

// Server is a running console.
type Server struct {
	srv    *http.Server
	ln     net.Listener
	h      *Handler
	scheme string
}

// Start serves the console for targets on addr ("127.0.0.1:0" picks a free
// port) until Close. With sec (the default of cefiot-local) it serves
// HTTPS to clients with a certificate of its site: viewers and operators
// may look, only operators may act. Without, it serves plain HTTP to
// anyone and logs a warning.
func Start(addr string, targets []Target, logger *slog.Logger, sec *Security) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if sec != nil && sec.Proxy != nil && (sec.Users == nil || sec.Proxy.Header == "") {
		return nil, errors.New("console: a trusted proxy needs the users file (the role of whom it names) and its header")
	}
	var client *http.Client
	if sec != nil {
		client = sec.Client.HTTPClient()
	}
	h, err := New(targets, logger, client)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("console: listen %s: %w", addr, err)
	}
	s := &Server{ln: ln, h: h, scheme: "http", srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: tlsx.HandshakeLog(logger)}}
	serve := s.ln
	trail := auditor{sink: audit.Log{Logger: logger}, now: time.Now}
	s.srv.Handler = trail.wrap(httpguard.Guard{Hosts: httpguard.LocalHosts(ln.Addr().String())}.Wrap(h))
	if sec != nil {
		s.scheme = "https"
		trail.site = sec.Server.Identity().Site
		if sec.Audit != nil {
			trail.sink = sec.Audit
		}
		gate := &gate{site: trail.site, next: h, proxy: sec.Proxy}
		if sec.TokensFile != "" {
			gate.tokens = &tokens{path: sec.TokensFile, logger: logger}
		}
		tlsConfig := sec.Server.ServerConfig()
		if sec.Users != nil {
			gate.login = newLogin(trail.site, sec.Users.Load)
			gate.people = &people{store: sec.Users, logger: logger}
			tlsConfig = sec.Server.HTTPServerConfig() // a certificate if the browser has one
		}
		s.srv.Handler = trail.wrap(httpguard.Guard{Hosts: sec.Server.Names, TLS: true}.Wrap(gate))
		serve = tls.NewListener(ln, tlsConfig)
	} else {
		logger.Warn("SECURITY OFF: the console serves plain HTTP to anyone who reaches " + addr)
	}
	go func() {
		if err := s.srv.Serve(serve); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("console server", "err", err)
		}
	}()
	return s, nil
}

// gate lets a person of the site in, by client certificate or by a login
// session: viewers may look, operators act. The console then calls the
// services for that person (OnBehalfOf), so the services decide too. The
// page itself and the login are open to anyone who reaches the port.
type gate struct {
	site   string
	login  *login // nil: certificates only
	proxy  *TrustedProxy
	tokens *tokens // nil: no API tokens
	people *people // nil: no users to manage
	next   http.Handler
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.login != nil {
		switch r.URL.Path {
		case "/api/login":
			if r.Method == http.MethodPost {
				g.login.handleLogin(w, r)
				return
			}
		case "/api/logout":
			if r.Method == http.MethodPost {
				g.login.handleLogout(w, r)
				return
			}
		}
	}
	v, err := g.person(r)
	who, by := v.id, v.by
	if who.Component != "" {
		note := noteOf(r.Context())
		note.who, note.role = who.String(), access.Role(who)
	}
	if r.URL.Path == "/api/me" {
		g.me(w, v, err)
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/api/") && (r.Method == http.MethodGet || r.Method == http.MethodHead) && g.login != nil {
		g.next.ServeHTTP(w, r) // the page and its files: it asks /api/me, then logs in
		return
	}
	if err != nil {
		writeError(w, http.StatusUnauthorized, "console: "+err.Error())
		return
	}
	look := []string{access.OperatorPrefix + "*", access.AdminPrefix + "*", access.ViewerPrefix + "*"}
	act := access.Operators()
	allowed := look
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		allowed = act
	}
	if strings.HasPrefix(r.URL.Path, "/api/tokens") {
		allowed = act // the tokens are the operators' business, reading them too
	}
	if strings.HasPrefix(r.URL.Path, "/api/users") {
		allowed = access.Administrators()
	}
	if !tlsx.Allowed(allowed, who) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("console: %s may not %s %s", who, r.Method, r.URL.Path))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/tokens") {
		switch {
		case g.tokens == nil:
			writeError(w, http.StatusNotFound, "console: API tokens are off")
		case by == "token":
			writeError(w, http.StatusForbidden, "console: a token may not manage tokens; log in")
		default:
			g.tokens.serve(w, r, who)
		}
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/users") {
		switch {
		case g.people == nil:
			writeError(w, http.StatusNotFound, "console: there are no console users (certificates only)")
		case by == "token":
			writeError(w, http.StatusForbidden, "console: a token may not manage users; log in")
		default:
			g.people.serve(w, r, who)
		}
		return
	}
	g.next.ServeHTTP(w, r.WithContext(withPerson(r.Context(), person{component: who.Component, cameras: v.cameras})))
}

// visitor is who makes a request: their identity, how they got in, and
// the cameras they are limited to (nil: all).
type visitor struct {
	id      pki.Identity
	by      string
	cameras []string
}

// person is who makes r: the client certificate's identity if the browser
// showed one, else the logged-in user's.
func (g *gate) person(r *http.Request) (visitor, error) {
	if g.proxy != nil && r.Header.Get(g.proxy.Header) != "" {
		return g.signedOn(r)
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if g.tokens == nil {
			return visitor{}, errors.New("API tokens are off")
		}
		t, err := g.tokens.check(strings.TrimSpace(bearer))
		if err != nil {
			return visitor{}, err
		}
		return visitor{id: pki.Identity{Site: g.site, Component: t.Component()}, by: "token", cameras: t.Cameras}, nil
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		id, err := tlsx.PeerIdentity(*r.TLS)
		if err != nil {
			return visitor{id: id}, fmt.Errorf("client certificate: %w", err)
		}
		if id.Site != g.site {
			return visitor{id: id}, fmt.Errorf("%s belongs to another site than %s", id, g.site)
		}
		if id.Component == access.Proxy {
			return visitor{id: id}, errors.New("the proxy named no user")
		}
		cams, _ := pki.CamerasOf(r.TLS.PeerCertificates[0])
		return visitor{id: id, by: "certificate", cameras: cams}, nil
	}
	if g.login == nil {
		return visitor{}, errors.New("a client certificate is required")
	}
	if u, ok := g.login.sessionUser(r); ok {
		return visitor{id: pki.Identity{Site: g.site, Component: u.Component()}, by: "password", cameras: u.Cameras}, nil
	}
	return visitor{}, errors.New("log in first")
}

// signedOn is the user the trusted proxy names in its header: believed
// only from the proxy's certificate and addresses, and only for a user of
// the users file (whose role it gives).
func (g *gate) signedOn(r *http.Request) (visitor, error) {
	name := r.Header.Get(g.proxy.Header)
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return visitor{}, fmt.Errorf("%s is believed only from the trusted proxy, and this client shows no certificate", g.proxy.Header)
	}
	id, err := tlsx.PeerIdentity(*r.TLS)
	if err != nil || id.Site != g.site || id.Component != access.Proxy {
		return visitor{}, fmt.Errorf("%s is believed only from the trusted proxy (spiffe://%s/%s), not from %s", g.proxy.Header, g.site, access.Proxy, id)
	}
	if len(g.proxy.Addrs) > 0 {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if !slices.Contains(g.proxy.Addrs, host) {
			return visitor{}, fmt.Errorf("the proxy's certificate from %s, which is not a trusted proxy address", host)
		}
	}
	people, err := g.login.users()
	if err != nil {
		return visitor{}, err
	}
	u, ok := people.Find(name)
	if !ok {
		return visitor{}, fmt.Errorf("the proxy signed on %q, who is not a console user", name)
	}
	return visitor{id: pki.Identity{Site: g.site, Component: u.Component()}, by: "proxy", cameras: u.Cameras}, nil
}

// me answers who the browser is (GET /api/me): the page shows the user and
// what their role allows.
func (g *gate) me(w http.ResponseWriter, v visitor, err error) {
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		writeError(w, http.StatusUnauthorized, "console: "+err.Error())
		return
	}
	role, name, _ := strings.Cut(v.id.Component, "/")
	writeJSON(w, map[string]any{"user": name, "role": role, "identity": v.id.String(), "by": v.by, "logout": v.by == "password", "cameras": v.cameras})
}

// URL is the console's address, e.g. https://127.0.0.1:8080/.
func (s *Server) URL() string { return s.scheme + "://" + s.ln.Addr().String() + "/" }

// Close stops the server; open streams end.
func (s *Server) Close(ctx context.Context) error {
	s.h.Close()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}
