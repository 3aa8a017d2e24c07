// Package netx has small networking helpers for tests and local stacks.
package netx

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) { return FreeAddrOn("127.0.0.1") }

// FreeAddrOn returns host:port with a port of host that was free a moment
// ago.
func FreeAddrOn(host string) (string, error) {
	ports, err := FreePorts(host, 1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(ports[0])), nil
}

// FreePorts returns n distinct ports of host that were free a moment ago,
// chosen by the kernel (all listeners are held until every port is chosen,
// so none repeats).
func FreePorts(host string, n int) ([]int, error) {
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", host, err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePortOutsideEphemeral returns a loopback port that was free a moment
// ago, chosen below the kernel's ephemeral range, so an outgoing connection
// cannot take it between the choice and the listen of the process it is
// meant for (FreeAddr's ports come from the ephemeral range). Ports for
// which taken returns true are skipped, and so are the fixed ports of the
// local default (around 19092 and 29092).
func FreePortOutsideEphemeral(taken func(int) bool) (int, error) {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	const base = 10000
	for range 200 {
		p := base + rand.IntN(low-base)
		if (p >= 19080 && p <= 19110) || (p >= 29080 && p <= 29110) || (taken != nil && taken(p)) {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, fmt.Errorf("no free port found below %d", low)
}
