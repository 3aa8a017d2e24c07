package boardsigner

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cefiot/cefiot/libs/pki"
)

var testPolicy = Policy{ServiceAccount: DefaultServiceAccount, Lifetime: MaxLifetime}

func stubCSR(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func p256(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func boardRequest(t *testing.T, key crypto.Signer, node string) *certificatesv1.PodCertificateRequest {
	return &certificatesv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "cefiot-edge", Name: "req-" + node},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName: SignerName, PodName: "bridge-1", PodUID: "pod-uid",
			ServiceAccountName: DefaultServiceAccount, ServiceAccountUID: "sa-uid",
			NodeName: types.NodeName(node), NodeUID: types.UID("uid-" + node),
			MaxExpirationSeconds: ptr(int32(86400)),
			StubPKCS10Request:    stubCSR(t, key),
		},
	}
}

func enrolledNode(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{EnrolledLabel: "true"}}}
}

func ptr[T any](v T) *T { return &v }

func testCA(t *testing.T, site string) *pki.CA {
	t.Helper()
	ca, err := pki.NewCA(site, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestDecideIssuesTheBoardItsOwnIdentityForItsKey(t *testing.T) {
	ca := testCA(t, "edge")
	key := p256(t)
	now := time.Now()
	d, err := Decide(testPolicy, ca, boardRequest(t, key, "board-7"), enrolledNode("board-7"), now)
	if err != nil {
		t.Fatal(err)
	}
	if d.Issued != "node/board-7" || d.Reason != "" {
		t.Fatalf("decision %+v, want node/board-7 issued", d)
	}
	certs, err := pki.ParseCertificates([]byte(d.Status.CertificateChain))
	if err != nil {
		t.Fatal(err)
	}
	leaf := certs[0]
	id, err := pki.IdentityOf(leaf)
	if err != nil || id.Site != "edge" || id.Component != "node/board-7" {
		t.Fatalf("identity %v (%v), want spiffe://edge/node/board-7", id, err)
	}
	if !key.Public().(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		t.Fatal("the certificate is not for the requested key")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the cloud would not trust it: %v", err)
	}
	// What the API server checks before it takes the status.
	st := d.Status
	if !st.NotBefore.Time.Equal(leaf.NotBefore) || !st.NotAfter.Time.Equal(leaf.NotAfter) {
		t.Fatalf("status times %v..%v, leaf %v..%v", st.NotBefore, st.NotAfter, leaf.NotBefore, leaf.NotAfter)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 24*time.Hour || life < time.Hour {
		t.Fatalf("lifetime %v, want at most the request's 24h and at least 1h", life)
	}
	if st.BeginRefreshAt.Time.Before(leaf.NotBefore.Add(10*time.Minute)) || st.BeginRefreshAt.Time.After(leaf.NotAfter.Add(-10*time.Minute)) {
		t.Fatalf("beginRefreshAt %v not within [notBefore+10m, notAfter-10m]", st.BeginRefreshAt)
	}
	if d := leaf.NotBefore.Sub(now); d < -5*time.Minute || d > 5*time.Minute {
		t.Fatalf("notBefore %v is not near now", leaf.NotBefore)
	}
	if len(st.Conditions) != 1 || st.Conditions[0].Type != "Issued" || st.Conditions[0].Status != metav1.ConditionTrue {
		t.Fatalf("conditions %+v, want one Issued=True", st.Conditions)
	}
}

func TestDecideKeepsWithinTheRequestedLifetime(t *testing.T) {
	req := boardRequest(t, p256(t), "board-1")
	req.Spec.MaxExpirationSeconds = ptr(int32(3600))
	d, err := Decide(testPolicy, testCA(t, "edge"), req, enrolledNode("board-1"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if life := d.Status.NotAfter.Sub(d.Status.NotBefore.Time); life != time.Hour {
		t.Fatalf("lifetime %v, want the requested 1h exactly", life)
	}
}

func TestDecideDeniesWhatIsNotAnEnrolledBoardsBridge(t *testing.T) {
	ca := testCA(t, "edge")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unlabelled := enrolledNode("board-1")
	unlabelled.Labels = nil
	for _, tc := range []struct {
		name   string
		change func(*certificatesv1.PodCertificateRequest)
		node   *corev1.Node
		reason string
		says   string
	}{
		{"another service account", func(r *certificatesv1.PodCertificateRequest) { r.Spec.ServiceAccountName = "default" }, enrolledNode("board-1"), ReasonServiceAccount, "default"},
		{"a node that is gone", nil, nil, ReasonNotEnrolled, "does not exist"},
		{"a node re-made under the same name", nil, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "board-1", UID: "other", Labels: map[string]string{EnrolledLabel: "true"}}}, ReasonNotEnrolled, "not the node"},
		{"a node not enrolled", nil, unlabelled, ReasonNotEnrolled, EnrolledLabel},
		{"user annotations", func(r *certificatesv1.PodCertificateRequest) {
			r.Spec.UnverifiedUserAnnotations = map[string]string{"cefiot.io/identity": "node/board-2"}
		}, enrolledNode("board-1"), ReasonUserAnnotations, "unverifiedUserAnnotations"},
		{"an RSA 2048 key", func(r *certificatesv1.PodCertificateRequest) { r.Spec.StubPKCS10Request = stubCSR(t, rsaKey) }, enrolledNode("board-1"), ReasonUnsupportedKey, "ECDSAP256"},
		{"an Ed25519 key", func(r *certificatesv1.PodCertificateRequest) { r.Spec.StubPKCS10Request = stubCSR(t, edKey) }, enrolledNode("board-1"), ReasonUnsupportedKey, "ECDSAP256"},
		{"a node name no identity takes", func(r *certificatesv1.PodCertificateRequest) {
			r.Spec.NodeName, r.Spec.NodeUID = "Board_1", "uid-Board_1"
		}, enrolledNode("Board_1"), ReasonInvalidNodeName, "Board_1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := boardRequest(t, p256(t), "board-1")
			if tc.change != nil {
				tc.change(req)
			}
			d, err := Decide(testPolicy, ca, req, tc.node, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if d.Issued != "" || d.Status.CertificateChain != "" {
				t.Fatalf("issued %s", d.Issued)
			}
			c := d.Status.Conditions
			if len(c) != 1 || c[0].Type != "Denied" || c[0].Reason != tc.reason || !strings.Contains(c[0].Message, tc.says) {
				t.Fatalf("conditions %+v, want Denied %s saying %q", c, tc.reason, tc.says)
			}
			if d.Status.NotBefore != nil || d.Status.NotAfter != nil || d.Status.BeginRefreshAt != nil {
				t.Fatal("a denial must carry only its condition")
			}
		})
	}
}
