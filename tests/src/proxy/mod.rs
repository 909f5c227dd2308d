//! A fault-injecting TCP proxy between a producer and the brokers, driven by a seed.
//!
//! [`FaultProxy::start`] listens on one loopback port per broker and forwards every
//! connection to its broker, byte for byte, on two threads (one per direction). A producer
//! reaches the brokers only through it when its resolver maps each broker's advertised
//! `host:port` to the proxy ([`FaultProxy::resolver`], for kafka-edge-std's
//! `ProducerBuilder::resolver`), so the addresses in Metadata keep naming the real brokers.
//!
//! [`FaultProxy::inject`] arms the next fault of a sequence drawn from the seed
//! ([`TestRng`]): the same seed gives the same faults with the same parameters, so a run
//! replays from its seed (where a cut lands in the byte stream also depends on what the
//! producer sends, which follows its own timing). The kinds ([`FaultKind`]):
//! - a cut (both sides closed) after N bytes of requests or of responses, from the next
//!   byte the proxy forwards in that direction: mostly mid-request or mid-response;
//! - a truncated response: the next response frame (found by its 4-byte size prefix) is
//!   forwarded only in part, possibly not at all (the request was served, its answer lost),
//!   then the connection is cut;
//! - a stall: one direction holds every byte for a while (past `request.timeout.ms` when
//!   the draw is long enough, so the producer gives up on the connection itself);
//! - a delay: every chunk in both directions waits a few milliseconds for a while;
//! - a refused connect: every open connection is cut and the next one accepted is reset
//!   (`SO_LINGER` 0) before a byte is forwarded.
//!
//! Cuts wait for traffic: a fault armed for responses fires on the next response bytes.
//! [`FaultProxy::stats`] counts what was armed and what fired, and
//! [`FaultProxy::events`] says where each fault landed (connection, direction, stream
//! offset), so a failing run can name the fault behind it.
//!
//! ```no_run
//! use kafka_edge_tests::proxy::FaultProxy;
//!
//! let broker: std::net::SocketAddr = "127.0.0.1:9092".parse()?;
//! let proxy = FaultProxy::start(&[broker], 42)?;
//! let resolve = proxy.resolver(); // hand it to `ProducerBuilder::resolver`
//! assert_eq!(resolve("127.0.0.1", 9092)?, vec![proxy.listen_addr(broker).unwrap()]);
//! let fault = proxy.inject(); // e.g. "cut after 1234 request bytes"
//! println!("{fault}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::TestRng;

mod fault;
mod frame;

use fault::kind_index;
pub use fault::{Direction, Fault, FaultEvent, FaultKind, FaultMix, ProxyStats};
use frame::FrameTracker;

/// A cut a connection took, at its point in that connection's stream.
#[derive(Clone, Copy, Debug)]
struct PendingCut {
    fault: Fault,
    /// Offset in the connection's stream (of the fault's direction) where it cuts.
    cut_at: u64,
    /// For a truncation: the frame's start and size.
    frame: Option<(u64, u64)>,
}

struct State {
    rng: TestRng,
    mix: FaultMix,
    next_seq: usize,
    /// Cuts armed but not yet taken by a connection, per direction.
    queued: [VecDeque<Fault>; 2],
    /// Bytes forwarded per direction, all connections together.
    total: [u64; 2],
    /// Per armed fault: `total` of its direction when it was armed (a cut after N bytes
    /// falls at that plus N).
    armed_total: Vec<u64>,
    refuse_next: u64,
    stall_until: [Option<Instant>; 2],
    delay: Option<(Instant, Duration)>,
    conns: Vec<Arc<Conn>>,
    events: Vec<FaultEvent>,
    stats: ProxyStats,
}

struct Conn {
    id: u64,
    client: TcpStream,
    server: TcpStream,
    /// A cut taken by this connection, per direction.
    pending: Mutex<[Option<PendingCut>; 2]>,
    closed: AtomicBool,
}

impl Conn {
    fn cut(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.server.shutdown(Shutdown::Both);
    }
}

