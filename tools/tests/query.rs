//! `shmbus query` end to end through the real binary: a child process publishes known
//! trades, a recorder persists them, and the query results are checked against values
//! computed here. Hand-written segments with chosen timestamps check windows and time
//! ranges that skip segments. Bad input gets one clear line on stderr.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shmbus::store::format::names::seg_name;
use shmbus::store::format::segment::SEG_HEADER;
use shmbus::store::{Fsync, Recorder, RecorderConfig, SegmentBuilder, SegmentReader};

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

#[shmbus::event]
#[derive(Debug, Clone)]
struct Trade {
    symbol: String,
    side: Side,
    price: f64,
    qty: u32,
}

/// Another event type, for a store that mixes schemas.
#[shmbus::event]
#[derive(Debug, Clone)]
struct Quote {
    bid: f64,
}

const N: usize = 1000;
const SYMBOLS: [&str; 4] = ["ABC", "ABD", "XYZ", "ABCDEFGHIJK"];

/// The i-th trade every test publishes.
fn trade(i: usize) -> Trade {
    Trade {
        symbol: SYMBOLS[i % 4].to_string(),
        side: if i % 3 == 0 { Side::Buy } else { Side::Sell },
        price: 100.0 + (i % 50) as f64 * 0.5,
        qty: (i % 7) as u32 + 1,
    }
}

/// A bus directory and a store directory, removed on drop.
struct Env {
    root: PathBuf,
}

