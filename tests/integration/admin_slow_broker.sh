#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# admin_slow_broker.sh - the admin API's dead-letter pages never hold up the
# router's HTTP server. With the broker frozen (kill -STOP of its JVM), a
# GET /admin/dlq waits on Kafka while /healthz and /metrics on the same
# server (the default: no --admin-addr) answer within 3 s; at most 4 such
# requests wait, one more gets 503 at once, and a bad redrive request is
# still refused at once. Once the broker resumes, every waiting page is
# answered: 200 with the letters, or 502 naming the Kafka error.
#
# Needs KB_KAFKA_STATE naming the state folder of the broker at KB_BOOTSTRAP
# (tests/kafka/broker.sh; its env file exports it), to freeze that broker;
# skips otherwise. The broker is always resumed: by the EXIT trap, and by a
# detached failsafe should this script itself be killed outright.
source "$(dirname "$0")/lib.sh"

freezable_broker 60 # seconds: the failsafe resumes the broker after this at the latest

KB=$BIN/ketenbus
mkdir -p "$WORK/subs"
cat >"$WORK/subs/alle.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
YAML
# The input topic first, so that the router is assigned it at once.
"$KB" gen --count 5 --seed 3 --subject-key-file "$WORK/subject.key" >"$WORK/gen.log" 2>&1
# Loopback without a token: the admin API is allowed there, and curl stays short.
start router "$KB" route --subscriptions "$WORK/subs" --instance r1 \
  --subject-key-file "$WORK/subject.key" --no-audit --batch 100 \
  --metrics-addr 127.0.0.1:0
PORT=$(serving_port router)
URL=http://127.0.0.1:$PORT
check "router serves on a port" test -n "$PORT"
check "router got the partitions" wait_for 60 grep -q 'partitions assigned' "$WORK/router.log"
for i in 1 2 3; do echo "broken $i" | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k "x$i"; done
check "dead letters: the 3 malformed" wait_for 60 count_is "$(T dlq)" 3
code() { curl -s -o "$WORK/$1.json" -w '%{http_code}' "${@:2}"; }
check "dlq page with the broker up: 200, 3 letters" \
  eq "$(code page0 --max-time 60 "$URL/admin/dlq") $(jq .count "$WORK/page0.json")" "200 3"

# timed NAME URL: status of a GET given at most 3 s; the seconds it took go
# to NAME.took (it runs in a subshell).
timed() {
  local t0=$EPOCHREALTIME c
  c=$(code "$1" --max-time 3 "$2" || true)
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }' >"$WORK/$1.took"
  echo "$c"
}
# page N: a dead-letter page in the background, its status to page<N>.code.
PAGES=()
page() {
  curl -s -o "$WORK/page$1.json" -w '%{http_code}' --max-time 120 "$URL/admin/dlq" \
    >"$WORK/page$1.code" 2>/dev/null &
  PAGES+=($!)
}
waiting() { kill -0 "$1" 2>/dev/null && [[ ! -s "$WORK/page$2.code" ]]; }

freeze
echo "     broker frozen (kill -STOP $BROKER_PID)"
page 1
sleep 1 # the page is in and waits on the frozen broker
check "/healthz answers within 3 s while a dead-letter page waits on the frozen broker" \
  eq "$(timed healthz "$URL/healthz")" 200
echo "     /healthz took $(cat "$WORK/healthz.took") s"
check "... the page was still waiting then" waiting "${PAGES[0]}" 1
check "/metrics answers within 3 s too" eq "$(timed metrics "$URL/metrics")" 200
echo "     /metrics took $(cat "$WORK/metrics.took") s"
check "... the page was still waiting then" waiting "${PAGES[0]}" 1
page 2
page 3
page 4
sleep 1
check "a fifth dead-letter request: 503 at once (4 wait already)" \
  eq "$(timed full "$URL/admin/dlq") $(jq .error_code "$WORK/full.json")" "503 50304"
echo "     the refusal took $(cat "$WORK/full.took") s"
check "... with Retry-After" bash -c \
  "curl -s -D - -o /dev/null --max-time 3 '$URL/admin/dlq' | grep -qi '^Retry-After: 5'"
BAD='{"letters":[{"partition":0}]}'
check "a bad redrive request: 400 at once" eq "$(code redrive --max-time 3 -X POST -d "$BAD" \
  "$URL/admin/dlq/redrive") $(jq .error_code "$WORK/redrive.json")" "400 40006"
check "/healthz still answers within 3 s" eq "$(timed healthz2 "$URL/healthz")" 200
for i in 1 2 3 4; do
  check "... page $i still waiting" waiting "${PAGES[$((i - 1))]}" "$i"
done
unfreeze
echo "     broker resumed"

for pid in "${PAGES[@]}"; do wait "$pid" || true; done
# answered N: 200 with the 3 letters, or 502 with the Kafka error in the message.
answered() {
  local c
  c=$(cat "$WORK/page$1.code")
  echo "     page $1: $c $(head -c 200 "$WORK/page$1.json")"
  case $c in
  200) [[ "$(jq .count "$WORK/page$1.json")" == 3 ]] ;;
  502) [[ "$(jq .error_code "$WORK/page$1.json")" == 50201 ]] &&
    [[ -n "$(jq -r .message "$WORK/page$1.json")" ]] ;;
  *) return 1 ;;
  esac
}
for i in 1 2 3 4; do
  check "page $i answered once the broker resumed (200 with the letters, or 502)" answered "$i"
done
check "a page now: 200, 3 letters" \
  eq "$(code page5 --max-time 60 "$URL/admin/dlq") $(jq .count "$WORK/page5.json")" "200 3"
check "/healthz answers" eq "$(timed healthz3 "$URL/healthz")" 200

finish
