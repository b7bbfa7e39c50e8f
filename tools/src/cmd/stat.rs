//! `shmbus stat [topic...] [--watch] [--interval 1s]`: per-topic counters and rates.
//!
//! Rates come from two samples one interval apart: events/s and payload bytes/s from
//! the producers' counters, log bytes/s (`LOG/S`: how fast the tail moves, headers and
//! padding included) from the tail, stalls from the back-pressure counter (total, and
//! `+n` in the interval), and for every subscriber its lag (tail minus position) and
//! how fast its position moves (`READ/S`). `MAX LAG` is the largest lag of the
//! subscribers that hold producers back: all but evicted ones. The recorder is the
//! named subscriber `shmbus-recorder` (or `--recorder NAME`). A subscriber without a
//! process (detached) has no pid: `-` in the table, null in JSON.
//!
//! Producer counters live in producer slots and are summed over the attached producers,
//! so a producer that detaches takes its counts with it: a rate never goes negative,
//! it reads 0 for that interval.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use crate::error::CliError;
use crate::output::Format;
use crate::target::{existing_bus, install_stop_handlers, open_topic, stopping};
use crate::times::duration_arg;
use crate::Ctx;

mod rates;
mod sample;

/// Arguments of `shmbus stat`.
#[derive(clap::Args)]
pub struct Args {
    /// Topics to show (default: every topic of the bus).
    pub topics: Vec<String>,
    /// Keep sampling and refresh the output every interval (until Ctrl-C).
    #[arg(long, short)]
    pub watch: bool,
    /// Time between the two samples a rate is computed from: a bare number of seconds
    /// (5) or a number with a unit (250ms, 2s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = duration_arg)]
    pub interval: Duration,
    /// With --watch: stop after this many samples.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Name of the recorder's durable subscriber.
    #[arg(long, value_name = "NAME", default_value = "shmbus-recorder")]
    pub recorder: String,
}

/// Runs `shmbus stat`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    if args.interval.is_zero() {
        return Err(CliError::usage("--interval must be above zero"));
    }
    let bus = existing_bus(ctx)?;
    let names = if args.topics.is_empty() {
        bus.topics()
            .map_err(|e| CliError::new(format!("cannot list bus {:?}: {e}", ctx.bus)))?
    } else {
        for t in &args.topics {
            open_topic(&bus, t)?;
        }
        args.topics.clone()
    };
    install_stop_handlers()?;
    let clear = args.watch && ctx.format == Format::Table && std::io::stdout().is_terminal();
    let mut prev = sample::take(&bus, &names);
    let mut t_prev = Instant::now();
    let mut n = 0u64;
    loop {
        let until = t_prev + args.interval;
        while Instant::now() < until {
            if stopping() {
                return Ok(());
            }
            std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
        }
        let cur = sample::take(&bus, &names);
        let now = Instant::now();
        let secs = now.duration_since(t_prev).as_secs_f64();
        if clear {
            // Clear the screen and home the cursor, so the tables refresh in place.
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(b"\x1b[2J\x1b[H");
        }
        rates::print(ctx.format, &args.recorder, &prev, &cur, secs);
        n += 1;
        if !args.watch || args.count.is_some_and(|c| n >= c) || stopping() {
            return Ok(());
        }
        prev = cur;
        t_prev = now;
    }
}
