package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/harness/localstack"
	"github.com/cefiot/cefiot/libs/logging"
)

// TestRotatingEveryCertificateWhileFramesFlow reissues every certificate of
// both sites (same CAs, new keys; the boards' too) while a camera's frames
// flow, and checks, with no process restarted: every admin port, etcd and
// every Kafka listener serve their new certificate; every worker rebuilt
// its Kafka clients with the new files (librdkafka reads them once); frames
// keep arriving; and the store ends with every motion frame exactly once,
// counted against what capture published.
func TestRotatingEveryCertificateWhileFramesFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test on real Kafka; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	video, spec := faultVideo(t, dir, 600)
	logger, _ := logging.New(os.Stderr, "warn", "text")
	stack := startStack(ctx, t, localstack.Config{
		BinDir: binDir(t), RunDir: filepath.Join(dir, "run"), KafkaLibs: kafkatest.Libs(t), Video: video, Realtime: true, Logger: logger,
	})
	awaitStored(ctx, t, stack, 20)

	ports := tlsPorts(stack)
	before := serials(t, stack, ports)
	if len(before) != len(ports) {
		t.Fatalf("read the certificate of %d of %d ports: %v", len(before), len(ports), before)
	}
	rotated := time.Now()
	if err := stack.RotateTLS(ctx); err != nil {
		t.Fatal(err)
	}
	awaitState(ctx, t, "every port serving its new certificate", func() (bool, string) {
		now := serials(t, stack, ports)
		var stale []string
		for name, s := range before {
			if now[name] == "" || now[name] == s {
				stale = append(stale, name)
			}
		}
		sort.Strings(stale)
		return len(stale) == 0, "still the old one: " + strings.Join(stale, ", ")
	})
	t.Logf("all %d ports serve the new certificates %.1fs after the rotation, no process restarted", len(ports), time.Since(rotated).Seconds())
	awaitState(ctx, t, "every worker's Kafka clients rebuilt", func() (bool, string) {
		var stale []string
		// Capture renews its producer and keeps the camera running; the
		// others start their workloads' runs again.
		for name, metric := range map[string]string{
			"capture": "cefiot_capture_producer_renewals_total", "enrich": "cefiot_worker_refreshes_total",
			"bridge": "cefiot_worker_refreshes_total", "sink": "cefiot_worker_refreshes_total",
		} {
			if scrapeMetrics(ctx, t, stack.OperatorHTTP(), stack.HTTP(name))[metric] < 1 {
				stale = append(stale, name)
			}
		}
		sort.Strings(stale)
		return len(stale) == 0, "not yet: " + strings.Join(stale, ", ")
	})
	t.Logf("every worker's Kafka clients rebuilt %.1fs after the rotation", time.Since(rotated).Seconds())

	n := awaitStored(ctx, t, stack, 0)
	awaitStored(ctx, t, stack, n+20) // frames keep flowing
	want := spec.MotionFrames()
	st, err := stack.WaitSink(ctx, func(s localstack.SinkStatus) bool { return s.Stored >= int64(want) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	published, err := stack.ReadCounters(ctx, stack.HTTP("capture")+"/v1/capture/status")
	if err != nil {
		t.Fatal(err)
	}
	if published["published"] != st.Stored {
		t.Errorf("capture published %d frames; the sink stored %d", published["published"], st.Stored)
	}
	// The sink rebuilds its consumer with the new credentials; it finishes
	// and commits the batch in hand first, so nothing is read twice.
	if st.Duplicates != 0 {
		t.Errorf("the sink read %d records again (already stored, skipped) across the rebuilds of its clients", st.Duplicates)
	}
	t.Logf("capture published %d frames, the sink stored %d, none read twice", published["published"], st.Stored)
	checkStoreExactlyOnce(ctx, t, stack, want)
}

// tlsPorts are the stack's TLS listeners: every admin HTTPS port, both
// sites' etcd and every Kafka listener (clients' and controllers').
func tlsPorts(stack *localstack.Stack) map[string]string {
	out := map[string]string{"etcd-edge": stack.EdgeEtcd(), "etcd-cloud": stack.CloudEtcd()}
	for site, c := range map[string]*kafkalocal.Cluster{"edge": stack.Edge, "cloud": stack.Cloud} {
		for _, n := range c.Nodes() {
			out[fmt.Sprintf("kafka-%s-%d", site, n.ID)] = n.BrokerAddr
			out[fmt.Sprintf("kafka-%s-%d-controller", site, n.ID)] = n.ControllerAddr
		}
	}
	for name, u := range stack.AdminURLs() {
		if p, err := url.Parse(u); err == nil {
			out[name] = p.Host
		}
	}
	return out
}

// serials returns the serial number of the certificate each port presents
// now (ports that do not answer are missing).
func serials(t *testing.T, stack *localstack.Stack, ports map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, addr := range ports {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", addr, stack.Operator().ClientConfig())
		if err != nil {
			continue
		}
		if certs := conn.ConnectionState().PeerCertificates; len(certs) > 0 {
			out[name] = fmt.Sprint(certs[0].SerialNumber)
		}
		_ = conn.Close()
	}
	return out
}
