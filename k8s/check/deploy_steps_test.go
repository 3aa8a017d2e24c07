package check

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cefiot/cefiot/k8s/check/internal/kubeapi"
	"github.com/cefiot/cefiot/k8s/check/internal/kubenode"
	"github.com/cefiot/cefiot/libs/access"
)

// videoSpec is what cefiot-genvideo writes: Frames frames, motion in
// MotionStart..MotionEnd (inclusive).
type videoSpec struct {
	Width, Height, Frames, MotionStart, MotionEnd int
	FPS                                           float64
}

func (v videoSpec) MotionFrames() int { return v.MotionEnd - v.MotionStart + 1 }

// deployment is one deployment of the dev overlay, step by step as
// docs/deploy.md has an operator do it.
type deployment struct {
	t    *testing.T
	c    *kubenode.Cluster
	cs   kubernetes.Interface
	api  *kubeapi.Client
	bins string
	pki  string // pki/<site> of each site
}

// The node's files the dev overlay reads: the camera's video, through the
// volume made for the claim cefiot-media.
const (
	mediaDir = "/var/lib/cefiot/media"
	// runGID is the group the cefiot images run as (ociimage.UID).
	runGID = 65532
)

// hostDirs makes the directory of the camera's video on the node,
// readable by the group the images run as. Called before the cluster
// starts, so that it goes after it: what it made is removed when the test
// ends.
func hostDirs(t *testing.T) {
	t.Helper()
	for _, dir := range []string{mediaDir} {
		if _, err := os.Stat(dir); err == nil {
			t.Fatalf("%s is already on this machine: the test would mix its files with those there", dir)
		}
		made := dir
		for parent := filepath.Dir(dir); parent != "/"; parent = filepath.Dir(parent) {
			if _, err := os.Stat(parent); err == nil {
				break
			}
			made = parent
		}
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(made) })
		if err := os.Chown(dir, 0, runGID); err != nil {
			t.Fatal(err)
		}
	}
}

// labelNode labels the node for the camera and enrols it as a board, as
// an administrator: the node itself may not.
func (d *deployment) labelNode(ctx context.Context) {
	d.t.Helper()
	d.boardCannotEnrolItself(ctx)
	node, err := d.cs.CoreV1().Nodes().Get(ctx, kubenode.NodeName, metav1.GetOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	node.Labels["cefiot.io/camera"] = "true"
	node.Labels[access.BoardEnrolledLabel] = "true"
	if _, err := d.cs.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		d.t.Fatal(err)
	}
}

// playVideo puts the camera's video on the node: cefiot-genvideo writes it
// under another name and renames it, so capture, which retries a source it
// cannot open, plays it from its first frame.
func (d *deployment) playVideo(ctx context.Context, video videoSpec) {
	d.t.Helper()
	video1 := filepath.Join(mediaDir, "cam-1.mp4")
	d.run(ctx, "cefiot-genvideo", "-out", video1, "-width", strconv.Itoa(video.Width), "-height", strconv.Itoa(video.Height),
		"-frames", strconv.Itoa(video.Frames), "-fps", strconv.FormatFloat(video.FPS, 'f', -1, 64),
		"-motion-start", strconv.Itoa(video.MotionStart), "-motion-end", strconv.Itoa(video.MotionEnd))
	if err := os.Chmod(video1, 0o644); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deployment) run(ctx context.Context, tool string, args ...string) []byte {
	d.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(d.bins, tool), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		d.t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// applyNamespaces applies the overlay's Namespaces first: the Secrets go
// in them before the workloads.
func (d *deployment) applyNamespaces(ctx context.Context, set *Set) {
	d.t.Helper()
	for _, o := range set.Objects {
		if o.GVK.Kind == "Namespace" {
			d.applyDoc(ctx, o.YAML)
		}
	}
}

func (d *deployment) apply(ctx context.Context, set *Set) {
	d.t.Helper()
	for _, o := range set.Objects {
		d.applyDoc(ctx, o.YAML)
	}
}

func (d *deployment) applyDoc(ctx context.Context, doc []byte) {
	d.t.Helper()
	if _, err := d.api.Apply(ctx, doc, false); err != nil {
		d.t.Fatal(err)
	}
}

func (d *deployment) applyDocs(ctx context.Context, docs []byte) {
	d.t.Helper()
	for _, doc := range bytes.Split(docs, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) > 0 && !bytes.Equal(bytes.TrimSpace(doc), []byte("---")) {
			d.applyDoc(ctx, doc)
		}
	}
}