struct Inner {
    started: Instant,
    state: Mutex<State>,
    stopped: AtomicBool,
    next_conn: AtomicU64,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// The proxy: one listener per broker; dropping it closes the listeners and cuts every
/// connection.
pub struct FaultProxy {
    inner: Arc<Inner>,
    routes: Vec<(SocketAddr, SocketAddr)>,
    acceptors: Vec<JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Listens on a free loopback port for each of `brokers` and forwards to it; faults
    /// are drawn from `seed` with the default [`FaultMix`].
    pub fn start(brokers: &[SocketAddr], seed: u64) -> io::Result<FaultProxy> {
        Self::with_mix(brokers, seed, FaultMix::default())
    }

    /// Like [`start`](Self::start), with the kinds drawn in proportion to `mix`.
    pub fn with_mix(brokers: &[SocketAddr], seed: u64, mix: FaultMix) -> io::Result<FaultProxy> {
        assert!(mix.0.iter().any(|w| *w > 0), "a fault mix needs a weight");
        let inner = Arc::new(Inner {
            started: Instant::now(),
            state: Mutex::new(State {
                rng: TestRng::new(seed),
                mix,
                next_seq: 0,
                queued: [VecDeque::new(), VecDeque::new()],
                total: [0, 0],
                armed_total: Vec::new(),
                refuse_next: 0,
                stall_until: [None, None],
                delay: None,
                conns: Vec::new(),
                events: Vec::new(),
                stats: ProxyStats::default(),
            }),
            stopped: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
        });
        let mut routes = Vec::new();
        let mut acceptors = Vec::new();
        for &broker in brokers {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let local = listener.local_addr()?;
            routes.push((broker, local));
            let inner = inner.clone();
            acceptors.push(
                std::thread::Builder::new()
                    .name(format!("proxy-accept-{}", local.port()))
                    .spawn(move || accept_loop(&inner, &listener, broker))?,
            );
        }
        Ok(FaultProxy {
            inner,
            routes,
            acceptors,
        })
    }

    /// The proxy's address for `broker`, if it fronts it.
    pub fn listen_addr(&self, broker: SocketAddr) -> Option<SocketAddr> {
        self.routes
            .iter()
            .find(|(b, _)| *b == broker)
            .map(|(_, l)| *l)
    }

