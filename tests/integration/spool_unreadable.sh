#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# spool_unreadable.sh - a spool file that cannot be read holds up no file
# behind it, in each adapter (gba, svb, kadaster): the later file is
# published and moved to done/ while the unreadable one waits, the adapter
# logs the errno (not the name), and after a few failed scans the file goes
# to quarantine/ with the reason. Before, gba and svb stopped every scan at
# that file without a word, so every later file waited for ever. The tests
# run as root, who reads any file whatever its mode, so the failure is a
# write lease held on the file (an open with O_NONBLOCK, as the spool does,
# fails with EWOULDBLOCK until the lease is released, as with a Samba
# share's lease).
source "$(dirname "$0")/lib.sh"

# hold_lease TAG FILE: a process holding a write lease on FILE (SIGIO, the
# "lease broken" notice, ignored). The kernel revokes a lease
# /proc/sys/fs/lease-break-time after the first open tried to break it (45 s
# by default): every wait below must end well before that, or the file
# becomes readable and proves nothing.
BREAK=$(cat /proc/sys/fs/lease-break-time 2>/dev/null || echo 0)
if ((BREAK < 30)); then
  echo "SKIP: /proc/sys/fs/lease-break-time is $BREAK s, too short for this test" >&2
  exit 77
fi
hold_lease() {
  local tag=$1 file=$2
  start "lease-$tag" perl -e 'use Fcntl; $SIG{IO} = "IGNORE";
    sysopen(my $fh, $ARGV[0], O_RDONLY) or die "open: $!";
    fcntl($fh, 1024, F_WRLCK) or die "F_SETLEASE: $!";   # 1024 = F_SETLEASE
    $| = 1; print "held\n"; sleep 120;' "$file"
  wait_for 10 grep -qs '^held$' "$WORK/lease-$tag.log"
}

# run_case TAG ADAPTER EXT GOOD_FIXTURE [ARGS...]: one unreadable and one
# good file in the spool of ADAPTER.
run_case() {
  local tag=$1 adapter=$2 ext=$3 good=$4
  shift 4
  local sp=$WORK/$tag
  mkdir -p "$sp/in"
  cp "$good" "$sp/in/.001-onleesbaar.$ext"
  mv "$sp/in/.001-onleesbaar.$ext" "$sp/in/001-onleesbaar.$ext"
  cp "$good" "$sp/in/.002-goed.$ext"
  check "$tag: lease held on the first file" hold_lease "$tag" "$sp/in/001-onleesbaar.$ext"
  local lease=$LAST_PID
  start "$tag" "$BIN/$adapter" ingest --spool "$sp" --subject-key-file "$WORK/subject.key" "$@"
  mv "$sp/in/.002-goed.$ext" "$sp/in/002-goed.$ext"
  # the adapter's first scan starts the lease's break time
  check "$tag: adapter started" \
    wait_for 30 grep -qs 'msg="\(adapter\|ingest\) started"' "$WORK/$tag.log"
  check "$tag: the file behind the unreadable one reaches done/" \
    wait_for 20 test -f "$sp/done/002-goed.$ext"
  check "$tag: the unreadable file goes to quarantine/" \
    wait_for 15 test -f "$sp/quarantine/001-onleesbaar.$ext"
  check "$tag: ... with the errno in its reason" \
    grep -q "^unreadable: .*(errno 11) on 3 reads in a row; not read$" \
    "$sp/quarantine/001-onleesbaar.$ext.reason"
  check "$tag: in/ is empty" eq "$(ls "$sp/in" | wc -l)" 0
  check "$tag: each failed read was logged with its errno" \
    grep -q 'msg="cannot read spool file; skipped this scan" errno=11' "$WORK/$tag.log"
  check "$tag: the quarantine was logged" \
    grep -q 'msg="cannot read spool file; quarantined unread" errno=11' "$WORK/$tag.log"
  check "$tag: the log does not name the file" bash -c "! grep -q onleesbaar '$WORK/$tag.log'"
  kill "$lease" 2>/dev/null || true
}

run_case gba ketenbus-gba lo3 "$FIX/lg01-geboorte-sophie.lo3"
check "gba: the good file's event is in kb.in.gba" wait_for 30 count_is "$(T in.gba)" 1

run_case svb ketenbus-svb akw02 "$SRC/tests/fixtures/svb/aanvragen-goed.akw02"
check "svb: the good file's events are in kb.in.svb" wait_for 30 count_is "$(T in.svb)" 2

if [[ -x "$BIN/ketenbus-kadaster" ]]; then
  run_case kadaster ketenbus-kadaster xml "$SRC/tests/fixtures/kadaster/01-verkoop-perceel.xml"
  nonempty() { (($(count "$1") > 0)); }
  check "kadaster: the good file's events are in kb.in.kadaster" \
    wait_for 30 nonempty "$(T in.kadaster)"
fi
finish
