"""The matrix of `scripts/compare --matrix`: every client over record sizes, keys, partition
counts and acks, each run sending the same number of BYTES; then fixed-rate runs for latency.

Run by scripts/compare (which builds the clients and starts the broker) with the venv's Python;
see scripts/compare's header for the options. Every finished run is appended to
OUT/runs.jsonl at once, so `--resume` skips what a stopped matrix already has (a failed run is
tried again). At the end: OUT/matrix.json (every run's raw numbers and the medians),
OUT/table.md (Markdown tables of medians), OUT/*.png (plots).
"""

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import admin  # noqa: E402  (scripts/lib/admin.py: topics through librdkafka)

NAMES = {
    "edge": "kafka-edge",
    "java": "Java (perf-test JVM)",
    "java-oracle": "Java (scripts/oracle JVM)",
    "rdkafka": "librdkafka",
    "rdkafka-idem": "librdkafka, idempotent",
    "rskafka": "rskafka",
}
# What each client does at acks=all by default: Java's and ours are idempotent there,
# librdkafka is not unless asked (rdkafka-idem), rskafka cannot be.
IDEMPOTENT_AT_ALL = {"edge": True, "java": True, "java-oracle": True, "rdkafka": False,
                     "rdkafka-idem": True, "rskafka": False}

SUMMARY = re.compile(
    r"^(\d+) records sent, ([0-9.]+) records/sec \(([0-9.]+) MB/sec\), ([0-9.]+) ms avg latency, "
    r"([0-9.]+) ms max latency, ([0-9.]+) ms 50th, ([0-9.]+) ms 95th, ([0-9.]+) ms 99th, ([0-9.]+) ms 99.9th")


def say(msg):
    print(f"== {msg}", file=sys.stderr, flush=True)


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--broker-pid", default="")
    p.add_argument("--scripts", required=True)
    p.add_argument("--edge-bin", required=True)
    p.add_argument("--rdkafka-bin", default="")
    p.add_argument("--rskafka-bin", default="")
    p.add_argument("--java-cmd", required=True, help="shell words of the Java perf-test command")
    p.add_argument("--clients", default="edge java rdkafka rskafka")
    p.add_argument("--bytes", type=int, default=100_000_000)
    p.add_argument("--sizes", default="10 100 1000 10000")
    p.add_argument("--keys", default="none range")
    p.add_argument("--key-range", type=int, default=10_000)
    p.add_argument("--partitions", default="1 6")
    p.add_argument("--acks", default="1 all")
    p.add_argument("--repeat-100", type=int, default=3)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=16384)
    p.add_argument("--rate", type=int, default=50_000, help="msgs/s of the latency runs; 0: none")
    p.add_argument("--rate-seconds", type=int, default=20)
    p.add_argument("--rate-partitions", type=int, default=6)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--label", default="", help="names the run in the table and the plots")
    p.add_argument("--publish", default="", help="also copy table.md and the plots into this folder (docs/perf)")
    return p.parse_args()


def clients_for(clients, acks):
    """The clients of one acks row, and why others are left out."""
    out, skipped = [], {}
    for c in clients:
        if c == "rskafka" and acks != "all":
            skipped[c] = "rskafka always sends acks=all"
            continue
        out.append(c)
        if c == "rdkafka" and acks == "all":
            out.append("rdkafka-idem")
    return out, skipped


