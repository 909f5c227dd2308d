//! The record batch reader never panics, whatever the bytes: batches (magic, length and
//! CRC checked), their records and headers; and records decoded without the CRC gate.
//!
//! `cargo +nightly fuzz run record_reader fuzz/corpus/record_reader fuzz/seeds/record_reader`
//! (the seeds are valid batches written by the core's `BatchBuilder`, so that mutations
//! start past the CRC).
#![no_main]

use kafka_edge_core::record::{RecordBatchHeader, RecordBatchReader, Records};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for batch in RecordBatchReader::new(data).flatten() {
        let h = batch.header();
        let _ = (h.compression(), h.timestamp_type(), h.total_len(), h.compute_crc());
        if let Ok(records) = batch.records() {
            for r in records.flatten() {
                r.headers.for_each(drop);
            }
        }
    }

    // Random bytes almost never carry a valid CRC: also decode them as the records
    // section of a synthetic header, with the first byte as the record count.
    if let Some((&count, records)) = data.split_first() {
        let mut header = [0u8; 61];
        if let Ok(mut h) = RecordBatchHeader::new_checked(&mut header[..]) {
            h.set_record_count(i32::from(count));
            for r in Records::new(records, &h).flatten() {
                r.headers.for_each(drop);
            }
        }
    }
});
