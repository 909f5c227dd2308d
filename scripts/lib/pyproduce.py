"""A third, independent producer: kafka-python's KafkaProducer (Java-compatible murmur2
partitioner), with the same stdin/stdout contract as `scripts/oracle produce`:
JSON records in ({"key","value","headers","timestamp","partition"}, bytes as hex), one JSON
outcome per record out ({"i","partition","offset"} or {"i","error"}), in input order.

Used where Java's client cannot talk to a broker (tansu closes the connection on the
ApiVersions v5 request that kafka-clients 4.4 sends to a known node).

  python pyproduce.py BOOTSTRAP TOPIC [acks=all] [linger.ms=5]
"""

import json
import sys

from kafka import KafkaProducer


def unhex(s):
    return None if s is None else bytes.fromhex(s)


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2]
    props = dict(a.split("=", 1) for a in sys.argv[3:])
    acks = props.get("acks", "all")
    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        acks=acks if acks == "all" else int(acks),
        linger_ms=int(props.get("linger.ms", "5")),
        enable_idempotence=props.get("enable.idempotence", "false") == "true",
    )
    futures = []
    for line in sys.stdin:
        if not line.strip():
            continue
        r = json.loads(line)
        futures.append(producer.send(
            topic,
            key=unhex(r.get("key")),
            value=unhex(r.get("value")),
            headers=[(k, unhex(v)) for k, v in r.get("headers", [])],
            partition=r.get("partition"),
            timestamp_ms=r.get("timestamp"),
        ))
    producer.flush()
    errors = 0
    for i, f in enumerate(futures):
        try:
            md = f.get(timeout=60)
            out = {"i": i, "partition": md.partition, "offset": md.offset}
        except Exception as e:  # noqa: BLE001 - reported per record
            errors += 1
            out = {"i": i, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
    producer.close()
    print(f"kafka-python produce: {len(futures)} records, {errors} errors", file=sys.stderr)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
