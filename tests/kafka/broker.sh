#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# A real single-node Apache Kafka broker (KRaft combined mode, plaintext on 127.0.0.1)
# for ketenbus's integration tests. Needs Java 17+, Maven (first run only: fetches the
# broker's jars from Maven Central into a cache outside the repository) and kcat.
#
#   broker.sh start          fresh broker; prints its bootstrap address (host:port)
#   broker.sh start --secure the same plus an SSL and a SASL_SSL (SCRAM-SHA-512)
#                            listener, the StandardAuthorizer, a test PKI and
#                            users and ACLs per role (see README.md "Secure mode")
#   broker.sh grant PREFIX [SUBSCRIBER...]
#                            (secure mode) users, certificates and ACLs of every role
#                            for topic prefix PREFIX, subscribers named as given
#   broker.sh stop           stops it (no error when not running)
#   broker.sh restart        stops it and starts it again on the same state folder,
#                            ports and data (topics, offsets, transactions are kept)
#   broker.sh status         exit 0 and print the bootstrap when running, else exit 1
#   broker.sh env            print the env file (export KB_BOOTSTRAP=...)
#   broker.sh fetch          only make sure the jars are in the cache
#   broker.sh topics ARGS    run Kafka's TopicCommand against the running broker,
#                            e.g. `broker.sh topics --create --topic t --partitions 3`
#
# Environment (all optional):
#   KB_CACHE_DIR            jar cache root            (/var/cache/ketenbus)
#   KB_KAFKA_STATE          state folder              (/tmp/ketenbus-kafka)
#   KB_KAFKA_VERSION        Kafka version             (kafka.version in pom.xml)
#   KB_KAFKA_START_TIMEOUT  seconds to wait for ready (180)
#   KB_KAFKA_STOP_TIMEOUT   seconds before SIGKILL    (30)
#   KB_KAFKA_PORT           client port               (a free one is picked)
#   KB_KAFKA_CONTROLLER_PORT controller port          (a free one is picked)
#   KB_KAFKA_HEAP           JVM heap options          (-Xms256m -Xmx768m)
#   KB_KAFKA_JAVA_OPTS      extra JVM options
#   KB_JAVA                 java binary               (java on PATH, else JAVA_HOME)
#   KB_KAFKA_EXTRA_PROPS    file appended to server.properties
#   KB_KAFKA_SECURE_SUBSCRIBERS  (--secure) subscribers granted at start (svb gemeente)
#   KETENBUS_TOPIC_PREFIX   (--secure) topic prefix granted at start (kb)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/pom.xml"

log() { printf '[kafka] %s\n' "$*" >&2; }
die() { printf '[kafka] ERROR: %s\n' "$*" >&2; exit 1; }

pom_version() {
  sed -n 's:.*<kafka\.version>\(.*\)</kafka\.version>.*:\1:p' "$POM" | head -n1
}

KAFKA_VERSION="${KB_KAFKA_VERSION:-$(pom_version)}"
[[ -n "$KAFKA_VERSION" ]] || die "no kafka.version in $POM"
CACHE_ROOT="${KB_CACHE_DIR:-/var/cache/ketenbus}"
CACHE="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$CACHE/libs"
MARKER="$CACHE/.complete"
STATE="${KB_KAFKA_STATE:-/tmp/ketenbus-kafka}"
STATE="${STATE%/}"
[[ -n "$STATE" && "$STATE" != "/" ]] || die "KB_KAFKA_STATE must not be /"
STATE_TAG="$STATE/.ketenbus-kafka-state"
PIDFILE="$STATE/broker.pid"
ENVFILE="$STATE/env"
BROKER_LOG="$STATE/broker.log"
PROPS="$STATE/server.properties"
START_TIMEOUT="${KB_KAFKA_START_TIMEOUT:-180}"
STOP_TIMEOUT="${KB_KAFKA_STOP_TIMEOUT:-30}"
SECURE=0                       # start --secure
SECDIR="$STATE/secure"         # PKI, passwords and client properties (secure mode)
SECURE_HELPERS="$HERE/secure"

# ---------------------------------------------------------------- helpers

