#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# stop_timeout.sh - the stop watchdog (ketenbus/stop.h) on a real broker: a
# router committing transactions is sent SIGTERM while the broker is frozen
# (kill -STOP of its JVM). Without the watchdog that stop never ends (its
# committer waits in rd_kafka_send_offsets_to_transaction, librdkafka issue
# #5456); with KETENBUS_STOP_TIMEOUT=5 it must end within ~10 s with status 3
# and the error line saying why. After the broker resumes, a new router
# (same instance name: it fences the old one and aborts its open
# transaction) must deliver every input event exactly once (read_committed),
# and stop cleanly (status 0) when the broker answers.
#
# Needs KB_KAFKA_STATE naming the state folder of the broker at KB_BOOTSTRAP
# (tests/kafka/broker.sh; its env file exports it), to freeze that broker;
# skips otherwise. The broker is always resumed: by the EXIT trap, and by a
# detached failsafe should this script itself be killed outright.
source "$(dirname "$0")/lib.sh"

freezable_broker 90 # seconds: the failsafe resumes the broker after this at the latest

N0=20                              # events that create the input topic
N=$((N0 + ${KB_STOP_EVENTS:-1500})) # all events
RATE=150                           # the rest at this rate: about 10 s of traffic
SUBS=$WORK/subs
mkdir -p "$SUBS"
cat >"$SUBS/alle.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
YAML

route() { # route LOGNAME: the router instance "a", the watchdog at 5 s
  start "$1" env KETENBUS_STOP_TIMEOUT=5 "$BIN/ketenbus" route --subscriptions "$SUBS" \
    --instance a --subject-key-file "$WORK/subject.key" -X session.timeout.ms=8000 --batch 200
}

# stopped_within PID SECONDS: wait for PID to end; its status in STOP_RC and
# the time from now in STOP_S. False (and SIGKILL) when it is still there.
stopped_within() {
  local pid=$1 t0=$EPOCHREALTIME deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS <= deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "     pid $pid still running after $2 s: SIGKILL" >&2
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    return 1
  fi
  STOP_RC=0
  wait "$pid" || STOP_RC=$?
  STOP_S=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
}

"$BIN/ketenbus" gen --count "$N0" --seed 11 --subject-key-file "$WORK/subject.key" \
  >>"$WORK/gen0.log" 2>&1
route router-1
ROUTER=$LAST_PID
check "router got the partitions" wait_for 60 grep -q 'partitions assigned' "$WORK/router-1.log"
start gen "$BIN/ketenbus" gen --count "$((N - N0))" --start "$N0" --rate "$RATE" --seed 11 \
  --subject-key-file "$WORK/subject.key"
GEN=$LAST_PID
# More than N0 events routed. Not with count(): while events flow, `kcat -e`
# sees no end of the topic until the traffic stops; -c stops after enough.
busy() {
  local want=$((N0 + 1)) got
  got=$(timeout 10 kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.alle)" -o beginning -c "$want" -q \
    -X isolation.level=read_committed -f 'x\n' 2>/dev/null | grep -c x || true)
  ((got == want))
}
check "router commits transactions while events flow" wait_for 60 busy

freeze
echo "     broker frozen (kill -STOP $BROKER_PID)"
check "events still flowing when the broker froze" kill -0 "$GEN"
sleep 2 # the transaction in flight now waits on the broker
kill -TERM "$ROUTER"
STOP_RC=
STOP_S=
check "router ended its stop within 10 s of SIGTERM (broker frozen)" stopped_within "$ROUTER" 10
echo "     stop took ${STOP_S:-?} s, exit status ${STOP_RC:-?}"
check "exit status is 3 (stop cut short)" eq "$STOP_RC" 3
# kb_router_run never returned: its last transaction waited on the broker.
check "the stop hung in the transaction" bash -c "! grep -q 'router stopped' '$WORK/router-1.log'"
LINE='level=error comp=route msg="stop took longer than 5 s: exiting without a clean stop"'
LINE+=' reason=stop-timeout stop_timeout_s=5 .*exit_status=3'
LINE+=' effect="the open Kafka transaction is aborted by the next owner'
check "the error line says why" grep -q "$LINE" "$WORK/router-1.log"
unfreeze
echo "     broker resumed"

wait "$GEN" 2>/dev/null || true
check "generator produced all events" grep -q "produced=$((N - N0)) failed=0" "$WORK/gen.log"

route router-2
ROUTER=$LAST_PID
check "alle: all $N events delivered after the restart" wait_for 180 count_is "$(T out.alle)" "$N"
ids() { # the ce_id of every committed message of TOPIC, sorted
  { kcat -C -b "$KB_BOOTSTRAP" -t "$1" -e -q -X isolation.level=read_committed -f '%h\n' ||
    true; } | tr ',' '\n' | sed -n 's/^ce_id=//p' | sort
}
ids "$(T in.gba)" >"$WORK/in.ids"
ids "$(T out.alle)" >"$WORK/alle.ids"
check "input holds $N distinct events" eq "$(sort -u "$WORK/in.ids" | wc -l)" "$N"
check "alle: no duplicate ids" eq "$(uniq -d "$WORK/alle.ids" | wc -l)" 0
check "alle: exactly the input ids" cmp -s "$WORK/alle.ids" <(sort -u "$WORK/in.ids")
check "no dead letters" eq "$(count "$(T dlq)")" 0

kill -TERM "$ROUTER"
check "with the broker up the router stops cleanly" stopped_within "$ROUTER" 20
echo "     stop took ${STOP_S:-?} s, exit status ${STOP_RC:-?}"
check "exit status 0" eq "$STOP_RC" 0
check "no forced-exit line" bash -c "! grep -q 'without a clean stop' '$WORK/router-2.log'"

finish
