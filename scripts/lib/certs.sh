#!/usr/bin/env bash
# Test certificates for `scripts/kafka up --security`, made with openssl into one directory:
#
#   ca.pem / ca.key                   the test CA (clients trust ca.pem)
#   broker.pem / broker.key           broker certificate by the CA; SAN IP:127.0.0.1, DNS:localhost
#   broker-keystore.pem               broker.key + broker.pem + ca.pem (Kafka PEM key store)
#   client.pem / client.key           client certificate by the CA (CN=alice), for mTLS
#   client-keystore.pem               client.key + client.pem (Java's PEM key store)
#   untrusted-ca.pem / .key           a second, self-signed CA that the broker does not trust
#   untrusted-client.pem / .key       a client certificate signed by the untrusted CA
#   untrusted-client-keystore.pem     untrusted-client.key + untrusted-client.pem
#   badhost.pem / badhost.key         broker-like certificate by the trusted CA whose SAN is only
#                                     DNS:badhost.invalid (no 127.0.0.1, no localhost)
#   badhost-keystore.pem              served by the SSL_BADHOST listener
#
# Keys are EC P-256, unencrypted PKCS#8 (what Kafka's PEM key store reads without
# ssl.key.password). Valid for 10 years.
#   scripts/lib/certs.sh DIR
set -euo pipefail
d=${1:?usage: certs.sh DIR}
command -v openssl >/dev/null || { echo "certs.sh: openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$d"
cd "$d"
days=3650

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

ca() { # name cn
  key "$1.key"
  openssl req -x509 -new -key "$1.key" -sha256 -days $days -subj "/O=kafka-edge test/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$1.pem" 2>/dev/null
}

leaf() { # name ca cn san eku
  key "$1.key"
  openssl req -new -key "$1.key" -subj "/O=kafka-edge test/CN=$3" -out "$1.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
    "$5" "${4:+subjectAltName=$4}" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -sha256 -days $days \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "kafka-edge test CA"
ca untrusted-ca "kafka-edge untrusted CA"
leaf broker ca localhost "IP:127.0.0.1,DNS:localhost" "serverAuth,clientAuth"
leaf badhost ca badhost.invalid "DNS:badhost.invalid" "serverAuth,clientAuth"
leaf client ca alice "" "clientAuth"
leaf untrusted-client untrusted-ca alice "" "clientAuth"
cat broker.key broker.pem ca.pem >broker-keystore.pem
cat badhost.key badhost.pem ca.pem >badhost-keystore.pem
cat client.key client.pem >client-keystore.pem
cat untrusted-client.key untrusted-client.pem >untrusted-client-keystore.pem
rm -f ./*.srl
chmod 600 ./*.key ./*-keystore.pem
