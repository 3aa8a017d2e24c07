// Package boardsigner issues each edge board its own cloud credential,
// node/<board>, through Kubernetes pod certificates: the kubelet of the
// board makes the key pair and keeps the private key on the board (in the
// pod's memory-backed volume), and asks for a certificate with a
// PodCertificateRequest naming the signer cefiot.io/board. The scheduler's
// leader answers it with the site CA, after checking that the request comes
// from a pod of the bridge's service account on a node enrolled to carry a
// credential (labelled access.BoardEnrolledLabel=true, which kubelets may
// not set) that still exists with the UID the API server recorded.
//
// The certificates live a day at most, and the kubelet renews them through
// the site's API server. A board taken away from its site can renew no
// more, so its credential ends within a day even if nobody revokes it;
// deleting its Node object stops renewals at once (a kubelet that
// registers it again cannot enrol it), and the cloud's DENY ACLs lock it
// out at once (docs/security.md).
package boardsigner

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/pki"
)

// The facts the manifests share with this package (k8s/components/
// edge-pipeline): the signer's name, the node label that enrols a board and
// the service account whose pods may hold a board's credential.
const (
	SignerName            = access.BoardSigner
	EnrolledLabel         = access.BoardEnrolledLabel
	DefaultServiceAccount = "bridge"
	// MaxLifetime is the longest a board credential lives.
	MaxLifetime = 24 * time.Hour
)

// Reasons of a denied request, as its Denied condition says them.
const (
	ReasonNotEnrolled       = "NodeNotEnrolled"
	ReasonServiceAccount    = "ServiceAccountNotAllowed"
	ReasonInvalidNodeName   = "InvalidNodeName"
	ReasonUnsupportedKey    = certificatesv1.PodCertificateRequestConditionUnsupportedKeyType
	ReasonUserAnnotations   = certificatesv1.PodCertificateRequestConditionInvalidUserConfig
	reasonIssued            = "Issued"
	supportedKeyTypeMessage = "use keyType ECDSAP256 (or ECDSAP384, RSA3072, RSA4096)"
)

// Policy is what a request must meet.
type Policy struct {
	// ServiceAccount is the only service account whose pods get a board
	// credential.
	ServiceAccount string
	// Lifetime is how long an issued certificate lives, shortened to the
	// request's maxExpirationSeconds.
	Lifetime time.Duration
}

// Decision is the answer to one request: a status to write.
type Decision struct {
	Status certificatesv1.PodCertificateRequestStatus
	// Issued is the identity issued; empty when denied.
	Issued string
	// Reason is the Denied condition's reason; empty when issued.
	Reason, Message string
}

// Decide answers req for a pod on node (nil when the node does not exist)
// with the site's ca at now.
func Decide(p Policy, ca *pki.CA, req *certificatesv1.PodCertificateRequest, node *corev1.Node, now time.Time) (Decision, error) {
	spec := req.Spec
	switch {
	case len(spec.UnverifiedUserAnnotations) > 0:
		return denied(now, ReasonUserAnnotations, "the board signer takes no unverifiedUserAnnotations"), nil
	case spec.ServiceAccountName != p.ServiceAccount:
		return denied(now, ReasonServiceAccount, fmt.Sprintf("only pods of service account %s get a board credential, not %s", p.ServiceAccount, spec.ServiceAccountName)), nil
	case node == nil:
		return denied(now, ReasonNotEnrolled, fmt.Sprintf("node %s does not exist", spec.NodeName)), nil
	case node.UID != spec.NodeUID:
		return denied(now, ReasonNotEnrolled, fmt.Sprintf("node %s is not the node the pod was bound to (uid %s, the request names %s)", spec.NodeName, node.UID, spec.NodeUID)), nil
	case node.Labels[EnrolledLabel] != "true":
		return denied(now, ReasonNotEnrolled, fmt.Sprintf("node %s is not enrolled: it lacks the label %s=true", spec.NodeName, EnrolledLabel)), nil
	}
	component := access.Node(string(spec.NodeName))
	if err := (pki.Identity{Site: ca.Site, Component: component}).Validate(); err != nil {
		return denied(now, ReasonInvalidNodeName, err.Error()), nil
	}
	csr, err := x509.ParseCertificateRequest(spec.StubPKCS10Request)
	if err != nil {
		return denied(now, ReasonUnsupportedKey, "stubPKCS10Request: "+err.Error()), nil
	}
	if !supportedKey(csr.PublicKey) {
		return denied(now, ReasonUnsupportedKey, supportedKeyTypeMessage), nil
	}
	lifetime := p.Lifetime
	if lifetime <= 0 || lifetime > MaxLifetime {
		lifetime = MaxLifetime
	}
	if spec.MaxExpirationSeconds != nil {
		lifetime = min(lifetime, time.Duration(*spec.MaxExpirationSeconds)*time.Second)
	}
	// pki backdates by a minute for clocks a little behind: the whole
	// lifetime, backdating included, stays within the request's maximum.
	issued, err := ca.IssueFor(csr.PublicKey, component, nil, lifetime-time.Minute, now)
	if err != nil {
		return Decision{}, fmt.Errorf("issue %s: %w", component, err)
	}
	notBefore, notAfter := issued.Cert.NotBefore, issued.Cert.NotAfter
	// Renew two thirds of the way through, as the kubelet does for its own
	// certificates: a board that loses the API for a while keeps a valid one.
	refresh := notBefore.Add(notAfter.Sub(notBefore) * 2 / 3)
	return Decision{
		Issued: component,
		Status: certificatesv1.PodCertificateRequestStatus{
			CertificateChain: string(issued.CertPEM),
			NotBefore:        &metav1.Time{Time: notBefore},
			BeginRefreshAt:   &metav1.Time{Time: refresh},
			NotAfter:         &metav1.Time{Time: notAfter},
			Conditions: []metav1.Condition{{
				Type: certificatesv1.PodCertificateRequestConditionTypeIssued, Status: metav1.ConditionTrue,
				Reason: reasonIssued, Message: fmt.Sprintf("%s of site %s", component, ca.Site),
				LastTransitionTime: metav1.NewTime(now),
			}},
		},
	}, nil
}

func denied(now time.Time, reason, message string) Decision {
	return Decision{Reason: reason, Message: message, Status: certificatesv1.PodCertificateRequestStatus{
		Conditions: []metav1.Condition{{
			Type: certificatesv1.PodCertificateRequestConditionTypeDenied, Status: metav1.ConditionTrue,
			Reason: reason, Message: message, LastTransitionTime: metav1.NewTime(now),
		}},
	}}
}

// supportedKey: keys Kafka's brokers (Java) verify in a TLS client
// certificate; Ed25519 is left out.
func supportedKey(pub crypto.PublicKey) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return k.Curve == elliptic.P256() || k.Curve == elliptic.P384()
	case *rsa.PublicKey:
		return k.N.BitLen() >= 3072
	}
	return false
}

// answered reports whether req already carries a final condition.
func answered(req *certificatesv1.PodCertificateRequest) bool {
	for _, c := range req.Status.Conditions {
		switch c.Type {
		case certificatesv1.PodCertificateRequestConditionTypeIssued,
			certificatesv1.PodCertificateRequestConditionTypeDenied,
			certificatesv1.PodCertificateRequestConditionTypeFailed:
			return true
		}
	}
	return false
}
