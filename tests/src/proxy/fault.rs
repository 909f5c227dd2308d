//! What the proxy injects ([`FaultKind`], [`Fault`]), where it landed ([`FaultEvent`]) and
//! what it counted ([`ProxyStats`]).

use std::fmt;

/// Which way bytes flow through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Producer to broker.
    Request,
    /// Broker to producer.
    Response,
}

impl Direction {
    pub(super) fn index(self) -> usize {
        match self {
            Direction::Request => 0,
            Direction::Response => 1,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Request => "request",
            Direction::Response => "response",
        })
    }
}

/// The kinds of fault the proxy injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FaultKind {
    /// Cut the connection after N more bytes of requests.
    CutRequest,
    /// Cut the connection after N more bytes of responses.
    CutResponse,
    /// Forward only a prefix (0 to all but one byte) of the next response frame, then cut.
    TruncateResponse,
    /// Hold every byte of one direction for a while.
    Stall,
    /// Delay every chunk in both directions for a while.
    Delay,
    /// Cut every open connection and reset the next one accepted.
    RefuseConnect,
}

impl FaultKind {
    /// Every kind, in the order of [`FaultKind`]'s declaration.
    pub const ALL: [FaultKind; 6] = [
        FaultKind::CutRequest,
        FaultKind::CutResponse,
        FaultKind::TruncateResponse,
        FaultKind::Stall,
        FaultKind::Delay,
        FaultKind::RefuseConnect,
    ];

    /// A short name for reports (`cut-request`, `truncate-response`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::CutRequest => "cut-request",
            FaultKind::CutResponse => "cut-response",
            FaultKind::TruncateResponse => "truncate-response",
            FaultKind::Stall => "stall",
            FaultKind::Delay => "delay",
            FaultKind::RefuseConnect => "refuse-connect",
        }
    }

    /// Whether the fault closes a connection (every kind but stall and delay).
    pub fn cuts(self) -> bool {
        !matches!(self, FaultKind::Stall | FaultKind::Delay)
    }

    pub(super) fn at(i: usize) -> FaultKind {
        FaultKind::ALL[i % FaultKind::ALL.len()]
    }
}

/// How often each kind is drawn, in relative weights indexed like [`FaultKind::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultMix(pub [u32; 6]);

impl Default for FaultMix {
    /// Mostly cuts: 25% cut-request, 25% cut-response, 20% truncate-response, 10% stall,
    /// 10% delay, 10% refuse-connect.
    fn default() -> Self {
        FaultMix([25, 25, 20, 10, 10, 10])
    }
}

/// One armed fault with its drawn parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Its place in the sequence of armed faults (0-based).
    pub seq: usize,
    /// What it does.
    pub kind: FaultKind,
    /// The direction a cut or a stall applies to (a delay applies to both; refuse-connect
    /// to neither and says `Request`).
    pub direction: Direction,
    /// For cuts: bytes forwarded in `direction` before the cut (1 or more). For stalls and
    /// delays: how long, in milliseconds.
    pub amount: u64,
    /// For a delay: milliseconds added to every chunk. For a truncated response: a random
    /// draw that picks the prefix length once the frame's size is known.
    pub extra: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match self.kind {
            FaultKind::CutRequest | FaultKind::CutResponse => write!(
                f,
                "#{seq} cut after {} {} bytes",
                self.amount, self.direction
            ),
            FaultKind::TruncateResponse => write!(f, "#{seq} truncate the next response"),
            FaultKind::Stall => write!(f, "#{seq} stall {}s {} ms", self.direction, self.amount),
            FaultKind::Delay => write!(
                f,
                "#{seq} delay chunks {} ms for {} ms",
                self.extra, self.amount
            ),
            FaultKind::RefuseConnect => write!(f, "#{seq} cut all and refuse the next connect"),
        }
    }
}

/// Where a fault landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// The fault.
    pub fault: Fault,
    /// The connection it hit (numbered from 1 in accept order; 0 for stalls and delays,
    /// which hit whatever flows).
    pub conn: u64,
    /// The stream offset in the fault's direction where the connection was cut (bytes
    /// forwarded before the cut), or 0.
    pub offset: u64,
    /// For a truncated response: the frame's start offset and its size (after the 4-byte
    /// prefix).
    pub frame: Option<(u64, u64)>,
    /// Milliseconds since the proxy started.
    pub at_ms: u64,
}

impl fmt::Display for FaultEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms: {}", self.at_ms, self.fault)?;
        if self.conn != 0 {
            write!(f, " on connection {} at offset {}", self.conn, self.offset)?;
        }
        if let Some((start, len)) = self.frame {
            write!(f, " (frame at {start}, {len} bytes)")?;
        }
        Ok(())
    }
}

/// Counts since the proxy started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Faults armed by [`FaultProxy::inject`](super::FaultProxy::inject), per kind (indexed like [`FaultKind::ALL`]).
    pub armed: [u64; 6],
    /// Faults that took effect, per kind: a cut made; a stall, delay or refuse-connect
    /// armed (they act at once: see `cut` and `refused` for what refuse-connect did).
    pub fired: [u64; 6],
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections reset at once by refuse-connect.
    pub refused: u64,
    /// Connections closed by a fault (each cut of refuse-connect counts).
    pub cut: u64,
    /// Bytes forwarded to the brokers.
    pub request_bytes: u64,
    /// Bytes forwarded to the producer.
    pub response_bytes: u64,
}

impl ProxyStats {
    /// Faults armed in all.
    pub fn armed_total(&self) -> u64 {
        self.armed.iter().sum()
    }

    /// Faults fired in all.
    pub fn fired_total(&self) -> u64 {
        self.fired.iter().sum()
    }

    /// `kind=count` for every kind fired, e.g. `cut-request=5 stall=1`.
    pub fn fired_by_kind(&self) -> String {
        FaultKind::ALL
            .iter()
            .zip(self.fired)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{}={n}", k.name()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub(super) fn kind_index(kind: FaultKind) -> usize {
    FaultKind::ALL
        .iter()
        .position(|k| *k == kind)
        .unwrap_or_default()
}
