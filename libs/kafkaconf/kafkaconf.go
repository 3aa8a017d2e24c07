// Package kafkaconf is the one home of the broker settings every cefiot
// Kafka cluster runs with, wherever it runs: the clusters the tests and the
// local default start (libs/harness/kafkalocal) and the clusters the
// Kubernetes manifests deploy (k8s/base/kafka-pipeline.properties, written
// from here by `make generate`; k8s/check fails when the manifests drift).
//
// What is here is what the pipeline's guarantees rest on: records as large
// as a camera frame, replication and min.insync.replicas for acks=all and
// transactions, no unclean leader election, no topic made by accident, and
// mutual TLS with the StandardAuthorizer. What a deployment sizes for its
// hardware (listeners, threads, retention) is not.
package kafkaconf

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cefiot/cefiot/libs/pipeline"
)

// Property is one line of a broker's server.properties.
type Property struct{ Key, Value string }

// Replication is the replication factor and min.insync.replicas of a cluster
// of brokers: min(brokers, 3), and one less (at least 1), so that one broker
// may be away while acks=all producers and transactions go on.
func Replication(brokers int) (rf, minISR int) {
	rf = min(brokers, 3)
	return rf, max(1, rf-1)
}

// Pipeline is what every cluster of the pipeline sets whatever its size.
func Pipeline() []Property {
	maxRecord := strconv.Itoa(pipeline.MaxRecordBytes)
	return []Property{
		{"message.max.bytes", maxRecord},
		{"replica.fetch.max.bytes", maxRecord},
		{"auto.create.topics.enable", "false"},
		{"delete.topic.enable", "true"},
		{"unclean.leader.election.enable", "false"},
		// The bridge's transactions last up to -transaction-timeout
		// (at most 15 minutes, its config check).
		{"transaction.max.timeout.ms", "900000"},
	}
}

// Replicated is the replication of the data and of Kafka's internal topics
// (offsets, transactions, share groups) for rf and minISR (see
// Replication).
func Replicated(rf, minISR int) []Property {
	r, m := strconv.Itoa(rf), strconv.Itoa(minISR)
	return []Property{
		{"default.replication.factor", r},
		{"min.insync.replicas", m},
		{"offsets.topic.replication.factor", r},
		{"transaction.state.log.replication.factor", r},
		{"transaction.state.log.min.isr", m},
		{"share.coordinator.state.topic.replication.factor", r},
		{"share.coordinator.state.topic.min.isr", m},
	}
}

// Security is mutual TLS on every listener and the StandardAuthorizer,
// which refuses what no ACL allows (libs/kafkaacl). The key and trust
// stores and the super user are the deployment's.
func Security() []Property {
	return []Property{
		{"ssl.client.auth", "required"},
		{"ssl.enabled.protocols", "TLSv1.3,TLSv1.2"},
		{"ssl.endpoint.identification.algorithm", "https"},
		{"authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"},
		{"allow.everyone.if.no.acl.found", "false"},
	}
}

// Render writes props as server.properties lines.
func Render(props []Property) string {
	var b strings.Builder
	for _, p := range props {
		fmt.Fprintf(&b, "%s=%s\n", p.Key, p.Value)
	}
	return b.String()
}

// DeployedFile is the properties file the Kubernetes manifests' brokers
// append to their server.properties: Pipeline and Security.
func DeployedFile() string {
	return "# Written by `make generate` from libs/kafkaconf: the settings every cefiot\n" +
		"# Kafka cluster runs with. Do not edit; k8s/check fails when this drifts.\n" +
		Render(append(Pipeline(), Security()...))
}
