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

gba_lo3_routed it-egress

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
