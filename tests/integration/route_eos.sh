#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# route_eos.sh - the routing core's guarantees on a real broker, under load:
# two router instances share the input in one consumer group; one is killed
# with SIGKILL mid-stream and restarted; the subscriptions are changed while
# events flow (reload); malformed events are mixed in. Afterwards every
# input event id is delivered exactly once to each entitled subscriber
# (counted with read_committed), the filter took exactly the events it
# should, and conservation holds: input = delivered-to-"alle" + dead letters.
source "$(dirname "$0")/lib.sh"

N=${KB_EOS_EVENTS:-30000}
SUBS=$WORK/subs
mkdir -p "$SUBS"
cat >"$SUBS/alle.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
YAML
# A filter on a context attribute the test can count from the input itself:
# every event whose id ends in "a".
cat >"$SUBS/eind-a.yaml" <<YAML
subscriptions:
  - name: eind-a
    purpose: {id: steekproef, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    filter: {suffix: {id: "a"}}
YAML

route() { # route NAME: one router instance, its log in WORK
  start "router-$1" "$BIN/ketenbus" route --subscriptions "$SUBS" --instance "$1" \
    --subject-key-file "$WORK/subject.key" \
    -X session.timeout.ms=8000 --batch 200
}
route a; PID_A=$LAST_PID
route b; PID_B=$LAST_PID

# Load in the background: N events at a steady rate, plus 5 malformed ones.
start gen "$BIN/ketenbus" gen --count "$N" --rate 3000 --seed 7 --subject-key-file "$WORK/subject.key"
GEN=$LAST_PID
check "both routers got partitions" wait_for 60 bash -c "[[ \$(cat $WORK/router-a.log $WORK/router-b.log | grep -c 'partitions assigned') -ge 2 ]]"
for i in 1 2 3 4 5; do echo "broken $i" | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k "x$i"; done

sleep 3
kill -9 "$PID_A"
echo "     killed router a (SIGKILL) mid-stream"
sleep 2
route a; PID_A=$LAST_PID

# Reload under load: a third subscriber appears while events flow.
sleep 2
# Written elsewhere and renamed in, as operators should: the router never
# sees half a file (it would keep the old set and try again anyway).
cat >"$SUBS/.later.yaml.tmp" <<YAML
subscriptions:
  - name: later
    purpose: {id: later, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
YAML
mv "$SUBS/.later.yaml.tmp" "$SUBS/later.yaml"
wait "$GEN" 2>/dev/null || true
check "generator produced all events" grep -q "produced=$N failed=0" "$WORK/gen.log"

input_ids() { kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -X isolation.level=read_committed -f '%h\n' | tr ',' '\n' | sed -n 's/^ce_id=//p'; }
input_ids | sort >"$WORK/in.ids"
expected_a=$(grep -c 'a$' "$WORK/in.ids")
check "input holds N events" eq "$(wc -l <"$WORK/in.ids")" "$N"

check "alle: all N delivered" wait_for 240 count_is "$(T out.alle)" "$N"
check "dead letters: the 5 malformed" wait_for 60 count_is "$(T dlq)" 5
out_ids() { { kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.$1)" -e -q -X isolation.level=read_committed -f '%h\n' || true; } | tr ',' '\n' | sed -n 's/^ce_id=//p' | sort; }
out_ids alle >"$WORK/alle.ids"
check "alle: no duplicate ids" eq "$(uniq -d "$WORK/alle.ids" | wc -l)" 0
check "alle: exactly the input ids" cmp -s "$WORK/alle.ids" "$WORK/in.ids"
out_ids eind-a >"$WORK/eind-a.ids"
check "eind-a: exactly the ids ending in a ($expected_a)" cmp -s "$WORK/eind-a.ids" <(grep 'a$' "$WORK/in.ids")
check "conservation: input = delivered(alle) + dead letters" eq "$(( $(wc -l <"$WORK/alle.ids") + $(count "$(T dlq)") ))" "$((N + 5))"
# Each router has the new set once it logged the reload (or, restarted
# after the file appeared, started with three subscriptions).
has_later() { grep -q -e 'subscriptions reloaded' -e 'subscriptions=3' "$WORK/router-$1.log"; }
both_have_later() { has_later a && has_later b; }
check "later: reload took effect under load, in both routers" wait_for 30 both_have_later
# By now the backlog may be routed already: events produced after both
# routers took the new set must all reach the new subscriber.
"$BIN/ketenbus" gen --count 100 --start "$N" --seed 7 --subject-key-file "$WORK/subject.key" >>"$WORK/gen2.log" 2>&1
input_ids | sort >"$WORK/in2.ids"
comm -13 "$WORK/in.ids" "$WORK/in2.ids" >"$WORK/new100.ids"
check "100 new input events" eq "$(wc -l <"$WORK/new100.ids")" 100
later_has_new100() { [[ -z $(comm -23 "$WORK/new100.ids" <(out_ids later)) ]]; }
check "later: every one of the 100 events produced after the reload arrives" \
  wait_for 60 later_has_new100
out_ids later >"$WORK/later.ids"
check "later: no duplicate ids" eq "$(uniq -d "$WORK/later.ids" | wc -l)" 0
check "router b took over partitions after the kill (rebalance)" bash -c "[[ \$(grep -c 'partitions assigned' $WORK/router-b.log) -ge 2 ]]"

# Duplicates across a restart: a fresh router rebuilds the dedup window of
# every partition from the input (one scan for all of them) and drops
# events it has routed before. The window holds every routed id (N plus
# the 100; the 5 malformed never passed the gate), and the first 50
# events, sent again with the same ids, reach no subscriber again.
# Everything committed before the stop, so the windows end after it all.
check "alle: the 100 events after the reload too" wait_for 60 count_is "$(T out.alle)" "$((N + 100))"
kill "$PID_A" "$PID_B"
wait "$PID_A" "$PID_B" 2>/dev/null || true
route c; PID_C=$LAST_PID
check "router c rebuilt the windows of all 3 partitions" \
  wait_for 60 bash -c "[[ \$(grep -c 'msg=\"dedup window rebuilt\"' $WORK/router-c.log) -eq 3 ]]"
rebuilt_ids=$(sed -n 's/.*msg="dedup window rebuilt".* ids=\([0-9]*\).*/\1/p' "$WORK/router-c.log" |
  awk '{ s += $1 } END { print s }')
check "the windows hold every routed id ($((N + 100)))" eq "$rebuilt_ids" "$((N + 100))"
# The first 50 events again, then 30 new ones behind them: once the new
# ones are delivered, the resent ones (earlier in their partitions) were
# routed too.
"$BIN/ketenbus" gen --count 50 --seed 7 --subject-key-file "$WORK/subject.key" >>"$WORK/gen3.log" 2>&1
"$BIN/ketenbus" gen --count 30 --start "$((N + 100))" --seed 7 \
  --subject-key-file "$WORK/subject.key" >>"$WORK/gen3.log" 2>&1
check "alle: the 30 new events arrive" wait_for 60 count_is "$(T out.alle)" "$((N + 130))"
kill "$PID_C"
wait "$PID_C" 2>/dev/null || true
check "router c dropped the 50 resent events as duplicates" \
  grep -q 'msg="router stopped".* duplicates=50 ' "$WORK/router-c.log"
check "alle: no id twice after the restart" eq "$(out_ids alle | uniq -d | wc -l)" 0

finish
