#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# deploy/test.sh - README command 2 and what CI runs: install what is
# missing, build once with ASan+UBSan and -Werror, start a real Apache Kafka
# broker (tests/kafka/broker.sh), run every test with ctest except those
# labelled slow, stop the broker, exit with the tests' result.
#
# Environment: KB_CTEST_ARGS adds ctest arguments (e.g. "-L unit").
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KB_BUILD_DIR:-$root/build-test}

KB_TEST_DEPS=1 KB_BUILD_DIR="$build" \
  KB_CMAKE_ARGS="-DKB_SANITIZE=ON -DKB_WERROR=ON -DCMAKE_BUILD_TYPE=Debug" \
  "$root/deploy/setup.sh"

"$root/tests/kafka/broker.sh" start
trap '"$root/tests/kafka/broker.sh" stop' EXIT
# shellcheck disable=SC1091
source "${KB_KAFKA_STATE:-/tmp/ketenbus-kafka}/env"
export KB_BOOTSTRAP KB_REQUIRE_BROKER=1
echo "[test] Kafka broker at $KB_BOOTSTRAP" >&2

# ASan: report leaks of our own code; librdkafka's threads and avro-c's
# static state are not ours and are suppressed in tests/lsan.supp.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

cd "$build"
set +e
# shellcheck disable=SC2086
ctest --output-on-failure --timeout 900 -LE slow ${KB_CTEST_ARGS:-}
rc=$?
set -e
exit $rc
