#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# admin_api.sh - the router's admin API on a real broker, behind a bearer
# token: anonymous and wrong-token requests get 401 (and repeated failures
# 429) while /metrics stays public; subscriptions are listed, shown and
# validated; a dry-run job over the history gives exactly the counts computed
# here from the input itself and delivers nothing; dead letters are listed
# page by page and redriven (the redriven event arrives back in the input
# and is routed); the audit status reflects a verified trail, with the same
# record count as `ketenbus audit verify` and its tail check (a cut tail in
# the status: tests/integration/audit_trail.sh).
source "$(dirname "$0")/lib.sh"

KB=$BIN/ketenbus
N1=150 # gemeente 0344
N2=100 # gemeente 0363
TOKEN=kb-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s\n' "$TOKEN" >"$WORK/token"
chmod 600 "$WORK/token"
"$KB" audit keygen --private "$WORK/audit.key" --public "$WORK/audit.pub" >/dev/null
mkdir -p "$WORK/subs"
cat >"$WORK/subs/alle.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.geboortedatum, inschrijving.gemeente]
YAML
SINCE=$(date -u -d '-5 seconds' +%Y-%m-%dT%H:%M:%SZ)

# A valid event made under a scratch prefix: injected below as a dead letter
# the router never judged (as after an outage), so redrive must route it.
KETENBUS_TOPIC_PREFIX=$KETENBUS_TOPIC_PREFIX-scratch "$KB" gen --count 1 --seed 99 \
  --gemeenten 0599 --subject-key-file "$WORK/subject.key" >"$WORK/scratch.log" 2>&1
SCRATCH=$KETENBUS_TOPIC_PREFIX-scratch.in.gba
kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -c 1 -e -q -f '%s' >"$WORK/valid.bin"
IFS=',' read -ra HDRS <<<"$(kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -c 1 -e -q -f '%h')"
FIXED_ID=$(printf '%s\n' "${HDRS[@]}" | sed -n 's/^ce_id=//p')

start router "$KB" route --subscriptions "$WORK/subs" --instance r1 \
  --subject-key-file "$WORK/subject.key" --audit-signing-key "$WORK/audit.key" \
  --checkpoint-every 50 --checkpoint-ms 1000 --batch 100 \
  --metrics-addr 127.0.0.1:0 --http-token-file "$WORK/token" \
  --audit-public-key "$WORK/audit.pub" --audit-verify-every 0
PORT=$(serving_port router)
URL=http://127.0.0.1:$PORT
check "router serves on a port" test -n "$PORT"

# http METHOD PATH [curl args...]: body to $WORK/resp.json, status printed.
http() {
  local m=$1 p=$2; shift 2
  curl -s -o "$WORK/resp.json" -w '%{http_code}' -X "$m" "$@" "$URL$p"
}
auth=(-H "Authorization: Bearer $TOKEN")
j() { jq -r "$1" "$WORK/resp.json"; }

# --- authentication (#10.3) ---
check "anonymous: 401" eq "$(http GET /admin/subscriptions)" 401
check "anonymous: WWW-Authenticate Bearer" bash -c "curl -s -D - -o /dev/null '$URL/admin/dlq' | grep -qi '^WWW-Authenticate: Bearer'"
check "wrong token: 401" eq "$(http GET /admin/subscriptions -H 'Authorization: Bearer nope')" 401
check "wrong token on a POST: 401, nothing done" eq "$(http POST /admin/dlq/redrive -H 'Authorization: Bearer nope' -d '{"letters":[{"partition":0,"offset":0}]}')" 401
check "a path with an encoded line break: 401" eq "$(http GET '/admin/x%0Aforged%20level=error')" 401
check "... logged re-encoded and quoted (it holds '='), on the one line" \
  bash -c "grep -q 'path=\"/admin/x%0Aforged%20level=error\"' '$WORK/router.log' && ! grep -q '^forged' '$WORK/router.log'"
