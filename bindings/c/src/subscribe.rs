//! Subscribers: `recv` with a timeout, `poll` with a callback, the lent event and its
//! `release`, and JSON rendering of events with the topic's stored schema.

use std::cell::{RefCell, RefMut};
use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use shmbus::{Raw, RawEvent, Start, Subscriber, Topic, Wait};

use crate::bus_topic::{shmbus_topic, utf8_arg};
use crate::handle::{self, copy_out, put, Opaque};
use crate::status::{ffi, shmbus_status, Failure};

/// A subscriber: receives every event of its topic, in the topic's one total order.
///
/// Thread-safety: one thread at a time. A subscriber may be handed to another thread
/// between calls, but two threads must not call functions on it at once. Calling back
/// into the same subscriber from its own poll callback returns `SHMBUS_ERR_BUSY`.
pub struct shmbus_subscriber {
    _opaque: [u8; 0],
}

impl Opaque for shmbus_subscriber {
    type Inner = SubscriberHandle;
    const TAG: u64 = u64::from_le_bytes(*b"shmbSUBS");
    const NAME: &'static str = "shmbus_subscriber";
}

/// The value behind a `shmbus_subscriber`. The `RefCell` turns a re-entrant call (from
/// a poll callback) into `SHMBUS_ERR_BUSY` instead of two `&mut` to one subscriber.
pub(crate) struct SubscriberHandle {
    cell: RefCell<SubscriberState>,
}

struct SubscriberState {
    sub: Subscriber<Raw>,
    /// The event lent to the C side by the last `recv`, until `release` or the next
    /// receive. The core keeps its bytes in place for that long: in reliable mode the
    /// subscriber's published position stays at or before the event (so producers do
    /// not overwrite it) until the next receive or `commit`; in lossy mode the bytes are
    /// the subscriber's own copy, replaced only by the next receive.
    held: Option<Held>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    payload: *const u8,
    len: usize,
    position: u64,
}

// What the thread-safety note in the header promises.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Subscriber<Raw>>();
};

/// `shmbus_subscriber_options.start`: only events published after the subscriber
/// joins (the default).
pub const SHMBUS_START_LATEST: u32 = 0;
/// `shmbus_subscriber_options.start`: the oldest event still in the ring.
pub const SHMBUS_START_EARLIEST: u32 = 1;
/// `shmbus_subscriber_options.start`: the event at `shmbus_subscriber_options.position`
/// (a position from an earlier event).
pub const SHMBUS_START_POSITION: u32 = 2;

/// `shmbus_subscriber_options.wait`: sleep on a futex while idle, woken by the
/// committing producer (no CPU while idle; the default).
pub const SHMBUS_WAIT_BLOCK: u32 = 0;
/// `shmbus_subscriber_options.wait`: busy-spin (lowest latency, one core at 100%).
pub const SHMBUS_WAIT_SPIN: u32 = 1;
/// `shmbus_subscriber_options.wait`: `sched_yield` between checks.
pub const SHMBUS_WAIT_YIELD: u32 = 2;
/// `shmbus_subscriber_options.wait`: spin, then yield, then sleep up to 1 ms.
pub const SHMBUS_WAIT_BACKOFF: u32 = 3;

/// `shmbus_subscriber_options.flags`: if the start position was already overwritten,
/// start at the oldest retained event instead of failing with `SHMBUS_ERR_POSITION`.
pub const SHMBUS_SUBSCRIBER_ACCEPT_LOSS: u32 = 1;

/// How to open a subscriber. All zeros (`{0}`) is the default: anonymous, latest,
/// blocking.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shmbus_subscriber_options {
    /// NULL for an anonymous subscriber, or a durable name (1 to 96 bytes of UTF-8:
    /// the room a consumer slot of the ring file has for it; longer or empty is
    /// `SHMBUS_ERR_INVALID_ARGUMENT`): its position lives in the ring file and a later
    /// subscriber with the same name resumes there (`start` is used only the first
    /// time).
    pub name: *const c_char,
    /// `SHMBUS_START_LATEST`, `SHMBUS_START_EARLIEST` or `SHMBUS_START_POSITION`.
    pub start: u32,
    /// `SHMBUS_WAIT_BLOCK`, `SHMBUS_WAIT_SPIN`, `SHMBUS_WAIT_YIELD` or
    /// `SHMBUS_WAIT_BACKOFF`.
    pub wait: u32,
    /// The start position for `SHMBUS_START_POSITION`.
    pub position: u64,
    /// 0 or `SHMBUS_SUBSCRIBER_ACCEPT_LOSS`.
    pub flags: u32,
    /// Must be 0.
    pub reserved: u32,
}

