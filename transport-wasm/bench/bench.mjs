// Node producer benchmark: kafka-edge (this package, wasm over net.Socket) against KafkaJS
// 2.2.4 and @platformatic/kafka, on one broker. Not a test: figures for issue 9's closing note.
//
//   node bench.mjs --bootstrap HOST:PORT [--records N] [--runs R] [--clients "edge kafkajs platformatic"]
//                  [--acks "1 all"] [--keys "keyless keyed"] [--partitions P] [--json FILE]
//                  [--judge] [--pkg DIR] [--root REPO] [--candidate DIR]
//
// (scripts/wasm-bench installs the dependencies, builds the package, starts a broker and runs
// this.) --bootstrap defaults to $BOOTSTRAP, --pkg to $KAFKA_EDGE_PKG (the built package,
// target/wasm-pkg), --root (for scripts/judge) to $KAFKA_EDGE_ROOT. --candidate DIR adds a
// client "candidate": another build of the package (a change to measure), run interleaved with
// the others under the same conditions. Every case (client x acks x keys) runs --runs times (default 3), each run in
// a fresh child process, so that CPU and peak RSS are that client's alone; the table quotes
// the median run of each case (by msgs/s; CPU and RSS are medians of their own).
//
// A run: a fresh topic of P partitions (default 6, created here through KafkaJS's admin);
// the child connects, builds its messages (100-byte values, 16-byte keys out of 10,000 when
// keyed), sends one warm-up call per lane (20,000 records, all in flight), then times N records
// (N rounded up to whole calls): msgs/s = N / wall time until every call resolved; CPU per message =
// process.cpuUsage() (user + system, every thread of the process) over the same span / N;
// peak RSS = process.resourceUsage().maxRSS at the end. The parent then checks the topic's
// end offsets (KafkaJS admin) sum to N + 20,000, so a client that drops records cannot win;
// with --judge also the librdkafka judge's count (scripts/judge --count-only), which reads
// every record back (check.crcs=true).
//
// Each client at its best, with the same load shape (KafkaJS's best per the issue:
// pre-built arrays of 1,000 messages, 20 calls in flight):
// - kafkajs: producer.send({ topic, messages: 1000, acks }), 20 in flight; defaults otherwise
//   (no idempotence, no compression, the Java-compatible murmur2 partitioner, keyless
//   records spread round-robin over the partitions).
// - platformatic: producer.send({ messages: 1000 with topic, acks }), 20 in flight,
//   maxInflights 20 per connection (its default 5 queues the rest), no idempotence (its
//   default); keyless records all go to partition 0 (its default partitioner).
// - edge: producer.send({ topic, messages: 1000 }), 20 in flight, linger.ms 5,
//   batch.size 262144 (a call's records per partition fit one batch), buffer.memory 64 MiB;
//   acks=all keeps the package's default idempotence (stricter than the peers: producer id
//   and sequence numbers in every batch); acks=1 turns it off (Java's rule).
// Values and keys are Buffers (Uint8Array), pre-built; one array per in-flight lane, reused by
// that lane once its previous call resolved.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const PER_CALL = 1000;
const IN_FLIGHT = 20;
const KEY_SPACE = 10000;
const VALUE_BYTES = 100;