check "metrics stay public" eq "$(http GET /metrics)" 200
check "the dashboard page is public (no data in it)" eq "$(http GET /dashboard)" 200
check "the event stream is not" eq "$(http GET '/events?max=1')" 401

# --- traffic ---
"$KB" gen --count $N1 --seed 7 --gemeenten 0344 --subject-key-file "$WORK/subject.key" >"$WORK/gen1.log" 2>&1
"$KB" gen --count $N2 --seed 7 --start $N1 --gemeenten 0363 --subject-key-file "$WORK/subject.key" >"$WORK/gen2.log" 2>&1
for i in 1 2 3; do echo "broken $i" | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k "x$i"; done
check "alle: the $((N1 + N2)) valid events delivered" wait_for 120 count_is "$(T out.alle)" $((N1 + N2))
check "dead letters: the 3 malformed" wait_for 60 count_is "$(T dlq)" 3

# --- subscriptions ---
check "list: 200" eq "$(http GET /admin/subscriptions "${auth[@]}")" 200
check "list: one subscription, alle" eq "$(j '[.count, .subscriptions[0].name] | join(" ")')" "1 alle"
check "show alle: types and fields" eq "$(http GET /admin/subscriptions/alle "${auth[@]}") $(j '.types[0] + " " + (.fields | join(","))')" \
  "200 nl.brp.persoon-geboren kind.geboortedatum,inschrijving.gemeente"
check "show alle: its topic" eq "$(j .delivery.topic)" "$(T out.alle)"
check "show unknown: 404" eq "$(http GET /admin/subscriptions/nope "${auth[@]}")" 404

