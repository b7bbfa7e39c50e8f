//! The ring file: byte layout of its header, its slot tables and its records.
//!
//! All fields are little-endian and fixed width. The header is [`HEADER_SIZE`] bytes
//! (page aligned); the data region of `capacity` bytes (a power of two) follows it.
//!
//! ## Header
//!
//! | offset | size  | field                                                      |
//! |-------:|------:|------------------------------------------------------------|
//! |      0 |     8 | magic `b"SHMBUS\0R"`                                        |
//! |      8 |     4 | format version ([`VERSION`])                               |
//! |     12 |     4 | ready state: 0 while initialising, [`READY`] when complete |
//! |     16 |     8 | header size ([`HEADER_SIZE`])                               |
//! |     24 |     8 | data capacity in bytes (power of two)                      |
//! |     32 |     4 | mode: 0 reliable, 1 lossy                                  |
//! |     36 |     4 | flags: bit 0 = hold for named subscribers                  |
//! |     40 |     4 | producer slots                                             |
//! |     44 |     4 | consumer slots                                             |
//! |     48 |     8 | event type id (0 = raw bytes)                              |
//! |     56 |     8 | schema fingerprint (0 = raw bytes)                         |
//! |     64 |     8 | consumer timeout, ns                                       |
//! |     72 |     8 | unblock timeout, ns                                        |
//! |     80 |     8 | creation time, ns since the Unix epoch                     |
//! |     88 |     4 | schema length in bytes                                     |
//! |     92 |     4 | maximum payload length                                     |
//! |     96 |   160 | reserved, zero                                             |
//! |    256 |   128 | tail: next position to claim (own line)                    |
//! |    384 |     8 | limit cache: highest claim end producers may reach         |
//! |    392 |     8 | horizon: how far an exclusive producer may write unchecked |
//! |    400 |     8 | exclusive producer: slot + 1, bit 32 light wake, pid << 33; 0 = none |
//! |    408 |     8 | light shared producers: nonzero once one has attached (kept) |
//! |    416 |    96 | reserved, zero                                             |
//! |    512 |   128 | consumer generation: bumped when a consumer joins          |
//! |    640 |   128 | waiter line: u32 futex sequence, u32 sleeping waiters      |
//! |    768 |   128 | unblock lock: pid << 32 of the holder, 0 when free         |
//! |    896 |   128 | rare counters: gaps, gap bytes, evictions, reaped producers|
//! |   1024 |  8192 | producer table: 64 slots of 128 bytes                      |
//! |   9216 | 16384 | consumer table: 64 slots of 256 bytes                      |
//! |  25600 | 39936 | schema table (encoded [`crate::schema::Schema`])           |
//!
//! ## Producer slot (128 bytes)
//!
//! | offset | size | field                                                 |
//! |-------:|-----:|-------------------------------------------------------|
//! |      0 |    8 | owner: `pid << 32 \| start28 << 4 \| state` (0 = free) |
//! |      8 |    8 | process start time (clock ticks after boot)           |
//! |     16 |    8 | heartbeat, ns since the Unix epoch                    |
//! |     24 |    8 | claim intent: position being claimed, or `u64::MAX`   |
//! |     32 |    8 | records published                                     |
//! |     40 |    8 | bytes published                                       |
//! |     48 |    8 | back-pressure stalls                                  |
//! |     56 |    8 | records published when the owner took the slot        |
//! |     64 |    8 | bytes published when the owner took the slot          |
//! |     72 |    8 | stalls when the owner took the slot                   |
//!
//! The three counters are never reset: each owner continues its predecessors' counts
//! (the base words say where it started), so the topic's totals only grow.
//!
//! ## Consumer slot (256 bytes)
//!
//! | offset | size | field                                                        |
//! |-------:|-----:|--------------------------------------------------------------|
//! |      0 |    8 | released position: producers never overwrite from here on     |
//! |     64 |    8 | progress: the exact position after the last record handed out |
//! |    128 |    8 | owner: `pid << 32 \| start28 << 4 \| state`                 |
//! |    136 |    8 | process start time                                           |
//! |    144 |    8 | heartbeat, ns since the Unix epoch                           |
//! |    152 |    4 | flags: bit 0 named, bit 1 counted as a futex waiter          |
//! |    156 |    4 | name length                                                  |
//! |    160 |   96 | name (UTF-8)                                                 |
//!
//! ## Record (header 32 bytes, then the payload; records start 64-byte aligned)
//!
//! | offset | size | field                                                          |
//! |-------:|-----:|----------------------------------------------------------------|
//! |      0 |    8 | commit word: `position \| flags` (bit 0 committed, 1 padding, 2 gap; `position \| gap` without bit 0: a gap being written, see `ring::protocol`) |
//! |      8 |    4 | payload length in bytes                                        |
//! |     12 |    4 | reserved, zero                                                 |
//! |     16 |    8 | type id                                                        |
//! |     24 |    8 | producer timestamp, ns since the Unix epoch                    |
//!
//! A record occupies `align_up(32 + len, 64)` bytes, so the payload starts 32-byte
//! aligned (rkyv needs 16) and a header with an event of up to 32 bytes fills exactly
//! one cache line. Because positions are multiples of 64, the low six bits of the
//! commit word are free for flags, and the commit word names the lap it belongs to.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `b"SHMBUS\0R"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SHMBUS\0R");
/// The ring file format version this build reads and writes.
pub const VERSION: u32 = 4;
/// The ready state, stored last (release) when a ring file is complete.
pub const READY: u32 = 0x5245_4459;
/// Size of the header in bytes; the data region starts here.
pub const HEADER_SIZE: usize = 65536;

