#!/usr/bin/env bash
# Fetch the Apache Kafka jars that libs/harness/kafkalocal and cmd/cefiot-kafka run as
# local KRaft processes. The jars come from Maven Central through Maven
# (build/kafka/pom.xml); there is no tarball download.
#
# Usage: scripts/fetch-kafka.sh [--with-mm2]
#
#   <repo>/.cache/kafka/<version>/libs      broker jars (always)
#   <repo>/.cache/kafka/<version>/mm2-libs  MirrorMaker 2 jars (--with-mm2)
#   <repo>/.cache/m2                        Maven local repository
#
# Prints the libs dir on stdout (and, with --with-mm2, the mm2-libs dir on a
# second line); progress goes to stderr. Idempotent: a set is fetched into a
# temporary dir, moved into place, and then marked complete; a complete set
# whose marker matches the pom and version is not fetched again, so a second
# call returns at once.
#
# Environment:
#   KAFKA_VERSION  Kafka version to fetch (default 4.1.1)
#   MVN            Maven command (default mvn)
set -euo pipefail

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
MVN="${MVN:-mvn}"

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

with_mm2=0
while [[ $# -gt 0 ]]; do
	case "$1" in
	--with-mm2) with_mm2=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "fetch-kafka: unknown argument: $1 (see --help)" >&2
		exit 2
		;;
	esac
	shift
done

if [[ ! "$KAFKA_VERSION" =~ ^[0-9A-Za-z.+_-]+$ ]]; then
	echo "fetch-kafka: invalid KAFKA_VERSION: $KAFKA_VERSION" >&2
	exit 2
fi

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$repo_root/build/kafka/pom.xml"
cache="$repo_root/.cache"
kafka_dir="$cache/kafka/$KAFKA_VERSION"
m2_repo="$cache/m2"

# The marker records what a set was fetched from; editing the pom or changing
# the version makes the set stale and it is fetched again.
fingerprint() {
	local profile="$1"
	printf 'kafka=%s profile=%s pom=%s\n' "$KAFKA_VERSION" "$profile" \
		"$(sha256sum "$pom" | cut -d' ' -f1)"
}

is_complete() {
	local name="$1" profile="$2"
	local marker="$kafka_dir/.$name.complete"
	[[ -f "$marker" && -d "$kafka_dir/$name" ]] &&
		[[ "$(cat "$marker")" == "$(fingerprint "$profile")" ]]
}

fetch_set() {
	local name="$1" profile="$2"
	local dest="$kafka_dir/$name"
	local marker="$kafka_dir/.$name.complete"

	if is_complete "$name" "$profile"; then
		return 0
	fi
	for tool in "$MVN" java sha256sum; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "fetch-kafka: '$tool' not found; install a JDK (17+) and Maven (3.8+)" >&2
			exit 1
		fi
	done

	echo "fetch-kafka: resolving Kafka $KAFKA_VERSION ($profile) into $dest" >&2
	local start tmp
	start=$SECONDS
	tmp="$(mktemp -d "$kafka_dir/.$name.tmp.XXXXXX")"
	# shellcheck disable=SC2064 # expand $tmp now: it is local to this call.
	trap "rm -rf '$tmp'" EXIT

	local log="$kafka_dir/.$name.fetch.log"
	if ! "$MVN" -B --no-transfer-progress -Dstyle.color=never \
		-f "$pom" \
		-P "$profile" \
		-Dkafka.version="$KAFKA_VERSION" \
		-Dmaven.repo.local="$m2_repo" \
		dependency:copy-dependencies \
		-DincludeScope=runtime \
		-DoutputDirectory="$tmp" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		echo "fetch-kafka: Maven failed for $profile (full log: $log)" >&2
		exit 1
	fi

	local jars
	jars=$(find "$tmp" -maxdepth 1 -name '*.jar' | wc -l)
	if [[ "$jars" -eq 0 ]]; then
		echo "fetch-kafka: Maven resolved no jars for $profile" >&2
		exit 1
	fi

	rm -f "$marker"
	rm -rf "$dest"
	chmod 755 "$tmp"
	mv "$tmp" "$dest"
	trap - EXIT
	fingerprint "$profile" >"$marker"
	echo "fetch-kafka: $name: $jars jars, $(du -sh "$dest" | cut -f1), $((SECONDS - start))s" >&2
}

mkdir -p "$kafka_dir"

# Fast path: everything asked for is already there, no lock, no Maven.
if is_complete libs broker && { [[ $with_mm2 -eq 0 ]] || is_complete mm2-libs mm2; }; then
	echo "$kafka_dir/libs"
	[[ $with_mm2 -eq 0 ]] || echo "$kafka_dir/mm2-libs"
	exit 0
fi

# Serialise concurrent fetches (e.g. parallel test runs) of the same version.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$kafka_dir/.fetch.lock"
	flock 9
fi

fetch_set libs broker
if [[ $with_mm2 -eq 1 ]]; then
	fetch_set mm2-libs mm2
fi

echo "$kafka_dir/libs"
[[ $with_mm2 -eq 0 ]] || echo "$kafka_dir/mm2-libs"
