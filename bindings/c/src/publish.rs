//! Publishers: copy-in `send`, and the in-place `claim` / `commit` / `abort`.

use std::ffi::c_void;
use std::ptr::NonNull;
use std::time::Duration;

use shmbus::{Grant, Publisher, Raw, SendError};

use crate::bus_topic::shmbus_topic;
use crate::handle::{self, put, Opaque};
use crate::status::{ffi, shmbus_status, Failure};

/// A publisher: one producer slot on a topic.
///
/// Thread-safety: one thread at a time. A publisher may be handed to another thread
/// between calls, but two threads must not call functions on it at once; give each
/// publishing thread its own publisher (any number may share a topic, in any
/// processes).
pub struct shmbus_publisher {
    _opaque: [u8; 0],
}

impl Opaque for shmbus_publisher {
    type Inner = PublisherHandle;
    const TAG: u64 = u64::from_le_bytes(*b"shmbPUBL");
    const NAME: &'static str = "shmbus_publisher";
}

/// The value behind a `shmbus_publisher`: the publisher, and the claim that borrows
/// it while the C side writes a payload in place.
pub(crate) struct PublisherHandle {
    /// The pending claim. It borrows `*publisher` mutably: while it is `Some`, nothing
    /// else touches the publisher ([`PublisherHandle::publisher`] refuses), and it is
    /// dropped (aborting it) before the publisher is freed ([`Drop`]). Its `'static`
    /// stands for "as long as this handle", which those two rules make true.
    grant: Option<Grant<'static, Raw>>,
    /// Owned: from `Box::into_raw`, freed in `Drop`.
    publisher: NonNull<Publisher<Raw>>,
    max_payload: usize,
}

// What the thread-safety note in the header promises.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Publisher<Raw>>();
};

impl Drop for PublisherHandle {
    fn drop(&mut self) {
        // The claim first: it borrows the publisher. Dropping it aborts it.
        self.grant = None;
        // SAFETY: `publisher` came from `Box::into_raw` and no borrow of it remains.
        drop(unsafe { Box::from_raw(self.publisher.as_ptr()) });
    }
}

impl PublisherHandle {
    fn new(publisher: Publisher<Raw>) -> PublisherHandle {
        let max_payload = publisher.topic().max_payload();
        PublisherHandle {
            grant: None,
            publisher: NonNull::from(Box::leak(Box::new(publisher))),
            max_payload,
        }
    }

    /// The publisher, unless a claim borrows it.
    pub(crate) fn publisher(&mut self) -> Result<&mut Publisher<Raw>, Failure> {
        if self.grant.is_some() {
            return Err(Failure::new(
                shmbus_status::SHMBUS_ERR_CLAIM_PENDING,
                "a claim is pending on this publisher: commit or abort it first",
            ));
        }
        // SAFETY: we own the publisher, no claim borrows it, and `&mut self` is unique.
        Ok(unsafe { self.publisher.as_mut() })
    }

    fn check_len(&self, len: usize) -> Result<(), Failure> {
        if len == 0 {
            return Err(Failure::invalid("the payload length is 0"));
        }
        if len > self.max_payload {
            return Err(Failure::new(
                shmbus_status::SHMBUS_ERR_TOO_LARGE,
                format!(
                    "payload of {len} bytes exceeds the topic maximum of {}",
                    self.max_payload
                ),
            ));
        }
        Ok(())
    }

    fn claim(&mut self, len: usize, type_id: u64, wait: bool) -> Result<*mut u8, Failure> {
        self.check_len(len)?;
        self.publisher()?;
        // SAFETY: no claim borrows the publisher (checked just above). The reference
        // lives only inside the grant stored in `self.grant`, which is dropped before
        // the publisher is freed, and no other reference is made while it lives (see
        // the field's documentation).
        let publisher: &'static mut Publisher<Raw> = unsafe { &mut *self.publisher.as_ptr() };
        let mut grant = if wait {
            publisher.claim(len)
        } else {
            publisher.try_claim(len)
        }?;
        grant.set_type_id(type_id);
        let payload = grant.payload().as_mut_ptr();
        self.grant = Some(grant);
        Ok(payload)
    }

    fn take_grant(&mut self) -> Result<Grant<'static, Raw>, Failure> {
        self.grant.take().ok_or_else(|| {
            Failure::new(
                shmbus_status::SHMBUS_ERR_NO_CLAIM,
                "no claim is pending on this publisher",
            )
        })
    }
}

/// Attach a publisher to `topic` (it takes one of the topic's producer slots until
/// closed).
///
/// On success `*out` is a new handle, to be closed with `shmbus_publisher_close`; on
/// failure it is NULL.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_NO_SLOT`,
/// `SHMBUS_ERR_IO`.
///
/// # Safety
///
/// `topic` is NULL or an open topic handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_open(
    topic: *const shmbus_topic,
    out: *mut *mut shmbus_publisher,
) -> shmbus_status {
    // SAFETY: per this function's contract.
    unsafe { open_with(topic, out, |t| t.publisher()) }
}

