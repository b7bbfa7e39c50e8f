//! Buses, topics, schemas and the library version.

use std::ffi::{c_char, CStr, OsStr};
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use shmbus::schema::decode::push_json_str;
use shmbus::schema::Schema;
use shmbus::{Access, Bus, Mode, Raw, Topic};

use crate::handle::{self, copy_out, put, Opaque};
use crate::status::{ffi, shmbus_status, Failure};

/// A bus: a directory of topics.
///
/// Thread-safety: immutable once open; any number of threads may use one bus handle
/// at the same time. Topics opened from it stay valid after it is closed.
pub struct shmbus_bus {
    _opaque: [u8; 0],
}

/// An open topic (a ring file mapped into this process).
///
/// Thread-safety: any number of threads may use one topic handle at the same time
/// (open publishers and subscribers from it, read its info and schema, render JSON).
/// Publishers and subscribers opened from it keep the mapping alive: the topic handle
/// may be closed before them.
pub struct shmbus_topic {
    _opaque: [u8; 0],
}

impl Opaque for shmbus_bus {
    type Inner = Bus;
    const TAG: u64 = u64::from_le_bytes(*b"shmbBUS\0");
    const NAME: &'static str = "shmbus_bus";
}

impl Opaque for shmbus_topic {
    type Inner = Topic<Raw>;
    const TAG: u64 = u64::from_le_bytes(*b"shmbTOPC");
    const NAME: &'static str = "shmbus_topic";
}

// What the thread-safety notes in the header promise.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Bus>();
    shared::<Topic<Raw>>();
};

/// `shmbus_bus_open_dir` flag: create files 0660 and directories 0770 (owner and
/// group) instead of 0600 and 0700 (owner only).
pub const SHMBUS_BUS_GROUP_ACCESS: u32 = 1;

/// `shmbus_topic_create` flag: lossy mode (producers never wait; a subscriber that
/// falls a lap behind gets `SHMBUS_ERR_LAGGED` and resumes). Without it the topic is
/// reliable (lossless, with back-pressure).
pub const SHMBUS_TOPIC_LOSSY: u32 = 1;
/// `shmbus_topic_create` flag: producers never evict named subscribers (they wait for
/// them however long it takes). Used only when the call creates the topic.
pub const SHMBUS_TOPIC_HOLD_NAMED: u32 = 2;

/// `shmbus_topic_info.mode`: reliable (lossless, back-pressure).
pub const SHMBUS_MODE_RELIABLE: u32 = 0;
/// `shmbus_topic_info.mode`: lossy.
pub const SHMBUS_MODE_LOSSY: u32 = 1;

/// Facts about an open topic, filled by `shmbus_topic_get_info`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct shmbus_topic_info {
    /// Data capacity in bytes.
    pub capacity: u64,
    /// The largest payload one event may carry.
    pub max_payload: u64,
    /// The topic's event type id (0 for raw bytes).
    pub type_id: u64,
    /// Fingerprint of the stored schema (0 for raw bytes).
    pub fingerprint: u64,
    /// The next position to be claimed (a snapshot).
    pub tail: u64,
    /// The oldest position still in the ring (a snapshot).
    pub earliest: u64,
    /// `SHMBUS_MODE_RELIABLE` or `SHMBUS_MODE_LOSSY`.
    pub mode: u32,
    /// 1 if the topic has a stored schema (typed events), else 0.
    pub has_schema: u32,
}

/// A NUL-terminated UTF-8 string argument.
///
/// # Safety
///
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn utf8_arg<'a>(
    p: *const c_char,
    what: &'static str,
) -> Result<&'a str, Failure> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|_| Failure::invalid(format!("{what} is not UTF-8")))
}

