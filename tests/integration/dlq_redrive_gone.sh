#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# dlq_redrive_gone.sh - `ketenbus dlq redrive --value` of a dead letter kept
# without its value (kb_value_dropped: the event was too large for the
# dead-letter topic) once retention removed its input, on a real broker.
# The help offers --value for exactly this, but the redrive was refused: it
# always read the input for the value and headers. Now a letter that kept
# the original headers goes back with the corrected value and those
# headers; one that kept neither still needs its input and says so; and
# without --value the refusal says that a corrected value can still go
# back. The letters are written here as the router writes them
# (route.c stage_copy), so no router runs.
source "$(dirname "$0")/lib.sh"

KB=$BIN/ketenbus
IN=$(T in.gba)
DLQ=$(T dlq)

# Two valid events made in a scratch prefix: the first is the one that was
# dead-lettered, the second's bytes serve as the corrected value.
KETENBUS_TOPIC_PREFIX=$KETENBUS_TOPIC_PREFIX-scratch "$KB" gen --count 2 --seed 41 \
  --gemeenten 0599 --subject-key-file "$WORK/subject.key" >"$WORK/gen.log" 2>&1
SCRATCH=$KETENBUS_TOPIC_PREFIX-scratch.in.gba
mapfile -t AT < <(kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -e -q -f '%p %o\n' | head -2)
read -r P0 O0 <<<"${AT[0]}"
read -r P1 O1 <<<"${AT[1]}"
kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -p "$P0" -o "$O0" -c 1 -e -q -f '%s' >"$WORK/event0.bin"
kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -p "$P1" -o "$O1" -c 1 -e -q -f '%s' >"$WORK/fixed.bin"
IFS=',' read -ra HDRS <<<"$(kcat -C -b "$KB_BOOTSTRAP" -t "$SCRATCH" -p "$P0" -o "$O0" -c 1 -e \
  -q -f '%h')"
ID=$(printf '%s\n' "${HDRS[@]}" | sed -n 's/^ce_id=//p')
check "scratch: two events, the first with an id" \
  bash -c "[[ -n '$ID' && -s '$WORK/event0.bin' && -s '$WORK/fixed.bin' ]]"
SHA0=$(sha256sum "$WORK/event0.bin" | cut -d' ' -f1)
LEN0=$(stat -c %s "$WORK/event0.bin")

# gen makes the input topic and the router the dead-letter topic (the broker
# makes none on first use); the router is stopped again before the event
# that is dead-lettered is written.
"$KB" gen --count 1 --seed 43 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
SUBS=$WORK/subs
mkdir -p "$SUBS"
cat >"$SUBS/alle.yaml" <<YAML
subscriptions:
  - name: alle
    purpose: {id: statistiek, legal_basis: "Wet op het CBS art. 33"}
    types: [nl.brp.persoon-geboren]
YAML
start router "$KB" route --subscriptions "$SUBS" --instance r1 \
  --subject-key-file "$WORK/subject.key"
ROUTER=$LAST_PID
has_topic() { ! "$BIN/test_kafka_topics" describe "$1" | grep -q 'partitions=-1'; }
check "router made the topics" wait_for 60 bash -c "$(declare -f has_topic); BIN='$BIN'; \
  has_topic '$IN' && has_topic '$DLQ'"
kill -TERM "$ROUTER"
wait "$ROUTER" 2>/dev/null || true

# The event in the input, then retention removes it (what the broker does
# when its time is up).
HARGS=()
for h in "${HDRS[@]}"; do HARGS+=(-H "$h"); done
kcat -P -b "$KB_BOOTSTRAP" -t "$IN" -p 0 "${HARGS[@]}" "$WORK/event0.bin"
IO=$(kcat -C -b "$KB_BOOTSTRAP" -t "$IN" -p 0 -e -q -f '%o\n' | tail -1)
"$BIN/test_audit" delete-records --topic "$IN" --partition 0 --before $((IO + 1)) >/dev/null
check "input: the event is gone" \
  eq "$(kcat -C -b "$KB_BOOTSTRAP" -t "$IN" -p 0 -e -q -f 'x\n' | grep -c x)" 0

