#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# deliver_webhook.sh - `ketenbus deliver` against kb-webhook-receiver over
# TLS on a real broker: the validation handshake, signatures, every event
# delivered once with 2xx, order per key while one key fails (the others go
# on), backoff bounds, Retry-After on 429, a hanging webhook timed out,
# offsets committed (a restart delivers nothing again), binary mode (v2
# signature over the ce-* headers; a rewritten ce-type refused), a
# retry schedule that survives SIGKILL, dead-lettering after a shortened
# window with the last error, a poison event dead-lettered at once, a record
# that is no CloudEvent dead-lettered only once it heads its key, bytes the
# schema's validator refuses dead-lettered with its reason, a permanent
# status dead-lettered at once, a failing key that holds up only its own
# partition, and a refused handshake that blocks delivery.
source "$(dirname "$0")/lib.sh"

for tool in kb-webhook-receiver kb-webhook-feed; do
  if [[ ! -x $BIN/$tool ]]; then
    echo "SKIP: $BIN/$tool not built (tests/webhook not added to the build)" >&2
    exit 77
  fi
done
command -v jq >/dev/null || { echo "SKIP: jq not installed" >&2; exit 77; }

# A test CA and a certificate for localhost signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kb test CA" \
  -keyout "$WORK/ca.key" -out "$WORK/ca.pem" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$WORK/srv.key" \
  -out "$WORK/srv.csr" >/dev/null 2>&1
printf 'subjectAltName=DNS:localhost\n' >"$WORK/san.ext"
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
  -CAcreateserial -days 2 -extfile "$WORK/san.ext" -out "$WORK/srv.pem" >/dev/null 2>&1
# A self-signed certificate nobody trusts, for the negative check.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" -keyout "$WORK/rogue.key" -out "$WORK/rogue.pem" >/dev/null 2>&1
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/hook.secret"

receiver() { # receiver NAME ARGS...: start one, wait for its port in $WORK/NAME.port
  local name=$1; shift
  start "$name" "$BIN/kb-webhook-receiver" --cert "$WORK/srv.pem" --key "$WORK/srv.key" \
    --secret-file "$WORK/hook.secret" --log "$WORK/$name.jsonl" --port-file "$WORK/$name.port" "$@"
  wait_for 10 test -s "$WORK/$name.port"
}
deliver() { # deliver NAME SUBSCRIBER PORT ARGS...
  local name=$1 sub=$2 port=$3; shift 3
  start "$name" "$BIN/ketenbus" deliver --subscriber "$sub" --url "https://localhost:$port/hook" \
    --secret-file "$WORK/hook.secret" --ca-file "$WORK/ca.pem" "$@"
}
posts() { jq -c 'select(.method=="POST")' "$WORK/$1.jsonl" 2>/dev/null || true; }
ok_ids() { posts "$1" | jq -r 'select(.status==200) | .id' | sort -u | wc -l; }
ok_ids_is() { [[ "$(ok_ids "$1")" == "$2" ]]; } # quiet: polled by wait_for
attempt_times() { posts "$1" | jq -r --arg id "$2" 'select(.id==$id) | .t_ms'; }

# ---- 1. 30 events on 3 keys; key k1 fails 3 times, one k2 event is throttled,
# one k0 event hangs once.
"$BIN/kb-webhook-feed" --topic-suffix out.hook --count 30 --keys 3 >"$WORK/feed1.txt"
check "feed wrote 30 events" eq "$(wc -l <"$WORK/feed1.txt")" 30
x_id=$(sed -n 2p "$WORK/feed1.txt" | cut -d' ' -f1)     # i=1: first event of k1
k1=$(sed -n 2p "$WORK/feed1.txt" | cut -d' ' -f2)
y_id=$(sed -n 3p "$WORK/feed1.txt" | cut -d' ' -f1)     # i=2: first event of k2
z_id=$(sed -n 4p "$WORK/feed1.txt" | cut -d' ' -f1)     # i=3: second event of k0
k0=$(sed -n 1p "$WORK/feed1.txt" | cut -d' ' -f2)
receiver hook --require-v2 --rule "id:$x_id=500x3" --rule "id:$y_id=429x1@2" \
  --rule "id:$z_id=hangx1"
