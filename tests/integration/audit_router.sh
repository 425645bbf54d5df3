#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# audit_router.sh - the audit trail as the router writes it, on a real
# broker: one record per routing decision in the routing transaction,
# conservation read from the trail, signed checkpoints, chains that continue
# across a kill -9 of the router, and the right-of-access report for the
# fixture child (BSN 999995303) naming exactly the subscriber that got its
# data, for which purpose, which fields.
source "$(dirname "$0")/lib.sh"

"$BIN/ketenbus" audit keygen --private "$WORK/audit.key" --public "$WORK/audit.pub" >/dev/null
SUBS=$WORK/subs.yaml
cat >"$SUBS" <<YAML
subscriptions:
  - name: svb-kinderbijslag
    purpose: {id: akw-uitnodiging, legal_basis: "Algemene Kinderbijslagwet"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]
  - name: cbs-geboorten
    purpose: {id: cbs-statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.geboortedatum, kind.geslacht, inschrijving.gemeente]
  - name: alleen-amsterdam
    purpose: {id: amsterdam, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    fields: [inschrijving.gemeente]
    filter: {field: {path: inschrijving.gemeente, op: '=', value: '0363'}}
YAML
route() {
  start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance audit-it \
    --subject-key-file "$WORK/subject.key" --audit-signing-key "$WORK/audit.key" \
    --checkpoint-every 5 --checkpoint-ms 1000 -X session.timeout.ms=6000 "$@"
  ROUTER=$LAST_PID
}
# The copies' codec: --compression for the first router, a compression.type
# property for the second (after the kill -9); the trail keeps its own (lz4).
route --compression zstd
mkdir -p "$WORK/gba/in"
start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key"
cp "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/in/.1" && mv "$WORK/gba/in/.1" "$WORK/gba/in/001-lg01.lo3"
cp "$FIX/gv01-moeder-kind-sophie.lo3" "$WORK/gba/in/.2" && mv "$WORK/gba/in/.2" "$WORK/gba/in/002-gv01.lo3"
echo 'not an event' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k junk
check "svb got both events" wait_for 90 count_is "$(T out.svb-kinderbijslag)" 2
check "cbs got the birth" wait_for 30 count_is "$(T out.cbs-geboorten)" 1

# Projection: the CBS copy holds only its fields (no BSN, no names).
check "cbs copy carries no BSN" bash -c "! kcat -C -b $KB_BOOTSTRAP -t $(T out.cbs-geboorten) -e -q -f '%s' | has_test_bsn"
check "cbs copy carries the birth date" bash -c "kcat -C -b $KB_BOOTSTRAP -t $(T out.cbs-geboorten) -e -q -f '%s' | grep -aq 20240315"
id_byte=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.cbs-geboorten)" -e -q -f '%s' | head -c 2 | od -An -tu1 | awk '{print $1 "," $2}')
check "cbs copy is framed (magic 0) with a projected schema id (0x40000000 bit)" bash -c "[[ '${id_byte%%,*}' == 0 && ${id_byte##*,} -ge 64 && ${id_byte##*,} -le 127 ]]"
svb_key=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.svb-kinderbijslag)" -e -q -f '%k\n' | sort | head -1)
cbs_key=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.cbs-geboorten)" -e -q -f '%k\n')
in_key=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -f '%k\n' | grep -v junk | sort | head -1)
check "each subscriber gets its own pseudonym key" bash -c "[[ -n '$cbs_key' && '$cbs_key' != '$in_key' && '$cbs_key' != '$svb_key' ]]"

# Records: 3 input messages -> 3 decisions; kill -9, then more traffic.
check "audit trail has records" wait_for 30 bash -c "[[ \$(kcat -C -b $KB_BOOTSTRAP -t $(T audit) -e -q -X isolation.level=read_committed -f 'x\n' | wc -l) -ge 3 ]]"
kill -9 "$ROUTER"
route -X compression.type=gzip
"$BIN/ketenbus" gen --count 40 --seed 3 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
check "routing resumed after kill -9" wait_for 90 count_is "$(T out.cbs-geboorten)" 41
sleep 3
"$BIN/ketenbus" audit verify --public-key "$WORK/audit.pub" >"$WORK/verify.txt" 2>&1 \
  && rc=0 || rc=$?
check "audit verify: chains complete and signed (exit 0)" eq "$rc" 0
check "verify saw signed checkpoints (not 0)" grep -qE ' [1-9][0-9]* valid checkpoints' "$WORK/verify.txt"
check "verify: every chain reaches the router group's committed offset" grep -q "tail check: each chain against the offsets group $KETENBUS_TOPIC_PREFIX-route had committed on [1-9]" "$WORK/verify.txt"

