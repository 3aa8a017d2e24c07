package console

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/httpguard"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// Security is who the console is and whom it lets in.
type Security struct {
	// Server is the console's key pair (spiffe://<site>/console) and the
	// trust bundle its users' certificates must chain to.
	Server *tlsx.Source
	// Client calls the targets, with the console's identity in each site.
	Client tlsx.Sites
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
	s.srv.Handler = httpguard.Guard{Hosts: httpguard.LocalHosts(ln.Addr().String())}.Wrap(h)
	if sec != nil {
		s.scheme = "https"
		s.srv.Handler = httpguard.Guard{Hosts: sec.Server.Names, TLS: true}.Wrap(authorize(sec.Server.Identity().Site, h))
		serve = tls.NewListener(ln, sec.Server.ServerConfig())
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

// authorize lets a person of site look (viewers, operators) and act
// (operators); the console's calls to the services are made with its own
// identity, so this is where a viewer is stopped.
func authorize(site string, next http.Handler) http.Handler {
	look := []string{access.OperatorPrefix + "*", access.ViewerPrefix + "*"}
	act := []string{access.OperatorPrefix + "*"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			writeError(w, http.StatusUnauthorized, "console: a client certificate is required")
			return
		}
		id, err := tlsx.PeerIdentity(*r.TLS)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "console: client certificate: "+err.Error())
			return
		}
		allowed := look
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			allowed = act
		}
		if id.Site != site || !tlsx.Allowed(allowed, id) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("console: %s may not %s %s", id, r.Method, r.URL.Path))
			return
		}
		next.ServeHTTP(w, r.WithContext(withPerson(r.Context(), id.Component)))
	})
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
