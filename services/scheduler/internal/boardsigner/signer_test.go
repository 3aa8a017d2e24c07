package boardsigner

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/cefiot/cefiot/libs/pki"
)

func writeCA(t *testing.T, ca *pki.CA) string {
	t.Helper()
	dir := t.TempDir()
	key, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// awaitAnswer watches req until a final condition is on it.
func awaitAnswer(ctx context.Context, t *testing.T, client *fake.Clientset, ns, name string) *certificatesv1.PodCertificateRequest {
	t.Helper()
	w, err := client.CertificatesV1().PodCertificateRequests(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if cur, err := client.CertificatesV1().PodCertificateRequests(ns).Get(ctx, name, metav1.GetOptions{}); err == nil && answered(cur) {
		return cur
	}
	for {
		select {
		case ev := <-w.ResultChan():
			if r, ok := ev.Object.(*certificatesv1.PodCertificateRequest); ok && ev.Type == watch.Modified && r.Name == name && answered(r) {
				return r
			}
		case <-ctx.Done():
			t.Fatalf("request %s not answered: %v", name, ctx.Err())
		}
	}
}

func TestSignerAnswersOnlyWhileLeading(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ca := testCA(t, "edge")
	client := fake.NewClientset(enrolledNode("board-1"))
	var leading atomic.Bool
	s, err := New(client, Config{Site: "edge", CADir: writeCA(t, ca), Namespace: "cefiot-edge", Policy: testPolicy, Resync: 200 * time.Millisecond},
		leading.Load, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	req := boardRequest(t, p256(t), "board-1")
	if _, err := client.CertificatesV1().PodCertificateRequests("cefiot-edge").Create(ctx, req, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	// A replica that does not lead leaves the request alone.
	if err := s.handle(ctx, "cefiot-edge/"+req.Name, func(ns, name string) (*certificatesv1.PodCertificateRequest, error) {
		t.Fatal("a replica that does not lead read the request")
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	leading.Store(true) // the resync brings the waiting request back
	got := awaitAnswer(ctx, t, client, "cefiot-edge", req.Name)
	certs, err := pki.ParseCertificates([]byte(got.Status.CertificateChain))
	if err != nil {
		t.Fatalf("answered %+v: %v", got.Status.Conditions, err)
	}
	if id, _ := pki.IdentityOf(certs[0]); id.Component != "node/board-1" {
		t.Fatalf("issued %v, want node/board-1", id)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestSignerRefusesAnotherSitesCA(t *testing.T) {
	dir := writeCA(t, testCA(t, "cloud"))
	err := CheckCA(dir, "edge")
	if err == nil || !strings.Contains(err.Error(), "site cloud's, not edge's") {
		t.Fatalf("CheckCA = %v, want the other site named", err)
	}
	if err := CheckCA(t.TempDir(), "edge"); err == nil || !strings.Contains(err.Error(), "tls.crt") {
		t.Fatalf("CheckCA of an empty directory = %v, want the missing file named", err)
	}
}
