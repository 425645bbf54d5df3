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

# A background process must not have crashed, nor a sanitizer have reported
# anything, even when every check passed: an ASan error in a router that a
# test then stops would otherwise pass unseen. Exit statuses of signals a
# test sends (TERM here, KILL in crash tests, INT) are expected; those of a
# crash (ILL, ABRT, BUS, FPE, SEGV) are not. Reports are found in every log
# under WORK (sanitizers write to the process's stderr).
SANITIZER_REPORT='^==[0-9]+==ERROR: [A-Za-z]+Sanitizer|: runtime error: '
cleanup_verdict() { # 0 when every background process ended well
  local pid status bad=0 f
  for pid in "${PIDS[@]}"; do
    status=0
    wait "$pid" 2>/dev/null || status=$?
    case $status in
      132 | 134 | 135 | 136 | 139)
        echo "FAIL a background process (pid $pid) crashed: exit status $status" >&2
        bad=1 ;;
    esac
  done
  while IFS= read -r -d '' f; do
    if grep -aEq "$SANITIZER_REPORT" "$f"; then
      echo "FAIL sanitizer report in $f:" >&2
      grep -aE -A12 "$SANITIZER_REPORT" "$f" | head -40 >&2
      bad=1
    fi
  done < <(find "$WORK" -name '*.log' -type f -print0 2>/dev/null)
  return "$bad"
}

# The EXIT trap. A test that needs more cleaning up after its processes
# stopped sets CLEANUP_AFTER to a command. The script's exit status stays
# its own unless the verdict above fails; then it is 1.
CLEANUP_AFTER=
cleanup() {
  local bad=0
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  cleanup_verdict || { bad=1; FAILS=$((FAILS + 1)); }
  [[ -z $CLEANUP_AFTER ]] || $CLEANUP_AFTER || true
  if ((FAILS)) || [[ -n ${KB_KEEP_WORK:-} ]]; then
    echo "--- logs (work folder $WORK) ---" >&2
    for f in "$WORK"/*.log; do [[ -f $f ]] && { echo "== $f" >&2; tail -n 30 "$f" >&2; }; done
  else
    rm -rf "$WORK"
  fi
  if ((bad)); then exit 1; fi
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
  # The child drops the EXIT trap first: bash runs that trap in a forked
  # child that a signal ends (before its exec, or while it runs a shell
  # function), which would clean up (remove WORK) from inside the child.
  if declare -F "$1" >/dev/null; then
    (trap - EXIT; "$@") >>"$WORK/$name.log" 2>&1 &
  else
    (trap - EXIT; exec "$@") >>"$WORK/$name.log" 2>&1 &
  fi
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

# topic_limit TOPIC BYTES: set the topic's max.message.bytes, with Kafka's
# ConfigCommand from the broker's jars (broker.sh topics cannot alter a
# config). Needs KB_KAFKA_STATE (the broker's env file sets KB_KAFKA_LIBS).
topic_limit() {
  "${KB_JAVA:-java}" -Xmx256m -XX:TieredStopAtLevel=1 -cp "$KB_KAFKA_LIBS/*" \
    -Dlog4j2.configurationFile="$KB_KAFKA_STATE/log4j2.properties" \
    org.apache.kafka.tools.ConfigCommand --bootstrap-server "$KB_BOOTSTRAP" --alter \
    --entity-type topics --entity-name "$1" --add-config "max.message.bytes=$2" \
    >>"$WORK/tools.log" 2>&1
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

# drop_lo3 FILE NAME: FILE into the GBA ingest's WORK/gba/in as NAME, whole
# at once (copied under a dot name, which the spool skips, then renamed).
drop_lo3() { cp "$1" "$WORK/gba/in/.$2" && mv "$WORK/gba/in/.$2" "$WORK/gba/in/$2"; }

# one_subscription NAME PURPOSE_ID LEGAL_BASIS TYPES: a subscriptions file
# $SUBS (WORK/subscriptions.yaml) with the one subscription NAME for the
# event types TYPES (a YAML flow list's inside, "a, b").
one_subscription() {
  SUBS=$WORK/subscriptions.yaml
  cat >"$SUBS" <<YAML
subscriptions:
  - name: $1
    purpose: {id: $2, legal_basis: "$3"}
    types: [$4]
YAML
}

# svb_subscription: SVB's subscription svb-kinderbijslag (births, a child
# added to a parent's PL) in $SUBS, for the chain GBA -> router -> ketenbus-svb.
svb_subscription() {
  one_subscription svb-kinderbijslag akw-uitnodiging "Algemene Kinderbijslagwet" \
    "nl.brp.persoon-geboren, nl.brp.kind-toegevoegd"
}

# gba_chain INSTANCE: a router (with --instance INSTANCE) on $SUBS and a GBA
# ingest on WORK/gba, whose in/ is made here.
gba_chain() {
  mkdir -p "$WORK/gba/in"
  start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance "$1" \
    --subject-key-file "$WORK/subject.key"
  start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key"
}

# svb_routed INSTANCE: the start of an SVB egress test. svb_subscription and
# gba_chain (WORK/gba/in empty: the test drops its LO3 files with drop_lo3,
# in its own order).
svb_routed() {
  svb_subscription
  gba_chain "$1"
}

# gba_lo3_routed INSTANCE: the start of the GBA egress tests. A router (with
# --instance INSTANCE) and its one LO3 subscription gba-lo3 (births, a child
# added, deaths) in $SUBS, a GBA ingest on WORK/gba fed four LO3 files; checks
# that the four events reach kb.in.gba and three are routed to
# kb.out.gba-lo3. Then a message that is not an event is written there by
# hand: it fails the router's envelope gate and is quarantined by the
# egress with its reason, between the events.
gba_lo3_routed() {
  one_subscription gba-lo3 legacy-afnemer "Wet BRP art. 3.3" \
    "nl.brp.persoon-geboren, nl.brp.kind-toegevoegd, nl.brp.persoon-overleden"
  gba_chain "$1"
  local n=0 f
  for f in "$FIX/lg01-geboorte-sophie.lo3" "$FIX/gv01-moeder-kind-sophie.lo3" \
           "$FIX/events/gv01-overlijden.lo3" "$FIX/events/gv01-naam.lo3"; do
    n=$((n + 1))
    drop_lo3 "$f" "00$n.lo3"
  done
  check "four events in kb.in.gba" wait_for 60 count_is "$(T in.gba)" 4
  check "three routed to the LO3 afnemer" wait_for 90 count_is "$(T out.gba-lo3)" 3
  echo 'not an event' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T out.gba-lo3)" -p 0 -k x
}

# absent COMMAND...: true when COMMAND fails (a check that something did not happen)
absent() { ! "$@"; }

# quarantined_once SPOOL: in an egress's SPOOL/quarantine/ the one message
# that is not an event (the stray a test wrote to its topic), and nothing
# else: its .event and its .reason, which names a missing CloudEvents header.
quarantined_once() {
  eq "$(ls -A "$1/quarantine" | grep -c '\.event$') $(ls -A "$1/quarantine" | wc -l)" "1 2" &&
    grep -q 'ce_' "$1"/quarantine/*.reason
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
