# SPDX-License-Identifier: EUPL-1.2
# lib.sh - shared helpers of the integration tests (sourced, not run): the
# broker address, a per-test work folder, background processes that are
# always stopped, polling with a deadline, and topic inspection with kcat.

set -euo pipefail

if [[ -z "${KB_BOOTSTRAP:-}" ]]; then
  if [[ "${KB_REQUIRE_BROKER:-0}" == 1 ]]; then
    echo "FAIL: KB_BOOTSTRAP is not set but a broker is required" >&2
    exit 1
  fi
  echo "SKIP: no Kafka broker (set KB_BOOTSTRAP, or run deploy/test.sh)" >&2
  exit 77
fi

BIN=${1:?usage: $0 BIN_DIR}
SRC=${KB_SOURCE_DIR:?KB_SOURCE_DIR not set}
WORK=$(mktemp -d "/tmp/kb-it-$(basename "$0" .sh)-XXXXXX")
FIX=$SRC/tests/fixtures/gba
PIDS=()
FAILS=0
CHECKS=0

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if ((FAILS)) || [[ -n ${KB_KEEP_WORK:-} ]]; then
    echo "--- logs (work folder $WORK) ---" >&2
    for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

# Topics and groups of their own on the shared broker: <prefix>.in.gba, ...
export KETENBUS_TOPIC_PREFIX="it-$(basename "$0" .sh)-$$"
T() { echo "$KETENBUS_TOPIC_PREFIX.$1"; }

# A fresh subject key per test run; never a real secret.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$WORK/subject.key"

check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what" >&2; FAILS=$((FAILS + 1)); fi
}

eq() { [[ "$1" == "$2" ]] || { echo "     got '$1', expected '$2'" >&2; return 1; }; }

wait_for() { # wait_for SECONDS COMMAND...: poll until COMMAND succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.3
  done
}

start() { # start NAME COMMAND...: background process with its log in WORK
  local name=$1; shift
  "$@" >>"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
}

# serving_port NAME: the port a ketenbus server started with NAME and
# `--metrics-addr 127.0.0.1:0` bound (from its "serving" log line). Port 0
# lets the kernel choose, so parallel tests never race for a port.
serving_port() {
  wait_for 30 grep -qs 'msg="serving"' "$WORK/$1.log" || return 1
  sed -n 's/.*msg="serving" url=https\{0,1\}:\/\/[^:]*:\([0-9]*\)\/.*/\1/p' "$WORK/$1.log" | head -1
}

# Number of committed messages in TOPIC (all partitions).
count() {
  kcat -C -b "$KB_BOOTSTRAP" -t "$1" -e -q -X isolation.level=read_committed -f 'x\n' 2>/dev/null | grep -c x || true
}

# count_is TOPIC N: for polling with wait_for (re-counts on every try).
count_is() { [[ "$(count "$1")" == "$2" ]]; }

# topic_config TOPIC: "partitions=N cleanup.policy=P retention.ms=R" as the broker has them.
topic_config() { "$BIN/test_kafka_topics" describe "$1"; }

# True when FILE... (or stdin) holds a test BSN (9999 and five digits) that
# stands alone: inside a hex string, such as a pseudonym, any five digits
# turn up by chance (one subject id in an audit export held "599999aa").
has_test_bsn() { grep -aEq '(^|[^0-9a-fA-F])9999[0-9]{5}([^0-9a-fA-F]|$)' "$@"; }
export -f has_test_bsn

# Keys and headers of every message in TOPIC, one line each.
keys_and_headers() {
  kcat -C -b "$KB_BOOTSTRAP" -t "$1" -e -q -f 'key=%k headers=%h\n' 2>/dev/null || true
}

# One header's value for each committed message of TOPIC, one per line.
header_values() { # header_values TOPIC HEADER
  kcat -C -b "$KB_BOOTSTRAP" -t "$1" -e -q -X isolation.level=read_committed -f '%h\n' 2>/dev/null |
    tr ',' '\n' | sed -n "s/^$2=//p"
}