# The router's lean letters about that input offset (kb_value_dropped): with
# the original headers (letter 0) and without them (letter 1).
# A key and no value (-K with nothing after it, -Z: a null value).
CTX=(-H kb_stage=size -H kb_rule=message-too-large -H "kb_topic=$IN" -H kb_partition=0
  -H "kb_offset=$IO" -H "kb_value_dropped=$LEN0" -H "kb_value_sha256=$SHA0")
printf 'subject:\n' | kcat -P -b "$KB_BOOTSTRAP" -t "$DLQ" -p 0 -K: -Z "${HARGS[@]}" "${CTX[@]}"
printf 'subject:\n' | kcat -P -b "$KB_BOOTSTRAP" -t "$DLQ" -p 0 -K: -Z "${CTX[@]}"
check "dead letters: the 2 written" wait_for 30 count_is "$DLQ" 2

# Without --value: refused, and the way out is named.
rc=0
"$KB" dlq redrive 0 >"$WORK/plain.out" 2>"$WORK/plain.log" || rc=$?
check "redrive without --value: refused (exit 1)" eq "$rc" 1
check "redrive without --value: says a corrected value can still go back" \
  grep -q "cannot be read.*a corrected value can still go back with the letter's headers" \
  "$WORK/plain.log"

# With --value: back in the input with the letter's CloudEvents headers.
rc=0
"$KB" dlq redrive 0 --value "$WORK/fixed.bin" >"$WORK/fixed.out" 2>"$WORK/fixed.log" || rc=$?
check "redrive --value: done (exit 0)" eq "$rc" 0
FIXED_LEN=$(wc -c <"$WORK/fixed.bin")
check "redrive --value: reports the corrected value" \
  grep -q "^redriven $DLQ/0/0 -> $IN/[0-9]*/[0-9]* value=corrected bytes=$FIXED_LEN " \
  "$WORK/fixed.out"
AT=$(sed -n "s|^redriven $DLQ/0/0 -> $IN/\([0-9]*\)/\([0-9]*\) .*|\1 \2|p" "$WORK/fixed.out")
read -r RP RO <<<"${AT:-0 0}"
kcat -C -b "$KB_BOOTSTRAP" -t "$IN" -p "$RP" -o "$RO" -c 1 -e -q -f '%s' >"$WORK/back.bin"
check "input: the corrected value" cmp -s "$WORK/back.bin" "$WORK/fixed.bin"
kcat -C -b "$KB_BOOTSTRAP" -t "$IN" -p "$RP" -o "$RO" -c 1 -e -q -f '%h\n' | tr ',' '\n' \
  >"$WORK/back.hdrs"
check "input: the letter's ce_id" grep -qx "ce_id=$ID" "$WORK/back.hdrs"
check "input: every CloudEvents header of the original" \
  eq "$(grep -c '^ce_' "$WORK/back.hdrs")" "$(printf '%s\n' "${HDRS[@]}" | grep -c '^ce_')"
check "input: kb_redriven_from names the letter" grep -qx "kb_redriven_from=$DLQ/0/0" \
  "$WORK/back.hdrs"
check "input: no other kb_* header" eq "$(grep -c '^kb_' "$WORK/back.hdrs")" 1

# A letter without its headers: the value alone would lack the envelope.
rc=0
"$KB" dlq redrive 1 --value "$WORK/fixed.bin" >"$WORK/bare.out" 2>"$WORK/bare.log" || rc=$?
check "redrive --value of a letter without headers: refused (exit 1)" eq "$rc" 1
check "redrive --value of a letter without headers: says why" \
  grep -q "CloudEvents headers, which a corrected value still needs" "$WORK/bare.log"
check "input: nothing more redriven" eq "$(header_values "$IN" kb_redriven_from | wc -l)" 1

finish