PORT=$(cat "$WORK/hook.port")
deliver deliver1 hook "$PORT" --backoff-base 400ms --backoff-max 10s --timeout 1500ms \
  --concurrency 4 --metrics-addr 127.0.0.1:0
DELIVER1=$LAST_PID
check "all 30 events delivered with 2xx" wait_for 90 ok_ids_is hook 30
check "validation handshake sent with our origin first" \
  bash -c "head -n 1 $WORK/hook.jsonl | jq -e '.method==\"OPTIONS\" and .status==200 and (.origin|length>0)' >/dev/null"
check "every POST carried a valid signature" eq "$(posts hook | jq -r .sig | sort -u)" ok
check "... and a valid v2 signature over content-type and idempotency-key too" \
  eq "$(posts hook | jq -r .sig_v2 | sort -u)" ok
check "structured mode with the Avro payload as JSON" \
  eq "$(posts hook | jq -r 'select(.status==200) | "\(.mode) \(.data.kanaal) \(.data.bronEventIds|length)"' | sort -u | head -n 1)" "structured DIGITAAL 1"
check "Idempotency-Key is the event id" \
  eq "$(posts hook | jq -r 'select(.idempotency_key!=.id)' | wc -l)" 0
# Order per key: for every subject, the sequence numbers acknowledged with
# 200 appear in increasing order, and nothing of a key was attempted while
# an earlier event of that key was still unacknowledged.
order_ok() {
  posts hook | jq -s -e '
    group_by(.subject) | all(. as $rows | [range(0; length)] | all(. as $i |
      ($rows[$i].seq|tonumber) as $s
      | ([$rows[0:$i][] | select(.status==200) | (.seq|tonumber) | select(. < $s)] | unique | length)
        == ([$rows[] | (.seq|tonumber) | select(. < $s)] | unique | length)))' >/dev/null
}
check "per-key order of acknowledgements" order_ok
# Stronger: k1's later events were first attempted only after x succeeded.
x_ok=$(posts hook | jq -r --arg id "$x_id" 'select(.id==$id and .status==200) | .t_ms')
k1_later_first=$(posts hook | jq -r --arg s "$k1" --arg id "$x_id" 'select(.subject==$s and .id!=$id) | .t_ms' | sort -n | head -n 1)
check "failing key k1 paused until its head succeeded" test "$k1_later_first" -ge "$x_ok"
k0_last=$(posts hook | jq -r --arg s "$k0" 'select(.subject==$s and .status==200) | .t_ms' | sort -n | tail -n 1)
k0_first=$(posts hook | jq -r --arg s "$k0" 'select(.subject==$s) | .t_ms' | sort -n | head -n 1)
check "other keys went on while k1 failed (k0's first attempt before k1's head succeeded)" test "$k0_first" -lt "$x_ok"
mapfile -t xt < <(attempt_times hook "$x_id")
check "x: 4 attempts (3 failures, then 200)" eq "${#xt[@]}" 4
# Equal jitter: retry n waits in [base*2^(n-1)/2, base*2^(n-1)], here base 400 ms,
# plus up to 400 ms of scheduling/TLS slack.
bounds_ok() {
  local i gap lo hi
  for i in 1 2 3; do
    gap=$((xt[i] - xt[i - 1]))
    lo=$((400 * (1 << (i - 1)) / 2)); hi=$((400 * (1 << (i - 1)) + 400))
    if ((gap < lo || gap > hi)); then echo "     retry $i after ${gap} ms, expected [$lo, $hi]" >&2; return 1; fi
  done
}
check "backoff delays within exponential+jitter bounds" bounds_ok
mapfile -t yt < <(attempt_times hook "$y_id")
check "429 retried once" eq "${#yt[@]}" 2
check "Retry-After: 2 honoured (>= 2000 ms, < 3000 ms)" \
  bash -c "(( ${yt[1]:-0} - ${yt[0]:-0} >= 2000 && ${yt[1]:-0} - ${yt[0]:-0} < 3000 ))"
