//! Test-only fault points: `SHMBUS_FAULT=<point>` makes the process abort at that
//! exact step, so crash tests are deterministic as well as random.
//!
//! Points: `after_claim` (claim made, nothing written), `before_commit` (payload
//! written, commit word not stored). With `SHMBUS_FAULT_STOP=1` the process stops
//! itself (SIGSTOP) there instead, alive, until someone sends SIGCONT.

use std::sync::atomic::{AtomicU8, Ordering};

/// A step where a process can be made to die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Point {
    AfterClaim = 1,
    BeforeCommit = 2,
}

static ARMED: AtomicU8 = AtomicU8::new(u8::MAX);

/// Read `SHMBUS_FAULT` once (called when a publisher is created).
pub(crate) fn init() {
    if ARMED.load(Ordering::Relaxed) != u8::MAX {
        return;
    }
    let v = match std::env::var("SHMBUS_FAULT").as_deref() {
        Ok("after_claim") => Point::AfterClaim as u8,
        Ok("before_commit") => Point::BeforeCommit as u8,
        _ => 0,
    };
    ARMED.store(v, Ordering::Relaxed);
}

/// Abort here if this point is armed (after `SHMBUS_FAULT_SKIP` passes, default 0).
#[inline]
pub(crate) fn hit(p: Point) {
    let armed = ARMED.load(Ordering::Relaxed);
    if armed != 0 && armed != u8::MAX && armed == p as u8 {
        hit_slow();
    }
}

#[cold]
fn hit_slow() {
    static SKIP: std::sync::OnceLock<std::sync::atomic::AtomicU64> = std::sync::OnceLock::new();
    let skip = SKIP.get_or_init(|| {
        let n = std::env::var("SHMBUS_FAULT_SKIP")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        std::sync::atomic::AtomicU64::new(n)
    });
    let left = skip.load(Ordering::Relaxed);
    if left > 0 {
        skip.store(left - 1, Ordering::Relaxed);
        return;
    }
    if std::env::var_os("SHMBUS_FAULT_STOP").is_some_and(|v| v == "1") {
        // SAFETY: raise has no memory-safety preconditions.
        unsafe { libc::raise(libc::SIGSTOP) };
        // Continued: stop only once.
        ARMED.store(0, Ordering::Relaxed);
        return;
    }
    // SIGKILL ourselves: no unwinding, no destructors, exactly like `kill -9`.
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGKILL) };
    std::process::abort();
}