/// Attach a publisher with `attach` and hand it out in `*out` (NULL on failure).
///
/// # Safety
///
/// As `shmbus_publisher_open`.
unsafe fn open_with(
    topic: *const shmbus_topic,
    out: *mut *mut shmbus_publisher,
    attach: impl FnOnce(&shmbus::Topic) -> Result<Publisher<Raw>, shmbus::AttachError>,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per the caller's contract.
        unsafe { put(out, "out", std::ptr::null_mut())? };
        // SAFETY: per the caller's contract.
        let topic = unsafe { handle::get(topic)? };
        let publisher = PublisherHandle::new(attach(topic)?);
        // SAFETY: checked non-NULL and writable above.
        unsafe { put(out, "out", handle::into_raw::<shmbus_publisher>(publisher)) }
    })
}

/// Attach the topic's only publisher (see `Topic::exclusive_publisher` in the Rust
/// API): its claims are plain stores, and until it is closed (or its process dies)
/// other publishers cannot attach.
///
/// On success `*out` is a new handle, to be closed with `shmbus_publisher_close`; on
/// failure it is NULL.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_NO_SLOT` (also when
/// other publishers are attached, or another holds the topic exclusively),
/// `SHMBUS_ERR_IO`.
///
/// # Safety
///
/// `topic` is NULL or an open topic handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_open_exclusive(
    topic: *const shmbus_topic,
    out: *mut *mut shmbus_publisher,
) -> shmbus_status {
    // SAFETY: per this function's contract.
    unsafe { open_with(topic, out, |t| t.exclusive_publisher()) }
}

/// Close the publisher in `*publisher` (aborting a pending claim) and set `*publisher`
/// to NULL (NULL: nothing to do). Using another copy of a closed handle is undefined
/// behaviour.
///
/// # Safety
///
/// `publisher` is NULL or points to a handle variable holding NULL or an open publisher
/// that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_close(
    publisher: *mut *mut shmbus_publisher,
) -> shmbus_status {
    // SAFETY: per this function's contract.
    ffi(|| unsafe { handle::close(publisher) })
}

/// Claim room for a `len`-byte payload with type id `type_id` (0 for raw bytes),
/// waiting as long as back-pressure lasts, and set `*payload` to where to write it.
/// The bytes at `*payload` belong to the caller until `shmbus_publisher_commit`
/// (publishes them) or `shmbus_publisher_abort` (subscribers skip them); their initial
/// contents are unspecified. Commit soon: subscribers wait at an uncommitted claim.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_INVALID_ARGUMENT`
/// (`len` is 0), `SHMBUS_ERR_TOO_LARGE`, `SHMBUS_ERR_CLAIM_PENDING`,
/// `SHMBUS_ERR_CLAIM_LOST` (see `shmbus_publisher_commit`).
///
/// # Safety
///
/// `publisher` is NULL or an open publisher; `payload` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_claim(
    publisher: *mut shmbus_publisher,
    len: usize,
    type_id: u64,
    payload: *mut *mut c_void,
) -> shmbus_status {
    // SAFETY: per this function's contract.
    ffi(|| unsafe { claim(publisher, len, type_id, payload, true) })
}

/// As `shmbus_publisher_claim`, but never waits: `SHMBUS_ERR_BACK_PRESSURED` when the
/// ring is full for a live subscriber (reliable mode).
///
/// # Safety
///
/// As `shmbus_publisher_claim`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_try_claim(
    publisher: *mut shmbus_publisher,
    len: usize,
    type_id: u64,
    payload: *mut *mut c_void,
) -> shmbus_status {
    // SAFETY: per this function's contract.
    ffi(|| unsafe { claim(publisher, len, type_id, payload, false) })
}

/// # Safety
///
/// As `shmbus_publisher_claim`.
#[inline(always)]
unsafe fn claim(
    publisher: *mut shmbus_publisher,
    len: usize,
    type_id: u64,
    payload: *mut *mut c_void,
    wait: bool,
) -> Result<(), Failure> {
    // SAFETY: per the caller's contract.
    unsafe { put(payload, "payload", std::ptr::null_mut())? };
    // SAFETY: per the caller's contract.
    let p = unsafe { handle::get_mut(publisher)? };
    let at = p.claim(len, type_id, wait)?;
    // SAFETY: checked non-NULL and writable above.
    unsafe { put(payload, "payload", at.cast()) }
}