    /// A resolver (the signature of kafka-edge-std's `ProducerBuilder::resolver`) that
    /// maps each broker's `host:port` to the proxy's port for it, and refuses (NotFound)
    /// any address the proxy does not front, so no connection can bypass it.
    pub fn resolver(
        &self,
    ) -> impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static {
        let routes = self.routes.clone();
        move |host: &str, port: u16| {
            let resolved: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
            resolved
                .iter()
                .find_map(|a| routes.iter().find(|(b, _)| b == a).map(|(_, l)| vec![*l]))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host}:{port} is not behind the fault proxy"),
                    )
                })
        }
    }

    /// Arms the next fault drawn from the seed and returns it. Stalls, delays and
    /// refuse-connect act at once; cuts wait for the next bytes in their direction.
    pub fn inject(&self) -> Fault {
        let mut st = self.inner.lock();
        let total: u64 = st.mix.0.iter().map(|w| u64::from(*w)).sum();
        let mut pick = st.rng.below(total);
        let mut kind = FaultKind::CutRequest;
        for (i, w) in st.mix.0.iter().enumerate() {
            if pick < u64::from(*w) {
                kind = FaultKind::at(i);
                break;
            }
            pick -= u64::from(*w);
        }
        self.arm(&mut st, kind)
    }

    /// Arms a fault of `kind`, its parameters drawn from the seed.
    pub fn inject_kind(&self, kind: FaultKind) -> Fault {
        let mut st = self.inner.lock();
        self.arm(&mut st, kind)
    }

    fn arm(&self, st: &mut State, kind: FaultKind) -> Fault {
        let seq = st.next_seq;
        st.next_seq += 1;
        // Every kind draws the same number of values, so that the sequence of kinds a seed
        // gives does not depend on which kinds came before.
        let a = st.rng.next_u64();
        let b = st.rng.next_u64();
        let fault = match kind {
            // Requests carry batches (up to ~100 KB here): the cut lands anywhere in the
            // next 64 KiB.
            FaultKind::CutRequest => Fault {
                seq,
                kind,
                direction: Direction::Request,
                amount: 1 + a % 65_536,
                extra: 0,
            },
            // Produce responses are a few hundred bytes: within the next few responses.
            FaultKind::CutResponse => Fault {
                seq,
                kind,
                direction: Direction::Response,
                amount: 1 + a % 1_024,
                extra: 0,
            },
            FaultKind::TruncateResponse => Fault {
                seq,
                kind,
                direction: Direction::Response,
                amount: 0,
                extra: a,
            },
            // From a blip to several seconds (past a short `request.timeout.ms`).
            FaultKind::Stall => Fault {
                seq,
                kind,
                direction: if b.is_multiple_of(2) {
                    Direction::Request
                } else {
                    Direction::Response
                },
                amount: 100 + a % 4_000,
                extra: 0,
            },
            FaultKind::Delay => Fault {
                seq,
                kind,
                direction: Direction::Request,
                amount: 200 + a % 2_000,
                extra: 1 + b % 50,
            },
            FaultKind::RefuseConnect => Fault {
                seq,
                kind,
                direction: Direction::Request,
                amount: 0,
                extra: 0,
            },
        };
        st.stats.armed[kind_index(kind)] += 1;
        let armed_at = st.total[fault.direction.index()];
        st.armed_total.push(armed_at);
        let now = Instant::now();
        let at_ms = self.inner.elapsed_ms();
        match kind {
            FaultKind::CutRequest | FaultKind::CutResponse | FaultKind::TruncateResponse => {
                st.queued[fault.direction.index()].push_back(fault);
            }
            FaultKind::Stall => {
                st.stall_until[fault.direction.index()] =
                    Some(now + Duration::from_millis(fault.amount));
                fired(st, fault, 0, 0, None, at_ms);
            }
            FaultKind::Delay => {
                st.delay = Some((
                    now + Duration::from_millis(fault.amount),
                    Duration::from_millis(fault.extra),
                ));
                fired(st, fault, 0, 0, None, at_ms);
            }
            FaultKind::RefuseConnect => {
                st.refuse_next += 1;
                let open: Vec<Arc<Conn>> = st.conns.drain(..).collect();
                for c in &open {
                    if !c.closed.load(Ordering::SeqCst) {
                        c.cut();
                        st.stats.cut += 1;
                    }
                }
                fired(st, fault, 0, 0, None, at_ms);
            }
        }
        fault
    }

    /// Counts so far.
    pub fn stats(&self) -> ProxyStats {
        self.inner.lock().stats.clone()
    }

    /// Every fault that took effect, in order.
    pub fn events(&self) -> Vec<FaultEvent> {
        self.inner.lock().events.clone()
    }

    /// Cuts armed that have not fired yet (waiting for traffic in their direction), in
    /// the order they were armed.
    pub fn pending(&self) -> Vec<Fault> {
        let st = self.inner.lock();
        let mut faults: Vec<Fault> = st.queued.iter().flatten().copied().collect();
        for c in st.conns.iter().filter(|c| !c.closed.load(Ordering::SeqCst)) {
            let taken = *c.pending.lock().unwrap_or_else(|p| p.into_inner());
            faults.extend(taken.iter().flatten().map(|p| p.fault));
        }
        faults.sort_by_key(|f| f.seq);
        faults
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::SeqCst);
        for c in self.inner.lock().conns.drain(..) {
            c.cut();
        }
        // Wake the acceptors blocked in accept().
        for (_, local) in &self.routes {
            let _ = TcpStream::connect_timeout(local, Duration::from_secs(1));
        }
        for a in self.acceptors.drain(..) {
            let _ = a.join();
        }
    }
}

fn fired(
    st: &mut State,
    fault: Fault,
    conn: u64,
    offset: u64,
    frame: Option<(u64, u64)>,
    at_ms: u64,
) {
    st.stats.fired[kind_index(fault.kind)] += 1;
    st.events.push(FaultEvent {
        fault,
        conn,
        offset,
        frame,
        at_ms,
    });
}

