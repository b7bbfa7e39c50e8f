//! Thin wrappers over the Linux calls shmbus needs: clocks, process identity and
//! liveness, and futexes on shared memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Wall-clock time in ns since the Unix epoch (`CLOCK_REALTIME`, through the vDSO).
#[inline]
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Monotonic time in ns (`CLOCK_MONOTONIC`), for timeouts.
#[inline]
pub(crate) fn mono_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

#[inline]
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only into it.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// This process's id (`getpid`, never cached: a forked child must not report its
/// parent's).
pub(crate) fn pid() -> u32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// This process's start time (field 22 of `/proc/self/stat`).
///
/// Cached together with the pid it was read for, and read again when `getpid()`
/// differs: a child created by `fork()` (without `exec`) inherits its parent's memory,
/// cache included, and must not register slots under its parent's start time, or
/// everyone else would judge the live child dead (its pid with a start time that is
/// not its own) and turn its claims into gaps.
pub(crate) fn own_start_time() -> u64 {
    static IDENTITY: AtomicU64 = AtomicU64::new(0);
    let me = pid();
    let cached = IDENTITY.load(Ordering::Relaxed);
    // Layout: pid in the high 32 bits, the start time's low 32 bits below (start times
    // are clock ticks after boot: 2^32 ticks at 100 Hz is over a year of uptime, and
    // only the low 28 bits are ever compared).
    if cached != 0 && (cached >> 32) as u32 == me {
        return cached & 0xffff_ffff;
    }
    let start = test_start_skew(start_time(me).unwrap_or(0)) & 0xffff_ffff;
    IDENTITY.store(u64::from(me) << 32 | start, Ordering::Relaxed);
    start
}

/// Test hook: `SHMBUS_FAULT_FOREIGN_IDENTITY=1` makes this process register a start
/// time that is not its own, as a process whose pid others cannot resolve would look
/// (another PID namespace, a hidden `/proc`): everyone else judges it dead while it
/// runs. Tests use it to check that a live producer judged dead never has a commit
/// reported as successful after its claim became a gap.
fn test_start_skew(start: u64) -> u64 {
    if std::env::var_os("SHMBUS_FAULT_FOREIGN_IDENTITY").is_some_and(|v| v == "1") {
        start.wrapping_add(1)
    } else {
        start
    }
}

/// Start time of process `pid` in clock ticks after boot, or `None` if it is gone.
///
/// Together with the pid this names a process uniquely, so a recycled pid is never
/// mistaken for the process that registered a slot.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: skip past it.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after ')' start at field 3; starttime is field 22.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that registered with `pid` and a start time whose low 28 bits
/// are `start28` is still running.
pub(crate) fn alive(pid: u32, start28: u64) -> bool {
    const MASK: u64 = 0x0fff_ffff;
    if pid == 0 {
        return false;
    }
    if pid == self::pid() {
        return start28 == own_start_time() & MASK;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    if r != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    match start_time(pid) {
        Some(s) => s & MASK == start28,
        // /proc not readable: trust kill().
        None => r == 0,
    }
}

/// Wait on the futex word at `addr` while it holds `expected`, at most `timeout`.
///
/// The futex is not process-private: the word lives in a shared mapping.
#[cfg(not(loom))]
pub(crate) fn futex_wait(word: &std::sync::atomic::AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: the word is a valid, aligned u32 for the duration of the call; the
    // kernel only reads it. Spurious wake-ups and EINTR are handled by the caller's loop.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Under `--cfg loom` the words are loom atomics and there is no kernel to sleep in:
/// a futex wait is a yield (callers re-check in a loop).
#[cfg(loom)]
pub(crate) fn futex_wait(_word: &crate::sys::sync::AtomicU32, _expected: u32, _timeout: Duration) {
    loom::thread::yield_now();
}

/// Wake every waiter on the futex word.
#[cfg(not(loom))]
pub(crate) fn futex_wake_all(word: &std::sync::atomic::AtomicU32) {
    // SAFETY: the word is a valid, aligned u32; FUTEX_WAKE does not dereference it
    // beyond hashing its address.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}

#[cfg(not(loom))]
const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
#[cfg(not(loom))]
const MEMBARRIER_CMD_GLOBAL_EXPEDITED: libc::c_long = 1 << 1;
#[cfg(not(loom))]
const MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED: libc::c_long = 1 << 2;

#[cfg(not(loom))]
fn membarrier(cmd: libc::c_long) -> libc::c_long {
    // SAFETY: membarrier takes two integer arguments and touches no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0 as libc::c_long) }
}

/// Register this process for `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)` (once).
/// Returns whether it is registered: then a sleeper's [`heavy_barrier`] runs a full
/// memory barrier on every thread of this process that is running, and this
/// process's exclusive publishers may skip their own fence before the waiter check.
/// `SHMBUS_NO_MEMBARRIER` (any value) turns this off.
#[cfg(not(loom))]
pub(crate) fn light_wake() -> bool {
    // `pid << 2 | registered << 1 | 1`, 0 before the first call. Keyed by pid like
    // [`own_start_time`]: a child forked without `exec` has a new address space and
    // asks (and registers) again instead of trusting its parent's answer.
    static REGISTERED: AtomicU64 = AtomicU64::new(0);
    let me = u64::from(pid());
    let cached = REGISTERED.load(Ordering::Relaxed);
    if cached != 0 && cached >> 2 == me {
        return cached & 2 != 0;
    }
    let ok = std::env::var_os("SHMBUS_NO_MEMBARRIER").is_none() && {
        let q = membarrier(MEMBARRIER_CMD_QUERY);
        let want = MEMBARRIER_CMD_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
        q >= 0 && q & want == want && membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0
    };
    REGISTERED.store(me << 2 | u64::from(ok) << 1 | 1, Ordering::Relaxed);
    ok
}

/// Loom cannot model `membarrier`: producers keep their fence.
#[cfg(loom)]
pub(crate) fn light_wake() -> bool {
    false
}

/// The sleeper's half of the wake-up barrier: a full memory barrier on every running
/// thread of every process registered by [`light_wake`]. Returns false when it could
/// not be issued (no kernel support, or a seccomp filter refused it): the caller must
/// then not sleep for long, since a producer may have missed its announcement.
#[cfg(not(loom))]
pub(crate) fn heavy_barrier() -> bool {
    static REFUSED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    // Test hook: behave as if a seccomp filter refused membarrier.
    if *REFUSED.get_or_init(|| std::env::var_os("SHMBUS_FAULT_NO_MEMBARRIER").is_some()) {
        return false;
    }
    membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0
}

#[cfg(loom)]
pub(crate) fn heavy_barrier() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let st = own_start_time();
        assert!(st > 0);
        assert!(alive(pid(), st & 0x0fff_ffff));
        assert!(!alive(pid(), (st + 1) & 0x0fff_ffff));
    }

    #[test]
    fn exited_child_is_dead() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let p = child.id();
        let st = start_time(p).unwrap_or(0) & 0x0fff_ffff;
        child.wait().unwrap();
        assert!(!alive(p, st));
    }
}