/// Open (creating it if needed) the bus `name`: the directory `$SHMBUS_DIR/<name>`, or
/// `/dev/shm/shmbus/<name>` when `SHMBUS_DIR` is unset. Owner-only access.
///
/// On success `*out` is a new handle, to be closed with `shmbus_bus_close`; on failure
/// it is NULL.
///
/// Bus names follow the topic-name rules: 1 to 128 bytes of `[A-Za-z0-9._-]`, not
/// starting with `.` (so `"."`, `".."` and hidden names such as `".hidden"` are
/// refused), and no `/`: a bus in another place is opened with
/// `shmbus_bus_open_dir`.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_INVALID_ARGUMENT` (a name that breaks those
/// rules; `shmbus_last_error()` then says "invalid bus name"), `SHMBUS_ERR_IO`,
/// `SHMBUS_ERR_PERMISSION`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_open(
    name: *const c_char,
    out: *mut *mut shmbus_bus,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        unsafe { put(out, "out", std::ptr::null_mut())? };
        // SAFETY: per this function's contract.
        let name = unsafe { utf8_arg(name, "name")? };
        let bus = Bus::open(name)?;
        // SAFETY: checked non-NULL and writable above.
        unsafe { put(out, "out", handle::into_raw::<shmbus_bus>(bus)) }
    })
}

/// Open (creating it if needed) a bus in the directory `dir`. `flags` is 0 or
/// `SHMBUS_BUS_GROUP_ACCESS`.
///
/// On success `*out` is a new handle, to be closed with `shmbus_bus_close`; on failure
/// it is NULL.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_INVALID_ARGUMENT` (empty `dir`, unknown
/// flags), `SHMBUS_ERR_IO`, `SHMBUS_ERR_PERMISSION` (not a directory, world-writable).
///
/// # Safety
///
/// `dir` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_open_dir(
    dir: *const c_char,
    flags: u32,
    out: *mut *mut shmbus_bus,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        unsafe { put(out, "out", std::ptr::null_mut())? };
        if dir.is_null() {
            return Err(Failure::null("dir"));
        }
        // SAFETY: non-NULL and NUL-terminated per this function's contract.
        let dir = unsafe { CStr::from_ptr(dir) }.to_bytes();
        if dir.is_empty() {
            return Err(Failure::invalid("dir is empty"));
        }
        if flags & !SHMBUS_BUS_GROUP_ACCESS != 0 {
            return Err(Failure::invalid(format!("unknown bus flags {flags:#x}")));
        }
        let access = if flags & SHMBUS_BUS_GROUP_ACCESS != 0 {
            Access::Group
        } else {
            Access::Owner
        };
        let bus = Bus::open_dir_with(OsStr::from_bytes(dir), access)?;
        // SAFETY: checked non-NULL and writable above.
        unsafe { put(out, "out", handle::into_raw::<shmbus_bus>(bus)) }
    })
}

/// Close the bus handle in `*bus` and set `*bus` to NULL. Closing a NULL handle
/// (`*bus == NULL`, e.g. closing twice through the same variable) does nothing and
/// returns `SHMBUS_OK`. Using another copy of a closed handle is undefined behaviour.
///
/// # Safety
///
/// `bus` is NULL or points to a handle variable holding NULL or an open bus handle
/// that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn shmbus_bus_close(bus: *mut *mut shmbus_bus) -> shmbus_status {
    // SAFETY: per this function's contract.
    ffi(|| unsafe { handle::close(bus) })
}

/// Open the existing topic `name` on `bus`, whatever its capacity, mode and event type.
///
/// On success `*out` is a new handle, to be closed with `shmbus_topic_close`; on failure
/// it is NULL.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_INVALID_ARGUMENT`,
/// `SHMBUS_ERR_NOT_FOUND`, `SHMBUS_ERR_IO`, `SHMBUS_ERR_PERMISSION`,
/// `SHMBUS_ERR_BAD_FILE`.
///
/// # Safety
///
/// `bus` is NULL or an open bus handle; `name` is NULL or a NUL-terminated string;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_open(
    bus: *const shmbus_bus,
    name: *const c_char,
    out: *mut *mut shmbus_topic,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        unsafe { put(out, "out", std::ptr::null_mut())? };
        // SAFETY: per this function's contract.
        let bus = unsafe { handle::get(bus)? };
        // SAFETY: per this function's contract.
        let name = unsafe { utf8_arg(name, "name")? };
        let topic = bus.topic(name).open()?;
        // SAFETY: checked non-NULL and writable above.
        unsafe { put(out, "out", handle::into_raw::<shmbus_topic>(topic)) }
    })
}

