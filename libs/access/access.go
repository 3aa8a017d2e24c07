// Package access says who may do what in a cefiot site. Every identity the
// site's CA issues (spiffe://<site>/<component>) has a role given by its
// component: operators change the pipeline, observers read it, workers
// run it. Admin APIs build their authorization policy from these roles,
// so a role means the same thing on every port.
package access

import (
	"strings"

	"github.com/cefiot/cefiot/libs/pki"
	"github.com/cefiot/cefiot/libs/tlsx"
)

// Components of a site's identities.
const (
	Scheduler = "scheduler"
	Console   = "console"
	// Proxy is a reverse proxy that signs people on in front of the
	// console (single sign-on): the console believes the user it names
	// only from this identity.
	Proxy = "proxy"
	Kafka = "kafka"
	Etcd  = "etcd"
	// Postgres is the cloud's PostgreSQL server: the frame index the sink
	// replicas share.
	Postgres = "postgres"
	// OperatorPrefix starts a person's operator identity: operator/alice.
	OperatorPrefix = "operator/"
	// AdminPrefix starts a person's administrator identity: admin/carol,
	// who may also replace what a site runs (apply a spec, define and
	// delete workloads).
	AdminPrefix = "admin/"
	// ViewerPrefix starts a person's read-only identity: viewer/bob.
	ViewerPrefix = "viewer/"
	// MonitorPrefix starts a metrics scraper's identity: monitor/prometheus.
	MonitorPrefix = "monitor/"
	// WorkerPrefix starts a data-plane worker's identity: worker/enrich.
	WorkerPrefix = "worker/"
	// NodePrefix starts an edge board's own identity: node/board-7. A
	// board shows it to the cloud (the bridge's cloud credential), so one
	// stolen board can be locked out of the cloud while the site's other
	// boards go on.
	NodePrefix = "node/"
)

// Worker is the identity component of the workers of a kind.
func Worker(kind string) string { return WorkerPrefix + kind }

// Node is the identity component of the edge board named node.
func Node(node string) string { return NodePrefix + node }

// In Kubernetes a board's node/<board> credential is a pod certificate:
// the bridge's pod asks BoardSigner for it (the scheduler's leader
// answers), on nodes enrolled with the label BoardEnrolledLabel=true. The
// label's prefix is one the NodeRestriction admission plugin keeps
// kubelets from setting: a board cannot enrol itself, nor re-enrol after
// its Node object was deleted.
const (
	BoardSigner        = "cefiot.io/board"
	BoardEnrolledLabel = "node-restriction.kubernetes.io/cefiot-board-credential"
)

// Role is the role of id in its site: the first part of its component
// (operator, viewer, monitor, worker, node) or the component itself
// (scheduler, console, kafka, etcd).
func Role(id pki.Identity) string {
	role, _, _ := strings.Cut(id.Component, "/")
	return role
}

// Operators may change what a site runs: pause, rate-limit, cordon, drain,
// move, apply and delete. The console may not by itself: it acts for the
// person using it (OnBehalfOf), whose role decides.
func Operators() []string { return []string{OperatorPrefix + "*", AdminPrefix + "*"} }

// Administrators may also change what a site is made of: apply a spec,
// define and delete workloads (an operator only hands workloads off
// between sites).
func Administrators() []string { return []string{AdminPrefix + "*"} }

// IsAdministrator reports whether id is an administrator.
func IsAdministrator(id pki.Identity) bool { return tlsx.Allowed(Administrators(), id) }

// OnBehalfOf is the HTTP header in which the console names the person it
// acts for (their component, operator/alice), and the gRPC metadata key in
// which a REST gateway passes it on. A server believes it only from the
// console of its own site, and then authorizes, and audits, that person
// in its site, with the console as the one they acted through.
const OnBehalfOf = "X-Cefiot-On-Behalf-Of"

// OnBehalfOfCameras is the header in which the console names the cameras
// the person it acts for is limited to (comma-separated; absent: all).
// Believed with OnBehalfOf only.
const OnBehalfOfCameras = "X-Cefiot-Cameras"

// Observers may read status, frames and events.
func Observers() []string {
	return []string{OperatorPrefix + "*", AdminPrefix + "*", Console, ViewerPrefix + "*", MonitorPrefix + "*"}
}

// Scrapers may read /metrics.
func Scrapers() []string { return Observers() }

// Profilers may read /debug/pprof: a profile shows the process's inner
// workings, so only operators.
func Profilers() []string { return []string{OperatorPrefix + "*", AdminPrefix + "*"} }

// Policy is the authorization of an admin gRPC API of site: observers may
// call every method, operators also those in changes (full method names,
// e.g. cefiotv1.BridgeService_Pause_FullMethodName); health and
// reflection are open to every identity of the site.
func Policy(site, service string, changes ...string) tlsx.Policy {
	rules := map[string][]string{
		"/" + strings.TrimPrefix(service, "/") + "/": Observers(),
	}
	for _, m := range changes {
		rules[m] = Operators()
	}
	return tlsx.Policy{Site: site, Rules: rules, Default: []string{"*", "*/*", "*/*/*"}}
}
