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
	"k8s.io/client-go/kubernetes"
)

// TestOneNodeClusterRunsAPod: the cluster's node turns Ready, and a pod
// of an image imported from an OCI layout runs on it with an address on
// the pod network.
func TestOneNodeClusterRunsAPod(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Kubernetes cluster")
	}
	bins := BinariesIn(binDir(t))
	if m := bins.Missing(); len(m) > 0 {
		msg := "missing (make kube-node builds them): " + strings.Join(m, ", ")
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c := Start(t, bins)
	cs, err := kubernetes.NewForConfig(c.API.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pause", Image: PauseImage, ImagePullPolicy: corev1.PullNever}}},
	}
	for {
		if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("%v\ncontroller-manager: %s", err, c.LogTail("kube-controller-manager", 30))
		}
		time.Sleep(time.Second) // the default service account appears with the controllers
	}
	for {
		p, err := cs.CoreV1().Pods("default").Get(ctx, "pause", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			t.Logf("pod running at %s", p.Status.PodIP)
			break
		}
		if ctx.Err() != nil {
			if n, err := cs.CoreV1().Nodes().Get(context.Background(), NodeName, metav1.GetOptions{}); err == nil {
				for _, cond := range n.Status.Conditions {
					t.Logf("node %s=%s: %s %s", cond.Type, cond.Status, cond.Reason, cond.Message)
				}
				t.Logf("taints: %+v\ncontroller-manager: %s", n.Spec.Taints, c.LogTail("kube-controller-manager", 40))
			}
			t.Fatalf("pod not running: %v %+v\nkubelet: %s\nscheduler: %s", err, p.Status, c.LogTail("kubelet", 30), c.LogTail("kube-scheduler", 20))
		}
		time.Sleep(time.Second)
	}
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
