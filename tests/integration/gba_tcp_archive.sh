#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# gba_tcp_archive.sh - the GBA adapter archives a TCP frame in done/ only
# once Kafka acknowledged its events: a frame answered N (not durable) leaves
# nothing in done/, a frame answered R (rejected) is in quarantine/ with its
# reason and not in done/, a frame answered A is in done/ under the name its
# events' ce_dataref gives, and a resent frame is archived once. Before, the
# frame was written to done/ before its events were produced and stayed
# there on N. Kafka refuses every produce here by a client setting: a
# transactional.id without a transaction ("Erroneous state"). Last, frames a
# crash left staged in done/ are finished at the next start even if their
# sender never resends: a good one reaches done/ and Kafka, a resend of an
# archived one leaves one copy, a damaged or bad one goes to quarantine/;
# also at a start without --listen.
source "$(dirname "$0")/lib.sh"

LG01=$FIX/lg01-geboorte-sophie.lo3
BAD=$FIX/events/gv01-bad-n.lo3
MULTI=$FIX/events/gv01-multi.lo3 # 3 events (naam-gewijzigd, persoon-verhuisd, pl-gewijzigd)
MOEDER=$FIX/gv01-moeder-kind-sophie.lo3
sha() { sha256sum "$1" | cut -c1-64; }
SP=$WORK/gba
GBA=(ingest --spool "$SP" --subject-key-file "$WORK/subject.key" --listen 127.0.0.1:0)

