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
// name with a prefix).
type Grant struct {
	Principal string
	Resource  kafka.ResourceType
	Name      string
	Prefixed  bool
	Operation kafka.ACLOperation
}

// Binding is the grant as an ACL binding.
func (g Grant) Binding() kafka.ACLBinding {
	pattern := kafka.ResourcePatternTypeLiteral
	if g.Prefixed {
		pattern = kafka.ResourcePatternTypePrefixed
	}
	return kafka.ACLBinding{
		Type: g.Resource, Name: g.Name, ResourcePatternType: pattern,
		Principal: g.Principal, Host: "*", Operation: g.Operation, PermissionType: kafka.ACLPermissionTypeAllow,
	}
}

func (g Grant) String() string {
	how := "="
	if g.Prefixed {
		how = "*="
	}
	return fmt.Sprintf("%s %s %s%s%s", g.Principal, g.Operation, g.Resource, how, g.Name)
}

type grants struct {
	principal string
	out       []Grant
}

func (g *grants) topic(name string, prefixed bool, ops ...kafka.ACLOperation) *grants {
	for _, op := range ops {
		g.out = append(g.out, Grant{g.principal, kafka.ResourceTopic, name, prefixed, op})
	}
	return g
}

func (g *grants) group(name string, prefixed bool) *grants {
	g.out = append(g.out, Grant{g.principal, kafka.ResourceGroup, name, prefixed, kafka.ACLOperationRead})
	return g
}

// resourceTransactionalID is Kafka's (and librdkafka's) resource type 5,
// which the Go client does not name.
const resourceTransactionalID = kafka.ResourceType(5)

func (g *grants) transactions(prefix string) *grants {
	g.out = append(g.out, Grant{g.principal, resourceTransactionalID, prefix, true, kafka.ACLOperationWrite})
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
		topic(pipeline.TopicFramesEnriched, false, write, create).
		topic(pipeline.TopicFramesDeadLetter, false, write, create).
		group(pipeline.EnrichPrefix(site), true).
		transactions(pipeline.EnrichPrefix(site))
	// The bridge forwards whichever topics its workload selects (a
	// regular expression may name any), so it reads every topic; it
	// writes none here.
	bridge := as(site, access.Worker(pipeline.KindBridge)).
		topic("*", false, read, describe).
		group(pipeline.BridgePrefix(site), true)
	for _, g := range []*grants{capture, enrich, bridge} {
		out = append(out, g.out...)
	}
	return out
}

// CloudSite is what site's bridge may do in the cloud cluster: its own
// topics (records, checkpoints, gaps), transactional ids and groups, and
// nothing of another site's.
func CloudSite(site string) []Grant {
	return as(site, access.Worker(pipeline.KindBridge)).
		topic(pipeline.CloudTopicPrefix(site), true, read, write, create, alter, describe).
		group(pipeline.BridgePrefix(site), true).
		transactions(pipeline.BridgePrefix(site)).out
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
		group(pipeline.EnrichPrefix(cloud), true).
		transactions(pipeline.EnrichPrefix(cloud))
	return append(sink.out, enrich.out...)
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
	if len(grants) == 0 {
		return nil
	}
	filters := make(kafka.ACLBindingFilters, len(grants))
	for i, g := range grants {
		filters[i] = g.Binding()
	}
	res, err := admin.DeleteACLs(ctx, filters)
	if err != nil {
		return fmt.Errorf("delete ACLs: %w", err)
	}
	var errs []error
	for i, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			errs = append(errs, fmt.Errorf("ACL %s: %w", grants[i], r.Error))
		}
	}
	return errors.Join(errs...)
}
