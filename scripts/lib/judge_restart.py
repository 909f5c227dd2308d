"""Runs the judge against a three-node cluster around a broker restart, many times, and counts
how often it fails to reach the high watermarks (a stall). Run with the venv's Python:

  python scripts/lib/judge_restart.py --dir D --tries N [--when after|down|during|live|elect|all]
         [--records R] [--judge-timeout S] [--logs L] [--reconnect]

Needs a cluster from `scripts/kafka up --brokers 3 --dir D`. Creates one topic (6 partitions,
RF 3, min.insync.replicas 2), then per try: produces R records (acks=all), SIGKILLs a broker
(in turn 1, 2, 3), produces R more while it is down, and runs the judge (--no-reconnect unless
--reconnect, librdkafka debug logs to L/try-K.log):
  after   after `scripts/kafka start N` returned (the broker is back in Metadata)
  down    while the broker is down (it is started after the judge)
  during  1 to 8 s (at random) after the broker process was launched, while it comes up
          (`start N` runs beside the judge)
  live    a producer runs throughout (R records before the kill, the kill, R more, the
          restart, R more), the judge right after the restart (as a test that kills a broker
          under load and reads back at once)
  elect   as after, then, once every replica is back in sync, a preferred leader election
          (what the controller does by itself every leader.imbalance.check.interval.seconds,
          300 s) moves leaders back to the restarted broker while the judge reads
--when all takes after, down, during and live in turn. A try whose judge exits non-zero (or
counts other than what was produced) is a stall; its log is kept, the others are removed.
Every replica is back in sync before the next kill.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid

from confluent_kafka import ElectionType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

here = os.path.dirname(os.path.abspath(__file__))
scripts = os.path.dirname(here)
DEBUG = "consumer,fetch,topic,metadata,broker,protocol"


def kafka(d, *args, **kw):
    return subprocess.run([os.path.join(scripts, "kafka"), *args, "--dir", d], check=True,
                          stdout=subprocess.DEVNULL, **kw)


def produce(bootstrap, topic, n, tag):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "log_level": 3})
    failed = []

    def cb(err, _m):
        if err is not None:
            failed.append(err)

    for i in range(n):
        while True:
            try:
                p.produce(topic, key=f"{tag}-{i}".encode(), value=os.urandom(100), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.1)
    left = p.flush(60)
    if left or failed:
        sys.exit(f"produce: {left} undelivered, {len(failed)} failed ({failed[:1]})")


def produce_live(bootstrap, topic, n, tag, marks):
    """Produces 3 * n records; sets marks[0] after n are acknowledged and waits for marks[1]
    (the kill done), sets marks[2] after 2 n and waits for marks[3] (the restart done)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 2, "log_level": 0})
    failed = []

    def cb(err, _m):
        if err is not None:
            failed.append(err)

    for i in range(3 * n):
        if i and i % n == 0:
            p.flush(120)
            marks[2 * (i // n) - 2].set()
            marks[2 * (i // n) - 1].wait()
        while True:
            try:
                p.produce(topic, key=f"{tag}-{i}".encode(), value=os.urandom(100), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    if left or failed:
        sys.exit(f"produce: {left} undelivered, {len(failed)} failed ({failed[:1]})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tries", type=int, default=10)
    ap.add_argument("--when", default="all", choices=["after", "down", "during", "live", "elect", "all"])
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--judge-timeout", type=float, default=40)
    ap.add_argument("--logs", default="/tmp/judge-restart-logs")
    ap.add_argument("--reconnect", action="store_true", help="keep the judge's reconnect workaround on")
    a = ap.parse_args()
    env = dict(line.strip().split("=", 1) for line in open(os.path.join(a.dir, "env")) if "=" in line)
    bootstrap = env["BOOTSTRAP"]
    os.makedirs(a.logs, exist_ok=True)
    topic = f"judge-restart-{uuid.uuid4().hex[:8]}"
    kafka(a.dir, "topic", topic, "--partitions", "6", "--replication", "3",
          "--config", "min.insync.replicas=2")
    whens = ["after", "down", "during", "live"] if a.when == "all" else [a.when]
    stalls = {w: 0 for w in whens}
    runs = {w: 0 for w in whens}
    total = 0
    for k in range(a.tries):
        when = whens[k % len(whens)]
        node = str(k % 3 + 1)
        starter = None
        if when == "live":
            marks = [threading.Event() for _ in range(4)]
            t = threading.Thread(target=produce_live, args=(bootstrap, topic, a.records, f"l{k}", marks))
            t.start()
            marks[0].wait()
            kafka(a.dir, "kill", node)
            marks[1].set()
            marks[2].wait()
            kafka(a.dir, "start", node)
            marks[3].set()
            t.join()
            total += 3 * a.records
        else:
            produce(bootstrap, topic, a.records, f"a{k}")
            kafka(a.dir, "kill", node)
            produce(bootstrap, topic, a.records, f"b{k}")
            total += 2 * a.records
        if when in ("after", "elect"):
            kafka(a.dir, "start", node)
        if when == "elect":
            kafka(a.dir, "insync", topic)
        elif when == "during":
            starter = subprocess.Popen([os.path.join(scripts, "kafka"), "start", node, "--dir", a.dir],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # The JVM takes a few seconds to listen, then registers and catches up: land anywhere in it.
            time.sleep(random.uniform(1, 8))
        log = os.path.join(a.logs, f"try-{k}.log")
        cmd = [os.path.join(scripts, "judge"), "--bootstrap", bootstrap, "--topic", topic, "--count-only",
               "--timeout", str(a.judge_timeout), "--expect", str(total), "--debug", DEBUG]
        if not a.reconnect:
            cmd.append("--no-reconnect")
        t0 = time.monotonic()
        with open(log, "w") as f:
            if when == "elect":
                judge = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=f, text=True)
                delay = random.uniform(0.1, 1.5)
                time.sleep(delay)
                admin = AdminClient({"bootstrap.servers": bootstrap})
                fut = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, i) for i in range(6)])
                try:
                    moved = {tp.partition: e for tp, e in fut.result(30).items()}
                except Exception as e:  # noqa: BLE001 (reported, the judge still decides the try)
                    moved = str(e)
                out, _ = judge.communicate()
                r = subprocess.CompletedProcess(cmd, judge.returncode, out)
                print(f"  election {delay:.2f} s into the read: {moved}", flush=True)
            else:
                r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=f, text=True)
        took = time.monotonic() - t0
        if when == "down":
            kafka(a.dir, "start", node)
        elif starter is not None:
            starter.wait()
        # Every replica back in sync before the next kill (min.insync.replicas 2 of 3).
        kafka(a.dir, "insync", topic)
        runs[when] += 1
        ok = r.returncode == 0
        if ok:
            counts = json.loads(r.stdout)
            ok = sum(counts.values()) == total
        if not ok:
            stalls[when] += 1
        err = ""
        if not ok:
            with open(log) as f:
                err = [line for line in f if line.startswith("judge:")][-1:]
        print(f"try {k} ({when}, broker {node}): {'ok' if ok else 'STALL'} in {took:.1f} s "
              f"{''.join(err).strip()}", flush=True)
        if ok:
            os.remove(log)
    print(json.dumps({"topic": topic, "runs": runs, "stalls": stalls}))


if __name__ == "__main__":
    main()
