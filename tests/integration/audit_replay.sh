#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# audit_replay.sh - `ketenbus replay` on a real broker: the router delivers
# 30 synthetic births to two subscribers with a signed trail; a replay to
# one of them re-delivers exactly the 30 recorded events, byte for byte as
# routed (projection and pseudonyms), with a new ce_id, the original id and
# the replay id in headers, and 30 REPLAYED records in the trail that still
# verifies; a subject filter replays one person's events only; a changed
# field list is refused, and so is every event the subscription as it is
# now no longer covers (types, filter, validity, follow list); a byte altered in the broker's own log segment of
# the input topic is caught by the recorded SHA-256 and refused, by offset.
source "$(dirname "$0")/lib.sh"

KB=$BIN/ketenbus
N=30
"$KB" audit keygen --private "$WORK/audit.key" --public "$WORK/audit.pub" >/dev/null
SUBS=$WORK/subs
mkdir -p "$SUBS"
cat >"$SUBS/svb.yaml" <<YAML
subscriptions:
  - name: svb-kinderbijslag
    purpose: {id: akw-uitnodiging, legal_basis: "Algemene Kinderbijslagwet"}
    types: [nl.brp.persoon-geboren]
YAML
cat >"$SUBS/cbs.yaml" <<YAML
subscriptions:
  - name: cbs-geboorten
    purpose: {id: cbs-statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.geboortedatum, kind.geslacht, inschrijving.gemeente]
YAML
cat >"$SUBS/pseudo.yaml" <<YAML
subscriptions:
  - name: pseudo
    purpose: {id: onderzoek, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.bsn, kind.geboortedatum]
    pseudonymise: [kind.bsn]
YAML
start router "$KB" route --subscriptions "$SUBS" --instance replay-it \
  --subject-key-file "$WORK/subject.key" --audit-signing-key "$WORK/audit.key" \
  --checkpoint-every 10 --checkpoint-ms 1000
"$KB" gen --count $N --seed 11 --subject-key-file "$WORK/subject.key" >"$WORK/gen.log" 2>&1
OUT=$(T out.cbs-geboorten)
check "router delivered $N to cbs" wait_for 90 count_is "$OUT" $N
check "router delivered $N to svb" wait_for 30 count_is "$(T out.svb-kinderbijslag)" $N
check "router delivered $N to pseudo" wait_for 30 count_is "$(T out.pseudo)" $N
sleep 2

# Values by event id, before the replay (id<TAB>sha256 of the value).
values() { # values TOPIC HEADER: "<HEADER value> <sha256 of value>" per message
  kcat -C -b "$KB_BOOTSTRAP" -t "$1" -e -q -X isolation.level=read_committed \
    -f '%h\t%s\n' 2>/dev/null | python3 -c '
import sys, hashlib
want = sys.argv[1]
for line in sys.stdin.buffer:
    hdrs, _, val = line.rstrip(b"\n").partition(b"\t")
    h = dict(kv.split(b"=", 1) for kv in hdrs.split(b",") if b"=" in kv)
    if want.encode() in h:
        print(h[want.encode()].decode(), hashlib.sha256(val).hexdigest())
' "$2" | sort
}
values "$OUT" ce_id >"$WORK/orig.txt"
check "$N originals read" eq "$(wc -l <"$WORK/orig.txt")" $N

# 1. Replay to cbs: exactly the recorded events, as routed.
REPLAY=("$KB" replay --subscriptions "$SUBS" --subject-key-file "$WORK/subject.key"
        --audit-signing-key "$WORK/audit.key" --operator "it-operator" --no-progress)
"${REPLAY[@]}" --subscriber cbs-geboorten --reason "herlevering na storing bij CBS" \
  --rate 200 >"$WORK/replay1.out" 2>"$WORK/replay1.err" && rc=0 || rc=$?
check "replay exits 0" eq "$rc" 0
check "replay planned and replayed $N, refused 0" \
  grep -q "planned $N, replayed $N, refused 0" "$WORK/replay1.out"
