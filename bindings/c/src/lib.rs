//! # libshmbus: the C ABI of shmbus
//!
//! This crate builds `libshmbus.so` and `libshmbus.a`; `include/shmbus.h` is generated
//! from it by cbindgen (`make header`) and committed. Every exported function is named
//! `shmbus_<object>_<verb>`, takes opaque handles (`shmbus_bus`, `shmbus_topic`,
//! `shmbus_publisher`, `shmbus_subscriber`), and returns a [`shmbus_status`] (0 is
//! success); [`shmbus_strerror`] names a code and [`shmbus_last_error`] gives the
//! calling thread's message for its most recent failure.
//!
//! ## The boundary
//!
//! - Every pointer argument is checked for NULL, every handle for a type tag (a topic
//!   passed where a subscriber is expected is `SHMBUS_ERR_BAD_HANDLE`), every length
//!   against zero and the topic's maximum, before anything is dereferenced as a slice.
//! - No Rust panic crosses the ABI: each entry point runs under `catch_unwind` and a
//!   panic becomes `SHMBUS_ERR_PANIC`.
//! - Lends are tracked in the handles: a claimed payload belongs to its publisher handle
//!   until `commit`/`abort`, a received payload to its subscriber handle until `release`
//!   or the next receive. Nothing the C side holds can outlive what it points into
//!   while the C side follows the documented rules.
//!
//! What cannot be checked, and is undefined behaviour in C terms: a pointer that is
//! neither NULL nor a live object of the right type (e.g. a handle used after `*_close`
//! through another copy of the pointer), a buffer shorter than the length passed with
//! it, and calls on one publisher or subscriber from two threads at once.
//!
//! This library's crate name is `shmbus` (for the file names); inside it, `shmbus::`
//! paths name the core crate it wraps.

#![deny(unsafe_op_in_unsafe_fn)]
// The exported names are C names: `shmbus_bus`, `SHMBUS_OK`.
#![allow(non_camel_case_types)]

mod bus_topic;
mod handle;
mod json_in;
mod publish;
mod status;
mod subscribe;

pub use bus_topic::*;
pub use json_in::*;
pub use publish::*;
pub use status::*;
pub use subscribe::*;
