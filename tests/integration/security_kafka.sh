#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# security_kafka.sh - ketenbus against the secure broker (SSL with client
# certificates, SASL_SSL, StandardAuthorizer, ACLs per role):
#  1. plaintext or SASL_PLAINTEXT to a non-loopback broker (192.0.2.1,
#     TEST-NET-1) is refused before any socket is opened (strace shows no
#     connect);
#  2. a wrong CA, and a broker name not in its certificate, are refused;
#  3. an adapter's credentials cannot write another source's topic nor a
#     subscriber topic (TOPIC_AUTHORIZATION_FAILED);
#  4. a subscriber's credentials cannot read another subscriber's topic, nor
#     write its own;
#  5. the chain end to end with every process on its own credentials:
#     ketenbus-gba (mTLS) -> ketenbus route (SASL_SSL, hostname verified,
#     password from a file) -> <prefix>.out.svb -> ketenbus-svb egress
#     (SASL_SSL as sub-svb) -> AKW01; and no secret in any log line.
source "$(dirname "$0")/lib.sh"
source "$SRC/tests/kafka/secure/it.sh"

secure_topics "$(T in.gba)" "$(T in.svb)" "$(T quarantine.gba)" "$(T out.svb)" "$(T out.gemeente)" \
  "$(T dlq)" "$(T audit)"

# ---- 1. plaintext beyond loopback: refused before connecting
# (LeakSanitizer cannot run under ptrace, hence detect_leaks=0 for these runs.)
traced() { # traced NAME ARGS...: ketenbus gen under strace, connect() calls into WORK/strace-NAME.txt
  local name=$1; shift
  ASAN_OPTIONS=detect_leaks=0 strace -f -qq -e trace=connect -o "$WORK/strace-$name.txt" \
    "$BIN/ketenbus" gen --count 1 --subject-key-file "$WORK/subject.key" "$@" >"$WORK/refuse-$name.log" 2>&1
}
# Positive control: the same trace does see librdkafka's connects from its
# broker threads (kcat, also librdkafka, to a closed loopback port; ends by itself).
strace -f -qq -e trace=connect -o "$WORK/strace-control.txt" kcat -b 127.0.0.1:1 -L -m 2 >/dev/null 2>&1 || true
check "control: strace sees librdkafka's connect()" grep -q '127.0.0.1' "$WORK/strace-control.txt"
for proto in plaintext sasl_plaintext; do
  set +e
  t0=$SECONDS
  traced "$proto" -b 192.0.2.1:9092 -X security.protocol=$proto
  rc=$?
  set -e
  check "$proto to 192.0.2.1: non-zero exit" test "$rc" -ne 0
  check "$proto to 192.0.2.1: says why" grep -q "refusing $proto to broker 192.0.2.1 outside loopback" "$WORK/refuse-$proto.log"
  check "$proto to 192.0.2.1: refused at once" test $((SECONDS - t0)) -lt 10
  check "$proto to 192.0.2.1: no connect() at all" bash -c "! grep -q 'connect(' '$WORK/strace-$proto.txt'"
done
set +e
"$BIN/ketenbus" gen --count 1 --subject-key-file "$WORK/subject.key" -X sasl.password=hunter2 \
  >"$WORK/cmdline-secret.log" 2>&1
rc=$?
set -e
check "a password on the command line is refused" test "$rc" -ne 0
check "... with the way out named" grep -q "sasl.password.file" "$WORK/cmdline-secret.log"

# ---- 2. wrong CA, wrong name: refused (both in parallel: each waits for its timeout)
"$SRC/tests/kafka/secure/pki.sh" other-ca "$WORK/pki" wrong-ca
sed "s#^ssl.ca.location=.*#ssl.ca.location=$WORK/pki/wrong-ca.pem#" "$SEC/gba-ssl.properties" >"$WORK/gba-wrongca.properties"
sed "s#^bootstrap.servers=localhost:#bootstrap.servers=vm:#" "$SEC/gba-ssl.properties" >"$WORK/gba-wrongname.properties"
if getent hosts vm | grep -q '^127\.'; then have_vm=1; else have_vm=0; fi
for kind in wrongca wrongname; do
  ( set +e
    timeout 60 "$BIN/ketenbus" gen --count 1 --source gba --subject-key-file "$WORK/subject.key" \
      --kafka-config "$WORK/gba-$kind.properties" >"$WORK/$kind.log" 2>&1
    echo $? >"$WORK/$kind.rc" ) &
