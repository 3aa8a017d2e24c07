package tlsx

import (
	"context"
	"path"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/cefiot/cefiot/libs/pki"
)

// Policy says which identities of the server's own site may call which
// gRPC methods. Callers of another site are refused whatever they are.
type Policy struct {
	Site string
	// Rules maps a full method ("/cefiot.v1.SchedulerService/DrainNode")
	// or a service prefix ending in "/" ("/cefiot.v1.SchedulerService/")
	// to the component patterns allowed (path.Match: "worker/*",
	// "operator/*"). The longest matching key wins.
	Rules map[string][]string
	// Default applies to methods no rule names (health, reflection).
	Default []string
}

// Check returns nil when id may call method, else a PermissionDenied error
// naming both.
func (p Policy) Check(method string, id pki.Identity) error {
	if id.Site != p.Site {
		return status.Errorf(codes.PermissionDenied, "%s may not call %s: it belongs to site %q, this is site %q", id, method, id.Site, p.Site)
	}
	allowed, key := p.Default, ""
	for k, v := range p.Rules {
		if (k == method || (strings.HasSuffix(k, "/") && strings.HasPrefix(method, k))) && len(k) > len(key) {
			allowed, key = v, k
		}
	}
	if Allowed(allowed, id) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s may not call %s (allowed: %s)", id, method, strings.Join(allowed, ", "))
}

// Allowed says whether id's component matches one of patterns
// (path.Match: "operator/*").
func Allowed(patterns []string, id pki.Identity) bool {
	for _, pattern := range patterns {
		if ok, _ := path.Match(pattern, id.Component); ok {
			return true
		}
	}
	return false
}

// ForwardedCallerKey is the gRPC metadata key in which a process's own REST
// gateway passes on the verified identity of its HTTPS caller. It is
// believed only on the in-process connection (see InProcessNetwork):
// anyone may send it over the network, and it is ignored there.
const ForwardedCallerKey = "x-cefiot-forwarded-caller"

// InProcessNetwork is the network name of connections that never leave the
// process (a bufconn listener the REST gateway dials).
const InProcessNetwork = "bufconn"

// CallerIdentity is the verified identity of a gRPC call's caller: the
// peer's certificate, or, on the in-process connection of the REST
// gateway, the identity the gateway forwards.
func CallerIdentity(ctx context.Context) (pki.Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return pki.Identity{}, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return pki.Identity{}, status.Error(codes.Unauthenticated, "not a TLS connection")
	}
	id, err := PeerIdentity(ti.State)
	if err != nil {
		return pki.Identity{}, status.Errorf(codes.Unauthenticated, "peer identity: %v", err)
	}
	if p.Addr == nil || p.Addr.Network() != InProcessNetwork {
		return id, nil
	}
	fwd := metadata.ValueFromIncomingContext(ctx, ForwardedCallerKey)
	if len(fwd) != 1 {
		return pki.Identity{}, status.Errorf(codes.Unauthenticated, "gateway call with %d forwarded callers, want 1", len(fwd))
	}
	caller, err := pki.ParseIdentity(fwd[0])
	if err != nil {
		return pki.Identity{}, status.Errorf(codes.Unauthenticated, "forwarded caller: %v", err)
	}
	return caller, nil
}

// UnaryInterceptor enforces the policy on unary calls.
func (p Policy) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		id, err := CallerIdentity(ctx)
		if err != nil {
			return nil, err
		}
		if err := p.Check(info.FullMethod, id); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor enforces the policy on streaming calls.
func (p Policy) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		id, err := CallerIdentity(ss.Context())
		if err != nil {
			return err
		}
		if err := p.Check(info.FullMethod, id); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}
