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

Many topics in one run (one consumer, all partitions assigned at once): --topic may be given
several times, --topics-prefix P --topic-count N names the topics of `scripts/kafka topics`
(P0000 .. P<N-1>), --topics-file F one topic a line. With more than one topic, or any of those
options, every record line starts with "topic": "name", and --count-only / --digest map each
topic to its partitions' objects: {"topic": {"partition": ...}, ...}. --partitions and
--expect then apply to every topic and to the total of all topics. One topic named by a single
--topic keeps the output above.

Secured listeners (scripts/kafka up --security): -X key=value (repeatable) passes a librdkafka
property to the consumer as it is, e.g. -X security.protocol=SASL_SSL -X sasl.mechanisms=SCRAM-SHA-512
-X sasl.username=alice -X sasl.password=alice-secret -X ssl.ca.location=D/certs/ca.pem. With any
-X, the metadata wait is bounded by --timeout (not 30 s) and a failure names the client's own
errors (authentication, TLS), so that a refused login fails fast and says why.

Transactions: --isolation read_committed (or read_uncommitted) sets librdkafka's isolation.level
and reads each partition until the consumer's position reaches its high watermark, allowing the
offset gaps that transaction markers and, with read_committed, aborted records leave; every
transaction must have ended (else the last stable offset stays below the high watermark).

Exits non-zero on any consumer error (a CRC mismatch included) or when it cannot reach a
partition's high watermark within --timeout seconds.