mapfile -t zt < <(attempt_times hook "$z_id")
check "hanging request timed out and was retried" \
  bash -c "(( ${#zt[@]} == 2 && ${zt[1]:-0} - ${zt[0]:-0} >= 1500 ))"
check "deliver log says why (HTTP 500, timeout)" \
  bash -c "grep -q 'error=\"HTTP 500\"' $WORK/deliver1.log && grep -q 'error=\"timeout after 1500 ms\"' $WORK/deliver1.log"
mport=$(grep -o 'comp=http msg="listening" addr=127.0.0.1 port=[0-9]*' "$WORK/deliver1.log" | head -n 1 | sed 's/.*port=//')
check "metrics endpoint: attempts by outcome" \
  bash -c "curl -sf http://127.0.0.1:$mport/metrics | grep -q 'kb_deliver_attempts_total{subscriber=\"hook\",outcome=\"throttled\"} 1'"
check "metrics endpoint: 30 delivered" \
  bash -c "curl -sf http://127.0.0.1:$mport/metrics | grep -q 'kb_deliver_delivered_total{subscriber=\"hook\"} 30'"
if command -v promtool >/dev/null; then
  check "deliver's /metrics passes promtool check metrics" \
    bash -c "curl -sf http://127.0.0.1:$mport/metrics | promtool check metrics"
fi
"$BIN/ketenbus" top --once "127.0.0.1:$mport" >"$WORK/top.txt" 2>&1 || true
check "ketenbus top shows the 30 deliveries" grep -Eq '^delivered +hook +30$' "$WORK/top.txt"
check "ketenbus top shows the throttled attempt" grep -Eq '^attempts +hook throttled +1$' "$WORK/top.txt"
# Offsets: stop cleanly, restart, nothing is delivered a second time.
kill -TERM "$DELIVER1"
wait "$DELIVER1" 2>/dev/null || true
before=$(posts hook | wc -l)
deliver deliver1b hook "$PORT" --backoff-base 400ms
check "restarted deliverer joined the group" wait_for 60 grep -q 'partitions assigned' "$WORK/deliver1b.log"
# Sentinels behind the 30: 12 new events on 12 keys, so every partition of
# out.hook gets one (checked). Once each was POSTed, the restarted deliverer
# has passed everything before it in its partition: an old event it sent
# again would be among the POSTs by then.
"$BIN/kb-webhook-feed" --topic-suffix out.hook --count 12 --keys 12 --start 30 >"$WORK/feed1s.txt"
check "feed wrote 12 sentinels" eq "$(wc -l <"$WORK/feed1s.txt")" 12
HOOK_PARTS=$(topic_config "$(T out.hook)" | sed -n 's/^partitions=\([0-9]*\) .*/\1/p')
sentinel_parts() {
  { kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.hook)" -e -q -f '%p %h\n' 2>/dev/null || true; } |
    sed -n 's/^\([0-9]*\) .*ce_id=\([^,]*\).*/\2 \1/p' | sort |
    join - <(cut -d' ' -f1 "$WORK/feed1s.txt" | sort) | awk '{ print $2 }' | sort -u | wc -l
}
check "a sentinel in each of the $HOOK_PARTS partitions of out.hook" eq "$(sentinel_parts)" "$HOOK_PARTS"
check "the 12 sentinels delivered" wait_for 60 ok_ids_is hook 42
check "no event delivered twice after a clean restart: exactly the 12 sentinels' POSTs more" \
  eq "$(posts hook | wc -l)" "$((before + 12))"
check "... each sentinel once" \
  eq "$(posts hook | jq -r .id | sort | uniq -c | awk '$1 == 1 { print $2 }' | sort | comm -12 - <(cut -d' ' -f1 "$WORK/feed1s.txt" | sort) | wc -l)" 12

