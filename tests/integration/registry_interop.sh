#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# registry_interop.sh - a consumer with no ketenbus code reads the bus: the
# real ketenbus-gba adapter turns the fixture Lg01 and Gv01 into events on
# <prefix>.in.gba; tests/interop/AvroInterop.java (Apache Avro and the plain
# Kafka client from Maven Central) reads them, fetches each schema by the id
# in the Confluent framing from `ketenbus schema serve`, decodes with Apache
# Avro, and prints fields this script checks. Its jars are fetched once with
# mvn into a cache outside the repository (like tests/kafka/broker.sh).
source "$(dirname "$0")/lib.sh"

INTEROP=$SRC/tests/interop
AVRO_VERSION=$(sed -n 's:.*<avro\.version>\(.*\)</avro\.version>.*:\1:p' "$INTEROP/pom.xml" | head -n1)
KAFKA_VERSION=$(sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$INTEROP/pom.xml" | head -n1)
CACHE=${KB_CACHE_DIR:-/var/cache/ketenbus}/interop-avro-$AVRO_VERSION-kafka-$KAFKA_VERSION
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  echo "SKIP: java and mvn are needed for the interop test" >&2
  exit 77
fi
if [[ ! -f $CACHE/.complete ]]; then
  mkdir -p "$CACHE"
  cp "$INTEROP/pom.xml" "$CACHE/pom.xml"
  (cd "$CACHE" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies \
     -DoutputDirectory="$CACHE/libs") >"$CACHE/mvn.log" 2>&1 || {
    echo "FAIL: mvn could not fetch the interop jars (log: $CACHE/mvn.log)" >&2; exit 1; }
  touch "$CACHE/.complete"
fi

start registry "$BIN/ketenbus" schema serve --listen 127.0.0.1:0
check "registry up" wait_for 60 grep -q '^listening on ' "$WORK/registry.log"
URL=$(sed -n 's/^listening on //p' "$WORK/registry.log" | tail -n 1)
check "schemas registered with their kb.schemaId" \
  "$BIN/ketenbus" schema register --url "$URL" "$SRC/schemas"

mkdir -p "$WORK/gba/in"
cp "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/in/.001.lo3" && mv "$WORK/gba/in/.001.lo3" "$WORK/gba/in/001.lo3"
cp "$FIX/gv01-moeder-kind-sophie.lo3" "$WORK/gba/in/.002.lo3" && mv "$WORK/gba/in/.002.lo3" "$WORK/gba/in/002.lo3"
check "ketenbus-gba ingests the two fixtures" \
  "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key" --once
check "two events on in.gba" wait_for 30 count_is "$(T in.gba)" 2

check "the Java consumer decodes both events" \
  java -cp "$CACHE/libs/*" "$INTEROP/AvroInterop.java" "$KB_BOOTSTRAP" "$(T in.gba)" "$URL" 2 90 \
  >"$WORK/java.out" 2>"$WORK/java.log"
cat "$WORK/java.out"
birth=$(grep '^event ' "$WORK/java.out" | grep 'ce_type=nl.brp.persoon-geboren' | head -n1)
check "it fetched schema 1001 from the registry" grep -q '^fetched id=1001 schema=nl.brp.event.PersoonGeboren' "$WORK/java.out"
check "birth event: schema id 1001 in the framing" grep -q ' id=1001 ' <<<"$birth"
check "birth event: decoded record type" grep -q ' schema=nl.brp.event.PersoonGeboren ' <<<"$birth"
check "birth event: berichtType Lg01" grep -q ' berichtType=Lg01 ' <<<"$birth"
check "birth event: geboortedatum kind" grep -q ' geboortedatum=20240315 ' <<<"$birth"
check "birth event: gemeente van inschrijving" grep -q ' gemeente=0344 ' <<<"$birth"
check "second event decoded too (Gv01)" grep -q 'berichtType=Gv01' "$WORK/java.out"
check "decoded 2 of 2" grep -q '^decoded 2 of 2$' "$WORK/java.out"

finish
