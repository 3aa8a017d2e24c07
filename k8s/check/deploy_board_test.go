package check

import (
	"context"
	"fmt"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/cefiot/cefiot/k8s/check/internal/kubenode"
	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/pki"
)

// boardCredential checks what the bridge's pod was given: a pod
// certificate the edge scheduler's leader issued for the node, the board's
// own identity in the edge site, living a day at most.
func (d *deployment) boardCredential(ctx context.Context) {
	d.t.Helper()
	reqs, err := d.cs.CertificatesV1().PodCertificateRequests(devEdge).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signerName", access.BoardSigner).String(),
	})
	if err != nil {
		d.t.Fatal(err)
	}
	issued := 0
	for _, r := range reqs.Items {
		if !strings.HasPrefix(r.Spec.PodName, "bridge-") || !hasCondition(&r, certificatesv1.PodCertificateRequestConditionTypeIssued) {
			continue
		}
		certs, err := pki.ParseCertificates([]byte(r.Status.CertificateChain))
		if err != nil {
			d.t.Fatalf("request %s: %v", r.Name, err)
		}
		id, err := pki.IdentityOf(certs[0])
		if err != nil || id.Site != "edge" || id.Component != access.Node(kubenode.NodeName) {
			d.t.Fatalf("request %s issued %v (%v), want spiffe://edge/%s", r.Name, id, err, access.Node(kubenode.NodeName))
		}
		if life := certs[0].NotAfter.Sub(certs[0].NotBefore); life > 24*time.Hour {
			d.t.Fatalf("the board credential lives %v, more than a day", life)
		}
		issued++
		d.t.Logf("the bridge's pod %s holds %s, valid until %s", r.Spec.PodName, id, certs[0].NotAfter.Format(time.RFC3339))
	}
	if issued == 0 {
		d.t.Fatalf("no board credential was issued to a bridge pod (%d requests)", len(reqs.Items))
	}
}

// boardCannotEnrolItself: the kubelet's own credential may not put the
// enrolment label on its Node (NodeRestriction), so a board taken over
// cannot make itself a board that gets a credential.
func (d *deployment) boardCannotEnrolItself(ctx context.Context) {
	d.t.Helper()
	cfg := rest.CopyConfig(d.c.API.Config)
	cfg.BearerToken = d.c.API.Token("system:node:" + kubenode.NodeName)
	kubelet, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, access.BoardEnrolledLabel)
	_, err = kubelet.CoreV1().Nodes().Patch(ctx, kubenode.NodeName, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if !apierrors.IsForbidden(err) {
		d.t.Fatalf("the node labelled itself %s: %v, want Forbidden", access.BoardEnrolledLabel, err)
	}
	d.t.Logf("the node's own credential may not enrol it: %v", err)
}

// strangerDenied starts a pod that is not the bridge, in the edge
// namespace, asking the board signer for a credential: the signer must
// deny it, so the pod never starts.
func (d *deployment) strangerDenied(ctx context.Context) {
	d.t.Helper()
	no, yes := false, true
	uid := int64(65532)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stranger", Namespace: devEdge},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: &no,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "stranger", Image: kubenode.PauseImage,
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: &no, Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "board", MountPath: "/board", ReadOnly: true}},
			}},
			Volumes: []corev1.Volume{{Name: "board", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{PodCertificate: &corev1.PodCertificateProjection{
					SignerName: access.BoardSigner, KeyType: "ECDSAP256", CredentialBundlePath: "credential.pem",
				}}},
			}}}},
		},
	}
	w, err := d.cs.CertificatesV1().PodCertificateRequests(devEdge).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	defer w.Stop()
	if _, err := d.cs.CoreV1().Pods(devEdge).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		d.t.Fatal(err)
	}
	defer func() {
		grace := int64(0)
		_ = d.cs.CoreV1().Pods(devEdge).Delete(context.WithoutCancel(ctx), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}()
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				d.t.Fatal("the watch of pod certificate requests ended")
			}
			r, isReq := ev.Object.(*certificatesv1.PodCertificateRequest)
			if !isReq || ev.Type == watch.Deleted || r.Spec.PodName != pod.Name {
				continue
			}
			if hasCondition(r, certificatesv1.PodCertificateRequestConditionTypeIssued) {
				d.t.Fatalf("the board signer issued a credential to a pod of service account %s", r.Spec.ServiceAccountName)
			}
			for _, c := range r.Status.Conditions {
				if c.Type == certificatesv1.PodCertificateRequestConditionTypeDenied {
					d.t.Logf("a pod of service account %s asking for a board credential: denied, %s: %s", r.Spec.ServiceAccountName, c.Reason, c.Message)
					if p, err := d.cs.CoreV1().Pods(devEdge).Get(ctx, pod.Name, metav1.GetOptions{}); err == nil && p.Status.Phase == corev1.PodRunning {
						d.t.Fatal("the stranger's pod runs")
					}
					return
				}
			}
		case <-waitCtx.Done():
			d.t.Fatal(fmt.Errorf("the stranger's request was not denied: %w", waitCtx.Err()))
		}
	}
}

func hasCondition(r *certificatesv1.PodCertificateRequest, typ string) bool {
	for _, c := range r.Status.Conditions {
		if c.Type == typ && c.Status == metav1.ConditionTrue {
			return true
		}
	}
	return false
}
