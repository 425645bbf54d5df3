#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# Smoke test of the broker harness with librdkafka (through kcat): topic creation,
# plain produce/consume, idempotent produce, a consumer group that commits and
# resumes, and a transactional produce read back read_committed.
#
#   tests/kafka/smoke.sh          uses the running broker, or starts (and then stops) one
#
# Prints 'N passed, N failed' at the end; exit 1 when anything failed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BROKER="$HERE/broker.sh"

log() { printf '[kafka-smoke] %s\n' "$*" >&2; }
PASSED=0 FAILED=0
ok()   { PASSED=$((PASSED + 1)); log "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL: $*"; }

started_here=0
if ! B="$("$BROKER" status 2>/dev/null)"; then
  B="$("$BROKER" start)"
  started_here=1
fi
cleanup() { if (( started_here )); then "$BROKER" stop || true; fi; }
trap cleanup EXIT
log "broker at $B ($(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*'))"

T="smoke-$$-$RANDOM"
G="smoke-group-$$-$RANDOM"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"; cleanup' EXIT

# expect_lines NAME FILE N: FILE has exactly N lines.
expect_lines() {
  local n; n="$(wc -l <"$2")"
  if [[ "$n" -eq "$3" ]]; then ok "$1 ($n messages)"; else fail "$1: $n messages, want $3"; cat "$2" >&2; fi
}

consume_all() { # extra kcat args...
  timeout 60 kcat -b "$B" -C -t "$T" -e -q -f '%p:%o:%k:%s\n' "$@"
}

# 1. topic (auto-creation is off)
if "$BROKER" topics --create --topic "$T" --partitions 3 --replication-factor 1 >"$TMP/create" 2>&1; then
  ok "create topic $T"
else
  fail "create topic $T"; cat "$TMP/create" >&2
fi

# 2. plain produce / consume
printf 'k1:v1\nk2:v2\nk3:v3\n' | timeout 60 kcat -b "$B" -P -t "$T" -K: \
  && ok "plain produce" || fail "plain produce"
consume_all >"$TMP/c1" || true
expect_lines "plain consume" "$TMP/c1" 3

# 3. idempotent produce
printf 'i1\ni2\ni3\ni4\n' | timeout 60 kcat -b "$B" -P -t "$T" \
  -X enable.idempotence=true -X debug=eos 2>"$TMP/idem.log" \
  && ok "idempotent produce" || fail "idempotent produce"
if grep -q 'Acquired PID' "$TMP/idem.log"; then ok "idempotent producer got a PID"
else fail "idempotent producer got no PID"; tail -20 "$TMP/idem.log" >&2; fi
consume_all >"$TMP/c2" || true
expect_lines "consume after idempotent produce" "$TMP/c2" 7

# 4. consumer group: reads everything, commits, a second run sees only new messages
timeout 90 kcat -b "$B" -G "$G" "$T" -e -q -f '%p:%o:%s\n' \
  -X auto.offset.reset=earliest >"$TMP/g1" 2>"$TMP/g1.log" || true
expect_lines "consumer group, first run" "$TMP/g1" 7
printf 'n1\nn2\n' | timeout 60 kcat -b "$B" -P -t "$T" || fail "produce between group runs"
timeout 90 kcat -b "$B" -G "$G" "$T" -e -q -f '%p:%o:%s\n' \
  -X auto.offset.reset=earliest >"$TMP/g2" 2>"$TMP/g2.log" || true
expect_lines "consumer group, second run resumes from committed offsets" "$TMP/g2" 2

# 5. transactional produce, read back read_committed
printf 't1\nt2\n' | timeout 60 kcat -b "$B" -P -t "$T" -X transactional.id="smoke-txn-$$" \
  -X debug=eos 2>"$TMP/txn.log" && ok "transactional produce" || fail "transactional produce"
if grep -q 'EndTxn returned NO_ERROR' "$TMP/txn.log"; then ok "transaction committed"
else fail "transaction not committed"; tail -20 "$TMP/txn.log" >&2; fi
consume_all -X isolation.level=read_committed >"$TMP/c3" || true
expect_lines "read_committed consume" "$TMP/c3" 11

"$BROKER" topics --delete --topic "$T" >/dev/null 2>&1 || true
echo "$PASSED passed, $FAILED failed"
(( FAILED == 0 ))
