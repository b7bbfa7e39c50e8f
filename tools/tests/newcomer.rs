//! The CLI a newcomer drives end to end, with the real binary: `create` (raw, typed
//! from a schema file round-tripped from `info --format json`), `publish --from`
//! (files and stdin, typed and raw, bad lines), the agreed error wording, completions
//! and the man page. Every test has its own fresh temporary bus.

mod cli_util;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use cli_util::*;
use shmbus::Start;

const PATIENCE: Duration = Duration::from_secs(30);

#[shmbus::event]
#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Buy,
    Sell,
}

#[shmbus::event]
#[derive(Debug, Clone, PartialEq)]
struct Order {
    id: u64,
    symbol: String,
    price: f64,
    side: Side,
    tags: Vec<String>,
    note: Option<String>,
}

fn order_json(id: u64) -> String {
    format!(
        r#"{{"id":{id},"symbol":"S{id}","price":{id}.5,"side":"Sell","tags":["a"],"note":null}}"#
    )
}

/// Runs `shmbus --bus <bus> <args>` with `input` on stdin.
fn with_stdin(bus: &str, args: &[&str], input: &[u8]) -> Run {
    let mut child = shmbus_cmd(bus, args).stdin(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    finish(child, Duration::from_secs(60))
}

/// A usage error: exit 2, one line ending with `see shmbus <cmd> --help`.
fn usage_error(r: Run, cmd: &str, needle: &str) {
    let r = r.fails(2, needle);
    let line = r.stderr.trim_end();
    let help = match cmd {
        "" => "see shmbus --help".to_string(),
        c => format!("see shmbus {c} --help"),
    };
    assert!(
        line.ends_with(&help),
        "{line:?} does not end with the help of {cmd}"
    );
}

#[test]
fn create_makes_raw_and_typed_topics_from_info_output() {
    let bus = TempDir::new("create");
    let b = bus.arg();
    // Raw, with a capacity and lossy delivery; the bus directory is made on the way.
    let sub = format!("{b}/nested");
    let r = shmbus(
        &sub,
        &["create", "blobs", "--raw", "--capacity", "64KiB", "--lossy"],
    )
    .ok();
    assert_eq!(field(&r.stdout, "type"), Some("raw"), "{r:?}");
    let info = shmbus(&sub, &["info", "blobs", "--format", "json"]).ok();
    assert_eq!(num(&info.stdout, "capacity"), 64 << 10);
    assert_eq!(field(&info.stdout, "mode"), Some("lossy"));
    assert!(info.stdout.contains("\"schema\":null"), "{info:?}");
    // The defaults: raw, 1 MiB, reliable.
    shmbus(&b, &["create", "plain"]).ok();
    let info = shmbus(&b, &["info", "plain"]).ok();
    assert_eq!(num(&info.stdout, "capacity"), 1 << 20);
    assert_eq!(field(&info.stdout, "mode"), Some("reliable"));

    // Typed: a Rust producer's topic, its schema printed by info and fed to create.
    bus.bus()
        .topic("orders")
        .event::<Order>()
        .open_or_create()
        .unwrap();
    let info = shmbus(&b, &["info", "orders", "--format", "json"]).ok();
    let whole = bus.path.join("orders-info.json");
    std::fs::write(&whole, &info.stdout).unwrap();
    let line: serde_json::Value = serde_json::from_str(info.stdout.trim()).unwrap();
    let only = bus.path.join("orders-schema.json");
    std::fs::write(&only, line["schema"].to_string()).unwrap();
    for (topic, file) in [("copy", &whole), ("copy2", &only)] {
        let r = shmbus(&b, &["create", topic, "--schema", file.to_str().unwrap()]).ok();
        assert_eq!(field(&r.stdout, "type"), Some("Order"), "{r:?}");
        // Indistinguishable from the Rust type's topic: it opens with the type.
        bus.bus().topic(topic).event::<Order>().open().unwrap();
    }
    // So events published as JSON come out as the Rust type.
    let t = bus.bus().topic("copy").event::<Order>().open().unwrap();
    let mut s = t.subscriber().start(Start::Earliest).open().unwrap();
    shmbus(&b, &["publish", "copy", "--json", &order_json(7)]).ok();
    let ev = s.recv_timeout(PATIENCE).unwrap().expect("an event");
    assert_eq!((ev.id.to_native(), ev.symbol.as_str()), (7, "S7"));
    assert!(matches!(ev.side, ArchivedSide::Sell));
    // The schema file from stdin, written by hand without offsets.
    let hand = r#"{"type":"Tick","fields":[{"name":"symbol","kind":"String"},
                  {"name":"price","kind":"f64"},{"name":"side","kind":"Side"}],
                  "types":{"Side":{"variants":[{"name":"Buy"},{"name":"Sell"}]}}}"#;
    with_stdin(&b, &["create", "ticks", "--schema", "-"], hand.as_bytes()).ok();
    let j = r#"{"symbol":"AB","price":1.5,"side":"Buy"}"#;
    shmbus(&b, &["publish", "ticks", "--json", j]).ok();
    let tail = shmbus(&b, &["tail", "ticks"]).ok();
    assert!(
        tail.stdout
            .contains(r#""event":{"symbol":"AB","price":1.5,"side":"Buy"}"#),
        "{tail:?}"
    );

    // Errors: an existing topic, bad schema files, bad settings, bad usage.
    shmbus(&b, &["create", "orders"]).fails(1, "topic \"orders\" already exists");
    let bad = bus.path.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"type":"X","fields":[{"name":"a","kind":"u128"}]}"#,
    )
    .unwrap();
    let badp = bad.to_str().unwrap();
    shmbus(&b, &["create", "x", "--schema", badp]).fails(1, "unknown kind \"u128\"");
    std::fs::write(&bad, "{not json").unwrap();
    shmbus(&b, &["create", "x", "--schema", badp]).fails(1, "bad schema file");
    std::fs::write(&bad, r#"{"topic":"t","schema":null}"#).unwrap();
    shmbus(&b, &["create", "x", "--schema", badp]).fails(1, "raw bytes");
    shmbus(&b, &["create", "x", "--schema", "/nonexistent.json"])
        .fails(1, "cannot read schema file /nonexistent.json");
    usage_error(
        shmbus(&b, &["create", "x", "--capacity", "1000"]),
        "create",
        "power of two",
    );
    usage_error(
        shmbus(&b, &["create", "x", "--capacity", "lots"]),
        "create",
        "is not a size",
    );
    usage_error(
        shmbus(&b, &["create", "x", "--raw", "--schema", badp]),
        "create",
        "cannot be used with",
    );
    usage_error(shmbus(&b, &["create", "../x"]), "create", "bad topic name");
    assert!(!bus.path.join("x.ring").exists());
}

