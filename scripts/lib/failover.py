"""The arithmetic of scripts/failover (librdkafka via confluent-kafka for metadata and reads).

Sub-commands:
  leader  --bootstrap B --topic T [--partition 0]
          prints "NODE P,P,..": the broker leading the partition and every partition of the
          topic it leads (the ones its loss interrupts).
  watch   --bootstrap B --topic T --victim N --partitions P,P --out F [--timeout S]
          polls Metadata every 50 ms (started just before the signal) and writes
          {"partition": UNIX_MICROS} of the first answer naming another leader for each: when
          the cluster had failed over, whatever the client does.
  trial   --bootstrap B --topic T --client C --mode M --victim N --partitions P,P --signal-us S
          --ack-log F --count N --judge-counts F [--watch F] --out F
          one trial's figures, as JSON in --out (and one line on stderr); see `recovery`.
  table   --json F TRIAL.json ...
          median and max per client and mode, as a table on stdout and JSON in --json.

Recovery of a partition: the time from the signal to the first acknowledgement of a record
the new leader wrote, i.e. the smallest ack time among records at or after the first offset
whose batch carries a leader epoch newer than the one of the last record acknowledged before
the signal. A record sent before the signal and acknowledged after counts. Not simply "the
first ack after the signal": after SIGTERM the old leader keeps accepting records until the
controller has moved its partitions away, and those acks say nothing about the failover.
A trial's recovery is that of its slowest interrupted partition (when all the broker's
traffic flows again).
"""

import argparse
import json
import statistics
import sys
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient


def cmd_leader(a):
    client = AdminClient({"bootstrap.servers": a.bootstrap, "log_level": 0})
    md = client.list_topics(topic=a.topic, timeout=10)
    parts = md.topics[a.topic].partitions
    leader = parts[a.partition].leader
    if leader < 0:
        sys.exit(f"failover: partition {a.partition} of {a.topic} has no leader")
    led = sorted(p.id for p in parts.values() if p.leader == leader)
    print(leader, ",".join(map(str, led)))


def cmd_watch(a):
    parts = [int(p) for p in a.partitions.split(",")]
    client = AdminClient({"bootstrap.servers": a.bootstrap, "log_level": 0})
    seen = {}
    deadline = time.monotonic() + a.timeout
    while len(seen) < len(parts) and time.monotonic() < deadline:
        try:
            md = client.list_topics(topic=a.topic, timeout=1)
            now_us = time.time_ns() // 1000
            for p in parts:
                leader = md.topics[a.topic].partitions[p].leader
                if p not in seen and leader >= 0 and leader != a.victim:
                    seen[p] = now_us
        except Exception:  # noqa: BLE001 - a dead broker's timeout: ask again
            pass
        time.sleep(0.05)
    with open(a.out, "w") as f:
        json.dump({str(p): us for p, us in seen.items()}, f)


