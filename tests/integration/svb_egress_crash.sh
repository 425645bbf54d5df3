#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# svb_egress_crash.sh - ketenbus-svb egress dies between the durable output
# of the event that completes an AKW01 join and the commit of its offset
# (KETENBUS_FAULT=crash-after-deliver:2: _exit(137), as a kill -9 leaves
# it). The child's birth comes first (delivery 1: SVB stores it and waits),
# then the mother's Gv01 (delivery 2: the join claims the kenmerk, writes
# out/<kenmerk>.akw01 and the child's done marker; then the crash). A
# restart in the same consumer group gets the Gv01 again and absorbs it as
# a child already invited: the invitation the crash left stays as it was
# (same name, same bytes, not even rewritten), no second one is written,
# and the committed birth is not handled again.
source "$(dirname "$0")/lib.sh"

svb_routed it-svb-crash
TOPIC=$(T out.svb-kinderbijslag)
SVB=$WORK/svb
OUT=$SVB/out
# The crashed consumer keeps its partitions until its session times out:
# both runs take a short one (the broker's minimum), so they move within
# seconds; the restart's --idle-exit only counts once they are its own.
EGRESS=(egress --spool "$SVB" --subject-key-file "$WORK/subject.key" --group "$(T svb-egress)"
  -X session.timeout.ms=6000)
FAULT=crash-after-deliver:2
FAULT_MSG='msg="fault injection: exiting before committing the offset"'

# id_of TYPE: the ce_id of the event of TYPE on the SVB topic
id_of() {
  kcat -C -b "$KB_BOOTSTRAP" -t "$TOPIC" -e -q -X isolation.level=read_committed -f '%h\n' \
    2>/dev/null | grep "ce_type=$1," | tr ',' '\n' | sed -n 's/^ce_id=//p'
}
# id_at PARTITION OFFSET: the ce_id of the message there
id_at() {
  kcat -C -b "$KB_BOOTSTRAP" -t "$TOPIC" -p "$1" -o "$2" -c 1 -e -q -f '%h\n' 2>/dev/null |
    tr ',' '\n' | sed -n 's/^ce_id=//p'
}
# only_akw01: "N M", N AKW01 files among the M entries of out/
only_akw01() { echo "$(ls -A "$OUT" | grep -c '\.akw01$') $(ls -A "$OUT" | wc -l)"; }
# akw01_ok FILE: one 160-byte AKW01 record and its newline (ketenbus-svb has
# no decoder): its kenmerk names the file, Sophie's the child, the mother
# addressed, the father as partner, the mother's Gv01 as source, a first
# child born in NL (U, N, 6030)
akw01_ok() {
  local r
  r=$(cat "$1")
  eq "$(wc -c <"$1") ${r:0:5} ${r:5:12}.akw01 ${r:34:9} ${r:25:9} ${r:96:9} ${r:64:16} ${r:88:6}" \
    "161 AKW01 $(basename "$1") 999995303 999996204 999997105 005281301274Gv01 UN6030"
}

# 1. The birth reaches SVB's topic; a message that is not an event beside it.
drop_lo3 "$FIX/lg01-geboorte-sophie.lo3" 001-lg01.lo3
check "the birth routed to SVB" wait_for 90 count_is "$TOPIC" 1
echo 'not an event' | kcat -P -b "$KB_BOOTSTRAP" -t "$TOPIC" -p 0 -k x

# 2. The egress with the fault stores the birth (delivery 1, committed) and
#    waits; the Gv01 then completes the join (delivery 2) and it dies. The
#    timeout bounds a run whose fault does not fire.
crash_run() {
  local rc=0
  KETENBUS_FAULT=$FAULT timeout 60 "$BIN/ketenbus-svb" "${EGRESS[@]}" || rc=$?
  echo "$rc" >"$WORK/crash.rc"
}
start crash crash_run
check "crash run: the birth stored, SVB waits for a parent's Gv01" \
  wait_for 60 bash -c "ls '$SVB'/state/geboren-*.json >/dev/null 2>&1"
