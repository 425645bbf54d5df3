#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# gba_egress.sh - LO3 egress for a legacy afnemer on a real broker:
# ketenbus-gba ingest -> kb.in.gba -> ketenbus route -> kb.out.gba-lo3 ->
# ketenbus-gba egress, once into a spool out/ folder and once pushed over
# TCP to a legacy listener (a second ketenbus-gba on its own topics, which
# answers each frame only after its own Kafka acknowledged it). The
# rendered Ag01/Gv01 must be valid LO3 carrying the right persons.
source "$(dirname "$0")/lib.sh"

SUBS=$WORK/subscriptions.yaml
cat >"$SUBS" <<YAML
subscriptions:
  - name: gba-lo3
    purpose: {id: legacy-afnemer, legal_basis: "Wet BRP art. 3.3"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd, nl.brp.persoon-overleden]
YAML
mkdir -p "$WORK/gba/in"
start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance it-egress \
  --subject-key-file "$WORK/subject.key"
start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key"
n=0
for f in "$FIX/lg01-geboorte-sophie.lo3" "$FIX/gv01-moeder-kind-sophie.lo3" \
         "$FIX/events/gv01-overlijden.lo3" "$FIX/events/gv01-naam.lo3"; do
  n=$((n + 1))
  cp "$f" "$WORK/gba/in/.00$n.lo3" && mv "$WORK/gba/in/.00$n.lo3" "$WORK/gba/in/00$n.lo3"
done
check "four events in kb.in.gba" wait_for 60 count_is "$(T in.gba)" 4
check "three routed to the LO3 afnemer" wait_for 90 count_is "$(T out.gba-lo3)" 3

# Anything else on the topic (written there by hand, say) fails the router's
# envelope gate and is quarantined with its reason, between the events.
echo 'not an event' | kcat -P -b "$KB_BOOTSTRAP" -t "$(T out.gba-lo3)" -p 0 -k x

# 1. Into a spool folder.
"$BIN/ketenbus-gba" egress --spool "$WORK/afnemer" --subject-key-file "$WORK/subject.key" \
  --idle-exit 5000 >>"$WORK/egress1.log" 2>&1
check "three LO3 files in out/" eq "$(ls "$WORK/afnemer/out" | grep -c '\.lo3$')" 3
kinds=$(for f in "$WORK"/afnemer/out/*.lo3; do head -c 12 "$f" | tail -c 4; echo; done | sort | tr '\n' ' ')
check "one Ag01 and two Gv01" eq "$kinds" "Ag01 Gv01 Gv01 "
check "the stray message is quarantined with the gate's reason" \
  bash -c "grep -l 'ce_' '$WORK'/afnemer/quarantine/*.reason | wc -l | grep -qx 1"
ok=0
for f in "$WORK"/afnemer/out/*.lo3; do "$BIN/ketenbus-gba" decode "$f" >"$f.json" && ok=$((ok + 1)); done
check "each one parses as LO3" eq "$ok" 3
check "the Ag01 carries the child's BSN" grep -ql '"e0120": "999995303"' "$WORK"/afnemer/out/*.json
check "the Gv01 carries the mother's A-nummer" grep -ql '"aNummer": "5281301274"' "$WORK"/afnemer/out/*.json

# 2. Pushed over TCP to a legacy listener (its own topic prefix).
KETENBUS_TOPIC_PREFIX="$KETENBUS_TOPIC_PREFIX-afnemer" start legacy "$BIN/ketenbus-gba" ingest \
  --spool "$WORK/legacy" --subject-key-file "$WORK/subject.key" --listen 127.0.0.1:0
port_of() { sed -n 's/^listening 127.0.0.1:\([0-9]*\)$/\1/p' "$WORK/legacy.log" | tail -n 1; }
check "legacy listener up" wait_for 60 bash -c "grep -q '^listening' '$WORK/legacy.log'"
"$BIN/ketenbus-gba" egress --spool "$WORK/afnemer2" --subject-key-file "$WORK/subject.key" \
  --group "$KETENBUS_TOPIC_PREFIX-tcp" --connect "127.0.0.1:$(port_of)" --idle-exit 5000 \
  >>"$WORK/egress2.log" 2>&1
check "listener archived three frames" eq "$(ls "$WORK/legacy/done" | grep -c '^tcp-')" 3
check "egress wrote nothing to its own out/" eq "$(ls "$WORK/afnemer2/out" | wc -l)" 0
check "the rendered Gv01s yield events again at the afnemer" \
  wait_for 30 count_is "$KETENBUS_TOPIC_PREFIX-afnemer.in.gba" 2
finish
