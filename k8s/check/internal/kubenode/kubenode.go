// Package kubenode runs a real one-node Kubernetes cluster for tests: a
// kube-apiserver (kubeapi), kube-controller-manager and kube-scheduler
// built from k8s.io/kubernetes, and a kubelet running pods on containerd 2
// (built from its Go module) with Debian's runc and CNI plugins (a bridge
// with host-local addresses). No image registry is reachable: images,
// the pod sandbox's (pause) among them, are imported from OCI layouts.
//
// Facts of the machines it runs on, found by trying: cgroup v1 (kubelet
// 1.35 and later refuse it unless failCgroupV1 is false); root without
// CAP_SYS_RESOURCE (containerd's CRI must not raise a container's OOM
// score: restrict_oom_score_adj); the CNI plugins where Debian puts them
// (/usr/lib/cni).
package kubenode

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cefiot/cefiot/k8s/check/internal/kubeapi"
	"github.com/cefiot/cefiot/libs/harness/procs"
)

// NodeName is the node's name.
const NodeName = "cefiot-node"

// PauseImage is the pod sandbox's image, built and imported by Start.
const PauseImage = "registry.k8s.io/pause:3.10"

// PodCIDR is the pods' addresses.
const PodCIDR = "10.244.0.0/24"

// RequireEnv set to 1 makes missing programs fail a cluster test instead
// of skipping it.
const RequireEnv = "CEFIOT_REQUIRE_KUBE_NODE"

// Binaries are where the cluster's programs are.
type Binaries struct {
	APIServer, ControllerManager, Scheduler, Kubelet, Proxy string
	Containerd, Shim, Ctr, CoreDNS                          string
	Runc, CNIDir                                            string
}

// BinariesIn finds kube-apiserver and the programs
// scripts/build-kube-node.sh builds in binDir (the repository's
// .cache/bin), and runc and the CNI plugins where Debian puts them.
func BinariesIn(binDir string) Binaries {
	b := func(name string) string { return filepath.Join(binDir, name) }
	return Binaries{
		APIServer: b("kube-apiserver"), ControllerManager: b("kube-controller-manager"), Scheduler: b("kube-scheduler"), Kubelet: b("kubelet"), Proxy: b("kube-proxy"),
		Containerd: b("containerd"), Shim: b("containerd-shim-runc-v2"), Ctr: b("ctr"), CoreDNS: b("coredns"),
		Runc: "/usr/sbin/runc", CNIDir: "/usr/lib/cni",
	}
}

// lockMachine waits until no other test process runs a cluster on this
// machine (its bridge, pod addresses, DNS port and proxy rules are the
// machine's), and holds the lock until the test ends.
func lockMachine(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "cefiot-kubenode.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("lock the machine's test cluster: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing releases the lock
}

// StartOrSkip starts a cluster of the programs in binDir (BinariesIn), or
// skips the test (fails it under RequireEnv, and with -short) when they
// are not built.
func StartOrSkip(t testing.TB, binDir string) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Kubernetes cluster")
	}
	bins := BinariesIn(binDir)
	if m := bins.Missing(); len(m) > 0 {
		msg := "missing (make kube-node builds them): " + strings.Join(m, ", ")
		if os.Getenv(RequireEnv) == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return Start(t, bins)
}

// Missing names the programs that are not there.
func (b Binaries) Missing() []string {
	var missing []string
	for _, p := range []string{b.APIServer, b.ControllerManager, b.Scheduler, b.Kubelet, b.Proxy, b.Containerd, b.Shim, b.Ctr, b.CoreDNS, b.Runc, filepath.Join(b.CNIDir, "bridge")} {
		if _, err := os.Stat(p); err != nil {
			missing = append(missing, p)
		}
	}
	return missing
}

// Cluster is a running one-node cluster.
type Cluster struct {
	API *kubeapi.Server
	// NodeIP is the node's address, where the cluster's DNS answers.
	NodeIP string
	dir    string
	bins   Binaries
	sock   string
	logs   map[string]string
}