def plan(a):
    """Every run of the matrix as a dict with a unique id, in the order they run."""
    clients = a.clients.split()
    runs = []
    for acks in a.acks.split():
        for size in map(int, a.sizes.split()):
            for keys in a.keys.split():
                for parts in map(int, a.partitions.split()):
                    reps = a.repeat_100 if size == 100 else a.repeat
                    row, _ = clients_for(clients, acks)
                    for rep in range(1, reps + 1):
                        # Rotate the order of the clients between repetitions.
                        order = row[(rep - 1) % len(row):] + row[:(rep - 1) % len(row)]
                        for c in order:
                            runs.append(dict(kind="matrix", acks=acks, size=size, keys=keys, partitions=parts,
                                             client=c, rep=rep, records=a.bytes // size, rate=-1))
    if a.rate > 0 and a.rate_seconds > 0:
        for acks in a.acks.split():
            row, _ = clients_for(clients, acks)
            for rep in range(1, a.repeat_100 + 1):
                order = row[(rep - 1) % len(row):] + row[:(rep - 1) % len(row)]
                for c in order:
                    runs.append(dict(kind="latency", acks=acks, size=100, keys="none",
                                     partitions=a.rate_partitions, client=c, rep=rep,
                                     records=a.rate * a.rate_seconds, rate=a.rate))
    for r in runs:
        r["id"] = "{kind}-acks{acks}-{size}B-{keys}-p{partitions}-{client}-{rep}".format(**r)
    return runs


def props(a, run):
    p = [f"acks={run['acks']}", "linger.ms=5", f"batch.size={a.batch_size}"]
    if run["client"] == "rdkafka-idem":
        p.append("enable.idempotence=true")
    if run["client"].startswith("rdkafka") and run["keys"] != "none":
        # Java's murmur2 placement (librdkafka's default hashes keys with CRC32), so keyed
        # records land on the same partitions for every client.
        p.append("partitioner=murmur2_random")
    return p


def command(a, run, topic):
    c = run["client"]
    common = ["--bootstrap-server", a.bootstrap, "--topic", topic, "--num-records", str(run["records"]),
              "--record-size", str(run["size"]), "--throughput", str(run["rate"])]
    if run["keys"] == "range":
        common += ["--key-distribution", "range", "--record-key-range", str(a.key_range)]
    if c == "edge":
        return [a.edge_bin] + common + ["--producer-props"] + props(a, run)
    if c == "java":
        return shlex.split(a.java_cmd) + common + ["--command-property"] + props(a, run)
    if c == "java-oracle":
        return [os.path.join(a.scripts, "oracle"), "perf"] + common + ["--command-property"] + props(a, run)
    if c in ("rdkafka", "rdkafka-idem"):
        return [a.rdkafka_bin] + common + ["--producer-props"] + props(a, run)
    if c == "rskafka":
        return [a.rskafka_bin] + common + ["--producer-props"] + props(a, run)
    raise SystemExit(f"unknown client {c}")


def broker_ticks(pid):
    if not pid:
        return 0
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def judge_count(a, topic):
    """Records per partition, read back by the judge (librdkafka, check.crcs=true)."""
    out = subprocess.run([os.path.join(a.scripts, "judge"), "--bootstrap", a.bootstrap, "--topic", topic,
                          "--count-only", "--timeout", "600"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def one_run(a, run, runs_dir):
    topic = f"matrix-{run['id']}-{int(time.time())}".replace("+", "-")
    client = admin.admin(a.bootstrap)
    # Deleted segments go after 1 s instead of 60 (file.delete.delay.ms): the disk holds.
    cfg = {"file.delete.delay.ms": "1000"}
    fut = client.create_topics([admin.NewTopic(topic, run["partitions"], 1, config=cfg)])[topic]
    fut.result()
    try:
        admin.wait_for_leaders(client, [topic], run["partitions"], 60)
        return measure(a, run, topic, runs_dir)
    finally:
        # Deleted whatever happened, so that a failing matrix does not fill the disk.
        for _, f in client.delete_topics([topic], operation_timeout=30).items():
            f.result()


def measure(a, run, topic, runs_dir):
    log_path = os.path.join(runs_dir, run["id"] + ".txt")
    time_path = os.path.join(runs_dir, run["id"] + ".time")
    cmd = ["/usr/bin/time", "-o", time_path, "-f", "%e %U %S %M"] + command(a, run, topic)
    b0 = broker_ticks(a.broker_pid)
    with open(log_path, "w") as log:
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    b1 = broker_ticks(a.broker_pid)
    result = dict(run, topic=topic, rc=rc, broker_cpu_s=(b1 - b0) / 100)
    try:
        wall, user, sys_, rss = open(time_path).read().split("\n")[-2].split()
        result.update(wall_s=float(wall), cpu_s=float(user) + float(sys_), user_s=float(user),
                      sys_s=float(sys_), rss_mib=int(rss) / 1024)
    except (OSError, ValueError, IndexError):
        result["rc"] = rc or 98
    summary = [m for m in map(SUMMARY.match, open(log_path).read().splitlines()) if m]
    if summary:
        m = summary[-1].groups()
        result.update(msgs_per_s=float(m[1]), mb_per_s=float(m[2]), lat_avg_ms=float(m[3]),
                      lat_max_ms=float(m[4]), p50_ms=float(m[5]), p95_ms=float(m[6]),
                      p99_ms=float(m[7]), p999_ms=float(m[8]))
    else:
        result["rc"] = rc or 99
    result["judged_partitions"] = judge_count(a, topic)
    result["judged"] = sum(result["judged_partitions"].values())
    if result["judged"] != run["records"]:
        result["rc"] = result["rc"] or 97
    return result


def medians(results):
    groups = {}
    for r in results:
        if r["rc"] == 0:
            key = (r["kind"], r["acks"], r["size"], r["keys"], r["partitions"], r["client"])
            groups.setdefault(key, []).append(r)
    out = []
    for (kind, acks, size, keys, parts, client), rs in groups.items():
        m = dict(kind=kind, acks=acks, size=size, keys=keys, partitions=parts, client=client, runs=len(rs),
                 records=rs[0]["records"])
        for k in ("msgs_per_s", "mb_per_s", "cpu_s", "rss_mib", "broker_cpu_s", "wall_s",
                  "p50_ms", "p95_ms", "p99_ms", "p999_ms"):
            m[k] = statistics.median(r[k] for r in rs)
        m["cpu_us_per_msg"] = m["cpu_s"] * 1e6 / m["records"]
        out.append(m)
    return out


def ratio(m, base, key):
    """m's figure over kafka-edge's, or "-" without one (a CPU time below /usr/bin/time's 10 ms)."""
    return f"{m[key] / base[key]:.2f}x" if base and base[key] > 0 else "-"


def fmt_row_label(m):
    keys = f"keyed ({m['keys']})" if m["keys"] != "none" else "keyless"
    return f"{m['size']} B, {keys}, {m['partitions']}p"


def table(a, meds, skipped, label):
    lines = [f"Run: {label}", ""]
    lines.append("Fixed bytes per run ({:,} B), linger.ms=5, batch.size={}; medians of {} runs at 100 B, "
                 "{} at other sizes; keyed rows: {:,} distinct keys, key i % N in decimal (Java's "
                 "--key-distribution range). idem: idempotent producer. msgs/s as each tool reports it; "
                 "CPU is the client process's user+sys (JVM start included). kafka-edge runs with its "
                 "default batch.max.size=262144: a batch whose partition has its requests in flight "
                 "keeps growing past batch.size (KIP-782; Java and librdkafka have no such setting).".format(
                     a.bytes, a.batch_size, a.repeat_100, a.repeat, a.key_range))
    lines.append("")
    for acks in a.acks.split():
        rows = [m for m in meds if m["kind"] == "matrix" and m["acks"] == acks]
        if not rows:
            continue
        fair = (" (the fair comparison: the rows with idem = yes; librdkafka and rskafka without idempotence "
                "for reference)") if acks == "all" else ""
        lines.append(f"### acks={acks}{fair}")
        lines.append("")
        if skipped.get(acks):
            lines.append("Not run: " + "; ".join(f"{NAMES[c]}: {why}" for c, why in skipped[acks].items()))
            lines.append("")
        lines.append("| records, keys, partitions | client | idem | msgs/s | MB/s | CPU µs/msg | peak RSS MiB | broker CPU s "
                     "| p50 / p99 / p99.9 ms | msgs/s vs edge | CPU/msg vs edge | runs |")
        lines.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for size in map(int, a.sizes.split()):
            for keys in a.keys.split():
                for parts in map(int, a.partitions.split()):
                    sel = [m for m in rows if (m["size"], m["keys"], m["partitions"]) == (size, keys, parts)]
                    base = next((m for m in sel if m["client"] == "edge"), None)
                    for m in sel:
                        idem = "yes" if acks == "all" and IDEMPOTENT_AT_ALL[m["client"]] else "no"
                        rr = ratio(m, base, "msgs_per_s")
                        cr = ratio(m, base, "cpu_us_per_msg")
                        lines.append(
                            f"| {fmt_row_label(m)} | {NAMES[m['client']]} | {idem} | {m['msgs_per_s']:,.0f} | "
                            f"{m['mb_per_s']:.1f} | {m['cpu_us_per_msg']:.2f} | {m['rss_mib']:.0f} | "
                            f"{m['broker_cpu_s']:.1f} | {m['p50_ms']:.0f} / {m['p99_ms']:.0f} / {m['p999_ms']:.0f} | "
                            f"{rr} | {cr} | {m['runs']} |")
        lines.append("")
    lat = [m for m in meds if m["kind"] == "latency"]
    if lat:
        lines.append(f"### Latency at a fixed rate ({a.rate:,} msgs/s, 100 B, keyless, {a.rate_partitions} "
                     f"partitions, {a.rate_seconds} s): send to acknowledgement")
        lines.append("")
        lines.append("| acks | client | idem | msgs/s reached | p50 ms | p95 ms | p99 ms | p99.9 ms | CPU µs/msg | runs |")
        lines.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for m in lat:
            idem = "yes" if m["acks"] == "all" and IDEMPOTENT_AT_ALL[m["client"]] else "no"
            lines.append(f"| {m['acks']} | {NAMES[m['client']]} | {idem} | {m['msgs_per_s']:,.0f} | {m['p50_ms']:.0f} | "
                         f"{m['p95_ms']:.0f} | {m['p99_ms']:.0f} | {m['p999_ms']:.0f} | "
                         f"{m['cpu_us_per_msg']:.2f} | {m['runs']} |")
        lines.append("")
    return "\n".join(lines)


def plots(a, meds, out, label):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("!! matplotlib is missing from the venv (scripts/setup installs it): no plots")
        return []
    files = []
    clients = list(dict.fromkeys(m["client"] for m in meds))
    colors = {c: plt.cm.tab10(i) for i, c in enumerate(NAMES)}
    mat = [m for m in meds if m["kind"] == "matrix"]
    configs = list(dict.fromkeys((m["acks"], m["size"], m["keys"], m["partitions"]) for m in mat))
    if mat:
        fig, axes = plt.subplots(2, 1, figsize=(max(8, 0.9 * len(configs) + 3), 9), sharex=True)
        width = 0.8 / max(1, len(clients))
        for metric, ax, title in ((("msgs_per_s"), axes[0], "msgs/s (higher is better)"),
                                  (("cpu_us_per_msg"), axes[1], "client CPU µs per message (lower is better)")):
            for j, c in enumerate(clients):
                xs, ys = [], []
                for i, cfg in enumerate(configs):
                    m = next((m for m in mat if (m["acks"], m["size"], m["keys"], m["partitions"]) == cfg
                              and m["client"] == c), None)
                    if m:
                        xs.append(i + (j - (len(clients) - 1) / 2) * width)
                        ys.append(m[metric])
                if xs:
                    ax.bar(xs, ys, width, label=NAMES[c], color=colors[c])
            ax.set_yscale("log")
            ax.set_title(title)
            ax.grid(axis="y", which="both", alpha=0.3)
        axes[0].legend(fontsize=8, ncol=min(len(clients), 5))
        axes[1].set_xticks(range(len(configs)))
        axes[1].set_xticklabels([f"acks={c[0]}\n{c[1]} B {'keyed' if c[2] != 'none' else 'keyless'}\n{c[3]}p"
                                 for c in configs], fontsize=7)
        fig.suptitle(f"kafka-edge and peers, {a.bytes / 1e6:g} MB per run: {label}", fontsize=10)
        fig.tight_layout()
        path = os.path.join(out, "matrix.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    lat = [m for m in meds if m["kind"] == "latency"]
    if lat:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        groups = list(dict.fromkeys((m["acks"], m["client"]) for m in lat))
        for i, (acks, c) in enumerate(groups):
            m = next(m for m in lat if (m["acks"], m["client"]) == (acks, c))
            for k, (key, name) in enumerate((("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9"))):
                ax.bar(i + (k - 1) * 0.27, max(m[key], 0.5), 0.27, color=colors[c], alpha=(0.45, 0.7, 1.0)[k],
                       label=name if i == 0 else None)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{NAMES[c]}\nacks={acks}" for acks, c in groups], fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("ms, send to acknowledgement")
        ax.set_title(f"Latency at {a.rate:,} msgs/s, 100 B (bars: p50, p99, p99.9): {label}", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        fig.tight_layout()
        path = os.path.join(out, "latency.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def main():
    a = parse_args()
    os.makedirs(os.path.join(a.out, "runs"), exist_ok=True)
    jsonl = os.path.join(a.out, "runs.jsonl")
    done = {}
    # What makes runs of the same id comparable: a resumed matrix must keep it.
    same = dict(bytes=a.bytes, batch_size=a.batch_size, key_range=a.key_range, rate=a.rate,
                rate_seconds=a.rate_seconds)
    settings = os.path.join(a.out, "settings.json")
    if a.resume and os.path.exists(jsonl):
        old = json.load(open(settings)) if os.path.exists(settings) else "unknown settings (no settings.json)"
        if old != same:
            sys.exit(f"--resume: {jsonl} was made with {old}, not {same}: resume with those options")
        for line in open(jsonl):
            r = json.loads(line)
            if r["rc"] == 0:
                done[r["id"]] = r
    elif os.path.exists(jsonl):
        kept = f"{jsonl}.{time.strftime('%Y%m%dT%H%M%S')}"
        os.rename(jsonl, kept)
        say(f"a new matrix: the previous one's runs moved to {kept}")
    json.dump(same, open(settings, "w"))
    for name in ("matrix.png", "latency.png", "table.md", "matrix.json"):
        if os.path.exists(os.path.join(a.out, name)):
            os.remove(os.path.join(a.out, name))
    clients = a.clients.split()
    for c, b in (("rdkafka", a.rdkafka_bin), ("rskafka", a.rskafka_bin)):
        if c in clients and not b:
            say(f"!! {c} was not built: left out (see target/compare/{c}-build.log)")
            clients.remove(c)
    a.clients = " ".join(clients)
    skipped = {acks: clients_for(clients, acks)[1] for acks in a.acks.split()}
    runs = plan(a)
    todo = [r for r in runs if r["id"] not in done]
    say(f"matrix: {len(runs)} runs ({len(runs) - len(todo)} already done), clients {a.clients}; "
        f"{a.bytes:,} B per run; output {a.out}")
    for acks, s in skipped.items():
        for c, why in s.items():
            say(f"acks={acks}: {c} left out: {why}")
    t_start = time.time()
    took = []  # (run, seconds) of this session
    failed = 0
    for i, run in enumerate(todo, 1):
        if a.broker_pid and not admin.alive(int(a.broker_pid)):
            say(f"!! the broker (pid {a.broker_pid}) is gone: stopping after {i - 1} of {len(todo)} runs; "
                "scripts/compare --matrix --resume (same options) continues")
            sys.exit(1)
        t0 = time.time()
        try:
            r = one_run(a, run, os.path.join(a.out, "runs"))
        except Exception as e:  # noqa: BLE001 - recorded, reported loudly, retried by --resume
            r = dict(run, rc=96, error=str(e))
        secs = time.time() - t0
        r["seconds"] = round(secs, 2)
        with open(jsonl, "a") as f:
            f.write(json.dumps(r) + "\n")
        took.append((run, secs))
        # ETA: each remaining run as long as the mean of this session's runs of its client and
        # size, else of its size, else of all.
        def guess(x):
            for sel in (lambda y: y["client"] == x["client"] and y["size"] == x["size"] and y["kind"] == x["kind"],
                        lambda y: y["size"] == x["size"] and y["kind"] == x["kind"], lambda y: True):
                ts = [s for y, s in took if sel(y)]
                if ts:
                    return sum(ts) / len(ts)
            return 0
        eta = sum(guess(x) for x in todo[i:])
        if r["rc"] != 0:
            failed += 1
            say(f"!! {run['id']} FAILED (rc {r['rc']}{', ' + r['error'] if 'error' in r else ''}; "
                f"judged {r.get('judged', '?')} of {run['records']}): {a.out}/runs/{run['id']}.txt")
        print(f"   [{i}/{len(todo)}] {run['id']}: {r.get('msgs_per_s', 0):>11,.0f} msgs/s, CPU {r.get('cpu_s', 0):6.2f} s, "
              f"RSS {r.get('rss_mib', 0):5.0f} MiB, broker CPU {r.get('broker_cpu_s', 0):5.1f} s, "
              f"p99 {r.get('p99_ms', 0):.0f} ms, {secs:5.1f} s; elapsed {(time.time() - t_start) / 60:.1f} min, "
              f"ETA {eta / 60:.1f} min", file=sys.stderr, flush=True)
    results = [json.loads(line) for line in open(jsonl)]
    # A resumed run may have an older failure and a newer success of the same id: keep the last.
    latest = {}
    for r in results:
        latest[r["id"]] = r
    # Only this matrix's runs (a resumed file may hold others, made with other --sizes, say).
    planned = {r["id"] for r in runs}
    results = [r for r in latest.values() if r["id"] in planned]
    meds = medians(results)
    label = a.label or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    md = table(a, meds, skipped, label)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md + "\n")
    files = plots(a, meds, a.out, label)
    with open(os.path.join(a.out, "matrix.json"), "w") as f:
        json.dump(dict(label=label, settings=vars(a), skipped=skipped, runs=results, medians=meds), f, indent=1)
    print(md)
    if a.publish:
        os.makedirs(a.publish, exist_ok=True)
        for path in [os.path.join(a.out, "table.md")] + files:
            shutil.copy(path, a.publish)
        say(f"table.md and the plots copied to {a.publish}")
    still_failed = [r["id"] for r in results if r["rc"] != 0]
    say(f"matrix.json, table.md{', ' + ', '.join(os.path.basename(p) for p in files) if files else ''} in {a.out}")
    if still_failed:
        say(f"!! {len(still_failed)} runs failed: {' '.join(still_failed)} (scripts/compare --matrix --resume retries them)")
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        say("!! interrupted: the runs so far are in runs.jsonl; scripts/compare --matrix --resume "
            "(same options) continues")
        sys.exit(130)
