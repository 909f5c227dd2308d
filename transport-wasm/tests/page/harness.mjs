// What page.test.mjs and bench.mjs share: a WebSocket gateway (../gateway.mjs), the
// example's server (examples/browser/serve.mjs), and Debian's Chromium under playwright-core.
//
// Environment: KAFKA_EDGE_DIR, KAFKA_EDGE_PKG, KAFKA_EDGE_ROOT (as for tests/node/helpers.mjs),
// the gateway's (KAFKA_EDGE_GATEWAY, KAFKA_EDGE_BRIDGE, WEBSOCKIFY), PLAYWRIGHT_CORE (a directory
// with node_modules/playwright-core, default $KAFKA_EDGE_CACHE/playwright-core-<version>;
// scripts/browser-page installs it), CHROMIUM (default /usr/bin/chromium).
import { child } from '../gateway.mjs';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = process.env.KAFKA_EDGE_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const pkg = process.env.KAFKA_EDGE_PKG ?? path.join(root, 'target/wasm-pkg');
const cache = process.env.KAFKA_EDGE_CACHE ?? path.join(process.env.HOME, '.cache/kafka-edge');

/** Chromium's flags for these machines (no GPU, no sandbox as root, nothing fetched). */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'];

/** playwright-core from PLAYWRIGHT_CORE, or the newest playwright-core-* in the cache. */
export function playwright() {
  let dir = process.env.PLAYWRIGHT_CORE;
  if (!dir) {
    const found = existsSync(cache) ? readdirSync(cache).filter((d) => d.startsWith('playwright-core-')).sort() : [];
    if (!found.length) throw new Error(`no playwright-core in ${cache} (scripts/browser-page installs it)`);
    dir = path.join(cache, found.at(-1));
  }
  return createRequire(path.join(dir, 'node_modules', 'x.js'))('playwright-core');
}

/** Debian's Chromium, headless; never a downloaded browser. */
export function launchChromium() {
  return playwright().chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
    timeout: 60000,
  });
}

export { freePort, startGateway } from '../gateway.mjs';

/** examples/browser/serve.mjs on a free port, serving the package of `pkg`. */
export async function startServer() {
  const p = child(process.execPath, [path.join(root, 'examples/browser/serve.mjs'), '--port', '0', '--pkg', pkg]);
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error(`serve.mjs printed no URL in 10 s: ${p.log}`)), 10000);
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/serving (http:\/\/\S+)/);
      if (m) { clearTimeout(t); resolve(m[1]); }
    });
    p.on('exit', (code) => { clearTimeout(t); reject(new Error(`serve.mjs exited (${code}): ${p.log}`)); });
  });
  return { url, process: p, stop: () => p.kill() };
}

/** Record i's value as the page builds it (examples/browser/app.js, `writeValue`). */
export function streamValue(prefix, i, size) {
  const head = Buffer.from(`${prefix}-${i}-`);
  return Buffer.concat([head, Buffer.alloc(size - head.length, '.')]);
}

/** Record i's key as the page builds it, when keyed. */
export const streamKey = (i) => Buffer.from(`key-${String(i % 10000).padStart(12, '0')}`);

/** Waits until #stream-state says done (or error: throws with the page's error). */
export async function waitStream(page, timeoutMs) {
  await page.waitForFunction(
    () => ['done', 'error'].includes(document.getElementById('stream-state').dataset.state),
    null,
    { timeout: timeoutMs, polling: 250 },
  );
  return page.evaluate(() => {
    const $ = (id) => document.getElementById(id);
    return {
      state: $('stream-state').dataset.state,
      prefix: $('stream-state').dataset.prefix,
      count: Number($('stream-count').dataset.count),
      rate: Number($('stream-rate').dataset.rate),
      ms: Number($('stream-total').dataset.ms),
      error: { ...$('error').dataset, text: $('error').textContent },
    };
  });
}
