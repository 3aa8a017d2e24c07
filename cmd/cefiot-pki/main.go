// Command cefiot-pki makes a site's PKI: its CA and a certificate per
// component (spiffe://<site>/<component>), in a site directory, and the
// Kubernetes Secrets to deploy them.
//
//	cefiot-pki init -site edge -dir run/pki/edge           # CA (kept if there) + the site's components
//	cefiot-pki issue -site edge -dir run/pki/edge -component operator/alice
//	cefiot-pki issue -site edge -dir run/pki/edge -component viewer/bob -cameras door,yard   # bob sees only those
//	cefiot-pki k8s-secrets -site edge -dir run/pki/edge -namespace cefiot-edge > secrets.yaml
//	cefiot-pki k8s-ca-secret -site edge -dir run/pki/edge -namespace cefiot-edge | kubectl apply -f -  # for cert-manager
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cefiot/cefiot/libs/config"
	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/program"
)

func main() {
	program.Main("cefiot-pki", func(ctx context.Context, args []string) error { return run(ctx, args, os.Stdout) })
}

const usage = `Usage: cefiot-pki init|issue|k8s-secrets|k8s-ca-secret [flags]

  init         make the site's CA in -dir (an existing one is kept) and issue
               every component's certificate (-components)
  issue        issue one more component's certificate (-component)
  k8s-secrets  print one kubernetes.io/tls Secret per component of -dir
  k8s-ca-secret print the Secret cefiot-site-ca (the CA's certificate and
               key) for the optional cert-manager component's Issuer
Flags (every command):
`

// defaultComponents are the identities of a site in the local default.
const defaultComponents = "scheduler,worker/capture,worker/enrich,worker/bridge,worker/sink,kafka,etcd,console,operator/local"

type options struct {
	site, dir, components, component, hosts, namespace, cameras string
	validity                                                    time.Duration
}

func flags(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("cefiot-pki", flag.ContinueOnError)
	fs.StringVar(&o.site, "site", "", "site (trust domain) name")
	fs.StringVar(&o.dir, "dir", "", "site directory (ca.crt, ca.key, <component>.crt/.key)")
	fs.StringVar(&o.components, "components", defaultComponents, "init: comma-separated components to issue")
	fs.StringVar(&o.component, "component", "", "issue: the component, e.g. operator/alice or worker/enrich")
	fs.StringVar(&o.cameras, "cameras", "", "issue: comma-separated cameras the identity is limited to (a viewer of some cameras; empty: all)")
	fs.StringVar(&o.hosts, "hosts", "127.0.0.1,localhost", "comma-separated DNS names and IP addresses the certificates are valid for as servers")
	fs.DurationVar(&o.validity, "validity", pki.MaxValidity, "certificate lifetime (at most 2160h, 90 days)")
	fs.StringVar(&o.namespace, "namespace", "", "k8s-secrets: namespace of the Secrets")
	return fs
}

