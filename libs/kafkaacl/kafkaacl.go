// Package kafkaacl says what each identity may do in each Kafka cluster,
// as ACLs for the brokers' StandardAuthorizer (which refuses everything no
// ACL allows): in a site's own cluster, each stage only what its topics,
// group and transactional ids need; in the cloud cluster, a site's bridge
// only the topics, transactional ids and groups of its own prefix, and the
// cloud's sink and enrich what they read and write. Names come from
// libs/pipeline; principals from the certificates (libs/pki).
//
// Kafka names an mTLS client by its certificate's subject; cefiot's CA
// writes CN=<component>,OU=<site>,O=cefiot, so the principal of
// spiffe://edge/worker/bridge is User:CN=worker/bridge,OU=edge,O=cefiot.
// Only a CA in the cluster's trust bundle can issue it.
package kafkaacl

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/cefiot/cefiot/libs/access"
	"github.com/cefiot/cefiot/libs/pipeline"
	"github.com/cefiot/cefiot/libs/pki"
)

// Principal is the Kafka principal of an identity.
func Principal(id pki.Identity) string {
	return "User:CN=" + id.Component + ",OU=" + id.Site + ",O=cefiot"
}

// Grant is one right: an operation on a resource (a literal name, or every
// name with a prefix). With Deny it is a refusal, which Kafka's authorizer
// puts before every grant.
type Grant struct {
	Principal string
	Resource  kafka.ResourceType
	Name      string
	Prefixed  bool
	Operation kafka.ACLOperation
	Deny      bool
}

// Binding is the grant as an ACL binding.
func (g Grant) Binding() kafka.ACLBinding {
	pattern := kafka.ResourcePatternTypeLiteral
	if g.Prefixed {
		pattern = kafka.ResourcePatternTypePrefixed
	}
	permission := kafka.ACLPermissionTypeAllow
	if g.Deny {
		permission = kafka.ACLPermissionTypeDeny
	}
	return kafka.ACLBinding{
		Type: g.Resource, Name: g.Name, ResourcePatternType: pattern,
		Principal: g.Principal, Host: "*", Operation: g.Operation, PermissionType: permission,
	}
}

func (g Grant) String() string {
	how := "="
	if g.Prefixed {
		how = "*="
	}
	s := fmt.Sprintf("%s %s %s%s%s", g.Principal, g.Operation, g.Resource, how, g.Name)
	if g.Deny {
		s = "DENY " + s
	}
	return s
}

type grants struct {
	principal string
	out       []Grant
}

func (g *grants) topic(name string, prefixed bool, ops ...kafka.ACLOperation) *grants {
	for _, op := range ops {
		g.out = append(g.out, Grant{Principal: g.principal, Resource: kafka.ResourceTopic, Name: name, Prefixed: prefixed, Operation: op})
	}
	return g
}

func (g *grants) group(name string, prefixed bool) *grants {
	g.out = append(g.out, Grant{Principal: g.principal, Resource: kafka.ResourceGroup, Name: name, Prefixed: prefixed, Operation: kafka.ACLOperationRead})
	return g
}

// resourceTransactionalID is Kafka's (and librdkafka's) resource type 5,
// which the Go client does not name.
const resourceTransactionalID = kafka.ResourceType(5)

func (g *grants) transactions(prefix string) *grants {
	g.out = append(g.out, Grant{Principal: g.principal, Resource: resourceTransactionalID, Name: prefix, Prefixed: true, Operation: kafka.ACLOperationWrite})
	return g
}

func as(site, component string) *grants {
	return &grants{principal: Principal(pki.Identity{Site: site, Component: component})}
}

var (
	read     = kafka.ACLOperationRead
	write    = kafka.ACLOperationWrite
	create   = kafka.ACLOperationCreate
	alter    = kafka.ACLOperationAlter
	describe = kafka.ACLOperationDescribeConfigs
)

