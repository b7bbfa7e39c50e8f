//! A progress line on stderr for long scans: `verify /store: 1.2M records, 37%,
//! 2.1M records/s, 3s`.
//!
//! Drawn only when stderr is a terminal, only once a scan has run for a second
//! ([`FIRST_DRAW`]), at most ten times a second ([`REDRAW`]), refreshed in place with
//! `\r` and erased when the scan ends (or its [`Progress`] is dropped, on an error
//! too). Lines printed to the terminal in between first erase it ([`before_stdout`]
//! and [`clear_line`], called by `report::out_line` and `report::note`), so output
//! never mixes with it; the next update draws it again below them. Off a terminal every
//! method returns at once without reading the clock.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a scan runs before its progress line appears.
pub const FIRST_DRAW: Duration = Duration::from_secs(1);
/// The shortest time between two draws.
pub const REDRAW: Duration = Duration::from_millis(100);

/// Whether a progress line is on the terminal now (at most one at a time).
static DRAWN: AtomicBool = AtomicBool::new(false);

/// Makes room for a line on stdout: erases the progress line if one is drawn and
/// stdout is the same terminal (output going to a file or pipe leaves it alone).
pub fn before_stdout() {
    static STDOUT_TTY: OnceLock<bool> = OnceLock::new();
    if DRAWN.load(Ordering::SeqCst) && *STDOUT_TTY.get_or_init(|| std::io::stdout().is_terminal()) {
        clear_line();
    }
}

/// Erases the progress line if one is drawn, so a line of output can take its place.
pub fn clear_line() {
    if DRAWN.swap(false, Ordering::SeqCst) {
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(b"\r\x1b[2K");
        let _ = e.flush();
    }
}

/// When to draw: not before [`FIRST_DRAW`], then no more often than [`REDRAW`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Throttle {
    last: Option<Duration>,
}

impl Throttle {
    /// Whether to draw at `elapsed` since the scan began; records the draw if so.
    pub fn due(&mut self, elapsed: Duration) -> bool {
        let due = elapsed >= FIRST_DRAW && self.last.is_none_or(|l| elapsed >= l + REDRAW);
        if due {
            self.last = Some(elapsed);
        }
        due
    }
}

/// What a scan has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct State {
    /// Things done, in the scan's unit.
    pub done: u64,
    /// How many there are in all, when known.
    pub total: Option<u64>,
    /// Share of the work done (0 to 1) when it is measured in something other than
    /// the unit (bytes of a log while counting events); shown when `total` is unknown.
    pub fraction: Option<f64>,
}

/// The progress line's text: `label: done[ of total] unit[, pct%][, rate unit/s], elapsed`.
pub fn render(label: &str, unit: &str, s: State, elapsed: Duration) -> String {
    let mut out = format!("{label}: {}", count(s.done));
    let pct = match s.total {
        Some(t) => {
            out.push_str(&format!(" of {}", count(t)));
            (t > 0).then(|| s.done as f64 / t as f64)
        }
        None => s.fraction,
    };
    out.push(' ');
    out.push_str(unit);
    if let Some(p) = pct {
        out.push_str(&format!(", {:.0}%", (p * 100.0).clamp(0.0, 100.0).floor()));
    }
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 && s.done > 0 {
        out.push_str(&format!(
            ", {} {unit}/s",
            count((s.done as f64 / secs) as u64)
        ));
    }
    out.push_str(&format!(", {}", clock(elapsed)));
    out
}

/// The share of a scan from position `from` to `end` done at position `at` (0 to 1;
/// 1 for an empty range).
pub fn share(from: u64, at: u64, end: u64) -> f64 {
    if end <= from {
        return 1.0;
    }
    (at.saturating_sub(from) as f64 / (end - from) as f64).min(1.0)
}

/// `950`, `12,345`, `1.23M`, `4.5G`: short counts for a progress line.
pub fn count(n: u64) -> String {
    if n < 100_000 {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        return out;
    }
    let (v, suffix) = if n < 1_000_000 {
        (n as f64 / 1e3, "k")
    } else if n < 1_000_000_000 {
        (n as f64 / 1e6, "M")
    } else {
        (n as f64 / 1e9, "G")
    };
    if v < 10.0 {
        format!("{v:.2}{suffix}")
    } else if v < 100.0 {
        format!("{v:.1}{suffix}")
    } else {
        format!("{v:.0}{suffix}")
    }
}

/// `7s`, `2m05s`, `1h02m`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A scan's progress line (see the module docs).
pub struct Progress {
    label: String,
    unit: &'static str,
    state: State,
    /// Set when stderr is a terminal: nothing else is used otherwise.
    live: Option<(Instant, Throttle)>,
}

impl Progress {
    /// Progress of a scan counting `unit`s (plural, e.g. "events"), drawn on stderr if
    /// it is a terminal.
    pub fn new(label: impl Into<String>, unit: &'static str) -> Progress {
        let tty = std::io::stderr().is_terminal();
        Progress::with_terminal(label, unit, tty)
    }

