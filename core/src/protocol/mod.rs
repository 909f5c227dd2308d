//! Kafka wire protocol: primitive codec over byte slices.
//!
//! This module is a leaf: it depends on nothing else in the crate.
//!
//! # The no-panic promise
//!
//! Every decoder in this module (and in the modules built on it) takes arbitrary bytes
//! from the network and **never panics**: it never indexes out of bounds (all access goes
//! through [`slice::get`] and checked splits), never overflows arithmetic on a length read
//! from the wire (checked operations), and reports malformed input as a typed
//! [`DecodeError`]. Decoders borrow from the input (`&'a str`, `&'a [u8]`) and never copy.
//!
//! Every encoder **never panics** either: when the output buffer is too small it returns
//! [`EncodeError::BufferTooSmall`] naming the number of bytes the write needed, and leaves
//! the bytes already written in place (the caller discards the partial message).
//!
//! Both promises are exercised by property tests and by the `protocol_primitives` fuzz
//! target.

mod codec;

pub(crate) use codec::put_uvarint_exact;
pub use codec::{
    DecodeError, EncodeError, Reader, TaggedField, TaggedFields, Writer, unsigned_varint_len,
    varint_len, varlong_len,
};
