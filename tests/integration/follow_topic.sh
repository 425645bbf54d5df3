#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# follow_topic.sh - a follow list kept in a compacted topic, on a real
# broker: `ketenbus sub follow` adds the fixture child (BSN 999995303) with a
# period, the router delivers only that person's events to the following
# subscriber (others from `ketenbus gen` go to the control subscriber
# only), dry-run judges the same way, and after `--remove` (a tombstone)
# the router refreshes the list between transactions and no longer
# delivers the person's next event. No BSN in any key, header, value of the
# follow topic, or log.
source "$(dirname "$0")/lib.sh"

BSN=999995303
SUBS=$WORK/subs.yaml
cat >"$SUBS" <<YAML
subscriptions:
  - name: volg
    purpose: {id: toezicht, legal_basis: "test"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]
    follow: {topic: volgers}
  - name: later
    purpose: {id: toezicht, legal_basis: "test"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]
    follow: {topic: later}
  - name: alle
    purpose: {id: controle, legal_basis: "test"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]
YAML

# Bad input is refused without echoing the identifier.
"$BIN/ketenbus" sub follow --topic volgers --bsn 999995304 --subject-key-file "$WORK/subject.key" \
  >"$WORK/bad.out" 2>"$WORK/bad.err" && rc=0 || rc=$?
check "an invalid BSN is refused (exit 2)" eq "$rc" 2
check "... without echoing it" bash -c "! grep -q 999995304 $WORK/bad.out $WORK/bad.err"

"$BIN/ketenbus" sub follow --topic volgers --bsn $BSN --from 2020-01-01 --until 2099-01-01 \
  --subject-key-file "$WORK/subject.key" >"$WORK/follow-add.log" 2>&1 && rc=0 || rc=$?
check "sub follow adds the person (exit 0)" eq "$rc" 0
PSEUDO=$(sed -n 's/^follow: subject \([0-9a-f]*\) followed.*/\1/p' "$WORK/follow-add.log")
check "sub follow printed the pseudonym (32 hex)" bash -c "[[ '$PSEUDO' =~ ^[0-9a-f]{32}$ ]]"
check "follow topic holds key=pseudonym value=period" \
  eq "$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T follow.volgers)" -e -q -f '%k=%s\n')" "$PSEUDO=2020-01-01,2099-01-01"

start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance follow-it \
  --subject-key-file "$WORK/subject.key" --no-audit -X session.timeout.ms=6000
check "router loaded the list (1 subject)" wait_for 60 grep -q 'follow list loaded.*volgers subjects=1' "$WORK/router.log"
check "a follow topic that does not exist yet is an empty list" \
  wait_for 30 grep -q 'follow topic does not exist (yet).*follow.later' "$WORK/router.log"
# Made after the router started: picked up by the refresh (open period).
"$BIN/ketenbus" sub follow --topic later --bsn $BSN --subject-key-file "$WORK/subject.key" \
  >"$WORK/follow-later.log" 2>&1 && rc=0 || rc=$?
check "sub follow creates the topic (exit 0)" eq "$rc" 0
check "... compacted, with one partition" \
  eq "$(topic_config "$(T follow.later)" | cut -d' ' -f1,2)" "partitions=1 cleanup.policy=compact"
check "router refreshed the new topic (1 subject)" \
  wait_for 30 grep -q 'follow list refreshed.*follow.later subjects=1' "$WORK/router.log"

"$BIN/ketenbus" gen --count 20 --seed 7 --subject-key-file "$WORK/subject.key" >>"$WORK/gen.log" 2>&1
mkdir -p "$WORK/gba/in"
start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key"
cp "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/in/.1" && mv "$WORK/gba/in/.1" "$WORK/gba/in/001-lg01.lo3"
check "control subscriber got all 21 events" wait_for 90 count_is "$(T out.alle)" 21
check "following subscriber got exactly 1 event" wait_for 10 count_is "$(T out.volg)" 1
check "the other follower too" count_is "$(T out.later)" 1
birth_id=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -f '%h\n' | tr ',' '\n' |
  awk -F= -v p="$PSEUDO" '$1=="ce_id"{id=$2} $1=="ce_subject" && $2==p {print id}' | head -1)