cat >"$WORK/proposed.yaml" <<YAML
subscriptions:
  - name: eind-a
    purpose: {id: steekproef, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    filter: {suffix: {id: "a"}}
  - name: gemeente-filter
    purpose: {id: gemeente, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    filter: {field: {path: inschrijving.gemeente, op: "=", value: "0363"}}
    fields: [inschrijving.gemeente, kind.geboortedatum]
YAML
printf 'subscriptions:\n  - name: x\n    bogus: 1\n' >"$WORK/bad.yaml"
Y=(-H 'Content-Type: application/yaml')
check "validate good: 200 ok with both names" eq "$(http POST /admin/subscriptions/validate "${auth[@]}" "${Y[@]}" --data-binary @"$WORK/proposed.yaml") $(j '[.ok, .count] | map(tostring) | join(" ")') $(j '.subscriptions | join(",")')" \
  "200 true 2 eind-a,gemeente-filter"
check "validate bad: 422" eq "$(http POST /admin/subscriptions/validate "${auth[@]}" "${Y[@]}" --data-binary @"$WORK/bad.yaml")" 422
check "validate bad: names body:line:column and the key" bash -c "jq -r .message '$WORK/resp.json' | grep -q '^body:3:[0-9]*: .*bogus'"
check "validate bad: no temp path leaks" bash -c "! grep -q 'kb-admin-' '$WORK/resp.json'"
check "validate empty: 400" eq "$(http POST /admin/subscriptions/validate "${auth[@]}")" 400
# A posted subscription may not name a file on the server to read.
printf 'subscriptions:\n  - name: x\n    purpose: {id: p, legal_basis: "t"}\n    types: [nl.brp.persoon-geboren]\n    follow: /etc/hostname\n' >"$WORK/follow.yaml"
check "validate follow: FILE: 422" eq "$(http POST /admin/subscriptions/validate "${auth[@]}" "${Y[@]}" --data-binary @"$WORK/follow.yaml")" 422
check "... saying a follow topic is the way" bash -c "jq -r .message '$WORK/resp.json' | grep -q 'follow: FILE is not accepted'"

# --- dry-run (a job) ---
header_values "$(T in.gba)" ce_id | sort -u >"$WORK/in.ids"
EXP_A=$(grep -c 'a$' "$WORK/in.ids" || true)
check "dry-run without since: 400" eq "$(http POST /admin/subscriptions/dry-run "${auth[@]}" "${Y[@]}" --data-binary @"$WORK/proposed.yaml")" 400
check "dry-run since=2026-02-31: 400" eq "$(http POST "/admin/subscriptions/dry-run?since=2026-02-31" "${auth[@]}" "${Y[@]}" --data-binary @"$WORK/proposed.yaml")" 400
check "... naming the day" eq "$(j .message)" 'since: "2026-02-31": day 31 is out of range (2026-02 has 28 days)'
check "dry-run: 202 with a job" eq "$(http POST "/admin/subscriptions/dry-run?since=$SINCE&samples=2" "${auth[@]}" "${Y[@]}" --data-binary @"$WORK/proposed.yaml")" 202
JOB=$(j .href)
check "dry-run: job href" bash -c "[[ '$JOB' == /admin/subscriptions/dry-run/[0-9]* ]]"
job_done() { http GET "$JOB" "${auth[@]}" >/dev/null; [[ "$(j .status)" == done || "$(j .status)" == failed ]]; }
check "dry-run: finishes" wait_for 90 job_done
check "dry-run: done" eq "$(j .status)" done
check "dry-run: read and rejected (3 malformed)" eq "$(j '.result | [.read, .rejected, .rejected_by.envelope, .duplicates, .complete] | map(tostring) | join(" ")')" "$((N1 + N2 + 3)) 3 3 0 true"
check "dry-run: eind-a = ids ending in a ($EXP_A)" eq "$(j '.result.subscriptions[] | select(.name=="eind-a") | .events')" "$EXP_A"
check "dry-run: gemeente 0363 = the $N2" eq "$(j '.result.subscriptions[] | select(.name=="gemeente-filter") | .types["nl.brp.persoon-geboren"]')" "$N2"
check "dry-run: 2 samples, field names only" eq "$(j '[.result.subscriptions[] | select(.name=="gemeente-filter") | .field_lists[.samples[].field_list]] | join("|")')" \
  "inschrijving.gemeente,kind.geboortedatum|inschrijving.gemeente,kind.geboortedatum"
check "dry-run: the field list once, not per sample" eq "$(j '.result.subscriptions[] | select(.name=="gemeente-filter") | .field_lists | length')" 1
check "dry-run: samples per subscription" eq "$(j .result.samples_per_subscription)" 2
check "dry-run: no values in the result (no BSN, no gemeente code)" bash -c "! jq -c '.result | del(.subscriptions[].samples[].id)' '$WORK/resp.json' | grep -Eq '999[0-9]{6}|0363|0344'"
check "dry-run: delivered nothing" bash -c "! kcat -L -b '$KB_BOOTSTRAP' | grep -q '$(T out.gemeente-filter)'"
check "dry-run: unknown job 404" eq "$(http GET /admin/subscriptions/dry-run/9999 "${auth[@]}")" 404

# --- dead letters ---
# The injected letter: the scratch event with the router's context headers.
HARGS=()
for h in "${HDRS[@]}"; do HARGS+=(-H "$h"); done
kcat -P -b "$KB_BOOTSTRAP" -t "$(T dlq)" -k fixed "${HARGS[@]}" -H "kb_topic=$(T in.gba)" \
  -H kb_partition=0 -H kb_offset=0 -H kb_stage=schema -H kb_rule=schema-unknown \
  -H "kb_error=schema registry unreachable" "$WORK/valid.bin"
check "dlq list: 200" eq "$(http GET /admin/dlq "${auth[@]}")" 200
check "dlq list: 4 letters, 3 envelope" eq "$(j '[.count, ([.letters[] | select(.stage=="envelope")] | length)] | map(tostring) | join(" ")')" "4 3"
check "dlq list: the injected one with its id and origin" eq "$(j ".letters[] | select(.id==\"$FIXED_ID\") | .from.topic + \" \" + .rule")" "$(T in.gba) schema-unknown"
check "dlq list: no next page" eq "$(j .next)" null
check "dlq list: depth counts every letter" bash -c "(( \$(jq .depth '$WORK/resp.json') >= 4 ))"
ALL=$(j '[.letters[] | "\(.partition)/\(.offset)"] | join(" ")')
IP=$(j ".letters[] | select(.id==\"$FIXED_ID\") | .partition")
IO=$(j ".letters[] | select(.id==\"$FIXED_ID\") | .offset")
check "dlq page 1 (limit 3): 3 and a next cursor" eq "$(http GET '/admin/dlq?limit=3' "${auth[@]}") $(j '.count')" "200 3"
PAGE1=$(j '[.letters[] | "\(.partition)/\(.offset)"] | join(" ")')
NP=$(j .next.partition); NO=$(j .next.offset)
check "dlq page 2 from the cursor: the last one" eq "$(http GET "/admin/dlq?limit=3&partition=$NP&offset=$NO" "${auth[@]}") $(j '.count') $(j .next)" "200 1 null"
check "dlq pages 1 + 2 = the whole list, in order" eq "$PAGE1 $(j '.letters[0] | "\(.partition)/\(.offset)"')" "$ALL"
check "dlq limit 0: 400" eq "$(http GET '/admin/dlq?limit=0' "${auth[@]}")" 400

# --- redrive ---
check "redrive bad body: 400" eq "$(http POST /admin/dlq/redrive "${auth[@]}" -d '{"letters":[{"partition":0}]}')" 400
printf '{"note":"999995303\001"}' >"$WORK/ctl.json"
check "redrive invalid JSON: 400" eq "$(http POST /admin/dlq/redrive "${auth[@]}" --data-binary "@$WORK/ctl.json")" 400
check "... the error gives the position, never the text around it" \
  bash -c "jq -r .message '$WORK/resp.json' | grep -q 'line 1 column' && ! grep -q 99999 '$WORK/resp.json'"
check "redrive: 200" eq "$(http POST /admin/dlq/redrive "${auth[@]}" -d "{\"letters\":[{\"partition\":$IP,\"offset\":$IO}]}")" 200
check "redrive: back into the input topic" eq "$(j '.redriven[0].to.topic + " " + (.failed | length | tostring)')" "$(T in.gba) 0"
check "redrive: same bytes" eq "$(j '.redriven[0].sha256')" "$(sha256sum "$WORK/valid.bin" | cut -d' ' -f1)"
check "redrive: arrives in the input with kb_redriven_from" wait_for 30 bash -c \
  "kcat -C -b '$KB_BOOTSTRAP' -t '$(T in.gba)' -e -q -f '%h\n' | grep -q 'kb_redriven_from=$(T dlq)/$IP/$IO'"
check "redrive: routed to alle" wait_for 60 count_is "$(T out.alle)" $((N1 + N2 + 1))
check "redrive: delivered under its own id" bash -c "header_values() { kcat -C -b '$KB_BOOTSTRAP' -t \"\$1\" -e -q -X isolation.level=read_committed -f '%h\n' | tr ',' '\n' | sed -n \"s/^\$2=//p\"; }; header_values '$(T out.alle)' ce_id | grep -qx '$FIXED_ID'"
check "redrive of a missing offset: 422 naming it" eq "$(http POST /admin/dlq/redrive "${auth[@]}" -d '{"partition":0,"offsets":[99999]}') $(j '.failed[0].error')" "422 KB_ERR_NOTFOUND"

# A corrected value (value_base64): a second event whose dead letter holds
# broken bytes goes back with the value it should have had.
KETENBUS_TOPIC_PREFIX=$KETENBUS_TOPIC_PREFIX-scratch2 "$KB" gen --count 1 --seed 98 \
  --gemeenten 0599 --subject-key-file "$WORK/subject.key" >>"$WORK/scratch.log" 2>&1
SCRATCH2=$KETENBUS_TOPIC_PREFIX-scratch2.in.gba
kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH2" -c 1 -e -q -f '%s' >"$WORK/valid2.bin"
IFS=',' read -ra HDRS2 <<<"$(kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH2" -c 1 -e -q -f '%h')"
ID2=$(printf '%s\n' "${HDRS2[@]}" | sed -n 's/^ce_id=//p')
HARGS2=()
for h in "${HDRS2[@]}"; do HARGS2+=(-H "$h"); done
printf 'not avro' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T dlq)" -k fixed2 "${HARGS2[@]}" \
  -H "kb_topic=$(T in.gba)" -H kb_partition=0 -H kb_offset=1 -H kb_stage=envelope \
  -H kb_rule=confluent-framing -H "kb_error=value lacks the Confluent framing"
