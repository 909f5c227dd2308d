//! A minimal blocking socket loop that drives the core `Producer` against a real broker, for
//! the core's smoke tests (the real transport is `kafka-edge-std`). It polls non-blocking
//! sockets with short sleeps: simple, not fast.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use kafka_edge_core::{ConnId, Event, Producer, TicketRange};

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

/// Drives a producer over real TCP sockets.
pub struct BlockingLoop {
    streams: HashMap<u16, TcpStream>,
    start: Instant,
    /// Every outcome so far.
    pub outcomes: Vec<Outcome>,
}

impl Default for BlockingLoop {
    fn default() -> Self {
        Self::new()
    }
}

impl BlockingLoop {
    /// A loop with no connections.
    pub fn new() -> Self {
        BlockingLoop {
            streams: HashMap::new(),
            start: Instant::now(),
            outcomes: Vec::new(),
        }
    }

    /// Milliseconds since the loop started (the producer's `now`).
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    /// One round: events, transmits, reads, timers.
    pub fn step<S, R, const A: usize, const B: usize, const C: usize>(
        &mut self,
        p: &mut Producer<S, R, A, B, C>,
    ) where
        S: AsMut<[u8]> + AsRef<[u8]>,
        R: AsMut<[u8]> + AsRef<[u8]>,
    {
        let now = self.now();
        let mut connects = Vec::new();
        while let Some(ev) = p.poll_event() {
            match ev {
                Event::Connect { conn, host, port } => {
                    connects.push((conn, format!("{host}:{port}")))
                }
                Event::Disconnect { conn } => {
                    self.streams.remove(&conn.0);
                }
                Event::Delivered {
                    partition,
                    tickets,
                    base_offset,
                    ..
                } => self.outcomes.push(Outcome::Delivered {
                    partition,
                    tickets,
                    base_offset,
                }),
                Event::Failed { tickets, error, .. } => self.outcomes.push(Outcome::Failed {
                    tickets,
                    error: error.to_string(),
                }),
                _ => {}
            }
        }
        for (conn, addr) in connects {
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
        while let Some(tx) = p.poll_transmit(now) {
            let conn = tx.conn();
            let bytes: Vec<u8> = tx.chunks().flat_map(|c| c.iter().copied()).collect();
            let ok = self
                .streams
                .get_mut(&conn.0)
                .is_some_and(|s| write_all_nb(s, &bytes));
            if ok {
                p.handle_transmitted(now, conn, bytes.len());
            } else {
                self.streams.remove(&conn.0);
                p.handle_closed(now, conn);
            }
        }
        let mut buf = [0u8; 64 * 1024];
        let ids: Vec<u16> = self.streams.keys().copied().collect();
        for id in ids {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            match s.read(&mut buf) {
                Ok(0) => {
                    self.streams.remove(&id);
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
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.streams.remove(&id);
                    p.handle_closed(self.now(), ConnId(id));
                }
            }
        }
        p.handle_timeout(self.now());
        std::thread::sleep(Duration::from_micros(200));
    }

    /// Steps until `done` says so or `timeout` passes; returns whether `done` held.
    pub fn run_until<S, R, const A: usize, const B: usize, const C: usize>(
        &mut self,
        p: &mut Producer<S, R, A, B, C>,
        timeout: Duration,
        mut done: impl FnMut(&Producer<S, R, A, B, C>, &[Outcome]) -> bool,
    ) -> bool
    where
        S: AsMut<[u8]> + AsRef<[u8]>,
        R: AsMut<[u8]> + AsRef<[u8]>,
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

fn write_all_nb(s: &mut TcpStream, mut bytes: &[u8]) -> bool {
    let until = Instant::now() + Duration::from_secs(10);
    while !bytes.is_empty() {
        match s.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() > until {
                    return false;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(_) => return false,
        }
    }
    true
}
