//! kafka-edge-core: placeholder, filled in by the core issue.
#![no_std]