check "cbs topic now holds $((2 * N))" wait_for 30 count_is "$OUT" $((2 * N))
values "$OUT" kb_original_event_id >"$WORK/replayed.txt"
check "every replayed copy names its original, byte-identical value" \
  diff "$WORK/orig.txt" "$WORK/replayed.txt"
rid=$(sed -n 's/^replay \([0-9a-f-]*\) to .*/\1/p' "$WORK/replay1.out")
check "replay id printed" test -n "$rid"
check "every copy carries kb_replay_id=$rid" \
  eq "$(header_values "$OUT" kb_replay_id | grep -c "^$rid\$")" $N
new_ids=$(header_values "$OUT" ce_id | sort -u | wc -l)
check "replayed copies have new ce_ids ($((2 * N)) distinct)" eq "$new_ids" $((2 * N))
check "svb untouched" count_is "$(T out.svb-kinderbijslag)" $N
check "no test BSN in the replay's output or log" \
  bash -c "! grep -hq 9999 '$WORK/replay1.out' '$WORK/replay1.err'"

# 2. The trail: 30 REPLAYED records naming who and why; still verifies.
sleep 1
"$KB" audit verify --public-key "$WORK/audit.pub" >"$WORK/verify.txt" 2>&1 && rc=0 || rc=$?
check "audit verify after the replay: exit 0" eq "$rc" 0
check "the replay chain is verified" grep -q "chain $(T replay)/0: seq 0..$((N - 1)), $N records" "$WORK/verify.txt"
"$KB" audit export --format ldv >"$WORK/ldv.jsonl" 2>/dev/null
check "trail: $N replayed records" eq "$(grep -c '"ketenbus.outcome": *"replayed"' "$WORK/ldv.jsonl")" $N

# 3. One person's events only (the gen log names no BSN; take the subject
#    pseudonym of one original from its header).
subj=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -c 1 -f '%h\n' | tr ',' '\n' | sed -n 's/^ce_subject=//p')
check "an input subject pseudonym" test -n "$subj"
"${REPLAY[@]}" --subscriber svb-kinderbijslag --subject "$subj" --reason "verzoek betrokkene" \
  >"$WORK/replay2.out" 2>&1 && rc=0 || rc=$?
check "subject replay: exactly 1 planned and replayed" grep -q "planned 1, replayed 1, refused 0" "$WORK/replay2.out"
check "svb got one more" wait_for 30 count_is "$(T out.svb-kinderbijslag)" $((N + 1))
# A slow --rate commits each copy before its pause: a transaction left open
# through a pause longer than transaction.timeout.ms is aborted by the
# broker (here 5 s against a 25 s pause; the broker reaps within 10 s more).
"${REPLAY[@]}" --subscriber svb-kinderbijslag --subject "$subj" --reason "langzaam" \
  --rate 0.04 -X transaction.timeout.ms=5000 >"$WORK/replay-slow.out" 2>&1 && rc=0 || rc=$?
check "slow rate, short transaction timeout: exit 0" eq "$rc" 0
check "  ... 1 replayed" grep -q "planned 1, replayed 1, refused 0" "$WORK/replay-slow.out"
check "  ... svb got it" wait_for 30 count_is "$(T out.svb-kinderbijslag)" $((N + 2))
# A person by BSN and A-nummer (GBA keys most events by the A-nummer): both
# are searched and named, never echoed; fictitious numbers, nothing planned.
"${REPLAY[@]}" --subscriber svb-kinderbijslag --bsn 999995303 --anummer 7194601014 \
  --reason "verzoek betrokkene" --dry-run >"$WORK/replay-ids.out" 2>"$WORK/replay-ids.err" && rc=0 || rc=$?
check "replay --bsn --anummer: exit 0" eq "$rc" 0
check "  ... searched by both" grep -q "events keyed by the BSN and the A-nummer" "$WORK/replay-ids.err"
check "  ... numbers not echoed" bash -c "! grep -hq -e 999995303 -e 7194601014 '$WORK/replay-ids.out' '$WORK/replay-ids.err'"
check "replay --anummer must be 10 digits" bash -c "! ${REPLAY[*]} --subscriber svb-kinderbijslag --anummer 12 --reason x --dry-run 2>/dev/null"