// makePKI makes each site's CA and certificates (cefiot-pki init), applies
// them as Secrets, gives the edge's board signer the edge's CA
// (cefiot-site-ca: it issues the board's cloud credential), and lets each
// site trust what it must of the other: the cloud's brokers the edge's CA
// (kafka-client-cas), the edge's bridge the cloud's CA (cefiot-cloud-ca).
func (d *deployment) makePKI(ctx context.Context) {
	d.t.Helper()
	for site, ns := range map[string]string{"edge": devEdge, "cloud": devCloud} {
		dir := filepath.Join(d.pki, site)
		hosts := strings.Join([]string{"localhost", "scheduler", "capture", "enrich", "bridge", "sink", "etcd",
			"*.etcd-headless", "kafka-0.kafka-headless", "kafka-1.kafka-headless", "kafka-2.kafka-headless", "*.etcd-headless." + ns + ".svc", "*.kafka-headless." + ns + ".svc", "*." + ns + ".svc"}, ",")
		d.run(ctx, "cefiot-pki", "init", "-site", site, "-dir", dir, "-hosts", hosts,
			"-components", "scheduler,worker/capture,worker/enrich,worker/bridge,worker/sink,kafka,etcd,operator/alice")
		d.applyDocs(ctx, d.run(ctx, "cefiot-pki", "k8s-secrets", "-site", site, "-dir", dir, "-namespace", ns))
	}
	d.applyDocs(ctx, d.run(ctx, "cefiot-pki", "k8s-ca-secret", "-site", "edge", "-dir", filepath.Join(d.pki, "edge"), "-namespace", devEdge))
	read := func(site string) string {
		b, err := os.ReadFile(filepath.Join(d.pki, site, "ca.crt"))
		if err != nil {
			d.t.Fatal(err)
		}
		return string(b)
	}
	cas := &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "kafka-client-cas", Namespace: devCloud}, Data: map[string]string{"edge.crt": read("edge")}}
	cloudCA := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "cefiot-cloud-ca", Namespace: devEdge}, StringData: map[string]string{"ca.crt": read("cloud")}}
	for _, o := range []any{cas, cloudCA} {
		b, err := json.Marshal(o)
		if err != nil {
			d.t.Fatal(err)
		}
		d.applyDoc(ctx, b)
	}
}

// makeVolumes gives every claim of the overlay a volume on the node: the
// StatefulSets' claims a directory of their own (a cluster without a
// storage provisioner, as this one is, needs them made by hand; k3s's
// local-path does the same), the camera files' claim the node's directory
// that holds them.
func (d *deployment) makeVolumes(ctx context.Context, set *Set) {
	d.t.Helper()
	root := d.t.TempDir()
	for _, o := range set.Objects {
		if claim, ok := o.Typed.(*corev1.PersistentVolumeClaim); ok {
			// The camera files (k8s/components/camera-files): the node's
			// directory that holds them.
			if claim.Name != "cefiot-media" {
				d.t.Fatalf("%s: no volume is known for this claim", o.ID())
			}
			d.makeVolume(ctx, o.Namespace, claim.Name, claim.Spec, mediaDir)
			continue
		}
		sts, ok := o.Typed.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		for i := int32(0); i < replicas(sts.Spec.Replicas); i++ {
			for _, claim := range sts.Spec.VolumeClaimTemplates {
				name := fmt.Sprintf("%s-%s-%d", claim.Name, sts.Name, i)
				dir := filepath.Join(root, o.Namespace, name)
				if err := os.MkdirAll(dir, 0o777); err != nil {
					d.t.Fatal(err)
				}
				// Pods run as their own users; a hostPath volume is not
				// chowned to the pod's fsGroup.
				if err := os.Chmod(dir, 0o777); err != nil {
					d.t.Fatal(err)
				}
				d.makeVolume(ctx, o.Namespace, name, claim.Spec, dir)
			}
		}
	}
}

// makeVolume makes a hostPath PersistentVolume at dir for the claim ns/name,
// bound to it alone.
func (d *deployment) makeVolume(ctx context.Context, ns, name string, claim corev1.PersistentVolumeClaimSpec, dir string) {
	d.t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
			ClaimRef:                      &corev1.ObjectReference{Namespace: ns, Name: name},
		},
	}
	if _, err := d.cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		d.t.Fatal(err)
	}
}

