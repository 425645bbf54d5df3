#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# route_rebuild_logstart.sh - a router's dedup window rebuilt after records
# of its input were deleted (retention, DeleteRecords) on a real broker.
# N events are routed and committed by router a, which stops; then every
# input partition loses the records below M (about half of it), so the
# window before the committed offset starts below the log start. Router b
# must come up, start each scan at the log start and rebuild the ids that
# remain: resending all N events, those whose originals are still in the
# log (offset >= M) are dropped as duplicates, those whose originals were
# deleted (offset < M) are delivered again (counted with read_committed).
# A rebuild that skipped a window starting below the log start would
# deliver the first kind again too, and rebuild 0 ids. (The router moves a
# window's start up to the log start it asks the broker for; if that query
# fails, the scan's auto.offset.reset=earliest does it. Either alone passes
# this test; without both, or with the window skipped, it fails.)
source "$(dirname "$0")/lib.sh"

N=${KB_LOGSTART_EVENTS:-60}
IN=$(T in.gba)
OUT=$(T out.alle)
cat >"$WORK/subs.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
YAML

route() { # route NAME: one router instance, its log in WORK
  start "router-$1" "$BIN/ketenbus" route --subscriptions "$WORK/subs.yaml" --instance "$1" \
    --subject-key-file "$WORK/subject.key" -X session.timeout.ms=6000
}
gen() { # gen COUNT START: the events of seed 7 from index START (same index, same id)
  "$BIN/ketenbus" gen --count "$1" --start "$2" --seed 7 \
    --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
}

# 1. N events routed and committed by router a, which then stops cleanly
#    (its transaction settles: the committed offsets are the partitions' ends).
check "generator produced N events" gen "$N" 0
route a; PID_A=$LAST_PID
check "router a: all N delivered" wait_for 60 count_is "$OUT" "$N"
kill "$PID_A"
rc=0; wait "$PID_A" 2>/dev/null || rc=$?
check "router a exited 0" eq "$rc" 0
check "router a stopped after routing N" grep -q "msg=\"router stopped\" consumed=$N " \
  "$WORK/router-a.log"

# 2. Where each event sits: "partition offset id", before anything is deleted.
kcat -C -b "$KB_BOOTSTRAP" -t "$IN" -e -q -f '%p %o ,%h\n' |
  sed -n 's/^\([0-9]*\) \([0-9]*\) .*,ce_id=\([^,]*\).*/\1 \2 \3/p' >"$WORK/in.pos"
check "input: N events located" eq "$(wc -l <"$WORK/in.pos")" "$N"

# 3. Delete the records below M = half of each partition (the test BSNs of
#    gen spread the keys over the 3 partitions; each needs 2 events for a
#    kept and a deleted half). test_audit's tool mode has DeleteRecords.
C=() M=() # events and first kept offset, per partition
for p in 0 1 2; do
  C[$p]=$(awk -v p="$p" '$1 == p' "$WORK/in.pos" | wc -l)
  M[$p]=$((C[$p] / 2))
done
check "every partition holds at least 2 events (${C[0]} ${C[1]} ${C[2]})" \
  test "${C[0]}" -ge 2 -a "${C[1]}" -ge 2 -a "${C[2]}" -ge 2
log_start() { # log_start P: offset of the first record left in partition P
  kcat -C -b "$KB_BOOTSTRAP" -t "$IN" -p "$1" -o beginning -c 1 -e -q -f '%o\n' 2>/dev/null
}
for p in 0 1 2; do
  check "partition $p: records below ${M[$p]} deleted" \
    "$BIN/test_audit" delete-records --topic "$IN" --partition "$p" --before "${M[$p]}"
  # The tool checks the partition's new log start too; a consumer confirms it.
  check "partition $p: log start is ${M[$p]}" eq "$(log_start "$p")" "${M[$p]}"
