package netx

import (
	"bufio"
	"net"
	"testing"
	"time"
)

func TestProxyForwardsCutsAndHeals(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { // echo lines
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						c.Close()
						return
					}
					_, _ = c.Write([]byte(line))
				}
			}()
		}
	}()
	p, err := NewProxy(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	echo := func(c net.Conn) error {
		if err := c.SetDeadline(time.Now().Add(300 * time.Millisecond)); err != nil {
			return err
		}
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return err
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if err := echo(c); err == nil {
		t.Fatal("a cut proxy delivered")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err) // a partition refuses nothing: the connect succeeds
	}
	if err := echo(c2); err == nil {
		t.Fatal("a new connection through a cut proxy delivered")
	}
	p.Heal()
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := echo(c3); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
}

func TestFreePortOutsideEphemeral(t *testing.T) {
	p, err := FreePortOutsideEphemeral(func(p int) bool { return p%2 == 0 })
	if err != nil || p%2 == 0 || p < 10000 || p > 65535 {
		t.Fatalf("port %d, %v", p, err)
	}
}
