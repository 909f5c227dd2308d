// The example page (examples/browser/) in headless Chromium under playwright-core, through
// a WebSocket gateway (the bridge; ../gateway.mjs) to the one-node cluster of
// KAFKA_EDGE_DIR; every record it sent read back by the librdkafka judge. `scripts/browser-page [--dir D]` runs it (node --test); environment
// as in harness.mjs.
//
// 1. A typed message: fill key and value, click Send, read partition and offset from the page;
//    the partition is Java's for the key (scripts/oracle).
// 2. A stream of STREAM records (keyed, 100-byte values), flush on hide checked and a
//    visibilitychange to hidden while it runs: the page reports its unacknowledged count and
//    flush() resolving; when done, a screenshot to target/browser-page.png.
// 3. The judge reads the topic: exactly the typed message (at the offset the page showed)
//    and the STREAM records, each once, values and keys as the page built them, keys in
//    Java's partitions.
// 4. Leaving the page in the middle of a stream (no flush): the next load says how many
//    records were acknowledged and how many not; the broker holds at least the acknowledged
//    ones and at most acknowledged + unacknowledged.
// 5. An unusable bridge.url: the page shows the TypeError (name, message).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { bootstrap, createTopic, hex, judge, oraclePartitions, uniqueTopic } from '../node/helpers.mjs';
import { launchChromium, root, startServer, startGateway, streamKey, streamValue, waitStream } from './harness.mjs';

const STREAM = Number(process.env.KAFKA_EDGE_PAGE_RECORDS ?? 5000);
const SIZE = 100;
const PARTITIONS = 6;
const SCREENSHOT = path.join(root, 'target/browser-page.png');
const say = (m) => console.error(`[page] ${m}`);

const topic = uniqueTopic('page');
let gateway;
let server;
let browser;
let page;
let pageUrl;
const pageLog = [];
let typed; // { key, value, partition, offset }
let streamed; // the page's figures

before(async () => {
  createTopic(topic, PARTITIONS);
  gateway = await startGateway(bootstrap);
  server = await startServer();
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
  pageUrl = (q) => `${server.url}?${new URLSearchParams(q)}`;
  say(`Chromium ${browser.version()}, page ${server.url}, ${gateway.kind} ${gateway.url} -> ${bootstrap}, topic ${topic}`);
});

after(async () => {
  await browser?.close().catch(() => {});
  server?.stop();
  gateway?.stop();
});

/** On a failed check, what the page and the gateway said. */
async function explain(fn) {
  try {
    return await fn();
  } catch (e) {
    console.error(pageLog.slice(-40).join('\n'));
    if (gateway) console.error(`${gateway.kind} said:\n${gateway.process.log.split('\n').slice(-20).join('\n')}`);
    if (page) console.error('page error element:', await page.locator('#error').textContent().catch(() => '?'));
    throw e;
  }
}

test('a typed message: Send shows its partition and offset', () => explain(async () => {
  await page.goto(pageUrl({ bridge: gateway.url, topic }));
  assert.equal(await page.inputValue('#bridge'), gateway.url, 'bridge from the query string');
  assert.equal(await page.inputValue('#topic'), topic, 'topic from the query string');
  const key = 'typed-key';
  const value = `typed in Chromium ${new Date().toISOString()}`;
  await page.fill('#key', key);
  await page.fill('#message', value);
  await page.click('#send');
  await page.waitForSelector('#last-delivery[data-offset]', { timeout: 60000 });
  const d = await page.evaluate(() => ({ ...document.getElementById('last-delivery').dataset }));
  typed = { key, value, partition: Number(d.partition), offset: d.offset };
  say(`typed message delivered to partition ${d.partition} at offset ${d.offset} in ${d.latencyMs} ms`);
  assert.match(d.offset, /^\d+$/);
  assert.ok(Number(d.latencyMs) > 0);
  assert.equal(d.value, value);
  assert.equal(typed.partition, oraclePartitions([Buffer.from(key)], PARTITIONS)[0], "Java's partition for the key");
  assert.equal(await page.locator('#deliveries li').count(), 1);
  assert.equal(await page.locator('#inflight').getAttribute('data-count'), '0');
}));

