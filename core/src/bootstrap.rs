//! Broker addresses and the `bootstrap.servers` list: each entry checked when set, the list
//! kept as its text so that a configuration stays small on firmware.

use core::fmt;

use heapless::String as HString;

use crate::config::{ConfigError, MAX_BOOTSTRAP_SERVERS, MAX_HOST_LEN};

/// A broker address: a host name or IP literal and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerAddress {
    /// Host name or IP address (an IPv6 literal without its brackets).
    pub host: HString<MAX_HOST_LEN>,
    /// TCP port.
    pub port: u16,
}

impl BrokerAddress {
    /// An address from a host and a port; fails when the host is empty or longer than
    /// [`MAX_HOST_LEN`].
    pub fn new(host: &str, port: u16) -> Result<Self, ConfigError> {
        if host.is_empty() {
            return Err(ConfigError::InvalidBootstrap);
        }
        let mut h = HString::new();
        h.push_str(host).map_err(|_| ConfigError::HostTooLong)?;
        Ok(Self { host: h, port })
    }

    /// Parses `host:port` or `[ipv6]:port` (Java's `ClientUtils.parseAndValidateAddresses`).
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let s = s.trim();
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, port) = rest.split_once("]:").ok_or(ConfigError::InvalidBootstrap)?;
            (host, port)
        } else {
            s.rsplit_once(':').ok_or(ConfigError::InvalidBootstrap)?
        };
        let port = port
            .parse::<u16>()
            .map_err(|_| ConfigError::InvalidBootstrap)?;
        if port == 0 {
            return Err(ConfigError::InvalidBootstrap);
        }
        Self::new(host, port)
    }
}

impl fmt::Display for BrokerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The longest `bootstrap.servers` list, in bytes once trimmed (the list is kept as its
/// text, not as [`MAX_BOOTSTRAP_SERVERS`] inline addresses of [`MAX_HOST_LEN`] bytes each,
/// so that a configuration stays small on firmware, whose stack it crosses once).
pub const MAX_BOOTSTRAP_LEN: usize = 2048;

/// `bootstrap.servers`: at most [`MAX_BOOTSTRAP_SERVERS`] addresses, each checked when set,
/// kept as their text (at most [`MAX_BOOTSTRAP_LEN`] bytes) and parsed when read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BootstrapServers {
    /// The entries, trimmed, separated by `,`.
    text: HString<MAX_BOOTSTRAP_LEN>,
    count: usize,
}

impl BootstrapServers {
    /// Parses a comma-separated list of `host:port` (`"h1:9092,[::1]:9093"`); empty entries
    /// are skipped, and an empty list is an error.
    pub fn parse(list: &str) -> Result<Self, ConfigError> {
        let mut servers = Self::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            BrokerAddress::parse(entry)?;
            if servers.count == MAX_BOOTSTRAP_SERVERS {
                return Err(ConfigError::TooManyBootstrapServers);
            }
            if servers.count > 0 {
                servers
                    .text
                    .push(',')
                    .map_err(|_| ConfigError::TooManyBootstrapServers)?;
            }
            servers
                .text
                .push_str(entry)
                .map_err(|_| ConfigError::TooManyBootstrapServers)?;
            servers.count += 1;
        }
        if servers.count == 0 {
            return Err(ConfigError::InvalidBootstrap);
        }
        Ok(servers)
    }

    /// How many addresses.
    pub const fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none (only in a default configuration).
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Address `i`.
    pub fn get(&self, i: usize) -> Option<BrokerAddress> {
        self.iter().nth(i)
    }

    /// The addresses in order.
    pub fn iter(&self) -> impl Iterator<Item = BrokerAddress> + '_ {
        self.text
            .split(',')
            .filter(|e| !e.is_empty())
            .filter_map(|e| BrokerAddress::parse(e).ok())
    }
}

impl<'a> IntoIterator for &'a BootstrapServers {
    type Item = BrokerAddress;
    type IntoIter = bootstrap_iter::Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        bootstrap_iter::Iter {
            parts: self.text.split(','),
        }
    }
}

/// The named iterator of `&BootstrapServers` (for `for` loops).
mod bootstrap_iter {
    use super::BrokerAddress;

    /// The addresses of a [`BootstrapServers`](super::BootstrapServers), parsed one by one.
    #[derive(Debug, Clone)]
    pub struct Iter<'a> {
        pub(super) parts: core::str::Split<'a, char>,
    }

    impl Iterator for Iter<'_> {
        type Item = BrokerAddress;

        fn next(&mut self) -> Option<BrokerAddress> {
            self.parts
                .by_ref()
                .filter(|e| !e.is_empty())
                .find_map(|e| BrokerAddress::parse(e).ok())
        }
    }
}

pub use bootstrap_iter::Iter as BootstrapIter;