check "crash run: the stray message quarantined (and committed)" \
  wait_for 30 grep -q 'msg="event quarantined"' "$WORK/crash.log"
check "crash run: no invitation before the Gv01" eq "$(only_akw01)" "0 0"
drop_lo3 "$FIX/gv01-moeder-kind-sophie.lo3" 002-gv01.lo3
check "crash run: it ended" wait_for 90 test -s "$WORK/crash.rc"
check "crash run: egress died at the injected fault (exit 137)" eq "$(cat "$WORK/crash.rc")" 137
fault_at=$(sed -n "s/.*$FAULT_MSG topic=[^ ]* partition=\([0-9]*\) offset=\([0-9]*\)$/\1 \2/p" \
  "$WORK/crash.log")
check "crash run: it said so, before the commit" test -n "$fault_at"
# (|| true: a failed look-up leaves the checks to say what is missing)
birth=$(id_of nl.brp.persoon-geboren) || true
gv01=$(id_of nl.brp.kind-toegevoegd) || true
check "SVB's topic: the birth, the stray message, the Gv01" \
  eq "$(count "$TOPIC") $(echo "$birth" | wc -w) $(echo "$gv01" | wc -w)" "3 1 1"
check "crash run: the event of the crash is the Gv01" \
  eq "$(id_at "${fault_at% *}" "${fault_at#* }")" "$gv01"
check "crash run: one AKW01 in out/ at the crash, nothing else" eq "$(only_akw01)" "1 1"
written=$(sed -n 's/.*msg="AKW01 written" kenmerk=[0-9]* file=out\/\([^ ]*\) .*/\1/p' \
  "$WORK/crash.log")
check "crash run: the join wrote it, once, under the name in the log" \
  eq "$(echo "$written" | wc -w) $written" "1 $(ls "$OUT")"
kenmerk=${written%.akw01}
(cd "$OUT" && sha256sum -- *.akw01) >"$WORK/at-crash.sha256" || true
out_inode=$(stat -c %i "$OUT/$written") || true
birth_inode=$(stat -c %i "$SVB"/state/geboren-*.json) || true

# 3. Restart in the same group.
rc=0
"$BIN/ketenbus-svb" "${EGRESS[@]}" --idle-exit 5000 >>"$WORK/restart.log" 2>&1 || rc=$?
check "restart: ran to its idle exit" eq "$rc" 0
check "restart: the uncommitted Gv01 again, absorbed as a child already invited" \
  eq "$(grep -c 'msg="child already invited; Gv01 absorbed"' "$WORK/restart.log") $(
    grep -c "msg=\"child already invited; Gv01 absorbed\" event_id=$gv01 " "$WORK/restart.log")" \
  "1 1"
check "restart: nor the committed stray message (nothing quarantined)" \
  absent grep -q 'msg="event quarantined"' "$WORK/restart.log"
check "restart: no AKW01 written" grep -q 'msg="adapter stopped" akw01_written=0$' \
  "$WORK/restart.log"
# The birth's state file is written anew (a new inode) whenever the birth is handled.
check "restart: not the committed birth (its state file is the one the crash left)" \
  eq "$(stat -c %i "$SVB"/state/geboren-*.json)" "$birth_inode"

# 4. What SVB's legacy side finds.
check "one AKW01 in out/, nothing else" eq "$(only_akw01)" "1 1"
check "the invitation the crash left, byte for byte the same" \
  bash -c "cd '$OUT' && sha256sum --quiet -c '$WORK/at-crash.sha256'"
check "not even rewritten (the same file)" eq "$(stat -c %i "$OUT/$written")" "$out_inode"
check "it is an AKW01 for Sophie, her mother and father" akw01_ok "$OUT/$written"
check "the child's done marker names its kenmerk" eq "$(cat "$SVB"/state/akw01-*.done)" "$kenmerk"
check "the kenmerk registry: one claim, that kenmerk, by the birth event" \
  eq "$(ls -A "$SVB/state/kenmerken") $(cat "$SVB/state/kenmerken/$kenmerk")" "$kenmerk $birth"
check "the stray message quarantined once" quarantined_once "$SVB"
finish