# ---- 2. Binary mode; an event that always fails is retried across a SIGKILL
# and dead-lettered after a 6 s window; a poison event (a schema id nobody
# knows) is retried within the window too, as the registry may learn it,
# and then dead-lettered.
"$BIN/kb-webhook-feed" --topic-suffix out.hook2 --count 4 --keys 2 --bad 1 >"$WORK/feed2.txt"
w_id=$(sed -n 1p "$WORK/feed2.txt" | cut -d' ' -f1)
receiver hook2 --require-v2 --rule "id:$w_id=500xinf"
PORT2=$(cat "$WORK/hook2.port")
D2=(hook2 "$PORT2" --mode binary --retry-window 6s --backoff-base 500ms --backoff-max 1s)
deliver deliver2 "${D2[@]}"
DELIVER2=$LAST_PID
check "w attempted at least twice before the kill" \
  wait_for 30 bash -c "(( \$(jq -r --arg id $w_id 'select(.id==\$id)|.id' $WORK/hook2.jsonl | wc -l) >= 2 ))"
retry_records() { (( $(count "$(T retry.hook2)") >= 2 )); }
check "retry state of w written to the compacted retry topic" wait_for 30 retry_records
check "retry topic made compacted" \
  eq "$(topic_config "$(T retry.hook2)" | cut -d' ' -f2)" "cleanup.policy=compact"
check "dead-letter topic made with the broker's partitions (3), not compacted" \
  eq "$(topic_config "$(T dlq.hook2)" | cut -d' ' -f1,2)" "partitions=3 cleanup.policy=delete"
kill -9 "$DELIVER2"
wait "$DELIVER2" 2>/dev/null || true
deliver deliver2b "${D2[@]}"
check "restart resumed w's retry state from Kafka" \
  wait_for 60 grep -Eq 'msg="retry state resumed".*attempts=([2-9]|[1-9][0-9])' "$WORK/deliver2b.log"
check "w dead-lettered after the window" wait_for 60 count_is "$(T dlq.hook2)" 2
check "binary mode: ce-* headers, JSON data" \
  eq "$(posts hook2 | jq -r 'select(.status==200) | "\(.mode) \(.data.kenmerk|length)"' | sort -u)" "binary 12"
check "both good events delivered (w's key-mate only after w was dead-lettered)" eq "$(ok_ids hook2)" 2
check "binary mode: every POST's v2 signature, over the ce-* headers, verified" \
  eq "$(posts hook2 | jq -r '"\(.sig) \(.sig_v2)"' | sort -u)" "ok ok"
mate=$(sed -n 3p "$WORK/feed2.txt" | cut -d' ' -f1)
check "w's key-mate waited for w's last attempt" \
  test "$(attempt_times hook2 "$mate" | sort -n | head -n 1)" -gt "$(attempt_times hook2 "$w_id" | sort -n | tail -n 1)"
dlq=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq.hook2)" -e -q -f '%h\n' 2>/dev/null)
check "DLQ record says stage deliver, last error HTTP 500" \
  bash -c "grep -q 'kb_stage=deliver' <<<'$dlq' && grep -q 'kb_error=HTTP 500' <<<'$dlq'"
check "DLQ record for the poison event says why" grep -q 'kb_error=not renderable: unknown schema id' <<<"$dlq"
check "DLQ keeps the event id" grep -q "ce_id=$w_id" <<<"$dlq"
w_first=$(attempt_times hook2 "$w_id" | sort -n | head -n 1)
w_last=$(attempt_times hook2 "$w_id" | sort -n | tail -n 1)
check "window counted from the first failure across the restart: no try after first + 6 s" \
  bash -c "(( $w_last - $w_first < 6300 ))"

# ---- 2a. Binary mode with a ce-type rewritten on the way: v1 (body only)
# still verifies, v2 does not, so the receiver refuses the event.
"$BIN/kb-webhook-feed" --topic-suffix out.hook11 --count 1 >/dev/null
receiver hook11 --tamper ce-type=nl.vals.type-ingevoegd
deliver deliver11 hook11 "$(cat "$WORK/hook11.port")" --mode binary --backoff-base 300ms
DELIVER11=$LAST_PID
check "tampered ce-type: a POST arrived" wait_for 30 bash -c "grep -q POST $WORK/hook11.jsonl"
check "tampered ce-type: v1 alone passes, v2 fails, answer 401" \
  eq "$(posts hook11 | head -n 1 | jq -r '"\(.type) \(.sig) \(.sig_v2) \(.status)"')" \
  "nl.vals.type-ingevoegd ok bad 401"
