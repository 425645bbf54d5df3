#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# audit_trail.sh - the audit trail on a real Kafka broker, until the router
# writes it: test_audit (tool mode) appends records and checkpoints inside
# Kafka transactions the way the router will, with an aborted transaction, a
# simulated restart and a kill -9 with an open transaction. Proves: verify
# passes on the genuine trail and fails, naming partition and offset, on
# altered, deleted, reordered, re-signed and re-hashed copies; the access
# report and the LDV export for a fixture person; the retention warning.
source "$(dirname "$0")/lib.sh"

KB=$BIN/ketenbus
TOOL=$BIN/test_audit
IN=$(T in.gba)
AUDIT=$(T audit)
N=40      # input events, over 2 partitions
EVERY=3   # every 3rd event is about the fixture person
BSN=999995303
ANR=7194601014  # the fixture person's A-nummer: every second event of theirs is keyed by it

# 1. Keys: private key 0600, never overwritten.
check "keygen" "$KB" audit keygen --private "$WORK/audit.key" --public "$WORK/audit.pub"
check "private key is 0600" eq "$(stat -c %a "$WORK/audit.key")" 600
check "keygen refuses to overwrite a key" bash -c "! '$KB' audit keygen --private '$WORK/audit.key' --public '$WORK/x.pub' 2>/dev/null"
"$KB" audit keygen --private "$WORK/wrong.key" --public "$WORK/wrong.pub" >/dev/null

# 2. The trail: 40 events; batch 2 aborted and redone; a kill -9 inside the
#    transaction holding event 21; a new process resumes from event 20 and
#    makes a fresh handle again at event 28 (restart).
check "input events" "$TOOL" inputs --topic "$IN" --count $N --partitions 2
TRAIL=(trail --input "$IN" --key "$WORK/audit.key" --subject-key "$WORK/subject.key" --bsn $BSN --anummer $ANR --every $EVERY --batch 4 --checkpoint-every 5)
set +e
"$TOOL" "${TRAIL[@]}" --abort-batch 2 --crash-at 21 >"$WORK/trail1.log" 2>&1
rc=$?
set -e
check "writer died with an open transaction (137)" eq "$rc" 137
"$TOOL" "${TRAIL[@]}" --first 20 --restart-at 28 >"$WORK/trail2.log" 2>&1
check "second writer finished" grep -q "records=20 " "$WORK/trail2.log"
check "audit topic made kept forever, never compacted" \
  eq "$(topic_config "$AUDIT" | cut -d' ' -f2,3)" "cleanup.policy=delete retention.ms=-1"
# Events are numbered partition by partition: 0..19 are partition 0, so the
# resumed chain of partition 0 continues at 20 and partition 1's starts at 0.
check "resume after kill -9: partition 0 continues at seq 20" grep -q "resumed $IN/0 next_seq=20" "$WORK/trail2.log"
check "resume after kill -9: partition 1 starts at seq 0" grep -q "resumed $IN/1 next_seq=0" "$WORK/trail2.log"
check "restart at event 28: partition 1 continues at seq 8" grep -q "resumed $IN/1 next_seq=8" "$WORK/trail2.log"

# 3. Verify the genuine trail.
"$KB" audit verify --topic "$AUDIT" --public-key "$WORK/audit.pub" >"$WORK/verify.out" 2>&1 && vrc=0 || vrc=$?
check "verify: intact trail exits 0" eq "$vrc" 0
check "verify: all $N records" grep -q " $N records," "$WORK/verify.out"
check "verify: chain 0 is seq 0..19" grep -q "chain $IN/0: seq 0..19, 20 records" "$WORK/verify.out"
check "verify: chain 1 is seq 0..19" grep -q "chain $IN/1: seq 0..19, 20 records" "$WORK/verify.out"
check "verify: no problems" bash -c "! grep -q PROBLEM '$WORK/verify.out'"
check "verify: checkpoints were valid" bash -c "grep -q ' [1-9][0-9]* valid checkpoints' '$WORK/verify.out'"
"$KB" audit verify --topic "$AUDIT" --public-key "$WORK/wrong.pub" >"$WORK/verify-wrongkey.out" 2>&1 && vrc=0 || vrc=$?
check "verify with an untrusted key fails" eq "$vrc" 1
check "  ... as bad signature" grep -q "PROBLEM bad signature" "$WORK/verify-wrongkey.out"