finish() {
  echo "$((CHECKS - FAILS)) passed, $FAILS failed"
  ((FAILS == 0))
}

# gba_lo3_routed INSTANCE: the start of the GBA egress tests. A router (with
# --instance INSTANCE) and its one LO3 subscription gba-lo3 (births, a child
# added, deaths) in $SUBS, a GBA ingest on WORK/gba fed four LO3 files; checks
# that the four events reach kb.in.gba and three are routed to
# kb.out.gba-lo3. Then a message that is not an event is written there by
# hand: it fails the router's envelope gate and is quarantined by the
# egress with its reason, between the events.
gba_lo3_routed() {
  SUBS=$WORK/subscriptions.yaml
  cat >"$SUBS" <<YAML
subscriptions:
  - name: gba-lo3
    purpose: {id: legacy-afnemer, legal_basis: "Wet BRP art. 3.3"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd, nl.brp.persoon-overleden]
YAML
  mkdir -p "$WORK/gba/in"
  start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance "$1" \
    --subject-key-file "$WORK/subject.key"
  start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key"
  local n=0 f
  for f in "$FIX/lg01-geboorte-sophie.lo3" "$FIX/gv01-moeder-kind-sophie.lo3" \
           "$FIX/events/gv01-overlijden.lo3" "$FIX/events/gv01-naam.lo3"; do
    n=$((n + 1))
    cp "$f" "$WORK/gba/in/.00$n.lo3" && mv "$WORK/gba/in/.00$n.lo3" "$WORK/gba/in/00$n.lo3"
  done
  check "four events in kb.in.gba" wait_for 60 count_is "$(T in.gba)" 4
  check "three routed to the LO3 afnemer" wait_for 90 count_is "$(T out.gba-lo3)" 3
  echo 'not an event' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T out.gba-lo3)" -p 0 -k x
}

# freezable_broker MAX_S: for a test that freezes the broker (kill -STOP) to
# show what a process does while Kafka does not answer. Skips (77) unless
# KB_KAFKA_STATE names the state folder of the broker at KB_BOOTSTRAP
# (tests/kafka/broker.sh; its env file exports it). Then freeze stops it and
# unfreeze resumes it; it is always resumed, by the EXIT trap, and by a
# failsafe in its own session after MAX_S seconds, so that even a SIGKILL of
# the test's process group (a ctest timeout) does not leave it frozen.
freezable_broker() {
  FREEZE_MAX=$1
  if [[ -z "${KB_KAFKA_STATE:-}" ]] ||
    [[ "$(KB_KAFKA_STATE=$KB_KAFKA_STATE "$SRC/tests/kafka/broker.sh" status 2>/dev/null)" != \
      "$KB_BOOTSTRAP" ]] ||
    [[ ! -s "$KB_KAFKA_STATE/broker.pid" ]]; then
    echo "SKIP: KB_KAFKA_STATE does not name the broker at $KB_BOOTSTRAP (cannot freeze it)" >&2
    exit 77
  fi
  BROKER_PID=$(cat "$KB_KAFKA_STATE/broker.pid")
  FAILSAFE=
  trap 'thaw; [[ -n $FAILSAFE ]] && kill -- "-$FAILSAFE" 2>/dev/null; cleanup' EXIT
}
thaw() { kill -CONT "$BROKER_PID" 2>/dev/null || true; }
freeze() {
  setsid bash -c "sleep $FREEZE_MAX; kill -CONT $BROKER_PID" </dev/null >/dev/null 2>&1 &
  FAILSAFE=$!
  kill -STOP "$BROKER_PID"
}
unfreeze() { # resume the broker and call off the failsafe
  thaw
  kill -- "-$FAILSAFE" 2>/dev/null || true
  FAILSAFE=
}
