package kubenode

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cefiot/cefiot/libs/harness/procs"
)

// CommandWithClusterDNS is a command run on the node whose names resolve
// in the cluster's DNS (kafka-0.kafka-headless.<namespace>.svc), as a
// program in a pod would: it runs in its own mount namespace, where
// /etc/resolv.conf names the cluster's DNS and its search domains. This
// machine's own resolver is untouched.
func (c *Cluster) CommandWithClusterDNS(ctx context.Context, name string, args ...string) (*exec.Cmd, error) {
	resolv := filepath.Join(c.dir, "cluster-resolv.conf")
	conf := "nameserver " + c.NodeIP + "\nsearch svc.cluster.local cluster.local\noptions ndots:5\n"
	if err := os.WriteFile(resolv, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, "unshare", append([]string{"--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv, name}, args...)...), nil
}

// podLogsDir is where the kubelet writes the pods' logs (its default).
const podLogsDir = "/var/log/pods"

// PodLog is the last lines of the current log of a pod's container, as
// the kubelet writes it (under /var/log/pods).
func (c *Cluster) PodLog(namespace, pod, container string, lines int) string {
	files, _ := filepath.Glob(filepath.Join(podLogsDir, namespace+"_"+pod+"_*", container, "*.log"))
	if len(files) == 0 {
		return "(no log)"
	}
	newest, newestTime := "", time.Time{}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(newestTime) {
			newest, newestTime = f, fi.ModTime()
		}
	}
	return strings.TrimRight(procs.LogTail(newest, 0, lines), "\n")
}
