#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# demo_release.sh - the build README command 1 makes (RelWithDebInfo, no
# sanitizers) differs from the test build: it links jemalloc instead of the
# sanitizers' allocator. Build that configuration's `ketenbus` in a scratch
# folder (with the adapters `ketenbus dev` starts), check which allocator it
# got, and run the demo test on it.
set -uo pipefail
src=${KB_SOURCE_DIR:?KB_SOURCE_DIR must name the source tree}
work=$(mktemp -d /tmp/kb-demo-release.XXXXXX)
trap 'rm -rf "$work"' EXIT
if ! cmake -S "$src" -B "$work" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKB_WERROR=ON >"$work/cmake.log" 2>&1 ||
   ! make -C "$work" -j"$(nproc)" ketenbus ketenbus-gba ketenbus-svb ketenbus-kadaster \
       >"$work/make.log" 2>&1; then
  tail -n 30 "$work"/cmake.log "$work"/make.log >&2
  echo "FAIL release build of ketenbus" >&2
  exit 1
fi
libs=$(ldd "$work/bin/ketenbus") # whole, so no early-closing grep meets pipefail
if ! grep -q 'libjemalloc' <<<"$libs"; then
  echo "FAIL the release ketenbus does not link jemalloc" >&2
  exit 1
fi
echo "ok   release ketenbus links jemalloc"
exec "$src/tests/integration/demo.sh" "$work/bin"
