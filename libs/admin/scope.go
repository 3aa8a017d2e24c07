package admin

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// camerasKey holds the cameras an HTTPS caller is limited to.
type camerasKey struct{}

// forwardedCamerasKey carries them from the gateway to the gRPC server
// (believed only in-process).
const forwardedCamerasKey = "x-cefiot-forwarded-cameras"

// Scope is the cameras a caller may see: all of them unless Scoped.
type Scope struct {
	Scoped  bool
	Cameras []string
}

// Allows reports whether the caller may see camera.
func (s Scope) Allows(camera string) bool { return !s.Scoped || slices.Contains(s.Cameras, camera) }

// requestScope is the scope of an HTTPS request: its certificate's, or the
// one the console names for the person it acts for.
func requestScope(r *http.Request, viaConsole bool) Scope {
	if viaConsole {
		if v := r.Header.Get(access.OnBehalfOfCameras); v != "" {
			return Scope{Scoped: true, Cameras: strings.Split(v, ",")}
		}
		return Scope{}
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if cams, ok := pki.CamerasOf(r.TLS.PeerCertificates[0]); ok {
			return Scope{Scoped: true, Cameras: cams}
		}
	}
	return Scope{}
}

// CallerScope is the camera scope of the caller of a gRPC call or of an
// HTTPS request handled by Handle: services answer a scoped caller only
// about its cameras, and about another camera's frame as if it did not
// exist.
func CallerScope(ctx context.Context) Scope {
	if s, ok := ctx.Value(camerasKey{}).(Scope); ok {
		return s
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Scope{}
	}
	if p.Addr != nil && p.Addr.Network() == tlsx.InProcessNetwork {
		if v := metadata.ValueFromIncomingContext(ctx, forwardedCamerasKey); len(v) == 1 && v[0] != "" {
			return Scope{Scoped: true, Cameras: strings.Split(v[0], ",")}
		}
		return Scope{}
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
		if cams, ok := pki.CamerasOf(ti.State.PeerCertificates[0]); ok {
			return Scope{Scoped: true, Cameras: cams}
		}
	}
	return Scope{}
}