/// A received event. `payload` points to `len` bytes that stay valid and unchanged
/// until `shmbus_subscriber_release`, the next receive (`recv` or `poll`) or
/// `shmbus_subscriber_close` on the subscriber that received it, whichever comes first;
/// copy what must outlive that. Do not write through `payload`.
///
/// Hold an event briefly: in reliable mode producers cannot reuse its bytes while it is
/// held, so a subscriber that holds one longer than the topic's consumer timeout
/// (10 s by default) is evicted by the first producer it blocks, after which the bytes
/// may be overwritten.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct shmbus_event {
    /// The payload bytes (an rkyv archive for typed topics).
    pub payload: *const u8,
    /// The payload length in bytes.
    pub len: usize,
    /// The event's position in the topic (usable with `SHMBUS_START_POSITION`).
    pub position: u64,
    /// When the producer committed it, ns since the Unix epoch.
    pub timestamp_ns: u64,
    /// The event's type id (0 for raw bytes).
    pub type_id: u64,
}

impl shmbus_event {
    const EMPTY: shmbus_event = shmbus_event {
        payload: std::ptr::null(),
        len: 0,
        position: 0,
        timestamp_ns: 0,
        type_id: 0,
    };

    fn from_raw(ev: &RawEvent<'_>) -> shmbus_event {
        shmbus_event {
            payload: ev.bytes().as_ptr(),
            len: ev.bytes().len(),
            position: ev.position(),
            timestamp_ns: ev.timestamp(),
            type_id: ev.type_id(),
        }
    }

    fn held(&self) -> Held {
        Held {
            payload: self.payload,
            len: self.len,
            position: self.position,
        }
    }
}

/// Called by `shmbus_subscriber_poll` for each event, with the `ctx` given to it. The
/// event is valid only during the call. Return 0 to go on, non-zero to stop after this
/// event. The callback must not unwind or `longjmp` out, and must not call functions
/// on the polling subscriber (they return `SHMBUS_ERR_BUSY`).
pub type shmbus_poll_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, event: *const shmbus_event) -> c_int>;

impl SubscriberHandle {
    fn state(&self) -> Result<RefMut<'_, SubscriberState>, Failure> {
        self.cell.try_borrow_mut().map_err(|_| {
            Failure::new(
                shmbus_status::SHMBUS_ERR_BUSY,
                "the subscriber is in use by a call on this thread (its poll callback)",
            )
        })
    }
}

#[cold]
#[inline(never)]
fn timeout_failure() -> Failure {
    Failure::new(
        shmbus_status::SHMBUS_ERR_TIMEOUT,
        "no event arrived within the timeout",
    )
}

#[cold]
#[inline(never)]
fn not_held() -> Failure {
    Failure::new(
        shmbus_status::SHMBUS_ERR_NOT_HELD,
        "this subscriber lends out no such event (released already, or not the last one \
         received)",
    )
}