/// Open the topic `name` on `bus`, creating it (as a raw-bytes topic) if it does not
/// exist. Safe to race from many processes: one ring file results.
///
/// `capacity`: data bytes, a power of two from 4096 to 2^40; 0 means the default
/// (1 MiB) when creating and "any" when the topic exists. `flags`: 0 (reliable) or
/// `SHMBUS_TOPIC_LOSSY`, plus `SHMBUS_TOPIC_HOLD_NAMED`. An existing topic must match
/// the requested mode and (non-zero) capacity.
///
/// On success `*out` is a new handle, to be closed with `shmbus_topic_close`; on failure
/// it is NULL.
///
/// Errors: `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`, `SHMBUS_ERR_INVALID_ARGUMENT`
/// (name, capacity, unknown flags), `SHMBUS_ERR_MISMATCH`, `SHMBUS_ERR_IO`,
/// `SHMBUS_ERR_PERMISSION`, `SHMBUS_ERR_BAD_FILE`.
///
/// # Safety
///
/// `bus` is NULL or an open bus handle; `name` is NULL or a NUL-terminated string;
/// `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_create(
    bus: *const shmbus_bus,
    name: *const c_char,
    capacity: u64,
    flags: u32,
    out: *mut *mut shmbus_topic,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        unsafe { put(out, "out", std::ptr::null_mut())? };
        // SAFETY: per this function's contract.
        let bus = unsafe { handle::get(bus)? };
        // SAFETY: per this function's contract.
        let name = unsafe { utf8_arg(name, "name")? };
        if flags & !(SHMBUS_TOPIC_LOSSY | SHMBUS_TOPIC_HOLD_NAMED) != 0 {
            return Err(Failure::invalid(format!("unknown topic flags {flags:#x}")));
        }
        let mut b = bus.topic(name);
        if capacity != 0 {
            b = b.capacity(capacity);
        }
        b = b
            .mode(if flags & SHMBUS_TOPIC_LOSSY != 0 {
                Mode::Lossy
            } else {
                Mode::Reliable
            })
            .hold_named(flags & SHMBUS_TOPIC_HOLD_NAMED != 0);
        let topic = b.open_or_create()?;
        // SAFETY: checked non-NULL and writable above.
        unsafe { put(out, "out", handle::into_raw::<shmbus_topic>(topic)) }
    })
}

/// Close the topic handle in `*topic` and set `*topic` to NULL (NULL: nothing to do).
/// Publishers and subscribers opened from it stay usable. Using another copy of a
/// closed handle is undefined behaviour.
///
/// # Safety
///
/// `topic` is NULL or points to a handle variable holding NULL or an open topic handle
/// that no other thread is using.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_close(topic: *mut *mut shmbus_topic) -> shmbus_status {
    // SAFETY: per this function's contract.
    ffi(|| unsafe { handle::close(topic) })
}

/// Fill `*out` with the topic's capacity, mode, maximum payload, type id and current
/// positions.
///
/// # Safety
///
/// `topic` is NULL or an open topic handle; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_get_info(
    topic: *const shmbus_topic,
    out: *mut shmbus_topic_info,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let topic = unsafe { handle::get(topic)? };
        let meta = topic.meta();
        let info = shmbus_topic_info {
            capacity: topic.capacity(),
            max_payload: topic.max_payload() as u64,
            type_id: meta.type_id,
            fingerprint: meta.fingerprint,
            tail: topic.tail(),
            earliest: topic.earliest(),
            mode: match topic.mode() {
                Mode::Lossy => SHMBUS_MODE_LOSSY,
                _ => SHMBUS_MODE_RELIABLE,
            },
            has_schema: u32::from(topic.schema().is_some()),
        };
        // SAFETY: per this function's contract.
        unsafe { put(out, "out", info) }
    })
}

