//! Opaque handles: boxed, type-tagged values behind the C handle types.
//!
//! The C types (`shmbus_bus`, ...) are zero-sized markers that only ever appear behind
//! pointers. The allocation a handle points to is a [`Tagged`]: a type tag first, then
//! the value. The tag is checked before the value is touched, so a handle of another
//! type is refused; it is cleared when the handle is closed.

use crate::status::shmbus_status::{SHMBUS_ERR_BAD_HANDLE, SHMBUS_ERR_NULL};
use crate::status::Failure;

/// A C handle type and the Rust value behind it.
pub(crate) trait Opaque {
    /// The value a handle owns.
    type Inner;
    /// The type tag.
    const TAG: u64;
    /// The C type name, for messages.
    const NAME: &'static str;
}

#[repr(C)]
struct Tagged<T> {
    tag: u64,
    value: T,
}

/// Box `value` and return the handle pointer for C.
pub(crate) fn into_raw<O: Opaque>(value: O::Inner) -> *mut O {
    Box::into_raw(Box::new(Tagged { tag: O::TAG, value })).cast()
}

/// Check the tag of a non-NULL handle.
///
/// # Safety
///
/// `p` is non-NULL and points to a live handle made by [`into_raw`] (of any type).
unsafe fn check<O: Opaque>(p: *const O) -> Result<(), Failure> {
    // SAFETY: every handle starts with its `u64` tag (`Tagged` is `repr(C)`), and the
    // caller promises a live handle.
    let tag = unsafe { p.cast::<u64>().read() };
    if tag != O::TAG {
        return Err(bad_handle(O::NAME));
    }
    Ok(())
}

#[cold]
#[inline(never)]
fn bad_handle(name: &'static str) -> Failure {
    Failure::new(
        SHMBUS_ERR_BAD_HANDLE,
        format!("the pointer is not an open {name}"),
    )
}

#[cold]
#[inline(never)]
fn null_handle(name: &'static str) -> Failure {
    Failure::new(SHMBUS_ERR_NULL, format!("the {name} handle is NULL"))
}

/// Borrow the value behind a handle.
///
/// # Safety
///
/// `p` is NULL or points to a live handle made by [`into_raw`], which nothing mutates
/// for `'a`.
pub(crate) unsafe fn get<'a, O: Opaque>(p: *const O) -> Result<&'a O::Inner, Failure> {
    if p.is_null() {
        return Err(null_handle(O::NAME));
    }
    // SAFETY: non-NULL and, per the caller, a live handle.
    unsafe { check(p)? };
    // SAFETY: the tag says this is a `Tagged<O::Inner>`; the caller rules out writers.
    Ok(unsafe { &(*p.cast::<Tagged<O::Inner>>()).value })
}

/// Borrow the value behind a handle mutably.
///
/// # Safety
///
/// `p` is NULL or points to a live handle made by [`into_raw`], which nothing else
/// accesses for `'a`.
pub(crate) unsafe fn get_mut<'a, O: Opaque>(p: *mut O) -> Result<&'a mut O::Inner, Failure> {
    if p.is_null() {
        return Err(null_handle(O::NAME));
    }
    // SAFETY: non-NULL and, per the caller, a live handle.
    unsafe { check(p)? };
    // SAFETY: the tag says this is a `Tagged<O::Inner>`; the caller rules out aliases.
    Ok(unsafe { &mut (*p.cast::<Tagged<O::Inner>>()).value })
}

/// Close the handle in `*pp` (if not NULL) and set `*pp` to NULL.
///
/// # Safety
///
/// `pp` is NULL or points to a writable handle pointer, which is NULL or a live handle
/// made by [`into_raw`] that nothing else accesses.
pub(crate) unsafe fn close<O: Opaque>(pp: *mut *mut O) -> Result<(), Failure> {
    if pp.is_null() {
        return Err(Failure::new(
            SHMBUS_ERR_NULL,
            format!("the pointer to the {} handle is NULL", O::NAME),
        ));
    }
    // SAFETY: `pp` is non-NULL and writable per the caller.
    let p = unsafe { *pp };
    if p.is_null() {
        // Already closed through this variable: like free(NULL).
        return Ok(());
    }
    // SAFETY: non-NULL and, per the caller, a live handle.
    unsafe { check(p)? };
    let tagged = p.cast::<Tagged<O::Inner>>();
    // SAFETY: the handle came from `Box::into_raw` in `into_raw` with this type (the
    // tag says so) and is owned by the caller, who gives it up here. Clearing the tag
    // first makes a stale copy of the pointer fail the tag check while the allocator
    // has not reused the memory (it is still undefined behaviour in C terms).
    unsafe {
        (*tagged).tag = 0;
        *pp = std::ptr::null_mut();
        drop(Box::from_raw(tagged));
    }
    Ok(())
}

/// Write `value` through an out-pointer after checking it for NULL.
///
/// # Safety
///
/// `out` is NULL or valid for writing a `T`.
pub(crate) unsafe fn put<T>(out: *mut T, what: &'static str, value: T) -> Result<(), Failure> {
    if out.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL and writable per the caller.
    unsafe { out.write(value) };
    Ok(())
}

/// Copy `bytes` (and a terminating NUL if `nul`) to a caller's buffer, reporting the
/// size needed through `needed` (which may be NULL). `buf` may be NULL when `buflen` is
/// 0, to ask for the size.
///
/// # Safety
///
/// `buf` is NULL or valid for writing `buflen` bytes; `needed` is NULL or writable.
pub(crate) unsafe fn copy_out(
    bytes: &[u8],
    nul: bool,
    buf: *mut u8,
    buflen: usize,
    needed: *mut usize,
) -> Result<(), Failure> {
    let need = bytes.len() + usize::from(nul);
    if !needed.is_null() {
        // SAFETY: non-NULL and writable per the caller.
        unsafe { needed.write(need) };
    }
    if buf.is_null() && buflen != 0 {
        return Err(Failure::null("buf (with a non-zero buflen)"));
    }
    if buflen < need {
        return Err(Failure::new(
            crate::shmbus_status::SHMBUS_ERR_BUFFER_TOO_SMALL,
            format!("the buffer holds {buflen} bytes, {need} are needed"),
        ));
    }
    // SAFETY: something is written only when need > 0, hence buflen > 0, hence `buf` is
    // non-NULL (checked above); it holds `buflen >= need` bytes per the caller.
    unsafe {
        if !bytes.is_empty() {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf, bytes.len());
        }
        if nul {
            buf.add(bytes.len()).write(0);
        }
    }
    Ok(())
}
