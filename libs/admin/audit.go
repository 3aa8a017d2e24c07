package admin

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/audit"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// forwardedAddrKey carries the HTTPS caller's address from the gateway to
// the gRPC server (believed, like the forwarded caller, only in-process).
const forwardedAddrKey = "x-cefiot-forwarded-addr"

// SetAudit sends the audit records of the server's state-changing calls to
// sink (until then they are logged only).
func (s *Server) SetAudit(sink audit.Sink) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.audit = sink
}

func (s *Server) auditSink() audit.Sink {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.audit
}

// audited reports whether method changes state: the methods the policy
// names one by one (the rest of an API is read-only).
func (s *Server) audited(method string) bool {
	_, ok := s.policy.Rules[method]
	return ok && !strings.HasSuffix(method, "/")
}

// auditInterceptor records every state-changing call, refused ones too: it
// runs before authorization.
func (s *Server) auditInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !s.audited(info.FullMethod) {
			return handler(ctx, req)
		}
		resp, err := handler(ctx, req)
		r := s.record(info.FullMethod)
		r.Target = audit.Target(req)
		r.Who, r.Role = "unauthenticated", "none"
		if id, idErr := tlsx.CallerIdentity(ctx); idErr == nil {
			r.Who, r.Role = id.String(), access.Role(id)
		}
		r.From, r.Via = callerAddr(ctx), callerVia(ctx)
		code := status.Code(err)
		r.Code = code.String()
		switch {
		case err == nil:
			r.Result = audit.ResultOK
		case code == codes.PermissionDenied || code == codes.Unauthenticated:
			r.Result, r.Message = audit.ResultRefused, status.Convert(err).Message()
		default:
			r.Result, r.Message = audit.ResultFailed, status.Convert(err).Message()
		}
		s.auditSink().Append(ctx, r)
		return resp, err
	}
}

func (s *Server) record(action string) audit.Record {
	return audit.Record{Time: time.Now().UTC(), Site: s.site, Service: s.service, Action: action}
}

// callerAddr is the network address of a gRPC call's caller (the HTTPS
// caller's, for a call through the gateway).
func callerAddr(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if p.Addr.Network() == tlsx.InProcessNetwork {
		if v := metadata.ValueFromIncomingContext(ctx, forwardedAddrKey); len(v) == 1 {
			return v[0]
		}
	}
	return p.Addr.String()
}

// callerVia is the console a gateway call came through for a person ("" if
// none; believed only in-process).
func callerVia(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); !ok || p.Addr == nil || p.Addr.Network() != tlsx.InProcessNetwork {
		return ""
	}
	if v := metadata.ValueFromIncomingContext(ctx, forwardedViaKey); len(v) == 1 {
		return v[0]
	}
	return ""
}

// reachedKey marks an HTTP request the gateway passed on to gRPC (whose
// interceptor audits it).
type reachedKey struct{}

// auditRefusals records the state-changing HTTP requests refused before
// they reached a gRPC method: by the guard (another origin, not JSON, a
// foreign host) or by authentication and authorization.
func (s *Server) auditRefusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains([]string{http.MethodGet, http.MethodHead, http.MethodOptions}, r.Method) {
			next.ServeHTTP(w, r)
			return
		}
		reached := new(bool)
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), reachedKey{}, reached)))
		if *reached || sw.code < 400 {
			return
		}
		rec := s.record(r.Method + " " + r.URL.Path)
		rec.Who, rec.Role = "unauthenticated", "none"
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			if id, err := tlsx.PeerIdentity(*r.TLS); err == nil {
				rec.Who, rec.Role = id.String(), access.Role(id)
			}
		}
		rec.From, rec.Result, rec.Code = r.RemoteAddr, audit.ResultRefused, strconv.Itoa(sw.code)
		if sw.code >= 500 {
			rec.Result = audit.ResultFailed
		}
		s.auditSink().Append(r.Context(), rec)
	})
}

// markReached tells auditRefusals that the gateway passed r on to gRPC.
func markReached(r *http.Request) {
	if reached, ok := r.Context().Value(reachedKey{}).(*bool); ok {
		*reached = true
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
