#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# validate_container.sh - `ketenbus validate` reads Avro object container files
# from integration teams, so from outside: whatever a block's datum count
# claims, the command ends at once with a verdict or a clear error. A schema
# whose datums take no bytes (here {"type":"null"}) lets a block of 0 bytes
# claim 2^62 datums; they used to be validated one by one (thousands of years).
# Every command runs under `timeout 20`, far above the few milliseconds it
# takes now. The files are written here byte by byte; no broker is needed.
set -euo pipefail
BIN=${1:?usage: $0 BIN_DIR}
KB=$BIN/ketenbus
WORK=$(mktemp -d /tmp/kb-it-validate_container-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PASSED=0
FAILED=0

# expect DESCRIPTION STATUS TEXT SCHEMA DATA: `ketenbus validate` of WORK/DATA
# against WORK/SCHEMA exits with STATUS within 20 s, TEXT in its output.
expect() {
  local what=$1 want_rc=$2 want=$3 out rc=0
  out=$(timeout 20 "$KB" validate --schema "$WORK/$4" "$WORK/$5" 2>&1 </dev/null) || rc=$?
  if [[ $rc == "$want_rc" && $out == *"$want"* ]]; then
    echo "ok   $what"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL $what" >&2
    echo "     exit status $rc (expected $want_rc), output: $out (expected: $want)" >&2
    FAILED=$((FAILED + 1))
  fi
}

# Container framing: magic, metadata {avro.schema: "null"}, end of map, sync.
SYNC='ZZZZZZZZZZZZZZZZ'
header() { printf 'Obj\x01\x02\x16avro.schema\x0c"null"\x00%s' "$SYNC"; }
# block COUNT_VARINT DATA_SIZE_VARINT DATA (printf escapes): one block with its sync.
block() { printf "$1$2$3%s" "$SYNC"; }

echo '{"type":"null"}' >"$WORK/null.avsc"
echo '{"type":"boolean"}' >"$WORK/boolean.avsc"

# 2^62 datums in 0 bytes (count varint: zigzag 2^63 in ten bytes).
{ header; block '\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01' '\x00' ''; } >"$WORK/2e62.avro"
expect "2^62 datums of no bytes: refused at once, exit 2" \
  2 'block at file offset 41 claims 4611686018427387904 datums in 0 bytes' \
  null.avsc 2e62.avro
# 100,001 datums in 0 bytes: one over the limit (validator's max_items).
{ header; block '\xc2\x9a\x0c' '\x00' ''; } >"$WORK/100001.avro"
expect "100,001 datums of no bytes in one block: refused (limit 100000)" \
  2 '(more datums than bytes: limit 100000)' null.avsc 100001.avro
# Three blocks of 100,000 datums of no bytes each: a legitimate file.
{ header; for _ in 1 2 3; do block '\xc0\x9a\x0c' '\x00' ''; done; } >"$WORK/300000.avro"
expect "3 blocks of 100,000 datums of no bytes: counted, valid" \
  0 '300000 datums, 0 invalid, 0 not checked' null.avsc 300000.avro
# 5 datums of no bytes in a block of 5 bytes: the bytes are left over.
{ header; block '\x0a' '\x0a' '\x00\x00\x00\x00\x00'; } >"$WORK/left-over.avro"
expect "5 datums of no bytes in 5 bytes: bytes after the last datum" \
  1 'block at file offset 41: 5 bytes after its last datum' null.avsc left-over.avro
# A boolean schema: 2^62 datums claimed in 3 bytes.
{ header; block '\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01' '\x06' '\x00\x01\x00'; } \
  >"$WORK/boolean-2e62.avro"
expect "2^62 booleans in 3 bytes: refused at once, exit 2" \
  2 'claims 4611686018427387904 datums in 3 bytes' boolean.avsc boolean-2e62.avro
# An invalid datum is counted with the ones it leaves unchecked, and the next
# block's datums keep their numbers: 3 + 2 booleans, datums 0 and 4 invalid.
{ header; block '\x06' '\x06' '\x02\x01\x00'; block '\x04' '\x04' '\x01\x02'; } \
  >"$WORK/boolean-invalid.avro"
expect "3 + 2 booleans, the first of each block invalid: 5 datums, 2 invalid, 2 not checked" \
  1 '5 datums, 2 invalid, 2 not checked' boolean.avsc boolean-invalid.avro
expect "3 + 2 booleans: the second block's invalid datum is datum 4" \
  1 'datum 4: invalid rule=boolean' boolean.avsc boolean-invalid.avro
# A codec name from the file is printed escaped: one line, no control bytes.
{ printf 'Obj\x01\x02\x14avro.codec\x0ca\nb\x1b[m\x00%s' "$SYNC"; } >"$WORK/codec.avro"
expect "codec a<LF>b<ESC>[m: refused with the name escaped" \
  2 'ketenbus validate: codec "a\x0ab\x1b[m" not supported' null.avsc codec.avro

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
