//! A minimal socket loop that drives the core `Producer` against a real broker, for the
//! core's smoke tests (the real transport is `kafka-edge-std`). It polls non-blocking
//! sockets with short sleeps: simple, not fast.
//!
//! The outputs are drained by the core's own drain step ([`Producer::drain`]); this module
//! only implements its [`Transport`] over `std` sockets. A write that the socket takes only
//! in part reports what was written; the core then holds that connection's transmit back
//! until the loop reports [`Producer::handle_writable`] (here: at the next step).

use std::collections::{BTreeSet, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use kafka_edge_core::{
    BrokerRef, ConnId, ProduceError, Producer, Storage, TicketRange, Transmit, Transport,
};

/// One outcome as the loop saw it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Delivered at `base_offset` of `partition`.
    Delivered {
        /// Partition.
        partition: i32,
        /// Tickets.
        tickets: TicketRange,
        /// Base offset.
        base_offset: i64,
    },
    /// Failed.
    Failed {
        /// Tickets.
        tickets: TicketRange,
        /// The error's text.
        error: String,
    },
}

impl Outcome {
    /// Records in the outcome.
    pub fn count(&self) -> usize {
        match self {
            Outcome::Delivered { tickets, .. } | Outcome::Failed { tickets, .. } => {
                tickets.count() as usize
            }
        }
    }
}

/// Drives a producer over real TCP sockets.
pub struct BlockingLoop {
    streams: HashMap<u16, TcpStream>,
    /// Connections the core asked for during a drain, opened after it.
    connects: Vec<(ConnId, String)>,
    /// Connections whose write failed during a drain, reported closed after it.
    broken: BTreeSet<u16>,
    /// Connections whose last write was partial: reported writable at the next step.
    blocked: BTreeSet<u16>,
    start: Instant,
    /// Every outcome so far.
    pub outcomes: Vec<Outcome>,
}

impl Default for BlockingLoop {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport for BlockingLoop {
    fn connect(&mut self, conn: ConnId, _broker: BrokerRef, host: &str, port: u16) {
        self.connects.push((conn, format!("{host}:{port}")));
    }

    fn disconnect(&mut self, conn: ConnId) {
        self.streams.remove(&conn.0);
        self.connects.retain(|(c, _)| *c != conn);
        self.broken.remove(&conn.0);
        self.blocked.remove(&conn.0);
    }

    fn delivered(
        &mut self,
        _topic: &str,
        partition: i32,
        tickets: TicketRange,
        base_offset: i64,
        _log_append_time_ms: i64,
    ) {
        self.outcomes.push(Outcome::Delivered {
            partition,
            tickets,
            base_offset,
        });
    }

    fn failed(&mut self, _topic: &str, _partition: i32, tickets: TicketRange, error: ProduceError) {
        self.outcomes.push(Outcome::Failed {
            tickets,
            error: error.to_string(),
        });
    }

    fn transmit(&mut self, tx: &Transmit<'_>) -> usize {
        let conn = tx.conn();
        let Some(s) = self.streams.get_mut(&conn.0) else {
            // Not open (a failed write already dropped it): reported closed after the drain.
            self.broken.insert(conn.0);
            return 0;
        };
        let mut written = 0;
        for chunk in tx.chunks() {
            let mut rest = chunk;
            while !rest.is_empty() {
                match s.write(rest) {
                    Ok(0) => {
                        self.broken.insert(conn.0);
                        return written;
                    }
                    Ok(n) => {
                        written += n;
                        rest = &rest[n..];
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        // The socket's buffer is full: the core holds the rest back until
                        // `handle_writable`.
                        self.blocked.insert(conn.0);
                        return written;
                    }
                    Err(_) => {
                        self.broken.insert(conn.0);
                        return written;
                    }
                }
            }
        }
        written
    }
}

impl BlockingLoop {
    /// A loop with no connections.
    pub fn new() -> Self {
        BlockingLoop {
            streams: HashMap::new(),
            connects: Vec::new(),
            broken: BTreeSet::new(),
            blocked: BTreeSet::new(),
            start: Instant::now(),
            outcomes: Vec::new(),
        }
    }

    /// Milliseconds since the loop started (the producer's `now`).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// The drain step, then the inputs it calls for: connects opened (blocking, up to 5 s
    /// each) and failed writes reported closed, until nothing is left to do.
    fn drain<S, St>(&mut self, p: &mut Producer<S, St>)
    where
        S: AsMut<[u8]> + AsRef<[u8]>,
        St: Storage,
    {
        loop {
            p.drain(self.now(), self);
            if self.connects.is_empty() && self.broken.is_empty() {
                return;
            }
            for (conn, addr) in std::mem::take(&mut self.connects) {
                let stream = addr
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(5)).ok());
                match stream {
                    Some(s) => {
                        let _ = s.set_nodelay(true);
                        let _ = s.set_nonblocking(true);
                        self.streams.insert(conn.0, s);
                        p.handle_connected(self.now(), conn);
                    }
                    None => p.handle_closed(self.now(), conn),
                }
            }
            for id in std::mem::take(&mut self.broken) {
                self.streams.remove(&id);
                self.blocked.remove(&id);
                p.handle_closed(self.now(), ConnId(id));
            }
        }
    }

    /// One round: outputs, writability, reads, timers.
    pub fn step<S, St>(&mut self, p: &mut Producer<S, St>)
    where
        S: AsMut<[u8]> + AsRef<[u8]>,
        St: Storage,
    {
        self.drain(p);
        // Without readiness polling a blocked socket is simply offered the rest again: the
        // next write takes what fits, or nothing (and blocks it again).
        for id in std::mem::take(&mut self.blocked) {
            p.handle_writable(self.now(), ConnId(id));
        }
        self.drain(p);
        let mut buf = [0u8; 64 * 1024];
        let ids: Vec<u16> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            match s.read(&mut buf) {
                Ok(0) => {
                    self.streams.remove(&id);
                    self.blocked.remove(&id);
                    p.handle_closed(self.now(), ConnId(id));
                }
                Ok(n) => {
                    let mut off = 0;
                    while off < n {
                        let took = p.handle_received(self.now(), ConnId(id), &buf[off..n]);
                        if took == 0 {
                            break;
                        }
                        off += took;
                    }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => {
                    self.streams.remove(&id);
                    self.blocked.remove(&id);
                    p.handle_closed(self.now(), ConnId(id));
                }
            }
        }
        p.handle_timeout(self.now());
        self.drain(p);
        std::thread::sleep(Duration::from_micros(200));
    }

    /// Steps until `done` says so or `timeout` passes; returns whether `done` held.
    pub fn run_until<S, St>(
        &mut self,
        p: &mut Producer<S, St>,
        timeout: Duration,
        mut done: impl FnMut(&Producer<S, St>, &[Outcome]) -> bool,
    ) -> bool
    where
        S: AsMut<[u8]> + AsRef<[u8]>,
        St: Storage,
    {
        let until = Instant::now() + timeout;
        while Instant::now() < until {
            self.step(p);
            if done(p, &self.outcomes) {
                return true;
            }
        }
        false
    }
}
