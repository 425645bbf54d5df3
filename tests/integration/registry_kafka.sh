#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# registry_kafka.sh - the schema registry on a real broker: `schema check`
# passes on schemas/ and fails on an incompatible version; `schema register`
# keeps every kb.schemaId; a second instance agrees with the first; ids
# survive a restart; concurrent registrations on two instances end in one
# order both agree on; the Confluent error shape over HTTP.
source "$(dirname "$0")/lib.sh"

CT='Content-Type: application/vnd.schemaregistry.v1+json'

serve() { # serve NAME: start an instance on a free port, set URL_<NAME>
  start "reg-$1" "$BIN/ketenbus" schema serve --listen 127.0.0.1:0
  eval "PID_$1=$LAST_PID"
  wait_for 60 grep -q '^listening on ' "$WORK/reg-$1.log" || return 1
  eval "URL_$1=$(sed -n 's/^listening on //p' "$WORK/reg-$1.log" | tail -n 1)"
}

status() { curl -s -o "$WORK/body" -w '%{http_code}' "$@"; }
jfield() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$WORK/body" "$1"; }

# --- schema check
check "schema check passes on schemas/" "$BIN/ketenbus" schema check "$SRC/schemas"
mkdir -p "$WORK/bad/brp"
cat >"$WORK/bad/brp/v1.avsc" <<'J'
{"type":"record","name":"T","namespace":"it","kb.eventType":"it.t","kb.schemaId":1090,
 "fields":[{"name":"a","type":"string","kb.pattern":"[0-9]{4}"}]}
J
cat >"$WORK/bad/brp/v2.avsc" <<'J'
{"type":"record","name":"T","namespace":"it","kb.eventType":"it.t","kb.schemaId":1091,
 "fields":[{"name":"a","type":"string"},{"name":"b","type":"int"}]}
J
check "schema check refuses an incompatible second version" \
  bash -c "! '$BIN/ketenbus' schema check '$WORK/bad' 2>'$WORK/check.err'"
check "... naming the field" grep -q '/fields/b' "$WORK/check.err"
cat >"$WORK/bad/brp/v2.avsc" <<'J'
{"type":"record","name":"T","namespace":"it","kb.eventType":"it.t","kb.schemaId":1091,
 "fields":[{"name":"a","type":"string","kb.pattern":"[0-9"},{"name":"b","type":"int","default":0}]}
J
check "schema check refuses a broken kb.pattern" \
  bash -c "! '$BIN/ketenbus' schema check '$WORK/bad' 2>'$WORK/check.err'"
check "... naming it" grep -q 'kb.pattern' "$WORK/check.err"

# --- register the folder, keeping the ids
check "instance A up" serve A
check "schemas topic made compacted with one partition" \
  eq "$(topic_config "$(T schemas)" | cut -d' ' -f1,2)" "partitions=1 cleanup.policy=compact"
check "schema register succeeds" "$BIN/ketenbus" schema register --url "$URL_A" "$SRC/schemas"
n_files=$(find "$SRC/schemas" -name '*.avsc' | wc -l)
check "one subject per schema file" eq "$(curl -s "$URL_A/subjects" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "$n_files"
check "GET /schemas/ids/1001 is persoon-geboren" eq "$(status "$URL_A/schemas/ids/1001")" 200
check "... with its kb.schemaId" eq "$(python3 -c 'import json,sys; print(json.loads(json.load(open(sys.argv[1]))["schema"])["kb.schemaId"])' "$WORK/body")" 1001
check "register again is idempotent" "$BIN/ketenbus" schema register --url "$URL_A" "$SRC/schemas"
check "latest of nl.brp.persoon-geboren is id 1001" eq "$(status "$URL_A/subjects/nl.brp.persoon-geboren/versions/latest")" 200
check "... id" eq "$(jfield '["id"]')" 1001
check "unknown subject: 404/40401" eq "$(status "$URL_A/subjects/nope/versions")" 404
check "... error_code" eq "$(jfield '["error_code"]')" 40401
check "unknown id: 404/40403" eq "$(status "$URL_A/schemas/ids/4242")" 404
check "... error_code" eq "$(jfield '["error_code"]')" 40403
check "bad version: 422/42202" eq "$(status "$URL_A/subjects/nl.brp.persoon-geboren/versions/x")" 422
check "invalid schema: 422/42201" eq "$(status -X POST -H "$CT" -d '{"schema":"{\"type\":\"nope\"}"}' "$URL_A/subjects/it.x/versions")" 422
check "... error_code" eq "$(jfield '["error_code"]')" 42201
check "incompatible schema: 409" eq "$(status -X POST -H "$CT" -d '{"schema":"{\"type\":\"record\",\"name\":\"PersoonGeboren\",\"namespace\":\"nl.brp.event\",\"fields\":[{\"name\":\"x\",\"type\":\"int\"}]}"}' "$URL_A/subjects/nl.brp.persoon-geboren/versions")" 409
check "... error_code" eq "$(jfield '["error_code"]')" 409

# --- a second instance agrees; a restarted one too
check "instance B up" serve B
dump() { # the state as seen through REST, one line per subject/version
  local url=$1
  for s in $(curl -s "$url/subjects" | python3 -c 'import json,sys; print(" ".join(sorted(json.load(sys.stdin))))'); do
    for v in $(curl -s "$url/subjects/$s/versions" | python3 -c 'import json,sys; print(" ".join(map(str,json.load(sys.stdin))))'); do
      curl -s "$url/subjects/$s/versions/$v" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["subject"], d["version"], d["id"], len(d["schema"]))'
    done
  done
}
dump "$URL_A" >"$WORK/a.txt"
dump "$URL_B" >"$WORK/b.txt"
check "B sees what A registered" cmp -s "$WORK/a.txt" "$WORK/b.txt"
check "the dump is not empty" test "$(wc -l <"$WORK/a.txt")" -eq "$n_files"

# concurrent registrations of different schemas under one subject, on A and B
curl -s -X PUT -H "$CT" -d '{"compatibility":"NONE"}' "$URL_A/config/it.race" >/dev/null
for i in 1 2 3 4 5; do
  curl -s -X POST -H "$CT" -d "{\"schema\":\"{\\\"type\\\":\\\"fixed\\\",\\\"name\\\":\\\"A$i\\\",\\\"size\\\":$i}\"}" "$URL_A/subjects/it.race/versions" >"$WORK/race-a-$i" &
  curl -s -X POST -H "$CT" -d "{\"schema\":\"{\\\"type\\\":\\\"fixed\\\",\\\"name\\\":\\\"B$i\\\",\\\"size\\\":$i}\"}" "$URL_B/subjects/it.race/versions" >"$WORK/race-b-$i" &
done
wait_jobs() { local j; for j in $(jobs -p); do case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j" ;; esac; done; }
wait_jobs
check "every racing registration got an id" eq "$(cat "$WORK"/race-* | grep -o '"id"' | wc -l)" 10
check "ten versions, no gaps" eq "$(curl -s "$URL_A/subjects/it.race/versions")" "[1,2,3,4,5,6,7,8,9,10]"
dump "$URL_A" >"$WORK/a.txt"
dump "$URL_B" >"$WORK/b.txt"
check "A and B agree after the race" cmp -s "$WORK/a.txt" "$WORK/b.txt"

kill "$PID_A"; wait "$PID_A" 2>/dev/null || true
: >"$WORK/reg-A.log"
check "instance A restarted" serve A
dump "$URL_A" >"$WORK/a2.txt"
check "ids and versions survive the restart" cmp -s "$WORK/a.txt" "$WORK/a2.txt"

finish
