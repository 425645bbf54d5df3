#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# route_metrics.sh - the router's /metrics on a real broker: events in per
# source and type, out per subscriber, filtered, dead letters and validation
# failures per rule, audit records per outcome, end-to-end latency; the
# output passes promtool and holds no personal data.
source "$(dirname "$0")/lib.sh"

cat >"$WORK/subs.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: p1, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
  - name: geen
    purpose: {id: p2, legal_basis: "test"}
    types: [nl.brp.persoon-overleden]
YAML
start router "$BIN/ketenbus" route --subscriptions "$WORK/subs.yaml" --instance m1 \
  --subject-key-file "$WORK/subject.key" --metrics-addr 127.0.0.1:0
PORT=$(serving_port router)
check "router serves on a port" test -n "$PORT"
"$BIN/ketenbus" gen --count 200 --seed 11 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
echo 'broken' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k x
# CloudEvent headers with a type of the sender's choosing, but no framing:
# it must not become a metrics series of its own.
echo 'unframed' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k y -H ce_specversion=1.0 \
  -H ce_id=6f1d1b8e-0000-5000-8000-000000000001 -H ce_source=urn:nld:oin:1:systeem:x \
  -H ce_type=nl.brp.verzonnen-xyz -H ce_time=2024-03-15T10:00:00Z
# Framed, but with a schema id nobody registered, and with the id of the
# birth schema under another registered type: the gate's schema steps.
ce_headers=(-H ce_specversion=1.0 -H ce_source=urn:nld:oin:1:systeem:x -H ce_time=2024-03-15T10:00:00Z)
printf '\x00\x7f\x00\x00\x01abc' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k z "${ce_headers[@]}" \
  -H ce_id=6f1d1b8e-0000-5000-8000-000000000002 -H ce_type=nl.brp.persoon-geboren
printf '\x00\x00\x00\x03\xe9abc' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k w "${ce_headers[@]}" \
  -H ce_id=6f1d1b8e-0000-5000-8000-000000000003 -H ce_type=nl.brp.persoon-overleden
check "all 200 routed" wait_for 90 count_is "$(T out.alle)" 200
check "dead letters written" wait_for 30 count_is "$(T dlq)" 4
check "dead letters name the gate's step" eq "$(header_values "$(T dlq)" kb_rule | sort | paste -sd,)" \
  "cloudevents-headers,confluent-framing,type-schema-mismatch,unknown-schema-id"
check "... and the schema id where the framing gave one" \
  eq "$(header_values "$(T dlq)" kb_schema_id | grep . | sort | paste -sd,)" "1001,2130706433"
sleep 1
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
m() { grep -E "^$1" "$WORK/metrics.txt" | awk '{print $2}' | head -1; }
check "events in: gba, persoon-geboren = 200" eq "$(m 'kb_events_in_total\{source="gba",type="nl.brp.persoon-geboren"\}')" 200
check "events out: alle = 200" eq "$(m 'kb_events_out_total\{subscriber="alle",type="nl.brp.persoon-geboren"\}')" 200
check "dead letters by stage envelope = 2" eq "$(m 'kb_dead_letters_total\{topic="[^"]*",stage="envelope"\}')" 2
check "dead letters by stage schema = 2" eq "$(m 'kb_dead_letters_total\{topic="[^"]*",stage="schema"\}')" 2
check "an unvouched ce_type is counted as unknown" eq "$(m 'kb_events_in_total\{source="gba",type="unknown"\}')" 3
check "... and makes no series of its own" bash -c "! grep -q verzonnen $WORK/metrics.txt"
check "audit records delivered = 200" eq "$(m 'kb_audit_records_total\{outcome="delivered"\}')" 200
check "latency histogram counted 200" eq "$(m 'kb_e2e_latency_seconds_count\{subscriber="alle"\}')" 200
check "transactions timed: route phase" test "$(m 'kb_route_transaction_seconds_count\{phase="route"\}')" -ge 1
check "... and commit phase, as often" eq "$(m 'kb_route_transaction_seconds_count\{phase="commit"\}')" "$(m 'kb_route_transaction_seconds_count\{phase="route"\}')"
check "readyz answers 200" bash -c "curl -sf http://127.0.0.1:$PORT/readyz >/dev/null"
check "promtool check metrics passes" bash -c "promtool check metrics < $WORK/metrics.txt"
# A BSN counts only as a whole number: sample values such as
# 1057.9989999999998 must not look like one.
check "no personal data in metrics" bash -c "! grep -Eq '(^|[^0-9.])9999[0-9]{5}([^0-9.]|\$)|Proefman|Testerink' $WORK/metrics.txt"
check "control: the pattern finds a BSN in a label" bash -c "echo 'kb_x{subscriber=\"999995303\"} 1' | grep -Eq '(^|[^0-9.])9999[0-9]{5}([^0-9.]|\$)'"
check "control: the pattern passes a float sample" bash -c "! echo 'kb_e2e_latency_seconds_sum{subscriber=\"alle\"} 1057.9989999999998' | grep -Eq '(^|[^0-9.])9999[0-9]{5}([^0-9.]|\$)'"

