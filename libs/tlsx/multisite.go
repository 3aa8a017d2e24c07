package tlsx

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Sites is a client with one identity in each of several sites (an
// operator's or the console's): each handshake presents the key pair of
// the site whose CA the server asks for, and accepts a server of any of
// the sites.
type Sites []*Source

// ClientConfig picks the key pair by the CAs the server names.
func (ss Sites) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			for _, s := range ss {
				m := s.current()
				for _, want := range cri.AcceptableCAs {
					for _, have := range m.subjects {
						if bytes.Equal(want, have) {
							return m.cert, nil
						}
					}
				}
			}
			// None asked for: present nothing, and let the server say no.
			return &tls.Certificate{}, nil
		},
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			var errs []error
			for _, s := range ss {
				err := verifyChain(cs, s.current().roots, x509.ExtKeyUsageServerAuth)
				if err == nil {
					return nil
				}
				errs = append(errs, err)
			}
			return errors.Join(errs...)
		},
	}
}

// HTTPClient calls HTTPS endpoints of any of the sites.
func (ss Sites) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: ss.ClientConfig(), ForceAttemptHTTP2: true}}
}

// DialOption is the gRPC transport credential for servers of any of the
// sites.
func (ss Sites) DialOption() grpc.DialOption {
	return grpc.WithTransportCredentials(credentials.NewTLS(ss.ClientConfig()))
}
