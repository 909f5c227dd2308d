#!/usr/bin/env bash
# The secured listeners of `scripts/kafka up --security`, checked with two independent clients:
# Java's KafkaProducer (scripts/oracle produce) writes N records through each listener and
# librdkafka (scripts/judge -X ...) reads them back through the same listener, authenticated the
# same way; then the refusals: wrong passwords, no or an untrusted client certificate, an
# untrusted CA, a broker certificate whose SAN does not name 127.0.0.1. Prints a matrix, one row
# per case, and exits non-zero when any row differs from its expectation.
#
#   scripts/lib/security-check.sh [--dir D] [--count N] [--no-reauth]
#
# D (default /tmp/kafka-edge-security): a cluster of `scripts/kafka up --security` already
# running there is used as it is; otherwise one is started there and stopped at the end.
# The REAUTH rows send one record a second for 13 s (connections.max.reauth.ms is 10 s) and
# report how often the Java client re-authenticated; --no-reauth sends them at once.
set -euo pipefail
lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
scripts="$(dirname "$lib")"
DIR=/tmp/kafka-edge-security N=100 reauth=1
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) DIR=$2; shift 2 ;;
    --count) N=$2; shift 2 ;;
    --no-reauth) reauth=0; shift ;;
    *) echo "usage: security-check.sh [--dir D] [--count N] [--no-reauth]" >&2; exit 2 ;;
  esac
done
ORACLE=${ORACLE:-$scripts/oracle}
JUDGE=${JUDGE:-$scripts/judge}
KAFKA=$scripts/kafka

started=0
running() { [ -f "$DIR/env" ] && (source "$DIR/env"; [ "${SECURITY:-0}" = 1 ] && kill -0 "${NODE1_PID:-0}" 2>/dev/null); }
if ! running; then
  [ -f "$DIR/env" ] && "$KAFKA" down --dir "$DIR"
  "$KAFKA" up --security --dir "$DIR" >/dev/null
  started=1
fi
cleanup() { [ "$started" = 1 ] && "$KAFKA" down --dir "$DIR" || true; }
trap cleanup EXIT
# shellcheck disable=SC1091
source "$DIR/env"
"$ORACLE" build

work=$(mktemp -d)
trap 'cleanup; rm -rf "$work"' EXIT
run="sec$(date +%s)-"

plain_jaas() { echo "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$1\" password=\"$2\";"; }
scram_jaas() { echo "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$1\" password=\"$2\";"; }
oauth_jaas() { echo "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"$1\";"; }

# Each case: label | listener (env BOOTSTRAP_<listener>) | mechanism | expect ok|fail | Java
# properties | librdkafka properties (separated by ;; one property per |-free field).
rows=()       # "label|listener|mechanism|expect"
declare -A JP RP PACE
add() { rows+=("$1|$2|$3|$4"); }

add plaintext PLAINTEXT - ok
JP[plaintext]=""; RP[plaintext]=""

# Properties are kept as strings "-X\x1fkey=value\x1f..." (values hold spaces and quotes).
S=$'\x1f'
props() { local out="" kv; for kv in "$@"; do out+="-X$S$kv$S"; done; printf '%s' "$out"; }

add ssl SSL "TLS (server auth)" ok
JP[ssl]=$(props security.protocol=SSL ssl.truststore.type=PEM "ssl.truststore.location=$SSL_CA")
RP[ssl]=$(props security.protocol=SSL "ssl.ca.location=$SSL_CA")

add mtls MTLS "TLS + client cert" ok
JP[mtls]=$(props security.protocol=SSL ssl.truststore.type=PEM "ssl.truststore.location=$SSL_CA" \
  ssl.keystore.type=PEM "ssl.keystore.location=$SSL_CLIENT_KEYSTORE")
RP[mtls]=$(props security.protocol=SSL "ssl.ca.location=$SSL_CA" "ssl.certificate.location=$SSL_CLIENT_CERT" \
  "ssl.key.location=$SSL_CLIENT_KEY")

