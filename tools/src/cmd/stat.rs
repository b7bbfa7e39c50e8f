//! `shmbus stat [topic...] [--watch] [--interval 1s]`: per-topic counters and rates.
//!
//! Rates come from two samples one interval apart: events/s and payload bytes/s from
//! the producers' counters, log bytes/s (`LOG/S`: how fast the tail moves, record
//! headers and padding included) from the tail, stalls from the back-pressure counter
//! (total, and `+n` in the interval), and for every subscriber its lag (tail minus
//! position) and how fast its position moves (`READ/S`). `MAX LAG` is the largest lag
//! of the subscribers that hold producers back: all but evicted ones (a dead or
//! detached named subscriber holds them until it is evicted). The recorder is the named
//! subscriber `shmbus-recorder` (or `--recorder NAME`); its read rate is the recorder's
//! throughput. A subscriber without a process (detached) has no pid: `-` in the table,
//! null in JSON.
//!
//! Producer counters live in producer slots and are summed over the attached producers,
//! so a producer that detaches takes its counts with it: a rate never goes negative,
//! it reads 0 for that interval.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use shmbus::SubscriberState;

use crate::error::CliError;
use crate::output::Format;
use crate::report::{human_bytes, out_line, Obj, Table};
use crate::target::{existing_bus, install_stop_handlers, open_topic, stopping};
use crate::timefmt::{format_time, parse_duration};
use crate::Ctx;

/// Arguments of `shmbus stat`.
#[derive(clap::Args)]
pub struct Args {
    /// Topics to show (default: every topic of the bus).
    pub topics: Vec<String>,
    /// Keep sampling and refresh the output every interval (until Ctrl-C).
    #[arg(long, short)]
    pub watch: bool,
    /// Time between the two samples a rate is computed from (e.g. 1s, 250ms).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    pub interval: Duration,
    /// With --watch: stop after this many samples.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Name of the recorder's durable subscriber.
    #[arg(long, value_name = "NAME", default_value = "shmbus-recorder")]
    pub recorder: String,
}

#[derive(Clone)]
struct SubSample {
    slot: usize,
    name: Option<String>,
    pid: u32,
    state: &'static str,
    position: u64,
}

#[derive(Clone)]
struct TopicSample {
    tail: u64,
    records: u64,
    bytes: u64,
    stalls: u64,
    gaps: u64,
    evictions: u64,
    producers: usize,
    subs: Vec<SubSample>,
}

type Sample = BTreeMap<String, Result<TopicSample, String>>;

fn sample(bus: &shmbus::Bus, names: &[String]) -> Sample {
    let mut out = BTreeMap::new();
    for n in names {
        let s = open_topic(bus, n).map_err(|e| e.to_string()).map(|t| {
            let st = t.stats();
            TopicSample {
                tail: st.tail,
                records: st.records,
                bytes: st.bytes,
                stalls: st.stalls,
                gaps: st.gaps,
                evictions: st.evictions,
                producers: t.producers().iter().filter(|p| p.alive).count(),
                subs: t
                    .subscribers()
                    .into_iter()
                    .map(|c| SubSample {
                        slot: c.slot,
                        name: c.name,
                        pid: c.pid,
                        state: match c.state {
                            SubscriberState::Active if c.alive => "active",
                            SubscriberState::Active => "dead",
                            SubscriberState::Evicted => "evicted",
                            SubscriberState::Detached => "detached",
                        },
                        position: c.position,
                    })
                    .collect(),
            }
        });
        out.insert(n.clone(), s);
    }
    out
}

/// A pid for a table: `-` for none (a detached named subscriber has no process).
pub fn pid_cell(pid: u32) -> String {
    if pid == 0 {
        "-".into()
    } else {
        pid.to_string()
    }
}

fn rate(now: u64, before: u64, secs: f64) -> f64 {
    now.saturating_sub(before) as f64 / secs
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
    let mut prev = sample(&bus, &names);
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
        let cur = sample(&bus, &names);
        let now = Instant::now();
        let secs = now.duration_since(t_prev).as_secs_f64();
        if clear {
            // Clear the screen and home the cursor, so the tables refresh in place.
            use std::io::Write as _;
            let _ = std::io::stdout().write_all(b"\x1b[2J\x1b[H");
        }
        print_sample(ctx, &args, &prev, &cur, secs);
        n += 1;
        if !args.watch || args.count.is_some_and(|c| n >= c) || stopping() {
            return Ok(());
        }
        prev = cur;
        t_prev = now;
    }
}

