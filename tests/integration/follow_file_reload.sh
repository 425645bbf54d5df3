#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# follow_file_reload.sh - a follow list kept in a CSV file beside the
# subscriptions, on a real broker: an edit of the list alone (written under
# a dot-name and renamed in) reloads the subscriptions, so the router then
# delivers the newly followed person's next event; an edit in place that
# keeps the size and sets the mtime back (so size, mtime and inode are as
# read) reloads too; a broken subscription file keeps the old set running,
# says so on every SIGHUP (not only once) and sets
# kb_subscriptions_reload_failed to 1 until a good set loads. No BSN in any
# log.
source "$(dirname "$0")/lib.sh"

BSN=999995303
SUBS=$WORK/subs.yaml
good_subs() {
  cat >"$WORK/.subs.yaml" <<YAML
subscriptions:
  - name: volg
    purpose: {id: toezicht, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    follow: volgers.csv
  - name: alle
    purpose: {id: controle, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
YAML
  mv "$WORK/.subs.yaml" "$SUBS"
}
printf '# nobody followed yet\n' >"$WORK/volgers.csv"
good_subs

start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance follow-file \
  --subject-key-file "$WORK/subject.key" --no-audit --metrics-addr 127.0.0.1:0 \
  -X session.timeout.ms=6000
ROUTER=$LAST_PID
PORT=$(serving_port router)
check "router serves on a port" test -n "$PORT"
gauge() { curl -sf "http://127.0.0.1:$PORT/metrics" | sed -n 's/^kb_subscriptions_reload_failed \([0-9.]*\)$/\1/p'; }
gauge_is() { [[ "$(gauge)" == "$1" ]]; }
check "reload-failed gauge is 0 after start" wait_for 30 gauge_is 0

mkdir -p "$WORK/gba/in"
start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key"
cp "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/in/.1" && mv "$WORK/gba/in/.1" "$WORK/gba/in/001-lg01.lo3"
check "control subscriber got the birth" wait_for 90 count_is "$(T out.alle)" 1
check "nobody followed: volg got nothing" count_is "$(T out.volg)" 0

# Only the follow list changes; the subscription file stays as it was.
printf '# followed\nbsn:%s,2020-01-01,\n' "$BSN" >"$WORK/.volgers.csv"
mv "$WORK/.volgers.csv" "$WORK/volgers.csv"
# Exact counts: a router that reloaded at every look would pass "at least".
reloads() { grep -c 'subscriptions reloaded' "$WORK/router.log" || true; }
reloads_are() { [[ "$(reloads)" == "$1" ]]; }
failures() { grep -c 'subscriptions not reloaded' "$WORK/router.log" || true; }
failures_are() { [[ "$(failures)" == "$1" ]]; }
check "an edit of the follow list alone reloads" wait_for 20 reloads_are 1
# Another birth message on the child's own PL: the same person.
cp "$FIX/kinds/Lg01.lo3" "$WORK/gba/in/.2" && mv "$WORK/gba/in/.2" "$WORK/gba/in/002-lg01.lo3"
check "control subscriber got the second event" wait_for 90 count_is "$(T out.alle)" 2
check "the newly followed person's event reached volg" wait_for 10 count_is "$(T out.volg)" 1

# Another person of the same length, written over the list in place, and
# the modification time set back: only the change time tells (and, were it
# within one time stamp tick of the read, the content's hash).
LIST=$WORK/volgers.csv
before=$(stat -c '%s %y %i' "$LIST")
printf '# followed\nbsn:%s,2020-01-01,\n' 999990019 | dd of="$LIST" conv=notrunc status=none
touch -m -d "$(cut -d' ' -f2-4 <<<"$before")" "$LIST"
check "size, mtime and inode as before the edit" eq "$(stat -c '%s %y %i' "$LIST")" "$before"
check "... and the list did change" grep -q 999990019 "$LIST"
check "an edit in place with the mtime set back reloads" wait_for 20 reloads_are 2

# A broken set: refused, loudly, at the change and at every SIGHUP.
cat >"$WORK/.subs.yaml" <<YAML
subscriptions:
  - name: volg
    purpose: {id: toezicht, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    delivery: {kafka_topic: $(T audit)}
YAML
mv "$WORK/.subs.yaml" "$SUBS"
check "the broken set is refused" wait_for 20 failures_are 1
check "... naming file:line:column" grep -q "subs.yaml:5:29: delivery.kafka_topic" "$WORK/router.log"
check "reload-failed gauge is 1" wait_for 10 gauge_is 1
sleep 5 # several looks at the unchanged broken file
n1=$(failures)
check "an unchanged broken file is logged once, not at every look" eq "$n1" 1
check "... and no look at an unchanged file reloaded (still 2)" eq "$(reloads)" 2
kill -HUP "$ROUTER"
check "a SIGHUP with the same broken file logs again" wait_for 10 failures_are 2
kill -HUP "$ROUTER"
check "... and again at the next SIGHUP" wait_for 10 failures_are 3
check "... saying it was requested" grep -q 'subscriptions not reloaded.*requested=1' "$WORK/router.log"

good_subs
check "a good set loads again" wait_for 20 reloads_are 3
check "reload-failed gauge back to 0" wait_for 10 gauge_is 0
check "the router did not stop" kill -0 "$ROUTER"
check "no BSN in any log" bash -c "! grep -lE '$BSN|999990019' $WORK/*.log"
finish
