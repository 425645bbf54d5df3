#!/usr/bin/env bash
# SPDX-License-Identifier: EUPL-1.2
#
# Test PKI for the secure broker (tests/kafka/broker.sh start --secure), made
# with openssl only: one CA, the broker's certificate (SAN localhost and
# 127.0.0.1) and one client certificate per role (CN = the role, which the
# broker maps to the Kafka principal User:<role>). Keys are throwaway test
# keys; none of this is ever used outside a test machine.
#
#   pki.sh ca DIR                 CA in DIR/ca.pem + DIR/ca.key (kept if present)
#   pki.sh broker DIR             DIR/broker.pem (key + certificate chain, for Kafka)
#   pki.sh client DIR NAME        DIR/NAME.crt + DIR/NAME.key (encrypted with the
#                                 password in DIR/NAME.keypass, mode 600)
#   pki.sh other-ca DIR NAME      an unrelated CA in DIR/NAME.pem (for "wrong CA" tests)
set -euo pipefail

die() { printf '[pki] ERROR: %s\n' "$*" >&2; exit 1; }
rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
DAYS=30

make_ca() { # DIR FILE-STEM CN
  local dir=$1 stem=$2 cn=$3
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$stem.key" -out "$dir/$stem.pem" -days "$DAYS" \
    -subj "/O=ketenbus test/CN=$cn" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 600 "$dir/$stem.key"
}

sign() { # DIR NAME CN EXTFILE: DIR/NAME.csr -> DIR/NAME.crt
  local dir=$1 name=$2 ext=$4
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$name.crt" -days "$DAYS" -extfile "$ext" 2>/dev/null
  rm -f "$dir/$name.csr"
}

cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || die "usage: pki.sh ca|broker|client|other-ca DIR [NAME]"
mkdir -p "$dir"
chmod 700 "$dir"
case "$cmd" in
  ca)
    [[ -f "$dir/ca.pem" && -f "$dir/ca.key" ]] || make_ca "$dir" ca "ketenbus test CA"
    ;;
  broker)
    [[ -f "$dir/ca.key" ]] || die "no CA in $dir"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$dir/broker.key" -out "$dir/broker.csr" -subj "/O=ketenbus test/CN=localhost" 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      "extendedKeyUsage=serverAuth,clientAuth" "keyUsage=critical,digitalSignature" >"$dir/broker.ext"
    sign "$dir" broker localhost "$dir/broker.ext"
    # Kafka's PEM key store wants PKCS#8.
    openssl pkcs8 -topk8 -nocrypt -in "$dir/broker.key" -out "$dir/broker.p8" 2>/dev/null
    cat "$dir/broker.p8" "$dir/broker.crt" "$dir/ca.pem" >"$dir/broker.pem"
    chmod 600 "$dir/broker.key" "$dir/broker.p8" "$dir/broker.pem"
    rm -f "$dir/broker.ext"
    ;;
  client)
    name=${3:?client NAME}
    [[ "$name" =~ ^[A-Za-z0-9._-]+$ ]] || die "client name must be [A-Za-z0-9._-]+"
    [[ -f "$dir/ca.key" ]] || die "no CA in $dir"
    [[ -f "$dir/$name.keypass" ]] || { rand_hex 16 >"$dir/$name.keypass"; chmod 600 "$dir/$name.keypass"; }
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$dir/$name.plain.key" -out "$dir/$name.csr" -subj "/O=ketenbus test/CN=$name" 2>/dev/null
    printf '%s\n' "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature" >"$dir/$name.ext"
    sign "$dir" "$name" "$name" "$dir/$name.ext"
    openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$dir/$name.plain.key" -out "$dir/$name.key" \
      -passout "file:$dir/$name.keypass" 2>/dev/null
    chmod 600 "$dir/$name.key"
    rm -f "$dir/$name.plain.key" "$dir/$name.ext"
    ;;
  other-ca)
    name=${3:?other-ca NAME}
    make_ca "$dir" "$name" "some other CA"
    ;;
  *) die "unknown command $cmd" ;;
esac