sasl_case() { # label listener protocol mechanism user password expect [ssl]
  local label=$1 listener=$2 proto=$3 mech=$4 user=$5 pw=$6 expect=$7 jaas
  case "$mech" in PLAIN) jaas=$(plain_jaas "$user" "$pw") ;; *) jaas=$(scram_jaas "$user" "$pw") ;; esac
  add "$label" "$listener" "$mech$([ "$pw" = "$SASL_PASSWORD" ] || echo ' (wrong password)')" "$expect"
  JP[$label]=$(props "security.protocol=$proto" "sasl.mechanism=$mech" "sasl.jaas.config=$jaas")
  RP[$label]=$(props "security.protocol=$proto" "sasl.mechanisms=$mech" "sasl.username=$user" "sasl.password=$pw")
  if [ "$proto" = SASL_SSL ]; then
    JP[$label]+=$(props ssl.truststore.type=PEM "ssl.truststore.location=$SSL_CA")
    RP[$label]+=$(props "ssl.ca.location=$SSL_CA")
  fi
}
u=$SASL_USER p=$SASL_PASSWORD
sasl_case sp-plain SASL_PLAINTEXT SASL_PLAINTEXT PLAIN "$u" "$p" ok
sasl_case sp-s256 SASL_PLAINTEXT SASL_PLAINTEXT SCRAM-SHA-256 "$u" "$p" ok
sasl_case sp-s512 SASL_PLAINTEXT SASL_PLAINTEXT SCRAM-SHA-512 "$u" "$p" ok
sasl_case ss-plain SASL_SSL SASL_SSL PLAIN "$u" "$p" ok
sasl_case ss-s256 SASL_SSL SASL_SSL SCRAM-SHA-256 "$u" "$p" ok
sasl_case ss-s512 SASL_SSL SASL_SSL SCRAM-SHA-512 "$u" "$p" ok

add oauth OAUTH "OAUTHBEARER (unsecured JWT)" ok
JP[oauth]=$(props security.protocol=SASL_PLAINTEXT sasl.mechanism=OAUTHBEARER "sasl.jaas.config=$(oauth_jaas "$u")")
RP[oauth]=$(props security.protocol=SASL_PLAINTEXT sasl.mechanisms=OAUTHBEARER \
  enable.sasl.oauthbearer.unsecure.jwt=true "sasl.oauthbearer.config=principal=$u")

sasl_case re-s256 REAUTH SASL_PLAINTEXT SCRAM-SHA-256 "$u" "$p" ok
sasl_case re-plain REAUTH SASL_PLAINTEXT PLAIN "$u" "$p" ok
if [ "$reauth" = 1 ]; then PACE[re-s256]=1000; PACE[re-plain]=1000; fi

# Refusals (each judge read goes to the topic of the PLAINTEXT row, which holds N records: a
# read that wrongly succeeds shows up as "ok").
sasl_case sp-s256-bad SASL_PLAINTEXT SASL_PLAINTEXT SCRAM-SHA-256 "$u" wrong-secret fail
sasl_case sp-s512-bad SASL_PLAINTEXT SASL_PLAINTEXT SCRAM-SHA-512 "$u" wrong-secret fail
sasl_case sp-plain-bad SASL_PLAINTEXT SASL_PLAINTEXT PLAIN "$u" wrong-secret fail
sasl_case ss-s512-bad SASL_SSL SASL_SSL SCRAM-SHA-512 "$u" wrong-secret fail
add mtls-nocert MTLS "TLS, no client cert" fail
JP[mtls-nocert]=${JP[ssl]}; RP[mtls-nocert]=${RP[ssl]}
add mtls-untrusted MTLS "TLS, client cert of untrusted CA" fail
JP[mtls-untrusted]=$(props security.protocol=SSL ssl.truststore.type=PEM "ssl.truststore.location=$SSL_CA" \
  ssl.keystore.type=PEM "ssl.keystore.location=$SSL_UNTRUSTED_CLIENT_KEYSTORE")
RP[mtls-untrusted]=$(props security.protocol=SSL "ssl.ca.location=$SSL_CA" \
  "ssl.certificate.location=$SSL_UNTRUSTED_CLIENT_CERT" "ssl.key.location=$SSL_UNTRUSTED_CLIENT_KEY")
add ssl-untrusted-ca SSL "TLS, client trusts other CA" fail
JP[ssl-untrusted-ca]=$(props security.protocol=SSL ssl.truststore.type=PEM "ssl.truststore.location=$SSL_UNTRUSTED_CA")
RP[ssl-untrusted-ca]=$(props security.protocol=SSL "ssl.ca.location=$SSL_UNTRUSTED_CA")
add badhost SSL_BADHOST "TLS, SAN without 127.0.0.1" fail
JP[badhost]=${JP[ssl]}; RP[badhost]=${RP[ssl]}
add badhost-noverify SSL_BADHOST "TLS, host-name check off" ok
JP[badhost-noverify]=${JP[ssl]}$(props ssl.endpoint.identification.algorithm=)
RP[badhost-noverify]=${RP[ssl]}$(props ssl.endpoint.identification.algorithm=none)
add plain-on-sasl SASL_PLAINTEXT "none (PLAINTEXT client)" fail
JP[plain-on-sasl]=$(props security.protocol=PLAINTEXT max.block.ms=6000)
RP[plain-on-sasl]=$(props security.protocol=PLAINTEXT)

to_args() { # "-X\x1fk=v\x1f..." -> the array ARGS
  ARGS=()
  local IFS=$S
  # shellcheck disable=SC2206
  [ -n "$1" ] && ARGS=($1)
  return 0
}

