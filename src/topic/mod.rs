//! Handles: a [`Bus`] (a directory of topics, its names and permissions: `bus`), a
//! [`Topic`] (creation and opening: `create`; what tools see: `inspect`), its
//! [`Publisher`](publisher::Publisher)s and [`Subscriber`](subscriber::Subscriber)s, and
//! how they wait ([`Wait`](wait::Wait)). The protocol itself lives in [`crate::ring`].

mod bus;
mod create;
mod inspect;
pub mod names;
pub(crate) mod publisher;
pub(crate) mod subscriber;
pub(crate) mod wait;

use std::marker::PhantomData;
use std::sync::Arc;

use crate::ring::layout::*;
use crate::ring::{Liveness, Ring};
use crate::schema::Schema;
use crate::sys::mapping::Mapping;

pub use bus::*;
pub use create::*;
pub use inspect::*;

/// The OS liveness oracle.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct OsLiveness;

impl Liveness for OsLiveness {
    fn alive(&self, pid: u32, start28: u64) -> bool {
        crate::sys::os::alive(pid, start28)
    }
    fn now_ns(&self) -> u64 {
        crate::sys::os::now_ns()
    }
}

pub(crate) struct TopicInner {
    /// Header read-write, data read-only: what subscribers and tools use.
    pub ring: Ring<Mapping>,
    /// Header and data read-write: made for the first publisher.
    pub ring_rw: std::sync::OnceLock<Arc<Ring<Mapping>>>,
    pub name: String,
    pub meta: Meta,
    pub schema: Option<Schema>,
    pub trusted: bool,
}

/// An open topic. Cheap to clone; publishers and subscribers are made from it.
pub struct Topic<E = Raw> {
    pub(crate) inner: Arc<TopicInner>,
    _e: PhantomData<fn() -> E>,
}

impl<E> Clone for Topic<E> {
    fn clone(&self) -> Self {
        Topic {
            inner: self.inner.clone(),
            _e: PhantomData,
        }
    }
}

impl<E> std::fmt::Debug for Topic<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.inner.name)
            .field("path", &self.inner.ring.mem.path)
            .finish()
    }
}