function parseArgs(argv) {
  const a = {
    bootstrap: process.env.BOOTSTRAP,
    records: 500000,
    runs: 3,
    clients: 'edge kafkajs platformatic',
    acks: '1 all',
    keys: 'keyless keyed',
    partitions: 6,
    json: null,
    judge: false,
    pkg: process.env.KAFKA_EDGE_PKG ?? path.resolve(here, '../../target/wasm-pkg'),
    candidate: null,
    root: process.env.KAFKA_EDGE_ROOT ?? path.resolve(here, '../..'),
    child: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    switch (k) {
      case '--bootstrap': a.bootstrap = v(); break;
      case '--records': a.records = Number(v()); break;
      case '--runs': a.runs = Number(v()); break;
      case '--clients': a.clients = v(); break;
      case '--acks': a.acks = v(); break;
      case '--keys': a.keys = v(); break;
      case '--partitions': a.partitions = Number(v()); break;
      case '--json': a.json = v(); break;
      case '--judge': a.judge = true; break;
      case '--pkg': a.pkg = v(); break;
      case '--root': a.root = v(); break;
      case '--candidate': a.candidate = v(); break;
      case '--child': a.child = JSON.parse(v()); break;
      default: throw new Error(`unknown argument ${k} (see the comment at the top of bench.mjs)`);
    }
  }
  return a;
}

// ---------------------------------------------------------------- the child: one run

/** The messages of one lane: `PER_CALL` records, values distinct per lane and index. */
function lane(l, keyed) {
  return Array.from({ length: PER_CALL }, (_, j) => {
    const value = Buffer.alloc(VALUE_BYTES, 0x61 + ((l + j) % 26));
    value.write(`${l}:${j}:`);
    const key = keyed ? Buffer.from(`key-${String((l * PER_CALL + j * 7919) % KEY_SPACE).padStart(12, '0')}`) : null;
    return { key, value };
  });
}

