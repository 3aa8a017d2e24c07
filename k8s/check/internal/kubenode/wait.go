package kubenode

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// WaitForPod waits until the pod is in phase want and returns it; it fails
// the test, with the node's state and the kubelet's log, when ctx ends
// first or the pod ends in another phase.
func (c *Cluster) WaitForPod(ctx context.Context, t testing.TB, cs kubernetes.Interface, namespace, name string, want corev1.PodPhase) *corev1.Pod {
	t.Helper()
	p, err := c.WaitPod(ctx, cs, namespace, name, func(p *corev1.Pod) (bool, error) {
		switch p.Status.Phase {
		case want:
			return true, nil
		case corev1.PodFailed, corev1.PodSucceeded:
			return false, fmt.Errorf("ended %s", p.Status.Phase)
		}
		return false, nil
	})
	if err != nil {
		c.failPod(t, cs, namespace, name, string(want), err)
	}
	return p
}

// WaitForReady waits until the pod is Ready and returns it.
func (c *Cluster) WaitForReady(ctx context.Context, t testing.TB, cs kubernetes.Interface, namespace, name string) *corev1.Pod {
	t.Helper()
	p, err := c.WaitPod(ctx, cs, namespace, name, func(p *corev1.Pod) (bool, error) {
		if p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			return false, fmt.Errorf("ended %s", p.Status.Phase)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		c.failPod(t, cs, namespace, name, "Ready", err)
	}
	return p
}

// WaitPod watches the pod until done says so (or fails) or ctx ends; a pod
// that does not exist yet is waited for.
func (c *Cluster) WaitPod(ctx context.Context, cs kubernetes.Interface, namespace, name string, done func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	pods := cs.CoreV1().Pods(namespace)
	selector := fields.OneTermEqualSelector("metadata.name", name).String()
	for {
		list, err := pods.List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err != nil {
			return nil, err
		}
		if len(list.Items) == 1 {
			if ok, err := done(&list.Items[0]); ok || err != nil {
				return &list.Items[0], err
			}
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: list.ResourceVersion})
		if err != nil {
			return nil, err
		}
		p, err := watchPod(ctx, w, done)
		w.Stop()
		if p != nil || err != nil {
			return p, err
		}
		// The watch ended (the server closes them now and then): list again.
	}
}

func watchPod(ctx context.Context, w watch.Interface, done func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil, nil
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || ev.Type == watch.Deleted {
				continue
			}
			if ok, err := done(p); ok || err != nil {
				return p, err
			}
		}
	}
}

func (c *Cluster) failPod(t testing.TB, cs kubernetes.Interface, namespace, name, want string, err error) {
	t.Helper()
	status := "unknown"
	if p, gerr := cs.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{}); gerr == nil {
		status = string(p.Status.Phase)
		for _, s := range p.Status.ContainerStatuses {
			status += fmt.Sprintf(" %s(restarts %d):%s", s.Name, s.RestartCount, s.State.String())
		}
		for _, s := range p.Spec.Containers {
			status += "\n" + s.Name + " log:\n" + c.PodLog(namespace, name, s.Name, 30)
		}
	}
	for _, cond := range c.nodeConditions(cs) {
		t.Log(cond)
	}
	t.Fatalf("pod %s/%s not %s (%v): %s\nkubelet: %s", namespace, name, want, err, status, c.LogTail("kubelet", 30))
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
		select {
		case <-ctx.Done():
			t.Fatalf("create pod %s: %v", pod.Name, err)
		case <-time.After(500 * time.Millisecond):
		}
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
