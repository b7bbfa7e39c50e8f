//! Typed events from JSON: `shmbus_event_from_json` and `shmbus_publisher_send_json`
//! encode a JSON text with the topic's stored schema (`shmbus::schema::encode`), so C
//! programs publish events that Rust subscribers receive as their own types.

use std::ffi::c_char;

use shmbus::{Raw, Topic};

use crate::bus_topic::{shmbus_topic, utf8_arg};
use crate::handle::{self, copy_out};
use crate::publish::shmbus_publisher;
use crate::status::{ffi, shmbus_status, Failure};

/// The schema of `topic`, or `SHMBUS_ERR_NO_SCHEMA`.
fn encode(topic: &Topic<Raw>, json: &str) -> Result<shmbus::rkyv::util::AlignedVec, Failure> {
    let schema = topic.schema().ok_or_else(|| {
        Failure::new(
            shmbus_status::SHMBUS_ERR_NO_SCHEMA,
            format!(
                "topic {:?} carries raw bytes: it has no schema to encode JSON with",
                topic.name()
            ),
        )
    })?;
    let bytes = shmbus::schema::encode::from_json(schema, json)?;
    if bytes.len() > topic.max_payload() {
        return Err(Failure::new(
            shmbus_status::SHMBUS_ERR_TOO_LARGE,
            format!(
                "the encoded event has {} bytes, the topic maximum is {}",
                bytes.len(),
                topic.max_payload()
            ),
        ));
    }
    Ok(bytes)
}

/// Encode the NUL-terminated UTF-8 JSON text `json` as an event of `topic`'s type (an
/// object with the fields of the stored schema, as `shmbus_event_to_json` writes them)
/// into `buf`: the payload bytes a typed publisher of that type would send. Publish
/// them with `shmbus_publisher_send` and the topic's `type_id` (`shmbus_topic_get_info`),
/// or use `shmbus_publisher_send_json`.
///
/// Buffers as `shmbus_topic_type_name` (no NUL is appended; `*needed` is the payload
/// length). Errors: `SHMBUS_ERR_JSON` (not JSON, or not an event of the schema:
/// `shmbus_last_error()` names the field and column), `SHMBUS_ERR_NO_SCHEMA` (raw
/// topic), `SHMBUS_ERR_INVALID_ARGUMENT` (`json` is not UTF-8), `SHMBUS_ERR_TOO_LARGE`,
/// `SHMBUS_ERR_BUFFER_TOO_SMALL`, `SHMBUS_ERR_NULL`, `SHMBUS_ERR_BAD_HANDLE`.
///
/// # Safety
///
/// `topic` is NULL or an open topic handle; `json` is NULL or a NUL-terminated string;
/// `buf` is NULL or writable for `buflen` bytes; `needed` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_event_from_json(
    topic: *const shmbus_topic,
    json: *const c_char,
    buf: *mut u8,
    buflen: usize,
    needed: *mut usize,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let topic: &Topic<Raw> = unsafe { handle::get(topic)? };
        // SAFETY: per this function's contract.
        let json = unsafe { utf8_arg(json, "json")? };
        let bytes = encode(topic, json)?;
        // SAFETY: per this function's contract.
        unsafe { copy_out(&bytes, false, buf, buflen, needed) }
    })
}

/// Encode `json` as in `shmbus_event_from_json` with the publisher's topic and publish
/// it with the topic's type id, waiting as long as back-pressure lasts. `*position`
/// (if `position` is not NULL) receives the event's position. Nothing is published
/// when the JSON does not encode.
///
/// Errors: those of `shmbus_event_from_json` (except the buffer ones) and of
/// `shmbus_publisher_send`.
///
/// # Safety
///
/// `publisher` is NULL or an open publisher; `json` is NULL or a NUL-terminated
/// string; `position` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn shmbus_publisher_send_json(
    publisher: *mut shmbus_publisher,
    json: *const c_char,
    position: *mut u64,
) -> shmbus_status {
    ffi(|| {
        // SAFETY: per this function's contract.
        let p = unsafe { handle::get_mut(publisher)? };
        // SAFETY: per this function's contract.
        let json = unsafe { utf8_arg(json, "json")? };
        let publisher = p.publisher()?;
        let bytes = encode(publisher.topic(), json)?;
        let type_id = publisher.topic().meta().type_id;
        let at = publisher.send_bytes(type_id, &bytes)?;
        if !position.is_null() {
            // SAFETY: non-NULL and writable per this function's contract.
            unsafe { position.write(at) };
        }
        Ok(())
    })
}