pub(crate) const OFF_READY: usize = 12;
pub(crate) const OFF_TAIL: usize = 256;
pub(crate) const OFF_LIMIT: usize = 384;
pub(crate) const OFF_HORIZON: usize = 392;
pub(crate) const OFF_EXCLUSIVE: usize = 400;
/// In the exclusive-producer word: the producer relies on sleepers' `membarrier`.
pub(crate) const EXCLUSIVE_LIGHT: u64 = 1 << 32;
/// In the exclusive-producer word: the holder's pid starts at this bit.
const EXCLUSIVE_PID_SHIFT: u32 = 33;

/// Nonzero once a shared producer that relies on sleepers' `membarrier` (its commits
/// skip their fence before the waiter check) has attached; never cleared, so a sleeper
/// that reads it issues the barrier for the topic's life.
pub(crate) const OFF_LIGHT_SHARED: usize = 408;

/// The exclusive-producer word of the producer in slot `slot` of process `pid`.
pub(crate) fn exclusive_word(slot: usize, pid: u32, light: bool) -> u64 {
    (slot as u64 + 1)
        | if light { EXCLUSIVE_LIGHT } else { 0 }
        | u64::from(pid) << EXCLUSIVE_PID_SHIFT
}

/// The producer slot and pid an exclusive-producer word names (`None` for none, or
/// a slot out of range).
pub(crate) fn exclusive_holder(w: u64) -> Option<(usize, u32)> {
    let slot = (w & 0xffff_ffff) as usize;
    (1..=MAX_PRODUCERS)
        .contains(&slot)
        .then(|| (slot - 1, (w >> EXCLUSIVE_PID_SHIFT) as u32))
}
pub(crate) const OFF_GEN: usize = 512;
pub(crate) const OFF_FUTEX_SEQ: usize = 640;
pub(crate) const OFF_FUTEX_WAITERS: usize = 644;
pub(crate) const OFF_UNBLOCK_LOCK: usize = 768;
pub(crate) const OFF_GAPS: usize = 896;
pub(crate) const OFF_GAP_BYTES: usize = 904;
pub(crate) const OFF_EVICTIONS: usize = 912;
pub(crate) const OFF_REAPED: usize = 920;

/// Maximum number of producers attached to one topic at once.
pub const MAX_PRODUCERS: usize = 64;
/// Maximum number of subscribers attached to one topic at once.
pub const MAX_CONSUMERS: usize = 64;
pub(crate) const PRODUCER_TABLE: usize = 1024;
pub(crate) const PRODUCER_SLOT: usize = 128;
pub(crate) const CONSUMER_TABLE: usize = PRODUCER_TABLE + MAX_PRODUCERS * PRODUCER_SLOT;
pub(crate) const CONSUMER_SLOT: usize = 256;
pub(crate) const SCHEMA_TABLE: usize = CONSUMER_TABLE + MAX_CONSUMERS * CONSUMER_SLOT;
/// Largest encoded schema the ring header can hold.
pub const MAX_SCHEMA: usize = HEADER_SIZE - SCHEMA_TABLE;

