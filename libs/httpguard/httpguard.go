// Package httpguard refuses the requests a web page the operator happens to
// open could make to a cefiot port: cross-site requests that change state,
// and requests that reach the port under a foreign host name (DNS
// rebinding). Every HTTP admin port and the console wrap their handlers in
// a Guard.
//
// A state-changing request (any method but GET, HEAD and OPTIONS) is
// refused with 403 when its Origin (or the browser's Sec-Fetch-Site) says
// it comes from another origin, and with 415 when it has a body that is not
// application/json. Requiring JSON is also the custom-header defence: a
// page of another origin cannot send that content type without a CORS
// preflight, which no cefiot port ever approves. Clients that are not
// browsers (curl, cefiotctl) send neither header and are not affected.
//
// A request whose Host is not one of the server's names is refused with
// 421 (Misdirected Request). Behind TLS a rebinding page fails the
// certificate check before that; the Host check also holds in plaintext
// mode. Probes and scrapers that dial a pod's address (the kubelet,
// Prometheus) read with GET, which the Host check does not cover behind
// TLS.
package httpguard

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
)

// Guard checks requests before Next sees them.
type Guard struct {
	// Hosts returns the names (DNS names and IP addresses) the server
	// answers to; nil means every host is accepted.
	Hosts func() []string
	// TLS says the server is behind TLS (then the Host check covers only
	// state-changing requests; see the package comment).
	TLS bool
}

// Wrap returns next behind the guard.
func (g Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unsafe := !slices.Contains([]string{http.MethodGet, http.MethodHead, http.MethodOptions}, r.Method)
		if (unsafe || !g.TLS) && !g.hostAllowed(r.Host) {
			http.Error(w, "host "+r.Host+" is not a name of this server", http.StatusMisdirectedRequest)
			return
		}
		if !unsafe {
			next.ServeHTTP(w, r)
			return
		}
		if why := crossSite(r); why != "" {
			http.Error(w, "cross-site request refused: "+why, http.StatusForbidden)
			return
		}
		if hasBody(r) {
			ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || ct != "application/json" {
				http.Error(w, "only application/json is accepted (got "+strings.TrimSpace(r.Header.Get("Content-Type"))+")", http.StatusUnsupportedMediaType)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hostAllowed reports whether host (host[:port]) names this server.
func (g Guard) hostAllowed(host string) bool {
	if g.Hosts == nil {
		return true
	}
	name := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.ToLower(strings.Trim(name, "[]")), ".")
	for _, allowed := range g.Hosts() {
		allowed = strings.ToLower(allowed)
		if allowed == name {
			return true
		}
		// A certificate's wildcard name covers one label.
		if rest, ok := strings.CutPrefix(allowed, "*."); ok {
			if i := strings.IndexByte(name, '.'); i > 0 && name[i+1:] == rest {
				return true
			}
		}
	}
	return false
}

// crossSite says why r comes from another origin ("" if it does not).
func crossSite(r *http.Request) string {
	switch site := r.Header.Get("Sec-Fetch-Site"); site {
	case "", "same-origin", "none":
	default:
		return "Sec-Fetch-Site is " + site
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return ""
	}
	u, err := url.Parse(origin)
	if err != nil || origin == "null" {
		return "Origin " + origin
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if u.Scheme != scheme || !strings.EqualFold(u.Host, r.Host) {
		return "Origin " + origin + " is not " + scheme + "://" + r.Host
	}
	return ""
}

func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// LocalHosts are the names a plaintext server on listen answers to: the
// loopback names, the listen address and this machine's host name.
func LocalHosts(listen string) func() []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			names = append(names, h)
		}
	}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	return func() []string { return names }
}