check "the person's event is on the input with the followed pseudonym as ce_subject" \
  bash -c "[[ -n '$birth_id' ]]"
check "... and it is the one delivered" eq "$(header_values "$(T out.volg)" ce_id)" "$birth_id"

# Dry-run reads the same list.
"$BIN/ketenbus" sub dry-run "$SUBS" --since 2020-01-01 --subject-key-file "$WORK/subject.key" >"$WORK/dryrun.out" 2>"$WORK/dryrun.log" && rc=0 || rc=$?
check "dry-run (exit 0)" eq "$rc" 0
check "dry-run: volg would get 1 event" grep -q '^subscription volg events=1$' "$WORK/dryrun.out"
check "dry-run: later would get 1 event" grep -q '^subscription later events=1$' "$WORK/dryrun.out"
check "dry-run: alle would get 21 events" grep -q '^subscription alle events=21$' "$WORK/dryrun.out"

# Tombstone: the router notices the moved end offset and re-reads.
"$BIN/ketenbus" sub follow --topic volgers --remove --bsn $BSN \
  --subject-key-file "$WORK/subject.key" >"$WORK/follow-remove.log" 2>&1 && rc=0 || rc=$?
check "sub follow --remove (exit 0)" eq "$rc" 0
check "the tombstone is on the topic (key, null value)" \
  bash -c "kcat -C -b $KB_BOOTSTRAP -t $(T follow.volgers) -e -q -Z -f '%k=%s\n' | tail -1 | grep -qx '$PSEUDO=NULL'"
check "router refreshed the list (0 subjects)" wait_for 30 grep -q 'follow list refreshed.*follow.volgers subjects=0' "$WORK/router.log"
# Another birth message on the child's own PL (the Gv01 fixture is on the
# mother's PL: its subject is the mother), so the subject is the person's.
cp "$FIX/kinds/Lg01.lo3" "$WORK/gba/in/.2" && mv "$WORK/gba/in/.2" "$WORK/gba/in/002-lg01.lo3"
check "control subscriber got the new event (22)" wait_for 90 count_is "$(T out.alle)" 22
n_subj=$(kcat -C -b "$KB_BOOTSTRAP" -t "$(T in.gba)" -e -q -f '%h\n' | tr ',' '\n' | grep -c "^ce_subject=$PSEUDO$" || true)
check "the new event is the same person's (2 input events with the pseudonym)" eq "$n_subj" 2
check "after the tombstone, it is not delivered to volg (still 1)" count_is "$(T out.volg)" 1
check "... while a subscriber still following the person got it (2)" count_is "$(T out.later)" 2
check "the router did not stop" kill -0 "${PIDS[0]}"

# No BSN anywhere: keys, headers, follow topic values, logs.
for t in in.gba out.volg out.later out.alle follow.volgers follow.later dlq; do
  keys_and_headers "$(T "$t")" >>"$WORK/keys-headers.txt"
done
for t in follow.volgers follow.later; do
  kcat -C -b "$KB_BOOTSTRAP" -t "$(T $t)" -e -q -f '%s\n' >>"$WORK/keys-headers.txt" 2>/dev/null || true
done
check "keys and headers were read" bash -c "[[ \$(wc -l <$WORK/keys-headers.txt) -ge 49 ]]"
check "no BSN in any key, header or follow value" \
  bash -c "! grep -qE '(^|[^0-9a-zA-Z])9999[0-9]{5}([^0-9a-zA-Z]|\$)' $WORK/keys-headers.txt"
check "no BSN in any log or output" bash -c "! grep -l $BSN $WORK/*.log $WORK/*.out"
finish
