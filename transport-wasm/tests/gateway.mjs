// The WebSocket gateway the browser tests produce through: the project's own bridge
// (bridge/, `kafka-edge-bridge`) by default, or websockify (byte-transparent, one fixed
// target: a one-node cluster only) with KAFKA_EDGE_GATEWAY=websockify.
//
// Environment: KAFKA_EDGE_GATEWAY (bridge | websockify), KAFKA_EDGE_BRIDGE (the bridge's
// binary; `scripts/wasm` builds it), WEBSOCKIFY (default $KAFKA_EDGE_CACHE/venv/bin/websockify).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const cache = process.env.KAFKA_EDGE_CACHE ?? path.join(process.env.HOME, '.cache/kafka-edge');

/** A free loopback port. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Resolves once something accepts connections on `port`. */
export async function listening(port, ms = 15000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port} after ${ms} ms`);
}

/** A child process that is ended when this one ends, with the tail of its output kept. */
export function child(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  p.log = '';
  const keep = (d) => { p.log = (p.log + d).slice(-20000); };
  p.stdout.on('data', keep);
  p.stderr.on('data', keep);
  const end = () => p.kill();
  process.on('exit', end);
  p.on('exit', () => process.off('exit', end));
  return p;
}

/** Which gateway the tests use. */
export const gatewayKind = () => process.env.KAFKA_EDGE_GATEWAY ?? 'bridge';

/**
 * Starts a gateway in front of `bootstrap` (host:port[,...]) on a free port; resolves to
 * `{ kind, url, token, log(), stop() }`. With the bridge, `token` (if given) is the one
 * client token, allowed the topics matching `topics` (patterns with `*`); without a token
 * the bridge admits anonymous clients to `topics`.
 */
export async function startGateway(bootstrap, { token, topics = ['*'] } = {}) {
  const kind = gatewayKind();
  const port = await freePort();
  let p;
  let dir;
  if (kind === 'websockify') {
    const ws = process.env.WEBSOCKIFY ?? path.join(cache, 'venv/bin/websockify');
    p = child(ws, [`127.0.0.1:${port}`, bootstrap.split(',')[0]]);
    token = undefined;
  } else if (kind === 'bridge') {
    const bin = process.env.KAFKA_EDGE_BRIDGE;
    if (!bin) throw new Error('KAFKA_EDGE_BRIDGE (the kafka-edge-bridge binary) is not set');
    dir = mkdtempSync(path.join(os.tmpdir(), 'kafka-edge-gateway-'));
    const q = (s) => JSON.stringify(s);
    const toml = [
      `listen = ${q(`127.0.0.1:${port}`)}`,
      `path_prefix = "/kafka"`,
      `bootstrap_servers = [${bootstrap.split(',').map(q).join(', ')}]`,
      token ? '' : `anonymous_topics = [${topics.map(q).join(', ')}]`,
      token ? `[[tokens]]\ntoken = ${q(token)}\ntopics = [${topics.map(q).join(', ')}]` : '',
    ].join('\n');
    writeFileSync(path.join(dir, 'bridge.toml'), toml);
    p = child(bin, ['--config', path.join(dir, 'bridge.toml')]);
  } else {
    throw new Error(`KAFKA_EDGE_GATEWAY must be bridge or websockify, not ${kind}`);
  }
  try {
    await listening(port);
  } catch (e) {
    p.kill();
    throw new Error(`${kind} did not start: ${e.message}\n${p.log}`);
  }
  return {
    kind,
    url: `ws://127.0.0.1:${port}/kafka`,
    token,
    process: p,
    log: () => p.log,
    stop: () => {
      p.kill();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