// Producer slot field offsets.
pub(crate) const P_OWNER: usize = 0;
pub(crate) const P_START: usize = 8;
pub(crate) const P_HEARTBEAT: usize = 16;
pub(crate) const P_CLAIM: usize = 24;
pub(crate) const P_RECORDS: usize = 32;
pub(crate) const P_BYTES: usize = 40;
pub(crate) const P_STALLS: usize = 48;
pub(crate) const P_BASE_RECORDS: usize = 56;
pub(crate) const P_BASE_BYTES: usize = 64;
pub(crate) const P_BASE_STALLS: usize = 72;

// Consumer slot field offsets.
pub(crate) const C_POSITION: usize = 0;
/// Written on every receive; read by producers only in their rate-limited stuck check,
/// so it sits on its own cache line apart from the released position.
pub(crate) const C_PROGRESS: usize = 64;
pub(crate) const C_OWNER: usize = 128;
pub(crate) const C_START: usize = 136;
pub(crate) const C_HEARTBEAT: usize = 144;
pub(crate) const C_FLAGS: usize = 152;
pub(crate) const C_NAME_LEN: usize = 156;
pub(crate) const C_NAME: usize = 160;
/// Longest subscriber name, in bytes.
pub const MAX_NAME: usize = CONSUMER_SLOT - C_NAME;

pub(crate) const C_FLAG_NAMED: u32 = 1;
/// Set while the subscriber is counted in the futex waiter word.
pub(crate) const C_FLAG_SLEEPING: u32 = 2;

/// Slot states (low 32 bits of an owner word).
pub(crate) const SLOT_FREE: u64 = 0;
pub(crate) const SLOT_ACTIVE: u64 = 1;
pub(crate) const SLOT_EVICTED: u64 = 2;
pub(crate) const SLOT_DETACHED: u64 = 3;
/// Taken, being set up: producers ignore it.
pub(crate) const SLOT_JOINING: u64 = 4;

/// No claim in flight (producer slot intent).
pub(crate) const NO_CLAIM: u64 = u64::MAX;

/// Record header size in bytes.
pub const RECORD_HEADER: usize = 32;
/// Records start at multiples of this many bytes.
pub const RECORD_ALIGN: u64 = 64;
pub(crate) const R_LEN: usize = 8;
pub(crate) const R_TYPE: usize = 16;
pub(crate) const R_TIME: usize = 24;

/// Commit-word flags.
pub(crate) const COMMITTED: u64 = 1;
pub(crate) const PADDING: u64 = 2;
pub(crate) const GAP: u64 = 4;
pub(crate) const FLAG_MASK: u64 = RECORD_ALIGN - 1;

/// Smallest data capacity.
pub const MIN_CAPACITY: u64 = 4096;
/// Largest data capacity (1 TiB).
pub const MAX_CAPACITY: u64 = 1 << 40;

/// Bytes a record with `len` payload bytes occupies in the log.
#[inline]
pub const fn record_size(len: usize) -> u64 {
    ((RECORD_HEADER + len) as u64 + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Offset of producer slot `i` in the file.
#[inline]
pub(crate) const fn producer_slot(i: usize) -> usize {
    PRODUCER_TABLE + i * PRODUCER_SLOT
}

/// Offset of consumer slot `i` in the file.
#[inline]
pub(crate) const fn consumer_slot(i: usize) -> usize {
    CONSUMER_TABLE + i * CONSUMER_SLOT
}

/// Topic delivery mode, stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Producers never overwrite what a live subscriber has not read (back-pressure).
    Reliable,
    /// Producers never wait; a subscriber that falls a lap behind is told what it missed.
    Lossy,
}

impl Mode {
    pub(crate) fn to_raw(self) -> u32 {
        match self {
            Mode::Reliable => 0,
            Mode::Lossy => 1,
        }
    }
    pub(crate) fn from_raw(raw: u32) -> Option<Mode> {
        match raw {
            0 => Some(Mode::Reliable),
            1 => Some(Mode::Lossy),
            _ => None,
        }
    }
}

/// The static part of the header (bytes 0..96), read with zerocopy from untrusted bytes.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Meta {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`VERSION`].
    pub version: u32,
    /// [`READY`] once complete.
    pub ready: u32,
    /// [`HEADER_SIZE`].
    pub header_size: u64,
    /// Data capacity in bytes.
    pub capacity: u64,
    /// 0 reliable, 1 lossy.
    pub mode: u32,
    /// Bit 0: hold for named subscribers.
    pub flags: u32,
    /// Producer slots.
    pub max_producers: u32,
    /// Consumer slots.
    pub max_consumers: u32,
    /// Event type id, 0 for raw bytes.
    pub type_id: u64,
    /// Schema fingerprint, 0 for raw bytes.
    pub fingerprint: u64,
    /// Consumer timeout in ns.
    pub consumer_timeout_ns: u64,
    /// Unblock timeout in ns.
    pub unblock_timeout_ns: u64,
    /// Creation time, ns since the Unix epoch.
    pub created_ns: u64,
    /// Encoded schema length.
    pub schema_len: u32,
    /// Maximum payload length.
    pub max_payload: u32,
}

