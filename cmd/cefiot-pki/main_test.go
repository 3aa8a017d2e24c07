package main

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/cefiot/cefiot/libs/pki"
)

func TestInitIssueAndSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "edge")
	var out strings.Builder
	if err := run(context.Background(), []string{"init", "-site", "edge", "-dir", dir, "-components", "scheduler,worker/enrich"}, &out); err != nil {
		t.Fatal(err)
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	// A second init keeps the CA (certificates issued before stay valid).
	if err := run(context.Background(), []string{"init", "-site", "edge", "-dir", dir, "-components", "scheduler"}, &out); err != nil {
		t.Fatal(err)
	}
	if caAfter, _ := os.ReadFile(filepath.Join(dir, "ca.crt")); string(caAfter) != string(caBefore) {
		t.Fatal("init replaced an existing CA")
	}
	if err := run(context.Background(), []string{"issue", "-site", "edge", "-dir", dir, "-component", "operator/alice"}, &out); err != nil {
		t.Fatal(err)
	}
	cas, err := pki.ParseCertificates(caBefore)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cas[0])
	for _, c := range []string{"scheduler", "worker/enrich", "operator/alice"} {
		cert, key, _ := pki.Paths(dir, c)
		b, err := os.ReadFile(cert)
		if err != nil {
			t.Fatal(err)
		}
		certs, err := pki.ParseCertificates(b)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := pki.IdentityOf(certs[0]); err != nil || id.Component != c || id.Site != "edge" {
			t.Fatalf("%s: identity %v %v", c, id, err)
		}
		if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s key mode %v %v", c, fi.Mode(), err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "ca.key")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v", fi.Mode())
	}
	// Another site's init refuses this directory's CA.
	if err := run(context.Background(), []string{"init", "-site", "yard", "-dir", dir}, &out); err == nil {
		t.Fatal("init of site yard accepted site edge's CA")
	}

	out.Reset()
	if err := run(context.Background(), []string{"k8s-secrets", "-site", "edge", "-dir", dir, "-namespace", "cefiot-edge"}, &out); err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(out.String()))
	names := map[string]bool{}
	for {
		var s struct {
			Kind, Type string
			Metadata   struct{ Name, Namespace string }
			StringData map[string]string `yaml:"stringData"`
		}
		if err := dec.Decode(&s); err != nil {
			break
		}
		if s.Kind != "Secret" || s.Type != "kubernetes.io/tls" || s.Metadata.Namespace != "cefiot-edge" || s.StringData["tls.key"] == "" || s.StringData["ca.crt"] != string(caBefore) {
			t.Fatalf("secret %+v", s.Metadata)
		}
		if strings.Contains(s.StringData["tls.key"]+s.StringData["tls.crt"], string(mustRead(t, filepath.Join(dir, "ca.key")))) {
			t.Fatal("a Secret carries the CA key")
		}
		names[s.Metadata.Name] = true
	}
	for _, want := range []string{"cefiot-tls-scheduler", "cefiot-tls-worker-enrich", "cefiot-tls-operator-alice"} {
		if !names[want] {
			t.Errorf("no Secret %s among %v", want, names)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCASecretForCertManager: k8s-ca-secret prints the site's CA (the
// certificate and its key) as cefiot-site-ca, the Secret the cert-manager
// component's Issuer signs with.
func TestCASecretForCertManager(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := run(context.Background(), []string{"init", "-site", "edge", "-dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"k8s-ca-secret", "-site", "edge", "-dir", dir, "-namespace", "cefiot-edge"}, &out); err != nil {
		t.Fatal(err)
	}
	var s struct {
		Kind, Type string
		Metadata   struct{ Name, Namespace string }
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal([]byte(out.String()), &s); err != nil {
		t.Fatal(err)
	}
	if s.Kind != "Secret" || s.Type != "kubernetes.io/tls" || s.Metadata.Name != "cefiot-site-ca" || s.Metadata.Namespace != "cefiot-edge" {
		t.Fatalf("secret %+v", s)
	}
	if s.StringData["tls.crt"] != string(mustRead(t, filepath.Join(dir, "ca.crt"))) || s.StringData["tls.key"] != string(mustRead(t, filepath.Join(dir, "ca.key"))) {
		t.Fatal("the Secret is not the site's CA")
	}
	if err := run(context.Background(), []string{"k8s-ca-secret", "-site", "edge", "-dir", t.TempDir()}, &out); err == nil {
		t.Fatal("a directory without a CA gave a Secret")
	}
}
