#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# A fuzzing campaign: builds every libFuzzer target in an instrumented build
# folder (clang, whole project under fuzzer-no-link + ASan + UBSan), runs each
# for a given time, folds the inputs that found new coverage back into the
# checked-in corpus with -merge=1 (capped, so the corpus stays a small seed
# set), and prints executions per target. Exits 1 when any target crashed,
# leaked, timed out or ran out of memory; the reproducer is kept and named.
#
#   tests/fuzz/run.sh [-t SECONDS] [-r RUNS] [-b BUILD_DIR] [--no-merge] [--cap N] [TARGET[:SECONDS]...]
#
# No TARGET: every tests/fuzz/<t>/fuzz_<t>.c. TARGET:SECONDS overrides -t.
# -r RUNS stops each target after RUNS executions (the time still caps it).
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
secs=180
build=${KB_FUZZ_BUILD:-$src/build-fuzz}
merge=1
cap=50
runs=()
specs=()

usage() {
    sed -n '10,13p' "$0" | sed 's/^# \{0,1\}//'
    exit "$1"
}
while [ $# -gt 0 ]; do
    case $1 in
    -t) secs=$2; shift 2 ;;
    -b) build=$2; shift 2 ;;
    -r) runs=(-runs="$2"); shift 2 ;;
    --no-merge) merge=0; shift ;;
    --cap) cap=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; usage 2 ;;
    *) specs+=("$1"); shift ;;
    esac
done

if [ ${#specs[@]} -eq 0 ]; then
    for d in "$here"/*/; do
        t=$(basename "$d")
        [ -f "$d/fuzz_$t.c" ] && specs+=("$t")
    done
fi
names=()
for s in "${specs[@]}"; do
    t=${s%%:*}
    if [ ! -f "$here/$t/fuzz_$t.c" ]; then
        echo "run.sh: no fuzz target $t (tests/fuzz/$t/fuzz_$t.c)" >&2
        exit 2
    fi
    names+=("$t")
done

# The instrumented build. -O1 -g without NDEBUG: assertions stay on.
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
if ! grep -q '^KB_FUZZ:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
    cc=$(command -v clang || command -v clang-14) || {
        echo "run.sh: clang not found (apt-get install clang)" >&2
        exit 2
    }
    mkdir -p "$build"
    cmake -S "$src" -B "$build" -DKB_FUZZ=ON -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" \
        -DCMAKE_C_FLAGS="$flags -fno-omit-frame-pointer" >"$build/fuzz-configure.log" 2>&1 || {
        cat "$build/fuzz-configure.log" >&2
        exit 2
    }
fi
build_targets=()
for t in "${names[@]}"; do build_targets+=("fuzz-$t"); done
cmake --build "$build" -j2 --target "${build_targets[@]}" >"$build/fuzz-build.log" 2>&1 || {
    tail -50 "$build/fuzz-build.log" >&2
    exit 2
}
bin=$build/bin

out=$build/fuzz-run
mkdir -p "$out"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -f "$src/tests/lsan.supp" ] && [ -z "${LSAN_OPTIONS:-}" ]; then
    export LSAN_OPTIONS=suppressions=$src/tests/lsan.supp
fi

failed=0
total=0
summary=()
for s in "${specs[@]}"; do
    t=${s%%:*}
    tsecs=$secs
    [ "$s" != "$t" ] && tsecs=${s#*:}
    corpus=$here/$t/corpus
    mkdir -p "$corpus"
    work=$out/$t
    rm -rf "$work"
    mkdir -p "$work/new" "$work/artifacts"
    dict=()
    [ -f "$here/$t/$t.dict" ] && dict=(-dict="$here/$t/$t.dict")
    echo "== fuzz-$t: ${tsecs}s" >&2
    # New inputs go to work/new (first folder); the corpus is only read.
    "$bin/fuzz-$t" -max_total_time="$tsecs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dict[@]}" "${runs[@]}" \
        "$work/new" "$corpus" >"$work/log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)
    execs=${execs:-0}
    total=$((total + execs))
    # slow-unit-* are notes, not failures (a unit over 10 s is a timeout-*,
    # and exits non-zero); a paused fuzzer (SIGSTOP) leaves one behind.
    crash=$(find "$work/artifacts" -type f ! -name 'slow-unit-*' | head -1)
    slow=$(find "$work/artifacts" -type f -name 'slow-unit-*' | wc -l)
    [ "$slow" -gt 0 ] && echo "   fuzz-$t: $slow slow unit(s) noted in $work/artifacts" >&2
    if [ $rc -ne 0 ] || [ -n "$crash" ]; then
        failed=1
        echo "!! fuzz-$t FAILED (exit $rc): ${crash:-no artifact}; log $work/log" >&2
        grep -m3 -E '^(SUMMARY|==[0-9]+==ERROR)|runtime error' "$work/log" >&2
        summary+=("$(printf '%-10s execs=%-11s exec/s=%-7s result=CRASH %s' "$t" "$execs" "${rate:-0}" "${crash:-}")")
        continue
    fi
    added=0
    if [ $merge -eq 1 ] && [ -n "$(ls -A "$work/new")" ]; then
        # Merge into a copy of the corpus: what lands there beyond the copy
        # is what adds coverage (libFuzzer prefers the smaller inputs).
        mkdir -p "$work/merged"
        cp "$corpus"/* "$work/merged"/ 2>/dev/null
        "$bin/fuzz-$t" -merge=1 -timeout=10 -rss_limit_mb=2048 "$work/merged" "$work/new" \
            >"$work/merge.log" 2>&1 || echo "!! fuzz-$t: merge failed, see $work/merge.log" >&2
        have=$(find "$corpus" -maxdepth 1 -type f | wc -l)
        room=$((cap - have))
        while IFS= read -r f; do
            [ $room -le 0 ] && break
            b=$(basename "$f")
            [ -e "$corpus/$b" ] && continue
            cp "$f" "$corpus/$b"
            added=$((added + 1))
            room=$((room - 1))
        done < <(find "$work/merged" -maxdepth 1 -type f -printf '%s %p\n' | sort -n | cut -d' ' -f2-)
    fi
    size=$(find "$corpus" -maxdepth 1 -type f | wc -l)
    summary+=("$(printf '%-10s execs=%-11s exec/s=%-7s result=ok new_in_corpus=%s corpus=%s' "$t" "$execs" "${rate:-0}" "$added" "$size")")
done

echo "-- fuzz campaign (${secs}s per target unless given; logs in $out)"
printf '%s\n' "${summary[@]}"
echo "fuzz-total execs=$total result=$([ $failed -eq 0 ] && echo ok || echo CRASH)"
exit $failed
