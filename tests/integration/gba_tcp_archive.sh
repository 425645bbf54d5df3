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
# transactional.id without a transaction ("Erroneous state").
source "$(dirname "$0")/lib.sh"

LG01=$FIX/lg01-geboorte-sophie.lo3
BAD=$FIX/events/gv01-bad-n.lo3
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
start gba "$BIN/ketenbus-gba" "${GBA[@]}"
check "adapter listens" wait_for 60 has_port gba
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
ref=$(header_values "$(T in.gba)" ce_dataref | head -n 1)
check "its ce_dataref names the file in done/" test -f "${ref#file://}"
check "... which holds the frame" cmp -s "$LG01" "${ref#file://}"

# 3. A resend of the acknowledged frame: archived once.
"$BIN/ketenbus-gba" send --connect "127.0.0.1:$(port_of gba)" "$LG01" \
  >"$WORK/send3.out" 2>>"$WORK/send3.log" || true
check "resent frame answered A" grep -q "^ack $LG01" "$WORK/send3.out"
check "done/ still holds one copy" eq "$(ls -A "$SP/done" | wc -l)" 1
finish
