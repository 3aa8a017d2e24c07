package check

import (
	"fmt"
	"net"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// postgresImages name the official PostgreSQL image (Docker Hub's library
// image), the one third-party image these checks know besides Kafka's and
// etcd's.
var postgresImages = map[string]bool{"postgres": true, "docker.io/library/postgres": true, "library/postgres": true}

// postgresSecret is the Secret of PostgreSQL's server certificate, from
// the site's PKI like every cefiot-tls-* Secret (component "postgres").
const postgresSecret = secretPrefix + "postgres"

// postgres checks the frame index's PostgreSQL in namespace ns, as a
// StatefulSet of the official image (components/postgres) or as a
// CloudNativePG Cluster (components/cloudnative-pg): TLS with the site's
// certificate, and client authentication by SCRAM-SHA-256 over TLS only.
func (p *policy) postgres(ns string) {
	for _, w := range p.set.Workloads {
		if w.Namespace != ns {
			continue
		}
		for i := range w.Template.Spec.Containers {
			c := &w.Template.Spec.Containers[i]
			if postgresImages[imageRepo(c.Image)] {
				p.postgresServer(w, c)
			}
		}
	}
	for _, cl := range p.set.Clusters {
		if cl.Namespace == ns {
			p.cnpgCluster(cl)
		}
	}
}

// postgresServer checks a container of the official image: the server's
// settings are its `-c name=value` arguments.
func (p *policy) postgresServer(w Workload, c *corev1.Container) {
	id := containerID(w, c)
	settings, err := postgresSettings(c.Args)
	if err != nil {
		p.fail(id, "args: %v", err)
		return
	}
	want := map[string]string{"ssl": "on", "password_encryption": "scram-sha-256"}
	for _, name := range sortedKeys(want) {
		if settings[name] != want[name] {
			p.fail(id, "%s = %q, want %q (-c %s=%s)", name, settings[name], want[name], name, want[name])
		}
	}
	tls := map[string]bool{}
	for _, v := range w.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == postgresSecret {
			tls[v.Name] = true
		}
	}
	for _, name := range []string{"ssl_cert_file", "ssl_key_file"} {
		if f := settings[name]; f == "" || !inVolume(c, tls, f) {
			p.fail(id, "%s %q is not in the mounted Secret %s (the site's certificate for postgres)", name, f, postgresSecret)
		}
	}
	hbaFile := settings["hba_file"]
	if hbaFile == "" {
		p.fail(id, "no hba_file: the image's default pg_hba.conf lets in connections without TLS")
	} else if hba, err := p.mountedConfigMapFile(w.Namespace, w, c, hbaFile); err != nil {
		p.fail(id, "hba_file %s: %v", hbaFile, err)
	} else {
		for _, err := range checkHBA(strings.Split(hba, "\n"), false) {
			p.fail(id, "hba_file %s: %v", hbaFile, err)
		}
	}
	p.postgresData(w, c, id)
}

// postgresData: PGDATA lies on a volume claim of the StatefulSet.
func (p *policy) postgresData(w Workload, c *corev1.Container, id string) {
	var pgdata string
	for _, e := range c.Env {
		if e.Name == "PGDATA" {
			pgdata = e.Value
		}
	}
	if pgdata == "" {
		pgdata = "/var/lib/postgresql/data"
	}
	claims := map[string]bool{}
	if sts, ok := w.Typed.(*appsv1.StatefulSet); ok {
		for _, t := range sts.Spec.VolumeClaimTemplates {
			claims[t.Name] = true
		}
	}
	for _, v := range w.Template.Spec.Volumes {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = true
		}
	}
	if !inVolume(c, claims, pgdata) {
		p.fail(id, "PGDATA %s is not on a persistent volume claim: the index would be lost with the pod", pgdata)
	}
}

