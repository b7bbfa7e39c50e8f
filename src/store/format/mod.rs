//! The store's on-disk format: one home for every byte layout, every file name and the
//! one validator of the store's files.
//!
//! # Files
//!
//! ```text
//! <store>/<topic>/.lock                      flock held by the one recorder
//! <store>/<topic>/<base position:020>.seg    a segment (see [`segment`])
//! <store>/<topic>/<base position:020>.idx    its index of checksummed runs (see [`index`])
//! <store>/<topic>/.next.prep                 the next segment, preallocated ahead
//! <store>/<topic>/.replay-<hex name>.lock    flock held by a named replay
//! ```
//!
//! [`names`] builds and parses these names (nothing else spells them).
//!
//! # Modules
//!
//! | module       | job                                                                |
//! |--------------|--------------------------------------------------------------------|
//! | [`segment`]  | the segment's byte tables (header, records, footer, trailer), their encoding and decoding, and [`SegmentBuilder`] (a whole sealed segment and its index in memory) |
//! | [`index`]    | the `.idx` byte tables: header and run entries; encode and parse   |
//! | [`names`]    | every file name of the store                                       |
//! | [`validate`] | the one validator of segments and indexes, used by every reader    |
//! | `crc`        | combining the crc32c of consecutive runs                            |

mod crc;
pub mod index;
pub mod names;
pub mod segment;
pub mod validate;

pub use segment::SegmentBuilder;
