# SPDX-License-Identifier: EUPL-1.2
# it.sh - sourced by the security integration tests after lib.sh: gives them
# a secure broker (tests/kafka/broker.sh start --secure). When the environment
# already names one (KB_BOOTSTRAP_SASL_SSL and KB_KAFKA_SECURE_DIR, e.g. from
# `source <state>/env`), the test's topic prefix is granted on it; otherwise a
# private one is started in its own state folder and stopped at exit (about
# 30-45 s). Either way KB_BOOTSTRAP ends up naming that broker's super-user
# PLAINTEXT listener, so lib.sh's count/kcat helpers see the same cluster.
#
# Principals (see README.md "Secure mode"): harness, router, gba, svb,
# kadaster, sub-svb, sub-gemeente; $SEC/<name>-{ssl,sasl,plain}.properties
# are ketenbus --kafka-config files, $SEC/<name>-{ssl,sasl,plain}.kcat the
# same for kcat -F.

SECURE_BROKER="$SRC/tests/kafka/broker.sh"
SECURE_OWN_STATE=""

secure_broker_down() {
  if [[ -n "$SECURE_OWN_STATE" ]]; then
    KB_KAFKA_STATE="$SECURE_OWN_STATE" "$SECURE_BROKER" stop >/dev/null 2>&1 || true
    if ((FAILS == 0)); then rm -rf "$SECURE_OWN_STATE" "$SECURE_OWN_STATE.lock"; fi
  fi
}
trap 'secure_broker_down; cleanup' EXIT

if [[ -n "${KB_BOOTSTRAP_SASL_SSL:-}" && -n "${KB_KAFKA_SECURE_DIR:-}" && -d "${KB_KAFKA_SECURE_DIR:-/nonexistent}" ]]; then
  KB_KAFKA_STATE="${KB_KAFKA_SECURE_DIR%/secure}" "$SECURE_BROKER" grant "$KETENBUS_TOPIC_PREFIX" svb gemeente \
    >>"$WORK/secure-broker.log" 2>&1 || { echo "FAIL: grant on the secure broker" >&2; cat "$WORK/secure-broker.log" >&2; exit 1; }
else
  SECURE_OWN_STATE="/tmp/kb-kafka-secure-it-$$"
  if ! KB_KAFKA_STATE="$SECURE_OWN_STATE" KB_KAFKA_SECURE_SUBSCRIBERS="svb gemeente" \
       "$SECURE_BROKER" start --secure >>"$WORK/secure-broker.log" 2>&1; then
    echo "FAIL: could not start a secure broker" >&2
    tail -n 40 "$WORK/secure-broker.log" >&2
    exit 1
  fi
  # shellcheck disable=SC1090,SC1091
  source "$SECURE_OWN_STATE/env"
fi
SEC=$KB_KAFKA_SECURE_DIR

# Create topics as the harness (super user), so tests need not grant CREATE.
secure_topics() { # TOPIC...
  local t
  for t in "$@"; do
    "$SECURE_BROKER" topics --create --if-not-exists --topic "$t" --partitions 3 \
      >>"$WORK/secure-broker.log" 2>&1
  done
}
if [[ -n "$SECURE_OWN_STATE" ]]; then export KB_KAFKA_STATE="$SECURE_OWN_STATE"; else export KB_KAFKA_STATE="${KB_KAFKA_SECURE_DIR%/secure}"; fi

# kcat as PRINCIPAL over LISTENER (ssl|plain|sasl): kcat_as gba ssl -P -t T
kcat_as() {
  local who=$1 how=$2; shift 2
  local bs=$KB_BOOTSTRAP_SASL_SSL
  [[ $how == ssl ]] && bs=$KB_BOOTSTRAP_SSL
  kcat -b "$bs" -F "$SEC/$who-$how.kcat" -m 15 "$@"
}
