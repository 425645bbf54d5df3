#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
# kafka_topics.sh - topic creation of kafka.c on a real broker: per-topic
# partitions (-1 is the broker's num.partitions) and configs (compacted,
# kept forever), existing topics left as they are, a refused config named
# (test_kafka_topics broker mode, which reads every topic back).
source "$(dirname "$0")/lib.sh"

"$BIN/test_kafka_topics" broker >"$WORK/topics.log" 2>&1 && rc=0 || rc=$?
check "topics created with their partitions and configs (test_kafka_topics broker)" eq "$rc" 0
finish