// Edge is what the stages of site may do in the site's own cluster.
func Edge(site string) []Grant {
	var out []Grant
	capture := as(site, access.Worker(pipeline.KindCapture)).
		topic(pipeline.TopicFramesRaw, false, write, create).
		topic(pipeline.TopicCameraStatus, false, write, create)
	// Enrich also writes into frames.raw: the markers of a cross-site
	// handoff, where both sides cut each partition.
	enrich := as(site, access.Worker(pipeline.KindEnrich)).
		topic(pipeline.TopicFramesRaw, false, read, write, create).
		topic(pipeline.TopicFramesEnriched, false, read, write, create).
		topic(pipeline.TopicFramesDeadLetter, false, write, create).
		topic(pipeline.TopicEventsDeadLetter, false, write, create).
		group(pipeline.EnrichPrefix(site), true).
		transactions(pipeline.EnrichPrefix(site))
	// The bridge forwards whichever topics its workload selects (a
	// regular expression may name any), so it reads every topic; it
	// writes none here.
	bridge := as(site, access.Worker(pipeline.KindBridge)).
		topic("*", false, read, describe).
		group(pipeline.BridgePrefix(site), true)
	// The console audits the logins, users and tokens it manages itself.
	console := as(site, access.Console)
	for _, g := range []*grants{capture, enrich, bridge, auditReader(site), console} {
		out = append(out, g.auditTrail().out...)
	}
	return out
}

// SharedEdgeBridge is what site's bridge may do in an edge cluster that
// several sites share, each under its own topic prefix (the bridge's
// -edge-topic-prefix): read the topics under its prefix and nothing of
// another site's, use its own groups, and append to the audit trail.
func SharedEdgeBridge(site, topicPrefix string) []Grant {
	return as(site, access.Worker(pipeline.KindBridge)).
		topic(topicPrefix, true, read, describe).
		group(pipeline.BridgePrefix(site), true).
		auditTrail().out
}

// auditReader is the scheduler, which also serves the audit trail (reads
// the topic).
func auditReader(site string) *grants {
	return as(site, access.Scheduler).topic(pipeline.TopicAudit, false, read).group(pipeline.AuditReaderGroup, false)
}

// auditTrail lets a process append its admin API's audit records to the
// site's audit topic (and create it).
func (g *grants) auditTrail() *grants {
	return g.topic(pipeline.TopicAudit, false, write, create)
}

// CloudSite is what site's bridge may do in the cloud cluster: its own
// topics (records, checkpoints, gaps), transactional ids and groups, and
// nothing of another site's. The rights go to each board of nodes (the
// bridge's cloud credential node/<node>, so one board can be revoked
// alone), or with no nodes to the site's shared bridge identity
// worker/bridge.
func CloudSite(site string, nodes ...string) []Grant {
	components := []string{access.Worker(pipeline.KindBridge)}
	if len(nodes) > 0 {
		components = components[:0]
		for _, n := range nodes {
			components = append(components, access.Node(n))
		}
	}
	var out []Grant
	for _, c := range components {
		out = append(out, as(site, c).
			topic(pipeline.CloudTopicPrefix(site), true, read, write, create, alter, describe).
			group(pipeline.BridgePrefix(site), true).
			transactions(pipeline.BridgePrefix(site)).out...)
	}
	return out
}

// DenyAll refuses id everything in a cluster, whatever any grant allows:
// the revocation of a stolen board's credential. It stays when the site's
// grants are applied again, so re-running an apply cannot readmit the
// board; deleting these ACLs does.
func DenyAll(id pki.Identity) []Grant {
	principal := Principal(id)
	all := kafka.ACLOperationAll
	return []Grant{
		{Principal: principal, Resource: kafka.ResourceTopic, Name: "*", Operation: all, Deny: true},
		{Principal: principal, Resource: kafka.ResourceGroup, Name: "*", Operation: all, Deny: true},
		{Principal: principal, Resource: resourceTransactionalID, Name: "*", Operation: all, Deny: true},
		{Principal: principal, Resource: kafka.ResourceBroker, Name: "kafka-cluster", Operation: all, Deny: true},
	}
}

// SiteFilters match every grant on site's names in the cloud cluster
// (its topics, groups and transactional ids), whoever holds it: deleting
// them locks every credential of the site out at its next request.
func SiteFilters(site string) kafka.ACLBindingFilters {
	filter := func(resource kafka.ResourceType, prefix string) kafka.ACLBindingFilter {
		return kafka.ACLBindingFilter{
			Type: resource, Name: prefix, ResourcePatternType: kafka.ResourcePatternTypePrefixed,
			Operation: kafka.ACLOperationAny, PermissionType: kafka.ACLPermissionTypeAny,
		}
	}
	return kafka.ACLBindingFilters{
		filter(kafka.ResourceTopic, pipeline.CloudTopicPrefix(site)),
		filter(kafka.ResourceGroup, pipeline.BridgePrefix(site)),
		filter(resourceTransactionalID, pipeline.BridgePrefix(site)),
	}
}

