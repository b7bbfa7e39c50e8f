//! The rates between two samples, as one JSON line or as tables.

use serde::Serialize;

use super::sample::Sample;
use crate::output::{human_bytes, json_line, out_line, print_table, right, table, Format};
use crate::times::format_time;
use crate::topics::pid_cell;

#[derive(Serialize)]
struct SubRow<'a> {
    slot: usize,
    name: Option<&'a str>,
    pid: Option<u32>,
    state: &'static str,
    position: u64,
    lag: u64,
    bytes_per_s: f64,
}

#[derive(Serialize)]
struct Recorder<'a> {
    name: &'a str,
    state: &'static str,
    position: u64,
    lag: u64,
    bytes_per_s: f64,
}

#[derive(Serialize)]
#[serde(untagged)]
enum TopicRow<'a> {
    Ok {
        topic: &'a str,
        tail: u64,
        records: u64,
        bytes: u64,
        stalls: u64,
        gaps: u64,
        evictions: u64,
        producers_alive: usize,
        events_per_s: f64,
        bytes_per_s: f64,
        log_bytes_per_s: f64,
        stalls_in_interval: u64,
        max_lag: u64,
        recorder: Option<Recorder<'a>>,
        subscribers: Vec<SubRow<'a>>,
    },
    Unreadable {
        topic: &'a str,
        error: &'a str,
    },
}

#[derive(Serialize)]
struct Line<'a> {
    time_ns: u64,
    time: String,
    interval_s: f64,
    topics: Vec<TopicRow<'a>>,
}

fn rate(now: u64, before: u64, secs: f64) -> f64 {
    now.saturating_sub(before) as f64 / secs
}

/// Prints the rates between samples `prev` and `cur`, `secs` apart.
pub fn print(format: Format, recorder: &str, prev: &Sample, cur: &Sample, secs: f64) {
    let mut rows = Vec::new();
    let mut topics = table(&[
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
    let mut subs = table(&[
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
                rows.push(TopicRow::Unreadable {
                    topic: name,
                    error: e,
                });
                topics.add_row(vec![name.clone(), format!("unreadable: {e}")]);
                continue;
            }
        };
        let p = match prev.get(name) {
            Some(Ok(p)) => p,
            _ => c,
        };
        let (cs, ps) = (&c.stats, &p.stats);
        let mut sub_rows = Vec::new();
        let mut rec = None;
        let mut max_lag = 0;
        for s in &c.subs {
            let before = p
                .subs
                .iter()
                .find(|b| b.slot == s.slot && b.name == s.name && b.pid == s.pid)
                .map_or(s.position, |b| b.position);
            let lag = cs.tail.saturating_sub(s.position);
            let r = rate(s.position, before, secs);
            if s.state != "evicted" {
                max_lag = max_lag.max(lag);
            }
            if s.name.as_deref() == Some(recorder) {
                rec = Some(Recorder {
                    name: recorder,
                    state: s.state,
                    position: s.position,
                    lag,
                    bytes_per_s: r,
                });
            }
            subs.add_row(vec![
                name.into(),
                s.name
                    .clone()
                    .unwrap_or_else(|| format!("(slot {})", s.slot))
                    .into(),
                right(pid_cell(s.pid)),
                s.state.into(),
                right(s.position),
                right(human_bytes(lag)),
                right(format!("{}/s", human_bytes(r as u64))),
            ]);
            sub_rows.push(SubRow {
                slot: s.slot,
                name: s.name.as_deref(),
                pid: (s.pid != 0).then_some(s.pid),
                state: s.state,
                position: s.position,
                lag,
                bytes_per_s: r,
            });
        }
        let ev_s = rate(cs.records, ps.records, secs);
        let b_s = rate(cs.bytes, ps.bytes, secs);
        let log_s = rate(cs.tail, ps.tail, secs);
        let stalls = cs.stalls.saturating_sub(ps.stalls);
        topics.add_row(vec![
            name.into(),
            right(format!("{ev_s:.0}")),
            right(format!("{}/s", human_bytes(b_s as u64))),
            right(format!("{}/s", human_bytes(log_s as u64))),
            right(format!("{} (+{stalls})", cs.stalls)),
            right(cs.gaps),
            right(c.producers),
            right(human_bytes(max_lag)),
            match &rec {
                Some(r) if r.state == "active" => {
                    format!("{}/s", human_bytes(r.bytes_per_s as u64))
                }
                Some(r) => r.state.to_string(),
                None => "-".into(),
            }
            .into(),
        ]);
        rows.push(TopicRow::Ok {
            topic: name,
            tail: cs.tail,
            records: cs.records,
            bytes: cs.bytes,
            stalls: cs.stalls,
            gaps: cs.gaps,
            evictions: cs.evictions,
            producers_alive: c.producers,
            events_per_s: ev_s,
            bytes_per_s: b_s,
            log_bytes_per_s: log_s,
            stalls_in_interval: stalls,
            max_lag,
            recorder: rec,
            subscribers: sub_rows,
        });
    }
    let now = shmbus::now_ns();
    match format {
        Format::Json => json_line(&Line {
            time_ns: now,
            time: format_time(now),
            interval_s: secs,
            topics: rows,
        }),
        Format::Table => {
            out_line(&format!("{}  (rates over {secs:.2}s)", format_time(now)));
            if cur.is_empty() {
                out_line("no topics");
                return;
            }
            print_table(&mut topics);
            if !subs.is_empty() {
                out_line("");
                print_table(&mut subs);
            }
        }
    }
}
