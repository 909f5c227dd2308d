"""Cluster administration for scripts/kafka through librdkafka (confluent-kafka).

Sub-commands:
  wait   --bootstrap B --brokers N [--node ID] [--timeout S] [--watch PID:LOG ...]
         waits until Metadata lists N brokers (and node ID, if given); fails early with the
         tail of the log of a watched process that died.
  topic  --bootstrap B --name T --partitions P --replication R [--config k=v ...]
         creates the topic and waits until every partition has a leader.
  topics --bootstrap B --prefix P --count N --partitions P --replication R [--config k=v ...]
         creates the N topics P0000..P<N-1> (see numbered_topics) in one CreateTopics request
         and waits until every partition of each has a leader.
  delete --bootstrap B --name T
  acls   --bootstrap B --user U --denied M
         the ACLs of `scripts/kafka up --security --acl` (see write_acl_props there).
"""

import argparse
import os
import sys
import time

from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                  NewTopic, ResourcePatternType, ResourceType)


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


def numbered_topics(prefix, count):
    """The names `scripts/kafka topics` creates and `scripts/judge --topics-prefix` reads:
    prefix + index, zero-padded to at least 4 digits so that the names sort in index order."""
    width = max(4, len(str(count - 1)))
    return [f"{prefix}{i:0{width}d}" for i in range(count)]


def wait_for_leaders(client, names, partitions, timeout, progress=None):
    """Waits until each topic in `names` has `partitions` partitions, each with a leader.

    Asks for the metadata of all topics at once (one request per round, however many topics)
    rather than topic by topic. Returns the names still missing a leader at the deadline.
    """
    deadline = time.monotonic() + timeout
    pending = set(names)
    while True:
        try:
            md = client.list_topics(timeout=10)
            for name in list(pending):
                t = md.topics.get(name)
                if t is not None and t.error is None and len(t.partitions) == partitions and all(
                        p.leader >= 0 and p.error is None for p in t.partitions.values()):
                    pending.discard(name)
        except Exception as e:  # noqa: BLE001 - any failure here means "not yet"
            if progress:
                progress(f"metadata: {e}")
        if not pending or time.monotonic() > deadline:
            return pending
        if progress:
            progress(f"{len(names) - len(pending)}/{len(names)} topics have leaders")
        time.sleep(0.2)


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


def cmd_topics(a):
    """Many topics for one test: one CreateTopics request for all of them (the broker's
    controller creates them in one go; one request per topic would take minutes for
    hundreds), then one Metadata request per round until all have leaders."""
    if a.count < 1:
        sys.exit("topics: --count must be at least 1")
    names = numbered_topics(a.prefix, a.count)
    client = admin(a.bootstrap)
    config = dict(kv.split("=", 1) for kv in (a.config or []))
    t0 = time.monotonic()
    print(f"creating {a.count} topics {names[0]} .. {names[-1]} ({a.partitions} partitions, "
          f"replication {a.replication}) in one request", file=sys.stderr)
    futures = client.create_topics(
        [NewTopic(n, num_partitions=a.partitions, replication_factor=a.replication, config=config)
         for n in names],
        operation_timeout=a.timeout, request_timeout=a.timeout)
    failed = []
    for name, fut in futures.items():
        try:
            fut.result()
        except Exception as e:  # noqa: BLE001 - collected and reported together below
            failed.append(f"{name}: {e}")
    if failed:
        sys.exit(f"topics: {len(failed)} of {a.count} not created; first: " + "; ".join(failed[:5]))
    t1 = time.monotonic()
    print(f"created in {t1 - t0:.2f} s; waiting for leaders", file=sys.stderr)
    last = [0.0]

    def progress(msg):
        # At most one line a second: a slow controller should be visible, not flood the log.
        if time.monotonic() - last[0] >= 1:
            last[0] = time.monotonic()
            print(f"  {msg}", file=sys.stderr)

    pending = wait_for_leaders(client, names, a.partitions, a.timeout, progress)
    if pending:
        sys.exit(f"topics: {len(pending)} of {a.count} topics without leaders after {a.timeout}s, "
                 f"e.g. {sorted(pending)[:5]}")
    print(f"{a.count} topics {names[0]} .. {names[-1]}: {a.partitions} partitions each, "
          f"replication {a.replication}, all with leaders in {time.monotonic() - t0:.2f} s",
          file=sys.stderr)


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


def cmd_acls(a):
    def allow(user, op, prefix):
        return AclBinding(ResourceType.TOPIC, prefix, ResourcePatternType.PREFIXED, f"User:{user}",
                          "*", op, AclPermissionType.ALLOW)
    bindings = [
        allow(a.user, AclOperation.DESCRIBE, "acl-ok-"),
        allow(a.user, AclOperation.WRITE, "acl-ok-"),
        allow(a.user, AclOperation.DESCRIBE, "acl-ro-"),
        allow(a.denied, AclOperation.DESCRIBE, "acl-"),
    ]
    client = admin(a.bootstrap)
    for _, fut in client.create_acls(bindings, request_timeout=30).items():
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
    m = sub.add_parser("topics")
    m.add_argument("--bootstrap", required=True)
    m.add_argument("--prefix", required=True)
    m.add_argument("--count", type=int, required=True)
    m.add_argument("--partitions", type=int, default=1)
    m.add_argument("--replication", type=int, default=1)
    m.add_argument("--config", action="append")
    m.add_argument("--timeout", type=float, default=120)
    i = sub.add_parser("insync")
    i.add_argument("--bootstrap", required=True)
    i.add_argument("--name", required=True)
    i.add_argument("--timeout", type=float, default=120)
    d = sub.add_parser("delete")
    d.add_argument("--bootstrap", required=True)
    d.add_argument("--name", required=True)
    c = sub.add_parser("acls")
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--user", required=True)
    c.add_argument("--denied", required=True)
    a = p.parse_args()
    {"wait": cmd_wait, "topic": cmd_topic, "topics": cmd_topics, "insync": cmd_insync,
     "delete": cmd_delete, "acls": cmd_acls}[a.cmd](a)


if __name__ == "__main__":
    main()