/// Attach a subscriber to `topic`. `options` may be NULL for the defaults (anonymous,
/// starting at the latest event, blocking).
///
/// On success `*out` is a new handle, to be closed with `shmbus_subscriber_close`; on
/// failure it is NULL.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_INVALID_ARGUMENT`
/// (unknown start, wait or flags, non-zero `reserved`, bad name), `SHMBUS_ERR_NO_SLOT`,
/// `SHMBUS_ERR_NAME_IN_USE`, `SHMBUS_ERR_POSITION`.
///
/// # Safety
///
/// `topic` is NULL or an open topic handle; `options` is NULL or readable, its `name`
/// NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_open(
    topic: *const shmbus_topic,
    options: *const shmbus_subscriber_options,
    out: *mut *mut shmbus_subscriber,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        unsafe { put(out, "out", std::ptr::null_mut())? };
        // SAFETY: per this function's contract.
        let topic: &Topic<Raw> = unsafe { handle::get(topic)? };
        let o = if options.is_null() {
            shmbus_subscriber_options {
                name: std::ptr::null(),
                start: SHMBUS_START_LATEST,
                wait: SHMBUS_WAIT_BLOCK,
                position: 0,
                flags: 0,
                reserved: 0,
            }
        } else {
            // SAFETY: non-NULL and readable per this function's contract.
            unsafe { options.read() }
        };
        let start = match o.start {
            SHMBUS_START_LATEST => Start::Latest,
            SHMBUS_START_EARLIEST => Start::Earliest,
            SHMBUS_START_POSITION => Start::Position(o.position),
            s => return Err(Failure::invalid(format!("unknown start {s}"))),
        };
        let wait = match o.wait {
            SHMBUS_WAIT_BLOCK => Wait::Block,
            SHMBUS_WAIT_SPIN => Wait::Spin,
            SHMBUS_WAIT_YIELD => Wait::Yield,
            SHMBUS_WAIT_BACKOFF => Wait::Backoff,
            w => return Err(Failure::invalid(format!("unknown wait strategy {w}"))),
        };
        if o.flags & !SHMBUS_SUBSCRIBER_ACCEPT_LOSS != 0 {
            return Err(Failure::invalid(format!(
                "unknown subscriber flags {:#x}",
                o.flags
            )));
        }
        if o.reserved != 0 {
            return Err(Failure::invalid("options.reserved must be 0"));
        }
        let mut b = topic
            .subscriber()
            .start(start)
            .wait(wait)
            .accept_loss(o.flags & SHMBUS_SUBSCRIBER_ACCEPT_LOSS != 0);
        if !o.name.is_null() {
            // SAFETY: non-NULL and NUL-terminated per this function's contract.
            b = b.named(unsafe { utf8_arg(o.name, "options.name")? });
        }
        let sub = SubscriberHandle {
            cell: RefCell::new(SubscriberState {
                sub: b.open()?,
                held: None,
            }),
        };
        // SAFETY: checked non-NULL and writable above.
        unsafe { put(out, "out", handle::into_raw::<shmbus_subscriber>(sub)) }
    })
}

/// Close the subscriber in `*subscriber` and set `*subscriber` to NULL (NULL: nothing
/// to do). A named subscriber's position stays in the ring file for its successor (at
/// the held event, if one was not released: it is delivered again). Using another copy
/// of a closed handle is undefined behaviour.
///
/// # Safety
///
/// `subscriber` is NULL or points to a handle variable holding NULL or an open
/// subscriber that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_close(
    subscriber: *mut *mut shmbus_subscriber,
) -> shmbus_status {
    ffi(|| {
        if !subscriber.is_null() {
            // SAFETY: non-NULL per this function's contract; a NULL or open handle.
            let p = unsafe { *subscriber };
            // Refuse to free a subscriber from inside its own poll callback.
            // SAFETY: NULL or an open handle per this function's contract.
            if let Ok(h) = unsafe { handle::get(p) } {
                drop(h.state()?);
            }
        }
        // SAFETY: per this function's contract.
        unsafe { handle::close(subscriber) }
    })
}

/// Receive the next event into `*event`, waiting at most `timeout_ns` nanoseconds:
/// 0 polls (returns at once), a negative timeout waits as long as it takes.
/// Receiving first releases the previously received event.
///
/// Returns `SHMBUS_OK` with `*event` filled (see `shmbus_event` for how long its
/// payload stays valid), or `SHMBUS_ERR_TIMEOUT` if no event arrived in time (then
/// `*event` is zeroed, as on every failure). Other errors: `SHMBUS_ERR_NULL`,
/// `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_EVICTED`, `SHMBUS_ERR_LAGGED` (lossy: events
/// were skipped; receive again), `SHMBUS_ERR_CORRUPT`, `SHMBUS_ERR_BUSY`.
///
/// # Safety
///
/// `subscriber` is NULL or an open subscriber; `event` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_recv(
    subscriber: *mut shmbus_subscriber,
    timeout_ns: i64,
    event: *mut shmbus_event,
) -> shmbus_status {
    if event.is_null() {
        return ffi(|| Err(Failure::null("event")));
    }
    let status = ffi(|| {
        // SAFETY: per this function's contract.
        let h: &SubscriberHandle = unsafe { handle::get(subscriber)? };
        let mut st = h.state()?;
        let st = &mut *st;
        st.held = None;
        let got = match u64::try_from(timeout_ns) {
            Ok(0) => st.sub.try_recv_bytes(),
            Ok(ns) => st.sub.recv_bytes_timeout(Duration::from_nanos(ns)),
            Err(_) => st.sub.recv_bytes().map(Some),
        }?;
        let ev = got
            .as_ref()
            .map(shmbus_event::from_raw)
            .ok_or_else(timeout_failure)?;
        st.held = Some(ev.held());
        // SAFETY: checked non-NULL above, writable per this function's contract.
        unsafe { event.write(ev) };
        Ok(())
    });
    if status != shmbus_status::SHMBUS_OK {
        // SAFETY: as above. Written once, here, rather than zeroed before every receive.
        unsafe { event.write(shmbus_event::EMPTY) };
    }
    status
}

