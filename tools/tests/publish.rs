//! `shmbus publish` end to end: the real binary publishes, this process reads the
//! events back with a subscriber and compares field values.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use shmbus::{Bus, Start};

const PATIENCE: Duration = Duration::from_secs(60);

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
    qty: u32,
    side: Side,
    tags: Vec<String>,
    note: Option<String>,
}

/// A fresh bus directory, removed on drop.
struct TempBus(PathBuf);

impl TempBus {
    fn new(tag: &str) -> TempBus {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shmbus-cli-publish-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempBus(dir)
    }

    fn bus(&self) -> Bus {
        Bus::open_dir(&self.0).expect("open bus")
    }
}

impl Drop for TempBus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn shmbus(bus: &TempBus, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shmbus"));
    cmd.arg("--bus")
        .arg(&bus.0)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run shmbus");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait for shmbus")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("UTF-8 stderr")
}

/// Exit code `code`, nothing on stdout, one `shmbus: ...` line on stderr containing
/// `needle`, and no panic or backtrace.
fn assert_fails(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line on stderr: {err:?}");
    assert!(err.starts_with("shmbus: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

fn positions(o: &Output) -> Vec<u64> {
    stdout(o)
        .lines()
        .map(|l| {
            l.parse()
                .unwrap_or_else(|_| panic!("not a position: {l:?}"))
        })
        .collect()
}

#[test]
fn json_to_a_typed_topic_is_read_back_as_the_type() {
    let dir = TempBus::new("typed");
    let bus = dir.bus();
    let topic = bus
        .topic("orders")
        .event::<Order>()
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();

    let o = shmbus(
        &dir,
        &[
            "--format",
            "table",
            "publish",
            "orders",
            "--count",
            "2",
            "--json",
            r#"{"symbol":"ABCDEFGHIJK","id":7,"price":101.25,"qty":300,"side":"Sell",
               "tags":["a","a longer tag"],"note":null}"#,
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let pos = positions(&o);
    assert_eq!(pos.len(), 2);
    for p in pos {
        let ev = sub.recv_timeout(PATIENCE).unwrap().expect("event");
        assert_eq!(ev.position(), p);
        assert_eq!(ev.id, 7);
        assert_eq!(ev.symbol, "ABCDEFGHIJK");
        assert_eq!(ev.price, 101.25);
        assert_eq!(ev.qty, 300);
        assert!(matches!(ev.side, ArchivedSide::Sell));
        let tags: Vec<&str> = ev.tags.iter().map(|t| t.as_str()).collect();
        assert_eq!(tags, ["a", "a longer tag"]);
        assert!(ev.note.is_none());
    }

    // JSON lines from stdin, one event each; JSON output format.
    let input = (0..5)
        .map(|i| {
            format!(
                r#"{{"id":{i},"symbol":"S{i}","price":{i}.5,"qty":{},"side":"Buy","tags":[],"note":"n{i}"}}"#,
                i * 10
            )
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    let o = shmbus(
        &dir,
        &["--format", "json", "publish", "orders", "--json", "-"],
        Some(&input),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5);
    for (i, line) in lines.iter().enumerate() {
        let ev = sub.recv_timeout(PATIENCE).unwrap().expect("event");
        assert_eq!(*line, format!("{{\"position\":{}}}", ev.position()));
        assert_eq!(ev.id, i as u64);
        assert_eq!(ev.symbol, format!("S{i}"));
        assert_eq!(ev.price, i as f64 + 0.5);
        assert_eq!(ev.qty, i as u32 * 10);
        assert!(matches!(ev.side, ArchivedSide::Buy));
        assert!(ev.tags.is_empty());
        assert_eq!(
            ev.note.as_ref().map(|n| n.as_str()),
            Some(format!("n{i}").as_str())
        );
    }
    assert!(sub.try_recv().unwrap().is_none());
}

#[test]
fn raw_bytes_to_a_raw_topic() {
    let dir = TempBus::new("raw");
    let bus = dir.bus();
    let topic = bus.topic("raw").capacity(1 << 16).open_or_create().unwrap();
    let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();
    let o = shmbus(
        &dir,
        &[
            "--format",
            "table",
            "publish",
            "raw",
            "--hex",
            "0xde ad:be ef",
            "--type-id",
            "7",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o2 = shmbus(
        &dir,
        &[
            "--format", "table", "publish", "raw", "--text", "hello", "--count", "3",
        ],
        None,
    );
    assert!(o2.status.success(), "{}", stderr(&o2));
    let pos: Vec<u64> = positions(&o).into_iter().chain(positions(&o2)).collect();
    assert_eq!(pos.len(), 4);
    let ev = sub.recv_bytes_timeout(PATIENCE).unwrap().expect("event");
    assert_eq!(
        (ev.position(), ev.type_id(), ev.bytes()),
        (pos[0], 7, &[0xde, 0xad, 0xbe, 0xef][..])
    );
    for &p in &pos[1..] {
        let ev = sub.recv_bytes_timeout(PATIENCE).unwrap().expect("event");
        assert_eq!(
            (ev.position(), ev.type_id(), ev.bytes()),
            (p, 0, &b"hello"[..])
        );
    }
}

#[test]
fn bad_input_is_one_clear_line_and_publishes_nothing() {
    let dir = TempBus::new("bad");
    let bus = dir.bus();
    let typed = bus
        .topic("orders")
        .event::<Order>()
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let raw = bus.topic("raw").capacity(1 << 16).open_or_create().unwrap();
    let mut typed_sub = typed.subscriber().start(Start::Earliest).open().unwrap();
    let mut raw_sub = raw.subscriber().start(Start::Earliest).open().unwrap();

    let run = |args: &[&str]| shmbus(&dir, args, None);
    assert_fails(
        &run(&["publish", "orders", "--json", r#"{"id":1,"#]),
        2,
        "--json: invalid JSON: expected a string key at column 9",
    );
    assert_fails(
        &run(&["publish", "orders", "--json", r#"{"id":"one"}"#]),
        2,
        r#"expected a number for "id" at column 7"#,
    );
    assert_fails(
        &run(&[
            "publish",
            "orders",
            "--json",
            r#"{"id":1,"symbol":"S","price":1,"qty":-1,"side":"Buy","tags":[],"note":null}"#,
        ]),
        2,
        r#"-1 is out of range for u32 field "qty""#,
    );
    assert_fails(
        &run(&["publish", "orders", "--json", r#"{"id":1}"#]),
        2,
        r#"missing field "symbol""#,
    );
    assert_fails(
        &run(&["publish", "orders", "--json", r#"{"ident":1}"#]),
        2,
        r#"unknown field "ident""#,
    );
    assert_fails(
        &run(&["publish", "orders", "--hex", "00"]),
        2,
        "carries Order events: publish them with --json",
    );
    assert_fails(
        &run(&["publish", "raw", "--json", "{}"]),
        2,
        "carries raw bytes (no schema)",
    );
    assert_fails(&run(&["publish", "raw", "--hex", "abc"]), 2, "odd number");
    assert_fails(
        &run(&["publish", "raw", "--hex", "zz"]),
        2,
        "not a hex digit",
    );
    assert_fails(
        &run(&["publish", "nope", "--text", "x"]),
        1,
        "unknown topic \"nope\"",
    );
    assert_fails(&run(&["publish", "bad/name", "--text", "x"]), 2, "");
    // clap: no payload given (its message spans several lines, so just the code).
    let o = run(&["publish", "raw"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("panicked"));

    // A bad line on stdin stops there: the lines before it were published.
    let good = r#"{"id":1,"symbol":"S","price":1,"qty":1,"side":"Buy","tags":[],"note":null}"#;
    let o = shmbus(
        &dir,
        &["--format", "table", "publish", "orders", "--json", "-"],
        Some(&format!("{good}\n{{\"id\":2,\"side\":\"Up\"}}\n{good}\n")),
    );
    assert_fails(&o, 1, "stdin line 2: ");
    assert_eq!(positions(&o).len(), 1);
    let ev = typed_sub.recv_timeout(PATIENCE).unwrap().expect("event");
    assert_eq!(ev.id, 1);
    assert!(typed_sub.try_recv().unwrap().is_none());
    assert!(raw_sub.try_recv_bytes().unwrap().is_none());
}
