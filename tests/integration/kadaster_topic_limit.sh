#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# kadaster_topic_limit.sh - ketenbus-kadaster against an output topic whose
# max.message.bytes is below the producer's message.max.bytes: the adapter
# learns the topic's limit from the broker (DescribeConfigs), quarantines a
# document whose event is over it with a reason naming the limit, and
# publishes the rest of the round, also when together they exceed the limit
# in one batch. The quarantine topic's limit bounds the raw bytes a
# quarantine record carries. Then both limits are lowered while the adapter
# runs: Kafka's refusal aborts the round (one transaction) and makes it learn
# them again, and the round goes on the same way. `decode -X message.max.bytes=N` refuses by the same rule.
source "$(dirname "$0")/lib.sh"

if [[ -z "${KB_KAFKA_STATE:-}" ]]; then
  echo "SKIP: KB_KAFKA_STATE does not name the broker's state (tests/kafka/broker.sh)" >&2
  exit 77
fi
BROKER=(env KB_KAFKA_STATE="$KB_KAFKA_STATE" "$SRC/tests/kafka/broker.sh")

KFIX=$SRC/tests/fixtures/kadaster
SP=$WORK/kadaster
mkdir -p "$SP/in"
IN=$(T in.kadaster)
"${BROKER[@]}" topics --create --topic "$IN" --partitions 3 --replication-factor 1 \
  --config max.message.bytes=100000 >>"$WORK/tools.log" 2>&1
"${BROKER[@]}" topics --create --topic "$(T quarantine.kadaster)" --partitions 3 \
  --replication-factor 1 --config max.message.bytes=100000 >>"$WORK/tools.log" 2>&1
check "topics made with max.message.bytes=100000" eq \
  "$(grep -c "Created topic" "$WORK/tools.log")" 2

# many_owners FILE N SERIAL: fixture 01 (one perceel, key 99010123470000)
# with N more fictitious owners (about 90 bytes of event each); SERIAL makes
# each file's bytes, so its event id, its own.
many_owners() {
  python3 - "$KFIX/01-verkoop-perceel.xml" "$SP/in/.$(basename "$1")" "$2" "$3" <<'PY'
import sys
xml = open(sys.argv[1]).read()
head = ('<Recht:Tenaamstelling id="ID.T0"><Recht:identificatie '
        'domein="NL.IMKAD.Tenaamstelling">T-1002')
at = xml.index(head)
line = xml[at:xml.index("\n", at) + 1]
extra = "".join(line.replace('"ID.T0"', '"ID.TX%d"' % i)
                .replace("T-1002", "T-S%sX%d" % (sys.argv[4], i))
                for i in range(int(sys.argv[3])))
open(sys.argv[2], "w").write(xml[:at] + extra + xml[at:])
PY
  mv "$SP/in/.$(basename "$1")" "$1"
}

# One document whose event (~135 kB) is over the topic's 100000 bytes but far
# under the producer's 1000000, and eight of ~22 kB each: one object, so one
# partition, ~180 kB together, more than one batch may hold.
many_owners "$SP/in/000-groot.xml" 1500 big
for i in 1 2 3 4 5 6 7 8; do many_owners "$SP/in/00$i-normaal.xml" 220 "$i"; done
# Not well-formed, ~140 kB: over what the quarantine topic takes, under 512 KiB.
many_owners "$SP/in/009-kapot.xml" 200 kapot
echo "<kapot" >>"$SP/in/009-kapot.xml"
KAD=(ingest --spool "$SP" --subject-key-file "$WORK/subject.key")
set +e
"$BIN/ketenbus-kadaster" "${KAD[@]}" --once >>"$WORK/kadaster.log" 2>&1
rc=$?
set -e
check "run exits 0" eq "$rc" 0
check "adapter learnt the topic's limit" grep -q "max_message=100000 " "$WORK/kadaster.log"
check "in/ is empty" eq "$(ls "$SP/in" | wc -l)" 0
check "large document quarantined" test -f "$SP/quarantine/000-groot.xml"
check "its reason names the limit" grep -q \
  "^size: Mutatie: its event of [0-9]* bytes would be over the event size limit of 95904 (the \
smaller of the producer's message.max.bytes and the topic's max.message.bytes" \
  "$SP/quarantine/000-groot.xml.reason"