/// End the lend of the event received last: its payload pointer is no longer valid,
/// and producers may reuse its bytes at once (the position is published now).
///
/// The next receive ends the lend too, and then publishes the position to producers
/// in batches (every eighth of the ring, and whenever the subscriber catches up), which
/// keeps the position's cache line from moving between cores on every event. So a
/// receive loop at full rate should not call this per event; call it before work that
/// keeps the subscriber away from its topic.
///
/// Errors: `SHMBUS_ERR_NOT_HELD` if no event is lent out (e.g. released twice),
/// `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_BUSY`.
///
/// # Safety
///
/// `subscriber` is NULL or an open subscriber.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_release(
    subscriber: *mut shmbus_subscriber,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let h: &SubscriberHandle = unsafe { handle::get(subscriber)? };
        let mut st = h.state()?;
        st.held.take().ok_or_else(not_held)?;
        // Publishes the position past the released event.
        st.sub.commit();
        Ok(())
    })
}

/// Hand up to `max` events that are ready now to `callback` (never waits), then
/// release the last one. `*delivered` (if `delivered` is not NULL) receives how many
/// were handed over, also when an error stops the poll part-way. Zero ready events is
/// `SHMBUS_OK` with `*delivered == 0`.
///
/// Errors: `SHMBUS_ERR_NULL` (NULL callback), `SHMBUS_ERR_INVALID_ARGUMENT` (`max` is
/// 0), and those of `shmbus_subscriber_recv` except `SHMBUS_ERR_TIMEOUT`.
///
/// # Safety
///
/// `subscriber` is NULL or an open subscriber; `callback` is NULL or a function that
/// follows `shmbus_poll_fn`'s rules; `delivered` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_poll(
    subscriber: *mut shmbus_subscriber,
    max: usize,
    callback: shmbus_poll_fn,
    ctx: *mut c_void,
    delivered: *mut usize,
) -> shmbus_status {
    ffi(|| {
        if !delivered.is_null() {
            // SAFETY: non-NULL and writable per this function's contract.
            unsafe { delivered.write(0) };
        }
        // SAFETY: per this function's contract.
        let h: &SubscriberHandle = unsafe { handle::get(subscriber)? };
        let callback = callback.ok_or_else(|| Failure::null("callback"))?;
        if max == 0 {
            return Err(Failure::invalid("max is 0"));
        }
        let mut st = h.state()?;
        let st = &mut *st;
        st.held = None;
        let mut n = 0;
        let result = loop {
            if n == max {
                break Ok(());
            }
            match st.sub.try_recv_bytes() {
                Ok(Some(raw)) => {
                    let ev = shmbus_event::from_raw(&raw);
                    n += 1;
                    // SAFETY: a C callback per this function's contract; `ev` and its
                    // payload are valid for the call (the receive's borrow lives).
                    if unsafe { callback(ctx, &ev) } != 0 {
                        break Ok(());
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(Failure::from(e)),
            }
        };
        // The last event was lent only for its callback.
        st.sub.commit();
        if !delivered.is_null() {
            // SAFETY: non-NULL and writable per this function's contract.
            unsafe { delivered.write(n) };
        }
        result
    })
}

/// `*position` receives the position of the next event this subscriber will read.
///
/// # Safety
///
/// `subscriber` is NULL or an open subscriber; `position` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_position(
    subscriber: *mut shmbus_subscriber,
    position: *mut u64,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let h: &SubscriberHandle = unsafe { handle::get(subscriber)? };
        let at = h.state()?.sub.position();
        // SAFETY: per this function's contract.
        unsafe { put(position, "position", at) }
    })
}

