//! The Prometheus text exposition of a [`Metrics`] snapshot.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::{MetricKind, MetricValue, Metrics};

impl Metrics {
    /// The metrics in Prometheus' text exposition format (version 0.0.4): for each metric a
    /// `# HELP` and a `# TYPE` line, then its samples, named `<prefix>_<name>` for the
    /// producer's and `<prefix>_topic_<name>` for a topic's, Java's dashes turned into
    /// underscores (`kafka_producer_record_send_rate`), labelled `client_id`, `topic` for a
    /// topic's, and `labels`. Label values are escaped; `NaN` is written `NaN`.
    ///
    /// ```
    /// # fn show(m: &kafka_edge_std::Metrics) {
    /// let text = m.to_prometheus("kafka_producer", &[("instance", "edge-1")]);
    /// assert!(text.contains("# TYPE kafka_producer_record_send_total counter"));
    /// # }
    /// ```
    pub fn to_prometheus(&self, prefix: &str, labels: &[(&str, &str)]) -> String {
        let mut out = String::new();
        let mut common = format!("client_id=\"{}\"", escape_label(&self.client_id));
        for (k, v) in labels {
            let _ = write!(common, ",{k}=\"{}\"", escape_label(v));
        }
        let values = self.values();
        // Group the samples of one name together (Prometheus wants one family per block).
        let mut names: Vec<String> = Vec::new();
        let mut families: HashMap<String, (&MetricValue, Vec<&MetricValue>)> = HashMap::new();
        for v in &values {
            let name = prometheus_name(prefix, v);
            families
                .entry(name.clone())
                .or_insert_with(|| {
                    names.push(name);
                    (v, Vec::new())
                })
                .1
                .push(v);
        }
        for name in &names {
            let Some((first, samples)) = families.get(name) else {
                continue;
            };
            let kind = match first.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(first.description));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in samples {
                let value = prometheus_value(s.value);
                match &s.topic {
                    Some(topic) => {
                        let topic = escape_label(topic);
                        let _ = writeln!(out, "{name}{{{common},topic=\"{topic}\"}} {value}");
                    }
                    None => {
                        let _ = writeln!(out, "{name}{{{common}}} {value}");
                    }
                }
            }
        }
        out
    }
}

fn prometheus_name(prefix: &str, v: &MetricValue) -> String {
    let name = v.name.replace('-', "_");
    match (prefix.is_empty(), v.topic.is_some()) {
        (true, false) => name,
        (true, true) => format!("topic_{name}"),
        (false, false) => format!("{prefix}_{name}"),
        (false, true) => format!("{prefix}_topic_{name}"),
    }
}

fn prometheus_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::sampler::{Levels, Maxima, compute, test_reading as reading};
    use super::super::*;
    use super::prometheus_name;

    #[test]
    fn prometheus_text_names_types_and_escapes() {
        let settings = MetricsSettings::default();
        let m = compute(
            "edge \"1\"",
            &reading(0, 0, 0, 0),
            &reading(30_000, 30, 3, 300),
            Maxima::default(),
            settings,
            Levels::default(),
        );
        let text = m.to_prometheus("kafka_producer", &[("env", "a\\b")]);
        assert!(text.contains("# TYPE kafka_producer_record_send_total counter\n"));
        assert!(text.contains("# TYPE kafka_producer_record_send_rate gauge\n"));
        assert!(text.contains(
            "kafka_producer_record_send_rate{client_id=\"edge \\\"1\\\"\",env=\"a\\\\b\"} 1\n"
        ));
        assert!(text.contains(
            "kafka_producer_topic_byte_total{client_id=\"edge \\\"1\\\"\",env=\"a\\\\b\",topic=\"t\"} 300\n"
        ));
        assert!(text.contains("kafka_producer_request_latency_avg{") && text.contains("} NaN\n"));
        // One TYPE line per family.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let families: std::collections::HashSet<String> = m
            .values()
            .iter()
            .map(|v| prometheus_name("kafka_producer", v))
            .collect();
        assert_eq!(types, families.len());
    }
}
