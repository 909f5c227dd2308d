//! Opening a broker connection: a non-blocking TCP socket with Java's `send.buffer.bytes`
//! and `receive.buffer.bytes` set before it connects.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

use crate::error::BuildError;
use crate::properties::Properties;

/// The socket properties this transport reads.
pub(crate) const SOCKET_KEYS: &[&str] = &["send.buffer.bytes", "receive.buffer.bytes"];

/// `SO_SNDBUF` and `SO_RCVBUF` of every broker connection: `None` leaves the operating
/// system's (auto-tuned) size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SocketBuffers {
    pub(crate) send: Option<usize>,
    pub(crate) receive: Option<usize>,
}

/// The socket buffer sizes `properties` set: Java's range is -1 (the OS's size) and up.
///
/// Left unset, the OS's size is kept, where Java sets 131072 (send) and 32768 (receive):
/// a fixed size turns Linux's buffer auto-tuning off, which costs throughput on fast
/// links; set either explicitly for Java's behaviour.
pub(crate) fn settings(properties: &Properties) -> Result<SocketBuffers, BuildError> {
    let size = |key: &'static str| -> Result<Option<usize>, BuildError> {
        let Some(value) = properties.get(key) else {
            return Ok(None);
        };
        let invalid = || BuildError::Config {
            key: Some(key.to_string()),
            value: Some(value.to_string()),
            source: kafka_edge_core::ConfigError::InvalidValue { key },
        };
        let n: i64 = value.trim().parse().map_err(|_| invalid())?;
        match n {
            -1 => Ok(None),
            n if n < -1 || n > i64::from(i32::MAX) => Err(invalid()),
            n => Ok(usize::try_from(n).ok()),
        }
    };
    Ok(SocketBuffers {
        send: size("send.buffer.bytes")?,
        receive: size("receive.buffer.bytes")?,
    })
}

/// A non-blocking TCP connection to `addr` under way, with `buffers` set first (as Java
/// does, so that the receive window is scaled for it).
pub(crate) fn connect(addr: SocketAddr, buffers: SocketBuffers) -> io::Result<mio::net::TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(n) = buffers.send {
        socket.set_send_buffer_size(n)?;
    }
    if let Some(n) = buffers.receive {
        socket.set_recv_buffer_size(n)?;
    }
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Err(e) if !in_progress(&e) => return Err(e),
        _ => {}
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

/// Whether `e` is a non-blocking connect under way (`EINPROGRESS`; Windows reports
/// `WouldBlock`).
fn in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    e.kind() == io::ErrorKind::WouldBlock
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> Properties {
        kv.iter().copied().collect()
    }

    #[test]
    fn sizes_follow_javas_range() {
        assert_eq!(settings(&props(&[])).unwrap(), SocketBuffers::default());
        let b = settings(&props(&[
            ("send.buffer.bytes", "131072"),
            ("receive.buffer.bytes", "-1"),
        ]))
        .unwrap();
        assert_eq!(b.send, Some(131_072));
        assert_eq!(b.receive, None);
        for bad in ["-2", "x", "3000000000"] {
            assert!(
                settings(&props(&[("send.buffer.bytes", bad)])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_buffer_sizes_are_set_before_connecting() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let buffers = SocketBuffers {
            send: Some(65_536),
            receive: Some(65_536),
        };
        let stream = connect(addr, buffers).unwrap();
        let (_peer, _) = listener.accept().unwrap();
        let s = socket2::SockRef::from(&stream);
        // Linux doubles what it is given (for its bookkeeping); others keep it.
        let send = s.send_buffer_size().unwrap();
        let recv = s.recv_buffer_size().unwrap();
        assert!((65_536..=131_072).contains(&send), "{send}");
        assert!((65_536..=131_072).contains(&recv), "{recv}");
    }
}
