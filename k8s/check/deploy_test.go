package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/cefiot/cefiot/k8s/check/internal/kubeapi"
	"github.com/cefiot/cefiot/k8s/check/internal/kubenode"
)

// The dev overlay's two sites, as docs/deploy.md deploys them.
const (
	devEdge  = "cefiot-dev-edge"
	devCloud = "cefiot-dev-cloud"
)

// The sample video the test camera plays: 30 s at 25 fps, motion in all
// but its first and last second.
var devVideo = videoSpec{Width: 320, Height: 240, Frames: 750, FPS: 25, MotionStart: 25, MotionEnd: 724}

// TestDevOverlayCarriesAVideoToStoredFramesOnARealNode deploys the dev
// overlay (an edge site and the cloud, one replica of everything) to a
// real one-node cluster, with the images make images and make
// site-images build, the way docs/deploy.md tells an operator to: the
// sites' PKI and Secrets, the site CA for the board signer, the camera's
// video on the node, volumes, the overlay, the Kafka ACLs. The bridge
// shows the cloud its board's own credential, a pod certificate the
// kubelet asked for and the edge scheduler's leader issued. The video then flows
// through the deployed pods, capture to enrich to the bridge to the cloud's
// sink; while it does, the pod running enrich is deleted. Every motion
// frame of the video must be stored, once.
func TestDevOverlayCarriesAVideoToStoredFramesOnARealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("a whole deployment on a real node; skipped with -short")
	}
	images := siteImagesDir(t)
	bins := toolsDir(t)
	hostDirs(t)
	c := startCluster(t)
	started := time.Now()
	for _, image := range []string{"capture", "enrich", "bridge", "sink", "scheduler", "kafka", "etcd"} {
		c.ImportLayout(t, filepath.Join(images, image))
	}
	cs, err := kubernetes.NewForConfig(c.API.Config)
	if err != nil {
		t.Fatal(err)
	}
	api, err := kubeapi.NewClient(c.API.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	d := &deployment{t: t, c: c, cs: cs, api: api, bins: bins, pki: t.TempDir()}
	set := render(t, "overlays/dev")
	d.labelNode(ctx)
	d.applyNamespaces(ctx, set)
	d.makePKI(ctx)
	d.makeVolumes(ctx, set)
	d.apply(ctx, set)
	for _, ns := range []string{devEdge, devCloud} {
		c.WaitForReady(ctx, t, cs, ns, "etcd-0")
		c.WaitForReady(ctx, t, cs, ns, "kafka-0")
	}
	t.Logf("etcd and Kafka of both sites ready %s after the cluster", time.Since(started).Round(time.Second))
	d.applyACLs(ctx)
	for _, ns := range []string{devEdge, devCloud} {
		for _, name := range d.podsOf(ctx, ns) {
			c.WaitForReady(ctx, t, cs, ns, name)
		}
	}
	t.Logf("every pod ready %s after the cluster", time.Since(started).Round(time.Second))
	d.boardCredential(ctx)
	d.strangerDenied(ctx)
	// The camera comes on once the sites are up, so the video still plays
	// when enrich's pod goes.
	d.playVideo(ctx, devVideo)

	sink := d.sinkClient(ctx)
	want := devVideo.MotionFrames()
	d.waitStored(ctx, sink, 1)
	t.Logf("first frame stored %s after the cluster", time.Since(started).Round(time.Second))
	// Enrich's pod goes while the video plays: its Deployment makes a new
	// one, the scheduler places enrich on it, and it goes on from enrich's
	// last committed transaction.
	enrichPod := d.podWithPrefix(ctx, devEdge, "enrich-")
	before := d.waitStored(ctx, sink, 50)
	if err := cs.CoreV1().Pods(devEdge).Delete(ctx, enrichPod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted pod %s with %d frames stored", enrichPod, before)
	if before >= want-50 {
		// The stream would be all but over: the move would not be
		// tested while frames flow.
		t.Fatalf("%d of %d frames were stored before enrich's pod went: the video must still play when it goes", before, want)
	}
	stored := d.waitStored(ctx, sink, want)
	frames := d.listFrames(ctx, sink)
	status := d.sinkCounters(ctx, sink)
	t.Logf("all %d motion frames stored %s after the cluster; sink counters %v", stored, time.Since(started).Round(time.Second), status)
	seen := map[string]bool{}
	var seqs []int
	for _, f := range frames {
		if seen[f.FrameID] {
			t.Errorf("frame %s listed twice", f.FrameID)
		}
		seen[f.FrameID] = true
		seqs = append(seqs, f.Sequence)
		if f.CameraID != "cam-1" || f.Site != "edge" {
			t.Errorf("frame %s: camera %q site %q", f.FrameID, f.CameraID, f.Site)
		}
	}
	sort.Ints(seqs)
	if len(seqs) != want {
		t.Fatalf("the store lists %d frames, want the video's %d motion frames", len(seqs), want)
	}
	for i, s := range seqs {
		if s != devVideo.MotionStart+i {
			t.Fatalf("stored sequence %d at %d, want %d..%d", s, i, devVideo.MotionStart, devVideo.MotionEnd)
		}
	}
	if status["duplicates"] != 0 || status["stored"] != int64(want) {
		t.Fatalf("sink counters %v: want %d stored and no duplicate", status, want)
	}
	if now := d.podWithPrefix(ctx, devEdge, "enrich-"); now == enrichPod {
		t.Fatalf("enrich still runs in the deleted pod %s", enrichPod)
	}
}

// siteImagesDir is imagesDir with the site images too (make site-images).
func siteImagesDir(t *testing.T) string {
	t.Helper()
	dir := imagesDir(t)
	for _, image := range []string{"kafka", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, image, "index.json")); err != nil {
			msg := "no site images (make site-images builds them): " + err.Error()
			if os.Getenv("CEFIOT_REQUIRE_IMAGES") == "1" && os.Getenv(kubenode.RequireEnv) == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// toolsDir is where make build put cefiot-pki, cefiot-acls and
// cefiot-genvideo.
func toolsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CEFIOT_BIN_DIR")
	for _, tool := range []string{"cefiot-pki", "cefiot-acls", "cefiot-genvideo"} {
		if _, err := os.Stat(filepath.Join(dir, tool)); dir == "" || err != nil {
			msg := fmt.Sprintf("no %s in CEFIOT_BIN_DIR %q (make build)", tool, dir)
			if os.Getenv(kubenode.RequireEnv) == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// podsOf names the pods the site's workloads make: one per replica of its
// StatefulSets and Deployments and one for its DaemonSet on this node.
func (d *deployment) podsOf(ctx context.Context, ns string) []string {
	d.t.Helper()
	var names []string
	sts, err := d.cs.AppsV1().StatefulSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	for _, s := range sts.Items {
		for i := int32(0); i < replicas(s.Spec.Replicas); i++ {
			names = append(names, fmt.Sprintf("%s-%d", s.Name, i))
		}
	}
	for _, prefix := range d.deploymentPrefixes(ctx, ns) {
		names = append(names, d.podWithPrefix(ctx, ns, prefix))
	}
	return names
}

func (d *deployment) deploymentPrefixes(ctx context.Context, ns string) []string {
	d.t.Helper()
	var prefixes []string
	deps, err := d.cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	for _, dep := range deps.Items {
		prefixes = append(prefixes, dep.Name+"-")
	}
	dss, err := d.cs.AppsV1().DaemonSets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	for _, ds := range dss.Items {
		prefixes = append(prefixes, ds.Name+"-")
	}
	return prefixes
}

// podWithPrefix waits for the one running (not terminating) pod whose name
// starts with prefix and names it.
func (d *deployment) podWithPrefix(ctx context.Context, ns, prefix string) string {
	d.t.Helper()
	list, err := d.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	pods := map[string]corev1.Pod{}
	for _, p := range list.Items {
		pods[p.Name] = p
	}
	single := func() (string, []string) {
		var found []string
		for _, p := range pods {
			if strings.HasPrefix(p.Name, prefix) && len(p.Name) > len(prefix) && p.DeletionTimestamp == nil && isWorkloadPod(p) {
				found = append(found, p.Name)
			}
		}
		if len(found) == 1 {
			return found[0], found
		}
		return "", found
	}
	if name, _ := single(); name != "" {
		return name
	}
	// Then every change from the list on, until one pod is left.
	w, err := d.cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		d.t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				d.t.Fatalf("the watch of %s's pods ended", ns)
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod {
				continue
			}
			if ev.Type == watch.Deleted {
				delete(pods, p.Name)
			} else {
				pods[p.Name] = *p
			}
			if name, _ := single(); name != "" {
				return name
			}
		case <-ctx.Done():
			_, found := single()
			d.t.Fatalf("no single pod %s* in %s: %v", prefix, ns, found)
		}
	}
}

// isWorkloadPod: the pod belongs to a Deployment's ReplicaSet or a
// DaemonSet, not to a StatefulSet whose name shares the prefix.
func isWorkloadPod(p corev1.Pod) bool {
	for _, o := range p.OwnerReferences {
		if o.Kind == "ReplicaSet" || o.Kind == "DaemonSet" {
			return true
		}
	}
	return false
}
