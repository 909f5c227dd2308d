"""Cluster administration for scripts/kafka through librdkafka (confluent-kafka).

Sub-commands:
  wait   --bootstrap B --brokers N [--node ID] [--timeout S] [--watch PID:LOG ...]
         waits until Metadata lists N brokers (and node ID, if given); fails early with the
         tail of the log of a watched process that died.
  topic  --bootstrap B --name T --partitions P --replication R [--config k=v ...]
         creates the topic and waits until every partition has a leader.
  delete --bootstrap B --name T
"""

import argparse
import os
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "logger": _Quiet()})


class _Quiet:
    """Swallows librdkafka's connection-refused chatter while brokers come up."""

    def log(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *a, **k: None


def tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(data[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def cmd_wait(a):
    watch = []
    for w in a.watch or []:
        pid, log = w.split(":", 1)
        watch.append((int(pid), log))
    deadline = time.monotonic() + a.timeout
    client = admin(a.bootstrap)
    last = "no answer yet"
    while time.monotonic() < deadline:
        for pid, log in watch:
            if not alive(pid):
                sys.exit(f"process {pid} died while starting; tail of {log}:\n{tail(log)}")
        try:
            md = client.list_topics(timeout=2)
            ids = sorted(md.brokers)
            last = f"brokers {ids}"
            if len(ids) >= a.brokers and (a.node is None or a.node in ids):
                print(f"brokers up: {ids}", file=sys.stderr)
                return
        except Exception as e:  # noqa: BLE001 - any failure here means "not yet"
            last = str(e)
        time.sleep(0.3)
    msg = f"cluster at {a.bootstrap} not ready after {a.timeout}s ({last})"
    for pid, log in watch:
        msg += f"\n--- tail of {log} (pid {pid}, {'alive' if alive(pid) else 'dead'}):\n{tail(log)}"
    sys.exit(msg)


def cmd_topic(a):
    client = admin(a.bootstrap)
    config = dict(kv.split("=", 1) for kv in (a.config or []))
    topic = NewTopic(a.name, num_partitions=a.partitions, replication_factor=a.replication, config=config)
    for _, fut in client.create_topics([topic], operation_timeout=30, request_timeout=30).items():
        fut.result()
    deadline = time.monotonic() + a.timeout
    while time.monotonic() < deadline:
        md = client.list_topics(topic=a.name, timeout=5)
        t = md.topics.get(a.name)
        if t is not None and t.error is None and len(t.partitions) == a.partitions:
            if all(p.leader >= 0 and p.error is None for p in t.partitions.values()):
                print(f"topic {a.name}: {a.partitions} partitions, replication {a.replication}", file=sys.stderr)
                return
        time.sleep(0.2)
    sys.exit(f"topic {a.name}: partitions without a leader after {a.timeout}s")


def cmd_insync(a):
    """Waits until every partition of the topic has a leader and all its replicas in sync."""
    client = admin(a.bootstrap)
    deadline = time.monotonic() + a.timeout
    last = "no metadata"
    while time.monotonic() < deadline:
        try:
            md = client.list_topics(topic=a.name, timeout=5)
            t = md.topics.get(a.name)
            if t is not None and t.error is None and t.partitions:
                lagging = [p.id for p in t.partitions.values()
                           if p.leader < 0 or sorted(p.isrs) != sorted(p.replicas)]
                if not lagging:
                    return
                last = f"partitions {sorted(lagging)} not fully in sync"
        except Exception as e:  # noqa: BLE001 - any failure here means "not yet"
            last = str(e)
        time.sleep(0.3)
    sys.exit(f"topic {a.name}: {last} after {a.timeout}s")


def cmd_delete(a):
    client = admin(a.bootstrap)
    for _, fut in client.delete_topics([a.name], operation_timeout=30).items():
        fut.result()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait")
    w.add_argument("--bootstrap", required=True)
    w.add_argument("--brokers", type=int, default=1)
    w.add_argument("--node", type=int)
    w.add_argument("--timeout", type=float, default=90)
    w.add_argument("--watch", action="append")
    t = sub.add_parser("topic")
    t.add_argument("--bootstrap", required=True)
    t.add_argument("--name", required=True)
    t.add_argument("--partitions", type=int, default=1)
    t.add_argument("--replication", type=int, default=1)
    t.add_argument("--config", action="append")
    t.add_argument("--timeout", type=float, default=60)
    i = sub.add_parser("insync")
    i.add_argument("--bootstrap", required=True)
    i.add_argument("--name", required=True)
    i.add_argument("--timeout", type=float, default=120)
    d = sub.add_parser("delete")
    d.add_argument("--bootstrap", required=True)
    d.add_argument("--name", required=True)
    a = p.parse_args()
    {"wait": cmd_wait, "topic": cmd_topic, "insync": cmd_insync, "delete": cmd_delete}[a.cmd](a)


if __name__ == "__main__":
    main()
