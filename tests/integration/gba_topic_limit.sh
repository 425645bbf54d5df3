#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# gba_topic_limit.sh - ketenbus-gba against kb.in.gba with a max.message.bytes
# that one event of a message cannot fit: the message is quarantined with a
# reason naming the size and the limit (the adapter checks each event, key
# and headers included, against the limit it learnt from the broker), and the
# messages after it go on; before, the send failed, the message was kept for
# a retry that could never succeed, and the spool stopped behind it. Then
# the limit is lowered while the adapter runs: Kafka refuses the birth as too
# large, the adapter learns the limits again and quarantines it the same way.
source "$(dirname "$0")/lib.sh"

if [[ -z "${KB_KAFKA_STATE:-}" ]]; then
  echo "SKIP: KB_KAFKA_STATE does not name the broker's state (tests/kafka/broker.sh)" >&2
  exit 77
fi
BROKER=(env KB_KAFKA_STATE="$KB_KAFKA_STATE" "$SRC/tests/kafka/broker.sh")
SP=$WORK/gba
mkdir -p "$SP/in"
drop() { # drop FIXTURE NAME: write-then-rename, as senders must
  cp "$1" "$SP/in/.$2"
  mv "$SP/in/.$2" "$SP/in/$2"
}
GBA=(ingest --spool "$SP" --subject-key-file "$WORK/subject.key")
IN=$(T in.gba)

# The birth's event (493 bytes) with its key and eleven ce_* headers takes
# about 1,035 bytes as a one-record batch, a name change (224 bytes) about
# 755: at 900 the adapter's check (which rounds up) refuses the birth and
# lets the other pass, and so does the broker.
"${BROKER[@]}" topics --create --topic "$IN" --partitions 3 --replication-factor 1 \
  --config max.message.bytes=900 >>"$WORK/tools.log" 2>&1
check "kb.in.gba made with max.message.bytes=900" grep -q "Created topic" "$WORK/tools.log"
drop "$FIX/lg01-geboorte-sophie.lo3" 001-lg01.lo3
drop "$FIX/events/gv01-naam.lo3" 002-gv01.lo3
"$BIN/ketenbus-gba" "${GBA[@]}" --once >>"$WORK/gba.log" 2>&1 && rc=0 || rc=$?
check "run exits 0" eq "$rc" 0
check "adapter learnt the topic's limit" grep -q "topic=$IN max_message=900 " "$WORK/gba.log"
check "in/ is empty: nothing held the spool" eq "$(ls "$SP/in" | wc -l)" 0
check "the birth is quarantined" test -f "$SP/quarantine/001-lg01.lo3"
check "... its reason names the event, its size and the limit" grep -q \
  "^size: nl.brp.persoon-geboren: its event of 493 bytes would be over the event size limit of [0-9]* (the smaller of the producer's message.max.bytes and the topic's max.message.bytes" \
  "$SP/quarantine/001-lg01.lo3.reason"
check "the name change is done" test -f "$SP/done/002-gv01.lo3"
check "kb.in.gba holds exactly its one event" eq "$(count "$IN")" 1
check "... the naam-gewijzigd" eq "$(header_values "$IN" ce_type)" nl.brp.naam-gewijzigd
check "kb.quarantine.gba holds the birth's message, rule size" \
  eq "$(header_values "$(T quarantine.gba)" kb_rule)" size

# The limit lowered under a running adapter that learnt 1 MB: Kafka refuses.
check "limit raised to 1000000" topic_limit "$IN" 1000000
start gba "$BIN/ketenbus-gba" "${GBA[@]}"
check "running adapter learnt the raised limit" \
  wait_for 60 grep -q "topic=$IN max_message=1000000 " "$WORK/gba.log"
check "limit lowered to 900 under the running adapter" topic_limit "$IN" 900
sleep 2 # the broker applies a topic config change asynchronously
drop "$FIX/lg01-geboorte-sophie.lo3" 003-lg01.lo3
check "the birth, refused by Kafka, is quarantined" \
  wait_for 60 test -f "$SP/quarantine/003-lg01.lo3.reason"
check "... after the limits were learnt again" \
  grep -q "limits learnt again.* max_message_before=1000000 max_message=900" "$WORK/gba.log"
check "... with the same reason" grep -q "^size: nl.brp.persoon-geboren: its event of 493 bytes" \
  "$SP/quarantine/003-lg01.lo3.reason"
check "kb.in.gba still holds exactly one event" eq "$(count "$IN")" 1
drop "$FIX/events/gv01-naam.lo3" 004-gv01.lo3
check "and the spool goes on: the next message is done" \
  wait_for 60 test -f "$SP/done/004-gv01.lo3"
check "no BSN in the logs" bash -c "! has_test_bsn '$WORK'/*.log"
finish
