# Sourced by scripts/wasm and scripts/browser-page: the WebSocket gateway of the browser
# tests (transport-wasm/tests/gateway.mjs). ensure_gateway exports KAFKA_EDGE_GATEWAY
# (default bridge) and what that gateway needs: KAFKA_EDGE_BRIDGE, the kafka-edge-bridge
# binary (built here, debug: the tests share its dependencies), or WEBSOCKIFY.
ensure_gateway() {
  export KAFKA_EDGE_GATEWAY="${KAFKA_EDGE_GATEWAY:-bridge}"
  case "$KAFKA_EDGE_GATEWAY" in
    bridge)
      printf '[gateway] cargo build -p kafka-edge-bridge\n' >&2
      (cd "$root" && cargo build -q --locked -p kafka-edge-bridge) >&2
      export KAFKA_EDGE_BRIDGE="${CARGO_TARGET_DIR:-$root/target}/debug/kafka-edge-bridge"
      ;;
    websockify)
      ensure_venv
      export WEBSOCKIFY="$KAFKA_EDGE_CACHE/venv/bin/websockify"
      ;;
    *) printf 'KAFKA_EDGE_GATEWAY must be bridge or websockify, not %s\n' "$KAFKA_EDGE_GATEWAY" >&2; return 1 ;;
  esac
}
