# Sourced: ensure_venv creates the Python venv of the test ground (librdkafka judge,
# kafka-python, websockify, matplotlib for scripts/compare's plots) under $KAFKA_EDGE_CACHE
# once; later calls return at once.
ensure_venv() {
  local venv="$KAFKA_EDGE_CACHE/venv"
  local stamp="$venv/.kafka-edge-$CONFLUENT_KAFKA_VERSION-$KAFKA_PYTHON_VERSION-$WEBSOCKIFY_VERSION-$MATPLOTLIB_VERSION"
  [ -f "$stamp" ] && return 0
  mkdir -p "$KAFKA_EDGE_CACHE"
  exec 8>"$KAFKA_EDGE_CACHE/venv.lock"
  flock 8
  if [ -f "$stamp" ]; then flock -u 8; return 0; fi
  # An older venv gets what it lacks (pip leaves what is already at its pin).
  [ -x "$venv/bin/pip" ] || { rm -rf "$venv"; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "confluent-kafka==$CONFLUENT_KAFKA_VERSION" "kafka-python==$KAFKA_PYTHON_VERSION" \
    "websockify==$WEBSOCKIFY_VERSION" "matplotlib==$MATPLOTLIB_VERSION" >&2
  touch "$stamp"
  flock -u 8
}
