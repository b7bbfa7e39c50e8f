//! `shmbus export` end to end: events published and recorded with the store's
//! recorder, exported as JSON lines and as CSV (RFC 4180 quoting), checked field by
//! field against the events and the stored headers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shmbus::store::{Fsync, Recorder, RecorderConfig, SegmentReader};
use shmbus::Event as _;

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

#[shmbus::event]
#[derive(Debug, Clone)]
struct Venue {
    name: String,
    lanes: u8,
}

#[shmbus::event]
#[derive(Debug, Clone)]
struct Fill {
    symbol: String,
    side: Side,
    price: f64,
    qty: u32,
    venue: Venue,
    note: Option<String>,
}

fn fills() -> Vec<Fill> {
    let notes = [
        None,
        Some("plain"),
        Some("with, a comma"),
        Some("a \"quoted\" word"),
        Some("two\nlines"),
        Some(" padded "),
    ];
    (0..12)
        .map(|i| Fill {
            symbol: ["ABC", "LONGSYMBOL1"][i % 2].to_string(),
            side: if i % 3 == 0 { Side::Buy } else { Side::Sell },
            price: 100.25 + i as f64,
            qty: i as u32 * 10,
            venue: Venue {
                name: ["XNAS", "XLON"][i % 2].to_string(),
                lanes: i as u8,
            },
            note: notes[i % notes.len()].map(str::to_string),
        })
        .collect()
}

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
            "shmbus-cli-export-{tag}-{}-{}",
            std::process::id(),
            shmbus::now_ns()
        ));
        std::fs::create_dir_all(root.join("bus")).unwrap();
        Env { root }
    }
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_shmbus"))
            .arg("--bus")
            .arg(self.root.join("bus"))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Publishes the fills into topic `fills`, records them, and returns (position,
/// timestamp) of every stored record.
fn record(env: &Env) -> Vec<(u64, u64)> {
    let bus = shmbus::Bus::open_dir(env.root.join("bus")).unwrap();
    let topic = bus
        .topic("fills")
        .event::<Fill>()
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let cfg = RecorderConfig {
        segment_size: 1 << 20,
        fsync: Fsync::Never,
        ..Default::default()
    };
    let store = env.root.join("store");
    let rec = Recorder::spawn(&topic, &store, cfg).unwrap();
    let mut p = topic.publisher().unwrap();
    for f in fills() {
        p.send(&f).unwrap();
    }
    assert!(rec.wait_persisted(topic.tail(), Duration::from_secs(60)));
    rec.stop().unwrap();
    let mut out = Vec::new();
    for s in shmbus::store::list_segments(&store.join("fills")).unwrap() {
        let r = SegmentReader::open(&s.path).unwrap();
        for rec in r.iter() {
            let rec = rec.unwrap();
            out.push((rec.position, rec.timestamp));
        }
    }
    assert_eq!(out.len(), fills().len());
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn json_str(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

#[test]
fn exports_json_lines_and_csv() {
    let env = Env::new("both");
    let headers = record(&env);
    let store = env.root.join("store");
    let store = store.to_str().unwrap();
    let all = fills();
    let type_id = Fill::TYPE_ID;

    let (code, out, err) = env.run(&["export", "fills", "--store", store, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut want =
        String::from("symbol,side,price,qty,venue.name,venue.lanes,note,position,time,type\r\n");
    for (f, (pos, ts)) in all.iter().zip(&headers) {
        want.push_str(&format!(
            "{},{:?},{:?},{},{},{},{},{pos},{ts},{type_id}\r\n",
            f.symbol,
            f.side,
            f.price,
            f.qty,
            f.venue.name,
            f.venue.lanes,
            f.note.as_deref().map(csv_field).unwrap_or_default(),
        ));
    }
    assert_eq!(out, want);

    let (code, out, err) = env.run(&["export", "fills", "--store", store, "--format", "jsonl"]);
    assert_eq!(code, 0, "{err}");
    let mut want = String::new();
    for (f, (pos, ts)) in all.iter().zip(&headers) {
        want.push_str(&format!(
            "{{\"symbol\":\"{}\",\"side\":\"{:?}\",\"price\":{:?},\"qty\":{},\"venue.name\":\"{}\",\
             \"venue.lanes\":{},\"note\":{},\"position\":{pos},\"time\":{ts},\"type\":{type_id}}}\n",
            f.symbol,
            f.side,
            f.price,
            f.qty,
            f.venue.name,
            f.venue.lanes,
            f.note.as_deref().map(json_str).unwrap_or("null".into()),
        ));
    }
    assert_eq!(out, want);
    // JSON lines are the default.
    let (_, default, _) = env.run(&["export", "fills", "--store", store]);
    assert_eq!(default, want);

    // A filter and a time range.
    let from = headers[4].1.to_string();
    let (code, out, err) = env.run(&[
        "export",
        "fills",
        "--store",
        store,
        "--format",
        "csv",
        "--where",
        "side == Buy and venue.name == \"XNAS\"",
        "--from-time",
        &from,
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
    let expect: Vec<usize> = (4..all.len())
        .filter(|&i| all[i].side == Side::Buy && all[i].venue.name == "XNAS")
        .collect();
    assert_eq!(lines.len(), 1 + expect.len(), "{out}");
    for (line, i) in lines[1..].iter().zip(expect) {
        assert!(
            line.starts_with(&format!("{},Buy,{:?},", all[i].symbol, all[i].price)),
            "{line}"
        );
        assert!(line.ends_with(&format!(",{},{},{type_id}", headers[i].0, headers[i].1)));
    }
}

#[test]
fn export_bad_input() {
    let env = Env::new("bad");
    record(&env);
    let store = env.root.join("store");
    let store = store.to_str().unwrap();
    for (args, code, needle) in [
        (
            vec!["export", "fills", "--store", store, "--format", "table"],
            2,
            "[possible values: jsonl, csv]",
        ),
        (
            vec!["ls", "--format", "csv"],
            2,
            "[possible values: table, json]",
        ),
        (
            vec!["export", "nope", "--store", store],
            1,
            "no topic \"nope\" in store",
        ),
        (
            vec![
                "export",
                "fills",
                "--store",
                store,
                "--where",
                "venue.nme == 1",
            ],
            2,
            "column 1: unknown field 'venue.nme'",
        ),
        (
            vec!["export", "fills", "--store", "/proc/self/status"],
            1,
            "is not a shmbus store",
        ),
    ] {
        let (c, out, err) = env.run(&args);
        assert_eq!(c, code, "{args:?}: {out} {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
