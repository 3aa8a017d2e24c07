// Package tlsx gives every cefiot listener and client its mutual-TLS
// configuration, from a key pair and a trust bundle on disk that it reloads
// when the files change (rotation without a restart). Servers require a
// client certificate from the site's CA, clients verify the server against
// it, TLS 1.3 is preferred and 1.2 the minimum. The peer's identity
// (pki.Identity, from its certificate's spiffe URI) is what servers
// authorize on (see Authorize).
package tlsx

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cefiot/cefiot/libs/pki"
)

// Files name a component's key pair and its site's trust bundle (PEM).
type Files struct {
	Cert, Key, CA string
}

// ExpiryWarning is how long before its certificate expires a component
// starts warning.
const ExpiryWarning = 7 * 24 * time.Hour

type material struct {
	cert     *tls.Certificate
	leaf     *x509.Certificate
	identity pki.Identity
	roots    *x509.CertPool
	subjects [][]byte // raw subjects of the bundle's CAs
	stamp    string   // what the files looked like when read
}

// Source holds the current key pair and trust bundle, reloaded from Files.
type Source struct {
	files  Files
	logger *slog.Logger

	mu  sync.RWMutex
	cur *material

	expiry  prometheus.Gauge
	reloads *prometheus.CounterVec
}

// Load reads files once (an error names the file) and returns a Source;
// Watch keeps it current.
func Load(files Files, logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	s := &Source{
		files: files, logger: logger,
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cefiot_tls_certificate_expiry_timestamp_seconds", Help: "When this process's certificate expires (Unix time).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cefiot_tls_reloads_total", Help: "Reloads of the key pair and trust bundle, by result.",
		}, []string{"result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.expiry, s.reloads} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register TLS metrics: %w", err)
			}
		}
	}
	m, err := read(files)
	if err != nil {
		return nil, err
	}
	s.set(m)
	return s, nil
}

// stampOf fingerprints the files' contents (they are small), so any
// change is seen whatever the file system's time resolution.
func stampOf(files Files) string {
	h := sha256.New()
	for _, p := range []string{files.Cert, files.Key, files.CA} {
		b, _ := os.ReadFile(p) // a missing file shows in the next read's error
		fmt.Fprintf(h, "%s:%d:", p, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func read(files Files) (*material, error) {
	stamp := stampOf(files)
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return nil, fmt.Errorf("key pair %s, %s: %w", files.Cert, files.Key, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", files.Cert, err)
	}
	id, err := pki.IdentityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", files.Cert, err)
	}
	caPEM, err := os.ReadFile(files.CA)
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	cas, err := pki.ParseCertificates(caPEM)
	if err != nil {
		return nil, fmt.Errorf("trust bundle %s: %w", files.CA, err)
	}
	roots := x509.NewCertPool()
	var subjects [][]byte
	for _, c := range cas {
		roots.AddCert(c)
		subjects = append(subjects, c.RawSubject)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("certificate %s is not signed by the trust bundle %s: %w", files.Cert, files.CA, err)
	}
	pair.Leaf = leaf
	return &material{cert: &pair, leaf: leaf, identity: id, roots: roots, subjects: subjects, stamp: stamp}, nil
}

func (s *Source) set(m *material) {
	s.mu.Lock()
	s.cur = m
	s.mu.Unlock()
	s.expiry.Set(float64(m.leaf.NotAfter.Unix()))
}

func (s *Source) current() *material {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cur
}

// Identity is this process's own identity.
func (s *Source) Identity() pki.Identity { return s.current().identity }

// Names are the host names and addresses the current certificate is valid
// for as a server.
func (s *Source) Names() []string {
	leaf := s.current().leaf
	out := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// NotAfter is when the current certificate expires.
func (s *Source) NotAfter() time.Time { return s.current().leaf.NotAfter }

// Reload reads the files again if they changed. A failed read keeps the
// current material (and is returned).
func (s *Source) Reload() error {
	if stampOf(s.files) == s.current().stamp {
		return nil
	}
	m, err := read(s.files)
	if err != nil {
		s.reloads.WithLabelValues("error").Inc()
		return err
	}
	s.set(m)
	s.reloads.WithLabelValues("ok").Inc()
	s.logger.Info("TLS key pair and trust bundle reloaded", "identity", m.identity.String(), "not_after", m.leaf.NotAfter)
	return nil
}

// Watch reloads the files every interval until ctx ends, and warns once a
// day while the certificate expires within ExpiryWarning.
func (s *Source) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var warned time.Time
	for {
		if err := s.Reload(); err != nil {
			s.logger.Error("cannot reload the TLS files; keeping the current ones", "err", err)
		}
		if left := time.Until(s.NotAfter()); left < ExpiryWarning && time.Since(warned) > 24*time.Hour {
			s.logger.Warn("TLS certificate expires soon: renew it", "file", s.files.Cert, "expires_in", left.Round(time.Minute))
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ServerConfig requires and verifies a client certificate from the current
// trust bundle; each handshake uses the current key pair.
func (s *Source) ServerConfig() *tls.Config {
	return s.serverConfig(tls.RequireAndVerifyClientCert)
}

func (s *Source) serverConfig(auth tls.ClientAuthType) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			m := s.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS12,
				Certificates: []tls.Certificate{*m.cert},
				ClientAuth:   auth,
				ClientCAs:    m.roots,
				NextProtos:   []string{"h2", "http/1.1"},
			}, nil
		},
	}
}

// ClientConfig presents the current key pair and verifies the server's
// certificate chain against the current trust bundle (its name is not
// checked: identities are spiffe URIs, checked by the caller with
// PeerIdentity where it matters).
func (s *Source) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return s.current().cert, nil
		},
		// The chain is verified in VerifyConnection against the bundle of
		// the moment, so a rotated bundle takes effect without a restart.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyChain(cs, s.current().roots, x509.ExtKeyUsageServerAuth)
		},
	}
}

func verifyChain(cs tls.ConnectionState, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("peer certificate: %w", err)
	}
	_, err := pki.IdentityOf(cs.PeerCertificates[0])
	return err
}

// PeerIdentity is the identity of the verified peer of a connection.
func PeerIdentity(cs tls.ConnectionState) (pki.Identity, error) {
	if len(cs.VerifiedChains) == 0 && len(cs.PeerCertificates) == 0 {
		return pki.Identity{}, errors.New("no peer certificate")
	}
	return pki.IdentityOf(cs.PeerCertificates[0])
}

// ReloadInterval is how often processes look for rotated files.
const ReloadInterval = 5 * time.Second

// HandshakeLog is the error log of an HTTPS server: failed handshakes (a
// plaintext or foreign client) are routine on an exposed port, so they are
// logged at debug level.
func HandshakeLog(logger *slog.Logger) *log.Logger {
	return slog.NewLogLogger(logger.Handler(), slog.LevelDebug)
}