impl Env {
    fn new(tag: &str) -> Env {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!(
            "shmbus-cli-query-{tag}-{}-{}",
            std::process::id(),
            shmbus::now_ns()
        ));
        std::fs::create_dir_all(root.join("bus")).unwrap();
        std::fs::create_dir_all(root.join("store")).unwrap();
        Env { root }
    }
    fn bus(&self) -> PathBuf {
        self.root.join("bus")
    }
    fn store(&self) -> PathBuf {
        self.root.join("store")
    }
    /// Runs `shmbus --bus <bus> <args>`: (exit code, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_shmbus"))
            .arg("--bus")
            .arg(self.bus())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
    /// Runs a command that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args);
        assert_eq!(code, 0, "shmbus {args:?} failed: {err}");
        out
    }
    /// Runs a command that must fail with one clear line: (code, the line).
    fn fails(&self, args: &[&str]) -> (i32, String) {
        let (code, out, err) = self.run(args);
        assert!(
            code == 1 || code == 2,
            "shmbus {args:?}: exit {code}, {out} {err}"
        );
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
        assert!(err.starts_with("shmbus: "), "{err}");
        (code, err.trim_end().to_string())
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The child's role: publish the N trades into the topic of the bus in
/// `QUERY_TEST_BUS`. A no-op in a normal test run.
#[test]
fn child_publisher() {
    let Ok(bus) = std::env::var("QUERY_TEST_BUS") else {
        return;
    };
    let bus = shmbus::Bus::open_dir(bus).unwrap();
    let topic = bus.topic("trades").event::<Trade>().open().unwrap();
    let mut p = topic.publisher().unwrap();
    for i in 0..N {
        p.send(&trade(i)).unwrap();
    }
}

/// Creates topic `trades`, records it into the store while a child process publishes
/// the N trades, and stops the recorder (sealing the last segment).
fn publish_and_record(env: &Env) {
    let bus = shmbus::Bus::open_dir(env.bus()).unwrap();
    let topic = bus
        .topic("trades")
        .event::<Trade>()
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let cfg = RecorderConfig {
        segment_size: 32 << 10,
        write_size: 8 << 10,
        fsync: Fsync::Never,
        ..Default::default()
    };
    let rec = Recorder::spawn(&topic, env.store(), cfg).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_publisher",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("QUERY_TEST_BUS", env.bus())
        .status()
        .unwrap();
    assert!(status.success());
    let tail = topic.tail();
    assert!(
        rec.wait_persisted(tail, Duration::from_secs(60)),
        "recorder fell behind"
    );
    let stats = rec.stop().unwrap();
    assert_eq!(stats.records, N as u64);
    assert!(stats.segments >= 3, "{} segments", stats.segments);
}

/// A JSON number or string field of a JSON line, as text (tests use no nested objects
/// and no commas inside strings).
fn field(line: &str, key: &str) -> String {
    let pat = format!("\"{key}\":");
    let at = line
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + pat.len();
    let rest = &line[at..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim_matches('"').to_string()
}

fn nearest_rank(mut v: Vec<u32>, p: f64) -> u32 {
    v.sort_unstable();
    let rank = ((p / 100.0 * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[test]
fn filters_groups_and_aggregates_over_a_recorded_store() {
    let env = Env::new("agg");
    publish_and_record(&env);
    let store = env.store();
    let store = store.to_str().unwrap();
    let all: Vec<Trade> = (0..N).map(trade).collect();

    // Filter + plain aggregates.
    let m: Vec<&Trade> = all
        .iter()
        .filter(|t| t.price > 110.0 && t.side == Side::Buy)
        .collect();
    let out = env.ok(&[
        "query",
        "trades",
        "--store",
        store,
        "--format",
        "json",
        "--where",
        "price > 110 and side == \"Buy\"",
        "--agg",
        "count,sum(qty),min(price),max(price),avg(qty)",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let l = lines[0];
    assert_eq!(field(l, "count"), m.len().to_string());
    let sum: u64 = m.iter().map(|t| u64::from(t.qty)).sum();
    assert_eq!(field(l, "sum(qty)"), sum.to_string());
    let min = m.iter().map(|t| t.price).fold(f64::INFINITY, f64::min);
    let max = m.iter().map(|t| t.price).fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(field(l, "min(price)").parse::<f64>().unwrap(), min);
    assert_eq!(field(l, "max(price)").parse::<f64>().unwrap(), max);
    assert_eq!(
        field(l, "avg(qty)").parse::<f64>().unwrap(),
        sum as f64 / m.len() as f64
    );

    // Prefix filter, group by an enum, percentiles.
    let out = env.ok(&[
        "query",
        "trades",
        "--store",
        store,
        "--format",
        "json",
        "--where",
        "symbol ^= \"AB\"",
        "--group-by",
        "side",
        "--agg",
        "count,sum(qty),p50(qty),p90(qty),p99(price)",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, side) in lines.iter().zip([Side::Buy, Side::Sell]) {
        let g: Vec<&Trade> = all
            .iter()
            .filter(|t| t.symbol.starts_with("AB") && t.side == side)
            .collect();
        assert_eq!(field(line, "side"), format!("{side:?}"));
        assert_eq!(field(line, "count"), g.len().to_string());
        let sum: u64 = g.iter().map(|t| u64::from(t.qty)).sum();
        assert_eq!(field(line, "sum(qty)"), sum.to_string());
        let qty: Vec<u32> = g.iter().map(|t| t.qty).collect();
        assert_eq!(
            field(line, "p50(qty)"),
            nearest_rank(qty.clone(), 50.0).to_string()
        );
        assert_eq!(field(line, "p90(qty)"), nearest_rank(qty, 90.0).to_string());
        let mut prices: Vec<f64> = g.iter().map(|t| t.price).collect();
        prices.sort_by(f64::total_cmp);
        let rank = ((0.99 * prices.len() as f64).ceil() as usize).clamp(1, prices.len());
        assert_eq!(
            field(line, "p99(price)").parse::<f64>().unwrap(),
            prices[rank - 1]
        );
    }

    // Group by a string, function form of the prefix test, `not`.
    let out = env.ok(&[
        "query",
        "trades",
        "--store",
        store,
        "--format",
        "json",
        "--where",
        "starts_with(symbol, \"ABC\") and not qty < 4",
        "--group-by",
        "symbol",
        "--agg",
        "count",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, sym) in lines.iter().zip(["ABC", "ABCDEFGHIJK"]) {
        let n = all.iter().filter(|t| t.symbol == sym && t.qty >= 4).count();
        assert_eq!(field(line, "symbol"), sym);
        assert_eq!(field(line, "count"), n.to_string());
    }

    // Projection and limit: the first five matches, in log order.
    let out = env.ok(&[
        "query",
        "trades",
        "--store",
        store,
        "--format",
        "json",
        "--where",
        "qty == 7 or symbol == 'XYZ'",
        "--select",
        "symbol,qty,side",
        "--limit",
        "5",
    ]);
    let want: Vec<String> = all
        .iter()
        .filter(|t| t.qty == 7 || t.symbol == "XYZ")
        .take(5)
        .map(|t| {
            format!(
                "{{\"symbol\":\"{}\",\"qty\":{},\"side\":\"{:?}\"}}",
                t.symbol, t.qty, t.side
            )
        })
        .collect();
    assert_eq!(out.lines().collect::<Vec<_>>(), want);

    // Default columns: position, time and every field; positions increase.
    let out = env.ok(&[
        "query", "trades", "--store", store, "--format", "json", "--limit", "3",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(
        lines[0].starts_with("{\"position\":0,\"time\":"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with(",\"symbol\":\"ABC\",\"side\":\"Buy\",\"price\":100.0,\"qty\":1}"),
        "{}",
        lines[0]
    );
    let p1: u64 = field(lines[1], "position").parse().unwrap();
    assert!(p1 > 0);

    // Header-only filter: counts every record and reads no payload.
    let (code, out, err) = env.run(&[
        "query",
        "trades",
        "--store",
        store,
        "--format",
        "json",
        "--where",
        "len > 0 and position >= 0",
        "--agg",
        "count",
        "--stats",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("{{\"count\":{N}}}"));
    assert_eq!(field(&err, "records_scanned"), N.to_string());
    assert_eq!(field(&err, "payloads_verified"), "0");
    // A schema filter checksums every payload it reads.
    let (_, _, err) = env.run(&[
        "query", "trades", "--store", store, "--where", "qty > 3", "--agg", "count", "--stats",
    ]);
    assert_eq!(field(&err, "payloads_verified"), N.to_string());

    // The table for people.
    let out = env.ok(&[
        "query",
        "trades",
        "--store",
        store,
        "--format",
        "table",
        "--group-by",
        "side",
        "--agg",
        "count",
    ]);
    let buys = all.iter().filter(|t| t.side == Side::Buy).count();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("side") && lines[0].ends_with("count"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("Buy") && lines[1].ends_with(&buys.to_string()),
        "{out}"
    );

    // The same query on the live ring's retained records (the ring holds the newest
    // records only): compare with the store from the ring's oldest record on.
    let out = env.ok(&[
        "query",
        "trades",
        "--format",
        "json",
        "--agg",
        "count,min(position)",
    ]);
    let n: usize = field(&out, "count").parse().unwrap();
    assert!(n > 0 && n < N, "{out}");
    let first = field(&out, "min(position)");
    let out = env.ok(&[
        "query",
        "trades",
        "--store",
        store,
        "--format",
        "json",
        "--from-position",
        &first,
        "--agg",
        "count",
    ]);
    assert_eq!(field(&out, "count"), n.to_string());
}

/// Writes a store topic by hand with the store's own [`SegmentBuilder`]: `segs[k]`
/// holds (timestamp, trade) pairs of segment k. Returns the segment paths.
fn write_segments(store: &Path, topic: &str, segs: &[Vec<(u64, Trade)>]) -> Vec<PathBuf> {
    write_typed_segments(store, topic, 0, segs)
}

/// [`write_segments`] for any event type, the first segment at position `pos`.
fn write_typed_segments<E: shmbus::Event>(
    store: &Path,
    topic: &str,
    mut pos: u64,
    segs: &[Vec<(u64, E)>],
) -> Vec<PathBuf> {
    let dir = store.join(topic);
    let schema = E::schema().encode();
    let mut paths = Vec::new();
    for seg in segs {
        let mut b = SegmentBuilder::new(pos, E::TYPE_ID, E::schema().fingerprint());
        for (ts, t) in seg {
            let payload = shmbus::rkyv::to_bytes::<shmbus::rkyv::rancor::Error>(t).unwrap();
            b.push(*ts, E::TYPE_ID, &payload);
        }
        pos = b.next_position();
        paths.push(b.write(&dir, &schema).unwrap());
    }
    paths
}

/// 2026-11-27T21:00:00Z in ns.
const T0: u64 = 1_795_813_200_000_000_000;
const SEC: u64 = 1_000_000_000;

/// Four segments, 50 trades each, 100 ms apart; segment k starts at T0 + 10k s.
fn timed_store(env: &Env) -> Vec<PathBuf> {
    let segs: Vec<Vec<(u64, Trade)>> = (0..4u64)
        .map(|k| {
            (0..50u64)
                .map(|j| {
                    (
                        T0 + k * 10 * SEC + j * SEC / 10,
                        trade((k * 50 + j) as usize),
                    )
                })
                .collect()
        })
        .collect();
    write_segments(&env.store(), "timed", &segs)
}

#[test]
fn windows_and_time_ranges_skip_segments() {
    let env = Env::new("win");
    timed_store(&env);
    let store = env.store();
    let store = store.to_str().unwrap();

    // 1 s tumbling windows: 10 events each, 5 windows per segment.
    let out = env.ok(&[
        "query",
        "timed",
        "--store",
        store,
        "--format",
        "json",
        "--window",
        "1s",
        "--agg",
        "count,sum(qty)",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 20, "{out}");
    for (w, line) in lines.iter().enumerate() {
        let (k, s) = ((w / 5) as u64, (w % 5) as u64);
        let start = T0 + k * 10 * SEC + s * SEC;
        assert_eq!(field(line, "window"), start.to_string());
        assert_eq!(field(line, "count"), "10");
        let first = (k * 50 + s * 10) as usize;
        let sum: u32 = (first..first + 10).map(|i| trade(i).qty).sum();
        assert_eq!(field(line, "sum(qty)"), sum.to_string(), "{line}");
    }

    // Windows and groups together, in the table with RFC 3339 window starts.
    let out = env.ok(&[
        "query",
        "timed",
        "--store",
        store,
        "--format",
        "table",
        "--window",
        "10s",
        "--group-by",
        "side",
        "--agg",
        "count",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1 + 8, "{out}");
    assert!(lines[1].starts_with("2026-11-27T21:00:00Z  Buy"), "{out}");
    let buys = (0..50).filter(|i| i % 3 == 0).count();
    assert!(lines[1].ends_with(&format!(" {buys}")), "{out}");

    // [T0+25s, T0+31s): segments 0 to 2 end before it (skipped by their footers),
    // segment 3 is read from its first record.
    let to = (T0 + 31 * SEC).to_string();
    let (code, out, err) = env.run(&[
        "query",
        "timed",
        "--store",
        store,
        "--format",
        "json",
        "--from-time",
        "2026-11-27T21:00:25Z",
        "--to-time",
        &to,
        "--agg",
        "count,min(time),max(time)",
        "--stats",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "count"), "10");
    assert_eq!(field(&out, "min(time)"), (T0 + 30 * SEC).to_string());
    assert_eq!(
        field(&out, "max(time)"),
        (T0 + 30 * SEC + 9 * SEC / 10).to_string()
    );
    assert_eq!(field(&err, "segments"), "4");
    assert_eq!(field(&err, "segments_skipped"), "3");
    assert_eq!(field(&err, "records_scanned"), "50");

    // An end inside segment 1: segments 2 and 3 start at or after it (the smallest
    // timestamp in their footers) and are skipped without being read.
    let (code, out, err) = env.run(&[
        "query",
        "timed",
        "--store",
        store,
        "--format",
        "json",
        "--to-time",
        &(T0 + 15 * SEC).to_string(),
        "--agg",
        "count",
        "--stats",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "count"), "100");
    assert_eq!(field(&err, "segments_skipped"), "2");
    assert_eq!(field(&err, "records_scanned"), "100");

    // A start inside segment 1: the index finds the record, earlier ones are not read.
    let from = (T0 + 14 * SEC).to_string();
    let (_, out, err) = env.run(&[
        "query",
        "timed",
        "--store",
        store,
        "--format",
        "json",
        "--from-time",
        &from,
        "--where",
        "time < \"2026-11-27T21:00:15Z\"",
        "--agg",
        "count",
        "--stats",
    ]);
    assert_eq!(field(&out, "count"), "10");
    assert_eq!(field(&err, "segments_skipped"), "1");
    assert_eq!(field(&err, "records_scanned"), (10 + 50 + 50).to_string());

    // Relative times: everything is in the past, so -1s selects nothing.
    let out = env.ok(&[
        "query",
        "timed",
        "--store",
        store,
        "--format",
        "json",
        "--from-time",
        "-1s",
        "--agg",
        "count",
    ]);
    assert_eq!(field(&out, "count"), "0");
}

/// Cuts a sealed segment back to its records, as a recorder killed before sealing it
/// leaves it.
fn unseal(path: &Path) {
    let data_end = SegmentReader::open(path).unwrap().summary().data_end;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(data_end).unwrap();
}

#[test]
fn segments_without_an_index() {
    let env = Env::new("noidx");
    let paths = timed_store(&env);
    let store = env.store();
    let store = store.to_str().unwrap();
    let buys = (0..200).filter(|i| i % 3 == 0).count().to_string();
    let count_buys = || {
        env.run(&[
            "query",
            "timed",
            "--store",
            store,
            "--format",
            "json",
            "--where",
            "side == Buy",
            "--agg",
            "count",
            "--stats",
        ])
    };

    // A sealed segment without its index: rebuilt from its records once the footer's
    // checksum of its data verifies.
    std::fs::remove_file(paths[0].with_extension("idx")).unwrap();
    // An unsealed tail with its index: the runs the index covers.
    unseal(&paths[3]);
    let (code, out, err) = count_buys();
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "count"), buys);
    assert_eq!(field(&err, "segments_unverified"), "0");
    assert!(!err.contains("note"), "{err}");

    // An unsealed tail without its index: read by the records' structure alone, as the
    // store's reader does, and said so.
    std::fs::remove_file(paths[3].with_extension("idx")).unwrap();
    let (code, out, err) = count_buys();
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "count"), buys);
    assert_eq!(field(&err, "segments_unverified"), "1");
    assert!(
        err.contains(
            "shmbus: note: 1 segment had no index: its records were checked by their \
             structure only, not by checksums"
        ),
        "{err}"
    );

    // A damaged index entry in a sealed segment: its data checksum is checked instead.
    let idx = paths[1].with_extension("idx");
    let mut bytes = std::fs::read(&idx).unwrap();
    bytes[shmbus::store::format::index::IDX_HEADER + 3] ^= 1;
    std::fs::write(&idx, &bytes).unwrap();
    let (code, out, err) = count_buys();
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "count"), buys);
}

#[test]
fn bad_input_gets_one_clear_line() {
    let env = Env::new("bad");
    let paths = timed_store(&env);
    let store = env.store();
    let store = store.to_str().unwrap();
    let q = |extra: &[&str]| {
        let mut v = vec!["query", "timed", "--store", store];
        v.extend_from_slice(extra);
        env.fails(&v)
    };

    let (code, line) = q(&["--where", "price > "]);
    assert_eq!(code, 2);
    assert_eq!(
        line,
        "shmbus: bad expression at column 9: expected a value after '>'; see shmbus query --help"
    );
    let (code, line) = q(&["--where", "(price > 1"]);
    assert_eq!(
        (code, line.as_str()),
        (
            2,
            "shmbus: bad expression at column 11: expected ')' to close the '(' at column 1, found the end; see shmbus query --help"
        )
    );
    let (code, line) = q(&["--where", "qty > 1 and pric > 1"]);
    assert_eq!(code, 2);
    assert!(line.contains("column 13: unknown field 'pric'"), "{line}");
    assert!(
        line.contains("known: symbol, side, price, qty, position, time, type, len"),
        "{line}"
    );
    let (code, line) = q(&["--where", "symbol > 5"]);
    assert_eq!(code, 2);
    assert!(
        line.contains("'symbol' is a string and cannot be compared with a number"),
        "{line}"
    );
    let (code, line) = q(&["--where", "side == Hold"]);
    assert_eq!(code, 2);
    assert!(line.contains("variants: Buy, Sell"), "{line}");
    let (code, line) = q(&["--agg", "sum(symbol)"]);
    assert_eq!(code, 2);
    assert!(line.contains("needs a numeric field"), "{line}");
    assert_eq!(q(&["--window", "fast"]).0, 2);
    assert_eq!(q(&["--from-time", "yesterday"]).0, 2);
    assert_eq!(q(&["--select", "qty", "--agg", "count"]).0, 2);

    let (code, line) = env.fails(&["query", "nope", "--store", store]);
    assert_eq!(code, 1);
    assert!(
        line.contains("no topic \"nope\" in store") && line.contains("(topics: timed)"),
        "{line}"
    );
    let (code, line) = env.fails(&["query", "nope"]);
    assert_eq!(code, 1);
    assert!(line.contains("unknown topic \"nope\" on bus"), "{line}");

    // Not a store: missing, a file, a directory of other things.
    let missing = env.root.join("missing");
    let (code, line) = env.fails(&["query", "timed", "--store", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(line.contains("does not exist"), "{line}");
    let (_, line) = env.fails(&["query", "timed", "--store", paths[0].to_str().unwrap()]);
    assert!(
        line.contains("is not a shmbus store: not a directory"),
        "{line}"
    );
    let other = env.root.join("other");
    std::fs::create_dir_all(other.join("timed")).unwrap();
    std::fs::write(other.join("timed").join("notes.txt"), "hello").unwrap();
    let (_, line) = env.fails(&["query", "timed", "--store", other.to_str().unwrap()]);
    assert!(line.contains("is not a shmbus store"), "{line}");

    // A segment that is not a segment.
    std::fs::write(other.join("timed").join(seg_name(0)), vec![7u8; 4096]).unwrap();
    let (code, line) = env.fails(&["query", "timed", "--store", other.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        line.contains("is corrupt at offset 0: not a shmbus segment"),
        "{line}"
    );

    // Segments of one topic with different schemas.
    let first = write_segments(&env.store(), "mixed", &[vec![(T0, trade(0))]]);
    let next = SegmentReader::open(&first[0]).unwrap().summary().end_pos;
    let second = write_typed_segments(
        &env.store(),
        "mixed",
        next,
        &[vec![(T0, Quote { bid: 1.0 })]],
    );
    let footer = std::fs::read(&second[0]).unwrap();
    let data_end = u64::from_le_bytes(
        footer[footer.len() - 16..footer.len() - 8]
            .try_into()
            .unwrap(),
    );
    let (code, line) = env.fails(&["query", "mixed", "--store", store]);
    assert_eq!(code, 1);
    assert_eq!(
        line,
        format!(
            "shmbus: {} is corrupt at offset {}: its schema differs from that of {}",
            second[0].display(),
            data_end + 96,
            first[0].display()
        )
    );

    // A flipped payload byte in the third record of segment 1: caught when the
    // payload is read, by the checksum of the run (index entry) that holds the record,
    // with the path and the run's offset. (Records carry no checksum of their own.)
    let mut bytes = std::fs::read(&paths[1]).unwrap();
    let mut at = SEG_HEADER;
    for _ in 0..2 {
        let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap());
        at += shmbus::ring::layout::record_size(len as usize) as usize;
    }
    let (run, data_end) = {
        let r = SegmentReader::open(&paths[1]).unwrap();
        let i = r.run_at(at as u64).unwrap();
        (r.index()[i], r.summary().data_end)
    };
    assert!(run.offset < at as u64 && (at as u64) < run.end());
    bytes[at + 40] ^= 0x55;
    std::fs::write(&paths[1], &bytes).unwrap();
    let run_mismatch = format!(
        "shmbus: {} is corrupt at offset {}: run checksum mismatch",
        paths[1].display(),
        run.offset
    );
    let (code, line) = q(&["--where", "qty > 0"]);
    assert_eq!(code, 1);
    assert_eq!(line, run_mismatch);
    // The same when only the output reads payloads.
    let (code, line) = q(&["--select", "qty"]);
    assert_eq!(code, 1);
    assert_eq!(line, run_mismatch);
    // A header-only query does not read that payload, and still counts the record.
    let out = env.ok(&[
        "query", "timed", "--store", store, "--format", "json", "--agg", "count",
    ]);
    assert_eq!(field(&out, "count"), "200");
    // Without its index the sealed segment is read only once the footer's checksum of
    // all its data verifies, which it does not: corrupt at that checksum (the footer's
    // offset + 72), even for a header-only query.
    let idx = paths[1].with_extension("idx");
    let idx_bytes = std::fs::read(&idx).unwrap();
    std::fs::remove_file(&idx).unwrap();
    let (code, line) = q(&["--agg", "count"]);
    assert_eq!(code, 1);
    assert_eq!(
        line,
        format!(
            "shmbus: {} is corrupt at offset {}: data checksum mismatch (and the index is \
             missing or damaged)",
            paths[1].display(),
            data_end + 72
        )
    );
    std::fs::write(&idx, &idx_bytes).unwrap();
    // A broken commit word is caught from the header alone.
    bytes[at] = 0x02;
    std::fs::write(&paths[1], &bytes).unwrap();
    let (code, line) = q(&["--agg", "count"]);
    assert_eq!(code, 1);
    assert!(
        line.ends_with(&format!(
            "is corrupt at offset {at}: commit word is not a committed data record"
        )),
        "{line}"
    );
}
