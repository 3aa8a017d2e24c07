package pki

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestIssuedCertificateNamesSiteAndComponent(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("door", now)
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue("worker/enrich", []string{"127.0.0.1", "enrich.door.svc"}, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	id, err := IdentityOf(is.Cert)
	if err != nil || id != (Identity{Site: "door", Component: "worker/enrich"}) {
		t.Fatalf("identity %v, %v", id, err)
	}
	if id.String() != "spiffe://door/worker/enrich" {
		t.Fatalf("URI %s", id)
	}
	if got := is.Cert.NotAfter.Sub(now); got > MaxValidity || got < MaxValidity-time.Minute {
		t.Fatalf("validity %v, want %v", got, MaxValidity)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := is.Cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{u}, DNSName: "enrich.door.svc"}); err != nil {
			t.Fatalf("usage %v: %v", u, err)
		}
	}
	// The CA round-trips through PEM.
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseCA(ca.CertPEM(), key)
	if err != nil || back.Site != "door" {
		t.Fatalf("ParseCA: %v %v", back, err)
	}
}

func TestIssueRefusesLongLivesAndBadNames(t *testing.T) {
	ca, err := NewCA("door", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue("sink", nil, MaxValidity+time.Hour, time.Now()); err == nil || !strings.Contains(err.Error(), "validity") {
		t.Fatalf("a certificate longer than %v: %v", MaxValidity, err)
	}
	for _, c := range []string{"", "Worker", "worker//x", "a b", "../x"} {
		if _, err := ca.Issue(c, nil, 0, time.Now()); err == nil {
			t.Errorf("component %q was accepted", c)
		}
	}
	if _, err := NewCA("Door Site", time.Now()); err == nil {
		t.Error("a site name with spaces was accepted")
	}
}

// TestCameraScopeIsSignedIn: a scoped certificate carries its cameras next
// to its identity; an unscoped one carries none; a bad camera name is
// refused.
func TestCameraScopeIsSignedIn(t *testing.T) {
	ca, err := NewCA("edge", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	is, err := ca.Issue("viewer/bob", nil, 0, time.Now(), WithCameras("door", "yard"))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := IdentityOf(is.Cert); err != nil || id.Component != "viewer/bob" {
		t.Fatalf("identity %v, %v", id, err)
	}
	if cams, scoped := CamerasOf(is.Cert); !scoped || strings.Join(cams, ",") != "door,yard" {
		t.Fatalf("cameras %v scoped %v", cams, scoped)
	}
	plain, _ := ca.Issue("viewer/carol", nil, 0, time.Now())
	if _, scoped := CamerasOf(plain.Cert); scoped {
		t.Fatal("an unscoped certificate has a scope")
	}
	if _, err := ca.Issue("viewer/eve", nil, 0, time.Now(), WithCameras("a,b")); err == nil {
		t.Fatal("a camera name with a comma was accepted")
	}
}