# version_ge A B: true when dotted version A >= B (numeric parts only).
version_ge() {
  local IFS=.
  local -a a=($1) b=($2)
  local i x y
  for i in 0 1 2; do
    x="${a[i]:-0}"; y="${b[i]:-0}"
    x="${x%%[!0-9]*}"; y="${y%%[!0-9]*}"
    (( ${x:-0} > ${y:-0} )) && return 0
    (( ${x:-0} < ${y:-0} )) && return 1
  done
  return 0
}

find_java() {
  if [[ -n "${KB_JAVA:-}" ]]; then JAVA="$KB_JAVA"
  elif command -v java >/dev/null 2>&1; then JAVA="$(command -v java)"
  elif [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"
  else die "no java found (install a JDK 17+, or set KB_JAVA)"
  fi
  local v
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$v" ]] || die "cannot tell the version of $JAVA"
  if version_ge "$KAFKA_VERSION" 4.0 && (( v < 17 )); then
    die "Kafka $KAFKA_VERSION needs Java 17+, $JAVA is Java $v (set KB_JAVA)"
  fi
}

need_kcat() {
  command -v kcat >/dev/null 2>&1 || die "kcat not found (Debian: apt-get install kcat)"
}

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

# Jars into $LIBS, once. The marker holds the version and the pom's hash and is
# written only after a complete copy, so a half-finished or outdated copy is redone.
fetch_jars() {
  local want; want="$KAFKA_VERSION $(pom_hash)"
  if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$want" && -d "$LIBS" ]]; then
    return 0
  fi
  mkdir -p "$CACHE" 2>/dev/null || die "cannot create $CACHE (set KB_CACHE_DIR to a writable folder)"
  exec 8>"$CACHE/.lock"
  flock 8
  if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$want" && -d "$LIBS" ]]; then
    exec 8>&-; return 0   # another process fetched them while we waited
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to fetch the Kafka jars)"
  log "fetching Kafka $KAFKA_VERSION jars into $LIBS (Maven Central)"
  rm -f "$MARKER"
  rm -rf "$LIBS" "$CACHE/work"
  # Run Maven on a copy of the pom inside the cache, so nothing (target/) lands in the repo.
  mkdir -p "$CACHE/work"
  cp "$POM" "$CACHE/work/pom.xml"
  local rc=0
  (cd "$CACHE/work" && mvn -q -B -Dstyle.color=never -Dkafka.version="$KAFKA_VERSION" \
     dependency:copy-dependencies -DoutputDirectory="$LIBS") >"$CACHE/mvn.log" 2>&1 || rc=$?
  # Maven 3.8 prints bare colour resets even with -q; show only real text.
  sed 's/\x1b\[[0-9;]*m//g' "$CACHE/mvn.log" | grep -v '^[[:space:]]*$' >&2 || true
  if (( rc != 0 )); then
    exec 8>&-
    die "mvn dependency:copy-dependencies failed for Kafka $KAFKA_VERSION (log: $CACHE/mvn.log)"
  fi
  [[ -f "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" ]] || { exec 8>&-; die "kafka_2.13-$KAFKA_VERSION.jar missing after copy"; }
  rm -rf "$CACHE/work"
  printf '%s\n' "$want" >"$MARKER"
  exec 8>&-
  log "jars ready ($(ls "$LIBS" | wc -l) files)"
}

# True when PID $1 is alive and is a kafka.Kafka JVM using this state folder's properties.
is_our_broker() {
  local pid="$1"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$PROPS"* ]]
}

broker_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(cat "$PIDFILE" 2>/dev/null)"
  is_our_broker "$pid" || return 1
  printf '%s\n' "$pid"
}

lock_state() {
  mkdir -p "$(dirname "$STATE")"
  exec 9>"$STATE.lock"
  flock 9
}

# Local TCP ports in use (any state, IPv4 and IPv6), one decimal number a line.
ports_in_use() {
  local f hex
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r "$f" ]] || continue
    while read -r _ local_addr _; do
      hex="${local_addr##*:}"
      [[ "$hex" =~ ^[0-9A-Fa-f]+$ ]] && printf '%d\n' "0x$hex"
    done <"$f"
  done
}

port_free() {
  local p="$1" used
  used="$(ports_in_use)"
  if grep -qx "$p" <<<"$used"; then return 1; fi
  # Belt and braces: nothing answers on it.
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then return 1; fi
  return 0
}

