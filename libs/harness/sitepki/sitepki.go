// Package sitepki makes the PKI of a site for the local stacks, tests and
// benchmarks: the site's CA and a certificate for every component that
// runs there, for 127.0.0.1 and localhost, in one directory (the layout of
// pki.Paths, as cefiot-pki init makes it).
package sitepki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// The people of a test site.
const (
	// Operator may act (operator/local).
	Operator = access.OperatorPrefix + "local"
	// Viewer may only look (viewer/local).
	Viewer = access.ViewerPrefix + "local"
	// Admin may also define and delete workloads (admin/local).
	Admin = access.AdminPrefix + "local"
)

// Components are the identities issued in every site.
func Components() []string {
	out := []string{access.Scheduler, access.Etcd, access.Kafka, access.Postgres, access.Console, access.Proxy, Operator, Viewer, Admin}
	for _, k := range pipeline.Kinds() {
		out = append(out, access.Worker(k))
	}
	return out
}

// Site is a site's PKI directory.
type Site struct {
	Name, Dir string
}

// Make makes (or keeps) site's CA in dir and issues every component's
// certificate afresh, for 127.0.0.1, localhost and hosts.
func Make(dir, site string, hosts ...string) (Site, error) {
	return MakeWithBoards(dir, site, nil, hosts...)
}

// MakeWithBoards is Make, and also issues each board of boards its own
// credential (node/<board>), which its bridge shows to the cloud.
func MakeWithBoards(dir, site string, boards []string, hosts ...string) (Site, error) {
	components := Components()
	for _, b := range boards {
		components = append(components, access.Node(b))
	}
	if _, _, _, err := pki.InitSite(dir, site, components, append([]string{"127.0.0.1", "localhost"}, hosts...), 0, time.Now()); err != nil {
		return Site{}, fmt.Errorf("PKI of site %s: %w", site, err)
	}
	return Site{Name: site, Dir: dir}, nil
}

// BoardArgs are the bridge flags that make board's bridge show the board's
// own credential to the cloud.
func (s Site) BoardArgs(board string) []string {
	f := s.Files(access.Node(board))
	return []string{"-cloud-tls-cert", f.Cert, "-cloud-tls-key", f.Key}
}

// Identity is component's identity in the site.
func (s Site) Identity(component string) pki.Identity {
	return pki.Identity{Site: s.Name, Component: component}
}

// Files are component's files.
func (s Site) Files(component string) tlsx.Files { return tlsx.FilesIn(s.Dir, component) }

// Args are the flags that give a process component's files.
func (s Site) Args(component string) []string { return s.Files(component).Args() }

// ServiceArgs are the flags of a process of binary bin (scheduler or a
// worker kind).
func (s Site) ServiceArgs(bin string) []string {
	if bin == "scheduler" {
		return s.Args(access.Scheduler)
	}
	return s.Args(access.Worker(bin))
}

// Load loads component's key pair (quietly: for clients).
func (s Site) Load(component string) (*tlsx.Source, error) {
	src, err := tlsx.Load(s.Files(component), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		return nil, fmt.Errorf("identity %s of site %s: %w", component, s.Name, err)
	}
	return src, nil
}

// Identity loads component's key pair in each of sites, as one client.
func Identity(component string, sites ...Site) (tlsx.Sites, error) {
	var out tlsx.Sites
	for _, s := range sites {
		src, err := s.Load(component)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

// Foreign makes an impostor of site in dir: its own CA that claims the same
// site name, and the same components. Servers of the real site must refuse
// every one of its certificates.
func Foreign(dir, site string) (Site, error) { return Make(dir, site) }

// KafkaTLS is the security of a Kafka cluster of this site whose clients
// may also come from the sites of others (a cloud cluster: every site
// whose bridge writes to it).
func (s Site) KafkaTLS(others ...Site) *kafkalocal.TLS {
	f := s.Files(access.Kafka)
	t := &kafkalocal.TLS{Cert: f.Cert, Key: f.Key, CA: f.CA, TrustBundles: []string{f.CA}}
	for _, o := range others {
		t.TrustBundles = append(t.TrustBundles, o.Files(access.Kafka).CA)
	}
	return t
}

// AnonymousClient trusts the site's CA but presents no certificate: a
// kubelet probe, or a stranger with a browser.
func (s Site) AnonymousClient() (*http.Client, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("CA of site %s: %w", s.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA of site %s: no certificate", s.Name)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}
