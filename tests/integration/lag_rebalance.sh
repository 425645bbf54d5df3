#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# lag_rebalance.sh - kb_kafka_consumer_lag follows the assignment on a real
# broker: a router alone reports the lag of every input partition; once a
# second router joins its group, each reports only the partitions it holds
# (together all of them, none twice), where the first used to go on showing
# the last lag of partitions that had moved; when the second stops, the
# first reports them all again. Lag comes from librdkafka's statistics
# (every 5 s), so this takes about a minute.
source "$(dirname "$0")/lib.sh"

cat >"$WORK/subs.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: p1, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
YAML
IN=$(T in.gba)

# The partitions of the input topic whose lag the router on PORT shows in
# /metrics, sorted, on one line.
lag_partitions() { # lag_partitions PORT
  curl -sf "http://127.0.0.1:$1/metrics" |
    sed -n "s/^kb_kafka_consumer_lag{topic=\"$IN\",partition=\"\([0-9]*\)\"} .*/\1/p" |
    sort -n | paste -sd, -
}
shows() { [[ "$(lag_partitions "$1")" == "$2" ]]; } # shows PORT "0,1,2"

start r1 "$BIN/ketenbus" route --subscriptions "$WORK/subs.yaml" --instance lag1 \
  --subject-key-file "$WORK/subject.key" --metrics-addr 127.0.0.1:0
P1=$(serving_port r1)
check "router 1 serves on a port" test -n "$P1"
"$BIN/ketenbus" gen --count 30 --seed 5 --subject-key-file "$WORK/subject.key" \
  >>"$WORK/gen.log" 2>&1
check "router 1 routed the 30" wait_for 90 count_is "$(T out.alle)" 30
NPART=$(kcat -L -b "$KB_BOOTSTRAP" -t "$IN" 2>/dev/null | grep -c 'partition [0-9]*,' || true)
check "the input topic has several partitions ($NPART)" test "$NPART" -ge 2
ALL=$(seq 0 $((NPART - 1)) | paste -sd, -)
check "alone, router 1 shows the lag of every partition ($ALL)" wait_for 30 shows "$P1" "$ALL"

start r2 "$BIN/ketenbus" route --subscriptions "$WORK/subs.yaml" --instance lag2 \
  --subject-key-file "$WORK/subject.key" --metrics-addr 127.0.0.1:0
R2=$LAST_PID
P2=$(serving_port r2)
check "router 2 serves on a port" test -n "$P2"
has_lag() { [[ -n "$(lag_partitions "$1")" ]]; }
check "router 2 reports the lag of the partitions it got" wait_for 90 has_lag "$P2"
split_ok() { # the two routers' partitions: disjoint, together all, each some
  local a b
  a=$(lag_partitions "$P1")
  b=$(lag_partitions "$P2")
  [[ -n $a && -n $b ]] || return 1
  [[ "$(printf '%s\n%s\n' "${a//,/$'\n'}" "${b//,/$'\n'}" | sort -n | paste -sd, -)" == "$ALL" ]]
}
check "after the rebalance: each shows only its own partitions, together all, none twice" \
  wait_for 30 split_ok
echo "     router 1: $(lag_partitions "$P1")  router 2: $(lag_partitions "$P2")"
curl -sf "http://127.0.0.1:$P1/metrics.json" >"$WORK/r1.json"
check "... in /metrics.json too (what top and the dashboard read)" \
  eq "$(jq -r --arg t "$IN" '[.kb_kafka_consumer_lag[] | select(.labels.topic == $t)
    | .labels.partition | tonumber] | sort | map(tostring) | join(",")' "$WORK/r1.json")" \
  "$(lag_partitions "$P1")"

kill "$R2"
wait "$R2" 2>/dev/null || true
check "router 2 gone: router 1 shows every partition again" wait_for 90 shows "$P1" "$ALL"

finish
