//! The bridge's own view of its cluster: which node ids exist at which address, and which
//! topic id is which topic, learned from Metadata requests the bridge sends itself to its
//! bootstrap servers (never from anything a client says).
//!
//! The view follows the topics clients ask about in their (allowed) Metadata requests, so
//! that Produce v13 topic ids can be mapped back to names. A background task refreshes it
//! every `metadata_refresh_ms`, and at once when a client names a node id or topic id the
//! view does not hold ([`ClusterView::refresh_and_wait`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use kafka_edge_core::protocol::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, Array, DecodeError, EncodeError, Message,
    MetadataRequest, MetadataRequestTopic, MetadataResponse, Reader, RequestHeader, ResponseHeader,
    Uuid, Writer,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, watch};

use crate::config::split_host_port;
use crate::inspect::TopicIds;
use crate::metrics::Metrics;
use crate::upstream::{Upstream, UpstreamError};

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// No bootstrap server or broker answered.
    #[error("no broker answered the bridge's Metadata request: {0}")]
    Unreachable(std::io::Error),
    /// The connection failed (TCP, TLS or SASL).
    #[error("broker connection: {0}")]
    Connect(UpstreamError),
    /// A broker's answer could not be decoded.
    #[error("undecodable answer from a broker: {0}")]
    Decode(#[from] DecodeError),
    /// Our own request could not be encoded (too many topic names for one frame).
    #[error("cannot encode the Metadata request: {0}")]
    Encode(#[from] EncodeError),
    /// The broker supports no Metadata version the core speaks.
    #[error("the broker supports no Metadata version in {0:?}")]
    NoCommonVersion(std::ops::RangeInclusive<i16>),
    /// The broker sent a frame over the size limit.
    #[error("broker frame of {0} bytes over the limit")]
    FrameTooLarge(usize),
}

/// A broker's advertised address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    /// Host as the broker advertises it.
    pub host: String,
    /// Port.
    pub port: u16,
}

#[derive(Debug, Default)]
struct State {
    brokers: HashMap<i32, BrokerAddr>,
    topic_ids: HashMap<Uuid, String>,
    /// Topic names clients asked about: the next refresh asks for them.
    wanted: BTreeSet<String>,
}

/// The shared metadata view (one per bridge).
#[derive(Debug)]
pub struct ClusterView {
    bootstrap: Vec<String>,
    state: RwLock<State>,
    wake: Notify,
    /// Refresh attempts started so far.
    started: std::sync::atomic::AtomicU64,
    /// The number of the last refresh attempt finished (successful or not).
    generation: watch::Sender<u64>,
    max_topics: usize,
    connect_timeout: Duration,
    metrics: Arc<Metrics>,
    upstream: Upstream,
}

impl ClusterView {
    /// A view of the cluster behind `bootstrap` (`host:port` each, reached through
    /// `upstream`), following at most `max_topics` topic names.
    pub fn new(
        bootstrap: Vec<String>,
        max_topics: usize,
        connect_timeout: Duration,
        metrics: Arc<Metrics>,
        upstream: Upstream,
    ) -> Self {
        Self {
            bootstrap,
            state: RwLock::new(State::default()),
            wake: Notify::new(),
            started: std::sync::atomic::AtomicU64::new(0),
            generation: watch::channel(0).0,
            max_topics,
            connect_timeout,
            metrics,
            upstream,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The bootstrap servers, as configured.
    pub fn bootstrap(&self) -> &[String] {
        &self.bootstrap
    }

    /// The address of `node_id`, if the view holds it.
    pub fn broker(&self, node_id: i32) -> Option<BrokerAddr> {
        self.read().brokers.get(&node_id).cloned()
    }

    /// Adds topic names to follow (from an allowed client Metadata request); wakes the
    /// refresher when one is new. Names beyond the limit are ignored.
    pub fn want<'n>(&self, names: impl IntoIterator<Item = &'n str>) {
        let mut new = false;
        {
            let st = self.read();
            let names: Vec<&str> = names
                .into_iter()
                .filter(|n| !st.wanted.contains(*n))
                .collect();
            drop(st);
            if !names.is_empty() {
                let mut st = self.write();
                for n in names {
                    if st.wanted.len() < self.max_topics && st.wanted.insert(n.to_owned()) {
                        new = true;
                    }
                }
            }
        }
        if new {
            self.wake.notify_one();
        }
    }

    /// Asks for a refresh now and waits until one that *started* after this call has
    /// finished (or `timeout` passed): a refresh already under way may lack the topic names
    /// wanted just before.
    pub async fn refresh_and_wait(&self, timeout: Duration) {
        let mut rx = self.generation.subscribe();
        let target = self.started.load(std::sync::atomic::Ordering::SeqCst) + 1;
        self.wake.notify_one();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|g| *g >= target)).await;
    }

    /// Refreshes every `period`, and whenever asked; runs until the task is dropped.
    pub async fn run_refresher(self: Arc<Self>, period: Duration) {
        loop {
            let n = self
                .started
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            match self.refresh_once().await {
                Ok((brokers, topics)) => {
                    tracing::debug!(brokers, topics, "metadata refreshed");
                }
                Err(e) => tracing::warn!("metadata refresh failed: {e}"),
            }
            self.generation.send_replace(n);
            // At most one refresh per 200 ms however often clients ask.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let _ = tokio::time::timeout(period, self.wake.notified()).await;
        }
    }

    /// One refresh: the first of the bootstrap servers, then the known brokers, that
    /// answers. Returns the numbers of brokers and topic ids now known.
    pub async fn refresh_once(&self) -> Result<(usize, usize), RefreshError> {
        self.metrics
            .metadata_refreshes_total
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (wanted, mut targets): (Vec<String>, Vec<(String, u16)>) = {
            let st = self.read();
            let mut targets: Vec<(String, u16)> = self
                .bootstrap
                .iter()
                .filter_map(|b| split_host_port(b).map(|(h, p)| (h.to_owned(), p)))
                .collect();
            targets.extend(st.brokers.values().map(|b| (b.host.clone(), b.port)));
            (st.wanted.iter().cloned().collect(), targets)
        };
        targets.dedup();
        let mut last = RefreshError::Unreachable(std::io::Error::other("no bootstrap server"));
        for (host, port) in &targets {
            let mut stream = match self
                .upstream
                .connect(host, *port, self.connect_timeout)
                .await
            {
                Ok(c) => c.stream,
                Err(e) => {
                    last = RefreshError::Connect(e);
                    continue;
                }
            };
            let exchange = tokio::time::timeout(
                self.connect_timeout * 2,
                metadata_exchange(&mut stream, &wanted),
            )
            .await;
            match exchange {
                Ok(Ok(update)) => {
                    let mut st = self.write();
                    // Replaced, not merged: every followed topic was asked for, so an id
                    // missing now belongs to a deleted topic.
                    st.brokers = update.brokers;
                    st.topic_ids = update.topic_ids;
                    return Ok((st.brokers.len(), st.topic_ids.len()));
                }
                Ok(Err(e @ RefreshError::Unreachable(_))) => last = e,
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    last = RefreshError::Unreachable(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer",
                    ));
                }
            }
        }
        Err(last)
    }
}

