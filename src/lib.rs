//! # shmbus
//!
//! A shared-memory event bus for processes on one machine.
//!
//! - **Topics** are lock-free multi-producer broadcast logs in memory-mapped ring files
//!   (see [`ring::layout`] for the bytes and [`ring`] for the protocol). Every subscriber sees
//!   every record, in one total order.
//! - **Reliable mode** (the default) is lossless: a producer never overwrites a record
//!   a live subscriber has not read; `send` waits, `try_send` returns
//!   [`SendError::BackPressured`]. Reads are **zero-copy**: a received event borrows the
//!   mapping and derefs to the rkyv archive, validated by default.
//! - **Lossy mode** never makes producers wait; a subscriber that is lapped gets
//!   [`RecvError::Lagged`] with the bytes it missed and resumes. Lossy reads copy and
//!   re-validate, so no reference into memory a producer can overwrite is handed out.
//! - **Crashes**: any participant may be SIGKILLed at any instruction. A dead
//!   subscriber is evicted by the first producer it blocks; a producer that dies between
//!   claim and commit leaves a claim that a subscriber turns into a gap record after the
//!   topic's unblock timeout. Nothing committed is lost; no lock is held across a wait.
//!   A claim and its gap are decided by one CAS on the record's commit word, so a
//!   producer that was judged dead but is not (another PID namespace, a hidden
//!   `/proc`) gets [`SendError::ClaimLost`] from its commit, never success with a gap
//!   in its place. A live producer is never judged dead for being slow: one stopped
//!   (SIGSTOP, a debugger) between claim and commit holds subscribers at its claim
//!   until it continues.
//! - **What a reader writes into a ring**: a subscriber writes its own consumer slot
//!   (position, progress, heartbeat, name), the shared count of sleeping waiters while
//!   it blocks, and, after the topic's unblock timeout at a claim no live producer
//!   holds, the gap record that replaces it (and the gap counters). It never writes a
//!   gap when the shared words fail their invariants (a scribbled tail or position:
//!   [`AttachError::CorruptWord`] on open, [`RecvError::CorruptWord`] when blocked).
//!   An *inspecting* subscriber ([`SubscriberBuilder::inspect`], for queries, `tail`
//!   and monitors) writes only its own slot and the waiter count: it skips an
//!   abandoned claim on its own instead of writing the gap.
//! - **`fork()`**: handles opened before `fork()` belong to the parent; a child (with
//!   or without `exec`) opens its own [`Bus`], [`Topic`], [`Publisher`] and
//!   [`Subscriber`]. The process identity the library registers in slots (pid and
//!   start time) is re-read when `getpid()` changes, so a forked child is judged by its
//!   own identity, alive while it runs.
//! - **Waiting**: spin, yield, back off, or block on a futex in the shared header (no CPU
//!   while idle; producers pay for a wake-up only when a subscriber sleeps).
//! - **Typed events** carry a schema stored in the ring file, so tools decode any event
//!   to JSON without the producer's code ([`schema::render_json`]).
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | [`topic`] | the handles: [`Bus`], [`Topic`] ([`TopicBuilder`]), [`Publisher`], [`Subscriber`], [`Wait`]; bus and temporary file names ([`topic::names`]) |
//! | [`ring`] | the ring file's bytes ([`ring::layout`]) and the lock-free protocol: claim/commit/read, slot transitions, the futex wake-up |
//! | [`schema`] | schemas ([`schema::Schema`]), their stored form, decoding payloads to JSON ([`schema::decode`]) and encoding JSON to payloads ([`schema::encode`]) |
//! | [`event`](mod@event) | the [`Event`] trait that `#[shmbus::event]` / `#[derive(shmbus::Event)]` implement |
//! | [`store`] | the recorder, segment files and their one validator ([`store::format`]), the store cursor, recovery, verification, retention and [`store::Replay`] |
//! | [`query`] | filters, projections and aggregates over live topics and stores |
//! | [`error`] | one error type per operation, all converting into [`Error`] |
//!
//! The platform floor (system calls, clocks, the atomics facade that switches to loom,
//! fault points, the mapping) is the private module `sys`.
//!
//! Beside the library: the `shmbus` command-line tool (crate `shmbus-cli` in `tools/`:
//! `create`, `publish`, `ls`, `info`, `stat`, `tail`, `query`, `record`, `verify`,
//! `replay`, `export`, `gc`, `doctor`, `completions`) and the C ABI (crate `shmbus-c` in
//! `bindings/c/`: `libshmbus.so`/`.a` and `include/shmbus.h`). The repository's
//! `docs/` explains the architecture, the guarantees and the formats.
//!
//! ```
//! use shmbus::{Bus, Start};
//!
//! #[shmbus::event]
//! #[derive(Debug)]
//! struct Tick {
//!     symbol: String,
//!     price: f64,
//! }
//!
//! let dir = std::env::temp_dir().join(format!("shmbus-doc-lib-{}", std::process::id()));
//! let bus = Bus::open_dir(&dir)?;
//! let topic = bus.topic("ticks").event::<Tick>().capacity(1 << 16).open_or_create()?;
//! let mut sub = topic.subscriber().start(Start::Earliest).open()?;
//! let mut publisher = topic.publisher()?;
//! publisher.send(&Tick { symbol: "ABC".into(), price: 101.5 })?;
//!
//! let ev = sub.recv()?;
//! assert_eq!(ev.symbol, "ABC");
//! assert_eq!(ev.price, 101.5);
//!
//! let mut json = String::new();
//! shmbus::schema::render_json(topic.schema().unwrap(), ev.bytes(), &mut json)?;
//! assert_eq!(json, r#"{"symbol":"ABC","price":101.5}"#);
//! # drop(ev); drop(sub); drop(publisher); drop(topic);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

extern crate self as shmbus;

pub mod error;
pub mod event;
pub mod query;
pub mod ring;
pub mod schema;
pub mod store;
mod sys;
pub mod topic;

pub use error::{ArchiveError, AttachError, Error, OpenError, RecvError, SendError};
pub use event::Event;
pub use ring::layout::Mode;
pub use rkyv;
pub use shmbus_derive::{event, Event};
pub use sys::os::now_ns;
pub use topic::publisher::{Grant, Publisher};
pub use topic::subscriber::{RawEvent, Received, Start, Subscriber, SubscriberBuilder};
pub use topic::wait::Wait;
pub use topic::{
    check_name, Access, Bus, Payload, ProducerInfo, Raw, SubscriberInfo, SubscriberState, Topic,
    TopicBuilder, TopicStats,
};
