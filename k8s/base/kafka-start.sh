#!/bin/sh
# Starts one node of the site's Kafka cluster in KRaft mode, each node both
# controller and broker. The node id is the StatefulSet ordinal (kafka-2 is
# node 2); the controller quorum is every replica (BROKERS of them). The
# config is written to /tmp (an emptyDir: the root filesystem is read-only)
# and the data directory is formatted once, on the node's first start.
#
# Every listener (clients, inter-broker, controller, external) is mutual
# TLS, and the StandardAuthorizer refuses what no ACL allows (the ACLs:
# cefiot-acls, docs/security.md). The brokers' key pair and the site's CA
# come from TLS_DIR (tls.crt, tls.key, ca.crt; the Secret cefiot-tls-kafka);
# the CAs of other sites whose clients this cluster admits (a cloud cluster:
# every site's bridge) from CLIENT_CAS_DIR (*.crt, optional). The brokers'
# own identity is the super user.
#
# Environment: POD_NAME, POD_NAMESPACE, SITE, BROKERS, CLUSTER_ID,
# REPLICATION_FACTOR, MIN_INSYNC_REPLICAS, RETENTION_HOURS, RETENTION_BYTES,
# and optionally EXTERNAL_DOMAIN (adds an EXTERNAL listener on 9094
# advertised as kafka-<id>.<EXTERNAL_DOMAIN>:9094, for clients outside the
# cluster such as an edge site's bridge). KAFKA_HOME defaults to /opt/kafka.
set -eu

: "${POD_NAME:?}" "${POD_NAMESPACE:?}" "${SITE:?}" "${BROKERS:?}" "${CLUSTER_ID:?}"
: "${REPLICATION_FACTOR:?}" "${MIN_INSYNC_REPLICAS:?}" "${RETENTION_HOURS:?}" "${RETENTION_BYTES:?}"
KAFKA_HOME="${KAFKA_HOME:-/opt/kafka}"
CONFIG_DIR="${CONFIG_DIR:-/tmp/kafka}"
DATA_DIR="${DATA_DIR:-/var/lib/kafka/data}"
TLS_DIR="${TLS_DIR:-/etc/kafka/tls}"
CLIENT_CAS_DIR="${CLIENT_CAS_DIR:-/etc/kafka/client-cas}"

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

listeners="CLIENT://:9092,CONTROLLER://:9093"
advertised="CLIENT://${POD_NAME}.${domain}:9092"
protocols="CLIENT:SSL,CONTROLLER:SSL"
if [ -n "${EXTERNAL_DOMAIN:-}" ]; then
  listeners="${listeners},EXTERNAL://:9094"
  advertised="${advertised},EXTERNAL://${sts}-${id}.${EXTERNAL_DOMAIN}:9094"
  protocols="${protocols},EXTERNAL:SSL"
fi

mkdir -p "$CONFIG_DIR"
for f in tls.crt tls.key ca.crt; do
  [ -r "$TLS_DIR/$f" ] || { echo "kafka-start: $TLS_DIR/$f missing (Secret cefiot-tls-kafka)" >&2; exit 1; }
done
# PEM key store: the key, then the certificate chain; trust store: the
# site's CA and every admitted site's. Rewritten on each start, so a
# renewed Secret takes effect at the next restart.
cat "$TLS_DIR/tls.key" "$TLS_DIR/tls.crt" > "$CONFIG_DIR/keystore.pem"
chmod 600 "$CONFIG_DIR/keystore.pem"
cat "$TLS_DIR/ca.crt" > "$CONFIG_DIR/truststore.pem"
if [ -d "$CLIENT_CAS_DIR" ]; then
  for f in "$CLIENT_CAS_DIR"/*.crt; do
    [ -r "$f" ] && cat "$f" >> "$CONFIG_DIR/truststore.pem"
  done
fi
cat > "$CONFIG_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=${id}
controller.quorum.voters=${voters}
controller.listener.names=CONTROLLER
listeners=${listeners}
advertised.listeners=${advertised}
listener.security.protocol.map=${protocols}
inter.broker.listener.name=CLIENT
ssl.keystore.type=PEM
ssl.keystore.location=${CONFIG_DIR}/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=${CONFIG_DIR}/truststore.pem
ssl.client.auth=required
ssl.enabled.protocols=TLSv1.3,TLSv1.2
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:CN=kafka,OU=${SITE},O=cefiot
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