# The trail reaches the broker compressed (KB_AUDIT_COMPRESSION, lz4): read
# off the broker's own log segments, every data batch of the audit topic.
codecs=$(for seg in "$KB_KAFKA_STATE"/data/"$(T audit)"-*/*.log; do
  java -cp "$KB_KAFKA_LIBS/*" org.apache.kafka.tools.DumpLogSegments --files "$seg"
done 2>/dev/null | grep 'isControl: false' | grep -o 'compresscodec: [a-z0-9]*' | sort | uniq -c | tr -s ' ')
check "audit batches are stored lz4 ($codecs)" bash -c "[[ '$codecs' == *'compresscodec: lz4'* && '$codecs' != *'compresscodec: '[nzg]* ]]"

# The subscriber copies are stored as --compression and then -X asked (the
# default is none), and a codec that does not exist stops the start before
# it connects.
out_codecs=$(for seg in "$KB_KAFKA_STATE"/data/"$(T out.svb-kinderbijslag)"-*/*.log; do
  java -cp "$KB_KAFKA_LIBS/*" org.apache.kafka.tools.DumpLogSegments --files "$seg"
done 2>/dev/null | grep 'isControl: false' | grep -o 'compresscodec: [a-z0-9]*' | sort | uniq -c | tr -s ' ')
check "subscriber copies are stored zstd, then gzip ($out_codecs)" bash -c "[[ '$out_codecs' == *'compresscodec: zstd'* && '$out_codecs' == *'compresscodec: gzip'* && '$out_codecs' != *'compresscodec: none'* && '$out_codecs' != *'compresscodec: lz4'* ]]"
"$BIN/ketenbus" route --subscriptions "$SUBS" --subject-key-file "$WORK/subject.key" \
  --compression brotli -b 127.0.0.1:1 >"$WORK/codec.out" 2>&1 && rc=0 || rc=$?
check "--compression brotli: exit 1, naming the option and the codecs" bash -c \
  "[[ $rc == 1 ]] && grep -q -- '--compression \"brotli\": not a codec (none, gzip, snappy, lz4, zstd)' '$WORK/codec.out'"
"$BIN/ketenbus" route --subscriptions "$SUBS" --subject-key-file "$WORK/subject.key" \
  --audit-compression inherit -b 127.0.0.1:1 >"$WORK/codec.out" 2>&1 && rc=0 || rc=$?
check "--audit-compression inherit (a topic-level value only): exit 1" bash -c \
  "[[ $rc == 1 ]] && grep -q -- '--audit-compression \"inherit\": not a codec' '$WORK/codec.out'"

"$BIN/ketenbus" audit subject --bsn 999995303 --subject-key-file "$WORK/subject.key" --format json >"$WORK/subject.json" 2>"$WORK/subject.err"
check "access report: svb-kinderbijslag, purpose akw-uitnodiging" grep -q 'akw-uitnodiging' "$WORK/subject.json"
cbs_fields=$(jq -r '[.deliveries[] | select(.subscriber == "cbs-geboorten") | .fields | sort | join(",")] | unique | join(" ")' "$WORK/subject.json")
check "access report: cbs-geboorten with exactly its three fields" \
  eq "$cbs_fields" "inschrijving.gemeente,kind.geboortedatum,kind.geslacht"
check "access report: exactly the two entitled subscribers" eq \
  "$(jq -r '[.deliveries[].subscriber] | unique | join(" ")' "$WORK/subject.json")" \
  "cbs-geboorten svb-kinderbijslag"
check "access report: not alleen-amsterdam (filtered out)" bash -c "! grep -q 'alleen-amsterdam' $WORK/subject.json"
check "access report never prints the BSN" bash -c "! grep -q 999995303 $WORK/subject.json"

# Conservation from the trail: every input message has exactly one record.
in_n=$(count "$(T in.gba)")
check "trail: one record per input message ($in_n)" grep -q "messages, $in_n records" "$WORK/verify.txt"
"$BIN/ketenbus" audit export --format ldv >"$WORK/ldv.jsonl" 2>"$WORK/export.err"
check "LDV export names the processing activities" grep -q 'urn:ketenbus:purpose:cbs-statistiek' "$WORK/ldv.jsonl"
check "LDV export holds no BSN" bash -c "! has_test_bsn '$WORK/ldv.jsonl'"
check "control: the BSN check finds one in JSON" has_test_bsn <<<'{"bsn":"999995303"}'
check "control: ... and not in a pseudonym" bash -c "! has_test_bsn <<<'{\"id\":\"650a938ebb7a9f42724b0c40599999aa\"}'"
finish
