#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# gba_egress_crash.sh - ketenbus-gba egress dies between the durable
# delivery of a rendered LO3 message and the commit of its offset
# (KETENBUS_FAULT=crash-after-deliver:2: _exit(137), as a kill -9 leaves
# it), once writing into a spool out/ folder and once pushing over TCP to a
# legacy listener (a second ketenbus-gba, as in gba_egress.sh). A restart
# in the same consumer group renders the uncommitted event again. In out/
# that rewrites the same file with the same bytes; over TCP the listener
# gets that frame twice, and since its event ids derive from a frame's
# bytes, the repeat carries the id it had. Nothing is lost, and the one
# duplicate is recognisable as such.
source "$(dirname "$0")/lib.sh"

gba_lo3_routed it-egress-crash

# The crashed consumer keeps its partitions until its session times out.
# The spool run keeps librdkafka's default session (45 s) and a short
# --idle-exit: the restart's idle clock must not run before the partitions
# are its own (it did: the restart exited 0 having rendered nothing). The
# TCP run takes a short session, so the partitions move within seconds.
EGRESS=(egress --subject-key-file "$WORK/subject.key" --idle-exit 5000)
SHORT=(-X session.timeout.ms=6000)
FAULT=crash-after-deliver:2

# rendered LOG [FIELD]: the event_id (or type) of each "lo3 rendered" line of WORK/LOG.log
rendered() {
  sed -n "s/.*msg=\"lo3 rendered\" event_id=\([^ ]*\) type=\([^ ]*\) .*/\\${2:-1}/p" \
    "$WORK/$1.log"
}

# 1. Into a spool folder.
OUT=$WORK/afnemer/out
rc=0
KETENBUS_FAULT=$FAULT "$BIN/ketenbus-gba" "${EGRESS[@]}" --spool "$WORK/afnemer" \
  --group "$(T egress-spool)" >>"$WORK/spool-crash.log" 2>&1 || rc=$?
check "spool: egress died at the injected fault (exit 137)" eq "$rc" 137
check "spool: it said so, before the commit" \
  grep -q 'msg="fault injection: exiting before committing the offset"' "$WORK/spool-crash.log"
check "spool: two files in out/ at the crash, nothing else" \
  eq "$(ls -A "$OUT" | grep -c '\.lo3$') $(ls -A "$OUT" | wc -l)" "2 2"
first=$(rendered spool-crash | sed -n 1p)
second=$(rendered spool-crash | sed -n 2p)
check "spool: the 2nd delivered event is the last file written" test -s "$OUT/$second.lo3"
(cd "$OUT" && sha256sum -- *.lo3) >"$WORK/at-crash.sha256"

rc=0
"$BIN/ketenbus-gba" "${EGRESS[@]}" --spool "$WORK/afnemer" --group "$(T egress-spool)" \
  >>"$WORK/spool-restart.log" 2>&1 || rc=$?
check "spool: restarted egress ran to its idle exit" eq "$rc" 0
check "spool: the restart rendered the uncommitted event again" \
  grep -q "msg=\"lo3 rendered\" event_id=$second " "$WORK/spool-restart.log"
check "spool: and not the committed one" \
  absent grep -q "msg=\"lo3 rendered\" event_id=$first " "$WORK/spool-restart.log"
check "spool: the restart rendered two (the 2nd again, and the 3rd)" \
  eq "$(rendered spool-restart | wc -l)" 2
check "spool: three files in out/, nothing else" \
  eq "$(ls -A "$OUT" | grep -c '\.lo3$') $(ls -A "$OUT" | wc -l)" "3 3"
check "spool: the files the crash left, the rewritten 2nd too, byte for byte the same" \
  bash -c "cd '$OUT' && sha256sum --quiet -c '$WORK/at-crash.sha256'"
kinds=$(for f in "$OUT"/*.lo3; do head -c 12 "$f" | tail -c 4; echo; done | sort | tr '\n' ' ')
check "spool: one Ag01 and two Gv01" eq "$kinds" "Ag01 Gv01 Gv01 "
ok=0
for f in "$OUT"/*.lo3; do "$BIN/ketenbus-gba" decode "$f" >/dev/null && ok=$((ok + 1)); done
check "spool: each one parses as LO3" eq "$ok" 3
check "spool: the stray message quarantined once" quarantined_once "$WORK/afnemer"

# 2. Over TCP to a legacy listener (its own topic prefix).
LEGACY_PREFIX=$KETENBUS_TOPIC_PREFIX-afnemer
KETENBUS_TOPIC_PREFIX=$LEGACY_PREFIX start legacy "$BIN/ketenbus-gba" ingest \
  --spool "$WORK/legacy" --subject-key-file "$WORK/subject.key" --listen 127.0.0.1:0
port_of() { sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/legacy.log" | tail -n 1; }
check "tcp: legacy listener up" wait_for 60 bash -c "grep -q '^listening' '$WORK/legacy.log'"
# frames: the SHA-256 of each frame the listener answered 'A', in order
frames() {
  sed -n 's/.*msg="frame acknowledged" peer=[^ ]* sha256=\([0-9a-f]*\)$/\1/p' "$WORK/legacy.log"
}
TCP=(--spool "$WORK/afnemer2" --group "$(T egress-tcp)" --connect "127.0.0.1:$(port_of)")

rc=0
KETENBUS_FAULT=$FAULT "$BIN/ketenbus-gba" "${EGRESS[@]}" "${SHORT[@]}" "${TCP[@]}" \
  >>"$WORK/tcp-crash.log" 2>&1 || rc=$?
check "tcp: egress died at the injected fault (exit 137)" eq "$rc" 137
check "tcp: two frames answered 'A' at the crash" eq "$(frames | wc -l)" 2
crashed=$(frames | tail -n 1)
crashed_type=$(rendered tcp-crash 2 | tail -n 1)

rc=0
"$BIN/ketenbus-gba" "${EGRESS[@]}" "${SHORT[@]}" "${TCP[@]}" >>"$WORK/tcp-restart.log" 2>&1 || rc=$?
check "tcp: restarted egress ran to its idle exit" eq "$rc" 0
check "tcp: four frames answered, three different ones" \
  eq "$(frames | wc -l) $(frames | sort -u | wc -l)" "4 3"
check "tcp: the frame of the crash received twice" eq "$(frames | grep -cx "$crashed")" 2
check "tcp: the listener archived three frames (the repeat on the same name)" \
  eq "$(ls "$WORK/legacy/done" | grep -c '^tcp-')" 3
check "tcp: egress wrote nothing to its own out/" eq "$(ls -A "$WORK/afnemer2/out" | wc -l)" 0
check "tcp: the stray message quarantined once" quarantined_once "$WORK/afnemer2"
# The Ag01 yields no event at the listener, each Gv01 one: the repeat adds a
# message to its in.gba only when the frame of the crash was a Gv01.
expected=2
[[ $crashed_type == nl.brp.persoon-geboren ]] || expected=3
check "tcp: the listener's in.gba holds $expected events" \
  wait_for 30 count_is "$LEGACY_PREFIX.in.gba" "$expected"
ids=$(header_values "$LEGACY_PREFIX.in.gba" ce_id | sort -u | wc -l)
check "tcp: two distinct event ids there (a repeat keeps its id)" eq "$ids" 2
finish
