//! What tools see of a topic: its static fields, counters, producers and subscribers, as
//! racy snapshots for `shmbus info`, `stat` and `ls`, never a basis for synchronisation.

use std::path::Path;

use crate::ring::layout::*;
use crate::ring::{owner_pid, owner_start, owner_state};
use crate::schema::Schema;
use crate::sys::sync::Ordering;
use crate::topic::*;

/// A snapshot of one producer slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Slot index.
    pub slot: usize,
    /// Process id.
    pub pid: u32,
    /// Whether the process is running.
    pub alive: bool,
    /// Records published.
    pub records: u64,
    /// Payload bytes published.
    pub bytes: u64,
    /// Times it found the ring full.
    pub stalls: u64,
    /// Position of a claim in flight, if any.
    pub claim: Option<u64>,
}

/// State of a subscriber slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberState {
    /// Attached.
    Active,
    /// Evicted by a producer.
    Evicted,
    /// Named, with no process attached.
    Detached,
}

/// A snapshot of one subscriber slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberInfo {
    /// Slot index.
    pub slot: usize,
    /// Name, for durable subscribers.
    pub name: Option<String>,
    /// Process id (0 when detached).
    pub pid: u32,
    /// Whether its process is running.
    pub alive: bool,
    /// State.
    pub state: SubscriberState,
    /// Position after the last record handed out (its progress).
    pub position: u64,
    /// Bytes between its position and the tail.
    pub lag: u64,
    /// Last heartbeat, ns since the Unix epoch.
    pub heartbeat_ns: u64,
}

pub use crate::ring::{HeaderWords, TopicStats};

impl<E: Payload> Topic<E> {
    /// A snapshot of the header's shared words (see [`HeaderWords`]).
    pub fn header_words(&self) -> HeaderWords {
        self.inner.ring.header_words()
    }

    /// The topic name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Path of the ring file.
    pub fn path(&self) -> &Path {
        &self.inner.ring.mem.path
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.inner.meta.capacity
    }

    /// Delivery mode.
    pub fn mode(&self) -> Mode {
        self.inner.ring.p.mode
    }

    /// Largest payload one record may carry.
    pub fn max_payload(&self) -> usize {
        self.inner.ring.p.max_payload
    }

    /// The stored schema (None for raw topics).
    pub fn schema(&self) -> Option<&Schema> {
        self.inner.schema.as_ref()
    }

    /// The static header fields.
    pub fn meta(&self) -> Meta {
        self.inner.meta
    }

    /// Next position to be claimed.
    pub fn tail(&self) -> u64 {
        self.inner.ring.tail().load(Ordering::Acquire)
    }

    /// Oldest position still readable from the ring.
    pub fn earliest(&self) -> u64 {
        self.inner.ring.earliest()
    }

    /// Counters. Records, bytes and stalls count every publisher the topic ever had:
    /// they never decrease, whatever publishers come and go or die.
    pub fn stats(&self) -> TopicStats {
        self.inner.ring.counters()
    }

    /// Attached producers.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        let r = &self.inner.ring;
        (0..MAX_PRODUCERS)
            .filter_map(|i| {
                let v = r.producer_view(i)?;
                Some(ProducerInfo {
                    slot: i,
                    pid: owner_pid(v.owner),
                    alive: crate::sys::os::alive(owner_pid(v.owner), owner_start(v.owner)),
                    records: v.records,
                    bytes: v.bytes,
                    stalls: v.stalls,
                    claim: v.claim,
                })
            })
            .collect()
    }

    /// Attached, detached (named) and evicted subscribers.
    pub fn subscribers(&self) -> Vec<SubscriberInfo> {
        let r = &self.inner.ring;
        let tail = self.tail();
        (0..MAX_CONSUMERS)
            .filter_map(|i| {
                let v = r.consumer_view(i)?;
                let o = v.owner;
                let state = match owner_state(o) {
                    SLOT_ACTIVE => SubscriberState::Active,
                    SLOT_EVICTED => SubscriberState::Evicted,
                    _ => SubscriberState::Detached,
                };
                Some(SubscriberInfo {
                    slot: i,
                    name: r.consumer_name(i),
                    pid: owner_pid(o),
                    alive: owner_state(o) == SLOT_ACTIVE
                        && crate::sys::os::alive(owner_pid(o), owner_start(o)),
                    state,
                    position: v.position,
                    lag: tail.saturating_sub(v.position),
                    heartbeat_ns: v.heartbeat_ns,
                })
            })
            .collect()
    }
}
