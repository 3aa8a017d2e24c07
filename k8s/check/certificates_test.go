package check

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// withComponent renders overlay (a copy of the tree) with component added
// at the end of its components, as a user who opts in does.
func withComponent(t *testing.T, overlay, component string) *Set {
	t.Helper()
	fsys := copyTree(t)
	path := filepath.Join("/k8s", overlay, "kustomization.yaml")
	b, err := fsys.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.Contains(s, "\ncomponents:\n") {
		t.Fatalf("%s has no components list", overlay)
	}
	// After the overlay's own components: it may patch what they make.
	head, rest, _ := strings.Cut(s, "\ncomponents:\n")
	var list strings.Builder
	for strings.HasPrefix(rest, "  - ") {
		line, after, _ := strings.Cut(rest, "\n")
		list.WriteString(line + "\n")
		rest = after
	}
	s = head + "\ncomponents:\n" + list.String() + "  - ../../components/" + component + "\n" + rest
	if err := fsys.WriteFile(path, []byte(s)); err != nil {
		t.Fatal(err)
	}
	objs, err := Render(fsys, filepath.Join("/k8s", overlay))
	if err != nil {
		t.Fatal(err)
	}
	return NewSet(objs)
}

// TestCertManagerComponents: each site overlay with its optional
// cert-manager component renders strictly (cert-manager's own API types),
// meets every policy, and issues exactly the Secrets its workloads mount,
// named for the overlay's site and namespace.
func TestCertManagerComponents(t *testing.T) {
	f := loadFacts(t)
	for overlay, component := range map[string]string{"overlays/edge": "cert-manager-edge", "overlays/cloud": "cert-manager-cloud"} {
		t.Run(overlay, func(t *testing.T) {
			set := withComponent(t, overlay, component)
			for _, err := range Policy(set, f) {
				t.Error(err)
			}
			if len(set.Issuers) != 1 || len(set.Certificates) < 4 {
				t.Fatalf("%d Issuers and %d Certificates", len(set.Issuers), len(set.Certificates))
			}
			for _, c := range set.Certificates {
				for _, name := range append(append([]string{}, c.Spec.DNSNames...), c.Spec.URIs...) {
					if strings.Contains(name, "NAMESPACE") || strings.Contains(name, "SITE") {
						t.Errorf("Certificate %s: placeholder left in %q", c.Name, name)
					}
				}
			}
		})
	}
}

// TestCertificatePolicyCatchesMistakes: the checks fail on a Certificate
// that lives too long, names another site, is renewed too late, or is
// missing for a mounted Secret.
func TestCertificatePolicyCatchesMistakes(t *testing.T) {
	f := loadFacts(t)
	for name, tc := range map[string]struct {
		mutate func(*Set)
		want   string
	}{
		"a broker wildcard OpenSSL does not match": {func(s *Set) {
			for _, c := range s.Certificates {
				if c.Spec.CommonName == "kafka" {
					c.Spec.DNSNames = append(c.Spec.DNSNames, "*.kafka-headless")
				}
			}
		}, `spec.dnsNames "*.kafka-headless": a wildcard with one label after it`},
		"a year long":          {func(s *Set) { s.Certificates[0].Spec.Duration = &metav1.Duration{Duration: 365 * 24 * time.Hour} }, "spec.duration"},
		"renewed a day before": {func(s *Set) { s.Certificates[0].Spec.RenewBefore = &metav1.Duration{Duration: 24 * time.Hour} }, "spec.renewBefore"},
		"another site": {func(s *Set) {
			s.Certificates[0].Spec.URIs = []string{"spiffe://cloud/" + s.Certificates[0].Spec.CommonName}
		}, "spec.uris"},
		"server only": {func(s *Set) { s.Certificates[0].Spec.Usages = s.Certificates[0].Spec.Usages[:1] }, "spec.usages"},
		"one missing": {func(s *Set) { s.Certificates = s.Certificates[1:] }, "which no Certificate"},
	} {
		t.Run(name, func(t *testing.T) {
			set := withComponent(t, "overlays/edge", "cert-manager-edge")
			tc.mutate(set)
			var found bool
			for _, err := range Policy(set, f) {
				found = found || strings.Contains(err.Error(), tc.want)
			}
			if !found {
				t.Errorf("no violation naming %s", tc.want)
			}
		})
	}
}

// TestEventsOutComponent: the edge overlay with its optional events-out
// component (enrich's MQTT and webhook notifier) renders, meets every
// policy (its settings are flags of the enrich binary), mounts the two
// Secrets it documents, and lets enrich out to the receivers only.
func TestEventsOutComponent(t *testing.T) {
	f := loadFacts(t)
	set := withComponent(t, "overlays/edge", "events-out")
	for _, err := range Policy(set, f) {
		t.Error(err)
	}
	o, ok := findObject(set, "Deployment", "cefiot-edge", "enrich")
	if !ok {
		t.Fatal("no enrich Deployment")
	}
	for _, want := range []string{"events-config", "cefiot-mqtt-client", "cefiot-webhook", "/etc/cefiot/mqtt"} {
		if !strings.Contains(string(o.YAML), want) {
			t.Errorf("enrich does not use %s", want)
		}
	}
	if _, ok := findObject(set, "NetworkPolicy", "cefiot-edge", "enrich-to-event-receivers"); !ok {
		t.Error("no NetworkPolicy lets enrich reach the event receivers")
	}
}
