#!/bin/sh
# Starts one node of the site's Kafka cluster in KRaft mode, each node both
# controller and broker. The node id is the StatefulSet ordinal (kafka-2 is
# node 2); the controller quorum is every replica (BROKERS of them). The
# config is written to /tmp (an emptyDir: the root filesystem is read-only)
# and the data directory is formatted once, on the node's first start.
#
# Environment: POD_NAME, POD_NAMESPACE, BROKERS, CLUSTER_ID,
# REPLICATION_FACTOR, MIN_INSYNC_REPLICAS, RETENTION_HOURS, RETENTION_BYTES,
# and optionally EXTERNAL_DOMAIN (adds an EXTERNAL listener on 9094
# advertised as kafka-<id>.<EXTERNAL_DOMAIN>:9094, for clients outside the
# cluster such as an edge site's bridge). KAFKA_HOME defaults to /opt/kafka.
set -eu

: "${POD_NAME:?}" "${POD_NAMESPACE:?}" "${BROKERS:?}" "${CLUSTER_ID:?}"
: "${REPLICATION_FACTOR:?}" "${MIN_INSYNC_REPLICAS:?}" "${RETENTION_HOURS:?}" "${RETENTION_BYTES:?}"
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
CONFIG_DIR="${CONFIG_DIR:-/tmp/kafka}"
DATA_DIR="${DATA_DIR:-/var/lib/kafka/data}"

id="${POD_NAME##*-}"
case "$id" in
  ''|*[!0-9]*) echo "kafka-start: cannot take a node id from pod name $POD_NAME" >&2; exit 1 ;;
esac
if [ "$id" -ge "$BROKERS" ]; then
  echo "kafka-start: node $id but BROKERS=$BROKERS: raise BROKERS with the replicas" >&2
  exit 1
fi
sts="${POD_NAME%-*}"
domain="${sts}-headless.${POD_NAMESPACE}.svc"

voters=""
i=0
while [ "$i" -lt "$BROKERS" ]; do
  voters="${voters:+$voters,}${i}@${sts}-${i}.${domain}:9093"
  i=$((i + 1))
done

listeners="PLAINTEXT://:9092,CONTROLLER://:9093"
advertised="PLAINTEXT://${POD_NAME}.${domain}:9092"
protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
if [ -n "${EXTERNAL_DOMAIN:-}" ]; then
  listeners="${listeners},EXTERNAL://:9094"
  advertised="${advertised},EXTERNAL://${sts}-${id}.${EXTERNAL_DOMAIN}:9094"
  protocols="${protocols},EXTERNAL:PLAINTEXT"
fi

mkdir -p "$CONFIG_DIR"
cat > "$CONFIG_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=${id}
controller.quorum.voters=${voters}
controller.listener.names=CONTROLLER
listeners=${listeners}
advertised.listeners=${advertised}
listener.security.protocol.map=${protocols}
inter.broker.listener.name=PLAINTEXT
log.dirs=${DATA_DIR}
num.partitions=3
default.replication.factor=${REPLICATION_FACTOR}
min.insync.replicas=${MIN_INSYNC_REPLICAS}
offsets.topic.replication.factor=${REPLICATION_FACTOR}
transaction.state.log.replication.factor=${REPLICATION_FACTOR}
transaction.state.log.min.isr=${MIN_INSYNC_REPLICAS}
unclean.leader.election.enable=false
auto.create.topics.enable=false
log.retention.hours=${RETENTION_HOURS}
log.retention.bytes=${RETENTION_BYTES}
PROPS

"$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted \
  --cluster-id "$CLUSTER_ID" --config "$CONFIG_DIR/server.properties"
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG_DIR/server.properties"
