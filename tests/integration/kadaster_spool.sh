#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# kadaster_spool.sh - ketenbus-kadaster on a real Kafka broker: delivery
# files (plain XML and zips) from the spool reach kb.in.kadaster keyed by
# kadastraal object, two mutations of one object arrive in (brkDatum,
# volgnummer) order although the folder holds them the other way round,
# malformed documents end in quarantine/ and kb.quarantine.kadaster with the
# reason (a bad zip entry alone, the rest of its zip is published), no
# personal data in keys or headers, and a re-delivered file yields the same
# event ids.
source "$(dirname "$0")/lib.sh"

KFIX=$SRC/tests/fixtures/kadaster
SP=$WORK/kadaster
KAD=(ingest --spool "$SP" --subject-key-file "$WORK/subject.key" --once)
mkdir -p "$SP/in"

drop() { # drop FIXTURE NAME: write-then-rename, as senders must
  cp "$1" "$SP/in/.$2"
  mv "$SP/in/.$2" "$SP/in/$2"
}
drop "$KFIX/06a-zelfde-object-volgnummer-2.xml" 001-MUTKX02-KBS00A1500-20240316-2.xml
drop "$KFIX/06b-zelfde-object-volgnummer-1.xml" 002-MUTKX02-KBS00A1500-20240316-1.xml
drop "$KFIX/07-levering.zip" 003-levering.zip
drop "$KFIX/08-levering-met-fout.zip" 004-levering-met-fout.zip
drop "$KFIX/malformed/xxe.xml" 005-xxe.xml

"$BIN/ketenbus-kadaster" "${KAD[@]}" >>"$WORK/kadaster.log" 2>&1 && rc=0 || rc=$?
check "adapter run exits 0" eq "$rc" 0
check "in/ is empty" eq "$(ls "$SP/in" | wc -l)" 0
check "good files moved to done/" eq "$(ls "$SP/done" | sort | tr '\n' ' ')" \
  "001-MUTKX02-KBS00A1500-20240316-2.xml 002-MUTKX02-KBS00A1500-20240316-1.xml 003-levering.zip 004-levering-met-fout.zip "
check "XXE file quarantined" test -f "$SP/quarantine/005-xxe.xml"
check "its reason names the rule" grep -q '^xml: line 0: DOCTYPE not allowed' "$SP/quarantine/005-xxe.xml.reason"
check "bad zip entry quarantined on its own" \
  test -f "$SP/quarantine/004-levering-met-fout.zip_MUTKX02-KBS00X0001-20240318-1.xml"
check "entry reason written" grep -q 'not well-formed XML' \
  "$SP/quarantine/004-levering-met-fout.zip_MUTKX02-KBS00X0001-20240318-1.xml.reason"

# 2 (pair) + 2 (zip) + 1 (good entry of the bad zip) events; 2 quarantined documents.
check "kb.in.kadaster holds 5 events" wait_for 30 count_is "$(T in.kadaster)" 5
check "kb.quarantine.kadaster holds 2 records" wait_for 30 count_is "$(T quarantine.kadaster)" 2
check "quarantine records carry kb_rule=xml" bash -c \
  "[[ \$(kcat -C -b $KB_BOOTSTRAP -t $(T quarantine.kadaster) -e -q -f '%h\n' | grep -c 'kb_rule=xml') == 2 ]]"

# Per-object order: the object's events, in partition (offset) order.
order=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.kadaster)" -e -q -f '%k %h\n' |
  awk '$1 == "99010150070000"' | tr ',' '\n' | sed -n 's/^ce_type=//p' | tr '\n' ' ')
check "object 99010150070000: volgnummer 1 before 2" eq "$order" \
  "nl.brk.kadastraal-object-gemuteerd nl.brk.eigendom-overgedragen "
keys=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.kadaster)" -e -q -f '%k\n' | sort -u | tr '\n' ' ')
check "keys are the kadastraal object ids" eq "$keys" \
  "99010078970000 99010123470000 99010150070000 99010160070000 "
check "no BSN, RSIN or name in keys or headers" bash -c \
  "! kcat -C -b $KB_BOOTSTRAP -t $(T in.kadaster) -e -q -f '%k %h\n' | grep -E -q '999995303|999996204|999990019|999990342|800000018|Testpersoon'"
check "sequence numbers 1..5" eq "$(header_values "$(T in.kadaster)" ce_sequence | sort -n | tr '\n' ' ')" "1 2 3 4 5 "

# Re-delivery of a file (e.g. after a crash before the move): same event id.
first_id=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.kadaster)" -e -q -f '%k %h\n' |
  awk '$1 == "99010123470000"' | tr ',' '\n' | sed -n 's/^ce_id=//p')