fn schema_of(topic: &Topic<Raw>) -> Result<&Schema, Failure> {
    topic.schema().ok_or_else(|| {
        Failure::new(
            shmbus_status::SHMBUS_ERR_NO_SCHEMA,
            format!(
                "topic {:?} carries raw bytes: it has no schema",
                topic.name()
            ),
        )
    })
}

/// Copy the name of the topic's event type (e.g. "Tick"), NUL-terminated, into `buf`.
///
/// Buffers (here and in every function that fills one): `*needed` (if `needed` is not
/// NULL) receives the size required including the NUL; if `buflen` is smaller the call
/// returns `SHMBUS_ERR_BUFFER_TOO_SMALL` and writes nothing to `buf`. Pass `buf = NULL,
/// buflen = 0` to ask for the size.
///
/// Errors: `SHMBUS_ERR_NO_SCHEMA` for a raw-bytes topic, `SHMBUS_ERR_BUFFER_TOO_SMALL`,
/// `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`.
///
/// # Safety
///
/// `topic` is NULL or an open topic handle; `buf` is NULL or writable for `buflen`
/// bytes; `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_type_name(
    topic: *const shmbus_topic,
    buf: *mut c_char,
    buflen: usize,
    needed: *mut usize,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let topic = unsafe { handle::get(topic)? };
        let schema = schema_of(topic)?;
        // SAFETY: per this function's contract.
        unsafe {
            copy_out(
                schema.type_name().as_bytes(),
                true,
                buf.cast(),
                buflen,
                needed,
            )
        }
    })
}

/// Copy a JSON description of the topic's schema, NUL-terminated, into `buf`:
/// `{"type":"Tick","type_id":N,"fingerprint":N,"fields":[{"name":"price","kind":"f64",
/// "offset":0},...]}` (the root struct's fields, kinds spelled as in Rust).
///
/// Buffers and errors as `shmbus_topic_type_name`.
///
/// # Safety
///
/// As `shmbus_topic_type_name`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_schema_json(
    topic: *const shmbus_topic,
    buf: *mut c_char,
    buflen: usize,
    needed: *mut usize,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let topic = unsafe { handle::get(topic)? };
        let json = schema_json(schema_of(topic)?, topic.meta().type_id);
        // SAFETY: per this function's contract.
        unsafe { copy_out(json.as_bytes(), true, buf.cast(), buflen, needed) }
    })
}

/// Copy the topic's schema in its stored binary form (as Rust's `Schema::encode`
/// writes it; no NUL is appended) into `buf`.
///
/// Buffers and errors as `shmbus_topic_type_name`.
///
/// # Safety
///
/// As `shmbus_topic_type_name`.
#[no_mangle]
pub unsafe extern "C" fn shmbus_topic_schema_bytes(
    topic: *const shmbus_topic,
    buf: *mut u8,
    buflen: usize,
    needed: *mut usize,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let topic = unsafe { handle::get(topic)? };
        let bytes = schema_of(topic)?.encode();
        // SAFETY: per this function's contract.
        unsafe { copy_out(&bytes, false, buf, buflen, needed) }
    })
}

const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(v) => v,
        Err(_) => panic!("the package version contains a NUL"),
    };

/// The library version, e.g. "0.1.0" (static, NUL-terminated). Thread-safe.
#[no_mangle]
pub extern "C" fn shmbus_version() -> *const c_char {
    VERSION.as_ptr()
}

fn schema_json(schema: &Schema, type_id: u64) -> String {
    let mut out = String::from("{\"type\":");
    push_json_str(&mut out, schema.type_name());
    let _ = write!(
        out,
        ",\"type_id\":{},\"fingerprint\":{},\"fields\":[",
        type_id,
        schema.fingerprint()
    );
    for (i, f) in schema.fields().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        push_json_str(&mut out, &f.name);
        out.push_str(",\"kind\":");
        push_json_str(&mut out, &f.kind.to_string());
        let _ = write!(out, ",\"offset\":{}}}", f.offset);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut s = String::new();
        push_json_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001é""#);
    }
}
