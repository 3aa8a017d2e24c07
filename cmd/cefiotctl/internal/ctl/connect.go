package ctl

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cefiot/cefiot/libs/clientconfig"
)

// defaultConfigs are where cefiotctl looks for its client config when
// $CEFIOT_CONFIG is not set: the local default's (written by make run),
// then the user's.
func defaultConfigs() []string {
	out := []string{filepath.Join("run", "cefiotctl.yaml")}
	if dir, err := os.UserConfigDir(); err == nil {
		out = append(out, filepath.Join(dir, "cefiot", "cefiotctl.yaml"))
	}
	return out
}

// connection is how cefiotctl reaches the sites: their schedulers'
// addresses and the person's credentials in each.
type connection struct {
	cfg  *clientconfig.Config // nil with -insecure-plaintext and no file
	cred grpc.DialOption
}

// connect reads the client config (path, or found as clientconfig.Find
// does). With plaintext, a missing config is no error.
func connect(path string, plaintext bool, lookupEnv func(string) (string, bool)) (*connection, error) {
	var cfg *clientconfig.Config
	var err error
	if path != "" {
		cfg, err = clientconfig.Read(path)
	} else {
		cfg, err = clientconfig.Find(lookupEnv, defaultConfigs()...)
	}
	if plaintext {
		if err != nil && !clientconfig.ErrNotFound(err) {
			return nil, err
		}
		return &connection{cfg: cfg, cred: grpc.WithTransportCredentials(insecure.NewCredentials())}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w\n(cefiotctl calls with a client certificate: run make run, which writes run/cefiotctl.yaml, or give -config)", err)
	}
	id, err := cfg.Identity()
	if err != nil {
		return nil, err
	}
	return &connection{cfg: cfg, cred: id.DialOption()}, nil
}

// scheduler is the admin address of site's scheduler ("" = the config's
// current site), unless addr names one.
func (c *connection) scheduler(site, addr string) (string, error) {
	if addr != "" {
		return addr, nil
	}
	if c.cfg == nil {
		return "", fmt.Errorf("no scheduler address: give -scheduler or a client config")
	}
	name, s, err := c.cfg.Site(site)
	if err != nil {
		return "", err
	}
	if s.Scheduler == "" {
		return "", fmt.Errorf("%s: site %s has no scheduler address", c.cfg.Path(), name)
	}
	return s.Scheduler, nil
}

// sink is the admin address of the sink of site ("" = the first site of
// the config that names a sink), unless addr names one.
func (c *connection) sink(site, addr string) (string, error) {
	if addr != "" {
		return addr, nil
	}
	if c.cfg == nil {
		return "", fmt.Errorf("no sink address: give -sink or a client config")
	}
	if site != "" {
		name, s, err := c.cfg.Site(site)
		if err != nil {
			return "", err
		}
		if s.Sink == "" {
			return "", fmt.Errorf("%s: site %s has no sink address", c.cfg.Path(), name)
		}
		return s.Sink, nil
	}
	for _, n := range c.cfg.SiteNames() {
		if s := c.cfg.Sites[n]; s.Sink != "" {
			return s.Sink, nil
		}
	}
	return "", fmt.Errorf("%s names no sink: give -sink", c.cfg.Path())
}

func (c *connection) dial(addr string) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr, c.cred)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	return conn, nil
}

// otherSite is the one site of the config that is not home (for a move
// back to home, where the remote is the site the workload is in).
func (c *connection) otherSite(home string) (string, error) {
	if c.cfg == nil {
		return "", fmt.Errorf("no client config")
	}
	if home == "" {
		home = c.cfg.CurrentSite
	}
	var others []string
	for _, n := range c.cfg.SiteNames() {
		if n != home {
			others = append(others, n)
		}
	}
	if len(others) != 1 {
		return "", fmt.Errorf("%s has %d sites besides %s: say which with -remote", c.cfg.Path(), len(others), home)
	}
	return others[0], nil
}