// postgresSettings reads `-c name=value` (and `--name=value`) arguments.
func postgresSettings(args []string) (map[string]string, error) {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-c":
			if i+1 == len(args) {
				return nil, fmt.Errorf("-c without a setting")
			}
			i++
			a = args[i]
		case strings.HasPrefix(a, "-c"):
			a = strings.TrimPrefix(a, "-c")
		case strings.HasPrefix(a, "--"):
			a = strings.ReplaceAll(strings.TrimPrefix(a, "--"), "-", "_")
		default:
			continue
		}
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			return nil, fmt.Errorf("setting %q is not name=value", a)
		}
		out[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(value), "'")
	}
	return out, nil
}

// checkHBA checks pg_hba.conf lines: every rule is "hostssl ...
// scram-sha-256"; with rejectPlain (CloudNativePG, which appends its own
// "host all all all" rule after the user's), "hostnossl ... reject" rules
// are allowed too and one for all databases, users and addresses is
// required.
func checkHBA(lines []string, rejectPlain bool) []error {
	var errs []error
	rules, rejectsAll := 0, false
	for n, line := range lines {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rules++
		method := ""
		if len(f) >= 5 && strings.HasPrefix(f[0], "host") {
			method = f[4]
			if net.ParseIP(f[4]) != nil && len(f) >= 6 { // address and mask
				method = f[5]
			}
		}
		switch {
		case f[0] == "hostssl" && method == "scram-sha-256":
		case rejectPlain && f[0] == "hostnossl" && method == "reject":
			rejectsAll = rejectsAll || (f[1] == "all" && f[2] == "all" && f[3] == "all")
		default:
			errs = append(errs, fmt.Errorf("line %d %q: only hostssl rules with scram-sha-256 may let a client in", n+1, strings.TrimSpace(line)))
		}
	}
	if rules == 0 {
		errs = append(errs, fmt.Errorf("no rule: nobody could connect"))
	}
	if rejectPlain && !rejectsAll {
		errs = append(errs, fmt.Errorf(`no "hostnossl all all all reject": the operator's trailing "host all all all" rule would let connections without TLS in`))
	}
	return errs
}

// cnpgCluster checks a CloudNativePG Cluster: replicated, the site's
// server certificate, SCRAM over TLS only, instances on different nodes.
func (p *policy) cnpgCluster(cl *CNPGCluster) {
	id := fmt.Sprintf("Cluster %s/%s", cl.Namespace, cl.Name)
	s := cl.Spec
	if s.Instances < 2 {
		p.fail(id, "spec.instances %d: want at least 2 (a primary and a standby)", s.Instances)
	}
	if tag := strings.TrimPrefix(strings.TrimPrefix(s.ImageName, imageRepo(s.ImageName)), ":"); s.ImageName == "" || (!strings.Contains(s.ImageName, "@sha256:") && (tag == "" || tag == "latest")) {
		p.fail(id, "spec.imageName %q must be pinned to a tag other than latest (or a digest): the operator's default moves with its version", s.ImageName)
	}
	if s.Certificates == nil || s.Certificates.ServerTLSSecret != postgresSecret || s.Certificates.ServerCASecret == "" {
		p.fail(id, "spec.certificates: serverTLSSecret must be %s (the site's certificate, which the sinks verify) with a serverCASecret", postgresSecret)
	}
	for _, err := range checkHBA(s.PostgreSQL.PgHBA, true) {
		p.fail(id, "spec.postgresql.pg_hba: %v", err)
	}
	if v := s.PostgreSQL.Parameters["password_encryption"]; v != "" && v != "scram-sha-256" {
		p.fail(id, "spec.postgresql.parameters.password_encryption %q: want scram-sha-256", v)
	}
	if a := s.Affinity; a != nil && ((a.EnablePodAntiAffinity != nil && !*a.EnablePodAntiAffinity) || (a.TopologyKey != "" && a.TopologyKey != "kubernetes.io/hostname")) {
		p.fail(id, "spec.affinity: the instances must be kept on different nodes (enablePodAntiAffinity, topologyKey kubernetes.io/hostname)")
	}
	if s.Storage.Size == nil || s.Storage.Size.IsZero() {
		p.fail(id, "spec.storage.size is not set")
	}
}
