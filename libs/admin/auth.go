package admin

import (
	"context"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/metadata"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

type identityKey struct{}

// viaKey holds the console identity a request came through, when the
// console acts for a person.
type viaKey struct{}

// forwardedViaKey carries that console identity from the gateway to the
// gRPC server (believed only in-process, like the forwarded caller).
const forwardedViaKey = "x-cefiot-forwarded-via"

// requestIdentity is the verified identity of an HTTPS request's client.
func requestIdentity(r *http.Request) (pki.Identity, bool) {
	id, ok := r.Context().Value(identityKey{}).(pki.Identity)
	return id, ok
}

// authenticate lets through requests of a verified identity of this site
// (and anyone to /healthz, the probe). Without TLS it lets everything
// through: -insecure-plaintext.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tls == nil || r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "a client certificate of this site is required", http.StatusUnauthorized)
			return
		}
		id, err := tlsx.PeerIdentity(*r.TLS)
		if err != nil {
			http.Error(w, "client certificate: "+err.Error(), http.StatusUnauthorized)
			return
		}
		if id.Site != s.site {
			http.Error(w, id.String()+" belongs to another site than "+s.site, http.StatusForbidden)
			return
		}
		ctx := r.Context()
		viaConsole := false
		if person := r.Header.Get(access.OnBehalfOf); person != "" {
			if id.Component != access.Console {
				http.Error(w, id.String()+" may not act for someone else: only the console may", http.StatusForbidden)
				return
			}
			p := pki.Identity{Site: s.site, Component: person}
			if err := p.Validate(); err != nil {
				http.Error(w, access.OnBehalfOf+": "+err.Error(), http.StatusBadRequest)
				return
			}
			ctx = context.WithValue(ctx, viaKey{}, id)
			id = p
			viaConsole = true
		}
		ctx = context.WithValue(ctx, camerasKey{}, requestScope(r, viaConsole))
		next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, identityKey{}, id)))
	})
}

// require lets through requests whose identity matches one of allowed.
func (s *Server) require(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.tls == nil {
			next.ServeHTTP(w, r)
			return
		}
		id, ok := requestIdentity(r)
		if !ok || !tlsx.Allowed(allowed, id) {
			http.Error(w, id.String()+" may not read "+r.URL.Path+" (allowed: "+strings.Join(allowed, ", ")+")", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// forwardCaller passes the HTTPS caller's verified identity to the gRPC
// server (see tlsx.CallerIdentity).
func forwardCaller(_ context.Context, r *http.Request) metadata.MD {
	markReached(r)
	md := metadata.Pairs(forwardedAddrKey, r.RemoteAddr)
	if id, ok := requestIdentity(r); ok {
		md.Set(tlsx.ForwardedCallerKey, id.String())
	}
	if via, ok := r.Context().Value(viaKey{}).(pki.Identity); ok {
		md.Set(forwardedViaKey, via.String())
	}
	if s, ok := r.Context().Value(camerasKey{}).(Scope); ok && s.Scoped {
		md.Set(forwardedCamerasKey, strings.Join(s.Cameras, ","))
	}
	return md
}

// forwardHeader is grpc-gateway's default header matcher, except that a
// client can never set the forwarded identity itself.
func forwardHeader(key string) (string, bool) {
	if k := strings.TrimPrefix(strings.ToLower(key), "grpc-metadata-"); k == tlsx.ForwardedCallerKey || k == forwardedAddrKey || k == forwardedViaKey || k == forwardedCamerasKey {
		return "", false
	}
	return runtime.DefaultHeaderMatcher(key)
}
