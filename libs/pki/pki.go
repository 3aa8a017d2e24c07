// Package pki makes and reads a site's certificates. Each site is its own
// trust domain: one CA per site, and every component's certificate names
// its site and component in one URI SAN, spiffe://<site>/<component>, so a
// server can tell who calls it (a worker of this site, the site's bridge,
// an operator) from the certificate alone. Certificates serve both ends of
// a mutual-TLS connection (server and client auth) and live 90 days unless
// asked for less.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// MaxValidity is the longest a component certificate may live (and its
// default); rotation is routine, not an event.
const MaxValidity = 90 * 24 * time.Hour

// CAValidity is how long a site CA lives.
const CAValidity = 5 * 365 * 24 * time.Hour

// Scheme is the URI scheme of identities.
const Scheme = "spiffe"

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// Identity is who a certificate speaks for.
type Identity struct {
	Site      string // the trust domain
	Component string // e.g. scheduler, worker/enrich, bridge, operator/alice
}

// URI is the identity as a SPIFFE-style URI.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: Scheme, Host: id.Site, Path: "/" + id.Component}
}

func (id Identity) String() string { return id.URI().String() }

// Validate checks the site and component names.
func (id Identity) Validate() error {
	if !nameRE.MatchString(id.Site) || strings.Contains(id.Site, ".") {
		return fmt.Errorf("site %q: must be lower-case letters, digits or '-'", id.Site)
	}
	if id.Component == "" || len(id.Component) > 128 {
		return fmt.Errorf("component %q: must be 1 to 128 characters", id.Component)
	}
	for _, part := range splitPath(id.Component) {
		if !nameRE.MatchString(part) {
			return fmt.Errorf("component %q: each /-separated part must be lower-case letters, digits, '.' or '-'", id.Component)
		}
	}
	return nil
}

func splitPath(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

// IdentityOf reads the identity of a certificate: exactly one spiffe URI
// SAN.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == Scheme {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return Identity{}, fmt.Errorf("certificate %q carries %d %s URIs, want exactly one", cert.Subject.CommonName, len(found), Scheme)
	}
	return ParseIdentity(found[0].String())
}

// CA is a site's certificate authority.
type CA struct {
	Site string
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA makes the CA of site, valid from now for CAValidity.
func NewCA(site string, now time.Time) (*CA, error) {
	if err := (Identity{Site: site, Component: "ca"}).Validate(); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "cefiot CA " + site, Organization: []string{"cefiot"}, OrganizationalUnit: []string{site}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		URIs:                  []*url.URL{{Scheme: Scheme, Host: site}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Site: site, Cert: cert, Key: key}, nil
}

// Issued is a component's key pair, PEM-encoded.
type Issued struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
}

// IssueOption changes what Issue puts in a certificate.
type IssueOption func(*x509.Certificate) error

// camerasURN starts the URI SAN that limits a person to some cameras.
const camerasURN = "cefiot:cameras:"

var cameraID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// WithCameras limits the identity to cameras: the services answer it
// only about those (a viewer of the front door). The CA signs the scope,
// so the holder cannot widen it.
func WithCameras(cameras ...string) IssueOption {
	return func(c *x509.Certificate) error {
		if len(cameras) == 0 {
			return errors.New("cameras: name at least one")
		}
		for _, id := range cameras {
			if !cameraID.MatchString(id) {
				return fmt.Errorf("camera %q: letters, digits, '.', '_' or '-'", id)
			}
		}
		c.URIs = append(c.URIs, &url.URL{Scheme: "urn", Opaque: camerasURN + strings.Join(cameras, ",")})
		return nil
	}
}

// CamerasOf is the camera scope a certificate carries: scoped is false
// when it may see every camera.
func CamerasOf(cert *x509.Certificate) (cameras []string, scoped bool) {
	for _, u := range cert.URIs {
		if rest, ok := strings.CutPrefix(u.Opaque, camerasURN); u.Scheme == "urn" && ok {
			return strings.Split(rest, ","), true
		}
	}
	return nil, false
}

// Issue makes the certificate of component in the CA's site, for hosts
// (DNS names or IP addresses a server answers on), valid from now for
// validity (MaxValidity when 0; more is refused), with a new key.
func (ca *CA) Issue(component string, hosts []string, validity time.Duration, now time.Time, opts ...IssueOption) (*Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("key of %s: %w", component, err)
	}
	issued, err := ca.IssueFor(key.Public(), component, hosts, validity, now, opts...)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	issued.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return issued, nil
}

// IssueFor is Issue for a public key made elsewhere (a kubelet keeps the
// private key on its node): the result carries no KeyPEM.
func (ca *CA) IssueFor(pub crypto.PublicKey, component string, hosts []string, validity time.Duration, now time.Time, opts ...IssueOption) (*Issued, error) {
	id := Identity{Site: ca.Site, Component: component}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	if validity == 0 {
		validity = MaxValidity
	}
	if validity < 0 || validity > MaxValidity {
		return nil, fmt.Errorf("validity %v: must be at most %v", validity, MaxValidity)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: component, Organization: []string{"cefiot"}, OrganizationalUnit: []string{ca.Site}},
		NotBefore:    now.Add(-time.Minute).Truncate(time.Second),
		NotAfter:     now.Add(validity).Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id.URI()},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	for _, o := range opts {
		if err := o(tmpl); err != nil {
			return nil, fmt.Errorf("certificate of %s: %w", id, err)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issued{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Cert: cert}, nil
}

// CertPEM is the CA certificate, PEM-encoded (the site's trust bundle).
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// KeyPEM is the CA key, PEM-encoded.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParseCA reads a CA from its PEM certificate and key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := ParseCertificates(certPEM)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("CA key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key: not a signing key")
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, errors.New("CA certificate: not a CA")
	}
	var site string
	for _, u := range cert.URIs {
		if u.Scheme == Scheme {
			site = u.Host
		}
	}
	if site == "" {
		return nil, errors.New("CA certificate: no spiffe://<site> URI")
	}
	return &CA{Site: site, Cert: cert, Key: signer}, nil
}

// ParseCertificates reads every certificate of a PEM bundle.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate in PEM data")
	}
	return out, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // the system has no randomness: nothing is safe
	}
	return n
}

// ParseIdentity reads an identity written as its URI
// (spiffe://<site>/<component>).
func ParseIdentity(s string) (Identity, error) {
	u, err := url.Parse(s)
	if err != nil {
		return Identity{}, fmt.Errorf("identity %q: %w", s, err)
	}
	if u.Scheme != Scheme || len(u.Path) < 2 || u.Path[0] != '/' || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Port() != "" {
		return Identity{}, fmt.Errorf("identity %q: want spiffe://<site>/<component>", s)
	}
	id := Identity{Site: u.Host, Component: u.Path[1:]}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("identity %q: %w", s, err)
	}
	return id, nil
}