A partition that makes no progress for 10 s is reported on stderr with librdkafka's own view of
it (its statistics, refreshed every 5 s): fetch_state, leader, broker (the one it fetches
from), leader_epoch, next_offset (next fetch offset), app_offset, hi_offset, ls_offset,
fetchq_cnt (-1001: not known yet, e.g. no fetch answered). Reading it:
  - fetch_state other than active (offset-query, offset-wait, validate-epoch-wait): librdkafka
    waits on an offset lookup or a leader-epoch validation (KIP-320 OffsetForLeaderEpoch);
  - leader != broker: the partition has not moved to its new leader yet;
  - active, next_offset equal to the judge's offset, hi_offset above it, fetchq_cnt 0: the
    fetches to that broker bring nothing back (the broker's side);
  - next_offset above the judge's offset with no record delivered: librdkafka skipped records
    it does not hand out (aborted-transaction or control batches): the data's side;
  - hi_offset below the judge's target: the leader's high watermark is below the one read
    before reading (a former leader's).
Then the judge starts a fresh consumer where the stalled one stopped (offsets are still
checked to be dense); --no-reconnect keeps the consumer (to study a stall), --debug CONTEXTS
adds librdkafka's debug log (e.g. consumer,fetch,topic,metadata,broker) on stderr, and
scripts/lib/judge_restart.py runs the judge around broker kills and restarts and counts stalls.

That reconnect is a workaround for a stall seen after a broker of the three-node cluster was
killed and restarted, whose cause is not known. What was measured (librdkafka 2.16.0 from
confluent-kafka 2.16.1, the newest on PyPI; Kafka 4.4.0; 3 nodes; --no-reconnect; no stall in
any of these):
  - judge_restart.py, 6 partitions RF 3, min.insync.replicas 2, records of an idempotent acks=all
    producer, the judge run after the restart (12 tries), while the broker was down (12), 1 to
    8 s into its restart (21), and right after a restart with the producer running through
    the kill and the restart (12): 57 tries;
  - the same with a preferred leader election (what the controller does every 300 s, moving
    leaders back to the restarted broker) while the judge reads: 6 tries;
  - the three-node kill test of kafka-edge-std (200,000 records, 3 partitions, broker 2 killed
    and restarted while it produces; the judge after every replica is back in sync): 36 runs,
    18 of them with --no-reconnect (the other 18 reported no partition without progress);
  - one broker frozen (SIGSTOP) for 25 s while the judge read: the partitions it led resumed
    on their new leaders about 7 s later (broker.session.timeout.ms 6 s).
The one stall recorded before (the kill test, partition 2 at offset 67059 of 68244) outlasted
eleven fresh consumers over 115 s: each new consumer, assigned at that offset, stalled there
too, so that stall did not lie in state a consumer had built up (a stale leader, a backoff, a
pending validation) but in what the cluster answered, in the records at that offset, or in how
librdkafka handles them; the report above tells which when it comes back. No librdkafka issue
or changelog entry (up to 2.15.0) describes it; the fixes of stalls after leader changes
(e.g. #4680 in 2.5.0, #4970 in 2.10.0) predate 2.16.0.
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

# admin.py (beside this file) names the topics of `scripts/kafka topics`; importing it must not
# leave a __pycache__ in the source tree.
sys.dont_write_bytecode = True
from admin import numbered_topics  # noqa: E402


def hexor(b):
    return None if b is None else b.hex()


def topics_of(a):
    """The topics to read, in output order, and whether the output names them."""
    topics = list(a.topic or [])
    if a.topics_prefix is not None or a.topic_count is not None:
        if a.topics_prefix is None or a.topic_count is None or a.topic_count < 1:
            sys.exit("judge: --topics-prefix and --topic-count (>= 1) go together")
        topics += numbered_topics(a.topics_prefix, a.topic_count)
    if a.topics_file:
        with open(a.topics_file) as f:
            topics += [line.strip() for line in f if line.strip()]
    if not topics:
        sys.exit("judge: no topic (--topic, --topics-prefix/--topic-count or --topics-file)")
    if len(set(topics)) != len(topics):
        sys.exit("judge: a topic is named twice")
    single = len(topics) == 1 and a.topics_prefix is None and not a.topics_file
    return topics, not single


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", action="append", help="a topic to read; may be repeated")
    p.add_argument("--topics-prefix", help="with --topic-count: read the topics P0000 .. P<N-1>")
    p.add_argument("--topic-count", type=int)
    p.add_argument("--topics-file", help="read the topics named in this file, one a line")
    p.add_argument("--partitions", help="comma-separated, of every topic; default: all")
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--count-only", action="store_true", help="print only the number of records per partition")
    p.add_argument("--digest", action="store_true",
                   help="print per partition the record count and a SHA-256 over its records in offset order")
    p.add_argument("-X", dest="props", action="append", default=[], metavar="KEY=VALUE",
                   help="a librdkafka consumer property (security.protocol, sasl.*, ssl.*, ...); repeatable")
    p.add_argument("--isolation", choices=["read_committed", "read_uncommitted"],
                   help="isolation.level, reading up to the high watermark by position (transactions)")
    p.add_argument("--expect", type=int, default=0,
                   help="wait (up to --timeout) until the partitions hold at least this many records: "
                        "after a leader change the new leader's high watermark can lag for a moment")
    p.add_argument("--no-reconnect", action="store_true",
                   help="keep the consumer of a stalled partition (report the stall, do not reconnect)")
    p.add_argument("--debug", metavar="CONTEXTS",
                   help="librdkafka debug contexts of the consumer (e.g. consumer,fetch,topic,metadata,broker), "
                        "logged on stderr")
    a = p.parse_args()
    topics, named = topics_of(a)
    extra = {}
    for kv in a.props:
        if "=" not in kv:
            sys.exit(f"judge: -X takes key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        extra[k] = v
    client_errors = {}  # distinct client errors (without librdkafka's "(after N ms ...)"), in order
    # librdkafka's own view of each assigned partition (its statistics, every 5 s): what a
    # stalled partition reports tells where it is stuck.
    fetch_view = {}

    def on_stats(js):
        try:
            stats = json.loads(js)
        except ValueError:
            return
        for t, tv in stats.get("topics", {}).items():
            for pid, pv in tv.get("partitions", {}).items():
                if pv.get("desired"):
                    fetch_view[(t, int(pid))] = {
                        k: pv.get(k) for k in ("fetch_state", "leader", "broker", "leader_epoch", "next_offset",
                                               "app_offset", "hi_offset", "ls_offset", "fetchq_cnt")}

    def on_error(err):
        client_errors.setdefault(str(err.str()).split(" (after ")[0], None)

    def consumer():
        conf = {
            "bootstrap.servers": a.bootstrap,
            "group.id": f"kafka-edge-judge-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "check.crcs": True,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "topic.metadata.refresh.interval.ms": 1000,
            "log_level": 3,
            "statistics.interval.ms": 5000,
            "stats_cb": on_stats,
        }
        if extra:
            # Client errors (a refused login, a failed TLS handshake) go to error_cb and are
            # reported once, not logged at every reconnect (every 50 ms).
            conf["log_level"] = 0
            conf.update(extra)
            conf["error_cb"] = on_error
        if a.isolation:
            conf["isolation.level"] = a.isolation
        if a.debug:
            conf["debug"] = a.debug
            conf["log_level"] = 7
        return Consumer(conf)

    def tp(key, offset=None):
        return TopicPartition(key[0], key[1]) if offset is None else TopicPartition(key[0], key[1], offset)

    c = consumer()
    # One Metadata request: for one topic that topic alone, for several all topics at once.
    try:
        md = c.list_topics(topics[0] if len(topics) == 1 else None, timeout=min(30, a.timeout) if extra else 30)
    except KafkaException as e:
        if not extra:
            raise
        c.poll(0.5)  # serves error_cb: the authentication or TLS error behind the timeout
        sys.exit(f"judge: metadata: {e}" + ("; client errors: " + " | ".join(list(client_errors)[:4])
                                            if client_errors else ""))
    missing = [(t, md.topics.get(t)) for t in topics
               if md.topics.get(t) is None or md.topics[t].error is not None]
    if missing:
        t, m = missing[0]
        sys.exit(f"judge: topic {t}: {m.error if m else 'not found'}"
                 + (f" (and {len(missing) - 1} more topics)" if len(missing) > 1 else ""))
    # Each partition is a key (topic, partition), in output order.
    keys = []
    for t in topics:
        parts = sorted(md.topics[t].partitions) if not a.partitions else [int(x) for x in a.partitions.split(",")]
        keys += [(t, part) for part in parts]
    t_start = time.monotonic()
    ends = {}
    starts = {}
    deadline = time.monotonic() + a.timeout
    while True:
        try:
            for key in keys:
                lo, hi = c.get_watermark_offsets(tp(key), timeout=5)
                starts[key], ends[key] = lo, hi
            if sum(ends[k] - starts[k] for k in keys) >= a.expect:
                break
        except KafkaException as e:
            # A leader that moved (a broker restarted): ask again with fresh metadata.
            print(f"judge: watermarks: {e}; retrying with a fresh consumer", file=sys.stderr)
            c.close()
            c = consumer()
        if time.monotonic() > deadline:
            sys.exit(f"judge: the partitions hold {sum(ends.get(k, 0) - starts.get(k, 0) for k in keys)} "
                     f"records after {a.timeout}s, expected at least {a.expect}")
        time.sleep(0.2)
    total = sum(ends[k] - starts[k] for k in keys)
    # Reading gets its own time budget.
    deadline = time.monotonic() + a.timeout
    todo = {key for key in keys if ends[key] > starts[key]}
    c.assign([tp(key, starts[key]) for key in keys])
    records = {key: [] for key in keys}
    # --count-only and --digest keep no records in memory.
    counts = {key: 0 for key in keys}
    digests = {key: hashlib.sha256() for key in keys}
    keep = not (a.count_only or a.digest)
    next_offset = dict(starts)
    progress_at = {key: time.monotonic() for key in keys}
    read = 0
    report_at = time.monotonic() + 5
    while todo:
        now = time.monotonic()
        if now > deadline:
            late = sorted(todo)[:10]
            sys.exit(f"judge: timed out; {len(todo)} partitions unfinished, e.g. "
                     + ", ".join(f"{t}/{part} at {next_offset[(t, part)]} of {ends[(t, part)]}" for t, part in late))
        if now > report_at:
            # Long reads (a million records, or a broker that fails over) say how far they got.
            report_at = now + 5
            print(f"judge: {read} of {total} records read, {len(keys) - len(todo)} of {len(keys)} "
                  f"partitions complete, {now - t_start:.1f} s", file=sys.stderr)
        stalled = [k for k in todo if now - progress_at[k] > 10]
        if stalled:
            # What librdkafka says of each stalled partition (fetch state, leader and its epoch,
            # next fetch offset, watermarks) tells where it is stuck.
            def view(k):
                v = fetch_view.get(k)
                return " ".join(f"{n}={v[n]}" for n in v) if v else "no statistics yet"
            at = "; ".join(f"{t}/{part} at {next_offset[(t, part)]} of {ends[(t, part)]} ({view((t, part))})"
                           for t, part in sorted(stalled)[:10])
            print(f"judge: {len(stalled)} partitions made no progress for 10 s: {at}"
                  + ("" if a.no_reconnect else "; reconnecting"), file=sys.stderr)
            for k in todo:
                progress_at[k] = now
            if not a.no_reconnect:
                # A fresh consumer where this one stopped (offsets are still checked to be dense).
                c.close()
                fetch_view.clear()
                c = consumer()
                c.assign([tp(key, next_offset[key]) for key in keys])
        for m in c.consume(num_messages=10000, timeout=0.5):
            if m.error() is not None:
                sys.exit(f"judge: consumer error: {m.error()}")
            key = (m.topic(), m.partition())
            if key not in next_offset:
                sys.exit(f"judge: a record of {key[0]}/{key[1]}, which was not assigned")
            if m.offset() != next_offset[key] and not a.isolation:
                # Kafka offsets of a topic without compaction or transactions are dense.
                where = f"topic {key[0]} partition {key[1]}" if named else f"partition {key[1]}"
                sys.exit(f"judge: {where}: offset {m.offset()} after {next_offset[key] - 1}")
            next_offset[key] = m.offset() + 1
            progress_at[key] = time.monotonic()
            counts[key] += 1
            read += 1
            if a.digest:
                h = digests[key]
                for b in (m.key(), m.value()):
                    if b is None:
                        h.update(b"\xff\xff\xff\xff")
                    else:
                        h.update(struct.pack(">i", len(b)))
                        h.update(b)
            if not keep:
                if next_offset[key] >= ends[key]:
                    todo.discard(key)
                continue
            ts_type, ts = m.timestamp()
            r = {"topic": key[0]} if named else {}
            r.update({
                "partition": key[1],
                "offset": m.offset(),
                "key": hexor(m.key()),
                "value": hexor(m.value()),
                "headers": [[k, hexor(v)] for k, v in (m.headers() or [])],
                "timestamp": ts,
                "timestamp_type": {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "log_append"}.get(ts_type, "none"),
            })
            records[key].append(r)
            if next_offset[key] >= ends[key]:
                todo.discard(key)
        if a.isolation and todo:
            # Markers and aborted records take offsets no record shows: the position tells.
            for part in c.position([tp(key) for key in sorted(todo)]):
                key = (part.topic, part.partition)
                if part.offset >= ends[key]:
                    todo.discard(key)
                elif part.offset > next_offset[key]:
                    next_offset[key] = part.offset
                    progress_at[key] = time.monotonic()
    c.close()
    if time.monotonic() - t_start > 5:
        print(f"judge: read {read} records of {len(keys)} partitions in {time.monotonic() - t_start:.1f} s",
              file=sys.stderr)
    out = sys.stdout

    def per_topic(value):
        """{"partition": value} for one topic, {"topic": {"partition": value}} for several."""
        if not named:
            return {str(key[1]): value(key) for key in keys}
        grouped = {}
        for key in keys:
            grouped.setdefault(key[0], {})[str(key[1])] = value(key)
        return grouped

    if a.digest:
        json.dump(per_topic(lambda k: {"count": counts[k], "sha256": digests[k].hexdigest()}), out)
        out.write("\n")
        return
    if a.count_only:
        json.dump(per_topic(lambda k: counts[k]), out)
        out.write("\n")
        return
    for key in keys:
        for r in records[key]:
            out.write(json.dumps(r, separators=(",", ":")))
            out.write("\n")


if __name__ == "__main__":
    main()
