//! Topic allow-lists: glob patterns over Kafka topic names.

use std::fmt;

/// Kafka's longest topic name.
const MAX_TOPIC_LEN: usize = 249;

/// One allow-list entry: `*` matches any run of characters (also none), `?` one character,
/// everything else itself. `orders`, `web-*`, `tenant-?-events`, `*`.
///
/// A name starting with `__` (Kafka's internal topics, such as `__consumer_offsets`) is
/// matched only by a pattern that itself starts with `__`: `*` never opens them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern(String);

/// Why a pattern was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// Empty pattern.
    #[error("empty topic pattern")]
    Empty,
    /// A character no topic name can hold (Kafka allows `[A-Za-z0-9._-]`).
    #[error(
        "topic pattern holds {0:?}, which no topic name can (allowed: A-Z a-z 0-9 . _ - and the wildcards * ?)"
    )]
    InvalidChar(char),
}

impl TopicPattern {
    /// Checks and keeps `pattern`.
    pub fn new(pattern: &str) -> Result<Self, PatternError> {
        if pattern.is_empty() {
            return Err(PatternError::Empty);
        }
        if let Some(c) = pattern
            .chars()
            .find(|&c| !(is_topic_char(c) || c == '*' || c == '?'))
        {
            return Err(PatternError::InvalidChar(c));
        }
        Ok(Self(pattern.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `topic` (a valid topic name) matches.
    pub fn matches(&self, topic: &str) -> bool {
        if topic.starts_with("__") && !self.0.starts_with("__") {
            return false;
        }
        glob(self.0.as_bytes(), topic.as_bytes())
    }
}

impl fmt::Display for TopicPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The topics one client may name: any of its patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicAllowList(Vec<TopicPattern>);

impl TopicAllowList {
    /// An allow-list of `patterns` (empty: nothing allowed).
    pub fn new(patterns: Vec<TopicPattern>) -> Self {
        Self(patterns)
    }

    /// Parses each pattern.
    pub fn parse<'s>(patterns: impl IntoIterator<Item = &'s str>) -> Result<Self, PatternError> {
        patterns
            .into_iter()
            .map(TopicPattern::new)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// The patterns.
    pub fn patterns(&self) -> &[TopicPattern] {
        &self.0
    }

    /// Whether `topic` is a valid Kafka topic name that one of the patterns matches.
    pub fn allows(&self, topic: &str) -> bool {
        is_valid_topic(topic) && self.0.iter().any(|p| p.matches(topic))
    }
}

fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Kafka's rule for topic names (`Topic.validate`): 1 to 249 of `[A-Za-z0-9._-]`, not `.` or
/// `..`.
pub fn is_valid_topic(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOPIC_LEN
        && name != "."
        && name != ".."
        && name.chars().all(is_topic_char)
}

/// Glob match with `*` and `?`, iterative with one backtrack point (linear in practice, no
/// recursion: patterns come from the configuration, names from the network).
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(p: &[&str]) -> TopicAllowList {
        TopicAllowList::parse(p.iter().copied()).unwrap()
    }

    #[test]
    fn test_globs() {
        let l = list(&["orders", "web-*", "t-?-x"]);
        assert!(l.allows("orders"));
        assert!(!l.allows("orders2"));
        assert!(l.allows("web-"));
        assert!(l.allows("web-clicks"));
        assert!(!l.allows("we-clicks"));
        assert!(l.allows("t-1-x"));
        assert!(!l.allows("t-12-x"));
        assert!(list(&["*a*b"]).allows("xxaxxb"));
        assert!(!list(&["*a*b"]).allows("xxaxxbc"));
    }

    #[test]
    fn star_never_opens_internal_topics() {
        assert!(!list(&["*"]).allows("__consumer_offsets"));
        assert!(!list(&["_*"]).allows("__transaction_state"));
        assert!(list(&["__consumer_offsets"]).allows("__consumer_offsets"));
    }

    #[test]
    fn invalid_names_never_match() {
        let l = list(&["*"]);
        for bad in ["", ".", "..", "a b", "a/b", "é", &"x".repeat(250)] {
            assert!(!l.allows(bad), "{bad:?}");
        }
        assert!(TopicPattern::new("a/b").is_err());
        assert!(TopicPattern::new("").is_err());
    }
}
