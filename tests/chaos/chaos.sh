#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# chaos.sh - the bus's guarantees while things break, on a real broker:
# events from `ketenbus gen` and from ketenbus-gba (LO3 fixtures) flow through
# two `ketenbus route` instances to subscriber topics while a driver kills
# routers with kill -9 at random moments, crashes the adapter between the
# Kafka ack and the sender ack, and (optionally) stops and starts the broker
# on its own state. Afterwards: every input event id delivered exactly once
# to each entitled subscriber (read_committed), no valid event in the DLQ,
# `ketenbus audit verify` exits 0, and the trail has one record per input
# message. Ends with one `chaos ...` summary line.
#
#   chaos.sh BIN_DIR [--events N] [--kills K] [--rate R] [--seed S]
#                    [--broker-restart | --no-broker-restart]
#
# The broker restart needs KB_KAFKA_STATE naming the state folder of the
# broker at KB_BOOTSTRAP (deploy/test.sh's env file exports it); it uses
# `tests/kafka/broker.sh restart`, which keeps topics, offsets and
# transaction state. See README.md in this folder.
BIN_ARG=${1:?usage: $0 BIN_DIR [--events N] [--kills K] [--rate R] [--seed S] [--broker-restart]}
shift
EVENTS=${KB_CHAOS_EVENTS:-300000}
KILLS=${KB_CHAOS_KILLS:-20}
RATE=${KB_CHAOS_RATE:-}
SEED=${KB_CHAOS_SEED:-$((RANDOM * 32768 + RANDOM))}
BROKER_RESTART=${KB_CHAOS_BROKER_RESTART:-1}
while (($#)); do
  case $1 in
    --events) EVENTS=$2; shift 2 ;;
    --kills) KILLS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --broker-restart) BROKER_RESTART=1; shift ;;
    --no-broker-restart) BROKER_RESTART=0; shift ;;
    *) echo "chaos.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
set -- "$BIN_ARG"
source "$(dirname "$0")/../integration/lib.sh"
CHAOS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ "$(basename "$0")" != chaos.sh ]]; then CHAOS_DIR=$SRC/tests/chaos; fi

# Reproducible chaos: the seed picks the kill moments and victims, and the
# generator's events. Printed so a failing run can be repeated.
RANDOM=$SEED
# Default rate: what two routers keep up with on a small machine, so the
# kills land while events are in flight rather than in a drained backlog.
RATE=${RATE:-$((EVENTS >= 100000 ? 400 : 1000))}
GEN_SECONDS=$((EVENTS / RATE))
echo "     chaos seed=$SEED events=$EVENTS rate=$RATE/s kills=$KILLS broker_restart=$BROKER_RESTART"

