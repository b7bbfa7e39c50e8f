//! Query scan rate over stored segments, next to `grep -c` over the same events as
//! JSON lines.
//!
//! In one run it
//!
//! 1. writes >= 1 GiB of segments (64 MiB each, sealed, with their indexes of
//!    checksummed runs) with the store's own `SegmentBuilder` holding `Tick` events
//!    (rkyv payloads of 80 bytes, 128-byte records), and the same events as JSON
//!    lines, both in a temporary directory (so in the page cache),
//! 2. scans the store single-threaded with `shmbus::query` (`StoreTopic::scan`, a
//!    `count` aggregate) for a header-field filter and two schema-field filters,
//! 3. runs `grep -c -F '"side":"Buy"'` (and `rg -c` if installed) over the JSON lines,
//!    in rounds that interleave them with the scans (5 by default, the best of each),
//!
//! and prints a Markdown table: events/s, GB/s of segment (or JSON) bytes, and the
//! ratio to grep.
//!
//! ```text
//! cargo bench --bench query              # 1 GiB of segments
//! cargo bench --bench query -- --quick   # 128 MiB
//! ```
//!
//! `SHMBUS_BENCH_DIR` picks the directory (default: the system temp directory); the
//! files are removed at the end unless `SHMBUS_BENCH_KEEP=1`. `SHMBUS_BENCH_MIB` and
//! `SHMBUS_BENCH_REPS` override the size and the rounds (e.g. for a short run under
//! `valgrind --tool=callgrind`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use shmbus::query::{Cell, Plan, QuerySpec, ScanStats, StoreTopic};
use shmbus::store::SegmentBuilder;
use shmbus::Event as _;

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

/// A market-data tick: 80 bytes archived (symbols inline, venue out of line).
#[shmbus::event]
#[derive(Debug, Clone)]
struct Tick {
    symbol: String,
    venue: String,
    side: Side,
    price: f64,
    bid: f64,
    ask: f64,
    qty: u32,
    seq: u64,
}

const SYMBOLS: [&str; 8] = [
    "AAPL", "ABNB", "MSFT", "ABT", "NVDA", "AMZN", "ABBV", "TSLA",
];
const VENUES: [&str; 4] = [
    "XNAS-ISLAND",
    "XNYS-MAINFLR",
    "BATS-BZXEXCH",
    "IEXG-IEXMAIN",
];
const SEGMENT: usize = 64 << 20;
const T0: u64 = 1_795_813_200_000_000_000;

fn tick(i: u64) -> Tick {
    // A cheap mixing step so fields are not periodic together.
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let price = 100.0 + (h >> 40) as f64 / (1u64 << 24) as f64 * 100.0;
    Tick {
        symbol: SYMBOLS[(h >> 8) as usize % SYMBOLS.len()].to_string(),
        venue: VENUES[(h >> 16) as usize % VENUES.len()].to_string(),
        side: if (h >> 20) & 1 == 0 {
            Side::Buy
        } else {
            Side::Sell
        },
        price,
        bid: price - 0.01,
        ask: price + 0.01,
        qty: (h >> 24) as u32 % 1000 + 1,
        seq: i,
    }
}

/// Writes `total` bytes of segments into `dir` with the store's
/// [`SegmentBuilder`] and the same events as JSON lines into `json`; returns
/// (events, segment bytes, JSON bytes, payload length).
fn write_data(dir: &Path, json: &Path, total: usize) -> (u64, u64, u64, usize) {
    std::fs::create_dir_all(dir).unwrap();
    let schema = Tick::schema();
    let schema_bytes = schema.encode();
    let mut jw = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(json).unwrap());
    let (mut pos, mut i, mut seg_bytes, mut json_bytes) = (0u64, 0u64, 0u64, 0u64);
    let mut line = String::new();
    let mut payload_len = 0;
    while (seg_bytes as usize) < total {
        let mut seg = SegmentBuilder::new(pos, Tick::TYPE_ID, schema.fingerprint());
        while seg.len() as usize + 256 < SEGMENT {
            let t = tick(i);
            let ts = T0 + i * 1000;
            let payload = shmbus::rkyv::to_bytes::<shmbus::rkyv::rancor::Error>(&t).unwrap();
            payload_len = payload.len();
            let at = seg.push(ts, Tick::TYPE_ID, &payload);
            line.clear();
            shmbus::schema::decode::render_json(schema, &payload, &mut line).unwrap();
            line.pop();
            line.push_str(&format!(
                ",\"position\":{at},\"time\":{ts},\"type\":{}}}\n",
                Tick::TYPE_ID
            ));
            jw.write_all(line.as_bytes()).unwrap();
            json_bytes += line.len() as u64;
            i += 1;
        }
        pos = seg.next_position();
        let path = seg.write(dir, &schema_bytes).unwrap();
        seg_bytes += std::fs::metadata(path).unwrap().len();
    }
    jw.flush().unwrap();
    (i, seg_bytes, json_bytes, payload_len)
}