#[test]
fn publish_from_files_and_stdin_with_back_pressure_and_bad_lines() {
    let bus = TempDir::new("from");
    let b = bus.arg();
    let typed = bus
        .bus()
        .topic("orders")
        .event::<Order>()
        .capacity(4096)
        .open_or_create()
        .unwrap();
    let mut orders = typed.subscriber().start(Start::Earliest).open().unwrap();
    // More events than the small reliable ring holds: the publisher waits for us.
    let n = 200;
    let mut file = String::new();
    for i in 0..n {
        file.push_str(&order_json(i));
        file.push_str(if i == 5 { "\n\n" } else { "\n" });
    }
    let path = bus.path.join("orders.jsonl");
    std::fs::write(&path, &file).unwrap();
    let child = shmbus_cmd(&b, &["publish", "orders", "--from", path.to_str().unwrap()])
        .spawn()
        .unwrap();
    for i in 0..n {
        let ev = orders.recv_timeout(PATIENCE).unwrap().expect("an event");
        assert_eq!(ev.id, i);
    }
    let r = finish(child, Duration::from_secs(60)).ok();
    assert_eq!(num(&r.stdout, "events"), n, "{r:?}");
    assert_eq!(num(&r.stdout, "skipped"), 0, "{r:?}");
    assert!(field(&r.stdout, "seconds").is_some(), "{r:?}");
    // From stdin, a table summary.
    let r = with_stdin(
        &b,
        &["--format", "table", "publish", "orders", "--from", "-"],
        format!("{}\n", order_json(1000)).as_bytes(),
    )
    .ok();
    assert!(r.stdout.starts_with("published 1 events"), "{r:?}");
    assert_eq!(orders.recv_timeout(PATIENCE).unwrap().unwrap().id, 1000);

    // A bad line stops there (exit 1, naming the line), after the lines before it.
    let input = format!("{}\n{{\"id\":\"two\"}}\n{}\n", order_json(1), order_json(3));
    let r = with_stdin(&b, &["publish", "orders", "--from", "-"], input.as_bytes());
    let r = r.fails(1, "stdin: line 2: ");
    assert_eq!(num(&r.stdout, "events"), 1, "{r:?}");
    assert_eq!(orders.recv_timeout(PATIENCE).unwrap().unwrap().id, 1);
    assert!(orders.try_recv().unwrap().is_none());
    // With --skip-bad it is counted and skipped, and the exit is 0.
    let r = with_stdin(
        &b,
        &["publish", "orders", "--from", "-", "--skip-bad"],
        input.as_bytes(),
    )
    .ok();
    assert_eq!(
        (num(&r.stdout, "events"), num(&r.stdout, "skipped")),
        (2, 1),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("skipped"),
        "{r:?}"
    );
    let got: Vec<u64> = (0..2)
        .map(|_| {
            orders
                .recv_timeout(PATIENCE)
                .unwrap()
                .unwrap()
                .id
                .to_native()
        })
        .collect();
    assert_eq!(got, [1, 3]);

    // Raw topics: one record per line, or length-prefixed binary records.
    let raw = bus.bus().topic("raw").open_or_create().unwrap();
    let mut rs = raw.subscriber().start(Start::Earliest).open().unwrap();
    with_stdin(
        &b,
        &["publish", "raw", "--from", "-", "--type-id", "9"],
        b"one\r\n\ntwo\n",
    )
    .ok();
    let mut framed = Vec::new();
    for rec in [&b"a\nb"[..], &[0u8, 255, 10]] {
        framed.extend_from_slice(&(rec.len() as u32).to_le_bytes());
        framed.extend_from_slice(rec);
    }
    let fpath = bus.path.join("framed.bin");
    std::fs::write(&fpath, &framed).unwrap();
    let f = fpath.to_str().unwrap();
    shmbus(&b, &["publish", "raw", "--from", f, "--length-prefixed"]).ok();
    let mut got = Vec::new();
    while let Some(ev) = rs.recv_bytes_timeout(Duration::from_millis(500)).unwrap() {
        got.push((ev.type_id(), ev.bytes().to_vec()));
    }
    let want: Vec<(u64, Vec<u8>)> = vec![
        (9, b"one".to_vec()),
        (9, b"two".to_vec()),
        (0, b"a\nb".to_vec()),
        (0, vec![0, 255, 10]),
    ];
    assert_eq!(got, want);
    // A truncated frame names its record; typed topics take no frames.
    std::fs::write(&fpath, [5u8, 0, 0, 0, 1]).unwrap();
    shmbus(&b, &["publish", "raw", "--from", f, "--length-prefixed"]).fails(1, "record 1");
    usage_error(
        shmbus(&b, &["publish", "orders", "--from", f, "--length-prefixed"]),
        "publish",
        "--length-prefixed is for raw topics",
    );
    usage_error(
        shmbus(&b, &["publish", "raw", "--skip-bad", "--text", "x"]),
        "publish",
        "--from",
    );
    shmbus(&b, &["publish", "raw", "--from", "/nonexistent"]).fails(1, "cannot read /nonexistent");
}