/// Render `payload` as JSON with `topic`'s schema into the caller's buffer.
///
/// # Safety
///
/// `buf` is NULL or writable for `buflen` bytes; `needed` is NULL or writable.
unsafe fn render(
    topic: &Topic<Raw>,
    payload: &[u8],
    buf: *mut c_char,
    buflen: usize,
    needed: *mut usize,
) -> Result<(), Failure> {
    let schema = topic.schema().ok_or_else(|| {
        Failure::new(
            shmbus_status::SHMBUS_ERR_NO_SCHEMA,
            format!(
                "topic {:?} carries raw bytes: it has no schema",
                topic.name()
            ),
        )
    })?;
    let mut json = String::new();
    shmbus::schema::decode::render_json(schema, payload, &mut json)?;
    // SAFETY: per the caller's contract.
    unsafe { copy_out(json.as_bytes(), true, buf.cast(), buflen, needed) }
}

/// Render `event` (received from a subscriber of `topic`, or any payload of the
/// topic's type) as one compact JSON value, NUL-terminated, into `buf`, using only the
/// schema stored in the topic: e.g. `{"symbol":"ABC","price":101.5}`. C programs read
/// typed events written by Rust this way.
///
/// Buffers as `shmbus_topic_type_name`. Errors: `SHMBUS_ERR_NO_SCHEMA` (raw topic),
/// `SHMBUS_ERR_INVALID_EVENT` (the bytes are not a valid event of the schema),
/// `SHMBUS_ERR_TOO_LARGE` (`event->len` exceeds the topic maximum),
/// `SHMBUS_ERR_BUFFER_TOO_SMALL`, `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`.
///
/// # Safety
///
/// `topic` is NULL or an open topic handle; `event` is NULL or readable, its `payload`
/// NULL or readable for `len` bytes (a received event that is still held); `buf` is
/// NULL or writable for `buflen` bytes; `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_event_to_json(
    topic: *const shmbus_topic,
    event: *const shmbus_event,
    buf: *mut c_char,
    buflen: usize,
    needed: *mut usize,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let topic: &Topic<Raw> = unsafe { handle::get(topic)? };
        if event.is_null() {
            return Err(Failure::null("event"));
        }
        // SAFETY: non-NULL and readable per this function's contract.
        let ev = unsafe { event.read() };
        if ev.len > topic.max_payload() {
            return Err(Failure::new(
                shmbus_status::SHMBUS_ERR_TOO_LARGE,
                format!(
                    "event length {} exceeds the topic maximum of {}",
                    ev.len,
                    topic.max_payload()
                ),
            ));
        }
        let payload = if ev.len == 0 {
            &[][..]
        } else if ev.payload.is_null() {
            return Err(Failure::null("event->payload"));
        } else {
            // SAFETY: non-NULL and readable for `len` (at most the topic maximum, far
            // below isize::MAX) bytes per this function's contract.
            unsafe { std::slice::from_raw_parts(ev.payload, ev.len) }
        };
        // SAFETY: per this function's contract.
        unsafe { render(topic, payload, buf, buflen, needed) }
    })
}

/// As `shmbus_event_to_json` with the subscriber's topic, for the event this
/// subscriber holds (received last and not released): `SHMBUS_ERR_NOT_HELD` for any
/// other event, so a released event is never read.
///
/// # Safety
///
/// `subscriber` is NULL or an open subscriber; `event` is NULL or readable; `buf` is
/// NULL or writable for `buflen` bytes; `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_subscriber_event_to_json(
    subscriber: *mut shmbus_subscriber,
    event: *const shmbus_event,
    buf: *mut c_char,
    buflen: usize,
    needed: *mut usize,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let h: &SubscriberHandle = unsafe { handle::get(subscriber)? };
        if event.is_null() {
            return Err(Failure::null("event"));
        }
        // SAFETY: non-NULL and readable per this function's contract.
        let ev = unsafe { event.read() };
        let st = h.state()?;
        let held = st
            .held
            .filter(|held| *held == ev.held())
            .ok_or_else(not_held)?;
        let payload = if held.len == 0 {
            &[][..]
        } else {
            // SAFETY: the subscriber lent these bytes out and still holds them
            // (`SubscriberState::held`), so they are in place and unchanged.
            unsafe { std::slice::from_raw_parts(held.payload, held.len) }
        };
        // SAFETY: per this function's contract.
        unsafe { render(st.sub.topic(), payload, buf, buflen, needed) }
    })
}
