//! The one progress bar of the CLI (indicatif): `verify /store: 1.2M records, 37%,
//! 2.1M/s, 3s`.
//!
//! Drawn on stderr only when stderr is a terminal, only once a scan has run for a
//! second ([`FIRST_DRAW`]), at most ten times a second, and erased when the scan ends
//! (or its [`Progress`] is dropped, on an error too). Lines printed meanwhile go above
//! it ([`suspend`], used by `output::out_line` and `output::note`). Off a terminal
//! nothing is drawn and no clock is read.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// How long a scan runs before its progress bar appears.
pub const FIRST_DRAW: Duration = Duration::from_secs(1);

/// The bar on the terminal now, if any.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `f` (which prints) with the progress bar, if one is drawn, out of the way.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = SHOWN.lock().ok().and_then(|b| b.clone());
    match bar {
        Some(b) => b.suspend(f),
        None => f(),
    }
}

/// The share of a scan from position `from` to `end` done at position `at` (0 to 1;
/// 1 for an empty range).
pub fn share(from: u64, at: u64, end: u64) -> f64 {
    if end <= from {
        return 1.0;
    }
    (at.saturating_sub(from) as f64 / (end - from) as f64).min(1.0)
}

/// A scan's progress (see the module docs).
pub struct Progress {
    bar: ProgressBar,
    unit: &'static str,
    /// Whether stderr is a terminal (nothing else is consulted otherwise).
    tty: bool,
    shown: bool,
    updates: u32,
}

impl Progress {
    /// Progress of a scan counting `unit`s (plural, e.g. "events").
    pub fn new(label: impl Into<String>, unit: &'static str) -> Progress {
        let bar = ProgressBar::hidden();
        bar.set_prefix(label.into());
        bar.set_message(unit);
        let mut p = Progress {
            bar,
            unit,
            tty: std::io::stderr().is_terminal(),
            shown: false,
            updates: 0,
        };
        p.style(false);
        p
    }

    /// Progress that is never drawn (a second pass over what was already shown).
    pub fn hidden() -> Progress {
        let mut p = Progress::new("", "");
        p.tty = false;
        p
    }

    fn style(&mut self, total: bool) {
        let t = if total {
            "{prefix}: {human_pos} of {human_len} {msg} ({percent}%), {rate}/s, {elapsed}"
        } else {
            "{prefix}: {human_pos} {msg}, {rate}/s, {elapsed}"
        };
        if let Ok(s) = ProgressStyle::with_template(t) {
            let rate = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}", HumanCount(s.per_sec() as u64));
            };
            self.bar.set_style(s.with_key("rate", rate));
        }
    }

    /// Sets how many units there are in all.
    pub fn set_total(&mut self, total: u64) {
        self.bar.set_length(total);
        self.style(true);
    }

    /// Adds `n` units done.
    pub fn add(&mut self, n: u64) {
        self.bar.inc(n);
        self.show_when_due();
    }

    /// Adds `n` units done and says which share (0 to 1) of the work that is, when the
    /// work is measured in something else (bytes of a log while counting events).
    pub fn advance(&mut self, n: u64, fraction: f64) {
        self.bar.inc(n);
        if self.shown {
            let pct = (fraction * 100.0).clamp(0.0, 100.0).floor();
            self.bar.set_message(format!("{}, {pct:.0}%", self.unit));
        }
        self.show_when_due();
    }

    /// Sets the count and the text after it (a scan that reports its own counters).
    pub fn set(&mut self, done: u64, message: impl FnOnce() -> String) {
        self.bar.set_position(done);
        if self.shown {
            self.bar.set_message(message());
        }
        self.show_when_due();
    }

    /// Redraws (for a scan that waits, so the elapsed time moves on).
    pub fn tick(&mut self) {
        self.show_when_due();
        if self.shown {
            self.bar.tick();
        }
    }

    /// Shows the bar once the scan has run for [`FIRST_DRAW`]; indicatif redraws it
    /// from then on, at most ten times a second.
    fn show_when_due(&mut self) {
        if !self.tty || self.shown {
            return;
        }
        self.updates = self.updates.wrapping_add(1);
        if self.updates % 64 != 1 || self.bar.elapsed() < FIRST_DRAW {
            return;
        }
        self.shown = true;
        self.bar
            .set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        if let Ok(mut s) = SHOWN.lock() {
            *s = Some(self.bar.clone());
        }
    }

    /// Erases the bar: the scan is over.
    pub fn finish(&mut self) {
        if self.shown {
            self.bar.finish_and_clear();
            self.shown = false;
            if let Ok(mut s) = SHOWN.lock() {
                *s = None;
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_a_terminal_nothing_is_drawn() {
        let mut p = Progress::new("x", "events");
        p.tty = false;
        p.set_total(10);
        p.add(5);
        p.advance(1, 0.5);
        assert!(!p.shown);
        assert_eq!(p.bar.position(), 6);
        p.finish();
        assert!(SHOWN.lock().unwrap().is_none());
    }
}