done
awk -v m0="${M[0]}" -v m1="${M[1]}" -v m2="${M[2]}" \
  'BEGIN { m[0] = m0; m[1] = m1; m[2] = m2 } $2 >= m[$1] { print $3 }' \
  "$WORK/in.pos" | sort >"$WORK/kept.ids"
awk -v m0="${M[0]}" -v m1="${M[1]}" -v m2="${M[2]}" \
  'BEGIN { m[0] = m0; m[1] = m1; m[2] = m2 } $2 < m[$1] { print $3 }' \
  "$WORK/in.pos" | sort >"$WORK/deleted.ids"
KEPT=$(wc -l <"$WORK/kept.ids")
DELETED=$(wc -l <"$WORK/deleted.ids")

# 4. Router b takes all 3 partitions: each window [committed - 100000,
#    committed) starts below the log start. It must come up and read the
#    window from the log start: exactly the kept ids, ending at the
#    committed offset (no "window not read", no "ends before" warning).
route b; PID_B=$LAST_PID
check "router b: partitions assigned count=3" \
  wait_for 60 grep -q 'msg="partitions assigned" count=3 seconds=' "$WORK/router-b.log"
check "router b is running" kill -0 "$PID_B"
for p in 0 1 2; do
  left=$((C[$p] - M[$p]))
  check "partition $p: window rebuilt to ${C[$p]} with the $left ids left" grep -Eq \
    "msg=\"dedup window rebuilt\" topic=$IN partition=$p from=[0-9]+ to=${C[$p]} ids=$left \
dead_lettered=0\$" "$WORK/router-b.log"
done
check "no window left unread or short" \
  bash -c "! grep -Eq 'window not read|window ends before' '$WORK/router-b.log'"

# 5. All N again (same ids, keys and so partitions), then one malformed
#    message into each partition behind them: once the 3 are in the dead
#    letter topic (read_committed), every resend before them has committed.
check "generator resent the N events" gen "$N" 0
for p in 0 1 2; do echo "sentinel $p" | kcat -P -b "$KB_BOOTSTRAP" -t "$IN" -p "$p" -k "s$p"; done
check "the 3 sentinels dead-lettered: the resends are settled" wait_for 60 count_is "$(T dlq)" 3
# (a) Kept originals are in the rebuilt windows: dropped as duplicates.
# (b) Deleted originals are delivered again. That is the window's meaning:
#     it holds ids of events still in the input log (the last
#     --dedup-window of them), and a record retention removed can no longer
#     tell any router its id; the resend is a new event to it, the same as
#     one resent after its original slid out of the window.
check "alle: N + the $DELETED resends whose originals were deleted" \
  eq "$(count "$OUT")" "$((N + DELETED))"
{ kcat -C -b "$KB_BOOTSTRAP" -t "$OUT" -e -q -X isolation.level=read_committed -f ',%h\n' ||
  true; } | sed -n 's/.*,ce_id=\([^,]*\).*/\1/p' | sort >"$WORK/out.ids"
check "alle: delivered twice = exactly the deleted originals" \
  cmp -s <(uniq -d "$WORK/out.ids") "$WORK/deleted.ids"
check "alle: every input id delivered" \
  cmp -s <(uniq "$WORK/out.ids") <(awk '{ print $3 }' "$WORK/in.pos" | sort)
sed -n 's/.*msg="duplicate dropped" event_id=\([^ ]*\) .*/\1/p' "$WORK/router-b.log" |
  sort >"$WORK/dup.ids"
check "router b dropped exactly the $KEPT kept originals as duplicates" \
  cmp -s "$WORK/dup.ids" "$WORK/kept.ids"
check "router b is still running" kill -0 "$PID_B"
kill "$PID_B"
rc=0; wait "$PID_B" 2>/dev/null || rc=$?
check "router b exited 0" eq "$rc" 0
check "router b stopped with duplicates=$KEPT" \
  grep -q "msg=\"router stopped\" consumed=$((N + 3)) .* duplicates=$KEPT " "$WORK/router-b.log"

finish