"$BIN/ketenbus" audit keygen --private "$WORK/audit.key" --public "$WORK/audit.pub" >/dev/null
SUBS=$WORK/subs
mkdir -p "$SUBS"
cat >"$SUBS/subs.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
  - name: eind-a
    purpose: {id: steekproef, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    filter: {suffix: {id: "a"}}
  - name: svb
    purpose: {id: akw-uitnodiging, legal_basis: "Algemene Kinderbijslagwet"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]
YAML

# ---------------------------------------------------------------- adapter
# The adapter first (its events also create the input topic, so the
# routers' pattern subscription finds it at once): it crashes right after
# Kafka acknowledged its 2nd message's events, before moving the file to
# done/ (the sender's ack); restarted without the fault, it reads that file
# again and produces the same ids.
GBA=(ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key")
mkdir -p "$WORK/gba/in"
FIXTURES=("$FIX/lg01-geboorte-sophie.lo3" "$FIX/gv01-moeder-kind-sophie.lo3")
for f in "$FIX"/events/*.lo3; do FIXTURES+=("$f"); done
# What the adapter must publish, known from the fixtures rather than read back
# from the input topic (an adapter that acknowledged a file but lost its
# events would shrink an expectation read from there): the events each file
# yields, as tests/unit/test_gba_life.c derives them (gba_tcp.sh's EVENTS).
# The one birth is the Lg01's, the kind-toegevoegd events are the mother's
# Gv01's and the one with the A-nummer warning; gv01-bad-n is quarantined.
declare -A YIELD=(
  [lg01-geboorte-sophie.lo3]=1 [gv01-moeder-kind-sophie.lo3]=1 [gv01-anummer-warning.lo3]=1
  [gv01-bad-n.lo3]=0 [gv01-bsn.lo3]=1 [gv01-correctie.lo3]=1 [gv01-emigratie.lo3]=1
  [gv01-huwelijk.lo3]=1 [gv01-immigratie.lo3]=1 [gv01-multi.lo3]=3 [gv01-naam.lo3]=1
  [gv01-naamgebruik.lo3]=1 [gv01-ontbinding.lo3]=1 [gv01-opschorting.lo3]=1
  [gv01-overlijden.lo3]=1 [gv01-partnerschap.lo3]=1 [gv01-verhuizing-binnen.lo3]=1
  [gv01-verhuizing-tussen.lo3]=1 [ng01-afgevoerd.lo3]=1 [wa11-anummer.lo3]=1)
ADAPTER_BIRTHS=1
ADAPTER_KINDS=2
ADAPTER_EVENTS=0
for f in "${FIXTURES[@]}"; do
  y=${YIELD[$(basename "$f")]:-}
  [[ -n $y ]] || { echo "chaos.sh: no yield known for fixture $(basename "$f"); add it to YIELD" >&2; exit 2; }
  ADAPTER_EVENTS=$((ADAPTER_EVENTS + y))
done
# The crash comes after Kafka acknowledged the 2nd message (the mother's
# Gv01, one kind-toegevoegd event); the restarted adapter reads that file
# again: exactly its events are in the input twice.
CRASH_DUPLICATES=${YIELD[$(basename "${FIXTURES[1]}")]}
n=0
for f in "${FIXTURES[@]}"; do
  n=$((n + 1)); name=$(printf '%03d-%s' "$n" "$(basename "$f")")
  cp "$f" "$WORK/gba/in/.$name" && mv "$WORK/gba/in/.$name" "$WORK/gba/in/$name"
done
set +e
KETENBUS_FAULT=crash-after-ack:2 "$BIN/ketenbus-gba" "${GBA[@]}" --once >>"$WORK/gba-crash.log" 2>&1
gba_rc=$?
set -e
ADAPTER_CRASHES=0
[[ $gba_rc == 137 ]] && ADAPTER_CRASHES=1
check "adapter died between Kafka ack and sender ack (exit 137)" eq "$gba_rc" 137

# ---------------------------------------------------------------- routers
# Each instance runs under a supervisor loop: the driver kills the router
# process itself (its pid in WORK/router-X.pid); the loop starts it again.
# A router that exits by itself (e.g. fatal transaction error while the
# broker is away) is restarted too, and counted.
touch "$WORK/running"
supervise() { # supervise INSTANCE
  local inst=$1 rc
  while [[ -f "$WORK/running" ]]; do
    "$BIN/ketenbus" route --subscriptions "$SUBS" --instance "$inst" \
      --subject-key-file "$WORK/subject.key" --audit-signing-key "$WORK/audit.key" \
      -X session.timeout.ms=6000 >>"$WORK/router-$inst.log" 2>&1 &
    echo $! >"$WORK/router-$inst.pid"
    rc=0; wait $! || rc=$?
    echo "$rc" >>"$WORK/router-$inst.exits"
    sleep 0.5
  done
}
start sup-a supervise a
start sup-b supervise b
stop_routers() {
  rm -f "$WORK/running"
  local i p
  for i in a b; do
    p=$(cat "$WORK/router-$i.pid" 2>/dev/null || true)
    [[ -n $p ]] && kill "$p" 2>/dev/null || true
  done
  for i in a b; do
    p=$(cat "$WORK/router-$i.pid" 2>/dev/null || true)
    [[ -n $p ]] && for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
    [[ -n $p ]] && kill -9 "$p" 2>/dev/null || true
  done
}
trap 'stop_routers; cleanup' EXIT

check "both routers got partitions" wait_for 90 bash -c "[[ \$(cat $WORK/router-a.log $WORK/router-b.log 2>/dev/null | grep -c 'partitions assigned') -ge 2 ]]"

# ---------------------------------------------------------------- load
start gen "$BIN/ketenbus" gen --count "$EVENTS" --rate "$RATE" --seed "$SEED" \
  --subject-key-file "$WORK/subject.key"
GEN=$LAST_PID
# Malformed input: must end in the DLQ (and only these).
BROKEN=3
for i in $(seq $BROKEN); do echo "broken $i" | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k "x$i"; done

start gba "$BIN/ketenbus-gba" "${GBA[@]}"

# ---------------------------------------------------------------- chaos
# Kills spread over the generator's run: a random gap around the mean, a
# random victim. The broker restart, when asked, half way.
ROUTER_KILLS=0
BROKER_RESTARTS=0
gap=$(( GEN_SECONDS * 10 / (KILLS + 1) ))   # tenths of a second
((gap >= 20)) || gap=20
half=$((KILLS / 2))
for k in $(seq "$KILLS"); do
  sleep "$(( (gap / 2 + RANDOM % (gap + 1)) / 10 )).$(( RANDOM % 10 ))"
  victim=$([[ $((RANDOM % 2)) == 0 ]] && echo a || echo b)
  # The victim may be between a death and its supervisor's restart (0.5 s):
  # give it a few seconds to come back, so that every planned kill lands.
  for _ in $(seq 25); do
    pid=$(cat "$WORK/router-$victim.pid")
    if kill -9 "$pid" 2>/dev/null; then
      ROUTER_KILLS=$((ROUTER_KILLS + 1))
      echo "     t=${SECONDS}s kill -9 router $victim (pid $pid) [$ROUTER_KILLS/$KILLS]"
      break
    fi
    sleep 0.2
  done
  if ((k == half && BROKER_RESTART)); then
    if [[ -n "${KB_KAFKA_STATE:-}" ]] && [[ "$("$SRC/tests/kafka/broker.sh" status 2>/dev/null)" == "$KB_BOOTSTRAP" ]]; then
      echo "     t=${SECONDS}s broker restart (same state)"
      if "$SRC/tests/kafka/broker.sh" restart >>"$WORK/broker-restart.log" 2>&1; then
        BROKER_RESTARTS=1
      else
        echo "     broker restart failed (see $WORK/broker-restart.log)" >&2
      fi
    else
      # Not done: the check "the broker was restarted" below fails the run.
      echo "     broker restart impossible: KB_KAFKA_STATE does not name the broker at $KB_BOOTSTRAP" >&2
    fi
  fi
done
wait "$GEN" 2>/dev/null || true
check "every planned router kill landed ($ROUTER_KILLS of $KILLS)" eq "$ROUTER_KILLS" "$KILLS"
# (also fails with fewer than 2 kills: the restart comes after kill KILLS/2)
if ((BROKER_RESTART)); then check "the broker was restarted, as asked" eq "$BROKER_RESTARTS" 1; fi
check "adapter finished its spool after the restart" wait_for 120 bash -c "[[ -z \$(ls -A $WORK/gba/in) ]]"
check "generator produced all events" grep -q "produced=$EVENTS failed=0" "$WORK/gen.log"

# ---------------------------------------------------------------- results
# Input as committed: one "id type" line per message (duplicates included).
kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -X isolation.level=read_committed -f '%h\n' |
  awk -F, '{ id = ""; ty = ""; for (i = 1; i <= NF; i++) { if ($i ~ /^ce_id=/) id = substr($i, 7); if ($i ~ /^ce_type=/) ty = substr($i, 9) } print id, ty }' \
  >"$WORK/in.lines"
IN_MESSAGES=$(wc -l <"$WORK/in.lines")
awk '$1 != "" { print $1 }' "$WORK/in.lines" | sort -u >"$WORK/in.ids"
awk '$2 == "nl.brp.persoon-geboren" { print $1 }' "$WORK/in.lines" | sort -u >"$WORK/alle.want"
grep 'a$' "$WORK/alle.want" >"$WORK/eind-a.want" || true
awk '$2 == "nl.brp.persoon-geboren" || $2 == "nl.brp.kind-toegevoegd" { print $1 }' "$WORK/in.lines" | sort -u >"$WORK/svb.want"
no_id=$(awk '$1 == ""' "$WORK/in.lines" | wc -l)
# Exact numbers from what the driver sent: the generator's EVENTS births, the
# adapter's fixture yields, the crash's duplicates and the malformed ones.
WANT_ALLE=$((EVENTS + ADAPTER_BIRTHS))
WANT_SVB=$((EVENTS + ADAPTER_BIRTHS + ADAPTER_KINDS))
check "input: the $BROKEN malformed messages (no id)" eq "$no_id" "$BROKEN"
check "input: distinct ids = $EVENTS generated + $ADAPTER_EVENTS from the adapter" \
  eq "$(wc -l <"$WORK/in.ids")" "$((EVENTS + ADAPTER_EVENTS))"
check "input: messages = ids + $CRASH_DUPLICATES duplicate of the adapter's crash + $BROKEN malformed" \
  eq "$IN_MESSAGES" "$((EVENTS + ADAPTER_EVENTS + CRASH_DUPLICATES + BROKEN))"
check "input: the duplicate is the crashed message's kind-toegevoegd event" \
  eq "$(awk '$1 != ""' "$WORK/in.lines" | sort | uniq -d | awk '{ print $2 }' | tr '\n' ' ')" \
  "$(printf 'nl.brp.kind-toegevoegd %.0s' $(seq "$CRASH_DUPLICATES"))"
check "input: births = $EVENTS generated + $ADAPTER_BIRTHS from the adapter" \
  eq "$(wc -l <"$WORK/alle.want")" "$WANT_ALLE"
check "input: births and kind-toegevoegd = $WANT_SVB" eq "$(wc -l <"$WORK/svb.want")" "$WANT_SVB"
# Each id the adapter says it published (its log, both runs) is in the input.
cat "$WORK"/gba*.log | sed -n 's/.*msg="event published" event_id=\([^ ]*\) .*/\1/p' | sort -u >"$WORK/gba.ids"
check "input: the adapter logged $ADAPTER_EVENTS published ids" eq "$(wc -l <"$WORK/gba.ids")" "$ADAPTER_EVENTS"
check "input: every id the adapter published is there" eq "$(comm -23 "$WORK/gba.ids" "$WORK/in.ids" | wc -l)" 0

# Drained: the slowest subscriber holds everything it should. A full count
# reads the topic, so poll every few seconds rather than continuously.
drained() { (( $(count "$(T out.alle)") >= WANT_ALLE && $(count "$(T out.svb)") >= WANT_SVB )); }
deadline=$((SECONDS + 300 + EVENTS / 500))
until drained || ((SECONDS > deadline)); do sleep 5; done
stop_routers

out_ids() { { kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.$1)" -e -q -X isolation.level=read_committed -f '%h\n' || true; } | tr ',' '\n' | sed -n 's/^ce_id=//p' | sort; }
EXACTLY_ONCE=yes
for s in alle eind-a svb; do
  out_ids "$s" >"$WORK/$s.ids"
  check "$s: no duplicate ids" eq "$(uniq -d "$WORK/$s.ids" | wc -l)" 0
  if ! cmp -s "$WORK/$s.ids" "$WORK/$s.want"; then
    EXACTLY_ONCE=no
    echo "     $s: got $(wc -l <"$WORK/$s.ids") ids, want $(wc -l <"$WORK/$s.want")" >&2
  fi
  check "$s: exactly the entitled input ids ($(wc -l <"$WORK/$s.want"))" cmp -s "$WORK/$s.ids" "$WORK/$s.want"
done

# Dead letters: only the malformed input, no valid event.
kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq)" -e -q -X isolation.level=read_committed -f '%h\n' 2>/dev/null |
  tr ',' '\n' | sed -n 's/^ce_id=//p' | sort -u >"$WORK/dlq.ids" || true
DLQ_N=$(count "$(T dlq)")
check "DLQ: exactly the $BROKEN malformed messages" eq "$DLQ_N" "$BROKEN"
check "DLQ: no valid input event" eq "$(comm -12 "$WORK/dlq.ids" "$WORK/in.ids" | wc -l)" 0

AUDIT=ok
set +e
"$BIN/ketenbus" audit verify --public-key "$WORK/audit.pub" >"$WORK/verify.txt" 2>&1
verify_rc=$?
set -e
((verify_rc == 0)) || AUDIT=fail
check "audit verify exits 0" eq "$verify_rc" 0
V_LINE=$(grep -oE '[0-9]+ messages, [0-9]+ records' "$WORK/verify.txt" | tail -1 || true)
V_MSGS=$(awk '{ print $1 }' <<<"$V_LINE"); V_RECS=$(awk '{ print $3 }' <<<"$V_LINE")
CONSERVATION=ok
# verify counts the audit topic's messages (records + checkpoints) and the
# records; conservation is one decision record per input message.
[[ -n "${V_RECS:-}" && "$V_RECS" == "$IN_MESSAGES" ]] || CONSERVATION=fail
check "conservation: input messages ($IN_MESSAGES) = audit records (${V_RECS:-?})" eq "$CONSERVATION" ok

# Router exits other than our kill -9 (137) and the final stop (0).
EXITS=$(cat "$WORK"/router-*.exits 2>/dev/null | grep -vcxE '0|137' || true)
if ((EXITS)); then
  # Say why, before the work folder goes: exit codes and each distinct
  # reason a router gave for stopping or not starting (timestamps cut).
  for i in a b; do
    echo "     router $i exit codes: $(tr '\n' ' ' <"$WORK/router-$i.exits" 2>/dev/null)"
  done
  grep -hE 'msg="router stops"|msg="audit chain cannot be resumed|msg="transaction failed"|^error:' \
    "$WORK"/router-*.log 2>/dev/null | sed -E 's/^ts=[^ ]+ //; s/pid [0-9]+/pid N/' |
    sort | uniq -c | sort -rn | head -10 | sed 's/^/     /' ||
    true # no such line (a router killed by a signal) must not end the script (pipefail)
fi
# A router that dies by itself (an ASan abort, a segfault, a stop of its own)
# is started again by its supervisor, and the data checks above can still
# pass: so its exits are checked. The one exit allowed besides ours is 1 after
# a fatal Kafka transaction error (kb_router_run() returns KB_ERR_FATAL, the
# router logs 'router stops reason=fatal-kafka-error', `ketenbus route` exits
# 1: bus/src/route.c, bus/src/cmd_route.c), and only in a run whose broker was
# restarted. ASan (abort_on_error=0) exits 1 too, so each exit 1 must be
# matched by such a stop line, and no log may hold a sanitizer report.
EXIT1=$(cat "$WORK"/router-*.exits 2>/dev/null | grep -cx 1 || true)
FATAL_STOPS=$(cat "$WORK"/router-*.log 2>/dev/null | grep -c 'msg="router stops" reason=fatal-kafka-error' || true)
if ((BROKER_RESTARTS)); then
  check "router exits: only kill -9, the final stop and exit 1 ($EXIT1) after a fatal transaction error" \
    eq "$((EXITS - EXIT1))" 0
  check "router exits: each exit 1 ($EXIT1) follows a fatal transaction error ($FATAL_STOPS)" \
    test "$EXIT1" -le "$FATAL_STOPS"
else
  check "router exits: only kill -9 (137) and the final stop (0)" eq "$EXITS" 0
fi
check "no sanitizer report in any log" eq "$(cat "$WORK"/*.log | grep -acE "$SANITIZER_REPORT" || true)" 0
DELIVERED=$(( $(wc -l <"$WORK/alle.ids") + $(wc -l <"$WORK/eind-a.ids") + $(wc -l <"$WORK/svb.ids") ))
finish_rc=0
finish || finish_rc=$?
echo "chaos events=$EVENTS input_messages=$IN_MESSAGES delivered=$DELIVERED router_kills=$ROUTER_KILLS router_exits=$EXITS adapter_crashes=$ADAPTER_CRASHES broker_restarts=$BROKER_RESTARTS dlq=$DLQ_N seconds=$SECONDS seed=$SEED exactly_once=$EXACTLY_ONCE audit=$AUDIT conservation=$CONSERVATION"
exit "$finish_rc"
