//! `kafka-edge-produce` as a user runs it: the built binary in a child process, against the
//! test ground's one-node Apache Kafka (`KAFKA_EDGE_DIR_1`), records read back with the
//! librdkafka judge. Signals, the summary, connection errors named, fail-fast after a
//! metadata timeout, and input files checked before anything is sent.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_edge_tests::{Cluster, Ground, judge, judge_expect, topic_name};

const BIN: &str = env!("CARGO_BIN_EXE_kafka-edge-produce");

/// The one-node cluster, waiting (up to 5 minutes) for `scripts/kafka up` to finish when the
/// test ground is still starting it.
fn cluster() -> Cluster {
    Cluster::wait(Ground::Kafka1)
}

/// The tool in a child process, its stderr gathered line by line as it comes.
struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Cli {
    fn start(args: &[&str]) -> Cli {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{BIN}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr");
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Cli {
            stdin: child.stdin.take(),
            child,
            stderr,
        }
    }

    fn feed(&mut self, lines: usize) {
        self.feed_from(0, lines);
    }

    /// Writes the lines `line-<from>` .. `line-<from + lines - 1>`.
    fn feed_from(&mut self, from: usize, lines: usize) {
        let text: String = (from..from + lines)
            .map(|i| format!("line-{i}\n"))
            .collect();
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(text.as_bytes()).expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    fn stderr(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits (up to 60 s) until a stderr line contains `needle`.
    fn wait_for(&self, needle: &str) {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if self.stderr().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no stderr line with {needle:?}: {:#?}", self.stderr());
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name}: {status}");
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the exit (up to `limit`); the status and the time from the call.
    fn wait(&mut self, limit: Duration) -> (ExitStatus, Duration) {
        let from = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the stderr thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return (status, from.elapsed());
            }
            if from.elapsed() > limit {
                let _ = self.child.kill();
                panic!("still running after {limit:?}: {:#?}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn summary(lines: &[String]) -> &str {
    lines
        .iter()
        .rev()
        .find(|l| l.contains("records read"))
        .unwrap_or_else(|| panic!("no summary: {lines:#?}"))
}

/// (a) Ctrl-C with 100 records lingering (linger.ms 20 s): they are delivered, the summary
/// says so, and the exit status is 0.
#[test]
fn interrupt_delivers_accepted_records_and_prints_summary() {
    let cluster = cluster();
    let topic = topic_name("cli-sigint");
    cluster.create_topic(&topic, 1, 1, &[]);
    let mut cli = Cli::start(&[
        "-b",
        &cluster.bootstrap,
        "-t",
        &topic,
        "--linger-ms",
        "20000",
        "-vvv",
    ]);
    cli.feed(100);
    // stdin stays open: the tool is still reading when the signal comes.
    cli.wait_for("stdin:100: accepted");
    cli.signal("INT");
    let (status, after) = cli.wait(Duration::from_secs(15));
    let lines = cli.stderr();
    let summary = summary(&lines);
    eprintln!("exit {status} {after:?} after SIGINT; summary: {summary}");
    assert_eq!(status.code(), Some(0), "{lines:#?}");
    assert!(
        summary.contains("100 records read, 100 delivered, 0 failed, 0 not sent"),
        "{summary}"
    );
    assert!(
        after < Duration::from_secs(10),
        "linger.ms was not cut short: {after:?}"
    );
    let judged = judge(&cluster, &topic);
    assert_eq!(judged.len(), 100, "records read back");
    for (i, r) in judged.iter().enumerate() {
        assert_eq!(
            r.value.as_deref(),
            Some(kafka_edge_tests::hex(format!("line-{i}").as_bytes()).as_str()),
            "record {i}"
        );
    }
}

/// A one-node cluster of this test's own, since the test kills its broker.
struct OwnCluster {
    cluster: Cluster,
}

impl OwnCluster {
    fn up(name: &str) -> OwnCluster {
        let dir = std::env::temp_dir().join(topic_name(name));
        let status = Command::new(kafka_edge_tests::repo_root().join("scripts/kafka"))
            .args(["up", "--brokers", "1", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .status()
            .expect("scripts/kafka up");
        assert!(status.success(), "scripts/kafka up: {status}");
        let env = std::fs::read_to_string(dir.join("env")).expect("env file");
        let bootstrap = env
            .lines()
            .find_map(|l| l.strip_prefix("BOOTSTRAP="))
            .expect("BOOTSTRAP")
            .to_string();
        OwnCluster {
            cluster: Cluster {
                dir,
                bootstrap,
                brokers: 1,
                engine: "kafka".into(),
            },
        }
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = Command::new(kafka_edge_tests::repo_root().join("scripts/kafka"))
            .args(["down", "--dir"])
            .arg(&self.cluster.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.cluster.dir);
    }
}

/// (b) The broker dies with 10 records accepted: the first SIGINT starts a flush that cannot
/// finish; the second aborts at once, non-zero, and says 10 records were abandoned.
#[test]
fn second_signal_aborts_and_says_what_was_abandoned() {
    let own = OwnCluster::up("cli-abort");
    let cluster = &own.cluster;
    let topic = topic_name("cli-abort");
    cluster.create_topic(&topic, 1, 1, &[]);
    let mut cli = Cli::start(&[
        "-b",
        &cluster.bootstrap,
        "-t",
        &topic,
        "--linger-ms",
        "60000",
        "-vvv",
    ]);
    cli.feed(10);
    cli.wait_for("stdin:10: accepted");
    cluster.kill(1);
    cli.signal("INT");
    cli.wait_for("interrupted: stopped reading after 10 records");
    // The flush is under way (the broker is gone; up to --flush-timeout-ms, 30 s).
    std::thread::sleep(Duration::from_secs(1));
    assert!(cli.is_running(), "exited before the second signal");
    cli.signal("INT");
    let (status, after) = cli.wait(Duration::from_secs(10));
    let lines = cli.stderr();
    let abort = lines
        .iter()
        .find(|l| l.contains("aborted"))
        .unwrap_or_else(|| panic!("no abort message: {lines:#?}"));
    eprintln!("exit {status} {after:?} after the second SIGINT: {abort}");
    assert_eq!(status.code(), Some(130), "{lines:#?}");
    assert!(after < Duration::from_secs(3), "abort took {after:?}");
    assert!(
        abort.contains("10 accepted records abandoned"),
        "abort message: {abort}"
    );
}

/// (b') SIGTERM with the broker gone: the flush is bounded by `--flush-timeout-ms`, the
/// summary counts the records delivered before and those that failed, the exit status is
/// 1, and the topic holds exactly the delivered ones.
#[test]
fn sigterm_flush_is_bounded_and_the_summary_counts_what_failed() {
    let own = OwnCluster::up("cli-sigterm");
    let cluster = &own.cluster;
    let topic = topic_name("cli-sigterm");
    cluster.create_topic(&topic, 1, 1, &[]);
    let mut cli = Cli::start(&[
        "-b",
        &cluster.bootstrap,
        "-t",
        &topic,
        "--flush-timeout-ms",
        "2000",
        "-vvv",
    ]);
    cli.feed(10);
    assert_eq!(
        judge_expect(cluster, &topic, 10).len(),
        10,
        "delivered first"
    );
    cluster.kill(1);
    cli.feed_from(10, 5);
    cli.wait_for("stdin:15: accepted");
    cli.signal("TERM");
    let (status, after) = cli.wait(Duration::from_secs(20));
    let lines = cli.stderr();
    let summary = summary(&lines);
    eprintln!("exit {status} {after:?} after SIGTERM; summary: {summary}");
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    assert!(
        summary.contains("15 records read, 10 delivered, 5 failed, 0 not sent")
            && summary.contains("(interrupted)"),
        "{summary}"
    );
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(10),
        "the flush should last about --flush-timeout-ms (2 s): {after:?}"
    );
    cluster.start(1);
    let judged = judge(cluster, &topic);
    let values: Vec<Option<String>> = judged.into_iter().map(|r| r.value).collect();
    let expected: Vec<Option<String>> = (0..10)
        .map(|i| Some(kafka_edge_tests::hex(format!("line-{i}").as_bytes())))
        .collect();
    assert_eq!(
        values, expected,
        "the topic holds the delivered records only"
    );
}

/// (c) Nothing listens at the bootstrap address: the first error says "connection refused",
/// and only the first of 20 records waits `max.block.ms`; the others fail fast.
#[test]
fn refused_connection_is_named_and_later_records_fail_fast() {
    let mut cli = Cli::start(&["-b", "127.0.0.1:1", "-t", "t1", "-X", "max.block.ms=2000"]);
    cli.feed(20);
    cli.close_stdin();
    let (status, took) = cli.wait(Duration::from_secs(60));
    let lines = cli.stderr();
    eprintln!("exit {status} in {took:?}:\n{}", lines.join("\n"));
    assert_eq!(status.code(), Some(1), "{lines:#?}");
    let first = lines.first().expect("some error");
    assert!(
        first.to_lowercase().contains("connection refused"),
        "first error: {first}"
    );
    let timeout = lines
        .iter()
        .find(|l| l.contains("not present in metadata"))
        .unwrap_or_else(|| panic!("no metadata timeout: {lines:#?}"));
    assert!(
        timeout.to_lowercase().contains("connection refused"),
        "{timeout}"
    );
    assert!(
        summary(&lines).contains("20 records read, 0 delivered, 1 failed, 19 not sent"),
        "{lines:#?}"
    );
    assert!(
        took < Duration::from_secs(15),
        "20 records took {took:?}: each waited max.block.ms?"
    );
}

/// (d) A bootstrap name that does not resolve: the first error says so, whether the
/// producer refuses to start (Java's "No resolvable bootstrap urls", exit status 2) or the
/// first record's metadata times out (exit status 1).
#[test]
fn unresolvable_host_is_named() {
    let mut cli = Cli::start(&[
        "-b",
        "nope.invalid:9092",
        "-t",
        "t1",
        "-X",
        "max.block.ms=2000",
    ]);
    cli.feed(3);
    cli.close_stdin();
    let (status, took) = cli.wait(Duration::from_secs(60));
    let lines = cli.stderr();
    eprintln!("exit {status} in {took:?}:\n{}", lines.join("\n"));
    let names_it = |l: &str| l.contains("resolv") && l.contains("nope.invalid");
    let first = lines.first().expect("some error");
    assert!(names_it(first), "first error: {first}");
    match status.code() {
        Some(2) => assert!(
            !lines.iter().any(|l| l.contains("records read")),
            "a setup error sends nothing: {lines:#?}"
        ),
        Some(1) => {
            let timeout = lines
                .iter()
                .find(|l| l.contains("not present in metadata"))
                .unwrap_or_else(|| panic!("no metadata timeout: {lines:#?}"));
            assert!(names_it(timeout), "{timeout}");
        }
        _ => panic!("exit {status}: {lines:#?}"),
    }
}

/// (e) A missing file among the arguments: nothing is sent, exit status 3, the file named.
#[test]
fn missing_file_sends_nothing() {
    let cluster = cluster();
    let topic = topic_name("cli-missing");
    cluster.create_topic(&topic, 1, 1, &[]);
    let dir = std::env::temp_dir().join(topic_name("cli-files"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let present = dir.join("present.txt");
    std::fs::write(&present, "a\nb\nc\n").expect("write");
    let missing = dir.join("missing.txt");
    let mut cli = Cli::start(&[
        "-b",
        &cluster.bootstrap,
        "-t",
        &topic,
        present.to_str().expect("utf-8"),
        missing.to_str().expect("utf-8"),
        present.to_str().expect("utf-8"),
    ]);
    let (status, _) = cli.wait(Duration::from_secs(30));
    let lines = cli.stderr();
    eprintln!("exit {status}:\n{}", lines.join("\n"));
    assert_eq!(status.code(), Some(3), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("cannot open")
            && l.contains("missing.txt")
            && l.contains("nothing sent")),
        "{lines:#?}"
    );
    assert_eq!(judge(&cluster, &topic).len(), 0, "records read back");
    let _ = std::fs::remove_dir_all(&dir);
}

/// (f) Bad input, each answered with its cause and an exit status, nothing accepted lost: a
/// property value that does not parse (usage error 2, the value echoed); an invalid topic
/// name and a partition out of range (the record fails, exit 1); a record above
/// `max.request.size` between two good ones (only it fails; the others are delivered and
/// read back).
#[test]
fn bad_input_is_named_and_only_the_bad_records_fail() {
    let cluster = cluster();
    let topic = topic_name("cli-bad");
    cluster.create_topic(&topic, 1, 1, &[]);
    let b = cluster.bootstrap.as_str();
    let run = |args: &[&str], input: &str| {
        let mut cli = Cli::start(args);
        // A usage error ends the tool before it reads its input: a broken pipe then.
        let written = cli
            .stdin
            .as_mut()
            .expect("stdin")
            .write_all(input.as_bytes());
        if let Err(e) = written
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            panic!("write stdin: {e}");
        }
        cli.close_stdin();
        let (status, _) = cli.wait(Duration::from_secs(60));
        let lines = cli.stderr();
        eprintln!("{args:?}: exit {status}:\n{}", lines.join("\n"));
        (status.code(), lines)
    };
    let has = |lines: &[String], needles: &[&str]| {
        lines.iter().any(|l| needles.iter().all(|n| l.contains(n)))
    };

    let (code, lines) = run(&["-b", b, "-t", &topic, "-X", "linger.ms=abc"], "a\n");
    assert_eq!(code, Some(2), "{lines:#?}");
    assert!(has(&lines, &["linger.ms=abc"]), "{lines:#?}");

    let (code, lines) = run(&["-b", b, "-t", "bad/topic"], "a\n");
    assert_eq!(code, Some(1), "{lines:#?}");
    assert!(
        has(&lines, &["stdin:1", "invalid topic", "bad/topic"]),
        "{lines:#?}"
    );
    assert!(summary(&lines).contains("1 records read, 0 delivered, 1 failed"));

    let (code, lines) = run(&["-b", b, "-t", &topic, "-p", "7"], "a\n");
    assert_eq!(code, Some(1), "{lines:#?}");
    assert!(has(&lines, &["stdin:1", "partition"]), "{lines:#?}");
    assert!(summary(&lines).contains("1 records read, 0 delivered, 1 failed"));

    let big = "x".repeat(3000);
    let (code, lines) = run(
        &["-b", b, "-t", &topic, "-X", "max.request.size=1000"],
        &format!("first\n{big}\nlast\n"),
    );
    assert_eq!(code, Some(1), "{lines:#?}");
    assert!(has(&lines, &["stdin:2", "max.request.size"]), "{lines:#?}");
    assert!(summary(&lines).contains("3 records read, 2 delivered, 1 failed, 0 not sent"));
    let values: Vec<_> = judge(&cluster, &topic)
        .into_iter()
        .map(|r| r.value)
        .collect();
    assert_eq!(
        values,
        [
            Some(kafka_edge_tests::hex(b"first")),
            Some(kafka_edge_tests::hex(b"last"))
        ]
    );
}

/// (g) `--metrics`: Java's metric lines on standard output after the input is delivered,
/// counting the records read (three lines of a file, one topic).
#[test]
fn metrics_are_printed_by_java_s_names() {
    let cluster = cluster();
    let topic = topic_name("cli-metrics");
    cluster.create_topic(&topic, 1, 1, &[]);
    let dir = std::env::temp_dir().join(topic_name("cli-metrics-files"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let input = dir.join("three.txt");
    std::fs::write(&input, "a\nb\nc\n").expect("write");
    let out = Command::new(BIN)
        .args([
            "-b",
            &cluster.bootstrap,
            "-t",
            &topic,
            "-X",
            "client.id=cli-metrics",
            "--metrics",
            input.to_str().expect("utf-8"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{BIN}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}", out.status);
    let value = |name: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.split(" : ").next().map(str::trim_end) == Some(name))
            .unwrap_or_else(|| panic!("{name} missing"));
        line.rsplit(" : ").next().unwrap().trim().parse().unwrap()
    };
    assert!(stdout.lines().any(|l| l.starts_with("Metric Name")));
    assert_eq!(
        value("producer-metrics:record-send-total:{client-id=cli-metrics}"),
        3.0
    );
    assert_eq!(
        value("producer-metrics:record-error-total:{client-id=cli-metrics}"),
        0.0
    );
    assert_eq!(
        value(&format!(
            "producer-topic-metrics:record-send-total:{{client-id=cli-metrics, topic={topic}}}"
        )),
        3.0
    );
    assert_eq!(judge(&cluster, &topic).len(), 3, "records read back");
    let _ = std::fs::remove_dir_all(&dir);
}
