//! Wait strategies for publishers under back-pressure and idle subscribers.

use std::time::Duration;

/// How a handle waits when it cannot make progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wait {
    /// Busy-spin (lowest latency, one core at 100%).
    Spin,
    /// `sched_yield` between checks.
    Yield,
    /// Spin, then yield, then sleep with growing pauses up to 1 ms.
    Backoff,
    /// Subscribers sleep on a futex in the shared header and are woken by the producer
    /// that commits (no CPU while idle). Publishers under back-pressure back off.
    #[default]
    Block,
}

/// Escalating pause for [`Wait::Backoff`] (and publishers under [`Wait::Block`]).
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    step: u32,
}

impl Backoff {
    pub fn pause(&mut self, wait: Wait) {
        match wait {
            Wait::Spin => std::hint::spin_loop(),
            Wait::Yield => std::thread::yield_now(),
            Wait::Backoff | Wait::Block => {
                self.step = self.step.saturating_add(1);
                if self.step < 64 {
                    std::hint::spin_loop();
                } else if self.step < 128 {
                    std::thread::yield_now();
                } else {
                    let us = 10u64 << ((self.step - 128) / 16).min(6);
                    std::thread::sleep(Duration::from_micros(us.min(1000)));
                }
            }
        }
    }
}
