#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# tools_dlq_dryrun.sh - the operator tools on a real broker: the router
# dead-letters malformed input (no headers; valid headers with a truncated
# value); `ketenbus dlq list` shows them with stage and rule, `dlq show`
# gives the payload's size and SHA-256, `dlq redrive --value` puts a
# corrected event back and the router delivers it; `ketenbus sub dry-run`
# of new subscriptions over the history prints exactly the counts computed
# here from the input itself, and delivers nothing.
source "$(dirname "$0")/lib.sh"

N1=300 # gemeente 0344
N2=200 # gemeente 0363
KB=$BIN/ketenbus
SUBS=$WORK/subs
mkdir -p "$SUBS"
cat >"$SUBS/alle.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
YAML
SINCE=$(date -u -d '-5 seconds' +%Y-%m-%dT%H:%M:%SZ)

# A valid event of its own, made in a scratch prefix: its headers and bytes
# become a dead letter (value cut short) and then the corrected redrive.
KETENBUS_TOPIC_PREFIX=$KETENBUS_TOPIC_PREFIX-scratch "$KB" gen --count 1 --seed 99 \
  --gemeenten 0599 --subject-key-file "$WORK/subject.key" >"$WORK/scratch.log" 2>&1
SCRATCH=$KETENBUS_TOPIC_PREFIX-scratch.in.gba
kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -c 1 -e -q -f '%s' >"$WORK/valid.bin"
IFS=',' read -ra HDRS <<<"$(kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -c 1 -e -q -f '%h')"
HARGS=()
for h in "${HDRS[@]}"; do HARGS+=(-H "$h"); done
FIXED_ID=$(printf '%s\n' "${HDRS[@]}" | sed -n 's/^ce_id=//p')
check "scratch event has an id and a value" test -n "$FIXED_ID" -a -s "$WORK/valid.bin"
head -c 12 "$WORK/valid.bin" >"$WORK/truncated.bin"

start router "$KB" route --subscriptions "$SUBS" --instance r1 \
  --subject-key-file "$WORK/subject.key" --batch 100
ROUTER=$LAST_PID
"$KB" gen --count $N1 --seed 7 --gemeenten 0344 --subject-key-file "$WORK/subject.key" >"$WORK/gen1.log" 2>&1
"$KB" gen --count $N2 --seed 7 --start $N1 --gemeenten 0363 --subject-key-file "$WORK/subject.key" >"$WORK/gen2.log" 2>&1
for i in 1 2 3; do echo "broken $i" | kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k "x$i"; done
kcat -P -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -k fixed "${HARGS[@]}" "$WORK/truncated.bin"

check "alle: the $((N1 + N2)) valid events delivered" wait_for 120 count_is "$(T out.alle)" $((N1 + N2))
check "dead letters: the 4 malformed" wait_for 60 count_is "$(T dlq)" 4

# dlq list: one line each, with stage, rule and origin, never a value.
"$KB" dlq list >"$WORK/list.out" 2>"$WORK/list.log"
check "list: 4 dead letters counted" grep -q "^4 dead letter(s) in $(T dlq)\$" "$WORK/list.out"
check "list: 3 envelope/cloudevents-headers" eq "$(grep -c 'stage=envelope rule=cloudevents-headers .*from='"$(T in.gba)"'/' "$WORK/list.out")" 3
check "list: the truncated one rejected by the gate, with its id" \
  eq "$(grep -c "stage=validate rule=[a-z-][a-z-]* .*id=$FIXED_ID type=nl.brp.persoon-geboren" "$WORK/list.out")" 1
check "list --limit 2 shows 2" eq "$("$KB" dlq list --limit 2 2>/dev/null | grep -c '^[0-9]*/[0-9]* stage=')" 2
LINE=$(grep "id=$FIXED_ID" "$WORK/list.out")
P=${LINE%%/*}; O=${LINE#*/}; O=${O%% *}

# dlq show: every header, size and SHA-256 of the payload.
"$KB" dlq show "$O" --partition "$P" >"$WORK/show.out" 2>"$WORK/show.log"
check "show: payload size" grep -qx "payload_bytes=$(stat -c %s "$WORK/truncated.bin")" "$WORK/show.out"
check "show: payload SHA-256" grep -qx "payload_sha256=$(sha256sum "$WORK/truncated.bin" | cut -d' ' -f1)" "$WORK/show.out"
check "show: the context and CloudEvents headers" bash -c "grep -q '^header kb_stage=validate' '$WORK/show.out' && grep -q '^header ce_id=$FIXED_ID' '$WORK/show.out'"
check "show: a missing offset is an error" bash -c "! '$KB' dlq show 999 --partition $P >/dev/null 2>&1"

# A restart first: the new router rebuilds its dedup window from the input,
# which holds the rejected event's id. Only routed events belong there, or
# the corrected redrive below would be dropped as a duplicate.
kill -TERM "$ROUTER"
wait "$ROUTER" 2>/dev/null || true
start router-again "$KB" route --subscriptions "$SUBS" --instance r1 \
  --subject-key-file "$WORK/subject.key" --batch 100
check "restarted router rebuilt its dedup window" \
  wait_for 60 grep -q 'msg="dedup window rebuilt"' "$WORK/router-again.log"

