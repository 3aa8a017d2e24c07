// Package netem injects real network faults for tests and benchmarks: it
// puts processes in a Linux network namespace joined to the host by veth
// pairs, and cuts or shapes each pair with tc: the blackhole qdisc drops
// every packet (a cut), tbf limits the rate (a shaped WAN). Both are in
// every stock kernel; the netem qdisc (often a missing module) is not
// needed.
//
// A typical WAN test runs the process under test in a [Namespace] with one
// [Link] per network it talks to (say a LAN to the edge cluster and a WAN to
// the cloud cluster). Servers on the host listen on the links' host-side
// addresses ([Link.HostIP]); the process in the namespace reaches them only
// through its link, so [Link.Cut], [Link.Shape] and [Link.Restore] act on
// exactly that traffic and nothing else on the machine. Clients on the host
// reach the same servers directly.
//
// It needs root (CAP_NET_ADMIN) and the ip and tc commands (iproute2);
// [Available] says why not when they are missing. Names and subnets are
// random per namespace (10.x.y.0/30 per link, checked against the
// addresses in use), so concurrent tests do not collide. [Namespace.Close]
// deletes the namespace and with it the veth pairs.
package netem

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Available returns nil when namespaces can be made here: root, ip and tc.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("netem: needs root (CAP_NET_ADMIN)")
	}
	for _, bin := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("netem: %s not found (install iproute2): %w", bin, err)
		}
	}
	return nil
}

// Namespace is a network namespace with its links to the host.
type Namespace struct {
	Name  string
	id    string
	mu    sync.Mutex
	links []*Link
}

// NewNamespace creates a namespace with a random name (prefix plus hex)
// and its loopback up.
func NewNamespace(prefix string) (*Namespace, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	n := &Namespace{Name: prefix + "-" + id, id: id}
	if err := run("ip", "netns", "add", n.Name); err != nil {
		return nil, err
	}
	if err := n.exec("ip", "link", "set", "lo", "up"); err != nil {
		_ = n.Close()
		return nil, err
	}
	return n, nil
}

// Link is a veth pair between the host and a namespace, with a /30 subnet:
// HostIP on the host end, NsIP on the namespace end.
type Link struct {
	ns           *Namespace
	Name         string
	HostIf, NsIf string
	HostIP, NsIP netip.Addr
	mu           sync.Mutex
	shapeRate    int64 // bytes/s; 0 = not shaped
	cut          bool
}

// AddLink adds a veth pair to the namespace. name (a few letters) tells the
// links of one namespace apart.
func (n *Namespace) AddLink(name string) (*Link, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	idx := len(n.links)
	l := &Link{ns: n, Name: name,
		HostIf: fmt.Sprintf("cf%s%dh", n.id, idx), NsIf: fmt.Sprintf("cf%s%dn", n.id, idx)}
	host, peer, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	l.HostIP, l.NsIP = host, peer
	steps := [][]string{
		{"ip", "link", "add", l.HostIf, "type", "veth", "peer", "name", l.NsIf},
		{"ip", "link", "set", l.NsIf, "netns", n.Name},
		{"ip", "addr", "add", host.String() + "/30", "dev", l.HostIf},
		{"ip", "link", "set", l.HostIf, "up"},
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			_ = run("ip", "link", "del", l.HostIf)
			return nil, err
		}
	}
	for _, s := range [][]string{
		{"ip", "addr", "add", peer.String() + "/30", "dev", l.NsIf},
		{"ip", "link", "set", l.NsIf, "up"},
	} {
		if err := n.exec(s...); err != nil {
			_ = run("ip", "link", "del", l.HostIf)
			return nil, err
		}
	}
	n.links = append(n.links, l)
	return l, nil
}

// Command returns a command that runs name with args inside the namespace.
func (n *Namespace) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Wrap returns the program and arguments that run path with args inside
// the namespace, for process launchers that take a path and arguments.
func (n *Namespace) Wrap(path string, args ...string) (string, []string) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "ip"
	}
	return ip, append([]string{"netns", "exec", n.Name, path}, args...)
}

func (n *Namespace) exec(args ...string) error {
	return run("ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

// Close deletes the namespace; its veth pairs go with it.
func (n *Namespace) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var errs []error
	for _, l := range n.links {
		if err := run("ip", "link", "del", l.HostIf); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
			errs = append(errs, err)
		}
	}
	n.links = nil
	if err := run("ip", "netns", "del", n.Name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Cut drops every packet in both directions (blackhole qdisc on both ends),
// as a severed WAN does: open connections hang, new ones time out.
func (l *Link) Cut() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	return l.apply()
}

// Restore ends a cut; a shaped link keeps its rate.
func (l *Link) Restore() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = false
	return l.apply()
}

// Shape limits the link to bytesPerSecond in each direction (a token
// bucket filter with a queue of about 200 ms, so TCP fills the link);
// 0 removes the limit.
func (l *Link) Shape(bytesPerSecond int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shapeRate = max(bytesPerSecond, 0)
	return l.apply()
}

// Rate is the shaped rate in bytes per second (0: not shaped).
func (l *Link) Rate() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shapeRate
}

func (l *Link) apply() error {
	var qdisc []string
	switch {
	case l.cut:
		qdisc = []string{"blackhole"}
	case l.shapeRate > 0:
		bits := strconv.FormatInt(l.shapeRate*8, 10) + "bit"
		burst := max(l.shapeRate/100, 128<<10) // 10 ms of traffic, at least a GSO packet
		qdisc = []string{"tbf", "rate", bits, "burst", strconv.FormatInt(burst, 10), "latency", "200ms"}
	}
	for _, side := range []struct {
		inNs bool
		dev  string
	}{{false, l.HostIf}, {true, l.NsIf}} {
		var args []string
		if qdisc == nil {
			args = []string{"tc", "qdisc", "del", "dev", side.dev, "root"}
		} else {
			args = append([]string{"tc", "qdisc", "replace", "dev", side.dev, "root"}, qdisc...)
		}
		var err error
		if side.inNs {
			err = l.ns.exec(args...)
		} else {
			err = run(args[0], args[1:]...)
		}
		if err != nil && !(qdisc == nil && isNoQdisc(err)) {
			return err
		}
	}
	return nil
}

func isNoQdisc(err error) bool {
	s := err.Error()
	return strings.Contains(s, "No such file") || strings.Contains(s, "Cannot delete qdisc with handle of zero") || strings.Contains(s, "Invalid handle")
}

var subnetMu sync.Mutex

// freeSubnet picks a random 10.x.y.0/30 whose addresses are not in use on
// the host.
func freeSubnet() (host, peer netip.Addr, err error) {
	subnetMu.Lock()
	defer subnetMu.Unlock()
	out, err := exec.Command("ip", "-4", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return host, peer, fmt.Errorf("netem: ip addr: %v: %s", err, out)
	}
	used := string(out)
	for range 100 {
		b := make([]byte, 3)
		_, _ = rand.Read(b)
		base := netip.AddrFrom4([4]byte{10, 100 + b[0]%100, b[1], b[2] &^ 3})
		h := base.Next()
		p := h.Next()
		if !strings.Contains(used, " "+h.String()+"/") && !strings.Contains(used, " "+p.String()+"/") {
			return h, p, nil
		}
	}
	return host, peer, errors.New("netem: no free 10.x.y.0/30 subnet found")
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netem: %s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