kill -TERM "$DELIVER11" # it would retry the refused event for the whole window

# ---- 2a'. --signature v1 (for a receiver not yet reading the list): v1
# alone, no v2 and no X-Ketenbus-Signed-Headers.
"$BIN/kb-webhook-feed" --topic-suffix out.hook12 --count 1 >/dev/null
receiver hook12
deliver deliver12 hook12 "$(cat "$WORK/hook12.port")" --signature v1
DELIVER12=$LAST_PID
check "--signature v1: a POST arrived" wait_for 30 bash -c "grep -q POST $WORK/hook12.jsonl"
check "--signature v1: v1 verified, no v2 sent, answer 200" \
  eq "$(posts hook12 | head -n 1 | jq -r '"\(.sig) \(.sig_v2) \(.status)"')" "ok none 200"
kill -TERM "$DELIVER12"

# ---- 2b. A record that is not a CloudEvent behind a failing event of the same
# key: it waits for that event (dead-lettering it first used to free the key's
# queue under the failing event: a use-after-free, and the event was lost).
"$BIN/kb-webhook-feed" --topic-suffix out.hook5 --count 3 --keys 1 --bare 1 >"$WORK/feed5.txt"
f_id=$(sed -n 1p "$WORK/feed5.txt" | cut -d' ' -f1)
receiver hook5 --rule "id:$f_id=500x3"
deliver deliver5 hook5 "$(cat "$WORK/hook5.port")" --backoff-base 400ms --backoff-max 1s
DELIVER5=$LAST_PID
check "the failing event and its key-mate delivered after its retries" wait_for 60 ok_ids_is hook5 2
check "the record without headers dead-lettered once" wait_for 30 count_is "$(T dlq.hook5)" 1
dlq5=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq.hook5)" -e -q -f '%T %h\n' 2>/dev/null)
check "its dead letter says why" grep -q 'kb_error=not a CloudEvent' <<<"$dlq5"
f_ok=$(posts hook5 | jq -r --arg id "$f_id" 'select(.id==$id and .status==200) | .t_ms')
check "dead-lettered only after the older event of its key was delivered" \
  bash -c "(( ${dlq5%% *} >= ${f_ok:-0} && ${f_ok:-0} > 0 ))"
check "the deliverer is still running" kill -0 "$DELIVER5"
check "nothing was sent for it" eq "$(posts hook5 | jq -r .id | sort -u | wc -l)" 2

# ---- 2c. Retry state moves with its partition to an instance that was
# already running: two instances share the subscription (both in the group
# before the event exists), the one that owns v's partition writes its retry
# state, then stops; the other, whose own reading of the retry topic is
# older than that state, takes the partition over and continues v's attempts
# and window (before, it started them over).
"$BIN/kb-webhook-feed" --topic-suffix out.hook6 --count 1 --start 100 >"$WORK/feed6.txt"
v_id=$(sed -n 1p "$WORK/feed6.txt" | cut -d' ' -f1)
receiver hook6 --rule "id:$v_id=500xinf"
D6=(hook6 "$(cat "$WORK/hook6.port")" --retry-window 30s --backoff-base 500ms --backoff-max 1s)
v_tried() { (( $(jq -r --arg id "$v_id" 'select(.id==$id)|.id' "$WORK/hook6.jsonl" 2>/dev/null | wc -l) >= $1 )); }
deliver deliver6a "${D6[@]}"
P6A=$LAST_PID
check "first instance: v attempted" wait_for 30 v_tried 1
deliver deliver6b "${D6[@]}"
P6B=$LAST_PID
# Both in the group: the second got partitions, and the first was assigned again.
check "second instance joined the group" \
  wait_for 30 grep -q 'msg="partitions assigned"' "$WORK/deliver6b.log"