done
wait
check "wrong CA: gen fails" test "$(cat "$WORK/wrongca.rc")" -ne 0
check "wrong CA: certificate verification failed" grep -qi "certificate verify failed" "$WORK/wrongca.log"
if ((have_vm)); then
  check "name not in the certificate: gen fails" test "$(cat "$WORK/wrongname.rc")" -ne 0
  check "name not in the certificate: verification failed" grep -qiE "certificate verify failed|hostname mismatch" "$WORK/wrongname.log"
fi
check "nothing was written by the refused clients" eq "$(count "$(T in.gba)")" 0

# ---- 3. an adapter writes its own topic only
echo x | kcat_as gba ssl -P -t "$(T in.gba)" -k k >"$WORK/gba-own.log" 2>&1 || true
check "gba (mTLS) may write $(T in.gba)" wait_for 20 count_is "$(T in.gba)" 1
check "gba's write carried no error" bash -c "! grep -qi 'failed' '$WORK/gba-own.log'"
for t in in.svb out.svb dlq audit; do
  echo x | kcat_as gba ssl -P -t "$(T $t)" >"$WORK/gba-$t.log" 2>&1 || true
  check "gba may not write $(T $t)" grep -q "Topic authorization failed" "$WORK/gba-$t.log"
done
set +e
timeout 60 "$BIN/ketenbus" gen --count 1 --source svb --subject-key-file "$WORK/subject.key" \
  --kafka-config "$SEC/gba-plain.properties" >"$WORK/gen-as-gba-to-svb.log" 2>&1
rc=$?
set -e
check "ketenbus gen with gba's credentials cannot publish as svb" test "$rc" -ne 0
check "... authorization failed" grep -qiE "authorization failed" "$WORK/gen-as-gba-to-svb.log"
check "... and nothing arrived in $(T in.svb)" eq "$(count "$(T in.svb)")" 0
# The stray test message of gba is not an event: it will be dead-lettered by the router.

# ---- 5 (first half). the chain on its own credentials
SUBS=$WORK/subscriptions.yaml
cat >"$SUBS" <<YAML
subscriptions:
  - name: svb
    purpose: {id: akw-uitnodiging, legal_basis: "Algemene Kinderbijslagwet"}
    types: [nl.brp.persoon-geboren, nl.brp.kind-toegevoegd]
  - name: gemeente
    purpose: {id: statistiek, legal_basis: "test"}
    types: [nl.brp.persoon-geboren]
    fields: [inschrijving.gemeente]
YAML
mkdir -p "$WORK/gba/in"
# librdkafka 2.0.2 cannot do SCRAM against Kafka 4 (see tests/kafka/README.md),
# so the SASL_SSL processes use PLAIN inside TLS; -plain.properties sets it.
start router "$BIN/ketenbus" route --subscriptions "$SUBS" --instance sec-it \
  --subject-key-file "$WORK/subject.key" --kafka-config "$SEC/router-plain.properties"
start gba "$BIN/ketenbus-gba" ingest --spool "$WORK/gba" --subject-key-file "$WORK/subject.key" \
  --kafka-config "$SEC/gba-ssl.properties"
start svb "$BIN/ketenbus-svb" egress --spool "$WORK/svb" --subject-key-file "$WORK/subject.key" \
  --topic "$(T out.svb)" --kafka-config "$SEC/sub-svb-plain.properties"
cp "$FIX/lg01-geboorte-sophie.lo3" "$WORK/gba/in/.1" && mv "$WORK/gba/in/.1" "$WORK/gba/in/001-lg01.lo3"
cp "$FIX/gv01-moeder-kind-sophie.lo3" "$WORK/gba/in/.2" && mv "$WORK/gba/in/.2" "$WORK/gba/in/002-gv01.lo3"
check "adapter (mTLS, key password from a file) published both messages" wait_for 90 test -f "$WORK/gba/done/002-gv01.lo3"
check "adapter learnt its topics' max.message.bytes (DescribeConfigs granted)" \
  bash -c "grep -q 'message size limits' '$WORK/gba.log' && ! grep -q 'cannot learn a topic' '$WORK/gba.log'"