    /// Progress that is never drawn (a second pass over what was already shown).
    pub fn hidden() -> Progress {
        Progress::with_terminal("", "", false)
    }

    fn with_terminal(label: impl Into<String>, unit: &'static str, tty: bool) -> Progress {
        Progress {
            label: label.into(),
            unit,
            state: State::default(),
            live: tty.then(|| (Instant::now(), Throttle::default())),
        }
    }

    /// Sets how many units there are in all.
    pub fn set_total(&mut self, total: u64) {
        self.state.total = Some(total);
    }

    /// Adds `n` units done and redraws if due.
    pub fn add(&mut self, n: u64) {
        self.state.done += n;
        self.tick();
    }

    /// Adds `n` units done, sets the share of the work done, and redraws if due.
    pub fn advance(&mut self, n: u64, fraction: f64) {
        self.state.done += n;
        self.state.fraction = Some(fraction);
        self.tick();
    }

    /// Redraws if due (for a scan that waits, so the elapsed time moves on).
    pub fn tick(&mut self) {
        let Some((start, throttle)) = &mut self.live else {
            return;
        };
        let elapsed = start.elapsed();
        if !throttle.due(elapsed) {
            return;
        }
        let mut line = render(&self.label, self.unit, self.state, elapsed);
        // A line wider than the terminal wraps, and `\r` could not erase it.
        if let Some(w) = terminal_width() {
            if line.chars().count() >= w {
                line = line.chars().take(w.saturating_sub(1)).collect();
            }
        }
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{line}\x1b[K");
        let _ = e.flush();
        DRAWN.store(true, Ordering::SeqCst);
    }

    /// Erases the line: the scan is over.
    pub fn finish(&mut self) {
        if self.live.take().is_some() {
            clear_line();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Columns of the terminal on stderr, if it says.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills the winsize we pass, which lives across the call.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: as above; fd 2 is stderr (a bad fd only makes the call fail).
    let r = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn nothing_is_drawn_in_the_first_second_then_at_most_ten_times_a_second() {
        let mut t = Throttle::default();
        assert!(!t.due(ms(0)));
        assert!(!t.due(ms(999)));
        assert!(t.due(ms(1000)));
        assert!(!t.due(ms(1000)));
        assert!(!t.due(ms(1099)));
        assert!(t.due(ms(1100)));
        // A pause longer than the interval draws at once.
        assert!(t.due(ms(5000)));
        assert!(!t.due(ms(5050)));
        let mut late = Throttle::default();
        assert!(
            late.due(ms(3000)),
            "a first update after a slow start draws"
        );
    }

    #[test]
    fn lines_show_count_total_share_rate_and_time() {
        let s = |done, total, fraction| State {
            done,
            total,
            fraction,
        };
        assert_eq!(
            render("verify s", "segments", s(3, Some(12), None), ms(2500)),
            "verify s: 3 of 12 segments, 25%, 1 segments/s, 2s"
        );
        assert_eq!(
            render("replay", "events", s(250_000, None, Some(0.376)), ms(2000)),
            "replay: 250k events, 37%, 125k events/s, 2s"
        );
        assert_eq!(
            render("tail", "events", s(0, None, None), ms(1000)),
            "tail: 0 events, 1s"
        );
        // Estimates never read past 100%, and an empty total shows no share.
        assert_eq!(
            render("x", "rings", s(5, None, Some(1.7)), ms(65_000)),
            "x: 5 rings, 100%, 0 rings/s, 1m05s"
        );
        assert_eq!(
            render("x", "rings", s(0, Some(0), None), ms(1000)),
            "x: 0 of 0 rings, 1s"
        );
    }

    #[test]
    fn shares_of_position_ranges() {
        assert_eq!(share(100, 100, 300), 0.0);
        assert_eq!(share(100, 200, 300), 0.5);
        assert_eq!(share(100, 400, 300), 1.0);
        assert_eq!(share(100, 50, 300), 0.0);
        assert_eq!(share(300, 300, 300), 1.0);
    }

    #[test]
    fn counts_and_clocks() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(99_999), "99,999");
        assert_eq!(count(123_456), "123k");
        assert_eq!(count(1_234_567), "1.23M");
        assert_eq!(count(45_600_000), "45.6M");
        assert_eq!(count(7_000_000_000), "7.00G");
        assert_eq!(clock(ms(59_999)), "59s");
        assert_eq!(clock(ms(125_000)), "2m05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h02m");
    }

    #[test]
    fn off_a_terminal_nothing_is_drawn() {
        let mut p = Progress::with_terminal("x", "events", false);
        p.set_total(10);
        p.add(5);
        p.finish();
        assert!(!DRAWN.load(Ordering::SeqCst));
        assert_eq!(p.state.done, 5);
    }
}
