package kubenode

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/k8s/check/internal/kubeapi"
)

// ServiceCIDR is the Services' cluster addresses (kubeapi's
// --service-cluster-ip-range).
const ServiceCIDR = "10.96.0.0/16"

// startProxy runs kube-proxy in nftables mode on the node, as its
// DaemonSet would (host network): Services' cluster addresses reach their
// pods.
func (c *Cluster) startProxy(t testing.TB) {
	t.Helper()
	// Its nftables mode writes the rules by running nft; without it the
	// proxy runs but a Service's cluster address reaches nothing.
	if _, err := exec.LookPath("nft"); err != nil {
		t.Fatalf("kube-proxy's nftables mode needs the nft command (Debian package nftables; scripts/install-deps.sh installs it): %v", err)
	}
	config := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clusterCIDR: %s
hostnameOverride: %s
bindAddress: 127.0.0.1
healthzBindAddress: ""
metricsBindAddress: ""
clientConnection: {kubeconfig: %q}
# The machine's connection tracking table is left as it is.
conntrack: {maxPerCore: 0, min: 0}
`, PodCIDR, NodeName, c.kubeconfig(t, "system:kube-proxy"))
	path := filepath.Join(c.dir, "kube-proxy.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	// Its rules outlive it: removed once it stopped.
	t.Cleanup(func() {
		if out, err := exec.Command(c.bins.Proxy, "--cleanup").CombinedOutput(); err != nil {
			t.Logf("kube-proxy --cleanup: %v: %s", err, out)
		}
	})
	c.start(t, "kube-proxy", c.bins.Proxy, []string{"--config=" + path})
}

// startDNS runs CoreDNS on the node's address, port 53, answering for
// cluster.local from the API (as the cluster DNS add-on does; the
// kubelet gives pods this address).
func (c *Cluster) startDNS(t testing.TB) {
	t.Helper()
	client, err := kubeapi.NewClient(c.API.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, doc := range strings.Split(corednsRBAC, "\n---\n") {
		if _, err := client.Apply(ctx, []byte(doc), false); err != nil {
			t.Fatalf("CoreDNS's role: %v", err)
		}
	}
	corefile := fmt.Sprintf(`.:53 {
    bind %s
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %q cefiot
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`, c.NodeIP, c.kubeconfig(t, "cefiot-coredns"))
	path := filepath.Join(c.dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start(t, "coredns", c.bins.CoreDNS, []string{"-conf", path})
}

// corednsRBAC lets CoreDNS read what it answers from, as the add-on's own
// ClusterRole does.
const corednsRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "cefiot:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "cefiot:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "cefiot:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: cefiot-coredns}
`
