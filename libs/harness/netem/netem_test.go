package netem

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestCutShapeRestore runs a TCP client in a namespace against a server on
// the host: it connects, fails while the link is cut, connects again after
// the restore, and a shaped link carries about its rate.
func TestCutShapeRestore(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ns, err := NewNamespace("cfnetemtest")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ns.Close(); err != nil {
			t.Error(err)
		}
	}()
	l, err := ns.AddLink("wan")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(l.HostIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	received := make(chan int64, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				n, _ := io.Copy(io.Discard, c)
				c.Close()
				received <- n
			}()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	// send runs a client in the namespace that sends n bytes.
	send := func(n int, timeout time.Duration) error {
		cmd := ns.Command("timeout", strconv.Itoa(int(timeout.Seconds())), "bash", "-c",
			"head -c "+strconv.Itoa(n)+" /dev/zero > /dev/tcp/"+l.HostIP.String()+"/"+port)
		return cmd.Run()
	}
	if err := send(1000, 10*time.Second); err != nil {
		t.Fatalf("send over a healthy link: %v", err)
	}
	<-received
	if err := l.Cut(); err != nil {
		t.Fatal(err)
	}
	if err := send(1000, 3*time.Second); err == nil {
		t.Fatal("send succeeded over a cut link")
	}
	if err := l.Shape(1 << 20); err != nil { // 1 MiB/s, still cut
		t.Fatal(err)
	}
	if err := l.Restore(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := send(3<<20, 30*time.Second); err != nil {
		t.Fatalf("send after restore: %v", err)
	}
	for n := range received {
		if n == 3<<20 {
			break
		}
	}
	el := time.Since(start)
	if el < 2*time.Second || el > 6*time.Second {
		t.Fatalf("3 MiB over a 1 MiB/s link took %v", el)
	}
	t.Logf("3 MiB over a 1 MiB/s link: %v", el)
}
