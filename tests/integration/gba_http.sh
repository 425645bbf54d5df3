#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# gba_http.sh - the GBA adapter's HTTP endpoint on a real broker: a message
# POSTed in the BRP Berichten API JSON form is turned into its exact LO3
# bytes (so its source message id is the SHA-256 of those bytes) and
# published once Kafka acknowledged it (202) and archived in done/, also when
# it yields no life event; JSON that is no message and a message failing an
# element check are quarantined with the reason (422).
source "$(dirname "$0")/lib.sh"

start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key" \
  --http 127.0.0.1:0
GBA=$LAST_PID
check "http endpoint up" wait_for 60 bash -c "grep -q '^http ' '$WORK/gba.log'"
URL="http://127.0.0.1:$(sed -n 's/^http 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/gba.log" | tail -n 1)"
check "healthz" eq "$(curl -s "$URL/healthz")" ok

post() { # post FILE -> "STATUS BODY"
  curl -s -o "$WORK/body" -w '%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "@$1" "$URL/berichten"
}
"$BIN/ketenbus-gba" decode "$FIX/gv01-moeder-kind-sophie.lo3" >"$WORK/gv01.json"
check "a Gv01 as JSON is accepted" eq "$(post "$WORK/gv01.json")" 202
sha=$(sha256sum "$FIX/gv01-moeder-kind-sophie.lo3" | cut -d' ' -f1)
check "its source id is the SHA-256 of the LO3 bytes" grep -q "\"bronBerichtId\":\"sha256:$sha\"" "$WORK/body"
check "its event is in kb.in.gba" wait_for 30 count_is "$(T in.gba)" 1
check "the event type" eq "$(header_values "$(T in.gba)" ce_type)" nl.brp.kind-toegevoegd
# Archived as a TCP frame is: done/http-<sha256>.lo3, the exact LO3 bytes,
# named by the event's ce_dataref; no staged copy is left behind.
check "archived as done/http-<sha256>.lo3, the LO3 bytes" \
  cmp -s "$FIX/gv01-moeder-kind-sophie.lo3" "$WORK/gba/done/http-$sha.lo3"
ref=$(header_values "$(T in.gba)" ce_dataref | head -n 1)
check "the event's ce_dataref names that file ($ref)" eq "${ref#file://}" "$WORK/gba/done/http-$sha.lo3"
check "no staged copy left in done/" eq "$(ls -A "$WORK/gba/done" | grep -c '\.staged$')" 0

# A valid message that yields no life event (an Av01 request) is accepted
# and archived too: it is accounted for by more than a log line.
"$BIN/ketenbus-gba" decode "$FIX/kinds/Av01.lo3" >"$WORK/av01.json"
check "an Av01 as JSON is accepted" eq "$(post "$WORK/av01.json")" 202
av_sha=$(sha256sum "$FIX/kinds/Av01.lo3" | cut -d' ' -f1)
check "it is archived as done/http-<sha256>.lo3" \
  cmp -s "$FIX/kinds/Av01.lo3" "$WORK/gba/done/http-$av_sha.lo3"
check "the log says it had no life event" grep -q "no life event in message.*sha256=$av_sha" "$WORK/gba.log"
check "it added no event" count_is "$(T in.gba)" 1
check "a resend is accepted again, archived once" eq "$(post "$WORK/av01.json")" 202
check "  ... one file for it in done/, none staged" eq "$(ls -A "$WORK/gba/done" | grep -c "$av_sha")" 1

printf '{"berichtType":"Gv01","aNummer":"123"}' >"$WORK/bad.json"
check "JSON that is no message: 422" eq "$(post "$WORK/bad.json")" 422
check "the reason names the JSON path" grep -q 'aNummer: must be 10' "$WORK/body"
"$BIN/ketenbus-gba" decode "$FIX/events/gv01-bad-n.lo3" >"$WORK/bad-n.json"
check "a letter in an N element: 422" eq "$(post "$WORK/bad-n.json")" 422
check "the reason names the rubriek" grep -q '09.03.10 is numeric' "$WORK/body"
printf '{"berichtType":"Gv01","aNummer":"5281301274","Jansen 999993653":{}}' >"$WORK/key.json"
check "a key that is no field: 422" eq "$(post "$WORK/key.json")" 422
check "the reason names the key by its place" grep -q 'key 3 is not a field of Gv01' "$WORK/body"
check "all three are in kb.quarantine.gba" wait_for 30 count_is "$(T quarantine.gba)" 3
check "no BSN in the 422 bodies or headers" bash -c "! grep -q 999995303 '$WORK/body'"
header_values "$(T quarantine.gba)" kb_error >"$WORK/kb_error"
check "kb_error names the key by its place" grep -q 'key 3 is not a field' "$WORK/kb_error"
check "the key's name and BSN not in kb_error" \
  bash -c "! grep -q -e Jansen -e 999993653 '$WORK/kb_error'"
check "nor in the log" bash -c "! grep -q -e Jansen -e 999993653 '$WORK/gba.log'"

# What a crash between staging and done/ leaves (made by hand, the adapter
# stopped): the restart finishes it before serving, as for TCP frames.
kill "$GBA"
wait "$GBA" 2>/dev/null || true
lg_sha=$(sha256sum "$FIX/lg01-geboorte-sophie.lo3" | cut -d' ' -f1)
cp "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/done/.http-$lg_sha.lo3.staged"
start gba2 "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key" \
  --http 127.0.0.1:0
check "restart recovered the staged HTTP message" wait_for 90 grep -q \
  'msg="staged frames recovered" found=1 done=1 quarantined=0 left=0' "$WORK/gba2.log"
check "  ... into done/http-<sha256>.lo3" \
  cmp -s "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/done/http-$lg_sha.lo3"
check "  ... and its birth event into kb.in.gba" wait_for 30 count_is "$(T in.gba)" 2
finish
