#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# Run the Kafka Streams peer (KsRoute.java) for bench-e2e. The first run fetches
# the jars named in pom.xml into a cache outside the repository (Maven Central,
# as tests/kafka/broker.sh does) and compiles KsRoute.java there; later runs
# reuse both. Arguments go to KsRoute (see its header). `run.sh fetch` only
# prepares the cache.
#
# Environment: KB_CACHE_DIR (default /var/cache/ketenbus), KB_JAVA (java),
#              KB_KSTREAMS_HEAP (default -Xms256m -Xmx768m).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { printf '[kstreams] ERROR: %s\n' "$*" >&2; exit 1; }

KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$HERE/pom.xml" | head -n1)"
CACHE="${KB_CACHE_DIR:-/var/cache/ketenbus}/kstreams-peer-$KAFKA_VERSION"
JAVA="${KB_JAVA:-java}"
want="$(cat "$HERE/pom.xml" "$HERE/KsRoute.java" | sha256sum | cut -d' ' -f1)"

prepare() {
  if [[ -f "$CACHE/.complete" && "$(cat "$CACHE/.complete")" == "$want" ]]; then return 0; fi
  mkdir -p "$CACHE" || die "cannot create $CACHE (set KB_CACHE_DIR)"
  exec 8>"$CACHE/.lock"
  flock 8
  if [[ -f "$CACHE/.complete" && "$(cat "$CACHE/.complete")" == "$want" ]]; then exec 8>&-; return 0; fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to fetch the Kafka Streams jars)"
  command -v javac >/dev/null 2>&1 || die "javac not found (a JDK 17+ is needed)"
  rm -rf "$CACHE/libs" "$CACHE/classes" "$CACHE/work" "$CACHE/.complete"
  mkdir -p "$CACHE/work" "$CACHE/classes"
  cp "$HERE/pom.xml" "$CACHE/work/pom.xml"
  printf '[kstreams] fetching Kafka Streams %s jars into %s\n' "$KAFKA_VERSION" "$CACHE/libs" >&2
  (cd "$CACHE/work" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
     -DoutputDirectory="$CACHE/libs") >"$CACHE/mvn.log" 2>&1 || die "mvn failed (log: $CACHE/mvn.log)"
  javac -nowarn -d "$CACHE/classes" -cp "$CACHE/libs/*" "$HERE/KsRoute.java" >"$CACHE/javac.log" 2>&1 \
    || { cat "$CACHE/javac.log" >&2; die "javac failed"; }
  rm -rf "$CACHE/work"
  printf '%s\n' "$want" >"$CACHE/.complete"
  exec 8>&-
}

prepare
[[ "${1:-}" == fetch ]] && { echo "$CACHE"; exit 0; }
# shellcheck disable=SC2086  # heap options are a word list on purpose
exec "$JAVA" ${KB_KSTREAMS_HEAP:--Xms256m -Xmx768m} -XX:+UseG1GC -cp "$CACHE/classes:$CACHE/libs/*" KsRoute "$@"