func run(_ context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprint(out, usage)
		fs := flags(&options{})
		fs.SetOutput(out)
		fs.PrintDefaults()
		if len(args) == 0 {
			return errors.New("missing command")
		}
		return flag.ErrHelp
	}
	var o options
	if err := config.Parse(flags(&o), args[1:], nil); err != nil {
		return err
	}
	if o.site == "" || o.dir == "" {
		return errors.New("-site and -dir are required")
	}
	hosts := config.List(o.hosts)
	now := time.Now()
	switch args[0] {
	case "init":
		components := config.List(o.components)
		_, issued, created, err := pki.InitSite(o.dir, o.site, components, hosts, o.validity, now)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "CA of site %s in %s (%s)\n", o.site, o.dir, map[bool]string{true: "created", false: "kept"}[created])
		for i, c := range components {
			fmt.Fprintf(out, "  %-28s until %s\n", pki.Identity{Site: o.site, Component: c}, issued[i].Cert.NotAfter.Format(time.DateOnly))
		}
		return nil
	case "issue":
		if o.component == "" {
			return errors.New("issue: -component is required")
		}
		ca, _, err := pki.EnsureCA(o.dir, o.site, now)
		if err != nil {
			return err
		}
		var opts []pki.IssueOption
		if o.cameras != "" {
			opts = append(opts, pki.WithCameras(config.List(o.cameras)...))
		}
		is, err := ca.WriteIssued(o.dir, o.component, hosts, o.validity, now, opts...)
		if err != nil {
			return err
		}
		cert, key, _ := pki.Paths(o.dir, o.component)
		fmt.Fprintf(out, "%s until %s: %s %s\n", pki.Identity{Site: o.site, Component: o.component}, is.Cert.NotAfter.Format(time.DateOnly), cert, key)
		return nil
	case "k8s-secrets":
		return secrets(out, o)
	case "k8s-ca-secret":
		return caSecret(out, o)
	}
	return fmt.Errorf("unknown command %q (want init, issue, k8s-secrets or k8s-ca-secret)", args[0])
}

// caSecret prints the site's CA as the kubernetes.io/tls Secret
// cefiot-site-ca, which cert-manager's CA Issuer signs with. The CA key then
// lives in the cluster: whoever may read that Secret may issue identities
// of the site (docs/security.md).
func caSecret(out io.Writer, o options) error {
	certPEM, keyPEM, err := readCA(o.dir)
	if err != nil {
		return err
	}
	if _, err := pki.ParseCA(certPEM, keyPEM); err != nil {
		return fmt.Errorf("site CA in %s: %w", o.dir, err)
	}
	enc := yaml.NewEncoder(out)
	defer func() { _ = enc.Close() }()
	return enc.Encode(map[string]any{
		"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": secretMeta(o, "cefiot-site-ca"),
		"stringData": map[string]string{"tls.crt": string(certPEM), "tls.key": string(keyPEM)},
	})
}

func readCA(dir string) (certPEM, keyPEM []byte, err error) {
	certPath, keyPath, _ := pki.Paths(dir, "ca")
	if certPEM, err = os.ReadFile(certPath); err != nil {
		return nil, nil, fmt.Errorf("site CA: %w", err)
	}
	if keyPEM, err = os.ReadFile(keyPath); err != nil {
		return nil, nil, fmt.Errorf("site CA key: %w", err)
	}
	return certPEM, keyPEM, nil
}

func secretMeta(o options, name string) map[string]any {
	meta := map[string]any{"name": name, "labels": map[string]string{"app.kubernetes.io/part-of": "cefiot", "cefiot.io/site": o.site}}
	if o.namespace != "" {
		meta["namespace"] = o.namespace
	}
	return meta
}

// secrets prints a kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) per
// component found in the site directory. The CA key is never included.
func secrets(out io.Writer, o options) error {
	entries, err := os.ReadDir(o.dir)
	if err != nil {
		return fmt.Errorf("site directory: %w", err)
	}
	caPEM, err := os.ReadFile(o.dir + "/ca.crt")
	if err != nil {
		return fmt.Errorf("site CA: %w", err)
	}
	enc := yaml.NewEncoder(out)
	defer func() { _ = enc.Close() }()
	n := 0
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".crt")
		if !ok || base == "ca" {
			continue
		}
		crt, err := os.ReadFile(o.dir + "/" + e.Name())
		if err != nil {
			return err
		}
		key, err := os.ReadFile(o.dir + "/" + base + ".key")
		if err != nil {
			return fmt.Errorf("key of %s: %w", base, err)
		}
		meta := secretMeta(o, "cefiot-tls-"+base)
		if err := enc.Encode(map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls", "metadata": meta,
			"stringData": map[string]string{"tls.crt": string(crt), "tls.key": string(key), "ca.crt": string(caPEM)},
		}); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("no component certificates in %s (run cefiot-pki init)", o.dir)
	}
	return nil
}
