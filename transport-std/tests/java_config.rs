//! Every property of Java's producer configuration, asked of Java itself (the oracle prints
//! Kafka 4.4's `ProducerConfig.configDef()` and says which values Java takes), against
//! `kafka_edge_std::java_config`: the table covers exactly Java's properties; each is taken
//! at Java's default and at a valid other value, ignored with a warning, or refused with
//! its reason, as the table says; a value Java refuses for a property this producer takes
//! is refused here too; and `docs/producer-config.md` is the table as written from code.
//! No broker is needed.

use std::collections::BTreeMap;

use kafka_edge_std::java_config::{JAVA_PRODUCER_PROPERTIES, JavaProperty, Support};
use kafka_edge_std::{BuildError, Producer, Properties};
use kafka_edge_tests::oracle::{self, JavaConfigKey};

/// The outcome of building with one property set.
#[derive(Debug)]
enum Outcome {
    Taken,
    Ignored,
    Refused(String),
    Invalid(String),
}

fn outcome(key: &str, value: &str) -> Outcome {
    let mut props = Properties::new();
    if key != "bootstrap.servers" {
        props.set("bootstrap.servers", "localhost:9092");
    }
    props.set(key, value);
    match Producer::builder().properties(&props).validate() {
        Ok(()) if props.ignored().iter().any(|(k, _)| *k == key) => Outcome::Ignored,
        Ok(()) => Outcome::Taken,
        Err(BuildError::Refused { why, .. }) => Outcome::Refused(why.to_string()),
        Err(e) => Outcome::Invalid(e.to_string()),
    }
}

fn java() -> BTreeMap<String, JavaConfigKey> {
    oracle::producer_config()
        .into_iter()
        .map(|k| (k.name.clone(), k))
        .collect()
}

fn ours() -> BTreeMap<&'static str, &'static JavaProperty> {
    JAVA_PRODUCER_PROPERTIES
        .iter()
        .map(|p| (p.name, p))
        .collect()
}

/// Java's default as a value to set, when it has a non-null one.
fn java_default(k: &JavaConfigKey) -> Option<&str> {
    k.default.as_deref().filter(|_| k.has_default)
}

#[test]
fn the_table_has_exactly_javas_properties() {
    let java = java();
    let ours = ours();
    let missing: Vec<&String> = java
        .keys()
        .filter(|k| !ours.contains_key(k.as_str()))
        .collect();
    let extra: Vec<&&str> = ours.keys().filter(|k| !java.contains_key(**k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not in the table: {missing:?}; not Java's: {extra:?}"
    );
    assert_eq!(java.len(), 120, "Kafka 4.4's producer has 120 properties");
}

#[test]
fn every_property_is_taken_ignored_or_refused_as_the_table_says() {
    let java = java();
    // Every example is a value Java takes, and not Java's default.
    let pairs: Vec<(String, String)> = JAVA_PRODUCER_PROPERTIES
        .iter()
        .map(|p| (p.name.to_string(), p.example.to_string()))
        .collect();
    let mut failures = Vec::new();
    for (p, java_says) in JAVA_PRODUCER_PROPERTIES
        .iter()
        .zip(oracle::producer_config_check(&pairs))
    {
        if let Err(e) = java_says {
            failures.push(format!(
                "Java refuses the example {}={}: {e}",
                p.name, p.example
            ));
        }
        let default = java.get(p.name).and_then(java_default);
        assert_eq!(p.java_default, default, "{}: Java's default", p.name);
        assert_ne!(
            default,
            Some(p.example),
            "{}: the example is the default",
            p.name
        );
    }
    for p in JAVA_PRODUCER_PROPERTIES {
        let k = &java[p.name];
        let mut values = vec![p.example];
        if let Some(d) = java_default(k) {
            values.push(d);
        }
        for value in values {
            let at_default = Some(value) == java_default(k);
            let got = outcome(p.name, value);
            let ok = match (p.support, &got) {
                (Support::Supported, Outcome::Taken) => true,
                (Support::Ignored(_), Outcome::Ignored) => true,
                (Support::Refused(_), Outcome::Taken) => at_default,
                (Support::Refused(why), Outcome::Refused(w)) => !at_default && w == why,
                _ => false,
            };
            if !ok {
                failures.push(format!(
                    "{}={value:?}: {:?}, got {got:?}",
                    p.name, p.support
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Values of the wrong type or out of Java's range for `k`.
fn bad_values(k: &JavaConfigKey) -> Vec<String> {
    let mut v = Vec::new();
    match k.kind.as_str() {
        "INT" | "LONG" | "SHORT" | "DOUBLE" | "BOOLEAN" => v.push("not-a-value".to_string()),
        _ => {}
    }
    // A range `[min,...]` or `[min,...,max]`: one below the minimum, one above the maximum.
    if let Some(range) = k.validator.as_deref().and_then(|r| r.strip_prefix('[')) {
        let bounds: Vec<&str> = range.trim_end_matches(']').split(",...").collect();
        if let Some(Ok(min)) = bounds.first().map(|b| b.parse::<i64>()) {
            v.push((min - 1).to_string());
        }
        if let Some(Ok(max)) = bounds
            .get(1)
            .map(|b| b.trim_start_matches(',').parse::<i64>())
        {
            v.push((max + 1).to_string());
        }
        if bounds.len() == 1 && range.contains(", ") {
            // An enumeration such as `[all, -1, 0, 1]`.
            v.push("no-such-choice".to_string());
        }
    }
    v
}

#[test]
fn what_java_refuses_for_a_property_taken_here_is_refused_here_too() {
    let java = java();
    let mut pairs = Vec::new();
    for p in JAVA_PRODUCER_PROPERTIES {
        if p.support == Support::Supported {
            for bad in bad_values(&java[p.name]) {
                pairs.push((p.name.to_string(), bad));
            }
        }
    }
    let mut refused_by_java = 0;
    let mut failures = Vec::new();
    for ((key, value), java_says) in pairs.iter().zip(oracle::producer_config_check(&pairs)) {
        let Err(java_why) = java_says else { continue };
        refused_by_java += 1;
        let got = outcome(key, value);
        match &got {
            Outcome::Invalid(e) if e.contains(key.as_str()) => {}
            _ => failures.push(format!(
                "{key}={value:?}: Java says {java_why}; got {got:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        refused_by_java >= 40,
        "only {refused_by_java} bad values checked"
    );
}

#[test]
fn ignored_properties_are_logged_once_each() {
    let props: Properties = [
        ("bootstrap.servers", "localhost:9092"),
        (
            "key.serializer",
            "org.apache.kafka.common.serialization.StringSerializer",
        ),
        ("interceptor.classes", "com.example.Interceptor"),
        ("linger.ms", "7"),
    ]
    .into_iter()
    .collect();
    let ignored: Vec<&str> = props.ignored().iter().map(|(k, _)| *k).collect();
    assert_eq!(ignored, ["interceptor.classes", "key.serializer"]);
}

#[test]
fn the_docs_table_is_the_code_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/producer-config.md");
    let text = kafka_edge_std::java_config::markdown();
    if std::env::var_os("KAFKA_EDGE_WRITE_DOCS").is_some() {
        std::fs::write(path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/producer-config.md is not the table of java_config.rs: \
         run KAFKA_EDGE_WRITE_DOCS=1 cargo test -p kafka-edge-std --test java_config"
    );
}
