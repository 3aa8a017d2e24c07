package kubenode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
)

// TestOneNodeClusterRunsPodsThatFindEachOther: on the cluster's node, a
// pod of an image imported from an OCI layout runs with an address on the
// pod network, and another pod reaches it by its Service's DNS name
// (CoreDNS) through the Service's cluster address (kube-proxy), as the
// pipeline's pods reach Kafka and etcd.
func TestOneNodeClusterRunsPodsThatFindEachOther(t *testing.T) {
	c := StartOrSkip(t, binDir(t))
	images := t.TempDir()
	if err := BuildProbeLayout(images); err != nil {
		t.Fatal(err)
	}
	c.ImportLayout(t, filepath.Join(images, "probe"))
	cs, err := kubernetes.NewForConfig(c.API.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pod := func(name string, args []string, restart corev1.RestartPolicy) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{
				RestartPolicy: restart,
				Containers:    []corev1.Container{{Name: name, Image: ProbeImage, ImagePullPolicy: corev1.PullNever, Args: args}},
			},
		}
	}
	CreatePod(ctx, t, cs, pod("server", []string{"serve", ":8080"}, corev1.RestartPolicyAlways))
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "server"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	if _, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	server := c.WaitForPod(ctx, t, cs, "default", "server", corev1.PodRunning)
	t.Logf("server pod running at %s", server.Status.PodIP)
	if !strings.HasPrefix(server.Status.PodIP, "10.244.0.") {
		t.Fatalf("pod address %s is not on the pod network %s", server.Status.PodIP, PodCIDR)
	}
	CreatePod(ctx, t, cs, pod("client", []string{"dial", "probe.default.svc.cluster.local:80"}, corev1.RestartPolicyNever))
	client := c.WaitForPod(ctx, t, cs, "default", "client", corev1.PodSucceeded)
	t.Logf("client pod reached the server through probe.default.svc.cluster.local:80 (%s)", client.Status.Phase)
}

// binDir is CEFIOT_KUBE_BIN_DIR, else the repository's .cache/bin.
func binDir(t *testing.T) string {
	if d := os.Getenv("CEFIOT_KUBE_BIN_DIR"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "..", "..", ".cache", "bin")
}