letter2() { http GET /admin/dlq "${auth[@]}" >/dev/null; [[ -n "$(j ".letters[] | select(.id==\"$ID2\") | .offset")" ]]; }
check "the broken letter is listed" wait_for 30 letter2
P2=$(j ".letters[] | select(.id==\"$ID2\") | .partition")
O2=$(j ".letters[] | select(.id==\"$ID2\") | .offset")
check "redrive with bad base64: 400, nothing sent" eq "$(http POST /admin/dlq/redrive "${auth[@]}" -d "{\"letters\":[{\"partition\":$P2,\"offset\":$O2,\"value_base64\":\"%%%\"}]}")" 400
check "redrive with an unframed correction: 422" eq "$(http POST /admin/dlq/redrive "${auth[@]}" -d "{\"letters\":[{\"partition\":$P2,\"offset\":$O2,\"value_base64\":\"$(printf 'abc' | base64 -w0)\"}]}") $(j '.failed[0].error')" "422 KB_ERR_INVALID"
check "redrive with the corrected value: 200" eq "$(http POST /admin/dlq/redrive "${auth[@]}" -d "{\"letters\":[{\"partition\":$P2,\"offset\":$O2,\"value_base64\":\"$(base64 -w0 "$WORK/valid2.bin")\"}]}") $(j '.redriven[0].corrected')" "200 true"
check "... the corrected bytes went back" eq "$(j '.redriven[0].sha256')" "$(sha256sum "$WORK/valid2.bin" | cut -d' ' -f1)"
check "... and are routed to alle" wait_for 60 count_is "$(T out.alle)" $((N1 + N2 + 2))
check "... under their own id" bash -c "kcat -C -b '$KB_BOOTSTRAP' -t '$(T out.alle)' -e -q -X isolation.level=read_committed -f '%h\n' | tr ',' '\n' | grep -qx 'ce_id=$ID2'"

# A page on another site cannot make the operator's browser act here, even
# with the right credential attached (a client certificate is sent that way).
check "redrive from a foreign Origin: 403, nothing redriven" eq "$(http POST /admin/dlq/redrive "${auth[@]}" -H 'Origin: http://evil.example' -H 'Content-Type: text/plain' -d '{"partition":0,"offsets":[0]}') $(j .error_code)" "403 40301"

# --- audit status ---
check "audit status before any run: never" eq "$(http GET /admin/audit/status "${auth[@]}") $(j .state)" "200 never"
sleep 2 # the last checkpoint (checkpoint-ms 1000)
check "audit verify: 202" eq "$(http POST /admin/audit/verify "${auth[@]}")" 202
audit_done() { http GET /admin/audit/status "${auth[@]}" >/dev/null; [[ "$(j .state)" == done || "$(j .state)" == error ]]; }
check "audit verify: finishes" wait_for 90 audit_done
cp "$WORK/resp.json" "$WORK/audit_status.json"
"$KB" audit verify --public-key "$WORK/audit.pub" >"$WORK/verify.txt" 2>"$WORK/verify.log" \
  && rc=0 || rc=$?
check "'audit verify' agrees: exit 0" eq "$rc" 0
check "'audit verify' agrees: result OK" grep -qx 'result: OK' "$WORK/verify.txt"
CLI_RECS=$(sed -n 's/^audit trail .*: [0-9]* messages, \([0-9]*\) records.*/\1/p' "$WORK/verify.txt")
check "audit status: OK, complete, no problems" eq "$(j '.last | [.result, .complete, .problems_total] | map(tostring) | join(" ")')" "OK true 0"
check "audit status: tail checked against the router's group" eq "$(j '.last.tail_check | [.state, .group] | join(" ")')" "done $KETENBUS_TOPIC_PREFIX-route"
# One record per routing decision: the valid events, 3 malformed, the two redrives.
check "audit status: records = decisions ($((N1 + N2 + 5)))" eq "$(j .last.records)" $((N1 + N2 + 5))
check "audit status: same records as 'audit verify' ($CLI_RECS)" eq "$(j .last.records)" "$CLI_RECS"
in_parts=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -f '%p\n' | sort -u | wc -l)
check "audit status: signed checkpoints" \
  bash -c "(( \$(jq .last.checkpoints '$WORK/audit_status.json') > 0 ))"
check "audit status: one chain per input partition with events ($in_parts)" \
  eq "$(jq '.last.chains | length' "$WORK/audit_status.json")" "$in_parts"
# A deleted head (DeleteRecords on the live trail; the topic never expires
# records): the status names the partition and where it now starts.
AP=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T audit)" -e -q -f '%p\n' | sort -n | head -n 1)
check "DeleteRecords before offset 1 of $(T audit) [$AP]" "$BIN/test_audit" delete-records \
  --topic "$(T audit)" --partition "$AP" --before 1
check "audit verify again: 202" eq "$(http POST /admin/audit/verify "${auth[@]}")" 202
sleep 1
check "audit verify again: finishes" wait_for 90 audit_done
check "audit status: FAILED, naming the deleted head" eq \
  "$(j '.last | [.result, (.problems[] | select(.what | test("audit partition '"$AP"' starts at offset 1")) | .kind)] | join(" ")')" \
  "FAILED missing"

# --- rate limit on failed authentication (last: it locks this address out) ---
for i in $(seq 1 12); do http GET /admin/dlq -H "Authorization: Bearer guess-$i" >"$WORK/code.$i" || true; done
check "repeated wrong tokens: 429" eq "$(cat "$WORK/code.12")" 429
check "... then even the right token waits (429 with Retry-After)" eq "$(http GET /admin/subscriptions "${auth[@]}")" 429
check "... while /metrics stays served" eq "$(http GET /metrics)" 200

# --- the admin API on a server of its own (--admin-addr), on another address
# than the probes (admin_slow_broker.sh shows they never wait on it anyway) ---
check "--admin-addr with --no-admin is refused" bash -c "! '$KB' route --subscriptions '$WORK/subs' \
  --metrics-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --no-admin 2>'$WORK/both.err' &&
  grep -q 'exclude each other' '$WORK/both.err'"
check "--admin-addr on a public address without authentication is refused" \
  bash -c "! '$KB' route --subscriptions '$WORK/subs' --admin-addr 0.0.0.0:0 2>'$WORK/open.err' &&
  grep -q 'needs --http-token-file' '$WORK/open.err'"
start router2 "$KB" route --subscriptions "$WORK/subs" --instance r2 --group kb-admin-split \
  --subject-key-file "$WORK/subject.key" --no-audit --batch 100 \
  --metrics-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --http-token-file "$WORK/token"
PORT2=$(serving_port router2)
wait_for 30 grep -qs 'msg="serving admin"' "$WORK/router2.log"
APORT=$(sed -n 's/.*msg="serving admin" url=http:\/\/[^:]*:\([0-9]*\)\/.*/\1/p' "$WORK/router2.log" | head -1)
check "two servers: metrics and admin on their own ports" bash -c "[[ -n '$PORT2' && -n '$APORT' && '$PORT2' != '$APORT' ]]"
check "admin server: the admin API answers" \
  eq "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "http://127.0.0.1:$APORT/admin/subscriptions")" 200
check "metrics server: no admin API there" \
  eq "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "http://127.0.0.1:$PORT2/admin/subscriptions")" 404
check "metrics server: probes and metrics" \
  eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT2/healthz")" 200

finish