// Start brings the cluster up; it stops when the test ends.
func Start(t testing.TB, bins Binaries) *Cluster {
	t.Helper()
	lockMachine(t)
	started := time.Now()
	nodeIP := hostIP(t)
	// Served on the node's address too: the board signer, a pod, talks to
	// it through the kubernetes Service.
	api := kubeapi.StartOn(t, bins.APIServer, []kubeapi.User{
		{Name: "system:node:" + NodeName, Groups: []string{"system:nodes"}},
		{Name: "system:kube-controller-manager"},
		{Name: "system:kube-scheduler"},
		{Name: "system:kube-proxy"},
		{Name: "cefiot-coredns"},
	}, nodeIP)
	// Short: the containerd socket's path must fit a Unix socket address.
	dir, err := os.MkdirTemp("", "kn-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{API: api, NodeIP: nodeIP, dir: dir, bins: bins, sock: filepath.Join(dir, "containerd.sock"), logs: map[string]string{}}
	t.Cleanup(func() { c.removeDir(t) })
	t.Cleanup(forgetNewNetns(t))
	t.Cleanup(forgetNewPodLogs())
	c.startContainerd(t)
	// Pods outlive the kubelet and containerd (their shims run on): killed
	// before containerd stops.
	t.Cleanup(c.killContainers)
	images := filepath.Join(dir, "images")
	if err := BuildPauseLayout(images); err != nil {
		t.Fatal(err)
	}
	c.ImportLayout(t, filepath.Join(images, "pause"))
	c.start(t, "kube-controller-manager", bins.ControllerManager, []string{
		"--kubeconfig=" + c.kubeconfig(t, "system:kube-controller-manager"),
		"--service-account-private-key-file=" + api.ServiceAccountKey,
		"--root-ca-file=" + api.CAFile,
		"--use-service-account-credentials=true",
		"--controllers=*,-node-ipam-controller",
		"--leader-elect=false",
		"--bind-address=127.0.0.1", "--secure-port=0",
	})
	c.start(t, "kube-scheduler", bins.Scheduler, []string{
		"--kubeconfig=" + c.kubeconfig(t, "system:kube-scheduler"),
		"--leader-elect=false", "--v=3",
		"--bind-address=127.0.0.1", "--secure-port=0",
	})
	c.startKubelet(t)
	c.startProxy(t)
	c.startDNS(t)
	// Pods deleted while the kubelet runs: it stops their sandboxes, and
	// the CNI plugins take their addresses and network namespaces back.
	t.Cleanup(func() { c.deletePods(t) })
	t.Logf("one-node cluster up in %s", time.Since(started).Round(10*time.Millisecond))
	return c
}

func (c *Cluster) start(t testing.TB, name, path string, args []string) *procs.Proc {
	t.Helper()
	logPath := filepath.Join(c.dir, name+".log")
	c.logs[name] = logPath
	env := []string{"PATH=" + filepath.Dir(c.bins.Shim) + ":" + os.Getenv("PATH")}
	p, err := procs.Start(procs.Spec{Name: name, Path: path, Args: args, Env: env, LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.Stop(ctx, 20*time.Second)
	})
	return p
}

// kubeconfig writes a kubeconfig for user and returns its path.
func (c *Cluster) kubeconfig(t testing.TB, user string) string {
	t.Helper()
	path := filepath.Join(c.dir, strings.NewReplacer(":", "-").Replace(user)+".kubeconfig")
	doc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: cefiot
  cluster: {server: "https://%s", certificate-authority: %q, tls-server-name: %q}
users:
- name: %q
  user: {token: %q}
contexts:
- name: cefiot
  context: {cluster: cefiot, user: %q}
current-context: cefiot
`, c.API.Addr, c.API.CAFile, c.API.ServerName, user, c.API.Token(user), user)
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (c *Cluster) startContainerd(t testing.TB) {
	t.Helper()
	cni := filepath.Join(c.dir, "cni")
	if err := os.MkdirAll(cni, 0o755); err != nil {
		t.Fatal(err)
	}
	conflist := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "cefiot",
  "plugins": [
    {"type": "bridge", "bridge": "cefiot0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "loopback"}
  ]
}
`, PodCIDR, filepath.Join(c.dir, "ipam"))
	if err := os.WriteFile(filepath.Join(cni, "10-cefiot.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`version = 3
root = %q
state = %q

[grpc]
  address = %q

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE: a container's OOM score may only go up.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%q]
    conf_dir = %q
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = %q
      SystemdCgroup = false

[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %q
`, filepath.Join(c.dir, "root"), filepath.Join(c.dir, "state"), c.sock, c.bins.CNIDir, cni, c.bins.Runc, PauseImage)
	path := filepath.Join(c.dir, "containerd.toml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := c.start(t, "containerd", c.bins.Containerd, []string{"--config", path})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(c.sock); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("containerd did not start: %s", procs.LogTail(c.logs["containerd"], 0, 20))
		case <-p.Done():
			t.Fatalf("containerd exited: %v: %s", p.ExitError(), procs.LogTail(c.logs["containerd"], 0, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ImportLayout imports the image of an OCI layout (named by its
// org.opencontainers.image.ref.name annotation) into the node's
// containerd, where the kubelet finds it.
func (c *Cluster) ImportLayout(t testing.TB, layout string) {
	t.Helper()
	archive := filepath.Join(c.dir, filepath.Base(layout)+".tar")
	if err := tarDir(layout, archive); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(c.bins.Ctr, "--address", c.sock, "--namespace", "k8s.io", "images", "import", "--platform", "linux/amd64", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("import %s: %v: %s", layout, err, out)
	}
	_ = os.Remove(archive)
}

func tarDir(dir, archive string) error {
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		h.Name = rel
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		_, err = io.Copy(tw, src)
		return err
	})
	if err != nil {
		return fmt.Errorf("tar %s: %w", dir, err)
	}
	return tw.Close()
}

func (c *Cluster) startKubelet(t testing.TB) {
	t.Helper()
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1, which kubelet 1.35 and later refuse unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [%s]
resolvConf: /etc/resolv.conf
podCIDR: %s
address: 127.0.0.1
port: 0
readOnlyPort: 0
healthzPort: 0
evictionHard: {"memory.available": "100Mi", "nodefs.available": "1%%", "imagefs.available": "1%%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
`, c.sock, c.NodeIP, PodCIDR)
	path := filepath.Join(c.dir, "kubelet.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start(t, "kubelet", c.bins.Kubelet, []string{
		"--config=" + path,
		"--kubeconfig=" + c.kubeconfig(t, "system:node:"+NodeName),
		"--hostname-override=" + NodeName,
		"--root-dir=" + filepath.Join(c.dir, "kubelet"),
		"--cert-dir=" + filepath.Join(c.dir, "kubelet-pki"),
		"--node-ip=" + c.NodeIP,
		"--v=1",
	})
}

// deletePods deletes every pod at once and waits, at most 30 s, until
// the node runs no container.
func (c *Cluster) deletePods(t testing.TB) {
	cs, err := kubernetes.NewForConfig(c.API.Config)
	if err != nil {
		t.Log(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	namespaces, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Log(err)
		return
	}
	zero := int64(0)
	orphan := metav1.DeletePropagationOrphan
	for _, ns := range namespaces.Items {
		// The controllers first, their pods left alone: else they make
		// new pods for the deleted ones.
		apps := cs.AppsV1()
		keep := metav1.DeleteOptions{PropagationPolicy: &orphan}
		_ = apps.Deployments(ns.Name).DeleteCollection(ctx, keep, metav1.ListOptions{})
		_ = apps.StatefulSets(ns.Name).DeleteCollection(ctx, keep, metav1.ListOptions{})
		_ = apps.DaemonSets(ns.Name).DeleteCollection(ctx, keep, metav1.ListOptions{})
		_ = apps.ReplicaSets(ns.Name).DeleteCollection(ctx, keep, metav1.ListOptions{})
	}
	for _, ns := range namespaces.Items {
		_ = cs.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	}
	for ctx.Err() == nil {
		out, _ := exec.Command(c.bins.Ctr, "--address", c.sock, "--namespace", "k8s.io", "tasks", "ls", "-q").Output()
		if len(strings.Fields(string(out))) == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Log("pods still running 30 s after they were deleted; killed")
}

// forgetNewNetns notes the machine's network namespaces and returns a
// cleanup that deletes those made since (a sandbox's, left behind when
// its pod was killed rather than stopped).
func forgetNewNetns(t testing.TB) func() {
	before := map[string]bool{}
	for _, n := range netnsNames() {
		before[n] = true
	}
	return func() {
		for _, n := range netnsNames() {
			if !before[n] && strings.HasPrefix(n, "cni-") {
				if out, err := exec.Command("ip", "netns", "delete", n).CombinedOutput(); err != nil {
					t.Logf("ip netns delete %s: %v: %s", n, err, out)
				}
			}
		}
	}
}

// forgetNewPodLogs returns a cleanup that deletes the pod log directories
// the kubelet made since (it deletes a pod's own when the pod is removed,
// not when the node stops first).
func forgetNewPodLogs() func() {
	before := map[string]bool{}
	entries, _ := os.ReadDir(podLogsDir)
	for _, e := range entries {
		before[e.Name()] = true
	}
	return func() {
		entries, _ := os.ReadDir(podLogsDir)
		for _, e := range entries {
			if !before[e.Name()] {
				os.RemoveAll(filepath.Join(podLogsDir, e.Name()))
			}
		}
	}
}

func netnsNames() []string {
	entries, _ := os.ReadDir("/var/run/netns")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// killContainers kills every container of the node.
func (c *Cluster) killContainers() {
	ctr := func(args ...string) string {
		out, _ := exec.Command(c.bins.Ctr, append([]string{"--address", c.sock, "--namespace", "k8s.io"}, args...)...).Output()
		return string(out)
	}
	for _, id := range strings.Fields(ctr("tasks", "ls", "-q")) {
		ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id)
		ctr("tasks", "delete", "--force", id)
	}
	// A shim whose task is gone lingers until containerd tells it to go.
	_ = exec.Command("pkill", "-KILL", "-f", "containerd-shim-runc-v2 .*-address "+c.sock).Run()
}

// hostIP is the machine's first IPv4 address that is not loopback: a
// node's address may not be.
func hostIP(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !strings.HasPrefix(n.IP.String(), "10.244.") {
			return n.IP.String()
		}
	}
	t.Fatal("no IPv4 address but loopback: a node needs one")
	return ""
}

// LogTail is the end of a component's log (containerd, kubelet,
// kube-scheduler, kube-controller-manager), for failure messages.
func (c *Cluster) LogTail(component string, lines int) string {
	return procs.LogTail(c.logs[component], 0, lines)
}

// removeDir removes the cluster's files once its processes stopped (the
// kubelet's pod volumes are mounts: unmounted first).
func (c *Cluster) removeDir(t testing.TB) {
	out, _ := exec.Command("sh", "-c", "grep -o ' "+c.dir+"[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l").CombinedOutput()
	if len(out) > 0 {
		t.Logf("unmount: %s", out)
	}
	if err := os.RemoveAll(c.dir); err != nil {
		t.Logf("remove %s: %v", c.dir, err)
	}
}
