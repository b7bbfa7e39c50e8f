//! Code shared by the examples: the event type, argument parsing and the publish /
//! subscribe loops (used directly by `publisher` and `subscriber`, and by the child
//! processes of `demo`).

// Each example uses a different part of this module.
#![allow(dead_code)]

use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use shmbus::{Bus, Start, Topic};

/// Ring size of the examples' topic. Every process must ask for the same capacity.
pub const CAPACITY: u64 = 4 << 20;

/// Bound on every single wait (one send under back-pressure, one receive).
pub const WAIT: Duration = Duration::from_secs(30);

pub type Res<T> = Result<T, Box<dyn Error>>;

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub seq: u64,
    pub symbol: String,
    pub price: f64,
    pub side: Side,
}

/// `--key value` pairs from the command line (std only).
pub struct Args {
    map: HashMap<String, String>,
}

impl Args {
    /// Parse `std::env::args()`; `known` lists the accepted keys (without `--`).
    pub fn parse(usage: &str, known: &[&str]) -> Res<Args> {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            if a == "-h" || a == "--help" {
                println!("usage: {usage}");
                std::process::exit(0);
            }
            let key = a
                .strip_prefix("--")
                .filter(|k| known.contains(k))
                .ok_or_else(|| format!("unexpected argument `{a}`\nusage: {usage}"))?;
            let val = it
                .next()
                .ok_or_else(|| format!("`{a}` needs a value\nusage: {usage}"))?;
            map.insert(key.to_string(), val);
        }
        Ok(Args { map })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(String::as_str)
    }

    pub fn req(&self, key: &str) -> Res<&str> {
        self.get(key)
            .ok_or_else(|| format!("missing --{key}").into())
    }

    pub fn num(&self, key: &str, default: Option<u64>) -> Res<u64> {
        match (self.get(key), default) {
            (Some(v), _) => v
                .replace('_', "")
                .parse()
                .map_err(|e| format!("--{key} {v}: {e}").into()),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(format!("missing --{key}").into()),
        }
    }
}

/// Open (or create) the examples' topic of `Tick`s.
pub fn open_topic(bus_dir: &Path, topic: &str) -> Res<Topic<Tick>> {
    let bus = Bus::open_dir(bus_dir)?;
    Ok(bus
        .topic(topic)
        .event::<Tick>()
        .capacity(CAPACITY)
        .open_or_create()?)
}

/// What a publisher did.
pub struct PubReport {
    pub events: u64,
    pub elapsed: Duration,
}

/// Publish `count` ticks for `symbol` with seq 0..count.
pub fn publish(topic: &Topic<Tick>, symbol: &str, count: u64) -> Res<PubReport> {
    let mut publisher = topic.publisher()?;
    let t0 = Instant::now();
    let mut tick = Tick {
        seq: 0,
        symbol: symbol.to_string(),
        price: 100.0,
        side: Side::Buy,
    };
    for seq in 0..count {
        tick.seq = seq;
        tick.price = 100.0 + (seq % 1000) as f64 / 100.0;
        tick.side = if seq % 2 == 0 { Side::Buy } else { Side::Sell };
        publisher
            .send_timeout(&tick, WAIT)
            .map_err(|e| format!("send of seq {seq} failed: {e}"))?;
    }
    Ok(PubReport {
        events: count,
        elapsed: t0.elapsed(),
    })
}

/// What a subscriber saw.
pub struct SubReport {
    pub events: u64,
    /// Events per symbol (each symbol's seqs were checked to be 0, 1, 2, ...).
    pub per_symbol: Vec<(String, u64)>,
    /// The first event, as JSON rendered from the topic's stored schema.
    pub first_json: String,
    pub elapsed: Duration,
}

/// Attach a named subscriber (from the earliest record still in the ring).
pub fn subscriber(topic: &Topic<Tick>, name: &str) -> Res<shmbus::Subscriber<Tick>> {
    Ok(topic
        .subscriber()
        .named(name)
        .start(Start::Earliest)
        .open()?)
}

/// Receive `count` events, checking that each symbol's seqs arrive in order without
/// gaps. Every receive waits at most [`WAIT`].
pub fn receive(sub: &mut shmbus::Subscriber<Tick>, count: u64) -> Res<SubReport> {
    let schema = sub
        .topic()
        .schema()
        .ok_or("the topic has no stored schema")?
        .clone();
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut first_json = String::new();
    let mut t0 = None;
    for i in 0..count {
        let ev = sub
            .recv_timeout(WAIT)?
            .ok_or_else(|| format!("timed out after {WAIT:?} waiting for event {i} of {count}"))?;
        if i == 0 {
            // Timed from the first event, so waiting for a publisher to start is excluded.
            t0 = Some(Instant::now());
            shmbus::schema::decode::render_json(&schema, ev.bytes(), &mut first_json)?;
        }
        let seq = ev.seq.to_native();
        let symbol: &str = ev.symbol.as_str();
        let expect = next.entry(symbol.to_string()).or_insert(0);
        if seq != *expect {
            return Err(format!(
                "order violation for symbol {symbol}: got seq {seq}, expected {expect}"
            )
            .into());
        }
        *expect += 1;
    }
    let mut per_symbol: Vec<(String, u64)> = next.into_iter().collect();
    per_symbol.sort();
    Ok(SubReport {
        events: count,
        per_symbol,
        first_json,
        elapsed: t0.map(|t| t.elapsed()).unwrap_or_default(),
    })
}

/// Events per second, for display.
pub fn rate(events: u64, d: Duration) -> String {
    let s = d.as_secs_f64();
    if s <= 0.0 {
        return "-".into();
    }
    let r = events as f64 / s;
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.0} k/s", r / 1e3)
    }
}
