#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# dev_live.sh - `ketenbus dev` without --demo, as a developer uses it: the
# mock cluster, the router and both adapters keep running; the dashboard is
# served on a free port; a birth dropped into the GBA spool comes out as an
# AKW01 record in SVB's spool and shows on /metrics. The subscriptions add a
# projecting subscriber, so the router registers its schema in the mock
# cluster's schemas topic. Needs no broker (the mock cluster is in-process).
source "$(dirname "$0")/lib.sh"

cp "$SRC/deploy/dev/subscriptions.yaml" "$WORK/subs.yaml"
cat >>"$WORK/subs.yaml" <<YAML
  - name: cbs-geboorten
    purpose: {id: cbs-statistiek, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.geboortedatum, kind.geslacht]
YAML
# The private mock cluster needs no test prefix, and the dev subscriptions name kb.* topics.
start dev env -u KETENBUS_TOPIC_PREFIX "$BIN/ketenbus" dev --workdir "$WORK/dev" --brokers 1 --subscriptions "$WORK/subs.yaml"
DEV_PID=$LAST_PID
check "dev prints its dashboard" wait_for 60 grep -q 'dashboard at http://127.0.0.1:' "$WORK/dev.log"
URL=$(sed -n 's|.*dashboard at \(http://127.0.0.1:[0-9]*\)/dashboard.*|\1|p' "$WORK/dev.log" | head -1)
check "adapters running" wait_for 60 grep -q 'ketenbus-svb (spool' "$WORK/dev.log"
check "the dashboard page is served" bash -c "curl -sf '$URL/dashboard' | grep -qi '<html'"
check "the router registered the projected schema" \
  grep -q 'msg="projected schemas registered" schemas=1' "$WORK/dev/logs/router.log" "$WORK/dev.log"
i=0
for f in lg01-geboorte-sophie.lo3 gv01-moeder-kind-sophie.lo3; do
  i=$((i + 1))
  cp "$FIX/$f" "$WORK/dev/gba/in/.$i" && mv "$WORK/dev/gba/in/.$i" "$WORK/dev/gba/in/00$i-$f"
done
# the birth and the mother's kind-toegevoegd join into one AKW01 invitation
akw_files() { find "$WORK/dev/svb/out" -maxdepth 1 -name '*.akw01' -type f | wc -l; }
akw_files_are() { [[ "$(akw_files)" == "$1" ]]; }
check "SVB's spool got exactly one invitation (.akw01)" wait_for 90 akw_files_are 1
m() { curl -sf "$URL/metrics" | grep -E "^$1" | awk '{s += $2} END {print s + 0}'; }
svb_out_is() { [[ "$(m 'kb_events_out_total\{subscriber="svb-kinderbijslag"')" == "$1" ]]; }
check "metrics: svb-kinderbijslag got the birth and the kind-toegevoegd (2)" \
  wait_for 30 svb_out_is 2
check "metrics: cbs-geboorten got the one birth" eq "$(m 'kb_events_out_total\{subscriber="cbs-geboorten"')" 1
check "metrics: no dead letters" eq "$(m 'kb_dead_letters_total')" 0
check "the live stream answers" bash -c "curl -sf -m 5 '$URL/events?max=1' | grep -q '^data: '"
kill -TERM "$DEV_PID"
check "dev stops cleanly on SIGTERM" wait_for 60 grep -q 'ketenbus dev: stopped' "$WORK/dev.log"
finish
