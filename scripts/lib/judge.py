"""The independent judge: reads a topic back with librdkafka (confluent-kafka),
check.crcs=true, assign() on explicit partitions from the log start, up to each partition's
high watermark, and prints every record as one JSON line, ordered by partition then offset:

  {"partition": 0, "offset": 0, "key": "hex"|null, "value": "hex"|null,
   "headers": [["name", "hex"|null], ...], "timestamp": 1700000000000,
   "timestamp_type": "create"|"log_append"}

With --count-only it prints {"partition": count, ...} instead; with --digest one JSON object
{"partition": {"count": N, "sha256": "hex"}, ...}, the SHA-256 of each partition's records in
offset order, each record hashed as key length (4-byte big-endian signed, -1 for null), key,
value length, value (headers and timestamps are not part of it): a million records checked
without shipping them as JSON (kafka-edge-examples' RecordDigest computes the same).

Exits non-zero on any consumer error (a CRC mismatch included) or when it cannot reach a
partition's high watermark within --timeout seconds.
"""

import argparse
import hashlib
import json
import struct
import sys
import time
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka import TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME


def hexor(b):
    return None if b is None else b.hex()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", help="comma-separated; default: all")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--count-only", action="store_true", help="print only the number of records per partition")
    p.add_argument("--digest", action="store_true",
                   help="print per partition the record count and a SHA-256 over its records in offset order")
    p.add_argument("--expect", type=int, default=0,
                   help="wait (up to --timeout) until the partitions hold at least this many records: "
                        "after a leader change the new leader's high watermark can lag for a moment")
    a = p.parse_args()

    def consumer():
        return Consumer({
            "bootstrap.servers": a.bootstrap,
            "group.id": f"kafka-edge-judge-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "check.crcs": True,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "topic.metadata.refresh.interval.ms": 1000,
            "log_level": 3,
        })

    c = consumer()
    md = c.list_topics(a.topic, timeout=30)
    t = md.topics.get(a.topic)
    if t is None or t.error is not None:
        sys.exit(f"judge: topic {a.topic}: {t.error if t else 'not found'}")
    parts = sorted(t.partitions) if not a.partitions else [int(x) for x in a.partitions.split(",")]
    ends = {}
    starts = {}
    deadline = time.monotonic() + a.timeout
    while True:
        try:
            for part in parts:
                lo, hi = c.get_watermark_offsets(TopicPartition(a.topic, part), timeout=5)
                starts[part], ends[part] = lo, hi
            if sum(ends[p] - starts[p] for p in parts) >= a.expect:
                break
        except KafkaException as e:
            # A leader that moved (a broker restarted): ask again with fresh metadata.
            print(f"judge: watermarks: {e}; retrying with a fresh consumer", file=sys.stderr)
            c.close()
            c = consumer()
        if time.monotonic() > deadline:
            sys.exit(f"judge: the topic holds {sum(ends.get(p, 0) - starts.get(p, 0) for p in parts)} "
                     f"records after {a.timeout}s, expected at least {a.expect}")
        time.sleep(0.2)
    # Reading gets its own time budget.
    deadline = time.monotonic() + a.timeout
    todo = {part for part in parts if ends[part] > starts[part]}
    c.assign([TopicPartition(a.topic, part, starts[part]) for part in parts])
    records = {part: [] for part in parts}
    # --count-only and --digest keep no records in memory.
    counts = {part: 0 for part in parts}
    digests = {part: hashlib.sha256() for part in parts}
    keep = not (a.count_only or a.digest)
    next_offset = dict(starts)
    progress_at = {part: time.monotonic() for part in parts}
    while todo:
        now = time.monotonic()
        if now > deadline:
            sys.exit(f"judge: timed out; reached {next_offset} of {ends}")
        stalled = [p for p in todo if now - progress_at[p] > 10]
        if stalled:
            # Right after a broker restart a consumer can stay stuck on a stale leader: start a
            # fresh one where this one stopped (offsets are still checked to be dense).
            print(f"judge: partitions {sorted(stalled)} made no progress for 10 s at "
                  f"{next_offset}; reconnecting", file=sys.stderr)
            for p_ in todo:
                progress_at[p_] = now
            c.close()
            c = consumer()
            c.assign([TopicPartition(a.topic, part, next_offset[part]) for part in parts])
        for m in c.consume(num_messages=10000, timeout=0.5):
            if m.error() is not None:
                sys.exit(f"judge: consumer error: {m.error()}")
            part = m.partition()
            if m.offset() != next_offset[part]:
                # Kafka offsets of a topic without compaction or transactions are dense.
                sys.exit(f"judge: partition {part}: offset {m.offset()} after {next_offset[part] - 1}")
            next_offset[part] = m.offset() + 1
            progress_at[part] = time.monotonic()
            counts[part] += 1
            if a.digest:
                h = digests[part]
                for b in (m.key(), m.value()):
                    if b is None:
                        h.update(b"\xff\xff\xff\xff")
                    else:
                        h.update(struct.pack(">i", len(b)))
                        h.update(b)
            if not keep:
                if next_offset[part] >= ends[part]:
                    todo.discard(part)
                continue
            ts_type, ts = m.timestamp()
            records[part].append({
                "partition": part,
                "offset": m.offset(),
                "key": hexor(m.key()),
                "value": hexor(m.value()),
                "headers": [[k, hexor(v)] for k, v in (m.headers() or [])],
                "timestamp": ts,
                "timestamp_type": {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "log_append"}.get(ts_type, "none"),
            })
            if next_offset[part] >= ends[part]:
                todo.discard(part)
    c.close()
    out = sys.stdout
    if a.digest:
        json.dump({str(part): {"count": counts[part], "sha256": digests[part].hexdigest()} for part in parts}, out)
        out.write("\n")
        return
    if a.count_only:
        json.dump({str(part): counts[part] for part in parts}, out)
        out.write("\n")
        return
    for part in parts:
        for r in records[part]:
            out.write(json.dumps(r, separators=(",", ":")))
            out.write("\n")


if __name__ == "__main__":
    main()
