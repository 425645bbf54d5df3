#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# leakage.sh - no personal data outside authorised payloads, over a full run
# on the real broker: the GBA adapter ingests the fixtures of every life
# event, `ketenbus gen` adds fictitious births, the router serves a full
# subscriber, a projected one and a pseudonymising one, with /metrics on.
# Then: no BSN (any 9999xxxxx), fixture A-nummer, name or address in any
# Kafka key or header on any topic, in any log line or metric label; the
# projected subscriber's payloads hold no BSN or name; the pseudonymising
# subscriber gets its BSN field as a keyed hash. A control shows the full
# subscriber's payloads do carry BSNs, so the searches can find them.
source "$(dirname "$0")/lib.sh"

cat >"$WORK/subs.yaml" <<YAML
subscriptions:
  - name: volledig
    purpose: {id: p-volledig, legal_basis: "test: full events"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd, nl.brp.persoon-verhuisd]
  - name: statistiek
    purpose: {id: p-statistiek, legal_basis: "test: statistics only"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.geboortedatum, kind.geslacht, inschrijving.gemeente]
  - name: pseudo
    purpose: {id: p-pseudo, legal_basis: "test: linkable but not identifying"}
    types: [nl.brp.persoon-geboren]
    fields: [kind.bsn, kind.geboortedatum]
    pseudonymise: [kind.bsn]
YAML
start router "$BIN/ketenbus" route --subscriptions "$WORK/subs.yaml" --instance leak \
  --subject-key-file "$WORK/subject.key" --metrics-addr 127.0.0.1:0
PORT=$(serving_port router)
check "router serves on a port" test -n "$PORT"
mkdir -p "$WORK/gba/in"
i=0
for f in "$FIX"/lg01-geboorte-sophie.lo3 "$FIX"/gv01-moeder-kind-sophie.lo3 "$FIX"/events/*.lo3; do
  i=$((i + 1))
  cp "$f" "$WORK/gba/in/.$i" && mv "$WORK/gba/in/.$i" "$WORK/gba/in/$(printf %03d "$i")-$(basename "$f")"
done
start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key"
"$BIN/ketenbus" gen --count 300 --seed 5 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
check "every fixture left in/" wait_for 60 bash -c "[[ -z \$(ls $WORK/gba/in) ]]"
check "statistiek got all 301 births" wait_for 90 count_is "$(T out.statistiek)" 301
check "pseudo got all 301 births" wait_for 30 count_is "$(T out.pseudo)" 301
sleep 2
curl -sf "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics.txt"

# Everything personal the inputs contain: any test BSN, the fixtures'
# A-nummers, names and addresses, and gen's fictitious names.
anrs=$(cat "$FIX"/lg01-geboorte-sophie.lo3 "$FIX"/gv01-moeder-kind-sophie.lo3 "$FIX"/events/*.lo3 |
  grep -ao '0110010[0-9]\{10\}' | cut -c8- | sort -u | paste -sd'|')
# Numbers count only as whole numbers: the fictitious OIN 00000099999999999000
# in ce_source, hex pseudonyms and decimal metric samples must not look like a BSN.
pii="(^|[^0-9a-f.])(9999[0-9]{5}|${anrs})([^0-9a-f.]|\$)|Sophie|Bakker|Dijk|Daan|Pieter|Proefstraat|3512AB|Proefman|Testerink|Voorbeeld|Fictief|Oefenaar|Steekproef"
check "the personal-data pattern holds the fixtures' A-nummers" bash -c "[[ '$anrs' == *5281301274* ]]"

check "control: the same pattern finds the BSNs in the full subscriber's payloads" bash -c "kcat -C -b $KB_BOOTSTRAP -t $(T out.volledig) -e -q -f '%s\n' | grep -aEq '$pii'"

topics=$(kcat -b "$KB_BOOTSTRAP" -L 2>/dev/null | sed -n "s/^ *topic \"\($KETENBUS_TOPIC_PREFIX\.[^\"]*\)\".*/\1/p")
check "found this run's topics" bash -c "[[ \$(echo '$topics' | wc -w) -ge 6 ]]"
for t in $topics; do
  kcat -C -b "$KB_BOOTSTRAP" -t "$t" -e -q -f 'key=%k headers=%h\n' >"$WORK/kh.txt" 2>/dev/null || true
  check "no personal data in keys/headers of $t" bash -c "! grep -aEq '$pii' $WORK/kh.txt"
done
check "no personal data in any log line" bash -c "! grep -hEq '$pii' $WORK/*.log"
check "no personal data in metric labels" bash -c "! grep -Eq '$pii' $WORK/metrics.txt"
check "statistiek payloads: no BSN, A-nummer, name or address" bash -c "! kcat -C -b $KB_BOOTSTRAP -t $(T out.statistiek) -e -q -f '%s\n' | grep -aEq '$pii'"
check "pseudo payloads: no BSN or name in clear" bash -c "! kcat -C -b $KB_BOOTSTRAP -t $(T out.pseudo) -e -q -f '%s\n' | grep -aEq '$pii'"
check "pseudo payloads: the BSN field is a 64-hex keyed hash" bash -c "kcat -C -b $KB_BOOTSTRAP -t $(T out.pseudo) -e -q -f '%s\n' | grep -aEq '[0-9a-f]{64}'"
finish