# One topic per row, created in one request on PLAINTEXT (no ACLs: any principal may write).
"$KAFKA" topics --dir "$DIR" --prefix "$run" --count "${#rows[@]}" --partitions 1 --replication 1 >/dev/null 2>&1
mapfile -t topics < <(python3 -c "import sys; [print(f'{sys.argv[1]}{i:04d}') for i in range(int(sys.argv[2]))]" "$run" "${#rows[@]}")
seed=${topics[0]}

check_read() { # topic count file -> "ok (N read)" or the reason
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
topic, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
vals = [bytes.fromhex(json.loads(l)["value"]).decode() for l in open(path) if l.strip()]
want = [f"{topic}-{i}" for i in range(n)]
print(f"ok ({len(vals)} read)" if vals == want else f"MISMATCH ({len(vals)} read, want {n})")
PY
}

printf '%-16s %-15s %-32s %-6s %-36s %-20s %s\n' case listener mechanism expect "java produce" "judge read" result
fails=0 details=()
for i in "${!rows[@]}"; do
  IFS='|' read -r label listener mech expect <<<"${rows[$i]}"
  topic=${topics[$i]}
  bvar="BOOTSTRAP_$listener"; [ "$listener" = PLAINTEXT ] && bvar=BOOTSTRAP
  boot=${!bvar}
  pace=()
  [ -n "${PACE[$label]:-}" ] && pace=(--pace-ms "${PACE[$label]}")
  n=$N; [ ${#pace[@]} -gt 0 ] && n=13
  to_args "${JP[$label]}"
  jrc=0
  "$ORACLE" produce --bootstrap "$boot" --topic "$topic" --count "$n" "${pace[@]}" "${ARGS[@]}" \
    >"$work/$label.java" 2>"$work/$label.java.err" || jrc=$?
  jout=$(cat "$work/$label.java")
  if [ "$jrc" = 0 ]; then
    java="ok ($(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); r=d.get("reauthentication",0); print(str(d["acked"]) + " acked" + (f", {r} reauth" if r else ""))' "$jout"))"
  else
    java="fail ($(python3 -c 'import json,sys
try: d=json.loads(sys.argv[1]); print(d.get("error_class","?").rsplit(".",1)[-1])
except Exception: print("no JSON")' "$jout"))"
    details+=("$label java: $(python3 -c 'import json,sys
try:
    d=json.loads(sys.argv[1]); print(d.get("error_class"), "-", d.get("error"), ("| cause: " + d["causes"][-1]) if d.get("causes") else "")
except Exception: print(sys.argv[2][-300:])' "$jout" "$(tail -c 300 "$work/$label.java.err")")")
  fi
  # The judge reads this row's topic when Java should have written it, else the seeded one.
  # A refusal is only seen as a metadata timeout by librdkafka (it retries): a short one.
  rtopic=$topic rn=$n timeout=30
  [ "$expect" = fail ] && { rtopic=$seed; rn=$N; timeout=3; }
  to_args "${RP[$label]}"
  rrc=0
  "$JUDGE" --bootstrap "$boot" --topic "$rtopic" --timeout "$timeout" "${ARGS[@]}" \
    >"$work/$label.judge" 2>"$work/$label.judge.err" || rrc=$?
  if [ "$rrc" = 0 ]; then judge=$(check_read "$rtopic" "$rn" "$work/$label.judge"); else
    if grep -q 'SASL authentication error' "$work/$label.judge.err"; then judge="fail (SASL auth)"
    elif grep -q 'SSL' "$work/$label.judge.err"; then judge="fail (TLS)"
    else judge="fail (no metadata)"; fi
    details+=("$label judge: $(grep -o 'client errors: .*' "$work/$label.judge.err" | cut -c16- | cut -d'|' -f1 | head -1)$(grep -q 'client errors' "$work/$label.judge.err" || tail -1 "$work/$label.judge.err")")
  fi
  result=PASS
  if [ "$expect" = ok ]; then
    [[ "$java" == ok* && "$judge" == ok* ]] || result=FAIL
  else
    [[ "$java" == fail* && "$judge" == fail* ]] || result=FAIL
  fi
  [ "$result" = PASS ] || fails=$((fails + 1))
  printf '%-16s %-15s %-32s %-6s %-36s %-20s %s\n' "$label" "$listener" "$mech" "$expect" "$java" "$judge" "$result"
done
echo
echo "errors as the clients report them:"
for d in "${details[@]}"; do echo "  $d"; done
echo
echo "listeners: $(grep -o '^BOOTSTRAP[A-Z_]*=[^ ]*' "$DIR/env" | tr '\n' ' ')"
echo "$((${#rows[@]} - fails)) of ${#rows[@]} cases as expected"
[ "$fails" = 0 ]