# 4. A changed field list is refused (never more or other fields than given).
sed -i 's/fields: \[kind.geboortedatum, kind.geslacht, inschrijving.gemeente\]/fields: [kind.geboortedatum, kind.geslacht, inschrijving.gemeente, kind.bsn]/' "$SUBS/cbs.yaml"
"${REPLAY[@]}" --subscriber cbs-geboorten --reason "test" --dry-run >"$WORK/replay3.out" 2>&1 && rc=0 || rc=$?
check "changed fields: exit 1" eq "$rc" 1
check "changed fields: all $N refused as fields-changed" grep -q "refused $N (altered 0, gone 0, invalid 0, fields-changed $N, not-entitled 0)" "$WORK/replay3.out"
sed -i 's/, kind.bsn\]/]/' "$SUBS/cbs.yaml"
# ... and so is a pseudonymisation taken away: the trail records which fields
# went out as pseudonyms, so no copy is rebuilt with the BSN in the clear.
"${REPLAY[@]}" --subscriber pseudo --reason "test" --dry-run >"$WORK/replay5.out" 2>&1 && rc=0 || rc=$?
check "pseudonymised subscription unchanged: all $N replayable" \
  grep -q "planned $N, replayed $N, refused 0" "$WORK/replay5.out"
sed -i '/pseudonymise:/d' "$SUBS/pseudo.yaml"
"${REPLAY[@]}" --subscriber pseudo --reason "test" --dry-run >"$WORK/replay6.out" 2>&1 && rc=0 || rc=$?
check "pseudonymise removed: exit 1" eq "$rc" 1
check "pseudonymise removed: all $N refused as fields-changed" \
  grep -q "refused $N (altered 0, gone 0, invalid 0, fields-changed $N, not-entitled 0)" "$WORK/replay6.out"
rm "$SUBS/pseudo.yaml"

# 4b. Entitlement as it is now: a replay is a new delivery, so the
#     subscription of today must still cover each event, now.
not_entitled() { # not_entitled NAME EXPECT_REPLAYED: dry run of cbs; exit 1 and the rest refused
  "${REPLAY[@]}" --subscriber cbs-geboorten --reason "test" --dry-run >"$WORK/ent-$1.out" 2>&1 \
    && rc=0 || rc=$?
  check "$1: exit 1" eq "$rc" 1
  check "$1: $2 replayable, $((N - $2)) refused as not-entitled" grep -q \
    "planned $N, replayed $2, refused $((N - $2)) (altered 0, gone 0, invalid 0, fields-changed 0, not-entitled $((N - $2)))" \
    "$WORK/ent-$1.out"
}
cp "$SUBS/cbs.yaml" "$WORK/cbs.yaml.orig"
sed -i 's/types: \[nl.brp.persoon-geboren\]/types: [nl.brp.persoon-overleden]/' "$SUBS/cbs.yaml"
not_entitled "type no longer subscribed" 0
cp "$WORK/cbs.yaml.orig" "$SUBS/cbs.yaml"
echo "    valid_until: 2020-01-01" >>"$SUBS/cbs.yaml"
not_entitled "validity ended" 0
cp "$WORK/cbs.yaml.orig" "$SUBS/cbs.yaml"
echo "    valid_from: 2999-01-01" >>"$SUBS/cbs.yaml"
not_entitled "validity not begun" 0
cp "$WORK/cbs.yaml.orig" "$SUBS/cbs.yaml"
echo "    filter: {exact: {subject: \"$subj\"}}" >>"$SUBS/cbs.yaml"
not_entitled "filter narrowed to one subject" 1
# grep -m1, not "| head -1": under pipefail, grep killed by SIGPIPE once head
# has its line ends the script (the output is several KB)
grep -m1 "refused not-entitled" "$WORK/ent-filter narrowed to one subject.out" >"$WORK/ent-line"
check "  ... each refusal names why" grep -q "does not select this event" "$WORK/ent-line"
# Follow lists from a compacted topic, read by the replay as by the router:
# the one person (every BSN in that event that passes the 11-proef, so the
# child's is among them),
# followed from 2020 on, then only until a moment after the events' time.
# The reader takes all of kcat's output (no early break): under pipefail a
# kcat killed by SIGPIPE would end the script.
kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -f '%h\t%s\n' 2>/dev/null | python3 -c '
import re, sys
done = False
for line in sys.stdin.buffer:
    if not done and ("ce_subject=" + sys.argv[1]).encode() in line.split(b"\t", 1)[0]:
        found = {m.decode() for m in re.findall(rb"(?<![0-9])9999[0-9]{5}(?![0-9])", line)}
        bsn = [b for b in found if sum((9 - i) * int(b[i]) for i in range(8)) % 11 == int(b[8])]
        print("\n".join(sorted(bsn)))
        done = True