fn print_sample(ctx: &Ctx, args: &Args, prev: &Sample, cur: &Sample, secs: f64) {
    let mut topics_json = Vec::new();
    let mut topics = Table::new(&[
        "TOPIC",
        "EVENTS/S",
        "PAYLOAD/S",
        "LOG/S",
        "STALLS",
        "GAPS",
        "PRODUCERS",
        "MAX LAG",
        "RECORDER",
    ]);
    let mut subs = Table::new(&[
        "TOPIC",
        "SUBSCRIBER",
        "PID",
        "STATE",
        "POSITION",
        "LAG",
        "READ/S",
    ]);
    for (name, c) in cur {
        let c = match c {
            Ok(c) => c,
            Err(e) => {
                topics_json.push(Obj::new().str("topic", name).str("error", e));
                topics.row(vec![name.clone(), format!("unreadable: {e}")]);
                continue;
            }
        };
        let p = match prev.get(name) {
            Some(Ok(p)) => p.clone(),
            _ => c.clone(),
        };
        let ev_s = rate(c.records, p.records, secs);
        let b_s = rate(c.bytes, p.bytes, secs);
        let log_s = rate(c.tail, p.tail, secs);
        let stalls = c.stalls.saturating_sub(p.stalls);
        let mut sub_json = Vec::new();
        let mut recorder = None;
        let mut max_lag = 0;
        for s in &c.subs {
            let before = p
                .subs
                .iter()
                .find(|b| b.slot == s.slot && b.name == s.name && b.pid == s.pid)
                .map_or(s.position, |b| b.position);
            let lag = c.tail.saturating_sub(s.position);
            let r = rate(s.position, before, secs);
            if s.state != "evicted" {
                max_lag = max_lag.max(lag);
            }
            if s.name.as_deref() == Some(args.recorder.as_str()) {
                recorder = Some((s.state, s.position, lag, r));
            }
            sub_json.push(
                Obj::new()
                    .u64("slot", s.slot as u64)
                    .opt_str("name", s.name.as_deref())
                    .opt_u64("pid", (s.pid != 0).then_some(u64::from(s.pid)))
                    .str("state", s.state)
                    .u64("position", s.position)
                    .u64("lag", lag)
                    .f64("bytes_per_s", r),
            );
            subs.row(vec![
                name.clone(),
                s.name
                    .clone()
                    .unwrap_or_else(|| format!("(slot {})", s.slot)),
                pid_cell(s.pid),
                s.state.into(),
                s.position.to_string(),
                human_bytes(lag),
                format!("{}/s", human_bytes(r as u64)),
            ]);
        }
        let rec_json = match recorder {
            Some((state, pos, lag, r)) => Obj::new()
                .str("name", &args.recorder)
                .str("state", state)
                .u64("position", pos)
                .u64("lag", lag)
                .f64("bytes_per_s", r)
                .finish(),
            None => "null".into(),
        };
        topics_json.push(
            Obj::new()
                .str("topic", name)
                .u64("tail", c.tail)
                .u64("records", c.records)
                .u64("bytes", c.bytes)
                .u64("stalls", c.stalls)
                .u64("gaps", c.gaps)
                .u64("evictions", c.evictions)
                .u64("producers_alive", c.producers as u64)
                .f64("events_per_s", ev_s)
                .f64("bytes_per_s", b_s)
                .f64("log_bytes_per_s", log_s)
                .u64("stalls_in_interval", stalls)
                .u64("max_lag", max_lag)
                .raw("recorder", &rec_json)
                .arr("subscribers", sub_json),
        );
        topics.row(vec![
            name.clone(),
            format!("{ev_s:.0}"),
            format!("{}/s", human_bytes(b_s as u64)),
            format!("{}/s", human_bytes(log_s as u64)),
            format!("{} (+{stalls})", c.stalls),
            c.gaps.to_string(),
            c.producers.to_string(),
            human_bytes(max_lag),
            match recorder {
                Some(("active", _, _, r)) => {
                    format!("{}/s", human_bytes(r as u64))
                }
                Some((state, ..)) => state.to_string(),
                None => "-".into(),
            },
        ]);
    }
    let now = shmbus::now_ns();
    match ctx.format {
        Format::Json => out_line(
            &Obj::new()
                .u64("time_ns", now)
                .str("time", &format_time(now))
                .f64("interval_s", secs)
                .arr("topics", topics_json)
                .finish(),
        ),
        Format::Table => {
            out_line(&format!("{}  (rates over {secs:.2}s)", format_time(now)));
            if cur.is_empty() {
                out_line("no topics");
                return;
            }
            topics.print();
            if !subs.is_empty() {
                out_line("");
                subs.print();
            }
        }
    }
}
