// Package kafkalocal runs real Apache Kafka clusters in KRaft mode as local
// Java processes, for tests, benchmarks and local development of the cefiot
// pipeline.
//
// Nothing is emulated: each node is an unmodified Kafka broker (kafka.Kafka)
// started from the jars that scripts/fetch-kafka.sh resolves from Maven
// Central into <repo>/.cache/kafka/<version>/libs (see [FindLibs]). Every node
// is a combined controller+broker (process.roles=broker,controller) with a
// static controller quorum of all nodes, so a 1-node cluster needs one JVM
// and a 3-node cluster three, and losing one node of three keeps both the
// controller quorum and acks=all producers (min.insync.replicas=2) working.
//
// # Lifecycle
//
// [Start] lays out one directory per node under [ClusterConfig].BaseDir
//
//	<BaseDir>/node-<id>/server.properties  generated on every start
//	<BaseDir>/node-<id>/log4j2.properties  broker logging (console, INFO)
//	<BaseDir>/node-<id>/broker.log         the JVM's stdout and stderr
//	<BaseDir>/node-<id>/format.log         output of the storage format
//	<BaseDir>/node-<id>/data/              log.dirs and the KRaft metadata log
//
// formats the storage of every node with one cluster id (an existing
// formatted BaseDir is reused with its cluster id, so a cluster can be stopped
// and started again with its data), starts the JVMs in their own process
// groups, and returns once every node answers on its listener with every
// broker registered and unfenced in the cluster metadata. A node that exits
// or a ctx that expires first fails [Start] with the tail of that node's
// broker.log in the error.
//
// A [Cluster] can then lose and regain nodes ([Cluster.StopBroker],
// [Cluster.KillBroker], [Cluster.StartBroker]) for failure tests, and is
// shut down with [Cluster.Stop]. Node processes are started with Setpgid and,
// on Linux, with a parent-death signal, so a crashed test binary does not
// leave brokers running.
//
// # Defaults
//
// The generated broker configuration suits this project: 16 MiB
// message.max.bytes and replica.fetch.max.bytes (camera frames), no topic
// auto-creation, one partition per topic by default, effectively unlimited
// retention, no initial rebalance delay, and replication factor
// min(brokers, 3) with min.insync.replicas one less (at least 1) for user
// topics and for the offsets, transaction and share-state topics. Failure
// detection is faster than Kafka's defaults (broker session 6 s) so that
// failure tests settle quickly. Each JVM gets -Xmx512m and G1; see
// [DefaultJVMOpts]. [ClusterConfig].Properties overrides any property.
//
// Tests use the kafkatest subpackage, which finds the jars from the
// repository root, starts a cluster in t.TempDir on free ports, and stops it
// in t.Cleanup.
//
// The package is Unix-only (process groups and signals).
package kafkalocal