drop "$KFIX/01-verkoop-perceel.xml" 006-MUTKX02-KBS00A1234-20240312-1.xml
"$BIN/ketenbus-kadaster" "${KAD[@]}" >>"$WORK/kadaster.log" 2>&1
check "kb.in.kadaster holds 6 events" wait_for 30 count_is "$(T in.kadaster)" 6
ids=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.kadaster)" -e -q -f '%k %h\n' |
  awk '$1 == "99010123470000"' | tr ',' '\n' | sed -n 's/^ce_id=//p' | sort -u)
check "re-delivered sale keeps its event id" eq "$ids" "$first_id"
check "adapter logged no personal data" bash -c "! grep -E -q '999995303|999996204|Testpersoon' $WORK/kadaster.log"

# A document whose event is larger than Kafka takes (a transfer to 12,000
# fictitious owners: an event of ~1.09 MB, over message.max.bytes) is
# quarantined with rule size; the file beside it is published, nothing waits.
python3 - "$KFIX/01-verkoop-perceel.xml" "$SP/in/.008-veel-eigenaren.xml" <<'PY'
import sys
xml = open(sys.argv[1]).read()
head = ('<Recht:Tenaamstelling id="ID.T0"><Recht:identificatie '
        'domein="NL.IMKAD.Tenaamstelling">T-1002')
at = xml.index(head)
line = xml[at:xml.index("\n", at) + 1]
extra = "".join(line.replace('"ID.T0"', '"ID.TX%d"' % i).replace("T-1002", "T-X%d" % i)
                for i in range(12000))
open(sys.argv[2], "w").write(xml[:at] + extra + xml[at:])
PY
mv "$SP/in/.008-veel-eigenaren.xml" "$SP/in/008-veel-eigenaren.xml"
drop "$KFIX/02-verkoop-appartementsrecht.xml" 009-MUTKX02-KBS00B2000A3-20240313-1.xml
"$BIN/ketenbus-kadaster" "${KAD[@]}" >>"$WORK/kadaster.log" 2>&1 && rc=0 || rc=$?
check "run with an oversized event exits 0" eq "$rc" 0
check "oversized document quarantined" test -f "$SP/quarantine/008-veel-eigenaren.xml"
check "its reason says size" grep -q '^size: Mutatie: its event of [0-9]* bytes would be over' \
  "$SP/quarantine/008-veel-eigenaren.xml.reason"
check "the file beside it is done" test -f "$SP/done/009-MUTKX02-KBS00B2000A3-20240313-1.xml"
check "kb.in.kadaster holds 7 events" wait_for 30 count_is "$(T in.kadaster)" 7
check "kb.quarantine.kadaster holds 3 records" wait_for 30 count_is "$(T quarantine.kadaster)" 3
check "one quarantine record carries kb_rule=size" bash -c \
  "[[ \$(kcat -C -b $KB_BOOTSTRAP -t $(T quarantine.kadaster) -e -q -f '%h\n' | grep -c 'kb_rule=size') == 1 ]]"

# The same zip name delivered again: its bad entry is quarantined beside the
# first day's (named after the zip's done/ name), never over it.
first_entry=$(sha256sum <"$SP/quarantine/004-levering-met-fout.zip_MUTKX02-KBS00X0001-20240318-1.xml")
drop "$KFIX/08-levering-met-fout.zip" 004-levering-met-fout.zip
"$BIN/ketenbus-kadaster" "${KAD[@]}" >>"$WORK/kadaster.log" 2>&1
check "re-delivered zip moved to done/ as .1" test -f "$SP/done/004-levering-met-fout.zip.1"
check "its bad entry quarantined under the .1 name" test -f \
  "$SP/quarantine/004-levering-met-fout.zip.1_MUTKX02-KBS00X0001-20240318-1.xml.reason"
check "the first day's entry is kept" eq \
  "$(sha256sum <"$SP/quarantine/004-levering-met-fout.zip_MUTKX02-KBS00X0001-20240318-1.xml")" \
  "$first_entry"
check "and its reason" test -f \
  "$SP/quarantine/004-levering-met-fout.zip_MUTKX02-KBS00X0001-20240318-1.xml.reason"
check "no staged file left in done/" eq "$(ls -A "$SP/done" | grep -c '\.staged$')" 0
check "kb.quarantine.kadaster holds 4 records" wait_for 30 count_is "$(T quarantine.kadaster)" 4

# Kafka unreachable: the file stays in in/ (acknowledge only after Kafka did).
drop "$KFIX/05-object-vervallen.xml" 007-vervallen.xml
set +e
timeout 120 "$BIN/ketenbus-kadaster" "${KAD[@]}" -b 127.0.0.1:1 -X message.timeout.ms=3000 \
  >>"$WORK/kadaster-down.log" 2>&1
down_rc=$?
set -e
check "run against a dead broker fails" test "$down_rc" -ne 0
check "file kept in in/ for the retry" test -f "$SP/in/007-vervallen.xml"
finish