check "... and v attempted three more times since" wait_for 30 v_tried 4
owner_of_v() { # the instance whose latest retry line for v is the newest
  local a b
  a=$(grep 'msg="retry scheduled"' "$WORK/deliver6a.log" | tail -n 1 | cut -c4-27)
  b=$(grep 'msg="retry scheduled"' "$WORK/deliver6b.log" | tail -n 1 | cut -c4-27)
  [[ "$a" > "$b" ]] && echo a || echo b
}
if [[ $(owner_of_v) == a ]]; then owner=$P6A; other=deliver6b; else owner=$P6B; other=deliver6a; fi
kill -TERM "$owner"
wait "$owner" 2>/dev/null || true
tries=$(jq -r --arg id "$v_id" 'select(.id==$id)|.id' "$WORK/hook6.jsonl" | wc -l)
resumed_from() { # the attempts in the last "retry state resumed" line of log $1 are >= $2
  local n
  n=$(grep 'msg="retry state resumed"' "$WORK/$1.log" | tail -n 1 | sed -n 's/.*attempts=\([0-9]*\).*/\1/p')
  [[ -n $n ]] && (( n >= $2 ))
}
check "the running instance took v over with its retry state ($tries attempts so far)" \
  wait_for 60 resumed_from "$other" $((tries - 1))

# ---- 2d. An event whose bytes the schema's validator refuses (good Avro, but
# a child BSN that fails the 11-proef) is dead-lettered at once with the
# validator's reason and never sent: avro-c never sees bytes the gate refused.
"$BIN/kb-webhook-feed" --topic-suffix out.hook8 --count 3 --keys 1 --invalid 1 >"$WORK/feed8.txt"
i_id=$(sed -n 3p "$WORK/feed8.txt" | cut -d' ' -f1)
receiver hook8
deliver deliver8 hook8 "$(cat "$WORK/hook8.port")" --backoff-base 300ms
check "the two valid events delivered" wait_for 60 ok_ids_is hook8 2
check "the refused one dead-lettered" wait_for 30 count_is "$(T dlq.hook8)" 1
dlq8=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq.hook8)" -e -q -f '%h\n' 2>/dev/null)
check "its dead letter gives the validator's reason" \
  grep -q 'kb_error=not renderable: payload fails schema 2001: bsn-11proef at bsnKind' <<<"$dlq8"
check "... after no attempt" grep -q 'kb_attempts=0' <<<"$dlq8"
check "it was never sent" eq "$(posts hook8 | jq -r --arg id "$i_id" 'select(.id==$id)' | wc -l)" 0

# ---- 2e. A permanent status (410 Gone, in the default --permanent-status)
# dead-letters the event after its one attempt, with the status in the
# reason, and its key goes on; a status not in the list (409) is retried.
"$BIN/kb-webhook-feed" --topic-suffix out.hook9 --count 4 --keys 2 >"$WORK/feed9.txt"
g_id=$(sed -n 1p "$WORK/feed9.txt" | cut -d' ' -f1)
c_id=$(sed -n 2p "$WORK/feed9.txt" | cut -d' ' -f1)
receiver hook9 --rule "id:$g_id=410xinf" --rule "id:$c_id=409x1"
deliver deliver9 hook9 "$(cat "$WORK/hook9.port")" --backoff-base 300ms --backoff-max 1s
check "the 410 event dead-lettered (window 5 days)" wait_for 30 count_is "$(T dlq.hook9)" 1
check "the other three delivered, the 409 one on its second attempt" wait_for 30 ok_ids_is hook9 3
dlq9=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq.hook9)" -e -q -f '%h\n' 2>/dev/null)
check "its dead letter gives the status" grep -q 'kb_error=HTTP 410 (permanent)' <<<"$dlq9"
check "... after one attempt" grep -q 'kb_attempts=1' <<<"$dlq9"
check "the 410 event was sent once" eq "$(attempt_times hook9 "$g_id" | wc -l)" 1
check "the 409 event was retried" eq "$(attempt_times hook9 "$c_id" | wc -l)" 2

