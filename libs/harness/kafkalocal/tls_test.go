package kafkalocal_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cefiot/cefiot/libs/harness/kafkalocal"
	"github.com/cefiot/cefiot/libs/harness/kafkalocal/kafkatest"
	"github.com/cefiot/cefiot/libs/kafkax"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// TestReloadTLSServesTheNewCertificate: after the brokers' key pair is
// reissued, ReloadTLS makes the running node present the new certificate
// to new connections on its client and controller listeners, with no
// restart, and clients keep working.
func TestReloadTLSServesTheNewCertificate(t *testing.T) {
	dir := t.TempDir()
	issue := func() {
		t.Helper()
		if _, _, _, err := pki.InitSite(dir, "edge", []string{"kafka"}, []string{"127.0.0.1", "localhost"}, 0, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	issue()
	f := tlsx.FilesIn(dir, "kafka")
	c := kafkatest.StartConfigForTest(t, kafkalocal.ClusterConfig{Name: "edge", TLS: &kafkalocal.TLS{Cert: f.Cert, Key: f.Key, CA: f.CA, TrustBundles: []string{f.CA}}})
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	pid := c.Nodes()[0].PID

	served := func(addr string) string {
		t.Helper()
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		ca, _ := os.ReadFile(f.CA)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
			&tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	node := c.Nodes()[0]
	before, beforeController := served(node.BrokerAddr), served(node.ControllerAddr)
	issue()
	if err := c.ReloadTLS(ctx); err != nil {
		t.Fatal(err)
	}
	// The change reaches the broker through the metadata log, just after
	// the call returns: look until it serves the new certificate.
	start := time.Now()
	for served(node.BrokerAddr) == before || served(node.ControllerAddr) == beforeController {
		if time.Since(start) > 30*time.Second {
			t.Fatal("the broker or its controller still serves its old certificate 30 s after the reload")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("new certificate served %v after the reload", time.Since(start).Round(time.Millisecond))
	if c.Nodes()[0].PID != pid {
		t.Fatal("the broker restarted")
	}
	if err := kafkax.WaitReachable(ctx, c.Conn()); err != nil {
		t.Fatalf("a client with the new key pair: %v", err)
	}
}
