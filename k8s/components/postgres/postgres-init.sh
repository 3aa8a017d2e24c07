#!/bin/sh
# Makes the cluster on an empty volume, once: initdb with the superuser's
# password, then, in single-user mode (no connection, so no pg_hba entry is
# needed), the sink's login role and the database cefiot it owns. A volume
# that already holds a cluster is left as it is.
set -eu
if [ -s "$PGDATA/PG_VERSION" ]; then
	echo "postgres-init: $PGDATA holds a cluster; nothing to do"
	exit 0
fi
initdb --pgdata="$PGDATA" --username=postgres --pwfile=/etc/postgres/auth/superuser-password \
	--auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
# A password is an SQL string: double its single quotes.
sink_password=$(sed "s/'/''/g" /etc/postgres/auth/sink-password)
postgres --single -D "$PGDATA" -c password_encryption=scram-sha-256 postgres <<SQL
CREATE ROLE sink LOGIN PASSWORD '$sink_password';
CREATE DATABASE cefiot OWNER sink;
SQL
echo "postgres-init: made the cluster, the role sink and the database cefiot"