# ---- 2f. A key whose head keeps failing holds up its own partition only.
# Twelve events of k0 (always HTTP 500) come first: with --max-pending 12
# over 3 partitions, k0's partition holds its reserve (2) and the shared
# part (6), then is paused. Events written after that to the other
# partitions are still delivered promptly (before, every partition paused
# once 12 events waited, until k0's window ended).
"$BIN/kb-webhook-feed" --topic-suffix out.hook10 --count 12 --keys 1 >"$WORK/feed10a.txt"
h_key=$(sed -n 1p "$WORK/feed10a.txt" | cut -d' ' -f2)
h_head=$(sed -n 1p "$WORK/feed10a.txt" | cut -d' ' -f1)
receiver hook10 --rule "subject:$h_key=500xinf"
deliver deliver10 hook10 "$(cat "$WORK/hook10.port")" --max-pending 12 --retry-window 5m \
  --backoff-base 300ms --backoff-max 1s --metrics-addr 127.0.0.1:0
h_tried() { (( $(attempt_times hook10 "$h_head" | wc -l) >= 3 )); }
check "k0's head keeps failing" wait_for 30 h_tried
sleep 2 # the budget is spent by now
"$BIN/kb-webhook-feed" --topic-suffix out.hook10 --count 20 --keys 10 --start 1 >"$WORK/feed10b.txt"
kcat -C -b "$KB_BOOTSTRAP" -t "$(T out.hook10)" -e -q -f '%p %k\n' 2>/dev/null |
  sort -u >"$WORK/parts10.txt"
h_part=$(awk -v k="$h_key" '$2 == k {print $1}' "$WORK/parts10.txt")
# the events of feed B on the partitions k0 is not on
awk 'NR == FNR {part[$2] = $1; next} part[$2] != hp {print $1}' hp="$h_part" \
  "$WORK/parts10.txt" "$WORK/feed10b.txt" | sort >"$WORK/others10.txt"
check "feed B has events on the other partitions" test "$(wc -l <"$WORK/others10.txt")" -gt 0
others_delivered() {
  [[ -z "$(comm -23 "$WORK/others10.txt" \
    <(posts hook10 | jq -r 'select(.status==200) | .id' | sort -u))" ]]
}
check "the other partitions' events delivered promptly while k0 fails" \
  wait_for 20 others_delivered
check "k0's head is still failing (not dead-lettered)" eq "$(count "$(T dlq.hook10)")" 0
mport10=$(grep -o 'comp=http msg="listening" addr=127.0.0.1 port=[0-9]*' "$WORK/deliver10.log" |
  head -n 1 | sed 's/.*port=//')
pending10() {
  curl -sf "http://127.0.0.1:$mport10/metrics" | grep -q '^kb_deliver_pending{subscriber="hook10"} 8$'
}
check "held: k0's partition's reserve and the shared part, 8 of 12" wait_for 10 pending10
metrics10=$(curl -sf "http://127.0.0.1:$mport10/metrics")
check "the gauge shows k0's partition paused" \
  grep -q "^kb_deliver_partition_paused{subscriber=\"hook10\",partition=\"$h_part\"} 1$" \
  <<<"$metrics10"
check "... and the other two not" \
  eq "$(grep -c '^kb_deliver_partition_paused{subscriber="hook10",partition="[0-9]*"} 0$' \
    <<<"$metrics10")" 2

# ---- 3. A webhook that refuses the handshake gets nothing; a webhook with
# an untrusted certificate gets nothing.
"$BIN/kb-webhook-feed" --topic-suffix out.hook3 --count 2 >/dev/null
receiver hook3 --reject-handshake
# "Nothing" is only shown once the deliverer holds the events (its
# kb_deliver_pending gauge, set after they are queued) and has since failed
# the handshake twice more: every pass in between could have sent them.
metrics_port() { grep -o 'comp=http msg="listening" addr=127.0.0.1 port=[0-9]*' "$WORK/$1.log" | head -n 1 | sed 's/.*port=//'; }
holds() { # holds PORT SUBSCRIBER N: the deliverer's pending gauge is N
  curl -sf "http://127.0.0.1:$1/metrics" | grep -qx "kb_deliver_pending{subscriber=\"$2\"} $3"
}
refusals() { grep -c 'msg="webhook validation failed"' "$WORK/$1.log" || true; }
refusals_reach() { (( $(refusals "$1") >= $2 )); }
deliver deliver3 hook3 "$(cat "$WORK/hook3.port")" --backoff-base 300ms --backoff-max 1s \
  --metrics-addr 127.0.0.1:0
