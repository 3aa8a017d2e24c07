// Package placement holds the control-plane model every site shares: where
// workers, workloads and assignments live in the site's etcd, the pipeline
// spec that declares workloads, and the pure placement decision.
//
// Layout under /cefiot/v1/sites/<site>/:
//
//	workers/<worker id>       Worker, attached to the worker's lease
//	workloads/<name>          Workload, written by applying a spec
//	assignments/<name>        Assignment (worker, its lease, node, epoch)
//	claims/<name>             Claim, written by the owner under its lease
//	nodes/<node>              NodeState (cordoned, drained)
//	spec-applied              hash of the last -spec file the leader applied
//	election/                 scheduler leader election
package placement

import (
	"fmt"
	"regexp"
	"strings"
)

// Keys builds the etcd keys of one site.
type Keys struct{ site string }

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ValidName reports whether s may be used as a site, worker or workload name.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// NewKeys returns the keys of site.
func NewKeys(site string) (Keys, error) {
	// No '.': Kafka names of a site's stages are "<prefix>.<site>.", and
	// a site's ACLs grant by that prefix (see pipeline.EnrichPrefix).
	if !ValidName(site) || strings.ContainsAny(site, ":.") {
		return Keys{}, fmt.Errorf("site name %q: must match %s without ':' or '.'", site, nameRE)
	}
	return Keys{site: site}, nil
}

// Site is the site name.
func (k Keys) Site() string { return k.site }

// Prefix is the root of the site.
func (k Keys) Prefix() string { return "/cefiot/v1/sites/" + k.site + "/" }

// Workers is the prefix of worker registrations.
func (k Keys) Workers() string { return k.Prefix() + "workers/" }

// Worker is the registration key of one worker.
func (k Keys) Worker(id string) string { return k.Workers() + id }

// Workloads is the prefix of declared workloads.
func (k Keys) Workloads() string { return k.Prefix() + "workloads/" }

// Workload is the key of one declared workload.
func (k Keys) Workload(name string) string { return k.Workloads() + name }

// Assignments is the prefix of assignments.
func (k Keys) Assignments() string { return k.Prefix() + "assignments/" }

// Assignment is the assignment key of one workload.
func (k Keys) Assignment(workload string) string { return k.Assignments() + workload }

// Election is the prefix of the scheduler election.
func (k Keys) Election() string { return k.Prefix() + "election/" }

// Claims is the prefix of the owners' claims.
func (k Keys) Claims() string { return k.Prefix() + "claims/" }

// Claim is the claim key of one workload.
func (k Keys) Claim(workload string) string { return k.Claims() + workload }

// Nodes is the prefix of node states.
func (k Keys) Nodes() string { return k.Prefix() + "nodes/" }

// Node is the state key of one node.
func (k Keys) Node(name string) string { return k.Nodes() + name }

// SpecApplied holds the hash of the last spec file a leader applied, so a
// leader change does not undo changes made through the admin API.
func (k Keys) SpecApplied() string { return k.Prefix() + "spec-applied" }
