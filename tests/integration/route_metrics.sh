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
check "all 200 routed" wait_for 90 count_is "$(T out.alle)" 200
check "dead letter written" wait_for 30 count_is "$(T dlq)" 1
sleep 1
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"
m() { grep -E "^$1" "$WORK/metrics.txt" | awk '{print $2}' | head -1; }
check "events in: gba, persoon-geboren = 200" eq "$(m 'kb_events_in_total\{source="gba",type="nl.brp.persoon-geboren"\}')" 200
check "events out: alle = 200" eq "$(m 'kb_events_out_total\{subscriber="alle",type="nl.brp.persoon-geboren"\}')" 200
check "dead letters by stage envelope = 1" eq "$(m 'kb_dead_letters_total\{topic="[^"]*",stage="envelope"\}')" 1
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
finish