/** Client adapters: connect(case) -> { send(messages) -> Promise, close() }. */
const clients = {
  async edge(c) {
    const { Producer } = await import(pathToFileURL(path.join(c.pkg, 'kafka_edge.js')).href);
    const p = await Producer.connect({
      'bootstrap.servers': c.bootstrap,
      acks: c.acks === 'all' ? 'all' : '1',
      'linger.ms': 5,
      'batch.size': 262144,
      'buffer.memory': 64 << 20,
      // For tuning experiments: BENCH_EDGE_PROPS='{"batch.size": 16384}' overrides these.
      ...JSON.parse(process.env.BENCH_EDGE_PROPS ?? '{}'),
    });
    return {
      prepare: (msgs) => msgs.map((m) => (m.key ? { key: m.key, value: m.value } : { value: m.value })),
      send: (msgs) => p.send({ topic: c.topic, messages: msgs }),
      close: () => p.close(),
    };
  },
  /** Another build of the package (--candidate), with the same settings. */
  candidate: (c) => clients.edge(c),
  async kafkajs(c) {
    process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
    const { Kafka, logLevel } = (await import('kafkajs')).default;
    const kafka = new Kafka({ clientId: 'bench', brokers: [c.bootstrap], logLevel: logLevel.NOTHING });
    const p = kafka.producer({ allowAutoTopicCreation: false });
    await p.connect();
    const acks = c.acks === 'all' ? -1 : 1;
    return {
      prepare: (msgs) => msgs.map((m) => (m.key ? { key: m.key, value: m.value } : { value: m.value })),
      send: (msgs) => p.send({ topic: c.topic, messages: msgs, acks }),
      close: () => p.disconnect(),
    };
  },
  async platformatic(c) {
    // 2.x targets Node 22 and uses Promise.withResolvers (V8 12); Node 20 lacks it. The
    // standard's own definition, so it runs unchanged on the Node 20 of these machines.
    Promise.withResolvers ??= function withResolvers() {
      let resolve;
      let reject;
      const promise = new this((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    };
    const { Producer } = await import('@platformatic/kafka');
    const acks = c.acks === 'all' ? -1 : 1;
    const p = new Producer({
      clientId: 'bench',
      bootstrapBrokers: [c.bootstrap],
      acks,
      autocreateTopics: false,
      maxInflights: IN_FLIGHT,
    });
    return {
      prepare: (msgs) =>
        msgs.map((m) => (m.key ? { topic: c.topic, key: m.key, value: m.value } : { topic: c.topic, value: m.value })),
      send: (msgs) => p.send({ messages: msgs, acks }),
      close: () => p.close(),
    };
  },
};

async function child(c) {
  const client = await clients[c.client](c);
  const lanes = Array.from({ length: IN_FLIGHT }, (_, l) => client.prepare(lane(l, c.keyed)));
  // Warm-up, untimed: one call per lane, all in flight (20,000 records): connections,
  // metadata, and the JIT (V8 runs wasm in its baseline tier, Liftoff, until a function is
  // hot enough for TurboFan; JavaScript likewise), so the timed span is the steady state.
  await Promise.all(lanes.map((msgs) => client.send(msgs)));
  const calls = Math.ceil(c.records / PER_CALL);
  let next = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    lanes.map(async (msgs) => {
      while (next < calls) {
        next++;
        await client.send(msgs);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await client.close();
  const records = calls * PER_CALL;
  const out = {
    client: c.client,
    acks: c.acks,
    keys: c.keyed ? 'keyed' : 'keyless',
    run: c.run,
    topic: c.topic,
    records,
    seconds,
    msgsPerSec: records / seconds,
    cpuUsPerMsg: (cpu.user + cpu.system) / records,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    node: process.version,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------- the parent

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Creates `topic` and waits until each partition has a leader. A broker that has just started
 * answers UNKNOWN_TOPIC_OR_PARTITION for a while, longer than KafkaJS's own waitForLeaders
 * retries: poll the metadata here for up to 60 s instead. */
async function createTopic(admin, topic, partitions) {
  const deadline = Date.now() + 60000;
  let created = false;
  for (;;) {
    try {
      if (!created) {
        await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: false });
        created = true;
      }
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const ps = topics[0]?.partitions ?? [];
      if (ps.length === partitions && ps.every((p) => p.leader >= 0)) return;
    } catch (e) {
      if (!e.retriable || Date.now() > deadline) throw e;
      if (e.type === 'TOPIC_ALREADY_EXISTS') created = true;
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic}: no leader for every partition after 60 s`);
    await sleep(200);
  }
}

function runChild(c) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(c)], {
      cwd: here,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${c.client} ${c.acks} run ${c.run} exited with ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch (e) {
        reject(new Error(`${c.client}: no result line in ${JSON.stringify(out)}`));
      }
    });
  });
}

async function parent(a) {
  if (!a.bootstrap) throw new Error('no broker: --bootstrap HOST:PORT or $BOOTSTRAP');
  const say = (m) => process.stderr.write(`[bench] ${m}\n`);
  const { Kafka, logLevel } = (await import('kafkajs')).default;
  const admin = new Kafka({ clientId: 'bench-admin', brokers: [a.bootstrap], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  const names = a.clients.split(/[\s,]+/).filter(Boolean);
  if (a.candidate && !names.includes('candidate')) names.splice(names.indexOf('edge') + 1, 0, 'candidate');
  for (const n of names) if (!clients[n]) throw new Error(`unknown client ${n} (edge, kafkajs, platformatic)`);
  if (names.includes('candidate') && !a.candidate) throw new Error('client candidate needs --candidate DIR');
  const acksList = a.acks.split(/[\s,]+/).filter(Boolean);
  const keysList = a.keys.split(/[\s,]+/).filter(Boolean);
  const cases = [];
  for (const acks of acksList) for (const keys of keysList) for (const client of names) cases.push({ client, acks, keys });
  const total = cases.length * a.runs;
  let done = 0;
  const runs = [];
  const stamp = Date.now().toString(36);
  // Runs interleave the clients (run 1 of every case, then run 2, ...) so that a slow patch of
  // the shared machine does not land on one client only.
  for (let run = 1; run <= a.runs; run++) {
    for (const k of cases) {
      const topic = `bench-${stamp}-${k.client}-${k.acks}-${k.keys}-${run}`;
      await createTopic(admin, topic, a.partitions);
      const r = await runChild({
        client: k.client, acks: k.acks, keyed: k.keys === 'keyed', run, topic,
        records: a.records, bootstrap: a.bootstrap, pkg: k.client === 'candidate' ? a.candidate : a.pkg,
      });
      const offsets = await admin.fetchTopicOffsets(topic);
      const stored = offsets.reduce((s, o) => s + Number(o.high) - Number(o.low), 0);
      r.expected = r.records + PER_CALL * IN_FLIGHT;
      r.stored = stored;
      if (a.judge) {
        const counts = JSON.parse(
          execFileSync(path.join(a.root, 'scripts/judge'), ['--bootstrap', a.bootstrap, '--topic', topic, '--count-only'], {
            encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
          }),
        );
        r.judged = Object.values(counts).reduce((s, n) => s + n, 0);
      }
      done++;
      say(
        `${done}/${total} ${k.client} acks=${k.acks} ${k.keys} run ${run}: ` +
          `${Math.round(r.msgsPerSec)} msgs/s, ${r.cpuUsPerMsg.toFixed(2)} us CPU/msg, ` +
          `${r.maxRssMiB.toFixed(0)} MiB RSS, broker holds ${stored}/${r.expected}` +
          (a.judge ? `, judge read ${r.judged}` : ''),
      );
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      if (stored !== r.expected || (a.judge && r.judged !== r.expected)) {
        await admin.disconnect();
        throw new Error(`${k.client} acks=${k.acks} ${k.keys} run ${run}: the broker holds ${stored} records (judge: ${r.judged}), expected ${r.expected}`);
      }
      runs.push(r);
    }
  }
  await admin.disconnect();

  const summary = cases.map((k) => {
    const rs = runs.filter((r) => r.client === k.client && r.acks === k.acks && r.keys === k.keys);
    return {
      client: k.client, acks: k.acks, keys: k.keys, runs: rs.length, records: rs[0].records,
      partitions: a.partitions, valueBytes: VALUE_BYTES, perCall: PER_CALL, inFlight: IN_FLIGHT,
      msgsPerSec: median(rs.map((r) => r.msgsPerSec)),
      cpuUsPerMsg: median(rs.map((r) => r.cpuUsPerMsg)),
      maxRssMiB: median(rs.map((r) => r.maxRssMiB)),
      msgsPerSecRuns: rs.map((r) => Math.round(r.msgsPerSec)),
      node: rs[0].node,
    };
  });
  if (a.json) {
    writeFileSync(a.json, summary.map((s) => JSON.stringify(s)).join('\n') + '\n');
    say(`wrote ${summary.length} cases to ${a.json}`);
  }
  // The table, with each client's ratio to KafkaJS in the same case.
  const rows = [['acks', 'keys', 'client', 'msgs/s', 'x kafkajs', 'CPU us/msg', 'x kafkajs', 'RSS MiB', 'runs (msgs/s)']];
  for (const s of summary) {
    const kj = summary.find((o) => o.client === 'kafkajs' && o.acks === s.acks && o.keys === s.keys);
    rows.push([
      s.acks, s.keys, s.client, Math.round(s.msgsPerSec).toString(),
      kj ? (s.msgsPerSec / kj.msgsPerSec).toFixed(2) : '-',
      s.cpuUsPerMsg.toFixed(2),
      kj ? (s.cpuUsPerMsg / kj.cpuUsPerMsg).toFixed(2) : '-',
      s.maxRssMiB.toFixed(0), s.msgsPerSecRuns.join(' '),
    ]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  console.log(
    `${summary[0]?.records ?? 0} records x ${VALUE_BYTES} B per run, ${a.partitions} partitions, ` +
      `calls of ${PER_CALL}, ${IN_FLIGHT} in flight, median of ${a.runs} run(s), ${process.version}`,
  );
  for (const r of rows) console.log(r.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
}

const args = parseArgs(process.argv.slice(2));
if (args.child) await child(args.child);
else await parent(args);