# A second group whose second subscriber names a field the schema lacks:
# no copy can be made for it, so the event is dead-lettered, and the copy
# already staged for the first subscriber must not be delivered either.
cat >"$WORK/subs2.yaml" <<YAML
subscriptions:
  - name: heel
    purpose: {id: p3, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
  - name: kapot
    purpose: {id: p4, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.bsn, kind.bestaatniet]
YAML
start router2 "$BIN/ketenbus" route --subscriptions "$WORK/subs2.yaml" --instance m2 \
  --group kb-partial --no-register-projections --subject-key-file "$WORK/subject.key"
ROUTER2=$LAST_PID
check "second group: the 200 at the projection (and the 4 malformed again)" \
  wait_for 90 count_is "$(T dlq)" 208
check "... with rule projection-build" \
  eq "$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq)" -e -q -f '%h\n' | grep -c 'kb_rule=projection-build')" 200
check "... and nothing reached the subscriber whose copy could be made" \
  count_is "$(T out.heel)" 0

# An input at the size limit (accepted by the broker, over the producer's
# message.max.bytes once the dead-letter headers are added): its dead letter
# goes without the value, and both routers go on (before, the copy failed
# at produce and every retry of the batch aborted again).
{ head -c 1000100 /dev/zero | tr '\0' x; echo; } | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" \
  -k big -X message.max.bytes=2000000 -H ce_specversion=1.0 -H ce_type=nl.brp.verzonnen-xyz
check "oversized input: a dead letter in each group" wait_for 60 count_is "$(T dlq)" 210
check "... each without the value, saying its length" \
  eq "$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq)" -e -q -f '%S %h\n' | grep -c '^-1 .*kb_value_dropped=1000100')" 2
"$BIN/ketenbus" gen --count 1 --seed 12 --start 200 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
check "... and routing goes on" wait_for 60 count_is "$(T out.alle)" 201

# A projection-stage dead letter of the second group, redriven: the first
# group delivered its event, so for it the redrive is a duplicate, and a
# dropped redrive is a warning naming the letter (an info line before).
read -r RP RO < <(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq)" -e -q -f '%p %o %h\n' |
  grep 'kb_rule=projection-build' | head -1 | cut -d' ' -f1,2)
"$BIN/ketenbus" dlq redrive "$RO" --partition "$RP" >>"$WORK/redrive.log" 2>&1 || true
check "a dropped redrive is a warning that names the letter" wait_for 60 grep -q \
  "level=warn .*redriven dead letter dropped as a duplicate.* redriven_from=\"$(T dlq)/$RP/$RO\"\$" \
  "$WORK/router.log"
# ... which the second group dead-lettered again (kapot is still broken).
projection_letters() {
  kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq)" -e -q -X isolation.level=read_committed -f '%h\n' |
    grep 'kb_rule=projection-build'
}
projection_letters_are() { [[ "$(projection_letters | grep -c .)" == "$1" ]]; }
check "... and the second group dead-lettered it again" wait_for 60 projection_letters_are 202

# The second group's subscription is mended and its router restarted: the
# duplicate window it rebuilds from the input must leave out the events it
# dead-lettered after the gate (its letters say so, by kb_group), or the
# redriven letter below would be dropped as a duplicate again.
kill -TERM "$ROUTER2"
check "router2 stops" wait_for 60 bash -c "! kill -0 $ROUTER2 2>/dev/null"
sed -i 's/fields: \[kind.bsn, kind.bestaatniet\]/fields: [kind.bsn]/' "$WORK/subs2.yaml"
start router2b "$BIN/ketenbus" route --subscriptions "$WORK/subs2.yaml" --instance m2 \
  --group kb-partial --no-register-projections --subject-key-file "$WORK/subject.key"
check "router2 back: its windows rebuilt" wait_for 90 grep -q 'msg="partitions assigned"' \
  "$WORK/router2b.log"
rebuilt_sum() { # rebuilt_sum FIELD: FIELD summed over router2b's rebuilt windows
  sed -n "s/.*msg=\"dedup window rebuilt\".* $1=\([0-9]*\).*/\1/p" "$WORK/router2b.log" |
    awk '{ s += $1 } END { print s + 0 }'
}
letters_of() { # letters_of GROUP: dead letters after the gate that GROUP wrote
  projection_letters | grep -c "kb_group=$1\(,\|\$\)"
}
check "its group wrote 202 dead letters after the gate" eq "$(letters_of kb-partial)" 202
check "... leaving out every event it dead-lettered after the gate (202)" \
  eq "$(rebuilt_sum dead_lettered)" 202
check "... which were all the events that passed the gate" eq "$(rebuilt_sum ids)" 0
"$BIN/ketenbus" dlq redrive "$RO" --partition "$RP" >>"$WORK/redrive.log" 2>&1 || true
check "the redriven letter is now delivered by the mended group" \
  wait_for 60 count_is "$(T out.kapot)" 1
check "... to both its subscribers" count_is "$(T out.heel)" 1
check "... and nothing else" bash -c "! grep -q 'redriven dead letter dropped' '$WORK/router2b.log'"
finish