# pick_port EXCLUDE: a free port in 20000..59999 other than EXCLUDE.
pick_port() {
  local exclude="${1:-}" p i
  for (( i = 0; i < 200; i++ )); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    [[ "$p" == "$exclude" ]] && continue
    if port_free "$p"; then printf '%s\n' "$p"; return 0; fi
  done
  die "no free port found on 127.0.0.1"
}

# Kafka's cluster id: 16 random bytes, URL-safe base64 without padding (22 chars),
# not starting with '-' (Kafka's Uuid.randomUuid avoids that too).
cluster_id() {
  local id
  while :; do
    id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* && ${#id} -eq 22 ]] && { printf '%s\n' "$id"; return; }
  done
}

kcat_metadata() { # $1 = bootstrap; prints kcat -L output
  kcat -b "$1" -L -m 3 2>/dev/null
}

# ---------------------------------------------------------------- stop

stop_pid() {
  local pid="$1"
  log "stopping broker (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(( SECONDS + STOP_TIMEOUT ))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker did not stop within ${STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  log "broker stopped"
}

cmd_stop() {
  lock_state
  local pid
  if pid="$(broker_pid)"; then
    stop_pid "$pid"
  else
    log "no broker running for $STATE"
  fi
  rm -f "$PIDFILE" "$ENVFILE"
}

# ---------------------------------------------------------------- start

write_config() { # $1 client port, $2 controller port [, $3 SSL port, $4 SASL_SSL port]
  local port="$1" cport="$2" sport="${3:-}" aport="${4:-}"
  mkdir -p "$STATE/data" "$STATE/logs"
  {
    echo "# Written by tests/kafka/broker.sh for Kafka $KAFKA_VERSION; rewritten at each start."
    echo "process.roles=broker,controller"
    echo "node.id=1"
    if version_ge "$KAFKA_VERSION" 3.9; then
      # Dynamic quorum (KIP-853); the storage is formatted with --standalone.
      echo "controller.quorum.bootstrap.servers=127.0.0.1:$cport"
    else
      echo "controller.quorum.voters=1@127.0.0.1:$cport"
    fi
    if (( SECURE )); then
      secure_config "$port" "$cport" "$sport" "$aport"
    else
      echo "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
      echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port"
    fi
    echo "inter.broker.listener.name=PLAINTEXT"
    echo "controller.listener.names=CONTROLLER"
    if (( ! SECURE )); then
      echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
    fi
    echo "log.dirs=$STATE/data"
    echo "num.partitions=3"
    echo "default.replication.factor=1"
    echo "min.insync.replicas=1"
    echo "auto.create.topics.enable=false"
    echo "offsets.topic.replication.factor=1"
    echo "offsets.topic.num.partitions=3"
    echo "transaction.state.log.replication.factor=1"
    echo "transaction.state.log.min.isr=1"
    echo "transaction.state.log.num.partitions=3"
    echo "share.coordinator.state.topic.replication.factor=1"
    echo "share.coordinator.state.topic.min.isr=1"
    echo "group.initial.rebalance.delay.ms=0"
    echo "num.network.threads=2"
    echo "num.io.threads=4"
    echo "num.recovery.threads.per.data.dir=1"
    echo "log.retention.hours=24"
    if [[ -n "${KB_KAFKA_EXTRA_PROPS:-}" ]]; then
      echo "# --- from $KB_KAFKA_EXTRA_PROPS"
      cat "$KB_KAFKA_EXTRA_PROPS"
    fi
  } >"$PROPS"

  cat >"$STATE/log4j2.properties" <<EOF
# Broker logs go to $STATE/logs/server.log (and warnings also to broker.log).
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $STATE/logs/server.log
appender.file.filePattern = $STATE/logs/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
appender.out.filter.threshold.type = ThresholdFilter
appender.out.filter.threshold.level = warn
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
rootLogger.appenderRef.out.ref = STDOUT
logger.kafka_request.name = kafka.request.logger
logger.kafka_request.level = warn
logger.state_change.name = state.change.logger
logger.state_change.level = warn
EOF
}

format_storage() {
  local id; id="$(cluster_id)"
  local -a extra=()
  version_ge "$KAFKA_VERSION" 3.9 && extra=(--standalone)
  log "formatting storage (cluster id $id)"
  if ! "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
        -cp "$LIBS/*" kafka.tools.StorageTool format \
        -t "$id" -c "$PROPS" "${extra[@]}" >"$STATE/format.log" 2>&1; then
    cat "$STATE/format.log" >&2
    die "storage format failed"
  fi
}

# Launch; sets BROKER_PID.
launch() {
  local heap="${KB_KAFKA_HEAP:--Xms256m -Xmx768m}"
  # shellcheck disable=SC2086  # heap and extra opts are word lists on purpose
  "$JAVA" $heap ${KB_KAFKA_JAVA_OPTS:-} \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
    -Dkafka.logs.dir="$STATE/logs" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >"$BROKER_LOG" 2>&1 8>&- 9>&- &
  BROKER_PID=$!
  disown "$BROKER_PID" 2>/dev/null || true   # no "Killed" job notices from bash
  printf '%s\n' "$BROKER_PID" >"$PIDFILE"
}

fail_start() {
  log "ERROR: $1"
  log "---- last 60 lines of $BROKER_LOG ----"
  tail -n 60 "$BROKER_LOG" >&2 2>/dev/null || true
  if [[ -f "$STATE/logs/server.log" ]]; then
    log "---- last 60 lines of $STATE/logs/server.log ----"
    tail -n 60 "$STATE/logs/server.log" >&2 || true
  fi
  exit 1
}

bind_failed() {
  grep -qsE 'BindException|Address already in use' "$BROKER_LOG" "$STATE/logs/server.log"
}

# Wait until a metadata request answers. 0 = ready, 2 = died on a taken port.
wait_ready() { # $1 bootstrap, $2 deadline (SECONDS)
  local bootstrap="$1" deadline="$2" md
  while (( SECONDS < deadline )); do
    if bind_failed; then
      # A port was taken between our check and the broker's bind; the broker takes
      # many seconds to give up by itself, so end it now; the caller picks new ports.
      # Its state is thrown away, so no need for a clean shutdown.
      kill -KILL "$BROKER_PID" 2>/dev/null || true
      while kill -0 "$BROKER_PID" 2>/dev/null; do sleep 0.1; done
      return 2
    fi
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
      fail_start "broker process exited during startup"
    fi
    if md="$(kcat_metadata "$bootstrap")" && grep -q "broker 1 at 127.0.0.1:" <<<"$md"; then
      return 0
    fi
    sleep 0.5
  done
  stop_pid "$BROKER_PID" || true
  fail_start "broker not ready on $bootstrap after ${START_TIMEOUT}s (KB_KAFKA_START_TIMEOUT)"
}

# ---------------------------------------------------------------- secure mode

# Listener and authorizer lines of server.properties in secure mode. The
# PLAINTEXT listener stays (127.0.0.1 only) for the harness and the plain
# tests: its principal, User:ANONYMOUS, is a super user, as is the broker's own
# controller connection. SSL requires a client certificate whose CN becomes the
# principal; SASL_SSL authenticates with SCRAM-SHA-512. Both advertise
# "localhost", the name in the broker certificate, so hostname verification
# has something to verify.
secure_config() { # port cport sport aport
  local port="$1" cport="$2" sport="$3" aport="$4"
  echo "listeners=PLAINTEXT://127.0.0.1:$port,SSL://127.0.0.1:$sport,SASL_SSL://127.0.0.1:$aport,CONTROLLER://127.0.0.1:$cport"
  echo "advertised.listeners=PLAINTEXT://127.0.0.1:$port,SSL://localhost:$sport,SASL_SSL://localhost:$aport"
  echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL"
  echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
  echo "super.users=User:ANONYMOUS;User:harness"
  echo "allow.everyone.if.no.acl.found=false"
  echo "ssl.keystore.type=PEM"
  echo "ssl.keystore.location=$SECDIR/broker.pem"
  echo "ssl.truststore.type=PEM"
  echo "ssl.truststore.location=$SECDIR/ca.pem"
  echo "ssl.enabled.protocols=TLSv1.3,TLSv1.2"
  echo "listener.name.ssl.ssl.client.auth=required"
  echo 'ssl.principal.mapping.rules=RULE:^CN=([A-Za-z0-9._-]+),.*$/$1/,DEFAULT'
  # SCRAM-SHA-512 as asked; PLAIN (inside TLS) too, because librdkafka before
  # 2.6.1 (Debian 12 has 2.0.2) computes a SCRAM proof that Kafka 4.x rejects
  # (librdkafka PR #4895). PLAIN users are fixed at start: the principals made
  # by secure_principal before this runs, with the same passwords.
  echo "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN"
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
  local f n jaas="org.apache.kafka.common.security.plain.PlainLoginModule required"
  for f in "$SECDIR"/*.password; do
    n="$(basename "$f" .password)"
    jaas+=" user_$n=\"$(cat "$f")\""
  done
  echo "listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas;"
}

# The roles every prefix gets: adapters (one per source) and the router.
SECURE_ADAPTERS=(gba svb kadaster)

rand_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Credentials of one principal: client certificate (pki.sh), SCRAM password
# file, and two librdkafka property files for ketenbus (--kafka-config) that
# point at those files (secrets stay in files: sasl.password.file,
# ssl.key.password.file), plus kcat equivalents (<name>-*.kcat; kcat knows no
# .file indirection, so those hold the secret itself, mode 600).
secure_principal() { # NAME SASL_BOOTSTRAP SSL_BOOTSTRAP
  local name="$1" abs="$2" sbs="$3"
  [[ -f "$SECDIR/$name.crt" ]] || "$SECURE_HELPERS/pki.sh" client "$SECDIR" "$name"
  if [[ ! -f "$SECDIR/$name.password" ]]; then
    rand_secret >"$SECDIR/$name.password"
    chmod 600 "$SECDIR/$name.password"
  fi
  printf '%s\n' "bootstrap.servers=$abs" "security.protocol=sasl_ssl" \
    "sasl.mechanism=SCRAM-SHA-512" "sasl.username=$name" \
    "sasl.password.file=$SECDIR/$name.password" "ssl.ca.location=$SECDIR/ca.pem" \
    >"$SECDIR/$name-sasl.properties"
  sed 's/^sasl.mechanism=.*/sasl.mechanism=PLAIN/' "$SECDIR/$name-sasl.properties" \
    >"$SECDIR/$name-plain.properties"
  printf '%s\n' "bootstrap.servers=$sbs" "security.protocol=ssl" \
    "ssl.ca.location=$SECDIR/ca.pem" "ssl.certificate.location=$SECDIR/$name.crt" \
    "ssl.key.location=$SECDIR/$name.key" "ssl.key.password.file=$SECDIR/$name.keypass" \
    >"$SECDIR/$name-ssl.properties"
  { grep -v -e '^sasl.password.file=' -e '^bootstrap.servers=' "$SECDIR/$name-sasl.properties"
    echo "sasl.password=$(cat "$SECDIR/$name.password")"
    echo "ssl.endpoint.identification.algorithm=https"; } >"$SECDIR/$name-sasl.kcat"
  sed 's/^sasl.mechanism=.*/sasl.mechanism=PLAIN/' "$SECDIR/$name-sasl.kcat" >"$SECDIR/$name-plain.kcat"
  { grep -v -e '^ssl.key.password.file=' -e '^bootstrap.servers=' "$SECDIR/$name-ssl.properties"
    echo "ssl.key.password=$(cat "$SECDIR/$name.keypass")"
    echo "ssl.endpoint.identification.algorithm=https"; } >"$SECDIR/$name-ssl.kcat"
  chmod 600 "$SECDIR/$name"-*.properties "$SECDIR/$name"-*.kcat
}

# Principals made at start: every role plus sub-<name> per start subscriber.
secure_start_principals() {
  local s
  echo harness router "${SECURE_ADAPTERS[@]}"
  for s in ${KB_KAFKA_SECURE_SUBSCRIBERS:-svb gemeente}; do echo "sub-$s"; done
}

env_value() { sed -n "s/^export $1=//p" "$ENVFILE" 2>/dev/null; }

# Users, certificates and ACLs of every role for topic prefix $1; subscribers
# $2... (principal sub-<name>). Runs SecureSetup.java once (one JVM).
secure_grant() { # PREFIX SUBSCRIBER...
  local prefix="$1"; shift
  [[ "$prefix" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad prefix '$prefix'"
  local pbs abs sbs
  pbs="$(env_value KB_BOOTSTRAP)"; abs="$(env_value KB_BOOTSTRAP_SASL_SSL)"; sbs="$(env_value KB_BOOTSTRAP_SSL)"
  [[ -n "$abs" ]] || die "no secure broker running from $STATE (start --secure)"
  local -a spec=() names=(harness router "${SECURE_ADAPTERS[@]}")
  local a s
  for s in "$@"; do
    [[ "$s" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad subscriber name '$s'"
    names+=("sub-$s")
  done
  for a in "${names[@]}"; do
    secure_principal "$a" "$abs" "$sbs"
    spec+=("user:$a:$SECDIR/$a.password")
  done
  spec+=("router:router")
  for a in "${SECURE_ADAPTERS[@]}"; do spec+=("adapter:$a:$a"); done
  for s in "$@"; do spec+=("subscriber:sub-$s:$s"); done
  find_java
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
    -cp "$LIBS/*" "$SECURE_HELPERS/SecureSetup.java" "$pbs" "$prefix" "${spec[@]}" \
    >>"$STATE/secure-setup.log" 2>&1 || { tail -n 30 "$STATE/secure-setup.log" >&2; die "SecureSetup failed"; }
  tail -n 1 "$STATE/secure-setup.log" >&2
}

cmd_grant() {
  [[ $# -ge 1 ]] || die "usage: broker.sh grant PREFIX [SUBSCRIBER...]"
  broker_pid >/dev/null || die "broker not running"
  lock_state
  fetch_jars
  secure_grant "$@"
}

cmd_start() {
  local t0=$SECONDS
  find_java
  need_kcat
  fetch_jars
  lock_state

  local pid
  if pid="$(broker_pid)"; then
    log "a broker from $STATE is still running; stopping it first"
    stop_pid "$pid"
  fi
  if [[ -e "$STATE" ]]; then
    if [[ -f "$STATE_TAG" ]] || [[ -d "$STATE" && -z "$(ls -A "$STATE")" ]]; then
      log "wiping old state folder $STATE"
      rm -rf "$STATE"
    else
      die "$STATE exists but is not a ketenbus Kafka state folder; refusing to wipe it"
    fi
  fi

  local deadline=$(( SECONDS + START_TIMEOUT ))
  local attempt port cport rc sport aport
  for attempt in 1 2 3 4 5; do
    mkdir -p "$STATE"
    : >"$STATE_TAG"
    if [[ -n "${KB_KAFKA_PORT:-}" ]]; then
      port="$KB_KAFKA_PORT"
      port_free "$port" || die "port $port is taken (KB_KAFKA_PORT)"
    else
      port="$(pick_port)"
    fi
    if [[ -n "${KB_KAFKA_CONTROLLER_PORT:-}" ]]; then
      cport="$KB_KAFKA_CONTROLLER_PORT"
      port_free "$cport" || die "port $cport is taken (KB_KAFKA_CONTROLLER_PORT)"
    else
      cport="$(pick_port "$port")"
    fi
    [[ "$port" != "$cport" ]] || die "client and controller port are both $port"
    log "Kafka $KAFKA_VERSION: client 127.0.0.1:$port, controller 127.0.0.1:$cport, state $STATE"
    sport="" aport=""
    if (( SECURE )); then
      sport="$(pick_port "$port")"
      while [[ "$sport" == "$cport" ]]; do sport="$(pick_port "$port")"; done
      aport="$(pick_port "$sport")"
      while [[ "$aport" == "$cport" || "$aport" == "$port" ]]; do aport="$(pick_port "$sport")"; done
      log "secure listeners: SSL localhost:$sport, SASL_SSL localhost:$aport"
      "$SECURE_HELPERS/pki.sh" ca "$SECDIR"
      "$SECURE_HELPERS/pki.sh" broker "$SECDIR"
      local pr
      # shellcheck disable=SC2086  # a word list on purpose
      for pr in $(secure_start_principals); do
        secure_principal "$pr" "localhost:$aport" "localhost:$sport"
      done
    fi
    write_config "$port" "$cport" "$sport" "$aport"
    if (( SECURE )); then chmod 600 "$PROPS"; fi   # holds the PLAIN passwords
    format_storage
    launch
    log "broker started (pid $BROKER_PID), waiting for a metadata answer (timeout ${START_TIMEOUT}s)"
    rc=0; wait_ready "127.0.0.1:$port" "$deadline" || rc=$?
    if (( rc == 0 )); then break; fi
    # rc 2: a port was taken between the check and the bind; try others.
    log "a port was taken meanwhile (attempt $attempt), retrying with other ports"
    rm -f "$PIDFILE"
    rm -rf "$STATE"
    [[ -z "${KB_KAFKA_PORT:-}${KB_KAFKA_CONTROLLER_PORT:-}" ]] || die "fixed port taken"
    (( attempt < 5 )) || die "gave up after 5 port collisions"
  done

  {
    echo "export KB_BOOTSTRAP=127.0.0.1:$port"
    echo "export KB_KAFKA_VERSION=$KAFKA_VERSION"
    echo "export KB_KAFKA_STATE=$STATE"
    echo "export KB_KAFKA_LIBS=$LIBS"
    if (( SECURE )); then
      echo "export KB_BOOTSTRAP_SSL=localhost:$sport"
      echo "export KB_BOOTSTRAP_SASL_SSL=localhost:$aport"
      echo "export KB_KAFKA_SECURE_DIR=$SECDIR"
      echo "export KB_KAFKA_CA=$SECDIR/ca.pem"
    fi
  } >"$ENVFILE"
  if (( SECURE )); then
    # shellcheck disable=SC2086  # a word list on purpose
    secure_grant "${KETENBUS_TOPIC_PREFIX:-kb}" ${KB_KAFKA_SECURE_SUBSCRIBERS:-svb gemeente}
  fi
  log "ready in $(( SECONDS - t0 ))s: KB_BOOTSTRAP=127.0.0.1:$port (env file $ENVFILE)"
  echo "127.0.0.1:$port"
}

# ---------------------------------------------------------------- restart

# Stop the running broker and launch it again from the same server.properties:
# same state folder, ports and log dirs, so every topic, committed offset and
# transaction state survives (the chaos test needs a broker that comes back).
cmd_restart() {
  local t0=$SECONDS bs pid rc
  find_java
  need_kcat
  fetch_jars
  lock_state
  [[ -f "$PROPS" ]] || die "no $PROPS: nothing to restart (use start)"
  bs="$(bootstrap_from_env)"
  [[ -n "$bs" ]] || die "no env file ($ENVFILE): broker not started"
  if pid="$(broker_pid)"; then
    stop_pid "$pid"
  else
    log "broker was not running; starting it on the old state"
  fi
  launch
  log "broker relaunched (pid $BROKER_PID) on $STATE, waiting for a metadata answer"
  rc=0; wait_ready "$bs" $(( SECONDS + START_TIMEOUT )) || rc=$?
  (( rc == 0 )) || fail_start "port of $bs taken while restarting"
  log "restarted in $(( SECONDS - t0 ))s: KB_BOOTSTRAP=$bs"
  echo "$bs"
}

# ---------------------------------------------------------------- others

bootstrap_from_env() {
  sed -n 's/^export KB_BOOTSTRAP=//p' "$ENVFILE" 2>/dev/null
}

cmd_status() {
  local pid bs
  if pid="$(broker_pid)" && bs="$(bootstrap_from_env)" && [[ -n "$bs" ]]; then
    log "running (pid $pid, Kafka $KAFKA_VERSION)"
    echo "$bs"
    return 0
  fi
  log "not running"
  return 1
}

cmd_env() {
  [[ -f "$ENVFILE" ]] || die "no env file ($ENVFILE): broker not started"
  cat "$ENVFILE"
}

cmd_topics() {
  local bs
  broker_pid >/dev/null && bs="$(bootstrap_from_env)" && [[ -n "$bs" ]] || die "broker not running"
  find_java
  local cls=org.apache.kafka.tools.TopicCommand
  [[ -n "$(ls "$LIBS"/kafka-tools-[0-9]*.jar 2>/dev/null)" ]] || cls=kafka.admin.TopicCommand
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$STATE/log4j2.properties" \
    -cp "$LIBS/*" "$cls" --bootstrap-server "$bs" "$@"
}

usage() {
  awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}" >&2
  exit 2
}

case "${1:-}" in
  start)  case "${2:-}" in
            "") ;;
            --secure) SECURE=1 ;;
            *) usage ;;
          esac
          cmd_start ;;
  grant)  shift; cmd_grant "$@" ;;
  stop)   cmd_stop ;;
  restart) cmd_restart ;;
  status) cmd_status ;;
  env)    cmd_env ;;
  fetch)  find_java; fetch_jars; log "jars in $LIBS" ;;
  topics) shift; cmd_topics "$@" ;;
  *)      usage ;;
esac