port_of() { sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/$1.log" | tail -n 1; }
has_port() { [[ -n "$(port_of "$1")" ]]; }
archived() { ls -A "$SP/$1" 2>/dev/null | grep -c "$2" || true; }

# 1. Kafka refuses: both frames answered N, nothing archived anywhere.
start refusing "$BIN/ketenbus-gba" "${GBA[@]}" -X transactional.id="$KETENBUS_TOPIC_PREFIX-refuse"
REFUSING=$LAST_PID
check "refusing adapter listens" wait_for 60 has_port refusing
"$BIN/ketenbus-gba" send --connect "127.0.0.1:$(port_of refusing)" "$LG01" "$BAD" \
  >"$WORK/send1.out" 2>>"$WORK/send1.log" || true
check "both frames answered N" eq "$(grep -c '^nack ' "$WORK/send1.out")" 2
check "done/ holds nothing (no archive, no staged copy)" eq "$(ls -A "$SP/done" | wc -l)" 0
check "quarantine/ holds nothing" eq "$(ls -A "$SP/quarantine" | wc -l)" 0
kill "$REFUSING"
wait "$REFUSING" 2>/dev/null || true

# 2. Kafka acknowledges: A and R, each archived where it belongs.
start gba "$BIN/ketenbus-gba" "${GBA[@]}" --metrics-addr 127.0.0.1:0
GBA_PID=$LAST_PID
check "adapter listens" wait_for 60 has_port gba
check "adapter serves metrics" wait_for 60 grep -q '^metrics_port=' "$WORK/gba.log"
"$BIN/ketenbus-gba" send --connect "127.0.0.1:$(port_of gba)" "$LG01" "$BAD" \
  >"$WORK/send2.out" 2>>"$WORK/send2.log" || true
check "good frame answered A" grep -q "^ack $LG01" "$WORK/send2.out"
check "bad frame answered R" grep -q "^reject $BAD" "$WORK/send2.out"
check "good frame in done/ with its bytes" cmp -s "$LG01" "$SP/done/tcp-$(sha "$LG01").lo3"
check "bad frame not in done/" eq "$(archived done "$(sha "$BAD")")" 0
check "bad frame in quarantine/" cmp -s "$BAD" "$SP/quarantine/tcp-$(sha "$BAD").lo3"
check "... with its reason" grep -q '^lo3-semantics: offset 54' \
  "$SP/quarantine/tcp-$(sha "$BAD").lo3.reason"
check "no staged copy left in done/" eq "$(archived done '\.staged$')" 0
check "the event is in kb.in.gba" wait_for 30 count_is "$(T in.gba)" 1
curl -sf "http://127.0.0.1:$(sed -n 's/^metrics_port=//p' "$WORK/gba.log" | head -n 1)/metrics" \
  >"$WORK/gba.prom" || true
check "the rejected frame counted once, under tcp" grep -q \
  'kb_adapter_messages_total{source="gba",transport="tcp",outcome="quarantined"} 1$' "$WORK/gba.prom"
check "... and not under spool" eval "! grep -q 'transport=\"spool\"' '$WORK/gba.prom'"
ref=$(header_values "$(T in.gba)" ce_dataref | head -n 1)
check "its ce_dataref names the file in done/" test -f "${ref#file://}"
check "... which holds the frame" cmp -s "$LG01" "${ref#file://}"

# 3. A resend of the acknowledged frame: archived once.
"$BIN/ketenbus-gba" send --connect "127.0.0.1:$(port_of gba)" "$LG01" \
  >"$WORK/send3.out" 2>>"$WORK/send3.log" || true
check "resent frame answered A" grep -q "^ack $LG01" "$WORK/send3.out"
check "done/ still holds one copy" eq "$(ls -A "$SP/done" | wc -l)" 1
check "kb.in.gba holds LG01's event twice (sent, resent)" wait_for 30 count_is "$(T in.gba)" 2
check "kb.quarantine.gba holds the bad frame once" wait_for 30 count_is "$(T quarantine.gba)" 1

# 4. What a crash leaves staged, made by hand with the adapter stopped: (a) a
#    frame never archived, (b) a resend of the archived LG01, (c) a file whose
#    bytes are not those its name's SHA-256 gives, (d) the bad frame. The next
#    start finishes each before it serves, without any sender resending.
kill "$GBA_PID"
wait "$GBA_PID" 2>/dev/null || true
staged() { echo "$SP/done/.tcp-$1.lo3.staged"; }
cp "$MULTI" "$(staged "$(sha "$MULTI")")"
cp "$LG01" "$(staged "$(sha "$LG01")")"
head -c 100 "$MOEDER" >"$WORK/damaged.lo3"
cp "$WORK/damaged.lo3" "$(staged "$(sha "$MOEDER")")"
cp "$BAD" "$(staged "$(sha "$BAD")")"
check "four staged frames left" eq "$(archived done '\.staged$')" 4

# 4a. Kafka refuses at that start: what needs no produce is finished ((b)
#     and (c)), the rest stays staged and nothing is published.
start refusing2 "$BIN/ketenbus-gba" "${GBA[@]}" -X transactional.id="$KETENBUS_TOPIC_PREFIX-refuse2"
REFUSING=$LAST_PID
check "refusing adapter finished what needs no Kafka, left the rest" wait_for 90 grep -q \
  'msg="staged frames recovered" found=4 done=1 quarantined=1 left=2' "$WORK/refusing2.log"
check "(a) and (d) still staged" eq "$(ls -A "$SP/done" | grep -c \
  -e "^\.tcp-$(sha "$MULTI")\.lo3\.staged$" -e "^\.tcp-$(sha "$BAD")\.lo3\.staged$")" 2
check "nothing more in kb.in.gba" eq "$(count "$(T in.gba)")" 2
kill "$REFUSING"
wait "$REFUSING" 2>/dev/null || true

# 4b. Kafka acknowledges: the rest is finished.
start gba2 "$BIN/ketenbus-gba" "${GBA[@]}"
check "restarted adapter listens" wait_for 60 has_port gba2
check "it recovered the other two before serving" wait_for 90 grep -q \
  'msg="staged frames recovered" found=2 done=1 quarantined=1 left=0' "$WORK/gba2.log"
check "no staged copy left in done/" eq "$(archived done '\.staged$')" 0
check "(a) in done/ with its bytes" cmp -s "$MULTI" "$SP/done/tcp-$(sha "$MULTI").lo3"
check "(a)'s 3 events reached kb.in.gba (2 + 3)" wait_for 30 count_is "$(T in.gba)" 5
check "... naming its file in done/" \
  eq "$(header_values "$(T in.gba)" ce_dataref | grep -c "/done/tcp-$(sha "$MULTI").lo3$")" 3
check "(b) done/ still holds one copy of LG01" eq "$(archived done "$(sha "$LG01")")" 1
check "... unchanged" cmp -s "$LG01" "$SP/done/tcp-$(sha "$LG01").lo3"
check "(c) not in done/" eq "$(archived done "$(sha "$MOEDER")")" 0
check "(c) in quarantine/ with its bytes" \
  cmp -s "$WORK/damaged.lo3" "$SP/quarantine/tcp-$(sha "$MOEDER").lo3"
check "... with its reason" grep -q '^damaged: the SHA-256 of the staged bytes' \
  "$SP/quarantine/tcp-$(sha "$MOEDER").lo3.reason"
check "(d) in quarantine/ beside its first copy" \
  cmp -s "$BAD" "$SP/quarantine/tcp-$(sha "$BAD").lo3.1"
check "... with its reason" grep -q '^lo3-semantics: offset 54' \
  "$SP/quarantine/tcp-$(sha "$BAD").lo3.1.reason"
check "only (d) went to kb.quarantine.gba again (1 + 1)" \
  wait_for 30 count_is "$(T quarantine.gba)" 2
check "done/ holds LG01 and (a), nothing else" eq "$(ls -A "$SP/done" | wc -l)" 2
check "kb.in.gba still holds 5: (b) was not produced again" eq "$(count "$(T in.gba)")" 5

# 5. A start without --listen (the spool only, --once) finishes a staged
#    frame too: otherwise the events a crash left in Kafka would name a file
#    that never reaches done/.
kill "$LAST_PID"
wait "$LAST_PID" 2>/dev/null || true
cp "$MOEDER" "$(staged "$(sha "$MOEDER")")"
"$BIN/ketenbus-gba" ingest --spool "$SP" --subject-key-file "$WORK/subject.key" --once \
  >"$WORK/once.log" 2>&1
check "spool-only start finished the staged frame" grep -q \
  'msg="staged frames recovered" found=1 done=1 quarantined=0 left=0' "$WORK/once.log"
check "... into done/ with its bytes" cmp -s "$MOEDER" "$SP/done/tcp-$(sha "$MOEDER").lo3"
check "no staged copy left" eq "$(archived done '\.staged$')" 0
moeder_events=$(header_values "$(T in.gba)" ce_dataref | grep -c "/done/tcp-$(sha "$MOEDER").lo3$" || true)
# gv01-moeder-kind-sophie yields exactly one event (gba_tcp.sh's EVENTS list)
check "its one event reached kb.in.gba, naming its file" eq "$moeder_events" 1
check "... and nothing else was produced" eq "$(count "$(T in.gba)")" 6

# 6. done/ holding something else (a folder) under a staged frame's name: the
#    staged copy is the only copy of those bytes, so it is left for the
#    operator, never dropped as if archived.
NAAM=$FIX/events/gv01-naam.lo3
mkdir "$SP/done/tcp-$(sha "$NAAM").lo3"
cp "$NAAM" "$(staged "$(sha "$NAAM")")"
before=$(count "$(T in.gba)")
"$BIN/ketenbus-gba" ingest --spool "$SP" --subject-key-file "$WORK/subject.key" --once \
  >"$WORK/once2.log" 2>&1
check "a folder under the frame's name: left staged" grep -q \
  'msg="staged frames recovered" found=1 done=0 quarantined=0 left=1' "$WORK/once2.log"
check "... its bytes still there" cmp -s "$NAAM" "$(staged "$(sha "$NAAM")")"
check "... nothing produced for it" eq "$(count "$(T in.gba)")" "$before"
finish