check "the eight normal documents are done" eq "$(ls "$SP/done" | grep -c normaal)" 8
check "kb.in.kadaster holds their 8 events" wait_for 30 count_is "$IN" 8
check "broken document quarantined" test -f "$SP/quarantine/009-kapot.xml.reason"
check "kb.quarantine.kadaster holds 2 records" wait_for 30 count_is "$(T quarantine.kadaster)" 2
check "one carries kb_rule=size" eq \
  "$(header_values "$(T quarantine.kadaster)" kb_rule | sort | tr '\n' ' ')" "size xml "
check "both without their bytes, sizes in kb_raw_omitted" eq \
  "$(header_values "$(T quarantine.kadaster)" kb_raw_omitted | wc -l)" 2

# The limits lowered under a running adapter, one after the other: a
# quarantine record, then an event, that fit 100000 are now refused by Kafka
# itself; each time the adapter learns 30000 and does the round again.
start running "$BIN/ketenbus-kadaster" "${KAD[@]}"
check "running adapter learnt 100000" \
  wait_for 60 grep -q "max_message=100000 quarantine_raw_max=95904" "$WORK/running.log"
topic_limit "$(T quarantine.kadaster)" 30000
check "quarantine topic's limit lowered to 30000" grep -q "Completed updating config" \
  "$WORK/tools.log"
many_owners "$SP/in/010-kapot.xml" 50 kapot2 # ~45 kB: under 95904, over 30000
echo "<kapot" >>"$SP/in/010-kapot.xml"
check "second broken document quarantined" \
  wait_for 60 test -f "$SP/quarantine/010-kapot.xml.reason"
check "kb.quarantine.kadaster holds 3 records" wait_for 30 count_is "$(T quarantine.kadaster)" 3
check "all three without their bytes" eq \
  "$(header_values "$(T quarantine.kadaster)" kb_raw_omitted | wc -l)" 3
check "adapter learnt the quarantine topic's new limit" \
  grep -q "max_message=100000 quarantine_raw_max=25904" "$WORK/running.log"

topic_limit "$IN" 30000
check "output topic's limit lowered to 30000" eq \
  "$(grep -c "Completed updating config" "$WORK/tools.log")" 2
many_owners "$SP/in/011-middel.xml" 400 mid # event ~38 kB: under 95904, over 30000
many_owners "$SP/in/012-normaal.xml" 50 small
check "middle document quarantined" wait_for 60 test -f "$SP/quarantine/011-middel.xml.reason"
check "its reason names the new limit" grep -q "over the event size limit of 25904 " \
  "$SP/quarantine/011-middel.xml.reason"
check "its reason says the refused round was aborted, none of it published" \
  grep -q "the round was aborted: none of this document's events was published" \
  "$SP/quarantine/011-middel.xml.reason"
check "the document beside it is done" wait_for 30 test -f "$SP/done/012-normaal.xml"
# Kafka refused a round holding both documents' events, each on its own
# partition: the small one may have been acknowledged before the refusal,
# but the round is one transaction, aborted, so a read_committed reader (the
# router) sees it once, from the round done again, and the refused one never.
check "kb.in.kadaster holds 9 events, each once" wait_for 30 count_is "$IN" 9
check "... 9 distinct ids" eq "$(header_values "$IN" ce_id | sort -u | wc -l)" 9
check "the adapter saw the round aborted" grep -q "transaction aborted" "$WORK/running.log"
check "kb.quarantine.kadaster holds 4 records" wait_for 30 count_is "$(T quarantine.kadaster)" 4
check "adapter logged the refusal and the new limit" \
  grep -q "max_event_before=95904 max_event=25904" "$WORK/running.log"
check "nothing left in in/" eq "$(ls "$SP/in" | wc -l)" 0

# decode takes the producer's limit as ingest does (-X message.max.bytes).
set +e
"$BIN/ketenbus-kadaster" decode --received-ms 0 -X message.max.bytes=30000 \
  "$SP/quarantine/011-middel.xml" "$SP/done/012-normaal.xml" \
  >"$WORK/decode.out" 2>>"$WORK/decode.log"
drc=$?
"$BIN/ketenbus-kadaster" decode --received-ms 0 "$SP/quarantine/011-middel.xml" \
  >"$WORK/decode-default.out" 2>>"$WORK/decode.log"
ddrc=$?
set -e
check "decode with a small message.max.bytes refuses one (exit 1)" eq "$drc" 1
check "the middle one, by the limit" grep -q \
  '"document": *"011-middel.xml".*"rule": *"size".*event size limit of 25904' "$WORK/decode.out"
check "and prints the other's event" grep -q "nl.brk.eigendom-overgedragen" "$WORK/decode.out"
check "decode by default accepts it (exit 0)" eq "$ddrc" 0
finish