test(`a stream of ${STREAM} records, flush on hide while it runs`, () => explain(async () => {
  await page.check('#flush-on-hide');
  await page.check('#stream-keyed');
  await page.fill('#stream-n', String(STREAM));
  await page.fill('#stream-size', String(SIZE));
  await page.fill('#stream-per-call', '250');
  await page.fill('#stream-inflight', '8');
  await page.click('#stream');
  await page.waitForFunction(() => document.getElementById('stream-state').dataset.state !== 'idle');
  // A tab going to the background: Playwright cannot hide a headless page, so the page gets
  // the event a real one would (document.visibilityState 'hidden', then visibilitychange).
  await page.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  streamed = await waitStream(page, 120000);
  assert.equal(streamed.state, 'done', `stream state (error: ${streamed.error.text})`);
  assert.equal(streamed.count, STREAM);
  assert.ok(streamed.ms > 0 && streamed.rate > 0);
  say(`page streamed ${STREAM} records in ${streamed.ms} ms (${streamed.rate} records/s), prefix ${streamed.prefix}`);
  await page.waitForSelector('#hide-log[data-flushed=yes]', { timeout: 60000 });
  const hide = await page.evaluate(() => ({ ...document.getElementById('hide-log').dataset }));
  assert.equal(hide.event, 'visibilitychange');
  assert.match(hide.unacked, /^\d+$/);
  say(`visibilitychange (hidden): ${hide.unacked} unacknowledged then; flush() resolved`);
  assert.equal(await page.locator('#inflight').getAttribute('data-count'), '0');
  assert.equal(await page.locator('#error').textContent(), '');
  mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  say(`screenshot ${path.relative(root, SCREENSHOT)}`);
}));

test('the judge reads exactly the typed message and the stream', () => {
  assert.ok(typed && streamed, 'the two tests before ran');
  const got = judge(topic);
  assert.equal(got.length, STREAM + 1, `records on the broker (${STREAM} streamed + 1 typed)`);
  const keys = Array.from({ length: Math.min(STREAM, 10000) }, (_, i) => streamKey(i));
  const java = oraclePartitions(keys, PARTITIONS);
  const seen = new Set();
  let typedSeen = 0;
  for (const r of got) {
    if (r.key === hex(typed.key)) {
      typedSeen++;
      assert.equal(r.value, hex(typed.value));
      assert.equal(r.partition, typed.partition);
      assert.equal(String(r.offset), typed.offset, 'the offset the page showed');
      continue;
    }
    const v = Buffer.from(r.value, 'hex').toString();
    const m = v.match(/^(.+)-(\d+)-\.*$/);
    assert.ok(m && m[1] === streamed.prefix, `a value the page did not build: ${v}`);
    const i = Number(m[2]);
    assert.ok(i < STREAM, `index ${i}`);
    assert.ok(!seen.has(i), `record ${i} read twice`);
    seen.add(i);
    assert.equal(r.value, streamValue(streamed.prefix, i, SIZE).toString('hex'), `record ${i}: value`);
    assert.equal(r.key, streamKey(i).toString('hex'), `record ${i}: key`);
    assert.equal(r.partition, java[i % 10000], `record ${i}: Java's partition`);
  }
  assert.equal(typedSeen, 1, 'the typed message once');
  assert.equal(seen.size, STREAM);
  say(`the judge read ${got.length} records: the typed one and all ${STREAM} streamed, each once, as built`);
});

test('leaving the page mid-stream: the next load says what was and was not acknowledged', () => explain(async () => {
  const left = uniqueTopic('page-left');
  createTopic(left, PARTITIONS);
  const n = 200000; // more than the page can send before it is left
  await page.goto(pageUrl({ bridge: gateway.url, topic: left, n, size: SIZE, perCall: 500, inflight: 8 }));
  await page.click('#stream');
  await page.waitForFunction(() => Number(document.getElementById('stream-count').dataset.count) >= 2000, null, {
    timeout: 60000,
  });
  // pagehide fires on navigation; flush on hide is off: the rest of the stream is abandoned.
  await page.goto(pageUrl({ bridge: gateway.url, topic }));
  const d = await page.evaluate(() => ({ ...document.getElementById('hide-log').dataset }));
  assert.equal(d.event, 'previous-pagehide', 'the page reports the previous pagehide');
  assert.equal(d.topic, left);
  const acked = Number(d.acknowledged);
  const unacked = Number(d.unacked);
  say(`left mid-stream: the page said ${acked} acknowledged, ${unacked} unacknowledged at pagehide`);
  assert.ok(acked >= 2000, `acknowledged ${acked}`);
  assert.ok(unacked > 0 && acked + unacked < n, `the page was left mid-stream (${acked} + ${unacked} of ${n})`);
  const stored = judge(left).length;
  say(`the broker holds ${stored} records of that stream`);
  assert.ok(stored >= acked, `every acknowledged record is stored (${stored} >= ${acked})`);
  assert.ok(stored <= acked + unacked, `nothing beyond what the page had handed over (${stored} <= ${acked} + ${unacked})`);
}));

test('an unusable bridge.url: the page shows the error', () => explain(async () => {
  await page.goto(pageUrl({ bridge: 'http://127.0.0.1:9/kafka', topic }));
  await page.click('#send');
  await page.waitForSelector('#error[data-name]', { timeout: 30000 });
  const e = await page.evaluate(() => ({ ...document.getElementById('error').dataset }));
  assert.equal(e.name, 'TypeError');
  assert.match(e.message, /bridge\.url/);
  assert.equal(await page.locator('#status').getAttribute('data-state'), 'error');
}));