impl TopicIds for ClusterView {
    fn with_name<R>(&self, id: Uuid, f: impl FnOnce(&str) -> R) -> Option<R> {
        self.read().topic_ids.get(&id).map(|n| f(n))
    }
}

struct Update {
    brokers: HashMap<i32, BrokerAddr>,
    topic_ids: HashMap<Uuid, String>,
}

/// The largest answer the bridge reads on its own connection (metadata of many topics).
const MAX_OWN_FRAME: usize = 64 << 20;

async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    header: RequestHeader<'_>,
    body: &impl Fn(&mut Writer<'_>) -> Result<(), EncodeError>,
    body_len: usize,
) -> Result<Vec<u8>, RefreshError> {
    let size = header.encoded_len() + body_len;
    let mut buf = vec![0u8; 4 + size];
    let mut w = Writer::new(&mut buf);
    kafka_edge_core::protocol::write_frame_size(&mut w, size)?;
    header.encode(&mut w)?;
    body(&mut w)?;
    stream
        .write_all(&buf)
        .await
        .map_err(RefreshError::Unreachable)?;
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(RefreshError::Unreachable)?;
    let len =
        usize::try_from(i32::from_be_bytes(prefix)).map_err(|_| DecodeError::InvalidLength)?;
    if len > MAX_OWN_FRAME {
        return Err(RefreshError::FrameTooLarge(len));
    }
    let mut frame = vec![0u8; len];
    stream
        .read_exact(&mut frame)
        .await
        .map_err(RefreshError::Unreachable)?;
    Ok(frame)
}

/// ApiVersions (to pick the Metadata version), then Metadata for `wanted` with
/// `allow_auto_topic_creation = false`.
async fn metadata_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    wanted: &[String],
) -> Result<Update, RefreshError> {
    const CLIENT: Option<&str> = Some("kafka-edge-bridge");
    let av_version = 3;
    let av = ApiVersionsRequest {
        client_software_name: "kafka-edge-bridge",
        client_software_version: env!("CARGO_PKG_VERSION"),
    };
    let frame = request(
        stream,
        RequestHeader::new(ApiKey::ApiVersions, av_version, 1, CLIENT),
        &|w| av.encode(av_version, w),
        av.encoded_len(av_version),
    )
    .await?;
    let mut r = Reader::new(&frame);
    ResponseHeader::decode(0, &mut r)?;
    let (versions, _) = ApiVersionsResponse::decode_with_fallback(av_version, r.rest())?;
    let md_range = ApiKey::Metadata.supported_versions();
    let version = versions
        .negotiate(ApiKey::Metadata)
        .ok_or(RefreshError::NoCommonVersion(md_range))?;

    let topics: Vec<MetadataRequestTopic<'_>> = wanted
        .iter()
        .map(|n| MetadataRequestTopic {
            topic_id: Uuid::ZERO,
            name: Some(n),
        })
        .collect();
    let mut md = MetadataRequest::new(Some(Array::from_slice(&topics)));
    md.allow_auto_topic_creation = false;
    let frame = request(
        stream,
        RequestHeader::new(ApiKey::Metadata, version, 2, CLIENT),
        &|w| md.encode(version, w),
        md.encoded_len(version),
    )
    .await?;
    let mut r = Reader::new(&frame);
    ResponseHeader::decode(ApiKey::Metadata.response_header_version(version), &mut r)?;
    let resp = MetadataResponse::decode(version, &mut r)?;
    let brokers = resp
        .brokers
        .iter()
        .filter_map(|b| {
            let port = u16::try_from(b.port).ok()?;
            Some((
                b.node_id,
                BrokerAddr {
                    host: b.host.to_owned(),
                    port,
                },
            ))
        })
        .collect();
    let topic_ids = resp
        .topics
        .iter()
        .filter(|t| !t.topic_id.is_zero())
        .filter_map(|t| Some((t.topic_id, t.name?.to_owned())))
        .collect();
    Ok(Update { brokers, topic_ids })
}
