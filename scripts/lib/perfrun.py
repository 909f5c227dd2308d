"""What the perf scripts (scripts/rss, scripts/hot-partition) share: the release build of
kafka-edge-perf, a cluster of scripts/kafka (given, or a one-node one started for the run),
fresh topics, and runs of the tool under /usr/bin/time."""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(HERE)
PERF = os.path.join(ROOT, "target", "release", "kafka-edge-perf")


def say(msg):
    print(f"== {msg}", flush=True)


def kafka(*args, check=True):
    return subprocess.run(
        [os.path.join(HERE, "kafka"), *args], check=check, capture_output=True, text=True
    )


def build_perf(tool):
    """Builds kafka-edge-perf (release) unless told not to; exits if it is missing."""
    say("building kafka-edge-perf (release)")
    subprocess.run(
        ["cargo", "build", "--release", "--locked", "-q", "-p", "kafka-edge-examples", "--bin", "kafka-edge-perf"],
        cwd=ROOT, check=True,
    )
    if not os.access(PERF, os.X_OK):
        sys.exit(f"{tool}: {PERF} is missing")


@contextlib.contextmanager
def cluster(tool, cluster_dir):
    """Yields (cluster dir, bootstrap): `cluster_dir` if given, else a one-node Apache Kafka
    started for the run (scripts/kafka up) and stopped after it."""
    own_dir = None
    if cluster_dir is None:
        own_dir = tempfile.mkdtemp(prefix=f"kafka-edge-{os.path.basename(tool)}.")
        cluster_dir = os.path.join(own_dir, "kafka")
        say(f"starting a one-node Apache Kafka in {cluster_dir}")
        up = kafka("up", "--brokers", "1", "--dir", cluster_dir, check=False)
        if up.returncode != 0:
            sys.exit(f"{tool}: scripts/kafka up failed:\n{up.stdout}{up.stderr}")
    try:
        env = kafka("env", "--dir", cluster_dir).stdout
        m = re.search(r"^BOOTSTRAP=(\S+)", env, re.M)
        if not m:
            sys.exit(f"{tool}: no BOOTSTRAP in the env of {cluster_dir}")
        yield cluster_dir, m.group(1)
    finally:
        if own_dir:
            say("stopping the broker")
            kafka("down", "--dir", cluster_dir, check=False)
            shutil.rmtree(own_dir, ignore_errors=True)


def run_perf(tool, bootstrap, cluster_dir, name, partitions, records, props, log_path, echo=True):
    """Runs kafka-edge-perf under /usr/bin/time into a fresh topic of `partitions`
    (deleted after); returns (msgs/s or None, CPU seconds user+sys, peak RSS KiB)."""
    topic = f"{name}-{time.time_ns()}"
    created = kafka("topic", topic, "--partitions", str(partitions), "--replication", "1", "--dir", cluster_dir, check=False)
    if created.returncode != 0:
        sys.exit(f"{tool}: cannot create topic {topic}: {created.stderr.strip()}")
    cmd = [
        "/usr/bin/time", "-f", "TIME %e %U %S %M",
        PERF, "--bootstrap-server", bootstrap, "--topic", topic,
        "--num-records", str(records), "--record-size", "100", "--throughput", "-1",
        "--no-latency-samples", "--producer-props", *props,
    ]
    cpu, peak_kib, rate = None, None, None
    with open(log_path, "w") as log:
        log.write(" ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(line)
            if line.startswith("TIME "):
                _, _, user, sys_, peak = line.split()
                cpu, peak_kib = float(user) + float(sys_), int(peak)
                continue
            m = re.match(r"(\d+) records sent, ([\d.]+) records/sec", line)
            if m and int(m.group(1)) == records:
                rate = float(m.group(2))
            if echo and records > 0:
                # The tool's 5-second window lines and its summary: progress.
                print(f"   {line.rstrip()}", flush=True)
        status = proc.wait()
    # The disk holds: the topic goes once measured (admin.py through this venv's librdkafka).
    cache = os.environ.get("KAFKA_EDGE_CACHE", os.path.expanduser("~/.cache/kafka-edge"))
    subprocess.run([os.path.join(cache, "venv", "bin", "python"), os.path.join(HERE, "lib", "admin.py"), "delete",
                    "--bootstrap", bootstrap, "--name", topic], capture_output=True, check=False)
    if status != 0 or peak_kib is None:
        sys.exit(f"{tool}: kafka-edge-perf failed (status {status}); see {log_path}")
    return rate, cpu, peak_kib
