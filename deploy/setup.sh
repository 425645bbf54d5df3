#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# deploy/setup.sh - install the Debian packages ketenbus needs (only those
# missing), then configure and build with CMake. Idempotent; a second run
# with nothing missing only rebuilds what changed.
#
# Environment:
#   KB_BUILD_DIR    build folder (default: <repo>/build)
#   KB_CMAKE_ARGS   extra CMake arguments, e.g. "-DKB_SANITIZE=ON -DKB_WERROR=ON"
#   KB_TEST_DEPS=1  also install what the tests need (Java, Maven, kcat, clang)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${KB_BUILD_DIR:-$root/build}

packages=(build-essential cmake pkg-config
          librdkafka-dev libavro-dev libevent-dev libssl-dev libyaml-dev libjansson-dev libxml2-dev libjemalloc-dev
          libarchive-dev)
if [[ "${KB_TEST_DEPS:-0}" == 1 ]]; then
  # The real Kafka broker of the tests runs on Java from Maven Central jars;
  # kcat inspects topics; clang builds the libFuzzer targets (its sanitizer
  # and libFuzzer runtimes are libclang-rt-dev, only recommended); promtool
  # (prometheus) checks the metrics output; yamllint checks deploy/;
  # headless chromium renders the router's dashboard in its test.
  packages+=(openjdk-17-jre-headless maven kcat clang libclang-rt-dev bc jq curl prometheus yamllint
             openssl strace valgrind chromium)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}" >&2
  if [[ $(id -u) != 0 ]]; then
    echo "[setup] error: packages are missing and this is not root; run as root or install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "[setup] all Debian packages present" >&2
fi

# shellcheck disable=SC2086 # KB_CMAKE_ARGS is a list of arguments
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${KB_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)" -- --no-print-directory >/dev/null
echo "[setup] built into $build" >&2
