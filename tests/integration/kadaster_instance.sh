#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# kadaster_instance.sh - --instance keeps the Kadaster adapter's
# transactional.id across a change of host name, so a restart in a new
# container fences the process before it. Adapter A runs under host name
# vm-a (a UTS namespace of its own), publishes a file and is frozen; adapter
# B starts on the same spool under host name vm-b and publishes one. With
# the same --instance, B's start fences A: A, thawed, is refused by the
# broker as fenced on its next file, makes a new producer and publishes it.
# Without --instance the two ids differ and A is not fenced (the control:
# the check can tell the two apart). Every file is published once.
source "$(dirname "$0")/lib.sh"

if ! unshare -u hostname kb-probe 2>/dev/null; then
  echo "note: unshare -u not permitted here (needs root or CAP_SYS_ADMIN); test skipped"
  exit 77
fi
KFIX=$SRC/tests/fixtures/kadaster
drop() { # drop SPOOL FIXTURE NAME: write-then-rename, as senders must
  cp "$KFIX/$2" "$1/in/.$3" && mv "$1/in/.$3" "$1/in/$3"
}
# kad HOST LOG SPOOL [ARG...]: the adapter under host name HOST, in a UTS
# namespace of its own (unshare and sh exec it: in the background, the
# pid $! is the adapter's), its output in WORK/LOG.log
kad() {
  local host=$1 log=$2 spool=$3
  shift 3
  exec unshare -u sh -c 'hostname "$1" || exit 97; shift; exec "$@"' sh "$host" \
    "$BIN/ketenbus-kadaster" ingest --spool "$spool" --subject-key-file "$WORK/subject.key" \
    "$@" >>"$WORK/$log.log" 2>&1
}
check "the usage names --instance" bash -c \
  "'$BIN/ketenbus-kadaster' ingest --help | grep -q -- '--instance NAME'"
"$BIN/ketenbus-kadaster" ingest --spool "$WORK/x" --subject-key-file "$WORK/subject.key" \
  --instance 'a b' >"$WORK/bad.log" 2>&1 && rc=0 || rc=$?
check "a bad --instance is a usage error (exit 2)" eq "$rc" 2
check "... that says what it takes" grep -q -- "--instance takes 1 to 64" "$WORK/bad.log"

# run LABEL ARG...: the scenario on a spool of its own; prints "fenced" when
# A's log shows it was fenced, else "not-fenced".
run() {
  local label=$1 sp=$WORK/spool-$1
  shift
  mkdir -p "$sp/in"
  (kad vm-a "$label-a" "$sp" "$@") &
  local a=$!
  drop "$sp" 01-verkoop-perceel.xml 001-a.xml
  wait_for 60 bash -c "[[ -z \$(ls '$sp/in') ]]" || echo "A did not take its first file" >&2
  kill -STOP "$a"
  drop "$sp" 02-verkoop-appartementsrecht.xml 002-b.xml
  local brc=0
  (kad vm-b "$label-b" "$sp" "$@" --once) || brc=$?
  # B ran and published its file (else A alone would make the count)
  count_is "$(T in.kadaster)" 2 || echo "B-not-published"
  echo "B-exit-$brc"
  kill -CONT "$a"
  drop "$sp" 05-object-vervallen.xml 003-a.xml
  wait_for 60 bash -c "[[ -z \$(ls '$sp/in') ]]" || echo "A did not take its second file" >&2
  kill -TERM "$a"
  local arc=0
  wait "$a" || arc=$?
  echo "A-exit-$arc"
  if grep -qi 'fenced' "$WORK/$label-a.log"; then echo fenced; else echo not-fenced; fi
}

export KETENBUS_TOPIC_PREFIX=$KETENBUS_TOPIC_PREFIX-named
check "with --instance, B's start fences A (B published, both exited 0)" \
  eq "$(run named --instance kadaster-1 | tr '\n' ' ')" "B-exit-0 A-exit-0 fenced "
check "... and A goes on: every file published once" wait_for 30 count_is "$(T in.kadaster)" 3
check "... all three files done" eq "$(ls "$WORK/spool-named/done" | tr '\n' ' ')" \
  "001-a.xml 002-b.xml 003-a.xml "

export KETENBUS_TOPIC_PREFIX=${KETENBUS_TOPIC_PREFIX%-named}-host
check "without --instance, under two host names, A is not fenced" \
  eq "$(run host | tr '\n' ' ')" "B-exit-0 A-exit-0 not-fenced "
check "... every file published once" wait_for 30 count_is "$(T in.kadaster)" 3
finish