check "refused handshake is logged" wait_for 30 grep -q 'msg="webhook validation failed"' "$WORK/deliver3.log"
check "refused handshake: the deliverer holds the 2 events" \
  wait_for 30 holds "$(wait_for 30 grep -q 'msg="listening"' "$WORK/deliver3.log"; metrics_port deliver3)" hook3 2
n3=$(refusals deliver3)
check "refused handshake: refused twice more since ($n3 before)" wait_for 30 refusals_reach deliver3 $((n3 + 2))
check "no POST after a refused handshake" eq "$(posts hook3 | wc -l)" 0
check "... the receiver saw only the handshakes" \
  eq "$(jq -r .method "$WORK/hook3.jsonl" | sort -u)" OPTIONS
start rogue "$BIN/kb-webhook-receiver" --cert "$WORK/rogue.pem" --key "$WORK/rogue.key" \
  --log "$WORK/rogue.jsonl" --port-file "$WORK/rogue.port"
wait_for 10 test -s "$WORK/rogue.port"
"$BIN/kb-webhook-feed" --topic-suffix out.hook4 --count 1 >/dev/null
deliver deliver4 hook4 "$(cat "$WORK/rogue.port")" --backoff-base 300ms --backoff-max 1s \
  --metrics-addr 127.0.0.1:0
check "untrusted certificate: TLS verification fails" wait_for 30 grep -q 'webhook validation failed' "$WORK/deliver4.log"
check "untrusted certificate: the deliverer holds the event" \
  wait_for 30 holds "$(wait_for 30 grep -q 'msg="listening"' "$WORK/deliver4.log"; metrics_port deliver4)" hook4 1
n4=$(refusals deliver4)
check "untrusted certificate: refused twice more since ($n4 before)" wait_for 30 refusals_reach deliver4 $((n4 + 2))
check "untrusted certificate: the failure is TLS verification" \
  grep -q 'msg="webhook validation failed" subscriber=hook4 error="tls: certificate verify failed"' "$WORK/deliver4.log"
check "untrusted certificate: nothing reached the receiver" bash -c "! grep -q POST $WORK/rogue.jsonl 2>/dev/null"

# ---- 5. A webhook that answers with a body that never ends (a byte every
# 300 ms, each in time for the per-read timeout) or with 1 MiB: each such
# attempt fails within --timeout and the event is retried, instead of one
# exchange holding delivery (and the sender's memory) without end.
"$BIN/kb-webhook-feed" --topic-suffix out.hook7 --count 2 --keys 2 >"$WORK/feed7.txt"
d_id=$(sed -n 1p "$WORK/feed7.txt" | cut -d' ' -f1)
h_id=$(sed -n 2p "$WORK/feed7.txt" | cut -d' ' -f1)
receiver hook7 --rule "id:$d_id=dripx1" --rule "id:$h_id=hugex1"
deliver deliver7 hook7 "$(cat "$WORK/hook7.port")" --timeout 1500ms --backoff-base 300ms \
  --backoff-max 500ms
check "both events delivered on their second attempt" wait_for 60 ok_ids_is hook7 2
d_times=($(attempt_times hook7 "$d_id" | sort -n))
check "the dripping answer ended by --timeout, not by the drip (2 attempts, < 4 s apart)" \
  bash -c "(( ${#d_times[@]} == 2 && ${d_times[1]:-0} - ${d_times[0]:-0} < 4000 ))"
check "... logged as a timeout" grep -q 'error="timeout after 1500 ms"' "$WORK/deliver7.log"
check "the 1 MiB answer failed its attempt (2 attempts)" eq "$(attempt_times hook7 "$h_id" | wc -l)" 2

check "no personal data in deliver logs" \
  bash -c "! grep -Eh '999995303|999995304|999996204|999997105' $WORK/deliver*.log"
finish