// Cloud is what the cloud site's own stages may do in its cluster: the
// sink reads every site's topics and writes its dead letters; enrich (run
// in the cloud for a site, after a cross-site move) reads and writes every
// site's topics in a transaction of its own.
func Cloud(cloud string) []Grant {
	sink := as(cloud, access.Worker(pipeline.KindSink)).
		topic(pipeline.CloudPrefix, true, read).
		topic(pipeline.TopicSinkDeadLetter, false, write, create).
		group(pipeline.SinkGroup(cloud), false)
	enrich := as(cloud, access.Worker(pipeline.KindEnrich)).
		topic(pipeline.CloudPrefix, true, read, write, create).
		topic(pipeline.TopicFramesDeadLetter, false, write, create).
		topic(pipeline.TopicEventsDeadLetter, false, write, create).
		group(pipeline.EnrichPrefix(cloud), true).
		transactions(pipeline.EnrichPrefix(cloud))
	var out []Grant
	for _, g := range []*grants{sink, enrich, auditReader(cloud)} {
		out = append(out, g.auditTrail().out...)
	}
	return out
}

// Reader may read every topic of a cluster (an operator with kcat).
func Reader(id pki.Identity) []Grant {
	g := &grants{principal: Principal(id)}
	return g.topic("*", false, read, describe).group("*", false).out
}

// Apply creates the grants (creating an existing ACL again is no error).
func Apply(ctx context.Context, admin *kafka.AdminClient, grants []Grant) error {
	if len(grants) == 0 {
		return nil
	}
	bindings := make(kafka.ACLBindings, len(grants))
	for i, g := range grants {
		bindings[i] = g.Binding()
	}
	res, err := admin.CreateACLs(ctx, bindings)
	if err != nil {
		return fmt.Errorf("create ACLs: %w", err)
	}
	var errs []error
	for i, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			errs = append(errs, fmt.Errorf("ACL %s: %w", grants[i], r.Error))
		}
	}
	return errors.Join(errs...)
}

// Revoke deletes the grants. Kafka authorizes every request, so a client
// whose grants are gone is refused at its next request, on connections
// already open too, without a broker restart.
func Revoke(ctx context.Context, admin *kafka.AdminClient, grants []Grant) error {
	filters := make(kafka.ACLBindingFilters, len(grants))
	for i, g := range grants {
		filters[i] = g.Binding()
	}
	_, err := Delete(ctx, admin, filters)
	return err
}

// Delete deletes every ACL the filters match and returns how many.
func Delete(ctx context.Context, admin *kafka.AdminClient, filters kafka.ACLBindingFilters) (int, error) {
	if len(filters) == 0 {
		return 0, nil
	}
	res, err := admin.DeleteACLs(ctx, filters)
	if err != nil {
		return 0, fmt.Errorf("delete ACLs: %w", err)
	}
	var errs []error
	deleted := 0
	for i, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			errs = append(errs, fmt.Errorf("ACL filter %s %s: %w", filters[i].Type, filters[i].Name, r.Error))
		}
		deleted += len(r.ACLBindings)
	}
	return deleted, errors.Join(errs...)
}

// RevokeNode locks one board of site out of the cluster: its credential is
// refused everything from its next request on, open connections included,
// and its grants are deleted. The site's other boards go on.
func RevokeNode(ctx context.Context, admin *kafka.AdminClient, site, node string) error {
	if err := Apply(ctx, admin, DenyAll(pki.Identity{Site: site, Component: access.Node(node)})); err != nil {
		return fmt.Errorf("revoke board %s of site %s: %w", node, site, err)
	}
	if err := Revoke(ctx, admin, CloudSite(site, node)); err != nil {
		return fmt.Errorf("revoke board %s of site %s: %w", node, site, err)
	}
	return nil
}

// RevokeSite locks every credential of site out of the cloud cluster by
// deleting every grant on its names, and returns how many were deleted.
func RevokeSite(ctx context.Context, admin *kafka.AdminClient, site string) (int, error) {
	n, err := Delete(ctx, admin, SiteFilters(site))
	if err != nil {
		return n, fmt.Errorf("revoke site %s: %w", site, err)
	}
	return n, nil
}