/// Publish the pending claim; `*position` (if `position` is not NULL) receives the
/// event's position. The payload pointer is no longer the caller's, whatever the
/// result.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_NO_CLAIM`,
/// `SHMBUS_ERR_CLAIM_LOST` (a subscriber turned the claim into a gap first, judging
/// this process dead: the event was not published; the claim is gone).
///
/// # Safety
///
/// `publisher` is NULL or an open publisher; `position` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_commit(
    publisher: *mut shmbus_publisher,
    position: *mut u64,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let p = unsafe { handle::get_mut(publisher)? };
        let at = p.take_grant()?.commit()?;
        if !position.is_null() {
            // SAFETY: non-NULL and writable per this function's contract.
            unsafe { position.write(at) };
        }
        Ok(())
    })
}

/// Give up the pending claim: subscribers skip it. The payload pointer is no longer
/// the caller's.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_NO_CLAIM`.
///
/// # Safety
///
/// `publisher` is NULL or an open publisher.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_abort(publisher: *mut shmbus_publisher) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let p = unsafe { handle::get_mut(publisher)? };
        p.take_grant()?.abort();
        Ok(())
    })
}

/// How long a send may wait under back-pressure.
#[derive(Clone, Copy)]
enum Patience {
    Forever,
    Never,
    For(Duration),
}

/// # Safety
///
/// `publisher` is NULL or an open publisher; `data` is NULL or readable for `len`
/// bytes; `position` is NULL or writable.
#[inline(always)]
unsafe fn send(
    publisher: *mut shmbus_publisher,
    type_id: u64,
    data: *const c_void,
    len: usize,
    position: *mut u64,
    patience: Patience,
) -> Result<(), Failure> {
    // SAFETY: per the caller's contract.
    let p = unsafe { handle::get_mut(publisher)? };
    if data.is_null() {
        return Err(Failure::null("data"));
    }
    // Before the slice is made: a length over the maximum never reaches from_raw_parts.
    p.check_len(len)?;
    // SAFETY: `data` is non-NULL and readable for `len` bytes per the caller, and `len`
    // is at most the topic's maximum payload (a quarter of at most 1 TiB, so well under
    // isize::MAX).
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    let publisher = p.publisher()?;
    let at = match patience {
        Patience::Forever => publisher.send_bytes(type_id, bytes),
        Patience::Never => publisher.try_send_bytes(type_id, bytes),
        Patience::For(t) => publisher.send_bytes_timeout(type_id, bytes, t),
    }
    .map_err(|e: SendError| Failure::from(e))?;
    if !position.is_null() {
        // SAFETY: non-NULL and writable per the caller.
        unsafe { position.write(at) };
    }
    Ok(())
}

/// Copy `len` bytes from `data` into a new event with type id `type_id` (0 for raw
/// bytes) and publish it, waiting as long as back-pressure lasts. `*position` (if
/// `position` is not NULL) receives the event's position.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_INVALID_ARGUMENT`
/// (`len` is 0), `SHMBUS_ERR_TOO_LARGE`, `SHMBUS_ERR_CLAIM_PENDING`,
/// `SHMBUS_ERR_CLAIM_LOST` (see `shmbus_publisher_commit`).
///
/// # Safety
///
/// `publisher` is NULL or an open publisher; `data` is NULL or readable for `len`
/// bytes; `position` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_send(
    publisher: *mut shmbus_publisher,
    type_id: u64,
    data: *const c_void,
    len: usize,
    position: *mut u64,
) -> shmbus_status {
    // SAFETY: per this function's contract.
    ffi(|| unsafe { send(publisher, type_id, data, len, position, Patience::Forever) })
}

/// As `shmbus_publisher_send`, but never waits: `SHMBUS_ERR_BACK_PRESSURED` when the
/// slowest live subscriber is a full ring behind (reliable mode). Nothing is published
/// then; retry later.
///
/// # Safety
///
/// As `shmbus_publisher_send`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_try_send(
    publisher: *mut shmbus_publisher,
    type_id: u64,
    data: *const c_void,
    len: usize,
    position: *mut u64,
) -> shmbus_status {
    // SAFETY: per this function's contract.
    ffi(|| unsafe { send(publisher, type_id, data, len, position, Patience::Never) })
}

/// As `shmbus_publisher_send`, waiting at most `timeout_ns` nanoseconds under
/// back-pressure (`SHMBUS_ERR_TIMEOUT` then; nothing is published). A negative timeout
/// waits forever; 0 tries once.
///
/// # Safety
///
/// As `shmbus_publisher_send`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_send_timeout(
    publisher: *mut shmbus_publisher,
    type_id: u64,
    data: *const c_void,
    len: usize,
    timeout_ns: i64,
    position: *mut u64,
) -> shmbus_status {
    let patience = match u64::try_from(timeout_ns) {
        Ok(ns) => Patience::For(Duration::from_nanos(ns)),
        Err(_) => Patience::Forever,
    };
    // SAFETY: per this function's contract.
    ffi(|| unsafe { send(publisher, type_id, data, len, position, patience) })
}