# 4. Tampered copies: verify fails and names the place.
tamper() { # tamper MODE INDEX KIND: copy, verify, expect KIND at the target
  local mode=$1 index=$2 kind=$3 dst
  dst=$(T "audit-$mode")
  local target
  target=$("$TOOL" tamper --from "$AUDIT" --to "$dst" --mode "$mode" --chain "$IN/0" --index "$index" --wrong-key "$WORK/wrong.key" | sed -n 's/^target //p')
  local p=${target#partition=}; p=${p%% *}; local o=${target##*offset=}
  "$KB" audit verify --topic "$dst" --public-key "$WORK/audit.pub" >"$WORK/verify-$mode.out" 2>&1 && vrc=0 || vrc=$?
  check "$mode: verify exits 1" eq "$vrc" 1
  check "$mode: names $kind at partition $p offset $o" grep -q "PROBLEM $kind: audit partition $p offset $o chain $IN/0" "$WORK/verify-$mode.out"
}
tamper alter 7 altered
tamper delete 7 missing
tamper reorder 7 reordered
tamper resign 0 "bad signature"
tamper rehash 2 altered
check "rehash: caught by the checkpoint" grep -q "checkpoint signs another hash" "$WORK/verify-rehash.out"
# The verdict does not depend on how many threads read the audit partitions.
for t in 1 3; do
  { "$KB" audit verify --topic "$AUDIT" --public-key "$WORK/wrong.pub" --threads $t 2>&1 || true
    "$KB" audit verify --topic "$(T audit-reorder)" --public-key "$WORK/audit.pub" --threads $t 2>&1 || true
  } | grep -v '^audit trail ' >"$WORK/verify-threads-$t.out"
done
check "verify: the same report on 1 and 3 threads" cmp "$WORK/verify-threads-1.out" "$WORK/verify-threads-3.out"
check "  ... which names the bad signatures and the reordered record" bash -c "grep -q 'PROBLEM bad signature' '$WORK/verify-threads-3.out' && grep -q 'PROBLEM reordered' '$WORK/verify-threads-3.out'"
check "verify: --threads 0 refused" bash -c "! '$KB' audit verify --topic '$AUDIT' --threads 0 2>/dev/null"

# 4b. A deleted head (DeleteRecords; the audit topic never expires records):
#     without --from verify fails and names the partition and its new start;
#     it used to drop the "chains start at seq 0" rule and say OK.
HEAD=$(T audit-head)
target=$("$TOOL" tamper --from "$AUDIT" --to "$HEAD" --mode copy --chain "$IN/0" --index 0 | sed -n 's/^target //p')
hp=${target#partition=}; hp=${hp%% *}
check "head: DeleteRecords on the copy" "$TOOL" delete-records --topic "$HEAD" --partition "$hp" --before 3
"$KB" audit verify --topic "$HEAD" --public-key "$WORK/audit.pub" >"$WORK/verify-head.out" 2>&1 && vrc=0 || vrc=$?
check "head: verify exits 1" eq "$vrc" 1
check "head: names partition $hp and offset 3" grep -q "PROBLEM missing: audit partition $hp offset 3 .*audit partition $hp starts at offset 3" "$WORK/verify-head.out"
"$KB" audit verify --topic "$HEAD" --public-key "$WORK/audit.pub" --from 1 >"$WORK/verify-head-from.out" 2>&1 && vrc=0 || vrc=$?
check "head: verify --from checks what is left (exit 0)" eq "$vrc" 0

# 4c. A tail cut off together with its checkpoints: the chain verifies as
#     far as it goes; the router group's committed offset shows the loss.
GROUP=$KETENBUS_TOPIC_PREFIX-route
for p in 0 1; do
  check "tail: group $GROUP committed 20 on $IN [$p]" "$TOOL" commit --group "$GROUP" --topic "$IN" --partition $p --offset 20
done
"$KB" audit verify --topic "$AUDIT" --public-key "$WORK/audit.pub" >"$WORK/verify-tail-ok.out" 2>&1 && vrc=0 || vrc=$?
check "tail: the genuine trail reaches the committed offsets (exit 0)" eq "$vrc" 0
check "tail: the check ran" grep -q "tail check: each chain against the offsets group $GROUP had committed" "$WORK/verify-tail-ok.out"
TAIL=$(T audit-tail)
target=$("$TOOL" tamper --from "$AUDIT" --to "$TAIL" --mode truncate --chain "$IN/0" --index 15 | sed -n 's/^target //p')
tp=${target#partition=}; tp=${tp%% *}; to=${target##*offset=}
"$KB" audit verify --topic "$TAIL" --public-key "$WORK/audit.pub" >"$WORK/verify-tail.out" 2>&1 && vrc=0 || vrc=$?
check "tail: verify exits 1" eq "$vrc" 1
check "tail: names the chain's last record (partition $tp offset $to)" grep -q "PROBLEM missing: audit partition $tp offset $to chain $IN/0: chain ends at input offset 14 .* input offsets 15..19 are gone" "$WORK/verify-tail.out"
"$KB" audit verify --topic "$TAIL" --public-key "$WORK/audit.pub" --router-group - >"$WORK/verify-tail-skip.out" 2>&1 && vrc=0 || vrc=$?
check "tail: --router-group - skips the check and says so" bash -c "[[ $vrc == 0 ]] && grep -q 'tail check: not run' '$WORK/verify-tail-skip.out'"
# A chain removed whole (every record of input partition 1 gone): no chain
# is left to end early, but the group committed on that partition.
GONE=$(T audit-gone)
"$TOOL" tamper --from "$AUDIT" --to "$GONE" --mode truncate --chain "$IN/1" --index 0 >/dev/null
"$KB" audit verify --topic "$GONE" --public-key "$WORK/audit.pub" >"$WORK/verify-gone.out" 2>&1 && vrc=0 || vrc=$?
check "gone: verify exits 1" eq "$vrc" 1
check "gone: names the input partition without a chain" grep -q "PROBLEM missing: .*chain $IN/1: no chain for $IN \[1\] in the trail, although the router has committed it up to offset 20" "$WORK/verify-gone.out"
# The admin API's audit status runs the same tail check (what GET
# /admin/audit/status serves as "last", from the admin worker's call).
"$TOOL" status --topic "$AUDIT" --pub "$WORK/audit.pub" >"$WORK/status-tail-ok.json"
check "tail: status of the genuine trail: OK, tail check done on $GROUP" eq \
  "$(jq -r '[.result, .tail_check.state, .tail_check.group] | join(" ")' "$WORK/status-tail-ok.json")" "OK done $GROUP"
"$TOOL" status --topic "$TAIL" --pub "$WORK/audit.pub" >"$WORK/status-tail.json"
check "tail: status FAILED, naming the cut tail at partition $tp offset $to" eq \
  "$(jq -r '[.result, .tail_check.state, (.problems[] | select(.chain == "'"$IN"'/0" and .partition == '"$tp"' and .offset == '"$to"' and (.what | test("input offsets 15[.][.]19 are gone"))) | .kind)] | join(" ")' "$WORK/status-tail.json")" \
  "FAILED done missing"
"$TOOL" status --topic "$TAIL" --pub "$WORK/audit.pub" --group - >"$WORK/status-tail-off.json"
check "tail: status with the check off says so, and is OK" eq \
  "$(jq -r '[.result, .tail_check.state] | join(" ")' "$WORK/status-tail-off.json")" "OK off"

# 5. The access report for the fixture person: half of their events are keyed
#    by the A-nummer (as GBA keys all but births), so --bsn alone finds half
#    and says what it did not search; both identifiers find all.
EXPECT=$(( (N + EVERY - 1) / EVERY ))
BY_BSN=0; for ((i = 0; i < N; i += EVERY)); do (((i / EVERY) % 2 == 0)) && BY_BSN=$((BY_BSN + 1)); done
"$KB" audit subject --topic "$AUDIT" --bsn $BSN --subject-key-file "$WORK/subject.key" >"$WORK/subject-bsn.txt"
check "subject --bsn: $BY_BSN deliveries" grep -q "^$BY_BSN deliveries of $BY_BSN events about this subject" "$WORK/subject-bsn.txt"
check "subject --bsn: says the A-nummer was not searched" grep -q "not searched: events keyed by the A-nummer" "$WORK/subject-bsn.txt"
"$KB" audit subject --topic "$AUDIT" --anummer $ANR --subject-key-file "$WORK/subject.key" >"$WORK/subject-anr.txt"
check "subject --anummer: $((EXPECT - BY_BSN)) deliveries" grep -q "^$((EXPECT - BY_BSN)) deliveries of" "$WORK/subject-anr.txt"
"$KB" audit subject --topic "$AUDIT" --bsn $BSN --anummer $ANR --subject-key-file "$WORK/subject.key" >"$WORK/subject.txt"
check "subject: $EXPECT deliveries" grep -q "^$EXPECT deliveries of $EXPECT events about this subject" "$WORK/subject.txt"
check "subject: searched by BSN and A-nummer" grep -q "searched by BSN and A-nummer" "$WORK/subject.txt"
check "subject: the A-nummer is not printed" bash -c "! grep -q $ANR '$WORK/subject.txt'"
check "subject: --anummer must be 10 digits" bash -c "! '$KB' audit subject --topic '$AUDIT' --anummer 12 --subject-key-file '$WORK/subject.key' 2>/dev/null"
check "subject: each to svb-kinderbijslag for akw-uitnodiging" eq "$(grep -c 'svb-kinderbijslag  purpose=akw-uitnodiging .*fields=kind.bsn,kind.geboortedatum$' "$WORK/subject.txt")" $EXPECT
check "subject: the BSN is not printed" bash -c "! grep -q $BSN '$WORK/subject.txt'"
"$KB" audit subject --topic "$AUDIT" --bsn $BSN --anummer $ANR --subject-key-file "$WORK/subject.key" --format json >"$WORK/subject.json"
check "subject json: $EXPECT deliveries" eq "$(jq '.deliveries | length' "$WORK/subject.json")" $EXPECT
check "subject json: searched bsn and anummer" eq "$(jq -r '[.searched[].identifier] | join(",")' "$WORK/subject.json")" bsn,anummer
check "subject json: $((EXPECT - BY_BSN)) found by the A-nummer" eq "$(jq '[.deliveries[] | select(.identifier == "anummer")] | length' "$WORK/subject.json")" $((EXPECT - BY_BSN))
check "subject json: purpose" eq "$(jq -r '[.deliveries[].purpose] | unique | join(",")' "$WORK/subject.json")" akw-uitnodiging
check "subject json: fields" eq "$(jq -r '.deliveries[0].fields | join(",")' "$WORK/subject.json")" kind.bsn,kind.geboortedatum
other=$("$KB" audit subject --topic "$AUDIT" --bsn 999996204 --subject-key-file "$WORK/subject.key" --format json)
# The other person: events i with i % 3 != 0; delivered (to the municipality) when i is even.
OTHER=0; for ((i = 0; i < N; i++)); do ((i % EVERY != 0 && i % 2 == 0)) && OTHER=$((OTHER + 1)); done
check "subject: another person's report holds only theirs ($OTHER)" eq "$(jq '.deliveries | length' <<<"$other")" $OTHER
check "subject: no svb deliveries for the other person" eq "$(jq '[.deliveries[] | select(.subscriber == "svb-kinderbijslag")] | length' <<<"$other")" 0
check "subject: bad BSN refused" bash -c "! '$KB' audit subject --topic '$AUDIT' --bsn 12 --subject-key-file '$WORK/subject.key' 2>/dev/null"
# 5b. Clock skew between routers: one audit partition holds the chains of
#     several routers, each stamping with its own clock. A record stamped 5
#     minutes ahead (a router whose clock runs fast) precedes, in the same
#     audit partition, the fixture person's record from a router with the
#     right time. The report up to a minute after that record must hold it:
#     it used to stop the partition at the first record stamped over 60 s
#     past --to, and said 0 deliveries.
SKEW=$(T audit-skew)
AT=$(( $(date +%s) * 1000 ))
check "skew: trail written" "$TOOL" skew --topic "$SKEW" --input "$IN" --subject-key "$WORK/subject.key" --bsn $BSN --at-ms $AT --ahead-ms 300000
"$KB" audit subject --topic "$SKEW" --bsn $BSN --subject-key-file "$WORK/subject.key" --to $((AT + 60000)) >"$WORK/subject-skew.txt"
check "subject --to: the record after one stamped 5 min ahead is reported" grep -q "^1 deliveries of 1 events about this subject" "$WORK/subject-skew.txt"
"$KB" audit subject --topic "$SKEW" --bsn $BSN --subject-key-file "$WORK/subject.key" --from $((AT - 1000)) --to $((AT + 1000)) >"$WORK/subject-skew-from.txt"
check "subject --from --to: the same with a start" grep -q "^1 deliveries of 1 events about this subject" "$WORK/subject-skew-from.txt"
"$KB" audit subject --topic "$SKEW" --bsn 999996204 --subject-key-file "$WORK/subject.key" --to $((AT + 60000)) >"$WORK/subject-skew-other.txt"
check "subject --to: the record stamped after --to is left out" grep -q "^0 deliveries of 0 events about this subject" "$WORK/subject-skew-other.txt"
"$KB" audit subject --topic "$SKEW" --bsn 999996204 --subject-key-file "$WORK/subject.key" --from $((AT + 240000)) >"$WORK/subject-skew-other-from.txt"
check "subject --from: the record stamped ahead is in range of a later --from" grep -q "^1 deliveries of 1 events about this subject" "$WORK/subject-skew-other-from.txt"
"$KB" audit export --topic "$SKEW" --format ldv --to $((AT + 60000)) >"$WORK/ldv-skew.jsonl" 2>/dev/null
check "export --to: the record after one stamped 5 min ahead, and only it" \
  eq "$(jq -r '.attributes["dpl.core.processing_activity_id"]' "$WORK/ldv-skew.jsonl")" \
  "urn:ketenbus:purpose:akw-uitnodiging"

# 6. Export in the shape of the Logboek Dataverwerkingen standard: one line
#    per record here (each has at most one recipient).
"$KB" audit export --topic "$AUDIT" --format ldv >"$WORK/ldv.jsonl" 2>/dev/null
check "export: $N lines" eq "$(wc -l <"$WORK/ldv.jsonl")" $N
check "export: valid JSON with trace/span ids" eq "$(jq -r 'select((.trace_id|length)==32 and (.span_id|length)==16) | 1' "$WORK/ldv.jsonl" | wc -l)" $N
check "export: processing activity of the fixture deliveries" eq "$(jq -r 'select(.attributes["dpl.core.processing_activity_id"] == "urn:ketenbus:purpose:akw-uitnodiging") | 1' "$WORK/ldv.jsonl" | wc -l)" $EXPECT
check "export: data subject id is the pseudonym" eq "$(jq -r '.attributes["dpl.core.data_subject_id"] | length' "$WORK/ldv.jsonl" | sort -u)" 32
# The trail does not record of which identifier (BSN, A-nummer, object) a
# pseudonym was made: the type says a keyed hash and no more (it said BSN).
check "export: data subject id type is the neutral pseudonym type" \
  eq "$(jq -r '.attributes["dpl.core.data_subject_id_type"]' "$WORK/ldv.jsonl" | sort -u)" \
  "urn:ketenbus:pseudonym:hmac-sha256"

# 7. Retention: the first 3 events of partition 0 expire -> verify says so.
"$TOOL" delete-records --topic "$IN" --partition 0 --before 3
"$KB" audit verify --topic "$AUDIT" --public-key "$WORK/audit.pub" >"$WORK/verify-retention.out" 2>&1 && vrc=0 || vrc=$?
check "retention: chain still verifies" eq "$vrc" 0
check "retention: 3 records refer to expired events" grep -q "RETENTION chain $IN/0: 3 records refer to events no longer in $IN \[0\]" "$WORK/verify-retention.out"

finish
