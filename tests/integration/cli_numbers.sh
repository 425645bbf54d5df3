#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# cli_numbers.sh - numeric command-line options are strict (ketenbus/cli_num.h):
# junk, an empty value, trailing characters or a value out of range stop the
# command at once with exit status 2 (usage) and one line naming the option,
# where atoi() used to read them as 0 or garbage; valid values still pass.
# Options are read before anything connects, so this needs no broker.
set -euo pipefail
BIN=${1:?usage: $0 BIN_DIR}
SRC=${KB_SOURCE_DIR:?KB_SOURCE_DIR not set}
KB=$BIN/ketenbus
CHECKS=0
FAILS=0

check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what" >&2; FAILS=$((FAILS + 1)); fi
}

# usage_error MESSAGE COMMAND...: COMMAND exits 2 with MESSAGE in its stderr.
usage_error() {
  local want=$1; shift
  local err rc=0
  err=$("$@" 2>&1 >/dev/null </dev/null) || rc=$?
  [[ $rc == 2 ]] || { echo "     exit status $rc, expected 2; stderr: $err" >&2; return 1; }
  [[ $err == *"$want"* ]] || { echo "     stderr: $err; expected: $want" >&2; return 1; }
}

# --- ketenbus ------------------------------------------------------------------
check "route --batch abc" \
  usage_error 'error: --batch: "abc" is not a whole number' "$KB" route --batch abc
check "route --batch 0" \
  usage_error 'error: --batch: 0 is out of range (1 to 1000000)' "$KB" route --batch 0
check "route --checkpoint-ms 5x" \
  usage_error '--checkpoint-ms: "5x" is not a whole number' "$KB" route --checkpoint-ms 5x
check "route --audit-verify-every -1" \
  usage_error '--audit-verify-every: -1 is out of range' "$KB" route --audit-verify-every -1
check "route --dedup-window overflow" \
  usage_error '--dedup-window: 99999999999999999999 is out of range' \
  "$KB" route --dedup-window 99999999999999999999
check "route: a valid --batch is taken (the next error is the missing --subscriptions)" \
  usage_error '--subscriptions is required' "$KB" route --batch 100 --checkpoint-ms 1000
check "replay --batch ''" \
  usage_error '--batch: "" is not a whole number' "$KB" replay --batch ''
check "replay --rate nan" usage_error '--rate: "nan" is not a number' "$KB" replay --rate nan
check "gen --rate -3" \
  usage_error '--rate: -3 is out of range (0.01 to 1000000)' "$KB" gen --rate -3
check "gen --count 1e3" usage_error '--count: "1e3" is not a whole number' "$KB" gen --count 1e3
check "top --interval 0" \
  usage_error '--interval: 0 is out of range (0.1 to 3600)' "$KB" top --interval 0 127.0.0.1:1
check "top --interval inf" \
  usage_error '--interval: "inf" is not a number' "$KB" top --interval inf 127.0.0.1:1
check "deliver --concurrency 0" \
  usage_error '--concurrency: 0 is out of range (1 to 1000)' "$KB" deliver --concurrency 0
check "deliver --rate -3" usage_error '--rate: -3 is out of range' "$KB" deliver --rate -3
check "deliver --max-pending 10k" \
  usage_error '--max-pending: "10k" is not a whole number' "$KB" deliver --max-pending 10k
for d in inf nan 1e400 400d; do
  check "deliver --retry-window $d" \
    usage_error "\"$d\" is not a duration of at most a year" "$KB" deliver --retry-window "$d"
done
check "dev --brokers 10" usage_error '--brokers: 10 is out of range (1 to 9)' "$KB" dev --brokers 10
check "dev --timeout ' 5'" \
  usage_error '--timeout: " 5" is not a whole number' "$KB" dev --timeout ' 5'
check "dlq list --limit x" usage_error '--limit: "x" is not a whole number' "$KB" dlq list --limit x
# an empty OFFSET (a script's unset variable) was letter 0
check "dlq redrive ''" usage_error 'needs one OFFSET (a whole number from 0)' "$KB" dlq redrive ''
check "dlq show ' 5'" usage_error 'needs one OFFSET (a whole number from 0)' "$KB" dlq show ' 5'
check "dlq show --partition -1" \
  usage_error '--partition: -1 is out of range' "$KB" dlq show 1 --partition -1
check "sub dry-run --samples 1001" \
  usage_error '--samples: 1001 is out of range (0 to 1000)' "$KB" sub dry-run x --samples 1001

# --- times: one parser (kb_cli_time) for audit, replay and sub dry-run ------------
# 2026-02-31 was 3 March to audit (timegm) and replay took no milliseconds.
check "audit subject --from 2026-02-31" \
  usage_error '--from: "2026-02-31": day 31 is out of range (2026-02 has 28 days)' \
  "$KB" audit subject --from 2026-02-31
check "audit export --to 24:00" \
  usage_error '--to: "2026-03-01T24:00:00Z": hour 24 is out of range (00 to 23)' \
  "$KB" audit export --format ldv --to 2026-03-01T24:00:00Z
check "audit verify --from without a zone" \
  usage_error '--from: "2026-03-01T10:00:00" has no zone' \
  "$KB" audit verify --from 2026-03-01T10:00:00
check "audit verify --to month 13" \
  usage_error '--to: "2026-13-01": month 13 is out of range' "$KB" audit verify --to 2026-13-01
