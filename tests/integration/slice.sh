#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# slice.sh - the birth chain on a real Kafka broker, every role its own
# process: ketenbus-gba (spool) -> kb.in.gba -> ketenbus route ->
# kb.out.svb-kinderbijslag -> ketenbus-svb -> AKW01 record. Also proves:
# the adapter acknowledges only after Kafka did and a crash in between
# yields no duplicate for the subscriber; no personal data in keys or
# headers; malformed input lands in quarantine and the DLQ with a reason;
# a router killed with SIGKILL resumes without duplicating.
source "$(dirname "$0")/lib.sh"

svb_subscription
GBA=(ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key")
mkdir -p "$WORK/gba/in"

start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance it-a --subject-key-file "$WORK/subject.key"
ROUTER=$LAST_PID
start svb "$BIN/ketenbus-svb" egress --spool "$WORK/svb" --subject-key-file "$WORK/subject.key"

# 1. The adapter dies after Kafka acknowledged the Lg01's event but before
#    it acknowledged the sender (moved the file).
cp "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/in/.001-lg01.lo3"
mv "$WORK/gba/in/.001-lg01.lo3" "$WORK/gba/in/001-lg01.lo3"
set +e
KETENBUS_FAULT=crash-after-ack "$BIN/ketenbus-gba" "${GBA[@]}" --once >>"$WORK/gba-crash.log" 2>&1
crash_rc=$?
set -e
check "adapter died at the injected fault (exit 137)" eq "$crash_rc" 137
check "unacknowledged file is still in in/" test -f "$WORK/gba/in/001-lg01.lo3"
check "kb.in.gba holds the event once so far" eq "$(count "$(T in.gba)")" 1

# 2. Restart: the file is read again, its event produced again (same id).
start gba "$BIN/ketenbus-gba" "${GBA[@]}"
check "file moved to done/ after the restart" wait_for 60 test -f "$WORK/gba/done/001-lg01.lo3"
check "kb.in.gba now holds the duplicate too" wait_for 30 count_is "$(T in.gba)" 2
in_ids=$(header_values "$(T in.gba)" ce_id | sort -u | wc -l)
check "both copies carry the same event id" eq "$in_ids" 1

# 3. The mother's Gv01 completes the join.
cp "$FIX/gv01-moeder-kind-sophie.lo3" "$WORK/gba/in/.002-gv01.lo3"
mv "$WORK/gba/in/.002-gv01.lo3" "$WORK/gba/in/002-gv01.lo3"
check "AKW01 invitation written" wait_for 150 bash -c "ls $WORK/svb/out/*.akw01 >/dev/null 2>&1"
rec=$(cat "$WORK"/svb/out/*.akw01 2>/dev/null | head -n 1 || true)
check "record is 160 bytes" eq "${#rec}" 160
check "recordtype" eq "${rec:0:5}" AKW01
check "datum aanmaak is today" eq "${rec:17:8}" "$(date +%Y%m%d)"
check "BSN ouder (mother)" eq "${rec:25:9}" 999996204
check "BSN kind" eq "${rec:34:9}" 999995303
check "geboortedatum kind" eq "${rec:43:8}" 20240315
check "gemeente kind" eq "${rec:51:4}" 0344
check "kanaal" eq "${rec:55:1}" D
# Three months after the record's own creation date, clamped to the last day of
# the month (GNU date would roll 29 November over into 1 March).
plus3=$(python3 -c 'import calendar,sys; d=sys.argv[1]; y,m,dd=int(d[:4]),int(d[4:6])+3,int(d[6:]); y,m=y+(m-1)//12,(m-1)%12+1; print("%04d%02d%02d"%(y,m,min(dd,calendar.monthrange(y,m)[1])))' "${rec:17:8}")
check "uiterste reactiedatum = datum aanmaak + 3 months" eq "${rec:56:8}" "$plus3"
check "bron A-nummer (mother's PL)" eq "${rec:64:12}" 005281301274
check "bron berichttype" eq "${rec:76:4}" Gv01
check "verwerking: uitnodiging (first child)" eq "${rec:88:1}" U
check "born in NL: buitenland N, geboorteland 6030" eq "${rec:89:5}" N6030
check "BSN partner (father): one invitation for both parents" eq "${rec:96:9}" 999997105
check "naam geadresseerde" eq "$(echo "${rec:105:55}" | sed 's/ *$//')" "A.M. Bakker"
check "exactly one invitation" eq "$(ls "$WORK"/svb/out/*.akw01 | wc -l)" 1

# 4. Exactly once to the subscriber despite the duplicate input.
check "kb.out.svb-kinderbijslag holds 2 events" wait_for 30 count_is "$(T out.svb-kinderbijslag)" 2
out_ids=$(header_values "$(T out.svb-kinderbijslag)" ce_id | sort -u | wc -l)
check "the 2 subscriber events have distinct ids" eq "$out_ids" 2
check "router logged the dropped duplicate" grep -q 'msg="duplicate dropped"' "$WORK/router.log"

# 5. Malformed LO3: quarantine folder and topic, with the reason.
printf '00000000Lg01' > "$WORK/gba/in/.003-bad.lo3"
mv "$WORK/gba/in/.003-bad.lo3" "$WORK/gba/in/003-bad.lo3"
check "malformed file moved to quarantine/" wait_for 30 test -f "$WORK/gba/quarantine/003-bad.lo3"
check "quarantine reason written" grep -q offset "$WORK/gba/quarantine/003-bad.lo3.reason"
check "kb.quarantine.gba holds the raw bytes" wait_for 30 count_is "$(T quarantine.gba)" 1
check "quarantine message says why" bash -c "kcat -C -b $KB_BOOTSTRAP -t $(T quarantine.gba) -e -q -f '%h' | grep -q 'kb_rule=lo3-syntax'"

# 6. An event that is not an event: dead-lettered with context headers.
echo 'not an event' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k garbage
check "kb.dlq receives it" wait_for 60 count_is "$(T dlq)" 1
dlq_h=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq)" -e -q -X isolation.level=read_committed -f '%h' 2>/dev/null)
check "DLQ headers: stage, rule, origin" bash -c "[[ '$dlq_h' == *kb_stage=envelope* && '$dlq_h' == *kb_rule=cloudevents-headers* && '$dlq_h' == *kb_topic=$(T in.gba)* ]]"

# 7. kill -9 the router, restart it: nothing routed twice.
kill -9 "$ROUTER"
start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance it-a --subject-key-file "$WORK/subject.key"
check "restarted router resumes (partitions assigned)" wait_for 60 bash -c "[[ \$(grep -c 'partitions assigned' $WORK/router.log) -ge 2 ]]"
# Sentinels behind the old input: one new valid event, and a malformed
# message in every partition of kb.in.gba. Once each sentinel is committed
# downstream (read_committed), the restarted router has routed everything
# before it in its partition: an old event it routed again would be there.
OUT=$(T out.svb-kinderbijslag)
sentinel_before=$(header_values "$OUT" ce_id | sort)
"$BIN/ketenbus" gen --count 1 --seed 7 --subject-key-file "$WORK/subject.key" >"$WORK/gen-sentinel.log" 2>&1
check "sentinel event produced" grep -q 'produced=1 failed=0' "$WORK/gen-sentinel.log"
IN_PARTS=$(topic_config "$(T in.gba)" | sed -n 's/^partitions=\([0-9]*\) .*/\1/p')
check "kb.in.gba has partitions" test "${IN_PARTS:-0}" -ge 1
for ((p = 0; p < ${IN_PARTS:-0}; p++)); do
  echo "not an event either $p" | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -p "$p" -k "sentinel$p"
done
check "the $IN_PARTS malformed sentinels dead-lettered: 1 + $IN_PARTS dead letters" \
  wait_for 60 count_is "$(T dlq)" $((1 + IN_PARTS))
check "the new event delivered: 3 events for the subscriber" wait_for 60 count_is "$OUT" 3
header_values "$OUT" ce_id | sort >"$WORK/out-after.ids"
check "the subscriber holds the 2 old ids and the sentinel's, each once" \
  eq "$(uniq -c "$WORK/out-after.ids" | awk '$1 != 1' | wc -l):$(comm -23 <(echo "$sentinel_before") "$WORK/out-after.ids" | wc -l):$(comm -13 <(echo "$sentinel_before") "$WORK/out-after.ids" | wc -l)" \
  "0:0:1"
check "the dead letters: the first one and the $IN_PARTS sentinels, each once" \
  eq "$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T dlq)" -e -q -X isolation.level=read_committed -f '%k\n' 2>/dev/null | sort | tr '\n' ' ')" \
  "garbage $(for ((p = 0; p < IN_PARTS; p++)); do printf 'sentinel%d ' "$p"; done)"

# 8. No personal data in any key or header, on any topic. The payloads do
#    carry it (the control check), so the pattern would find it if leaked.
pii='999995303|999996204|999997105|7194601014|5281301274|3647901080|Sophie|Bakker|Dijk|Proefstraat|3512AB'
check "control: subscriber payloads do contain the test BSN" bash -c "kcat -C -b $KB_BOOTSTRAP -t $(T out.svb-kinderbijslag) -e -q -f '%s\n' | grep -aq 999995303"
for t in $(T in.gba) $(T out.svb-kinderbijslag) $(T quarantine.gba) $(T dlq); do
  kcat -C -b "$KB_BOOTSTRAP" -t "$t" -e -q -f 'key=%k headers=%h\n' >"$WORK/kh-$t.txt"
  check "keys/headers of $t were read" test -s "$WORK/kh-$t.txt"
  check "no personal data in keys/headers of $t" bash -c "! grep -Eq '$pii' $WORK/kh-$t.txt"
done
check "logs were written" test -s "$WORK/gba.log"
check "no personal data in any log line" bash -c "! grep -Eh '$pii' $WORK/*.log"

finish