def read_epochs(bootstrap, topic, partitions, timeout=60):
    """{partition: [(offset, leader_epoch), ...]} of every record, in offset order."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "failover-epochs",
                  "enable.auto.commit": False, "check.crcs": True, "log_level": 0,
                  "enable.partition.eof": True})
    try:
        high = {}
        for p in partitions:
            _, high[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        out = {p: [] for p in partitions}
        pending = {p for p in partitions if high[p] > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for m in c.consume(10000, timeout=1):
                if m.error():
                    continue
                p = m.partition()
                out[p].append((m.offset(), m.leader_epoch()))
                if m.offset() + 1 >= high[p]:
                    pending.discard(p)
        if pending:
            sys.exit(f"failover: could not read partitions {sorted(pending)} of {topic} to their end")
        return out
    finally:
        c.close()


def read_ack_log(path):
    """[(unix_us, partition, offset)] of acknowledged records, and the failure lines."""
    acks, failures = [], []
    with open(path) as f:
        for line in f:
            fields = line.split(None, 2)
            if len(fields) < 3:
                continue
            if fields[1] == "-1":
                failures.append(line.strip())
            else:
                acks.append((int(fields[0]), int(fields[1]), int(fields[2])))
    return acks, failures


def recovery(acks, epochs, signal_us):
    """Milliseconds from the signal to the new leader's first acknowledgement on one
    partition (see the module doc), the first ack after the signal whatever the leader, the
    epochs before and after, and the boundary offset. acks: [(us, offset)]."""
    epoch_of = dict(epochs)
    before = [o for us, o in acks if us < signal_us]
    if not before:
        return None
    e0 = epoch_of.get(max(before))
    boundary = next((o for o, e in epochs if e is not None and e0 is not None and e > e0), None)
    after = [us for us, o in acks if us >= signal_us]
    first_after = (min(after) - signal_us) / 1000 if after else None
    if boundary is None:
        return {"recovery_ms": None, "first_ack_after_ms": first_after, "epoch_before": e0}
    first_new = min(us for us, o in acks if o >= boundary)
    return {"recovery_ms": (first_new - signal_us) / 1000, "first_ack_after_ms": first_after,
            "epoch_before": e0, "epoch_after": epoch_of[boundary], "boundary_offset": boundary}


def cmd_trial(a):
    parts = [int(p) for p in a.partitions.split(",")]
    acks, failures = read_ack_log(a.ack_log)
    with open(a.judge_counts) as f:
        judged = json.load(f)
    stored = sum(int(v) for v in judged.values())
    epochs = read_epochs(a.bootstrap, a.topic, parts)
    per = {}
    for p in parts:
        per[p] = recovery([(us, o) for us, pp, o in acks if pp == p], epochs[p], a.signal_us)
    times = [r["recovery_ms"] for r in per.values() if r and r["recovery_ms"] is not None]
    moved = None
    if a.watch:
        with open(a.watch) as f:
            watched = json.load(f)
        for p in parts:
            if per[p] is not None and str(p) in watched:
                per[p]["metadata_moved_ms"] = (watched[str(p)] - a.signal_us) / 1000
        if len(watched) == len(parts):
            moved = (max(watched.values()) - a.signal_us) / 1000
    complete = len(times) == len(parts)
    res = {
        "client": a.client, "mode": a.mode, "topic": a.topic, "victim": a.victim,
        "partitions": parts, "signal_us": a.signal_us, "count": a.count,
        "acked": len(acks), "failed": len(failures), "first_failures": failures[:3],
        "stored": stored, "lost": max(0, a.count - stored), "duplicated": max(0, stored - a.count),
        "recovery_ms": max(times) if complete else None,
        "metadata_moved_ms": moved,
        "per_partition": {str(p): per[p] for p in parts},
    }
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    rec = f"{res['recovery_ms']:.0f} ms" if complete else "NOT MEASURED"
    each = ", ".join(f"{p}: {per[p] and per[p]['recovery_ms']}" for p in parts)
    seen = "?" if moved is None else f"{moved:.0f} ms"
    print(f"[failover] {a.client} {a.mode}: recovery {rec}, metadata named the new leaders after {seen} "
          f"(per partition {each}); "
          f"acked {len(acks)}/{a.count}, failed {len(failures)}, stored {stored}", file=sys.stderr)


def cmd_table(a):
    trials = []
    for path in a.trials:
        with open(path) as f:
            trials.append(json.load(f))
    rows = []
    keys = []
    for t in trials:
        k = (t["client"], t["mode"])
        if k not in keys:
            keys.append(k)
    for client, mode in keys:
        ts = [t for t in trials if (t["client"], t["mode"]) == (client, mode)]
        times = [t["recovery_ms"] for t in ts if t["recovery_ms"] is not None]
        # The client's own share: from the first Metadata answer naming the new leaders to
        # its first acknowledgement from them (the cluster's share varies from trial to
        # trial, e.g. with whether the victim was also the active controller).
        own = [t["recovery_ms"] - t["metadata_moved_ms"] for t in ts
               if t["recovery_ms"] is not None and t.get("metadata_moved_ms") is not None]
        rows.append({
            "client": client, "mode": mode, "trials": len(ts), "measured": len(times),
            "median_ms": statistics.median(times) if times else None,
            "max_ms": max(times) if times else None,
            "after_metadata_median_ms": statistics.median(own) if own else None,
            "after_metadata_max_ms": max(own) if own else None,
            "all_ms": [t["recovery_ms"] for t in ts],
            "metadata_moved_ms": [t.get("metadata_moved_ms") for t in ts],
            "sent": sum(t["count"] for t in ts), "stored": sum(t["stored"] for t in ts),
            "lost": sum(t["lost"] for t in ts), "duplicated": sum(t["duplicated"] for t in ts),
            "failed": sum(t["failed"] for t in ts),
        })

    def ms(v):
        return "-" if v is None else f"{v:.0f}"
    # "each trial": the client's recovery / when Metadata first named the new leaders.
    # "after md": recovery minus the time Metadata first named the new leaders (median, max).
    print(f"{'client':<10} {'mode':<5} {'median ms':>9} {'max ms':>7} {'trials':>6}  "
          f"{'after md':>11}  {'lost':>4} {'dup':>4} {'failed':>6}  each trial: recovery/metadata moved (ms)")
    for r in rows:
        each = " ".join(f"{ms(v)}/{ms(m)}" for v, m in zip(r["all_ms"], r["metadata_moved_ms"]))
        after = f"{ms(r['after_metadata_median_ms'])}/{ms(r['after_metadata_max_ms'])}"
        print(f"{r['client']:<10} {r['mode']:<5} {ms(r['median_ms']):>9} {ms(r['max_ms']):>7} "
              f"{r['measured']:>3}/{r['trials']:<2}  {after:>11}  {r['lost']:>4} {r['duplicated']:>4} "
              f"{r['failed']:>6}  {each}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": rows, "trials": trials}, f, indent=1)
    bad = [r for r in rows if r["lost"] or r["measured"] < r["trials"]]
    sys.exit(1 if bad else 0)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    l = sub.add_parser("leader")
    l.add_argument("--bootstrap", required=True)
    l.add_argument("--topic", required=True)
    l.add_argument("--partition", type=int, default=0)
    t = sub.add_parser("trial")
    for name in ("--bootstrap", "--topic", "--client", "--mode", "--partitions", "--ack-log",
                 "--judge-counts", "--out"):
        t.add_argument(name, required=True)
    t.add_argument("--victim", type=int, required=True)
    t.add_argument("--signal-us", type=int, required=True)
    t.add_argument("--count", type=int, required=True)
    t.add_argument("--watch")
    w = sub.add_parser("watch")
    for name in ("--bootstrap", "--topic", "--partitions", "--out"):
        w.add_argument(name, required=True)
    w.add_argument("--victim", type=int, required=True)
    w.add_argument("--timeout", type=float, default=60)
    s = sub.add_parser("table")
    s.add_argument("--json")
    s.add_argument("trials", nargs="+")
    a = p.parse_args()
    {"leader": cmd_leader, "watch": cmd_watch, "trial": cmd_trial, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
