//! The ring: the bytes of a topic's ring file and the lock-free protocol over them.
//!
//! - [`layout`]: the byte tables of the header, the slot tables and the record header.
//! - `protocol`: claim, commit, read, back-pressure, joining, eviction and the unblocking
//!   of abandoned claims, over the `Memory` trait (the real mapping, or a loom model).
//! - `slots`: every owner-word transition of the producer and consumer slots, the
//!   exclusive-publisher word, the counters and the tools' snapshots of them.
//! - `wake`: both halves of the futex handshake (sleeper and waker).
//!
//! No module outside `ring` reads or writes a slot word or a header word directly.

pub mod layout;
#[cfg(all(test, loom))]
mod loom_tests;
mod protocol;
mod slots;
mod wake;

pub use protocol::RecordHeader;
pub(crate) use protocol::*;
pub(crate) use slots::{init_slots, publish_ready, NamedTake};
pub use slots::{HeaderWords, TopicStats};
