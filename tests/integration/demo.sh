#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# demo.sh - README command 1's program: `ketenbus dev --demo` must exit 0 and
# print the invitation with the mother's and the child's BSN and birth date.
set -uo pipefail
BIN=${1:?usage: $0 BIN_DIR}
out=$("$BIN/ketenbus" dev --demo --timeout 120)
rc=$?
echo "$out"
fails=0
expect() { if grep -Eq "$1" <<<"$out"; then echo "ok   $1"; else echo "FAIL $1" >&2; fails=$((fails + 1)); fi; }
expect '^AKW01[0-9]{12}[0-9]{8}999996204999995303202403150344D'
expect 'BSN ouder +999996204'
expect 'BSN kind +999995303'
expect 'geboortedatum kind +20240315'
expect 'naam geadresseerde +A\.M\. Bakker'
expect 'BSN partner +999997105'
expect 'dead_letters=0 duplicates=0'
if ((rc != 0)); then echo "FAIL exit code $rc" >&2; fails=$((fails + 1)); fi
echo "$((8 - fails)) passed, $fails failed"
((fails == 0))
