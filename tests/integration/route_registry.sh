#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# route_registry.sh - a projecting subscriber can decode its own topic with
# the schema registry alone: the router registers every projected schema
# under the id its copies are framed with (subject <topic>-<record name>,
# compatibility NONE); a reload that changes the fields registers a new
# version; a restart with the same subscriptions writes nothing; a
# subscriber name starting with a digit still gives a valid Avro name.
source "$(dirname "$0")/lib.sh"

CT='Content-Type: application/vnd.schemaregistry.v1+json'
SUBS=$WORK/subs
mkdir -p "$SUBS"
cat >"$SUBS/proj.yaml" <<YAML
subscriptions:
  - name: proj
    purpose: {id: p-proj, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.geboortedatum, kind.geslacht]
YAML
cat >"$SUBS/digit.yaml" <<YAML
subscriptions:
  - name: 0599-stat
    purpose: {id: p-stat, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.bsn, inschrijving.gemeente]
    pseudonymise: [kind.bsn]
  - name: volledig
    purpose: {id: p-vol, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
YAML
router() { start "router$1" "$BIN/ketenbus" route --subscriptions "$SUBS" --instance r1 \
  --subject-key-file "$WORK/subject.key"; ROUTER_PID=$LAST_PID; }
router 1
"$BIN/ketenbus" gen --count 20 --seed 3 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
check "proj got 20" wait_for 90 count_is "$(T out.proj)" 20
check "0599-stat got 20" wait_for 30 count_is "$(T out.0599-stat)" 20
check "router logged the registrations" grep -q 'msg="projected schemas registered" schemas=2' "$WORK/router1.log"

start reg "$BIN/ketenbus" schema serve --listen 127.0.0.1:0
check "registry up" wait_for 60 grep -q '^listening on ' "$WORK/reg.log"
URL=$(sed -n 's/^listening on //p' "$WORK/reg.log" | tail -n 1)

# schema id of a framed value: bytes 1-4, big endian
ids_of() { kcat -C -b "$KB_BOOTSTRAP" -t "$1" -e -q -X isolation.level=read_committed -f '%s\n--kb--\n' |
  python3 -c '
import sys
for v in sys.stdin.buffer.read().split(b"\n--kb--\n")[:-1]:
    print(int.from_bytes(v[1:5], "big"))' | sort -u; }
# datum_of TOPIC ID FILE: the datum (framing removed) of a value of TOPIC framed with ID
datum_of() { kcat -C -b "$KB_BOOTSTRAP" -t "$1" -e -q -X isolation.level=read_committed -f '%s\n--kb--\n' |
  python3 -c '
import sys
for v in sys.stdin.buffer.read().split(b"\n--kb--\n")[:-1]:
    if int.from_bytes(v[1:5], "big") == int(sys.argv[1]):
        open(sys.argv[2], "wb").write(v[5:])
        break' "$2" "$3"; }

PID1=$(ids_of "$(T out.proj)")
check "proj's copies all name one schema id" eq "$(echo "$PID1" | wc -l)" 1
check "... a projected id (0x40000000 bit)" test "$((PID1 & 0x40000000))" -ne 0
curl -sf "$URL/schemas/ids/$PID1" >"$WORK/id1.json"
check "the registry resolves that id" test -s "$WORK/id1.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["schema"])' "$WORK/id1.json" >"$WORK/proj1.avsc"
check "... to a record named for subscriber and type" \
  grep -q '"nl.ketenbus.out.proj.PersoonGeboren"' "$WORK/proj1.avsc"
check "... holding the selected fields only" bash -c "grep -q geboortedatum '$WORK/proj1.avsc' && ! grep -q '\"bsn\"' '$WORK/proj1.avsc'"
datum_of "$(T out.proj)" "$PID1" "$WORK/proj1.bin"
check "a copy decodes with the registry's schema (no bytes left)" \
  "$BIN/ketenbus" validate --schema "$WORK/proj1.avsc" --raw "$WORK/proj1.bin"
check "... and not with the full event schema" \
  bash -c "! '$BIN/ketenbus' validate --schema '$SRC/schemas/brp/persoon-geboren.v1.avsc' --raw '$WORK/proj1.bin' >/dev/null 2>&1"
SUBJ="$(T out.proj)-nl.ketenbus.out.proj.PersoonGeboren"
curl -sf "$URL/subjects" >"$WORK/subjects.json"
check "subject <topic>-<record name> listed" grep -qF "\"$SUBJ\"" "$WORK/subjects.json"
check "digit-first subscriber: subject with a valid Avro name" \
  grep -qF "\"$(T out.0599-stat)-nl.ketenbus.out._0599_stat.PersoonGeboren\"" "$WORK/subjects.json"
check "the whole-event subscriber registers nothing" bash -c "! grep -q 'out.volledig' '$WORK/subjects.json'"
check "subject compatibility NONE" bash -c "curl -sf '$URL/config/$SUBJ' | grep -q '\"NONE\"'"
PIDS2=$(ids_of "$(T out.0599-stat)")
curl -sf "$URL/schemas/ids/$PIDS2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["schema"])' >"$WORK/stat.avsc"
datum_of "$(T out.0599-stat)" "$PIDS2" "$WORK/stat.bin"
check "pseudonymising subscriber's copy decodes with its registered schema" \
  "$BIN/ketenbus" validate --schema "$WORK/stat.avsc" --raw "$WORK/stat.bin"

# Restart with the same set: idempotent, nothing written to the schemas topic.
before=$(count "$(T schemas)")
kill "$ROUTER_PID"; wait "$ROUTER_PID" 2>/dev/null || true
router 2
check "restarted router registered again" wait_for 60 grep -q 'projected schemas registered' "$WORK/router2.log"
check "... writing nothing new ($before records)" eq "$(count "$(T schemas)")" "$before"

# Reload with another field list: a new version, the old id still resolves.
sed -i 's/fields: \[kind.geboortedatum, kind.geslacht\]/fields: [kind.geboortedatum]/' "$SUBS/proj.yaml"
check "reload taken" wait_for 30 grep -q 'subscriptions reloaded' "$WORK/router2.log"
"$BIN/ketenbus" gen --count 5 --seed 4 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
check "proj got 25" wait_for 60 count_is "$(T out.proj)" 25
check "two ids on proj's topic now" eq "$(ids_of "$(T out.proj)" | wc -l)" 2
check "subject has version 2" bash -c "curl -sf '$URL/subjects/$SUBJ/versions' | grep -q '^\[1,2\]$'"
PID2=$(ids_of "$(T out.proj)" | grep -vx "$PID1")
check "version 2 is the new id" bash -c "curl -sf '$URL/subjects/$SUBJ/versions/2' | grep -q '\"id\":$PID2'"
check "the old id still resolves" bash -c "curl -sf '$URL/schemas/ids/$PID1' >/dev/null"
datum_of "$(T out.proj)" "$PID2" "$WORK/proj2.bin"
curl -sf "$URL/schemas/ids/$PID2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["schema"])' >"$WORK/proj2.avsc"
check "a new copy decodes with version 2" "$BIN/ketenbus" validate --schema "$WORK/proj2.avsc" --raw "$WORK/proj2.bin"
finish