' "$subj" >"$WORK/one-person"
check "the person's BSNs found in the input" test -s "$WORK/one-person"
sleep 1
until_now=$(date -u +%Y-%m-%dT%H:%M:%SZ) # after every event's ce_time, before the replay
while read -r b; do
  "$KB" sub follow --topic replay-one --bsn "$b" --from 2020-01-01 \
    --subject-key-file "$WORK/subject.key" >/dev/null 2>&1
  "$KB" sub follow --topic replay-ended --bsn "$b" --from 2020-01-01 --until "$until_now" \
    --subject-key-file "$WORK/subject.key" >/dev/null 2>&1
done <"$WORK/one-person"
cp "$WORK/cbs.yaml.orig" "$SUBS/cbs.yaml"
echo "    follow: {topic: replay-one}" >>"$SUBS/cbs.yaml"
not_entitled "follow topic with one person" 1
cp "$WORK/cbs.yaml.orig" "$SUBS/cbs.yaml"
echo "    follow: {topic: replay-ended}" >>"$SUBS/cbs.yaml"
not_entitled "follow ended since" 0
check "  ... the person's event named as no longer followed" \
  grep -q "not-entitled.*no longer follows this subject" "$WORK/ent-follow ended since.out"
cp "$WORK/cbs.yaml.orig" "$SUBS/cbs.yaml"
"${REPLAY[@]}" --subscriber cbs-geboorten --reason "test" --dry-run >"$WORK/ent-back.out" 2>&1 \
  && rc=0 || rc=$?
check "subscription restored: all $N replayable again" \
  grep -q "planned $N, replayed $N, refused 0" "$WORK/ent-back.out"

# 5. Alter one byte of one event's value in the broker's log segment (as an
#    attacker with disk access would): the replay refuses exactly that one.
victim_part=0
victim_off=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -p $victim_part -o 3 -c 1 -e -q -f '%o')
kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -p $victim_part -o "$victim_off" -c 1 -e -q -f '%s' >"$WORK/victim.bin"
seg=$(ls "$KB_KAFKA_STATE"/data/"$(T in.gba)-$victim_part"/*.log | head -1)
check "found the input partition's log segment" test -f "$seg"
python3 - "$seg" "$WORK/victim.bin" <<'PY'
import sys
seg, victim = sys.argv[1], open(sys.argv[2], "rb").read()
data = open(seg, "rb").read()
mid = victim[len(victim) // 2 : len(victim) // 2 + 24]
at = data.find(mid)
assert at >= 0 and data.find(mid, at + 1) < 0, "value not found once in the segment"
with open(seg, "r+b") as f:
    f.seek(at + 5)
    b = f.read(1)
    f.seek(at + 5)
    f.write(bytes([b[0] ^ 0x01]))
PY
check "segment altered" test $? -eq 0
"${REPLAY[@]}" --subscriber cbs-geboorten --reason "test" --dry-run >"$WORK/replay4.out" 2>&1 && rc=0 || rc=$?
check "altered event: exit 1" eq "$rc" 1
check "altered event: refused 1, the rest replayable" grep -q "planned $N, replayed $((N - 1)), refused 1 (altered 1," "$WORK/replay4.out"
check "altered event named by its input position" grep -q "refused altered $(T in.gba)/$victim_part@$victim_off " "$WORK/replay4.out"
check "dry run delivered nothing" count_is "$OUT" $((2 * N))
finish
