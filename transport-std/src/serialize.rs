//! Key and value serializers (Java's `Serializer<T>`) and [`TypedProducer`], a producer of
//! typed keys and values.

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::delivery::{DeliveryFuture, DeliveryResult};
use crate::error::{SendError, SerializationError};
use crate::producer::Producer;
use crate::record::{Header, ProducerRecord};

/// Turns a `T` into bytes, appended to `out` (Java's `Serializer<T>`). An error is the
/// serializer's explanation.
pub trait Serializer<T: ?Sized>: Send + Sync {
    /// Appends the bytes of `data`, for `topic`, to `out` (empty on entry).
    fn serialize(&self, topic: &str, data: &T, out: &mut Vec<u8>) -> Result<(), String>;
}

/// Bytes as they are (Java's `ByteArraySerializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerializer;

impl Serializer<[u8]> for BytesSerializer {
    fn serialize(&self, _topic: &str, data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(data);
        Ok(())
    }
}

impl Serializer<Vec<u8>> for BytesSerializer {
    fn serialize(&self, _topic: &str, data: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(data);
        Ok(())
    }
}

/// UTF-8 text (Java's `StringSerializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;

impl Serializer<str> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &str, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(data.as_bytes());
        Ok(())
    }
}

impl Serializer<String> for StringSerializer {
    fn serialize(&self, _topic: &str, data: &String, out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(data.as_bytes());
        Ok(())
    }
}

/// Any `serde::Serialize` value as JSON.
#[cfg(feature = "json")]
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerializer;

#[cfg(feature = "json")]
impl<T: serde::Serialize + ?Sized> Serializer<T> for JsonSerializer {
    fn serialize(&self, _topic: &str, data: &T, out: &mut Vec<u8>) -> Result<(), String> {
        serde_json::to_writer(out, data).map_err(|e| e.to_string())
    }
}

thread_local! {
    /// Reused serialization buffers: the hot path allocates nothing once warm.
    static BUFFERS: RefCell<(Vec<u8>, Vec<u8>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// A typed record for [`TypedProducer::send`].
#[derive(Debug)]
pub struct TypedRecord<'a, K: ?Sized, V: ?Sized> {
    /// The topic.
    pub topic: &'a str,
    /// An explicit partition, or `None` for the partitioner's choice.
    pub partition: Option<i32>,
    /// The key, or `None` for a null key.
    pub key: Option<&'a K>,
    /// The value, or `None` for a null value.
    pub value: Option<&'a V>,
    /// The headers.
    pub headers: crate::record::Headers<'a>,
    /// `CreateTime` (ms since the Unix epoch), or `None` for now.
    pub timestamp: Option<i64>,
}

impl<'a, K: ?Sized, V: ?Sized> TypedRecord<'a, K, V> {
    /// A record of `value` for `topic`.
    pub fn new(topic: &'a str, value: &'a V) -> Self {
        Self {
            topic,
            partition: None,
            key: None,
            value: Some(value),
            headers: crate::record::Headers::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: &'a K) -> Self {
        self.key = Some(key);
        self
    }

    /// Sends to this partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &'a str, value: &'a [u8]) -> Self {
        self.headers.push(Header {
            key,
            value: Some(value),
        });
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }
}

/// A producer of `K` keys and `V` values (Java's `KafkaProducer<K, V>` with its
/// serializers). Keys and values are serialized into per-thread buffers, then copied once
/// into buffer memory.
///
/// ```no_run
/// use kafka_edge_std::{Producer, StringSerializer, TypedProducer, TypedRecord};
/// let producer = Producer::builder().set("bootstrap.servers", "localhost:9092").build()?;
/// let typed = TypedProducer::<str, str, _, _>::new(producer, StringSerializer, StringSerializer);
/// let ack = typed.send(TypedRecord::new("greetings", "hello").key("en"))?.wait();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TypedProducer<K: ?Sized, V: ?Sized, KS, VS> {
    producer: Producer,
    key_serializer: KS,
    value_serializer: VS,
    _types: PhantomData<fn(&K, &V)>,
}

impl<K: ?Sized, V: ?Sized, KS, VS> std::fmt::Debug for TypedProducer<K, V, KS, VS> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedProducer")
            .field("producer", &self.producer)
            .finish_non_exhaustive()
    }
}

impl<K: ?Sized, V: ?Sized, KS: Serializer<K>, VS: Serializer<V>> TypedProducer<K, V, KS, VS> {
    /// Wraps `producer` with serializers for keys and values.
    pub fn new(producer: Producer, key_serializer: KS, value_serializer: VS) -> Self {
        Self {
            producer,
            key_serializer,
            value_serializer,
            _types: PhantomData,
        }
    }

    /// The producer underneath (for `flush`, `close`, metrics).
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Serializes and sends `record`; see [`Producer::send`].
    pub fn send(&self, record: TypedRecord<'_, K, V>) -> Result<DeliveryFuture, SendError> {
        self.with_bytes(record, |p, r| p.send(r))
    }

    /// Serializes and sends `record` with a callback; see [`Producer::send_with_callback`].
    pub fn send_with_callback<F>(
        &self,
        record: TypedRecord<'_, K, V>,
        callback: F,
    ) -> Result<(), SendError>
    where
        F: FnOnce(DeliveryResult) + Send + 'static,
    {
        self.with_bytes(record, |p, r| p.send_with_callback(r, callback))
    }

    fn with_bytes<T>(
        &self,
        record: TypedRecord<'_, K, V>,
        send: impl FnOnce(&Producer, &ProducerRecord<'_>) -> Result<T, SendError>,
    ) -> Result<T, SendError> {
        let run = |bufs: &mut (Vec<u8>, Vec<u8>)| {
            let (kb, vb) = bufs;
            kb.clear();
            vb.clear();
            if let Some(k) = record.key {
                self.key_serializer
                    .serialize(record.topic, k, kb)
                    .map_err(|reason| SerializationError::Key { reason })?;
            }
            if let Some(v) = record.value {
                self.value_serializer
                    .serialize(record.topic, v, vb)
                    .map_err(|reason| SerializationError::Value { reason })?;
            }
            let r = ProducerRecord {
                topic: record.topic,
                partition: record.partition,
                key: record.key.map(|_| kb.as_slice()),
                value: record.value.map(|_| vb.as_slice()),
                headers: record.headers,
                timestamp: record.timestamp,
            };
            send(&self.producer, &r)
        };
        BUFFERS.with(|cell| match cell.try_borrow_mut() {
            Ok(mut bufs) => run(&mut bufs),
            // Re-entered (a serializer that sends): use fresh buffers.
            Err(_) => run(&mut (Vec::new(), Vec::new())),
        })
    }
}