# dlq redrive with the corrected value: routed and delivered.
"$KB" dlq redrive "$O" --partition "$P" --value "$WORK/valid.bin" >"$WORK/redrive.out" 2>"$WORK/redrive.log" || true
check "redrive: reports what it did" grep -q "^redriven $(T dlq)/$P/$O -> $(T in.gba)/.* value=corrected bytes=$(stat -c %s "$WORK/valid.bin")" "$WORK/redrive.out"
check "redrive: the corrected event is delivered" wait_for 60 count_is "$(T out.alle)" $((N1 + N2 + 1))
check "redrive: delivered under its own id" bash -c "header_values() { kcat -C -b '$KB_BOOTSTRAP' -t \"\$1\" -e -q -X isolation.level=read_committed -f '%h\n' | tr ',' '\n' | sed -n \"s/^\$2=//p\"; }; header_values '$(T out.alle)' ce_id | grep -qx '$FIXED_ID'"
check "redrive: input carries kb_redriven_from and no kb_rule" bash -c \
  "kcat -C -b '$KB_BOOTSTRAP' -t '$(T in.gba)' -e -q -f '%h\n' | grep 'kb_redriven_from=$(T dlq)/$P/$O' | grep -vq kb_rule"
echo "not avro" >"$WORK/unframed.bin"
in_before=$(count "$(T in.gba)")
"$KB" dlq redrive "$O" --partition "$P" --value "$WORK/unframed.bin" >"$WORK/unframed.out" 2>&1 \
  && rc=0 || rc=$?
check "redrive: a value without framing is refused (exit 1)" eq "$rc" 1
check "... saying why" grep -q '^error: .*not Confluent-framed' "$WORK/unframed.out"
check "... and nothing reached the input topic" eq "$(count "$(T in.gba)")" "$in_before"
# Redriving a dead letter as it is (no headers): dead-lettered again, not lost.
B=$(grep 'stage=envelope' "$WORK/list.out" | head -1)
BO=${B#*/}; BO=${BO%% *}
"$KB" dlq redrive "$BO" --partition "${B%%/*}" >"$WORK/redrive2.out" 2>"$WORK/redrive2.log" || true
check "redrive as-is: reports the original value" grep -q "^redriven $(T dlq)/${B%%/*}/$BO -> $(T in.gba)/.* value=original bytes=8 " "$WORK/redrive2.out"
check "redrive as-is: dead-lettered again" wait_for 60 count_is "$(T dlq)" 5

# sub dry-run: new subscriptions over the history, counts computed here.
mkdir -p "$WORK/new"
cat >"$WORK/new/proposed.yaml" <<YAML
subscriptions:
  - name: eind-a
    purpose: {id: steekproef, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    filter: {suffix: {id: "a"}}
  - name: gemeente-filter
    purpose: {id: gemeente, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    filter: {field: {path: inschrijving.gemeente, op: "=", value: "0363"}}
    fields: [inschrijving.gemeente, kind.geboortedatum]
  - name: ander-type
    purpose: {id: ander, legal_basis: "test"}
    types: [nl.brp.persoon-overleden]
YAML
header_values "$(T in.gba)" ce_id | sort -u >"$WORK/in.ids"
EXP_A=$(grep -c 'a$' "$WORK/in.ids" || true)
DRY_RC=0
"$KB" sub dry-run "$WORK/new/proposed.yaml" --since "$SINCE" --samples 2 >"$WORK/dry.out" 2>"$WORK/dry.log" || DRY_RC=$?
check "dry-run: exits 0" eq "$DRY_RC" 0
# read = N1 + N2 + 4 dead letters + 2 redrives; rejected = 3 + 1 + 1 (the as-is redrive)
check "dry-run: events read and rejected" grep -q "^events read=$((N1 + N2 + 6)) rejected=5 (envelope=4 schema=0 validate=1 decode=0) duplicates=0 " "$WORK/dry.out"
check "dry-run: eind-a gets exactly the ids ending in a ($EXP_A)" grep -qx "subscription eind-a events=$EXP_A" "$WORK/dry.out"
check "dry-run: eind-a by type" grep -qx "  type nl.brp.persoon-geboren events=$EXP_A" "$WORK/dry.out"
check "dry-run: field filter gemeente = 0363 gets exactly the $N2" grep -qx "subscription gemeente-filter events=$N2" "$WORK/dry.out"
check "dry-run: another type gets nothing" grep -qx "subscription ander-type events=0" "$WORK/dry.out"
check "dry-run: 2 samples per subscription, field names only" \
  eq "$(grep -c '^sample gemeente-filter id=[0-9a-f-]* type=nl.brp.persoon-geboren time=[0-9TZ:.-]* fields=inschrijving.gemeente,kind.geboortedatum$' "$WORK/dry.out")" 2
check "dry-run: no values on the terminal (no BSN, no gemeente code)" bash -c "! grep -Eq '999[0-9]{6}|0363|0344' <(sed 's/ id=[^ ]*//' '$WORK/dry.out' | grep -v '^subscription\|^  type')"
check "dry-run: delivered nothing" bash -c "! kcat -L -b '$KB_BOOTSTRAP' | grep -q '$(T out.eind-a)'"
"$KB" sub dry-run "$WORK/new/proposed.yaml" --since "$SINCE" --until "$SINCE" >"$WORK/dry2.out" 2>>"$WORK/dry.log"
check "dry-run --until = --since: nothing read" grep -q "^events read=0 " "$WORK/dry2.out"
printf 'subscriptions:\n  - name: x\n    bogus: 1\n' >"$WORK/bad.yaml"
BAD_RC=0
"$KB" sub dry-run "$WORK/bad.yaml" --since "$SINCE" >"$WORK/bad.out" 2>&1 || BAD_RC=$?
check "dry-run: a bad subscription file fails" eq "$BAD_RC" 1
check "dry-run: ... naming file and line" grep -q "bad.yaml:[0-9]" "$WORK/bad.out"

finish
