#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# top_rows.sh - `ketenbus top` against a process that reports many series and
# hostile label values (a static /metrics.json served by python's http.server,
# so this needs no broker): every one of 600 lag rows is shown, with the
# number of figures in the heading, and a label value holding terminal escape
# sequences (ESC, BEL, a C1 CSI, a bidi override) reaches the terminal only as
# \xNN text, never as the raw bytes. A second, slimmer document afterwards
# shows that a series a process stopped reporting leaves the table.
set -euo pipefail
BIN=${1:?usage: $0 BIN_DIR}
KB=$BIN/ketenbus
WORK=$(mktemp -d /tmp/kb-it-top_rows-XXXXXX)
CHECKS=0
FAILS=0
SERVER=
cleanup() {
  [[ -n $SERVER ]] && { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
  if ((FAILS)); then echo "--- work folder $WORK kept ---" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  CHECKS=$((CHECKS + 1))
  if "$@"; then echo "ok   $what"; else echo "FAIL $what" >&2; FAILS=$((FAILS + 1)); fi
}
eq() { [[ "$1" == "$2" ]] || { echo "     got '$1', expected '$2'" >&2; return 1; }; }

ROWS=600
mkdir -p "$WORK/www"
# 600 partitions of lag, plus one source whose name carries escape sequences:
# ESC [31m (colour), ESC ]0;...BEL (set the window title), U+009B (C1 CSI)
# and U+202E (right-to-left override).
EVIL='evil\u001b[31mRED\u001b]0;pwned\u0007\u009b2J\u202eend'
jq -n --argjson n $ROWS --argjson evil "\"$EVIL\"" '{
  kb_kafka_consumer_lag: [range($n)
    | {labels: {topic: "kb.in.gba", partition: tostring}, value: (. + 1)}],
  kb_events_in_total: [{labels: {source: $evil, type: "t"}, value: 7}]
}' >"$WORK/www/metrics.json"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$WORK/www" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q 'port [0-9]' "$WORK/server.log" && break; sleep 0.1; done
PORT=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$WORK/server.log" | head -1)
check "the static metrics server runs" test -n "$PORT"

"$KB" top --once "127.0.0.1:$PORT" >"$WORK/top.txt" 2>"$WORK/top.err" && rc=0 || rc=$?
check "top --once exits 0" eq "$rc" 0
check "every lag row is shown ($ROWS, once the limit was 256)" \
  eq "$(grep -Ec '^lag +kb\.in\.gba [0-9]+ +[0-9]+$' "$WORK/top.txt")" $ROWS
check "the last partition is there with its value" \
  grep -Eq '^lag +kb\.in\.gba 599 +600$' "$WORK/top.txt"
check "the heading counts the figures" grep -q "(1 process, $((ROWS + 1)) figures)" "$WORK/top.txt"
check "no ESC byte reaches the terminal" bash -c "! LC_ALL=C grep -q \$'\\x1b' '$WORK/top.txt'"
check "no BEL byte reaches the terminal" bash -c "! LC_ALL=C grep -q \$'\\x07' '$WORK/top.txt'"
check "no C1 CSI (U+009B) reaches the terminal" \
  bash -c "! LC_ALL=C grep -q \$'\\xc2\\x9b' '$WORK/top.txt'"
check "no bidi override (U+202E) reaches the terminal" \
  bash -c "! LC_ALL=C grep -q \$'\\xe2\\x80\\xae' '$WORK/top.txt'"
check "the label is shown escaped (cut at the column)" \
  grep -Fq 'evil\x1b[31mRED\x1b]0;pwned\x07\xc2\x9b2J' "$WORK/top.txt"
check "the output is printable ASCII and newlines only" \
  bash -c "! LC_ALL=C grep -q '[^[:print:]]' '$WORK/top.txt'"

# The process stops reporting most lag series (partitions moved away): the
# next poll shows only what is reported, not stale rows or zeros. Polled
# twice in one top: the first document, then the slimmer one.
jq -n '{kb_kafka_consumer_lag: [{labels: {topic: "kb.in.gba", partition: "3"}, value: 9}]}' \
  >"$WORK/www/slim.json"
timeout 20 "$KB" top --interval 1 "127.0.0.1:$PORT" >"$WORK/live.txt" 2>&1 &
LIVE=$!
sleep 1.5
cp "$WORK/www/slim.json" "$WORK/www/metrics.json"
sleep 2
kill "$LIVE" 2>/dev/null || true
wait "$LIVE" 2>/dev/null || true
# The last screen: after the last clear-screen sequence.
LAST=$(tr -d '\033' <"$WORK/live.txt" | sed 's/\[H\[2J//g' |
  awk '/^ketenbus top/{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}')
check "the live view polled the full document first" \
  grep -q "$((ROWS + 1)) figures" "$WORK/live.txt"
check "after the change: one figure" grep -q '(1 process, 1 figure)' <<<"$LAST"
check "after the change: only the reported lag row" \
  eq "$(grep -Ec '^(lag|in) ' <<<"$LAST")" 1
check "after the change: its value" grep -Eq '^lag +kb\.in\.gba 3 +9' <<<"$LAST"

# Series that look alike once escaped stay apart: two topics that differ
# only after the 200 bytes a label shows, and the sources "" and "-" (an
# empty value shows as "-"). Added up in one row, each figure would be wrong.
LONG="kb.out.$(printf 'a%.0s' $(seq 200))"
jq -n --arg long "$LONG" '{
  kb_kafka_consumer_lag: [{labels: {topic: ($long + ".alpha"), partition: "0"}, value: 5},
                          {labels: {topic: ($long + ".beta"), partition: "0"}, value: 7}],
  kb_events_in_total: [{labels: {source: "", type: "x"}, value: 1},
                       {labels: {source: "-", type: "x"}, value: 2}]}' >"$WORK/www/metrics.json"
"$KB" top --once "127.0.0.1:$PORT" >"$WORK/alike.txt" 2>&1 || true
check "look-alike series: four figures" grep -q '(1 process, 4 figures)' "$WORK/alike.txt"
check "look-alike topics: two lag rows, 5 and 7, never 12" \
  eq "$(grep -E '^lag ' "$WORK/alike.txt" | awk '{print $NF}' | sort -n | tr '\n' ' ')" "5 7 "
check "sources \"\" and \"-\": two rows, 1 and 2" \
  eq "$(grep -E '^in ' "$WORK/alike.txt" | awk '{print $NF}' | sort -n | tr '\n' ' ')" "1 2 "

echo "$CHECKS checks, $FAILS failed"
((FAILS == 0))
