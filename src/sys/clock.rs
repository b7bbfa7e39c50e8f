//! Record timestamps: `CLOCK_REALTIME`, extrapolated with the CPU's time-stamp counter
//! between re-anchors when the kernel itself keeps time with that counter.
//!
//! A vDSO `clock_gettime` costs about 35 ns here, most of it the serialising `lfence`
//! before its counter read; stamping every record with it took a quarter of a
//! publisher's time per 32-byte event. A plain `rdtsc` scaled by a per-process factor
//! overlaps with the surrounding work. Each [`RecordClock`] re-reads the real clock
//! every [`ANCHOR_NS`], so it never drifts from `CLOCK_REALTIME` by more than the
//! frequency error over that interval (well under a microsecond), and follows clock
//! adjustments within that interval. Timestamps from one clock never go backwards.
//! Where the kernel's clocksource is not `tsc` (or off x86-64), every stamp is a real
//! `clock_gettime`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::sys::os::now_ns;

/// How often a clock re-reads `CLOCK_REALTIME`.
const ANCHOR_NS: u64 = 50_000_000;
/// How long the first clock of a process measures the counter's rate.
const CALIBRATE_NS: u64 = 20_000_000;

/// Counter ticks to ns, as 32.32 fixed point; 0 until measured.
static NS_PER_TICK: AtomicU64 = AtomicU64::new(0);

/// Whether the kernel keeps time with the TSC (so it is invariant and synchronised).
fn tsc_usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| {
        cfg!(target_arch = "x86_64")
            && std::fs::read_to_string(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )
            .is_ok_and(|s| s.trim() == "tsc")
    })
}

#[inline]
fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: rdtsc has no preconditions; every x86-64 CPU has it.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        0
    }
}

/// A producer's timestamp source (one per publisher; not shared between threads).
pub(crate) struct RecordClock {
    /// Counter value and real time at the last anchor.
    tick0: u64,
    ns0: u64,
    /// Counter value after which the next stamp re-anchors.
    reanchor: u64,
    /// 32.32 ns per tick in use (0: every stamp reads the real clock).
    scale: u64,
    /// First sample for measuring the rate, if this clock is measuring it.
    first: Option<(u64, u64)>,
    last: u64,
}

impl RecordClock {
    pub(crate) fn new() -> RecordClock {
        RecordClock {
            tick0: 0,
            ns0: 0,
            reanchor: 0,
            scale: 0,
            first: None,
            last: 0,
        }
    }

    /// Now, in ns since the Unix epoch.
    #[inline]
    pub(crate) fn now(&mut self) -> u64 {
        let ns = if self.scale != 0 {
            let t = ticks();
            if t.wrapping_sub(self.tick0) < self.reanchor {
                self.ns0 + ((u128::from(t - self.tick0) * u128::from(self.scale)) >> 32) as u64
            } else {
                self.anchor()
            }
        } else {
            self.slow()
        };
        // Never backwards: a re-anchor may land a few ns behind the extrapolation.
        self.last = self.last.max(ns);
        self.last
    }

    /// Pairs a counter value with the real clock. The clock read is bracketed by two
    /// counter reads and the tightest of three tries is kept, so a preemption between
    /// the reads cannot skew the pair.
    #[cold]
    fn anchor(&mut self) -> u64 {
        let mut best = (u64::MAX, 0, 0);
        for _ in 0..3 {
            let t1 = ticks();
            let ns = now_ns();
            let t2 = ticks();
            let width = t2.wrapping_sub(t1);
            if width < best.0 {
                best = (width, t1 + width / 2, ns);
            }
        }
        let (_, t, ns) = best;
        self.tick0 = t;
        self.ns0 = ns;
        ns
    }

    /// Not extrapolating yet: read the real clock, and help measure the rate.
    #[cold]
    fn slow(&mut self) -> u64 {
        let ns = self.anchor();
        if !tsc_usable() {
            return ns;
        }
        let scale = NS_PER_TICK.load(Ordering::Relaxed);
        if scale != 0 {
            return self.start(scale, ns);
        }
        match self.first {
            None => self.first = Some((self.tick0, ns)),
            Some((t1, n1)) if ns.saturating_sub(n1) >= CALIBRATE_NS && self.tick0 > t1 => {
                let scale = (u128::from(ns - n1) << 32) / u128::from(self.tick0 - t1);
                let scale = u64::try_from(scale).unwrap_or(0);
                if scale != 0 {
                    NS_PER_TICK.store(scale, Ordering::Relaxed);
                    return self.start(scale, ns);
                }
            }
            Some(_) => {}
        }
        ns
    }

    fn start(&mut self, scale: u64, ns: u64) -> u64 {
        self.scale = scale;
        // Ticks per anchor interval, from the measured rate.
        self.reanchor = ((u128::from(ANCHOR_NS) << 32) / u128::from(scale)).max(1) as u64;
        ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_real_clock_and_never_go_back() {
        let mut c = RecordClock::new();
        let mut prev = 0;
        let end = now_ns() + 3 * CALIBRATE_NS;
        let mut n = 0u64;
        while now_ns() < end || n < 1000 {
            let before = now_ns();
            let t = c.now();
            let after = now_ns();
            assert!(t >= prev, "went back: {prev} -> {t}");
            // Within a generous bound of the real clock read around it.
            assert!(
                t + 1_000_000 >= before && t <= after + 1_000_000,
                "stamp {t} outside [{before}, {after}] +- 1 ms"
            );
            prev = t;
            n += 1;
        }
        if tsc_usable() {
            assert_ne!(c.scale, 0, "the counter rate was measured");
        }
    }
}
