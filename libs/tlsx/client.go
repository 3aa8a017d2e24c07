package tlsx

import (
	"crypto/tls"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// HTTPClient calls HTTPS endpoints of the site with this key pair (a plain
// client when s is nil: -insecure-plaintext).
func (s *Source) HTTPClient() *http.Client {
	if s == nil {
		return &http.Client{}
	}
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     s.ClientConfig(),
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}}
}

// ClientConfigOrNil is ClientConfig, or nil when s is nil (plaintext).
func (s *Source) ClientConfigOrNil() *tls.Config {
	if s == nil {
		return nil
	}
	return s.ClientConfig()
}

// DialOption is the gRPC transport credential of this key pair (plaintext
// when s is nil).
func (s *Source) DialOption() grpc.DialOption {
	if s == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(s.ClientConfig()))
}

// ServerCredentials are the gRPC server credentials of this key pair: a
// client certificate from the site's trust bundle is required.
func (s *Source) ServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(s.ServerConfig())
}

// Scheme is "https" with TLS and "http" without.
func (s *Source) Scheme() string {
	if s == nil {
		return "http"
	}
	return "https"
}

// HTTPServerConfig is ServerConfig for HTTP listeners, where a client may
// connect without a certificate so that a probe (the kubelet's) can read
// /healthz; every other path requires a verified one (see
// RequireIdentity). A certificate that is given must verify, so a client
// of another CA is refused in the handshake.
func (s *Source) HTTPServerConfig() *tls.Config {
	return s.serverConfig(tls.VerifyClientCertIfGiven)
}