// applyACLs creates each cluster's ACLs as its brokers' identity (the
// super user), from this node with the cluster's DNS, as docs/deploy.md
// does from a machine inside the cluster's network.
func (d *deployment) applyACLs(ctx context.Context) {
	d.t.Helper()
	for _, args := range [][]string{
		{"-cluster", "edge", "-site", "edge", "-operators", "alice"},
		{"-cluster", "cloud", "-site", "cloud", "-sites", "edge", "-nodes", kubenode.NodeName, "-operators", "alice"},
	} {
		site := args[3]
		ns := map[string]string{"edge": devEdge, "cloud": devCloud}[site]
		dir := filepath.Join(d.pki, site)
		args = append(args, "-apply", "-bootstrap", "kafka-0.kafka-headless."+ns+".svc:9092",
			"-tls-cert", filepath.Join(dir, "kafka.crt"), "-tls-key", filepath.Join(dir, "kafka.key"), "-tls-ca", filepath.Join(dir, "ca.crt"))
		cmd, err := d.c.CommandWithClusterDNS(ctx, filepath.Join(d.bins, "cefiot-acls"), args...)
		if err != nil {
			d.t.Fatal(err)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			d.t.Fatalf("cefiot-acls %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// sinkAPI reaches the cloud sink's admin API (REST) as operator alice.
type sinkAPI struct {
	http *http.Client
	base string
}

func (d *deployment) sinkClient(ctx context.Context) *sinkAPI {
	d.t.Helper()
	dir := filepath.Join(d.pki, "cloud")
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "operator-alice.crt"), filepath.Join(dir, "operator-alice.key"))
	if err != nil {
		d.t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		d.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	pod, err := d.cs.CoreV1().Pods(devCloud).Get(ctx, "sink-0", metav1.GetOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	return &sinkAPI{
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "sink." + devCloud + ".svc", MinVersion: tls.VersionTLS12,
		}}},
		base: "https://" + pod.Status.PodIP + ":8104",
	}
}

func (s *sinkAPI) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}

// statusResponse is a service's GET /v1/<service>/status (int64 counters
// are strings in JSON).
type statusResponse struct {
	Status struct {
		Counters map[string]string `json:"counters"`
	} `json:"status"`
}

// storedFrame is what the test reads of a stored frame.
type storedFrame struct {
	FrameID  string `json:"frameId"`
	CameraID string `json:"cameraId"`
	Site     string `json:"site"`
	Sequence int    `json:"sequence,string"`
}

func (d *deployment) listFrames(ctx context.Context, s *sinkAPI) []storedFrame {
	d.t.Helper()
	var all []storedFrame
	token := ""
	for {
		var page struct {
			Frames        []storedFrame `json:"frames"`
			NextPageToken string        `json:"nextPageToken"`
		}
		if err := s.get(ctx, "/v1/frames?page_size=1000&page_token="+url.QueryEscape(token), &page); err != nil {
			d.t.Fatal(err)
		}
		all = append(all, page.Frames...)
		if token = page.NextPageToken; token == "" {
			return all
		}
	}
}

func (d *deployment) sinkCounters(ctx context.Context, s *sinkAPI) map[string]int64 {
	d.t.Helper()
	var resp statusResponse
	if err := s.get(ctx, "/v1/sink/status", &resp); err != nil {
		d.t.Fatal(err)
	}
	out := map[string]int64{}
	for k, v := range resp.Status.Counters {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			d.t.Fatalf("sink counter %s=%q: %v", k, v, err)
		}
		out[k] = n
	}
	return out
}

// waitStored waits until the sink has stored at least n frames and
// returns how many it has.
func (d *deployment) waitStored(ctx context.Context, s *sinkAPI, n int) int {
	d.t.Helper()
	var last error
	for {
		var resp statusResponse
		err := s.get(ctx, "/v1/sink/status", &resp)
		if err == nil {
			stored, _ := strconv.Atoi(resp.Status.Counters["stored"])
			if stored >= n {
				return stored
			}
			last = fmt.Errorf("%d stored (counters %v)", stored, resp.Status.Counters)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			for _, ns := range []string{devEdge, devCloud} {
				for _, prefix := range d.deploymentPrefixes(context.Background(), ns) {
					if pods, err := d.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{}); err == nil {
						for _, p := range pods.Items {
							if strings.HasPrefix(p.Name, prefix) {
								d.t.Logf("%s/%s log:\n%s", ns, p.Name, d.c.PodLog(ns, p.Name, p.Spec.Containers[0].Name, 15))
							}
						}
					}
				}
			}
			d.t.Fatalf("the sink never stored %d frames: %v", n, errors.Join(last, ctx.Err()))
		case <-time.After(time.Second):
		}
	}
}
