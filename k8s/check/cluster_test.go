package check

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

	"github.com/cefiot/cefiot/k8s/check/internal/kubenode"
)

// startCluster starts the one-node cluster of the programs in
// CEFIOT_KUBE_BIN_DIR, else the repository's .cache/bin.
func startCluster(t *testing.T) *kubenode.Cluster {
	t.Helper()
	dir := os.Getenv("CEFIOT_KUBE_BIN_DIR")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(k8sDir(t)), ".cache", "bin")
	}
	return kubenode.StartOrSkip(t, dir)
}

// imagesDir is where make images put the services' OCI layouts.
func imagesDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CEFIOT_IMAGES_DIR")
	if dir == "" {
		dir = filepath.Join(filepath.Dir(k8sDir(t)), "bin", "images")
	}
	if _, err := os.Stat(filepath.Join(dir, "scheduler", "index.json")); err != nil {
		msg := "no service images (make images builds them): " + err.Error()
		if os.Getenv("CEFIOT_REQUIRE_IMAGES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// TestServiceImagesStartOnARealNode: every service's image, imported from
// the OCI layout make images writes, starts under a real kubelet on
// containerd and runc, as the overlays run it (the image and tag they
// name, their pod and container security contexts: non-root, read-only
// root filesystem, no capabilities), and its binary runs to the end of its
// usage: its shared libraries (OpenCV for capture and enrich) load in the
// image, as the user the overlays give.
func TestServiceImagesStartOnARealNode(t *testing.T) {
	images := imagesDir(t)
	c := startCluster(t)
	for _, service := range []string{"capture", "enrich", "bridge", "sink", "scheduler"} {
		c.ImportLayout(t, filepath.Join(images, service))
	}
	cs, err := kubernetes.NewForConfig(c.API.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for _, overlay := range []string{"overlays/edge", "overlays/cloud"} {
		set := render(t, overlay)
		for _, w := range set.Workloads {
			for _, ctr := range w.Template.Spec.Containers {
				if !strings.HasPrefix(ctr.Image, "ghcr.io/cefiot/") || seen[ctr.Image] {
					continue
				}
				seen[ctr.Image] = true
				name := strings.TrimPrefix(imageRepo(ctr.Image), "ghcr.io/cefiot/")
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
					Spec: corev1.PodSpec{
						RestartPolicy:   corev1.RestartPolicyNever,
						SecurityContext: w.Template.Spec.SecurityContext,
						Containers: []corev1.Container{{
							Name: name, Image: ctr.Image, ImagePullPolicy: corev1.PullNever,
							Command: ctr.Command, Args: []string{"-h"},
							SecurityContext: ctr.SecurityContext,
						}},
					},
				}
				kubenode.CreatePod(ctx, t, cs, pod)
			}
		}
	}
	if len(seen) != 5 {
		t.Fatalf("the overlays run %d of the 5 service images: %v", len(seen), seen)
	}
	for image := range seen {
		name := strings.TrimPrefix(imageRepo(image), "ghcr.io/cefiot/")
		c.WaitForPod(ctx, t, cs, "default", name, corev1.PodSucceeded)
		t.Logf("%s ran to the end of its usage on the node", image)
	}
}
