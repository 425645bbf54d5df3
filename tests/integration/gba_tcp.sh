#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# gba_tcp.sh - the GBA adapter's TCP transport on a real broker: a legacy
# sender streams LO3 messages as length-prefixed frames; the adapter is
# killed after Kafka acknowledged a message but before it answered the
# sender. The restarted adapter finishes the frame the crash left staged,
# and the sender resends what it never saw acknowledged; in the end every
# message's events are in kb.in.gba (nothing acknowledged is lost), the two
# duplicates carry the same event id, and the unreadable message was
# rejected ('R') and is in kb.quarantine.gba with its reason.
source "$(dirname "$0")/lib.sh"

EV=$FIX/events
# messages in sending order, with the number of events each must yield
MSGS=("$FIX/lg01-geboorte-sophie.lo3" "$FIX/gv01-moeder-kind-sophie.lo3" "$EV/gv01-huwelijk.lo3"
      "$EV/gv01-multi.lo3" "$EV/gv01-bad-n.lo3" "$EV/gv01-overlijden.lo3"
      "$EV/gv01-immigratie.lo3" "$EV/ng01-afgevoerd.lo3" "$EV/wa11-anummer.lo3")
EVENTS=(1 1 1 3 0 1 1 1 1)
TOTAL=0; for n in "${EVENTS[@]}"; do TOTAL=$((TOTAL + n)); done
GBA=(ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key" --listen 127.0.0.1:0)

port_of() { sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/$1.log" | tail -n 1; }
has_port() { [[ -n "$(port_of "$1")" ]]; }

# 1. The adapter dies right after Kafka acknowledged the 3rd message
#    (gv01-huwelijk) and before it answered the sender.
KETENBUS_FAULT=crash-after-ack:3 start gba1 "$BIN/ketenbus-gba" "${GBA[@]}"
GBA1=$LAST_PID
check "adapter 1 listens" wait_for 60 has_port gba1
set +e
"$BIN/ketenbus-gba" send --connect "127.0.0.1:$(port_of gba1)" "${MSGS[@]}" >"$WORK/send1.out" 2>>"$WORK/send1.log"
send_rc=$?
wait "$GBA1"; gba1_rc=$?
set -e
check "adapter died at the injected fault (exit 137)" eq "$gba1_rc" 137
check "sender saw its connection lost (exit 3)" eq "$send_rc" 3
check "first two messages acknowledged" eq "$(grep -c '^ack ' "$WORK/send1.out")" 2
check "third message's fate unknown to the sender" grep -q "^lost $EV/gv01-huwelijk.lo3" "$WORK/send1.out"
check "its event is nevertheless in kb.in.gba" wait_for 30 count_is "$(T in.gba)" 3

# 2. Restart; the sender resends everything it has no answer for.
start gba2 "$BIN/ketenbus-gba" "${GBA[@]}"
check "adapter 2 listens" wait_for 60 has_port gba2
acked=$(sed -n 's/^ack //p' "$WORK/send1.out")
resend=()
for m in "${MSGS[@]}"; do grep -qxF "$m" <<<"$acked" || resend+=("$m"); done
check "seven messages to resend" eq "${#resend[@]}" 7
set +e
"$BIN/ketenbus-gba" send --connect "127.0.0.1:$(port_of gba2)" "${resend[@]}" >"$WORK/send2.out" 2>>"$WORK/send2.log"
send2_rc=$?
set -e
check "resend completed" eq "$send2_rc" 0
check "six acknowledged" eq "$(grep -c '^ack ' "$WORK/send2.out")" 6
check "bad N element rejected with its rubriek, not to be resent" \
  grep -q "^reject $EV/gv01-bad-n.lo3 lo3-semantics: offset 54: 09.03.10 is numeric" "$WORK/send2.out"

# 3. Nothing lost, the duplicates recognisable by their id: gv01-huwelijk's
#    event was produced before the crash, again when the restart finished
#    its staged frame, and once more for the sender's resend.
check "restart finished the staged frame before serving" grep -q \
  'msg="staged frames recovered" found=1 done=1 quarantined=0 left=0' "$WORK/gba2.log"
check "kb.in.gba holds every event plus two duplicates" \
  wait_for 30 count_is "$(T in.gba)" $((TOTAL + 2))
ids=$(header_values "$(T in.gba)" ce_id | sort -u | wc -l)
check "distinct event ids = events of all messages ($TOTAL)" eq "$ids" "$TOTAL"
types=$(header_values "$(T in.gba)" ce_type | sort -u | tr '\n' ' ')
check "life event types present" eq "$types" "nl.brp.anummer-gewijzigd nl.brp.huwelijk-gesloten nl.brp.kind-toegevoegd nl.brp.naam-gewijzigd nl.brp.persoon-geboren nl.brp.persoon-overleden nl.brp.persoon-verhuisd nl.brp.persoonslijst-afgevoerd nl.brp.persoonslijst-gewijzigd "
check "quarantine holds the rejected message" wait_for 30 count_is "$(T quarantine.gba)" 1
check "quarantine reason names the rule" bash -c "header_values() { kcat -C -b '$KB_BOOTSTRAP' -t \"\$1\" -e -q -f '%h\n' 2>/dev/null | tr ',' '\n' | sed -n \"s/^\$2=//p\"; }; header_values '$(T quarantine.gba)' kb_rule | grep -qx lo3-semantics"
check "no BSN or A-nummer in keys or headers" bash -c "! kcat -C -b '$KB_BOOTSTRAP' -t '$(T in.gba)' -e -q -f 'key=%k headers=%h\n' 2>/dev/null | grep -E '999996204|999995303|5281301274|7194601014'"
check "frames archived in done/ by content hash" eq "$(ls "$WORK/gba/done" | grep -c '^tcp-.*\.lo3$')" 8
finish
