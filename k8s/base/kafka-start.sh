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
# Rotation without a restart: every TLS_RELOAD_SECONDS (default 30) the
# script looks at those files; when they changed (a renewed Secret), it
# rewrites the key and trust stores and sets their locations again as this
# broker's dynamic config (kafka-configs.sh, as the super user), which makes
# Kafka reread them for new connections on every listener.
#
# Environment: POD_NAME, POD_NAMESPACE, SITE, BROKERS, CLUSTER_ID,
# REPLICATION_FACTOR, MIN_INSYNC_REPLICAS, RETENTION_HOURS, RETENTION_BYTES,
# PIPELINE_PROPERTIES (default: kafka-pipeline.properties beside this
# script in /opt/cefiot, generated from libs/kafkaconf: the settings every
# cefiot cluster runs with, appended to server.properties as they are),
# BUDGET_PROPERTIES (default: kafka-budget.properties beside it, when the
# site's overlay has one: the retention planned from the site's disk budget,
# which then replaces RETENTION_BYTES),
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
PIPELINE_PROPERTIES="${PIPELINE_PROPERTIES:-/opt/cefiot/kafka-pipeline.properties}"
[ -r "$PIPELINE_PROPERTIES" ] || { echo "kafka-start: $PIPELINE_PROPERTIES missing (ConfigMap kafka-scripts)" >&2; exit 1; }
BUDGET_PROPERTIES="${BUDGET_PROPERTIES:-/opt/cefiot/kafka-budget.properties}"

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

# tls_stamp changes whenever any TLS input file does.
tls_stamp() {
  cat "$TLS_DIR/tls.crt" "$TLS_DIR/tls.key" "$TLS_DIR/ca.crt" 2>/dev/null | md5sum
  if [ -d "$CLIENT_CAS_DIR" ]; then
    for f in "$CLIENT_CAS_DIR"/*.crt; do
      [ -r "$f" ] && cat "$f"
    done | md5sum
  fi
}

# write_stores writes the PEM key store (the key, then the certificate
# chain) and trust store (the site's CA and every admitted site's), each
# replaced at once so Kafka never reads half a file.
write_stores() {
  umask 077
  cat "$TLS_DIR/tls.key" "$TLS_DIR/tls.crt" > "$CONFIG_DIR/keystore.pem.new"
  cat "$TLS_DIR/ca.crt" > "$CONFIG_DIR/truststore.pem.new"
  if [ -d "$CLIENT_CAS_DIR" ]; then
    for f in "$CLIENT_CAS_DIR"/*.crt; do
      [ -r "$f" ] && cat "$f" >> "$CONFIG_DIR/truststore.pem.new"
    done
  fi
  mv "$CONFIG_DIR/keystore.pem.new" "$CONFIG_DIR/keystore.pem"
  mv "$CONFIG_DIR/truststore.pem.new" "$CONFIG_DIR/truststore.pem"
}
# What the stores are written from: a change after this moment (even one
# before the reloader starts) is a change to reload.
written_stamp=$(tls_stamp)
write_stores
cat > "$CONFIG_DIR/admin.properties" <<PROPS
security.protocol=SSL
ssl.keystore.type=PEM
ssl.keystore.location=${CONFIG_DIR}/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=${CONFIG_DIR}/truststore.pem
PROPS

# reload_tls follows the TLS files until the script ends.
reload_tls() {
  trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
  last=$written_stamp
  while :; do
    sleep "${TLS_RELOAD_SECONDS:-30}" &
    sleeper=$!
    wait "$sleeper" || true
    now=$(tls_stamp)
    [ "$now" = "$last" ] && continue
    if ! write_stores; then
      echo "kafka-start: TLS files changed but cannot be read; trying again" >&2
      continue
    fi
    stores=""
    for l in $(echo "$protocols" | tr ',' ' '); do
      name=$(echo "${l%%:*}" | tr 'A-Z' 'a-z')
      stores="${stores:+$stores,}listener.name.${name}.ssl.keystore.location=${CONFIG_DIR}/keystore.pem,listener.name.${name}.ssl.truststore.location=${CONFIG_DIR}/truststore.pem"
    done
    if KAFKA_HEAP_OPTS="-Xmx64m" "$KAFKA_HOME/bin/kafka-configs.sh" --bootstrap-server "${POD_NAME}.${domain}:9092" \
        --command-config "$CONFIG_DIR/admin.properties" --entity-type brokers --entity-name "$id" \
        --alter --add-config "$stores"; then
      echo "kafka-start: TLS files changed: key and trust stores reloaded" >&2
      last=$now
    else
      echo "kafka-start: TLS files changed but the reload failed; trying again" >&2
    fi
  done
}
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
super.users=User:CN=kafka,OU=${SITE},O=cefiot
log.dirs=${DATA_DIR}
num.partitions=3
default.replication.factor=${REPLICATION_FACTOR}
min.insync.replicas=${MIN_INSYNC_REPLICAS}
offsets.topic.replication.factor=${REPLICATION_FACTOR}
transaction.state.log.replication.factor=${REPLICATION_FACTOR}
transaction.state.log.min.isr=${MIN_INSYNC_REPLICAS}
share.coordinator.state.topic.replication.factor=${REPLICATION_FACTOR}
share.coordinator.state.topic.min.isr=${MIN_INSYNC_REPLICAS}
log.retention.hours=${RETENTION_HOURS}
PROPS
if [ -r "$BUDGET_PROPERTIES" ]; then
  # log.retention.bytes and the segments, from the site's disk budget.
  grep -v '^#' "$BUDGET_PROPERTIES" >> "$CONFIG_DIR/server.properties"
else
  echo "log.retention.bytes=${RETENTION_BYTES}" >> "$CONFIG_DIR/server.properties"
fi
cat "$PIPELINE_PROPERTIES" >> "$CONFIG_DIR/server.properties"

"$KAFKA_HOME/bin/kafka-storage.sh" format --ignore-formatted \
  --cluster-id "$CLUSTER_ID" --config "$CONFIG_DIR/server.properties"

# Kafka runs as this script's child, beside the reloader; the script passes
# on the kubelet's TERM and ends with Kafka's exit status.
"$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG_DIR/server.properties" &
kafka=$!
reload_tls &
reloader=$!
trap 'kill -TERM "$kafka" 2>/dev/null' TERM INT
status=0
while :; do
  wait "$kafka" && status=0 || status=$?
  kill -0 "$kafka" 2>/dev/null || break
done
kill "$reloader" 2>/dev/null || true
exit "$status"