#[test]
fn errors_agree_across_commands() {
    let bus = TempDir::new("words");
    let b = bus.arg();
    shmbus(&b, &["create", "t"]).ok();
    let store = bus.path.join("no-store");
    let st = store.to_str().unwrap();
    // An unknown topic: the same words from every command that opens one.
    for args in [
        &["info", "nope"][..],
        &["tail", "nope"],
        &["stat", "nope"],
        &["publish", "nope", "--text", "x"],
        &["query", "nope"],
        &["record", "nope", "--store", st],
    ] {
        shmbus(&b, args).fails(1, "unknown topic \"nope\" on bus");
    }
    // A missing store.
    for args in [
        &["verify", st][..],
        &["query", "t", "--store", st],
        &["export", "t", "--store", st],
        &["tail", "t", "--store", st],
        &["replay", "t", "--store", st, "--to", "t"],
    ] {
        shmbus(&b, args).fails(1, &format!("store {st} does not exist"));
    }
    // A bad time names its option; usage errors end with where the help is.
    for (args, cmd, needle) in [
        (
            &["tail", "t", "--from-time", "x"][..],
            "tail",
            "bad --from-time \"x\"",
        ),
        (
            &["query", "t", "--to-time", "soon"],
            "query",
            "bad --to-time \"soon\"",
        ),
        (
            &["query", "t", "--window", "fast"],
            "query",
            "bad duration \"fast\"",
        ),
        (
            &["stat", "--interval", "soon"],
            "stat",
            "bad duration \"soon\"",
        ),
        (
            &["publish", "t", "--text", "x", "--timeout", "x"],
            "publish",
            "bad duration",
        ),
        (
            &["tail", "t", "--bogus"],
            "tail",
            "unexpected argument '--bogus'",
        ),
        (&["tail"], "tail", "<TOPIC>"),
        (&["publish", "t"], "publish", "required"),
        (&["query", "t", "--where", "a >"], "query", "bad expression"),
        (
            &["ls", "--format", "csv"],
            "ls",
            "possible values: table, json",
        ),
    ] {
        usage_error(shmbus(&b, args), cmd, needle);
    }
    usage_error(shmbus(&b, &["lss"]), "", "'ls'");
    // Durations agree: bare seconds and units everywhere.
    for t in ["1", "0.5", "500ms", "2s", "1m"] {
        shmbus(&b, &["publish", "t", "--text", "x", "--timeout", t]).ok();
    }
    for i in ["0.05", "50ms"] {
        shmbus(&b, &["stat", "--interval", i]).ok();
    }
    shmbus(&b, &["query", "t", "--agg", "count", "--window", "5"]).ok();
    // csv where it works.
    let q = shmbus(&b, &["query", "t", "--select", "len", "--format", "csv"]).ok();
    assert_eq!(q.lines()[0], "len", "{q:?}");
    // A healthy bus: doctor says so in JSON; gc --remove takes away an emptied bus.
    let d = shmbus(&b, &["doctor", "--format", "json"]).ok();
    assert!(
        d.stdout.starts_with("{\"ok\":true,\"problems\":[]"),
        "{d:?}"
    );
    let gone = format!("{b}/gone");
    shmbus(&gone, &["create", "x"]).ok();
    shmbus(&gone, &["gc", "--remove"]).ok();
    assert!(
        !std::path::Path::new(&gone).exists(),
        "the emptied bus is still there"
    );
}

#[test]
fn completions_and_the_man_page() {
    let bus = TempDir::new("compl");
    let b = bus.arg();
    for shell in ["bash", "zsh", "fish"] {
        let r = shmbus(&b, &["completions", shell]).ok();
        for sub in ["create", "publish", "tail", "query", "completions"] {
            assert!(r.stdout.contains(sub), "{shell} script lacks {sub}");
        }
    }
    for args in [&["man"][..], &["completions", "--man"]] {
        let r = shmbus(&b, args).ok();
        assert!(r.stdout.contains(".TH shmbus 1"), "{r:?}");
        assert!(
            r.stdout.contains("create") && r.stdout.contains("publish"),
            "{r:?}"
        );
    }
    usage_error(
        shmbus(&b, &["completions", "tcsh"]),
        "completions",
        "invalid value 'tcsh'",
    );
    assert_eq!(
        std::fs::read_dir(&bus.path).unwrap().count(),
        0,
        "nothing was created"
    );
}