check "router (SASL_SSL) delivered 2 events to $(T out.svb)" wait_for 120 count_is "$(T out.svb)" 2
check "router delivered 1 projected event to $(T out.gemeente)" wait_for 60 count_is "$(T out.gemeente)" 1
check "router dead-lettered gba's stray message" wait_for 60 count_is "$(T dlq)" 1
check "router connected with hostname verification" bash -c "! grep -q 'hostname verification is off' '$WORK/router.log'"
check "svb egress (SASL_SSL as sub-svb) wrote the AKW01" wait_for 120 bash -c "ls $WORK/svb/out/*.akw01 >/dev/null 2>&1"
rec=$(cat "$WORK"/svb/out/*.akw01 2>/dev/null | head -n 1 || true)
check "AKW01 names the child" eq "${rec:34:9}" 999995303

# ---- 4. a subscriber reads its own topic only
kcat_as sub-svb plain -C -t "$(T out.svb)" -e -q -f 'x\n' >"$WORK/svb-own.txt" 2>"$WORK/svb-own.log" || true
check "sub-svb reads $(T out.svb)" eq "$(grep -c x "$WORK/svb-own.txt")" 2
kcat_as sub-svb plain -C -t "$(T out.gemeente)" -e -q >"$WORK/svb-other.txt" 2>&1 || true
check "sub-svb cannot read $(T out.gemeente): TOPIC_AUTHORIZATION_FAILED" grep -q "Topic authorization failed" "$WORK/svb-other.txt"
kcat_as sub-gemeente ssl -C -t "$(T out.svb)" -e -q >"$WORK/gem-other.txt" 2>&1 || true
check "sub-gemeente (mTLS) cannot read $(T out.svb)" grep -q "Topic authorization failed" "$WORK/gem-other.txt"
kcat_as sub-gemeente ssl -C -t "$(T in.gba)" -e -q >"$WORK/gem-in.txt" 2>&1 || true
check "sub-gemeente cannot read the unprojected $(T in.gba)" grep -q "Topic authorization failed" "$WORK/gem-in.txt"
kcat_as sub-gemeente ssl -C -t "$(T out.gemeente)" -e -q -f 'x\n' >"$WORK/gem-own.txt" 2>/dev/null || true
check "sub-gemeente reads its own $(T out.gemeente)" eq "$(grep -c x "$WORK/gem-own.txt")" 1
echo x | kcat_as sub-svb plain -P -t "$(T out.svb)" >"$WORK/svb-write.log" 2>&1 || true
check "sub-svb cannot write (forge) its own topic" grep -q "Topic authorization failed" "$WORK/svb-write.log"

# ---- a transactional adapter on its own credentials: a Kadaster round is one
# transaction, so its principal needs its transactional ids (prefixed ACL)
mkdir -p "$WORK/kad/in"
cp "$SRC/tests/fixtures/kadaster/01-verkoop-perceel.xml" "$WORK/kad/in/.1"
mv "$WORK/kad/in/.1" "$WORK/kad/in/001.xml"
set +e
timeout 120 "$BIN/ketenbus-kadaster" ingest --spool "$WORK/kad" --once \
  --subject-key-file "$WORK/subject.key" --kafka-config "$SEC/kadaster-ssl.properties" \
  >>"$WORK/kadaster.log" 2>&1
krc=$?
set -e
check "kadaster (mTLS, transactional) ran its round (exit 0)" eq "$krc" 0
check "... the document is done" test -f "$WORK/kad/done/001.xml"
check "... its event is committed on $(T in.kadaster)" wait_for 30 count_is "$(T in.kadaster)" 1

# ---- secrets never in logs
for f in "$SEC"/*.password "$SEC"/*.keypass; do
  s=$(cat "$f")
  check "secret $(basename "$f") in no log line" bash -c "! grep -rqF '$s' $WORK/*.log"
done

finish
