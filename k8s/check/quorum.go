package check

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// kafka: each Kafka StatefulSet's KRaft quorum and replication settings fit
// its replicas, and every cluster has its own valid cluster id.
func (p *policy) kafka() {
	ids := map[string]string{}
	for _, w := range p.set.Workloads {
		if w.GVK.Kind != "StatefulSet" || w.Name != "kafka" {
			continue
		}
		c := &w.Template.Spec.Containers[0]
		id := containerID(w, c)
		env, errs := p.set.ContainerEnv(w.Namespace, c)
		for _, err := range errs {
			p.fail(id, "%v", err)
		}
		num := func(key string) int {
			n, err := strconv.Atoi(env[key].Value)
			if err != nil {
				p.fail(id, "env %s %q: want an integer", key, env[key].Value)
			}
			return n
		}
		brokers, rf, isr := num("BROKERS"), num("REPLICATION_FACTOR"), num("MIN_INSYNC_REPLICAS")
		num("RETENTION_HOURS")
		num("RETENTION_BYTES")
		if int32(brokers) != w.Replicas {
			p.fail(id, "BROKERS=%d but the StatefulSet has %d replicas: the KRaft quorum must list every replica", brokers, w.Replicas)
		}
		if rf < 1 || int32(rf) > w.Replicas {
			p.fail(id, "REPLICATION_FACTOR=%d must be 1..%d (replicas)", rf, w.Replicas)
		}
		if isr < 1 || isr > rf {
			p.fail(id, "MIN_INSYNC_REPLICAS=%d must be 1..%d (replication factor)", isr, rf)
		}
		if w.Replicas >= 3 && (rf < 3 || isr < 2 || isr >= rf) {
			p.fail(id, "with %d nodes want replication factor >= 3 and min.insync.replicas >= 2 and below it (so one node may be away), got %d and %d", w.Replicas, rf, isr)
		}
		cid := env["CLUSTER_ID"].Value
		if b, err := base64.RawURLEncoding.DecodeString(cid); err != nil || len(b) != 16 {
			p.fail(id, "CLUSTER_ID %q is not a Kafka cluster id (16 bytes, base64url without padding)", cid)
		}
		if other, dup := ids[cid]; dup {
			p.fail(id, "CLUSTER_ID %s is also the id of the cluster in %s", cid, other)
		}
		ids[cid] = w.Namespace
	}
}

var initialMemberRE = regexp.MustCompile(`^([^=]+)=https://([^:/]+):2380$`)

// etcd: the initial cluster lists exactly the StatefulSet's members, and
// clients and peers are mutual TLS.
func (p *policy) etcd() {
	for _, w := range p.set.Workloads {
		if w.GVK.Kind != "StatefulSet" || w.Name != "etcd" {
			continue
		}
		c := &w.Template.Spec.Containers[0]
		id := containerID(w, c)
		env, _ := p.set.ContainerEnv(w.Namespace, c)
		var got []string
		for _, m := range strings.Split(env["ETCD_INITIAL_CLUSTER"].Value, ",") {
			mm := initialMemberRE.FindStringSubmatch(m)
			if mm == nil {
				p.fail(id, "ETCD_INITIAL_CLUSTER member %q: want name=https://host:2380 (peers are mutual TLS)", m)
				continue
			}
			got = append(got, mm[1])
			if !strings.HasPrefix(mm[2], mm[1]+"."+w.ServiceName+".") {
				p.fail(id, "ETCD_INITIAL_CLUSTER member %s has peer host %s, want %s.%s.<namespace>.svc", mm[1], mm[2], mm[1], w.ServiceName)
			}
		}
		for _, key := range []string{"ETCD_LISTEN_CLIENT_URLS", "ETCD_ADVERTISE_CLIENT_URLS", "ETCD_LISTEN_PEER_URLS", "ETCD_INITIAL_ADVERTISE_PEER_URLS"} {
			if v := env[key].Value; !strings.HasPrefix(v, "https://") || strings.Contains(v, "http://") {
				p.fail(id, "%s %q: every client and peer URL must be https", key, v)
			}
		}
		for _, key := range []string{"ETCD_CLIENT_CERT_AUTH", "ETCD_PEER_CLIENT_CERT_AUTH"} {
			if env[key].Value != "true" {
				p.fail(id, "%s must be \"true\": clients and peers show a certificate of the site", key)
			}
		}
		var want []string
		for i := 0; i < int(w.Replicas); i++ {
			want = append(want, fmt.Sprintf("%s-%d", w.Name, i))
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			p.fail(id, "ETCD_INITIAL_CLUSTER names members %v but the StatefulSet's pods are %v", got, want)
		}
	}
}