fn accept_loop(inner: &Arc<Inner>, listener: &TcpListener, broker: SocketAddr) {
    for client in listener.incoming() {
        if inner.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        let id = inner.next_conn.fetch_add(1, Ordering::SeqCst);
        {
            let mut st = inner.lock();
            st.stats.accepted += 1;
            if st.refuse_next > 0 {
                st.refuse_next -= 1;
                st.stats.refused += 1;
                drop(st);
                // A reset, not an orderly close: the producer sees ECONNRESET at once.
                let sock = socket2::Socket::from(client);
                let _ = sock.set_linger(Some(Duration::ZERO));
                drop(sock);
                continue;
            }
        }
        let Ok(server) = TcpStream::connect(broker) else {
            // The broker is down: the producer sees its connection closed, as it would.
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        let conn = Arc::new(Conn {
            id,
            client,
            server,
            pending: Mutex::new([None, None]),
            closed: AtomicBool::new(false),
        });
        {
            let mut st = inner.lock();
            st.conns.retain(|c| !c.closed.load(Ordering::SeqCst));
            st.conns.push(conn.clone());
        }
        for (direction, from, to) in [
            (Direction::Request, c2, s2.try_clone()),
            (Direction::Response, s2, conn.client.try_clone()),
        ] {
            let Ok(to) = to else {
                conn.cut();
                break;
            };
            let (inner, c) = (inner.clone(), conn.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("proxy-{id}-{direction}"))
                .spawn(move || pump(&inner, &c, direction, from, to));
            if spawned.is_err() {
                conn.cut();
            }
        }
    }
}

fn pump(
    inner: &Arc<Inner>,
    conn: &Arc<Conn>,
    direction: Direction,
    mut from: TcpStream,
    mut to: TcpStream,
) {
    let d = direction.index();
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    let mut frames = FrameTracker::default();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Stalls and delays first: they hold the bytes already read.
        let (stall, delay) = {
            let st = inner.lock();
            let now = Instant::now();
            (
                st.stall_until[d].filter(|u| *u > now),
                st.delay.filter(|(u, _)| *u > now).map(|(_, d)| d),
            )
        };
        if let Some(until) = stall {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
        }
        if let Some(delay) = delay {
            std::thread::sleep(delay);
        }
        let mut st = inner.lock();
        if conn.closed.load(Ordering::SeqCst) {
            break;
        }
        let end = pos + n as u64;
        // A truncation this connection took earlier, or the first cut queued for this
        // direction: a cut after N bytes counts the bytes of every connection (it lands on
        // whichever carries the byte); a truncation takes the first response frame that
        // starts in a chunk read after it was armed.
        let mut pending = conn.pending.lock().unwrap_or_else(|p| p.into_inner())[d];
        let want_frame = pending.is_none()
            && st.queued[d]
                .front()
                .is_some_and(|f| f.kind == FaultKind::TruncateResponse);
        let frame = frames.feed(pos, &buf[..n], want_frame.then_some(pos));
        if pending.is_none() {
            let total = st.total[d];
            match st.queued[d].front().copied() {
                Some(q) if q.kind == FaultKind::TruncateResponse => {
                    if let Some((start, size)) = frame {
                        st.queued[d].pop_front();
                        // A prefix of 0 ..= 4 + size - 1 bytes: never the whole frame.
                        pending = Some(PendingCut {
                            fault: q,
                            cut_at: start + q.extra % (4 + size),
                            frame: Some((start, size)),
                        });
                    }
                }
                Some(q) if q.amount > 0 && st.armed_total[q.seq] + q.amount < total + n as u64 => {
                    st.queued[d].pop_front();
                    let into = (st.armed_total[q.seq] + q.amount).saturating_sub(total);
                    pending = Some(PendingCut {
                        fault: q,
                        cut_at: pos + into,
                        frame: None,
                    });
                }
                _ => {}
            }
        }
        let cut_here = pending.filter(|p| p.cut_at < end);
        let forward = cut_here.map_or(n, |p| (p.cut_at.max(pos) - pos) as usize);
        if forward > 0 && to.write_all(&buf[..forward]).is_err() {
            // Hand a cut taken here on to the next connection.
            if let Some(p) = pending {
                st.queued[d].push_front(p.fault);
            }
            break;
        }
        pos += forward as u64;
        st.total[d] += forward as u64;
        match direction {
            Direction::Request => st.stats.request_bytes += forward as u64,
            Direction::Response => st.stats.response_bytes += forward as u64,
        }
        if let Some(p) = cut_here {
            let at_ms = inner.elapsed_ms();
            conn.cut();
            st.stats.cut += 1;
            fired(&mut st, p.fault, conn.id, pos, p.frame, at_ms);
            conn.pending.lock().unwrap_or_else(|p| p.into_inner())[d] = None;
            break;
        }
        conn.pending.lock().unwrap_or_else(|p| p.into_inner())[d] = pending;
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
    // A truncation taken but not made (the connection closed first) goes back to the
    // queue for the next connection.
    let left = conn.pending.lock().unwrap_or_else(|p| p.into_inner())[d].take();
    if let Some(p) = left {
        inner.lock().queued[d].push_front(p.fault);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_faults() {
        let broker: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let draw = |seed| {
            let p = FaultProxy::start(&[broker], seed).unwrap();
            (0..50).map(|_| p.inject()).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let kinds: std::collections::BTreeSet<FaultKind> = a.iter().map(|f| f.kind).collect();
        assert_eq!(kinds.len(), FaultKind::ALL.len(), "50 draws use every kind");
    }

    /// An echo server behind the proxy: a cut after N request bytes forwards exactly N.
    #[test]
    fn cut_after_n_request_bytes_forwards_exactly_n() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let broker = echo.local_addr().unwrap();
        let received = std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            got.len()
        });
        let proxy = FaultProxy::start(&[broker], 1).unwrap();
        let fault = proxy.inject_kind(FaultKind::CutRequest);
        let mut c = TcpStream::connect(proxy.listen_addr(broker).unwrap()).unwrap();
        let data = vec![1u8; 70_000];
        let _ = c.write_all(&data);
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest); // returns once the proxy cut the connection
        assert_eq!(received.join().unwrap() as u64, fault.amount);
        let stats = proxy.stats();
        assert_eq!(stats.fired[0], 1);
        assert_eq!(stats.cut, 1);
        assert_eq!(proxy.events()[0].offset, fault.amount);
        assert_eq!(proxy.pending(), vec![]);
    }

    /// A truncated response never reaches the client whole.
    #[test]
    fn truncated_response_is_cut_inside_its_frame() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let broker = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut req = [0u8; 1];
            let _ = s.read_exact(&mut req);
            // Two frames of 100 bytes each.
            let mut frame = vec![0, 0, 0, 100];
            frame.extend([5u8; 100]);
            let _ = s.write_all(&frame);
            let _ = s.write_all(&frame);
        });
        let proxy = FaultProxy::start(&[broker], 3).unwrap();
        proxy.inject_kind(FaultKind::TruncateResponse);
        let mut c = TcpStream::connect(proxy.listen_addr(broker).unwrap()).unwrap();
        c.write_all(&[1]).unwrap();
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        assert!(
            got.len() < 104,
            "the first frame was cut: {} bytes",
            got.len()
        );
        let ev = &proxy.events()[0];
        assert_eq!(ev.frame, Some((0, 100)));
        assert_eq!(ev.offset, got.len() as u64);
    }

    #[test]
    fn refuse_connect_resets_the_next_connection() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let broker = server.local_addr().unwrap();
        let proxy = FaultProxy::start(&[broker], 5).unwrap();
        proxy.inject_kind(FaultKind::RefuseConnect);
        let mut c = TcpStream::connect(proxy.listen_addr(broker).unwrap()).unwrap();
        let mut b = [0u8; 1];
        let r = c.read(&mut b);
        assert!(
            matches!(r, Ok(0)) || r.is_err(),
            "a refused connection yields nothing: {r:?}"
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.stats().refused == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proxy.stats().refused, 1);
    }
}
