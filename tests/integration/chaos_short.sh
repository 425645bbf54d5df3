#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# chaos_short.sh - the short chaos run for the default test run (label
# integration, under 3 minutes): 20,000 events, 3 router kills with kill -9,
# one adapter crash between the Kafka ack and the sender ack, no broker
# restart (the broker is shared with the other tests). The long run with
# broker restart is tests/chaos (label slow); see tests/chaos/README.md.
exec "$(dirname "$0")/../chaos/chaos.sh" "${1:?usage: $0 BIN_DIR}" \
  --events "${KB_CHAOS_SHORT_EVENTS:-20000}" --kills 3 --rate 1000 --no-broker-restart
