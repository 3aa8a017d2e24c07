package check

import (
	"slices"
	"strings"
	"time"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"github.com/cefiot/cefiot/libs/pki"
)

// The limits a Certificate must keep (docs/security.md): at most 90 days,
// renewed before the services' 7-day expiry warning.
const (
	maxCertificateDuration = 90 * 24 * time.Hour
	minRenewBefore         = 7 * 24 * time.Hour
)

// secretPrefix starts the Secret of every component's key pair.
const secretPrefix = "cefiot-tls-"

// certificates checks the cert-manager Certificates of one site's namespace,
// if it has any (without them the Secrets come from cefiot-pki): every
// cefiot-tls-* Secret a workload mounts is issued, and no other; each
// Certificate names its site and component as cefiot's CA does
// (spiffe://<site>/<component>, CN=<component>, OU=<site>, O=cefiot), lives
// at most 90 days, is renewed at least 7 days before expiry, serves and
// authenticates (server and client auth), and is signed by an Issuer of
// the namespace that holds a CA.
func (p *policy) certificates(ns string) {
	certs := map[string]*certmanagerv1.Certificate{}
	for _, c := range p.set.Certificates {
		if c.Namespace == ns {
			certs[c.Spec.SecretName] = c
		}
	}
	if len(certs) == 0 {
		return
	}
	site, ok := p.siteName(ns)
	if !ok {
		p.fail("namespace "+ns, "Certificates but no site name")
		return
	}
	mounted := map[string]string{}
	for _, w := range p.set.Workloads {
		if w.Namespace != ns {
			continue
		}
		for _, v := range w.Template.Spec.Volumes {
			if v.Secret != nil && strings.HasPrefix(v.Secret.SecretName, secretPrefix) {
				mounted[v.Secret.SecretName] = w.ID()
			}
		}
	}
	// A CloudNativePG Cluster mounts its server certificate's Secret.
	for _, cl := range p.set.Clusters {
		if cl.Namespace == ns && cl.Spec.Certificates != nil && strings.HasPrefix(cl.Spec.Certificates.ServerTLSSecret, secretPrefix) {
			mounted[cl.Spec.Certificates.ServerTLSSecret] = "Cluster " + ns + "/" + cl.Name
		}
	}
	for _, secret := range sortedKeys(mounted) {
		if certs[secret] == nil {
			p.fail(mounted[secret], "mounts Secret %s, which no Certificate of namespace %s issues", secret, ns)
		}
	}
	for _, secret := range sortedKeys(certs) {
		c := certs[secret]
		id := "Certificate " + ns + "/" + c.Name
		if _, ok := mounted[secret]; !ok {
			p.fail(id, "issues Secret %s, which no workload mounts (an identity nobody needs)", secret)
		}
		p.certificate(id, ns, site, c)
	}
}

func (p *policy) certificate(id, ns, site string, c *certmanagerv1.Certificate) {
	s := c.Spec
	component := s.CommonName
	if want := secretPrefix + pki.FileBase(component); s.SecretName != want {
		p.fail(id, "spec.secretName %s, want %s for component %q", s.SecretName, want, component)
	}
	if want := (pki.Identity{Site: site, Component: component}).String(); !slices.Equal(s.URIs, []string{want}) {
		p.fail(id, "spec.uris %v, want [%s]", s.URIs, want)
	}
	if s.Subject == nil || !slices.Equal(s.Subject.Organizations, []string{"cefiot"}) || !slices.Equal(s.Subject.OrganizationalUnits, []string{site}) {
		p.fail(id, "spec.subject must be O=cefiot, OU=%s (Kafka's principal is the subject)", site)
	}
	if s.Duration == nil || s.Duration.Duration > maxCertificateDuration {
		p.fail(id, "spec.duration %v: at most %v", s.Duration, maxCertificateDuration)
	}
	if s.RenewBefore == nil || s.RenewBefore.Duration < minRenewBefore {
		p.fail(id, "spec.renewBefore %v: at least %v", s.RenewBefore, minRenewBefore)
	}
	for _, u := range []certmanagerv1.KeyUsage{certmanagerv1.UsageServerAuth, certmanagerv1.UsageClientAuth} {
		if !slices.Contains(s.Usages, u) {
			p.fail(id, "spec.usages lacks %q (every identity both serves and calls)", u)
		}
	}
	for _, name := range s.DNSNames {
		if strings.Contains(name, ".svc") && !strings.HasSuffix(name, "."+ns+".svc") {
			p.fail(id, "spec.dnsNames %q is not in namespace %s", name, ns)
		}
		// The brokers' names are checked by librdkafka with OpenSSL, which
		// matches a wildcard only with two labels or more after it (Go, the
		// other clients' TLS, matches it: only a real cluster showed it).
		if rest, ok := strings.CutPrefix(name, "*."); ok && component == "kafka" && !strings.Contains(rest, ".") {
			p.fail(id, "spec.dnsNames %q: a wildcard with one label after it matches no name for OpenSSL; name each broker (kafka-0.%s)", name, rest)
		}
	}
	if s.IssuerRef.Kind != "Issuer" || !p.caIssuer(ns, s.IssuerRef.Name) {
		p.fail(id, "spec.issuerRef %s %s: want an Issuer of namespace %s with a CA", s.IssuerRef.Kind, s.IssuerRef.Name, ns)
	}
}

func (p *policy) caIssuer(ns, name string) bool {
	for _, is := range p.set.Issuers {
		if is.Namespace == ns && is.Name == name {
			return is.Spec.CA != nil && is.Spec.CA.SecretName != ""
		}
	}
	return false
}

// siteName is the site the services of namespace ns run as.
func (p *policy) siteName(ns string) (string, bool) {
	for _, w := range p.set.Workloads {
		if w.Namespace != ns {
			continue
		}
		for i := range w.Template.Spec.Containers {
			c := &w.Template.Spec.Containers[i]
			service := p.facts.Service(c.Image)
			if service == "" {
				continue
			}
			env, _ := p.set.ContainerEnv(ns, c)
			if v, ok := env[EnvName("site")]; ok {
				return v.Value, true
			}
			return p.facts.Flags[service]["site"], true
		}
	}
	return "", false
}