/// One run of a counting query: (seconds, stats, count).
fn run_query(topic: &StoreTopic, plan: &Plan) -> (f64, ScanStats, i128) {
    let mut count = 0;
    let t = Instant::now();
    let stats = topic
        .scan(
            plan,
            &mut |cells| {
                if let Cell::Int(n) = cells[0] {
                    count = n;
                }
                true
            },
            &mut |_| {},
        )
        .unwrap();
    (t.elapsed().as_secs_f64(), stats, count)
}

/// One run of `tool args json`: (seconds, count printed), None if it cannot run.
fn run_tool(tool: &str, args: &[&str], json: &Path) -> Option<(f64, u64)> {
    let t = Instant::now();
    let out = Command::new(tool).args(args).arg(json).output().ok()?;
    let s = t.elapsed().as_secs_f64();
    let n = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((s, n))
}

fn keep_best<T>(best: &mut Option<(f64, T)>, run: Option<(f64, T)>) {
    if let Some(r) = run {
        if best.as_ref().is_none_or(|b| r.0 < b.0) {
            *best = Some(r);
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<usize>().ok());
    let total =
        env_num("SHMBUS_BENCH_MIB").map_or(if quick { 128 << 20 } else { 1 << 30 }, |m| m << 20);
    let base: PathBuf = std::env::var_os("SHMBUS_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("shmbus-bench-query-{}", std::process::id()));
    let store = base.join("store");
    let json = base.join("ticks.jsonl");
    let t = Instant::now();
    let (events, seg_bytes, json_bytes, payload) = write_data(&store.join("ticks"), &json, total);
    eprintln!(
        "wrote {events} events: {:.2} GiB of segments ({payload}-byte payloads), {:.2} GiB of JSON lines in {:.1} s",
        seg_bytes as f64 / (1u64 << 30) as f64,
        json_bytes as f64 / (1u64 << 30) as f64,
        t.elapsed().as_secs_f64()
    );
    // Rounds interleave every scan and grep, so a busy moment of a shared machine
    // hits them alike; each figure is the best of its rounds.
    let reps = env_num("SHMBUS_BENCH_REPS").unwrap_or(5).max(1);
    let queries = [
        (
            "header field: `time >= T0 + 1 ms and len > 0`",
            format!("time >= {} and len > 0", T0 + 1_000_000),
        ),
        (
            "schema field: `side == \"Buy\"`",
            "side == \"Buy\"".to_string(),
        ),
        (
            "schema fields: `price > 150 and symbol ^= \"AB\"`",
            "price > 150 and symbol ^= \"AB\"".to_string(),
        ),
    ];
    let topic = StoreTopic::open(&store, "ticks").unwrap();
    let plans: Vec<Plan> = queries
        .iter()
        .map(|(_, f)| {
            let spec = QuerySpec {
                filter: Some(f.clone()),
                aggregates: vec!["count".into()],
                ..Default::default()
            };
            Plan::new(&spec, topic.schema(), 0).unwrap()
        })
        .collect();
    let mut best: Vec<Option<(f64, (ScanStats, i128))>> = vec![None; plans.len()];
    let (mut grep, mut rg) = (None, None);
    let pattern = "\"side\":\"Buy\"";
    for _ in 0..reps {
        for (b, plan) in best.iter_mut().zip(&plans) {
            let (s, stats, count) = run_query(&topic, plan);
            assert_eq!(stats.records_scanned, events);
            keep_best(b, Some((s, (stats, count))));
        }
        keep_best(&mut grep, run_tool("grep", &["-c", "-F", pattern], &json));
        keep_best(&mut rg, run_tool("rg", &["-c", "-F", pattern], &json));
    }
    let rows: Vec<(String, f64, u64, i128)> = queries
        .iter()
        .zip(best)
        .map(|((name, _), b)| {
            let (s, (stats, count)) = b.unwrap();
            (name.to_string(), s, stats.bytes_scanned, count)
        })
        .collect();
    let buys = rows[1].3;
    for (tool, r) in [("grep", &grep), ("rg", &rg)] {
        if let Some((_, n)) = r {
            assert_eq!(*n as i128, buys, "{tool} disagrees with the query");
        }
    }
    let grep_rate = grep.map(|(s, _)| events as f64 / s);
    println!();
    println!(
        "| scan ({events} events, {reps} runs, best) | matches | events/s | GB/s | vs grep -c |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, s, bytes, count) in &rows {
        let rate = events as f64 / s;
        let ratio = grep_rate.map_or("-".to_string(), |g| format!("{:.1}x", rate / g));
        println!(
            "| shmbus query, {name} | {count} | {:.1} M | {:.2} (segments) | {ratio} |",
            rate / 1e6,
            *bytes as f64 / s / 1e9
        );
    }
    for (tool, r) in [("grep -c -F", grep), ("rg -c -F", rg)] {
        match r {
            Some((s, n)) => println!(
                "| {tool} '\"side\":\"Buy\"' over JSON lines | {n} | {:.1} M | {:.2} (JSON) | {:.1}x |",
                events as f64 / s / 1e6,
                json_bytes as f64 / s / 1e9,
                grep_rate.map_or(0.0, |g| events as f64 / s / g)
            ),
            None => println!("| {tool} | not installed | | | |"),
        }
    }
    if std::env::var_os("SHMBUS_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&base);
    } else {
        eprintln!("kept {}", base.display());
    }
}
