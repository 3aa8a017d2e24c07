package kubenode

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WaitForPod waits until the pod is in phase want and returns it; it fails
// the test, with the node's state and the kubelet's log, when ctx ends
// first or the pod ends in another phase.
func (c *Cluster) WaitForPod(ctx context.Context, t testing.TB, cs kubernetes.Interface, namespace, name string, want corev1.PodPhase) *corev1.Pod {
	t.Helper()
	for {
		p, err := cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err == nil && p.Status.Phase == want {
			return p
		}
		ended := err == nil && (p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded)
		if ctx.Err() != nil || ended {
			status := "unknown"
			if err == nil {
				status = string(p.Status.Phase)
				for _, s := range p.Status.ContainerStatuses {
					status += " " + s.Name + ":" + s.State.String()
				}
			}
			for _, cond := range c.nodeConditions(cs) {
				t.Log(cond)
			}
			t.Fatalf("pod %s/%s not %s (%s, %v)\nkubelet: %s", namespace, name, want, status, err, c.LogTail("kubelet", 30))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// CreatePod creates pod, waiting for its namespace's default service
// account (the controllers make it once they run).
func CreatePod(ctx context.Context, t testing.TB, cs kubernetes.Interface, pod *corev1.Pod) {
	t.Helper()
	for {
		_, err := cs.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("create pod %s: %v", pod.Name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// nodeConditions describes the node's conditions and taints.
func (c *Cluster) nodeConditions(cs kubernetes.Interface) []string {
	n, err := cs.CoreV1().Nodes().Get(context.Background(), NodeName, metav1.GetOptions{})
	if err != nil {
		return []string{"node: " + err.Error()}
	}
	var out []string
	for _, cond := range n.Status.Conditions {
		out = append(out, "node "+string(cond.Type)+"="+string(cond.Status)+": "+cond.Reason+" "+cond.Message)
	}
	for _, taint := range n.Spec.Taints {
		out = append(out, "node taint "+taint.ToString())
	}
	return out
}
