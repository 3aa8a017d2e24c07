package localstack

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/etcdx"
	"github.com/cefiot/cefiot/libs/harness/netx"
)

// EdgeEtcd is the edge etcd's client endpoints, comma-separated (one
// unless Config.EdgeEtcdMembers is more), as the -etcd-endpoints flag
// takes them.
func (s *Stack) EdgeEtcd() string {
	eps := make([]string, s.cfg.EdgeEtcdMembers)
	for i := range eps {
		eps[i], _ = s.edgeEtcdAddrs(i + 1)
	}
	return strings.Join(eps, ",")
}

// edgeEtcdAddrs returns the client and peer addresses of edge etcd
// member i (from 1): the fixed ports for the first, stable free ones for
// the others.
func (s *Stack) edgeEtcdAddrs(i int) (client, peer string) {
	if i == 1 {
		return addr(s.cfg.Ports.EdgeEtcd), addr(s.cfg.Ports.EdgeEtcdPeer)
	}
	c, p := s.dynamicPorts(edgeEtcdMemberName(s.cfg.Site, i))
	return addr(c), addr(p)
}

func edgeEtcdMemberName(site string, i int) string {
	if i == 1 {
		return "etcd-" + site
	}
	return "etcd-" + site + "-" + strconv.Itoa(i)
}

// edgeEtcdConfig is how member i of the edge etcd runs: the site's etcd
// certificate, tuned so that worker leases may be as short as one second.
func (s *Stack) edgeEtcdConfig(i int) etcdx.EmbeddedConfig {
	files := s.PKI(s.cfg.Site).Files(access.Etcd)
	client, peer := s.edgeEtcdAddrs(i)
	name := edgeEtcdMemberName(s.cfg.Site, i)
	cfg := etcdx.EmbeddedConfig{
		Name: name, Dir: filepath.Join(s.cfg.RunDir, name), ClientAddr: client, PeerAddr: peer,
		Heartbeat: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		TLS: s.etcdTLS(&files),
	}
	if s.cfg.EdgeEtcdMembers > 1 {
		for m := 1; m <= s.cfg.EdgeEtcdMembers; m++ {
			_, p := s.edgeEtcdAddrs(m)
			cfg.Cluster = append(cfg.Cluster, etcdx.EmbeddedPeer{Name: edgeEtcdMemberName(s.cfg.Site, m), PeerAddr: p})
		}
	}
	return cfg
}

// startEdgeEtcd runs the edge site's etcd members in this process
// (multi-node stacks), concurrently: a member of several is ready only
// once a quorum runs.
func (s *Stack) startEdgeEtcd(ctx context.Context) error {
	s.edgeEtcd = make([]*etcdx.Embedded, s.cfg.EdgeEtcdMembers)
	errs := make([]error, s.cfg.EdgeEtcdMembers)
	var wg sync.WaitGroup
	for i := range s.edgeEtcd {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.edgeEtcd[i], errs[i] = etcdx.StartEmbedded(ctx, s.edgeEtcdConfig(i+1), s.logger)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("localstack: edge etcd: %w", err)
	}
	for _, n := range s.cfg.Nodes {
		if n.ProxyEtcd {
			p, err := netx.NewProxy(addr(s.cfg.Ports.EdgeEtcd))
			if err != nil {
				return err
			}
			s.proxies[n.Name] = p
		}
	}
	return nil
}

// StopEdgeEtcdMember stops member i (from 1) of the edge etcd, as a
// smashed board would take it away; stopping a majority of the members
// loses the site's quorum.
func (s *Stack) StopEdgeEtcdMember(i int) error {
	s.mu.Lock()
	if i < 1 || i > len(s.edgeEtcd) {
		s.mu.Unlock()
		return fmt.Errorf("localstack: no edge etcd member %d (the stack runs %d in this process)", i, len(s.edgeEtcd))
	}
	m := s.edgeEtcd[i-1]
	s.edgeEtcd[i-1] = nil
	s.mu.Unlock()
	if m != nil {
		m.Close()
	}
	return nil
}

// StartEdgeEtcdMember starts a stopped member i (from 1) of the edge etcd
// again, with its data. It returns once the member has rejoined, which
// needs a quorum: start the members that restore it concurrently.
func (s *Stack) StartEdgeEtcdMember(ctx context.Context, i int) error {
	s.mu.Lock()
	if i < 1 || i > len(s.edgeEtcd) {
		s.mu.Unlock()
		return fmt.Errorf("localstack: no edge etcd member %d (the stack runs %d in this process)", i, len(s.edgeEtcd))
	}
	running := s.edgeEtcd[i-1] != nil
	s.mu.Unlock()
	if running {
		return nil
	}
	m, err := etcdx.StartEmbedded(ctx, s.edgeEtcdConfig(i), s.logger)
	if err != nil {
		return fmt.Errorf("localstack: edge etcd member %d: %w", i, err)
	}
	s.mu.Lock()
	s.edgeEtcd[i-1] = m
	s.mu.Unlock()
	return nil
}

func (s *Stack) stopEdgeEtcd() {
	for _, p := range s.proxies {
		p.Close()
	}
	s.mu.Lock()
	members := s.edgeEtcd
	s.edgeEtcd = nil
	s.mu.Unlock()
	for _, m := range members {
		if m != nil {
			m.Close()
		}
	}
}