pub(crate) const META_FLAG_HOLD_NAMED: u32 = 1;

const _: () = {
    assert!(core::mem::size_of::<Meta>() == 96);
    assert!(core::mem::offset_of!(Meta, ready) == OFF_READY);
    assert!(core::mem::offset_of!(Meta, capacity) == 24);
    assert!(core::mem::offset_of!(Meta, type_id) == 48);
    assert!(core::mem::offset_of!(Meta, schema_len) == 88);
    assert!(core::mem::offset_of!(Meta, max_payload) == 92);
    assert!(OFF_TAIL % 128 == 0 && OFF_LIMIT % 128 == 0 && OFF_GEN % 128 == 0);
    assert!(OFF_FUTEX_SEQ % 128 == 0 && OFF_UNBLOCK_LOCK % 128 == 0 && OFF_GAPS % 128 == 0);
    assert!(PRODUCER_TABLE % 128 == 0 && CONSUMER_TABLE % 128 == 0);
    assert!(CONSUMER_TABLE == 9216 && SCHEMA_TABLE == 25600);
    assert!(C_NAME + MAX_NAME == CONSUMER_SLOT);
    assert!(HEADER_SIZE % 4096 == 0);
    assert!(RECORD_HEADER == 32 && record_size(32) == 64 && record_size(0) == 64);
    assert!(record_size(33) == 128);
};

/// Why a ring header was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MetaProblem {
    Truncated { size: u64, needed: u64 },
    BadMagic(u64),
    BadVersion(u32),
    NotReady,
    Corrupt(&'static str),
}

impl Meta {
    /// Parse and check the static header from the first bytes of a ring file of
    /// `file_size` bytes. Never trusts a field before checking it.
    pub(crate) fn check(bytes: &[u8], file_size: u64) -> Result<Meta, MetaProblem> {
        let Ok((meta, _)) = Meta::read_from_prefix(bytes) else {
            return Err(MetaProblem::Truncated {
                size: file_size,
                needed: HEADER_SIZE as u64,
            });
        };
        if meta.magic != MAGIC {
            return Err(MetaProblem::BadMagic(meta.magic));
        }
        if meta.version != VERSION {
            return Err(MetaProblem::BadVersion(meta.version));
        }
        if meta.ready != READY {
            return Err(MetaProblem::NotReady);
        }
        if meta.header_size != HEADER_SIZE as u64 {
            return Err(MetaProblem::Corrupt("header size"));
        }
        if !meta.capacity.is_power_of_two()
            || meta.capacity < MIN_CAPACITY
            || meta.capacity > MAX_CAPACITY
        {
            return Err(MetaProblem::Corrupt("capacity"));
        }
        let needed = HEADER_SIZE as u64 + meta.capacity;
        if file_size < needed {
            return Err(MetaProblem::Truncated {
                size: file_size,
                needed,
            });
        }
        if Mode::from_raw(meta.mode).is_none() {
            return Err(MetaProblem::Corrupt("mode"));
        }
        if meta.max_producers as usize != MAX_PRODUCERS
            || meta.max_consumers as usize != MAX_CONSUMERS
        {
            return Err(MetaProblem::Corrupt("slot table size"));
        }
        if meta.schema_len as usize > MAX_SCHEMA {
            return Err(MetaProblem::Corrupt("schema length"));
        }
        if meta.max_payload as u64 > meta.capacity / 4 || meta.max_payload == 0 {
            return Err(MetaProblem::Corrupt("maximum payload"));
        }
        Ok(meta)
    }
}
