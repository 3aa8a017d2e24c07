// Package clientconfig is the file in which an admin client (cefiotctl, a
// script) finds its sites and its credentials, as kubectl finds its
// clusters in a kubeconfig: for each site, the scheduler's admin address
// and the person's key pair and the site's trust bundle.
//
//	current-site: edge
//	sites:
//	  edge:
//	    scheduler: 127.0.0.1:9100
//	    cert: pki/edge/operator-local.crt
//	    key: pki/edge/operator-local.key
//	    ca: pki/edge/ca.crt
//
// Relative paths are relative to the file. `make run` writes one for its
// operator (run/cefiotctl.yaml).
package clientconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"gopkg.in/yaml.v3"

	"github.com/cefiot/cefiot/libs/tlsx"
)

// EnvVar names the file to use.
const EnvVar = "CEFIOT_CONFIG"

// Site is one site's entry.
type Site struct {
	Scheduler string `yaml:"scheduler"`
	// Sink is the admin gRPC address of the site's sink (the cloud's
	// store and its list of edge sites); empty where the site has none.
	Sink string `yaml:"sink,omitempty"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

// Files are the site's credential files.
func (s Site) Files() tlsx.Files { return tlsx.Files{Cert: s.Cert, Key: s.Key, CA: s.CA} }

// Config is the file's content.
type Config struct {
	CurrentSite string          `yaml:"current-site"`
	Sites       map[string]Site `yaml:"sites"`
	path        string
}

// Path is the file the config was read from.
func (c *Config) Path() string { return c.path }

// SiteNames are the sites, sorted.
func (c *Config) SiteNames() []string {
	var out []string
	for n := range c.Sites {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Site returns the entry of name ("" = the current site).
func (c *Config) Site(name string) (string, Site, error) {
	if name == "" {
		name = c.CurrentSite
	}
	s, ok := c.Sites[name]
	if !ok {
		return "", Site{}, fmt.Errorf("%s: no site %q (sites: %v)", c.path, name, c.SiteNames())
	}
	return name, s, nil
}

// Identity loads the key pair of every site as one client.
func (c *Config) Identity() (tlsx.Sites, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var out tlsx.Sites
	for _, name := range c.SiteNames() {
		src, err := tlsx.Load(c.Sites[name].Files(), quiet, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: site %s: %w", c.path, name, err)
		}
		out = append(out, src)
	}
	return out, nil
}

// Read reads and checks a config file.
func Read(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("client config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("client config %s: %w", path, err)
	}
	c.path = path
	if len(c.Sites) == 0 {
		return nil, fmt.Errorf("client config %s: no sites", path)
	}
	if c.CurrentSite == "" {
		c.CurrentSite = c.SiteNames()[0]
	}
	if _, ok := c.Sites[c.CurrentSite]; !ok {
		return nil, fmt.Errorf("client config %s: current-site %q is not among the sites", path, c.CurrentSite)
	}
	dir := filepath.Dir(path)
	for name, s := range c.Sites {
		for key, p := range map[string]*string{"cert": &s.Cert, "key": &s.Key, "ca": &s.CA} {
			if *p == "" {
				return nil, fmt.Errorf("client config %s: site %s: %s is required", path, name, key)
			}
			if !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		c.Sites[name] = s
	}
	return &c, nil
}

// Write writes a config file whose paths are relative to it when they are
// under its directory.
func Write(path string, c Config) error {
	dir := filepath.Dir(path)
	out := Config{CurrentSite: c.CurrentSite, Sites: map[string]Site{}}
	for name, s := range c.Sites {
		for _, p := range []*string{&s.Cert, &s.Key, &s.CA} {
			if rel, err := filepath.Rel(dir, *p); err == nil && filepath.IsLocal(rel) {
				*p = rel
			}
		}
		out.Sites[name] = s
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("client config: %w", err)
	}
	return nil
}

// Find returns the config to use: the file named by $CEFIOT_CONFIG, else
// the first of candidates that exists. Neither: fs.ErrNotExist.
func Find(lookupEnv func(string) (string, bool), candidates ...string) (*Config, error) {
	if p, ok := lookupEnv(EnvVar); ok && p != "" {
		return Read(p)
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return Read(p)
		}
	}
	return nil, fmt.Errorf("no client config (set %s, or look in %v): %w", EnvVar, candidates, fs.ErrNotExist)
}

// ErrNotFound reports whether err is Find's "no config".
func ErrNotFound(err error) bool { return errors.Is(err, fs.ErrNotExist) }