check "replay --since 2026-02-29" \
  usage_error '--since: "2026-02-29": day 29 is out of range (2026-02 has 28 days)' \
  "$KB" replay --since 2026-02-29
check "replay --until junk" usage_error '--until: "junk" is not a time' "$KB" replay --until junk
check "replay: --since in milliseconds is taken (the next error is the missing --subscriber)" \
  usage_error '--subscriber, --reason, --subscriptions and --subject-key-file are required' \
  "$KB" replay --since 1710753330250 --until 2026-03-01T10:00:00.5+01:00
check "sub dry-run --since 2026-04-31" \
  usage_error '--since: "2026-04-31": day 31 is out of range (2026-04 has 30 days)' \
  "$KB" sub dry-run x --since 2026-04-31
check "sub dry-run --until leap second" \
  usage_error 'second 60 is out of range (00 to 59; leap seconds are not taken)' \
  "$KB" sub dry-run x --since 0 --until 2026-12-31T23:59:60Z
check "sub dry-run: --since in milliseconds is taken (the next error is the missing PATH)" \
  usage_error 'one subscription PATH and --since are required' "$KB" sub dry-run --since 0

# --- options a subcommand does not use are refused, by name -------------------
# `audit verify --subject X` (getopt's shortening of --subject-key-file) ran a
# whole verify and ignored it; `dlq show --limit 5` showed one letter.
check "audit verify --subject X" \
  usage_error 'error: audit verify does not take --subject-key-file, given as --subject' \
  "$KB" audit verify --subject X
check "audit export --subject-key-file" \
  usage_error 'audit export does not take --subject-key-file (an option of audit subject)' \
  "$KB" audit export --format ldv --subject-key-file k
check "audit verify --format json" \
  usage_error 'audit verify does not take --format (an option of audit subject, export)' \
  "$KB" audit verify --format json
check "audit subject --public-key" \
  usage_error 'audit subject does not take --public-key (an option of audit verify)' \
  "$KB" audit subject --bsn 999995303 --public-key p
check "audit export --threads" \
  usage_error 'audit export does not take --threads' "$KB" audit export --threads 2
check "audit keygen -b" \
  usage_error 'audit keygen does not take -b (an option of audit verify, subject, export)' \
  "$KB" audit keygen -b 127.0.0.1:1 --private a --public b
check "audit subject --activity-base" \
  usage_error 'audit subject does not take --activity-base (an option of audit export)' \
  "$KB" audit subject --activity-base urn:x:
check "audit verify x: no arguments" \
  usage_error 'audit verify takes no argument "x"' "$KB" audit verify x
check "audit: an option of its own is taken (the next error is the missing --public)" \
  usage_error 'keygen needs --private FILE and --public FILE' "$KB" audit keygen --private a
check "dlq list --partition" \
  usage_error 'dlq list does not take --partition (an option of dlq show, redrive)' \
  "$KB" dlq list --partition 2
check "dlq show --limit" \
  usage_error 'dlq show does not take --limit (an option of dlq list)' "$KB" dlq show 3 --limit 5
check "dlq show --val" \
  usage_error 'dlq show does not take --value, given as --val (an option of dlq redrive)' \
  "$KB" dlq show 3 --val fixed.bin
check "dlq redrive --limit=1" \
  usage_error 'dlq redrive does not take --limit' "$KB" dlq redrive 3 --limit=1
check "dlq list x: no arguments" usage_error 'dlq list takes no argument "x"' "$KB" dlq list x

# --- adapters (own options go through kb_adapter_parse) ----------------------------
check "gba egress --idle-exit 5x" \
  usage_error 'error: --idle-exit: "5x" is not a whole number' \
  "$BIN/ketenbus-gba" egress --idle-exit 5x
check "gba egress --idle-exit 0" \
  usage_error '--idle-exit: 0 is out of range (1 to 86400000)' \
  "$BIN/ketenbus-gba" egress --idle-exit 0
check "gba egress: a valid --idle-exit is taken (the next error is the missing --spool)" \
  usage_error '--spool is required' "$BIN/ketenbus-gba" egress --idle-exit 5000
check "svb egress --idle-exit ''" \
  usage_error '--idle-exit: "" is not a whole number' "$BIN/ketenbus-svb" egress --idle-exit ''
check "svb ingest --tcp 70000" \
  usage_error '--tcp: 70000 is out of range (0 to 65535)' "$BIN/ketenbus-svb" ingest --tcp 70000
if [[ -x $BIN/ketenbus-kadaster ]]; then
  check "kadaster decode --received-ms x" \
    usage_error 'error: --received-ms: "x" is not a whole number' \
    "$BIN/ketenbus-kadaster" decode --received-ms x
  check "kadaster decode --received-ms ''" \
    usage_error '--received-ms: "" is not a whole number' \
    "$BIN/ketenbus-kadaster" decode --received-ms ''
  # The golden output was made with this received time (fixtures/kadaster/make-golden.sh).
  golden_decode() {
    (cd "$SRC/tests/fixtures/kadaster" &&
      "$BIN/ketenbus-kadaster" decode --schemas ../../../schemas --received-ms 1710753330250 \
        --subject-key-file subject.key 01-verkoop-perceel.xml |
      cmp -s - golden/01-verkoop-perceel.jsonl)
  }
  check "kadaster decode: a valid --received-ms is taken (golden output)" golden_decode
fi

echo "$((CHECKS - FAILS)) passed, $FAILS failed"
((FAILS == 0))
