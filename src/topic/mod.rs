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

use crate::error::AttachError;
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

impl<E> Topic<E> {
    /// The whole record at `pos` (header and payload, `size` bytes) in the mapping:
    /// what the recorder writes to disk without copying.
    ///
    /// # Safety
    ///
    /// The record is committed and the caller's published position, at or before
    /// `pos`, keeps producers off it for the lifetime the caller gives the slice.
    pub(crate) unsafe fn record_bytes(&self, pos: u64, size: usize) -> &[u8] {
        // SAFETY: guaranteed by the caller.
        unsafe { self.inner.ring.record_bytes(pos, size) }
    }

    /// The read-write view of the ring, mapped on first use.
    pub(crate) fn writable_ring(&self) -> Result<Arc<Ring<Mapping>>, AttachError> {
        if let Some(r) = self.inner.ring_rw.get() {
            return Ok(r.clone());
        }
        let r = &self.inner.ring;
        let file = r
            .mem
            .try_clone_file()
            .map_err(|e| AttachError::Io(e.to_string()))?;
        let map = Mapping::new(file, r.mem.path.clone(), r.p.capacity, true).map_err(|e| {
            AttachError::Io(format!("map {} read-write: {e}", r.mem.path.display()))
        })?;
        let _ = self.inner.ring_rw.set(Arc::new(Ring::new(map, r.p)));
        Ok(self
            .inner
            .ring_rw
            .get()
            .cloned()
            .unwrap_or_else(|| unreachable!("set above")))
    }
}
