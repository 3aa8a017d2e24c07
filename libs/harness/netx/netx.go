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
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
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
