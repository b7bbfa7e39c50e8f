//! End-to-end tests of the `shmbus` binary: topics created and written by separate
//! helper processes (this test binary re-spawned in a role), then inspected, tailed,
//! recorded, verified, replayed, collected and diagnosed through the real CLI.

mod cli_util;

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use cli_util::*;
use shmbus::{Start, SubscriberState};

const LIMIT: Duration = Duration::from_secs(30);

/// The helper processes' entry point (does nothing when run as a normal test).
#[test]
fn helper() {
    let Some(role) = role() else { return };
    let dir = std::env::var("SHMBUS_CLI_TEST_BUS").unwrap();
    let bus = shmbus::Bus::open_dir(&dir).unwrap();
    let topic_name = std::env::var("T_TOPIC").unwrap_or_else(|_| "trades".into());
    let env_u64 = |k: &str| {
        std::env::var(k)
            .map(|v| v.parse::<u64>().unwrap())
            .unwrap_or(0)
    };
    match role.as_str() {
        "publish" => {
            let topic = bus
                .topic(&topic_name)
                .event::<Trade>()
                .open_or_create()
                .unwrap();
            let mut p = topic.publisher().unwrap();
            let first = env_u64("T_FIRST");
            for i in first..first + env_u64("T_COUNT") {
                let pos = p.send(&trade(i)).unwrap();
                println!("pos {pos}");
            }
        }
        "publish_raw" => {
            let topic = bus.topic(&topic_name).open_or_create().unwrap();
            let mut p = topic.publisher().unwrap();
            for i in 0..env_u64("T_COUNT") {
                let pos = p.send_bytes(7, format!("raw-{i}").as_bytes()).unwrap();
                println!("pos {pos}");
            }
        }
        "create" => {
            bus.topic(&topic_name)
                .event::<Trade>()
                .open_or_create()
                .unwrap();
        }
        "dead" => {
            // Register a producer and a named subscriber, then exit without dropping
            // them: the slots stay behind with a pid that is gone.
            let topic = bus
                .topic(&topic_name)
                .event::<Trade>()
                .open_or_create()
                .unwrap();
            let mut p = topic.publisher().unwrap();
            p.send(&trade(1)).unwrap();
            let sub = topic
                .subscriber()
                .named("keeper")
                .start(Start::Earliest)
                .open()
                .unwrap();
            let anon = topic.subscriber().open().unwrap();
            std::mem::forget((p, sub, anon));
            println!("ready");
            std::process::exit(0);
        }
        "hold" => {
            let topic = bus
                .topic(&topic_name)
                .event::<Trade>()
                .open_or_create()
                .unwrap();
            let mut p = topic.publisher().unwrap();
            p.send(&trade(0)).unwrap();
            println!("ready");
            // Until the test kills it (bounded, so a failed test leaves nothing behind).
            std::thread::sleep(Duration::from_secs(120));
            drop(p);
        }
        other => panic!("unknown role {other}"),
    }
}

/// Spawns a role that stays alive and waits for its "ready" line.
fn spawn_ready(role: &str, bus: &std::path::Path, topic: &str) -> std::process::Child {
    let mut c = spawn_role(role, bus, &[("T_TOPIC", topic.into())]);
    let out = c.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if line.contains("ready") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(LIMIT).expect("helper never became ready");
    c
}

fn lines_of(r: &Run) -> Vec<String> {
    r.lines().into_iter().map(String::from).collect()
}

#[test]
fn ls_info_stat_show_topics_participants_and_schema() {
    let bus = TempDir::new("ls");
    let b = bus.arg();
    let positions = publish_trades(&bus.path, "trades", 0, 20);
    assert_eq!(positions.len(), 20);
    run_role(
        "publish_raw",
        &bus.path,
        &[("T_TOPIC", "blobs".into()), ("T_COUNT", "3".into())],
    );
    // A named subscriber that is detached (its process dropped it): state in the ring.
    {
        let t = bus.bus().topic("trades").open().unwrap();
        let s = t
            .subscriber()
            .named("audit")
            .start(Start::Position(positions[5]))
            .open()
            .unwrap();
        drop(s);
    }

    let ls = shmbus(&b, &["ls", "--format", "json"]).ok();
    let lines = lines_of(&ls);
    assert_eq!(lines.len(), 2, "{ls:?}");
    let trades = lines
        .iter()
        .find(|l| l.contains("\"topic\":\"trades\""))
        .unwrap();
    assert_eq!(field(trades, "type"), Some("Trade"));
    assert_eq!(field(trades, "mode"), Some("reliable"));
    assert_eq!(num(trades, "capacity"), 1 << 20);
    assert_eq!(num(trades, "producers_alive"), 0);
    // The publishing processes are gone; the events they published still count.
    assert_eq!(num(trades, "events"), 20);
    assert_eq!(num(trades, "subscribers_detached"), 1);
    let topic = bus.bus().topic("trades").open().unwrap();
    assert_eq!(num(trades, "tail"), topic.tail());
    assert!(topic.tail() > *positions.last().unwrap());
    let blobs = lines
        .iter()
        .find(|l| l.contains("\"topic\":\"blobs\""))
        .unwrap();
    assert_eq!(field(blobs, "type"), Some("raw"));
    assert_eq!(num(blobs, "events"), 3);

    let table = shmbus(&b, &["ls", "--format", "table"]).ok();
    assert!(
        table.stdout.contains("TOPIC") && table.stdout.contains("Trade"),
        "{table:?}"
    );

    let info = shmbus(&b, &["info", "trades", "--format", "json"]).ok();
    let j = &info.stdout;
    for f in ["symbol", "price", "qty", "buy"] {
        assert!(
            j.contains(&format!("\"name\":\"{f}\"")),
            "field {f} missing: {j}"
        );
    }
    assert!(
        j.contains("\"kind\":\"String\"") && j.contains("\"kind\":\"f64\""),
        "{j}"
    );
    let sc = <Trade as shmbus::Event>::schema();
    for f in sc.fields() {
        assert!(
            j.contains(&format!(
                "\"name\":\"{}\",\"kind\":\"{}\",\"offset\":{}",
                f.name, f.kind, f.offset
            )),
            "{j}"
        );
    }
    assert_eq!(num(j, "tail"), topic.tail());
    assert_eq!(num(j, "consumer_timeout_ns"), 10_000_000_000);
    assert_eq!(num(j, "sleepers"), 0);
    assert_eq!(num(j, "unblock_holder_pid"), 0);
    assert!(num(j, "consumer_generation") >= 1, "{j}");
    assert!(j.contains("\"name\":\"audit\""), "{j}");
    assert!(j.contains("\"state\":\"detached\""), "{j}");
    assert!(j.contains(&format!("\"position\":{}", positions[5])), "{j}");
    assert!(
        j.contains(&format!("\"lag\":{}", topic.tail() - positions[5])),
        "{j}"
    );
    let info_t = shmbus(&b, &["info", "trades", "--format", "table"]).ok();
    assert!(info_t.stdout.contains("schema Trade") && info_t.stdout.contains("audit"));

    // With a live producer holding the topic, stat and info see it.
    let holder = spawn_ready("hold", &bus.path, "trades");
    let info = shmbus(&b, &["info", "trades"]).ok();
    assert!(
        info.stdout
            .contains(&format!("\"pid\":{},\"alive\":true", holder.id())),
        "{info:?}"
    );
    let stat = shmbus(&b, &["stat", "--interval", "100ms"]).ok();
    let l = lines_of(&stat);
    assert_eq!(l.len(), 1, "{stat:?}");
    assert!(l[0].contains("\"topic\":\"trades\"") && l[0].contains("\"events_per_s\":"));
    assert!(l[0].contains("\"producers_alive\":1"), "{stat:?}");
    assert!(l[0].contains("\"name\":\"audit\""), "{stat:?}");
    // The detached named subscriber has no process, and holds producers back.
    assert!(l[0].contains("\"name\":\"audit\",\"pid\":null"), "{stat:?}");
    let t = &l[0][l[0].find("\"topic\":\"trades\"").unwrap()..];
    assert_eq!(num(t, "max_lag"), num(t, "tail") - positions[5], "{stat:?}");
    let watch = shmbus(
        &b,
        &[
            "stat",
            "trades",
            "--watch",
            "--count",
            "3",
            "--interval",
            "50ms",
        ],
    )
    .ok();
    assert_eq!(watch.lines().len(), 3, "{watch:?}");
    assert!(watch
        .lines()
        .iter()
        .all(|l| l.contains("\"topic\":\"trades\"") && !l.contains("blobs")));
    let mut holder = holder;
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn tail_prints_decoded_events_from_positions_times_and_raw_topics() {
    let bus = TempDir::new("tail");
    let b = bus.arg();
    let pos = publish_trades(&bus.path, "trades", 0, 20);

    let last3 = shmbus(&b, &["tail", "trades", "-n", "3"]).ok();
    let l = lines_of(&last3);
    assert_eq!(l.len(), 3, "{last3:?}");
    for (line, i) in l.iter().zip(17..20u64) {
        assert_eq!(num(line, "position"), pos[i as usize]);
        let want = format!(
            "\"event\":{{\"symbol\":\"{}\",\"price\":{}.0,\"qty\":{i},\"buy\":{}}}",
            trade(i).symbol,
            100 + i,
            i % 3 == 0
        );
        assert!(line.contains(&want), "{line} lacks {want}");
        assert!(field(line, "time").unwrap().ends_with('Z'));
    }
    // Default: the last 10.
    assert_eq!(shmbus(&b, &["tail", "trades"]).ok().lines().len(), 10);

    let from = shmbus(
        &b,
        &["tail", "trades", "--from-position", &pos[15].to_string()],
    )
    .ok();
    let l = lines_of(&from);
    assert_eq!(l.len(), 5, "{from:?}");
    assert_eq!(num(&l[0], "position"), pos[15]);
    let capped = shmbus(
        &b,
        &[
            "tail",
            "trades",
            "--from-position",
            &pos[2].to_string(),
            "-n",
            "2",
        ],
    )
    .ok();
    let l = lines_of(&capped);
    assert_eq!(
        l.iter().map(|x| num(x, "position")).collect::<Vec<_>>(),
        vec![pos[2], pos[3]]
    );

    assert_eq!(
        shmbus(&b, &["tail", "trades", "--from-time", "-1h"])
            .ok()
            .lines()
            .len(),
        20
    );
    assert_eq!(
        shmbus(
            &b,
            &["tail", "trades", "--from-time", "2500-01-01T00:00:00Z"]
        )
        .ok()
        .lines()
        .len(),
        0
    );
    // By time: the first record in log order whose timestamp is at or after it.
    let all = shmbus(&b, &["tail", "trades", "-n", "20"]).ok();
    let stamps: Vec<u64> = all.lines().iter().map(|l| num(l, "timestamp_ns")).collect();
    let t5 = stamps[5];
    let first = stamps.iter().position(|&t| t >= t5).unwrap();
    let by_time = shmbus(&b, &["tail", "trades", "--from-time", &t5.to_string()]).ok();
    assert_eq!(num(by_time.lines()[0], "position"), pos[first]);
    assert_eq!(by_time.lines().len(), 20 - first);
    let rfc = shmbus(
        &b,
        &[
            "tail",
            "trades",
            "--from-time",
            field(all.lines()[5], "time").unwrap(),
        ],
    )
    .ok();
    assert_eq!(rfc.lines().len(), 20 - first);

    let table = shmbus(&b, &["tail", "trades", "-n", "1", "--format", "table"]).ok();
    assert!(
        table.stdout.contains(&pos[19].to_string()) && table.stdout.contains("\"price\":119.0")
    );

    run_role(
        "publish_raw",
        &bus.path,
        &[("T_TOPIC", "blobs".into()), ("T_COUNT", "2".into())],
    );
    let raw = shmbus(&b, &["tail", "blobs"]).ok();
    let l = lines_of(&raw);
    assert_eq!(l.len(), 2);
    assert_eq!(field(&l[1], "payload_hex"), Some("7261772d31")); // "raw-1"
    assert_eq!(num(&l[1], "type_id"), 7);
    let b64 = shmbus(
        &b,
        &["tail", "blobs", "-n", "1", "--raw-encoding", "base64"],
    )
    .ok();
    assert_eq!(field(&b64.stdout, "payload_base64"), Some("cmF3LTE="));

    // A position that is not a record boundary, an unknown topic, a bad time.
    shmbus(&b, &["tail", "trades", "--from-position", "13"]).fails(1, "not a record boundary");
    shmbus(&b, &["tail", "nope"]).fails(1, "unknown topic \"nope\"");
    shmbus(&b, &["tail", "trades", "--from-time", "yesterday"])
        .fails(2, "cannot read time \"yesterday\"");
    shmbus(
        &b,
        &["tail", "trades", "--from-time", "2026-02-30T00:00:00Z"],
    )
    .fails(2, "no such day");
}

#[test]
fn tail_turns_a_dead_producers_claim_into_a_gap_and_goes_on() {
    let bus = TempDir::new("gap");
    let b = bus.arg();
    publish_trades(&bus.path, "trades", 0, 2);
    // A producer killed between claim and commit (the library's fault point).
    let mut dying = spawn_role(
        "publish",
        &bus.path,
        &[
            ("T_FIRST", "50".into()),
            ("T_COUNT", "1".into()),
            ("SHMBUS_FAULT", "after_claim".into()),
        ],
    );
    assert!(!wait_limit(&mut dying, LIMIT).success());
    publish_trades(&bus.path, "trades", 60, 2);
    let r = shmbus(&b, &["tail", "trades", "-n", "10"]).ok();
    let qty: Vec<u64> = r.lines().iter().map(|l| num(l, "qty")).collect();
    assert_eq!(qty, vec![0, 1, 60, 61], "{r:?}");
    assert!(r.stderr.contains("skipped 1 gap record(s)"), "{r:?}");
    assert_no_panic(&r.stderr);
    let info = shmbus(&b, &["info", "trades"]).ok();
    assert_eq!(num(&info.stdout, "gaps"), 1, "{info:?}");
}

/// Reads a child's stdout lines on a thread.
fn line_reader(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn live_subscribers(bus: &TempDir, topic: &str) -> usize {
    bus.bus()
        .topic(topic)
        .open()
        .map(|t| {
            t.subscribers()
                .iter()
                .filter(|s| s.state == SubscriberState::Active && s.alive)
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn tail_follow_prints_new_events_and_stops_on_sigterm() {
    let bus = TempDir::new("follow");
    let b = bus.arg();
    publish_trades(&bus.path, "trades", 0, 2);
    let mut tail = shmbus_cmd(&b, &["tail", "trades", "-f", "-n", "1"])
        .spawn()
        .unwrap();
    let rx = line_reader(&mut tail);
    let first = rx.recv_timeout(LIMIT).expect("tail printed nothing");
    assert!(first.contains("\"qty\":1"), "{first}");
    assert!(wait_until(LIMIT, || live_subscribers(&bus, "trades") == 1));
    let pos = publish_trades(&bus.path, "trades", 100, 3);
    for (i, p) in pos.iter().enumerate() {
        let line = rx.recv_timeout(LIMIT).expect("followed event missing");
        assert_eq!(num(&line, "position"), *p);
        assert!(line.contains(&format!("\"qty\":{}", 100 + i)), "{line}");
    }
    signal(&tail, libc::SIGTERM);
    let st = wait_limit(&mut tail, LIMIT);
    assert!(
        st.success(),
        "tail -f did not exit cleanly on SIGTERM: {st:?}"
    );
    assert!(wait_until(LIMIT, || live_subscribers(&bus, "trades") == 0));

    // `shmbus tail -f | head -1`: when its stdout closes it ends normally and detaches.
    let mut tail = shmbus_cmd(&b, &["tail", "trades", "-f", "-n", "1"])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(tail.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("\"qty\":102"), "{first}");
    drop(out);
    assert!(wait_until(LIMIT, || live_subscribers(&bus, "trades") == 1));
    publish_trades(&bus.path, "trades", 200, 2);
    let st = wait_limit(&mut tail, LIMIT);
    assert!(st.success(), "{st:?}");
    let pid = tail.id();
    let topic = bus.bus().topic("trades").open().unwrap();
    assert!(
        topic.subscribers().iter().all(|s| s.pid != pid),
        "slot left behind"
    );
}

/// Runs `shmbus record` until everything now in the topic is persisted.
fn start_recorder(bus: &TempDir, store: &TempDir, extra: &[&str]) -> std::process::Child {
    let mut args = vec!["record", "trades", "--store", store.path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let rec = shmbus_cmd(&bus.arg(), &args).spawn().unwrap();
    let topic = bus.bus().topic("trades").open().unwrap();
    let tail = topic.tail();
    assert!(
        wait_until(LIMIT, || topic.subscribers().iter().any(|s| s
            .name
            .as_deref()
            == Some("shmbus-recorder")
            && s.position == tail)),
        "the recorder did not persist up to {tail}"
    );
    rec
}

#[test]
fn record_verify_tail_store_and_replay() {
    let bus = TempDir::new("rec");
    let store = TempDir::new("rec-store");
    let b = bus.arg();
    let s = store.arg();
    let pos = publish_trades(&bus.path, "trades", 0, 50);

    let rec = start_recorder(&bus, &store, &["--fsync", "batch"]);
    signal(&rec, libc::SIGTERM);
    let run = finish(rec, LIMIT);
    assert_eq!(run.code, 0, "{run:?}");
    assert_no_panic(&run.stderr);
    assert_eq!(num(&run.stdout, "records"), 50, "{run:?}");
    assert!(run.stderr.contains("recording \"trades\""), "{run:?}");

    let v = shmbus(&b, &["verify", &s]).ok();
    let l = lines_of(&v);
    assert_eq!(l.len(), 1, "{v:?}");
    assert_eq!(num(&l[0], "records"), 50);
    assert_eq!(field(&l[0], "ok"), Some("true"));

    // Stored events, then 5 that only the ring holds: one stream, no gap, no duplicate.
    let live = publish_trades(&bus.path, "trades", 50, 5);
    let all = shmbus(
        &b,
        &["tail", "trades", "--store", &s, "--from-position", "0"],
    )
    .ok();
    let l = lines_of(&all);
    assert_eq!(l.len(), 55, "{all:?}");
    let want: Vec<u64> = pos.iter().chain(&live).copied().collect();
    assert_eq!(
        l.iter().map(|x| num(x, "position")).collect::<Vec<_>>(),
        want
    );
    assert!(l[..50].iter().all(|x| field(x, "source") == Some("store")));
    assert!(l[50..].iter().all(|x| field(x, "source") == Some("ring")));
    assert!(l[54].contains("\"qty\":54"));
    let last = shmbus(&b, &["tail", "trades", "--store", &s, "-n", "2"]).ok();
    assert_eq!(
        last.lines()
            .iter()
            .map(|x| num(x, "qty"))
            .collect::<Vec<_>>(),
        vec![53, 54]
    );
    let from = shmbus(
        &b,
        &[
            "tail",
            "trades",
            "--store",
            &s,
            "--from-position",
            &pos[48].to_string(),
            "-n",
            "3",
        ],
    )
    .ok();
    assert_eq!(
        from.lines()
            .iter()
            .map(|x| num(x, "qty"))
            .collect::<Vec<_>>(),
        vec![48, 49, 50]
    );

    // tail --store -f crosses into the live ring and keeps following it.
    let mut follow = shmbus_cmd(
        &b,
        &[
            "tail",
            "trades",
            "--store",
            &s,
            "--from-position",
            &pos[49].to_string(),
            "-f",
        ],
    )
    .spawn()
    .unwrap();
    let rx = line_reader(&mut follow);
    for q in 49..55 {
        let line = rx.recv_timeout(LIMIT).expect("missing event");
        assert_eq!(num(&line, "qty"), q, "{line}");
    }
    let more = publish_trades(&bus.path, "trades", 55, 1);
    let line = rx.recv_timeout(LIMIT).expect("missing live event");
    assert_eq!(num(&line, "position"), more[0]);
    signal(&follow, libc::SIGTERM);
    assert!(wait_limit(&mut follow, LIMIT).success());

    // With the topic gone from the bus, the store alone is read.
    let other_bus = TempDir::new("rec-empty");
    let only = shmbus(
        &other_bus.arg(),
        &["tail", "trades", "--store", &s, "-n", "1"],
    )
    .ok();
    assert_eq!(num(&only.stdout, "qty"), 49);
    shmbus(&other_bus.arg(), &["tail", "trades", "--store", &s, "-f"]).fails(1, "cannot follow");

    // Replay into another topic of the same type, as fast as possible.
    run_role("create", &bus.path, &[("T_TOPIC", "copy".into())]);
    let r = shmbus(
        &b,
        &[
            "replay", "trades", "--store", &s, "--to", "copy", "--speed", "max",
        ],
    )
    .ok();
    assert_eq!(num(&r.stdout, "events"), 50, "{r:?}");
    let copy = shmbus(&b, &["tail", "copy", "-n", "100"]).ok();
    let l = lines_of(&copy);
    assert_eq!(l.len(), 50);
    for (i, line) in l.iter().enumerate() {
        assert!(
            line.contains(&format!("\"price\":{}.0,\"qty\":{i}", 100 + i)),
            "{line}"
        );
    }
    // Paced replay from a position: 3 events recorded within a few ms, replayed at 2x.
    let r = shmbus(
        &b,
        &[
            "replay",
            "trades",
            "--store",
            &s,
            "--to",
            "copy",
            "--speed",
            "2",
            "--from-position",
            &pos[47].to_string(),
        ],
    )
    .ok();
    assert_eq!(num(&r.stdout, "events"), 3);
    // A raw destination accepts anything; a topic of another type refuses.
    run_role(
        "publish_raw",
        &bus.path,
        &[("T_TOPIC", "blobs".into()), ("T_COUNT", "1".into())],
    );
    shmbus(
        &b,
        &[
            "replay", "trades", "--store", &s, "--to", "blobs", "--speed", "0",
        ],
    )
    .ok();
    shmbus(&b, &["replay", "trades", "--store", &s, "--to", "nope"])
        .fails(1, "unknown topic \"nope\"");
    shmbus(&b, &["replay", "nope", "--store", &s, "--to", "copy"])
        .fails(1, "has no topic \"nope\"");
    let r = shmbus(
        &b,
        &[
            "replay", "trades", "--store", &s, "--to", "copy", "--speed", "fast",
        ],
    );
    assert_eq!(r.code, 2);
    assert_no_panic(&r.stderr);
}

#[test]
fn replay_create_makes_a_topic_of_the_stored_event_type() {
    let bus = TempDir::new("create");
    let store = TempDir::new("create-store");
    let b = bus.arg();
    let s = store.arg();
    publish_trades(&bus.path, "trades", 0, 20);
    let rec = start_recorder(&bus, &store, &[]);
    signal(&rec, libc::SIGTERM);
    assert_eq!(finish(rec, LIMIT).code, 0);

    // Without --create a missing destination is an error that says how to create it.
    shmbus(
        &b,
        &[
            "replay", "trades", "--store", &s, "--to", "fresh", "--speed", "max",
        ],
    )
    .fails(1, "--create");
    let r = shmbus(
        &b,
        &[
            "replay",
            "trades",
            "--store",
            &s,
            "--to",
            "fresh",
            "--speed",
            "max",
            "--create",
            "--capacity",
            "64KiB",
        ],
    )
    .ok();
    assert_eq!(num(&r.stdout, "events"), 20, "{r:?}");
    assert_eq!(field(&r.stdout, "created"), Some("true"), "{r:?}");
    let info = shmbus(&b, &["info", "fresh"]).ok();
    assert_eq!(num(&info.stdout, "capacity"), 64 << 10, "{info:?}");
    // The created topic decodes like the original.
    let t = shmbus(&b, &["tail", "fresh", "-n", "100"]).ok();
    let l = lines_of(&t);
    assert_eq!(l.len(), 20, "{t:?}");
    for (i, line) in l.iter().enumerate() {
        assert!(
            line.contains(&format!("\"price\":{}.0,\"qty\":{i}", 100 + i)),
            "{line}"
        );
    }
    // The producer's own type opens it (the helper opens it as `Trade` and publishes).
    publish_trades(&bus.path, "fresh", 20, 1);
    let t = shmbus(&b, &["tail", "fresh", "-n", "1"]).ok();
    assert_eq!(num(&t.stdout, "qty"), 20);
    // A second replay into it opens it; nothing is created.
    let r = shmbus(
        &b,
        &[
            "replay", "trades", "--store", &s, "--to", "fresh", "--speed", "0", "--create",
        ],
    )
    .ok();
    assert_eq!(field(&r.stdout, "created"), Some("false"), "{r:?}");
    // A bus that does not exist yet is created with the topic.
    let new_bus = format!("{}/sub-bus", bus.arg());
    shmbus(
        &new_bus,
        &[
            "replay", "trades", "--store", &s, "--to", "t2", "--speed", "max", "--create",
        ],
    )
    .ok();
    let l = shmbus(&new_bus, &["ls"]).ok();
    assert!(
        l.stdout.contains("\"t2\"") && l.stdout.contains("Trade"),
        "{l:?}"
    );
    // Settings that only apply to a topic being created, and bad sizes, are usage errors.
    shmbus(
        &b,
        &[
            "replay",
            "trades",
            "--store",
            &s,
            "--to",
            "x",
            "--capacity",
            "1MiB",
        ],
    )
    .fails(2, "--create");
    shmbus(
        &b,
        &[
            "replay",
            "trades",
            "--store",
            &s,
            "--to",
            "x",
            "--create",
            "--capacity",
            "lots",
        ],
    )
    .fails(2, "is not a size");
    shmbus(
        &b,
        &[
            "replay",
            "trades",
            "--store",
            &s,
            "--to",
            "x",
            "--create",
            "--capacity",
            "1000",
        ],
    )
    .fails(2, "power of two");
    assert!(!bus.path.join("x.ring").exists());
}

#[test]
fn usage_errors_are_one_line_and_help_and_version_print_normally() {
    let bus = TempDir::new("usage");
    let b = bus.arg();
    for (args, needle) in [
        (&["--bogus"][..], "unexpected argument '--bogus'"),
        (&["tail", "t", "--bogus"], "see shmbus tail --help"),
        (&["tail"], "<TOPIC>"),
        (&["lss"], "'ls'"),
        (&["--format", "xml", "ls"], "possible values: table, json"),
        (
            &["tail", "t", "--from-time", "-1m", "--from-position", "0"],
            "cannot be used with",
        ),
        (&["stat", "--interval", "soon"], "bad duration"),
    ] {
        shmbus(&b, args).fails(2, needle);
    }
    for args in [
        &["--help"][..],
        &["tail", "--help"],
        &["help", "replay"],
        &["-V"],
    ] {
        let r = shmbus(&b, args).ok();
        assert!(r.stderr.is_empty(), "{r:?}");
        assert!(r.stdout.lines().count() >= 1, "{r:?}");
    }
    let h = shmbus(&b, &["replay", "--help"]).ok();
    assert!(
        h.stdout.contains("--create") && h.stdout.contains("Usage:"),
        "{h:?}"
    );
    assert!(shmbus(&b, &["--version"])
        .ok()
        .stdout
        .starts_with("shmbus "));
}

#[test]
fn store_spanning_segments_is_verified_and_tailed_across_rollovers() {
    let bus = TempDir::new("roll");
    let store = TempDir::new("roll-store");
    let b = bus.arg();
    let s = store.arg();
    run_role("create", &bus.path, &[]);
    // Recording while publishing: back-pressure keeps it lossless across ring laps.
    let rec = start_recorder(&bus, &store, &["--segment-size", "1MiB"]);
    let n = 40_000u64;
    let pos = publish_trades(&bus.path, "trades", 0, n);
    let topic = bus.bus().topic("trades").open().unwrap();
    let tail = topic.tail();
    assert!(wait_until(LIMIT, || topic.subscribers().iter().any(|x| x
        .name
        .as_deref()
        == Some("shmbus-recorder")
        && x.position == tail)));
    signal(&rec, libc::SIGTERM);
    let r = finish(rec, LIMIT);
    assert_eq!((r.code, num(&r.stdout, "records")), (0, n), "{r:?}");
    assert!(num(&r.stdout, "segments") >= 3, "{r:?}");

    let v = shmbus(&b, &["verify", &s, "--format", "table"]).ok();
    let row: Vec<String> = v
        .stdout
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    let segs = seg_files(&store, "seg").len().to_string();
    assert_eq!(
        row,
        ["trades".to_string(), segs, n.to_string(), "ok".into()],
        "{v:?}"
    );
    let last = shmbus(&b, &["tail", "trades", "--store", &s, "-n", "3"]).ok();
    assert_eq!(
        last.lines()
            .iter()
            .map(|x| num(x, "qty"))
            .collect::<Vec<_>>(),
        vec![n - 3, n - 2, n - 1]
    );
    let mid = 20_000usize;
    let from = shmbus(
        &b,
        &[
            "tail",
            "trades",
            "--store",
            &s,
            "--from-position",
            &pos[mid].to_string(),
        ],
    )
    .ok();
    let l = lines_of(&from);
    assert_eq!(l.len(), n as usize - mid);
    assert!(l
        .iter()
        .enumerate()
        .all(|(i, x)| num(x, "position") == pos[mid + i]));
    // Only on disk now (another bus): every stored record once, in order.
    let other = TempDir::new("roll-other");
    let all = shmbus(
        &other.arg(),
        &["tail", "trades", "--store", &s, "--from-position", "0"],
    )
    .ok();
    assert_eq!(all.lines().len(), n as usize);
}

fn seg_files(store: &TempDir, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(store.path.join("trades"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn verify_reports_damage_with_path_and_offset_and_repairs_torn_tails() {
    let bus = TempDir::new("ver");
    let store = TempDir::new("ver-store");
    let b = bus.arg();
    let s = store.arg();
    publish_trades(&bus.path, "trades", 0, 30);

    // A recorder killed outright leaves an unsealed segment behind.
    let mut rec = start_recorder(&bus, &store, &["--segment-size", "1MiB"]);
    rec.kill().unwrap();
    rec.wait().unwrap();
    let seg = seg_files(&store, "seg").remove(0);
    let v = shmbus(&b, &["verify", &s, "--format", "table"]).fails(1, "problem(s)");
    assert!(
        v.stdout.contains(&format!("{}: offset ", seg.display())),
        "{v:?}"
    );
    assert!(v.stdout.contains("unsealed"), "{v:?}");
    // A torn record after the valid ones.
    let end = {
        let line = shmbus(&b, &["verify", &s]).stdout;
        num(line.lines().next().unwrap(), "offset")
    };
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.write_all_at(&[0xff; 40], end).unwrap();
    }
    let rep = shmbus(&b, &["verify", &s, "--repair"]).ok();
    assert!(rep.stdout.contains("\"repaired\":\"sealed\""), "{rep:?}");
    assert!(
        rep.stdout.contains(&format!("truncated at offset {end}")),
        "{rep:?}"
    );
    let v = shmbus(&b, &["verify", &s]).ok();
    assert_eq!(num(&v.stdout, "records"), 30);
    // The repaired segment carries the live topic's schema: the store alone decodes.
    let no_bus = TempDir::new("ver-nobus");
    let last = shmbus(&no_bus.arg(), &["tail", "trades", "--store", &s, "-n", "1"]).ok();
    assert!(
        last.stdout
            .contains("\"event\":{\"symbol\":\"XYZ\",\"price\":129.0"),
        "{last:?}"
    );

    // A missing index is reported and rebuilt.
    let idx = seg_files(&store, "idx").remove(0);
    std::fs::remove_file(&idx).unwrap();
    let v = shmbus(&b, &["verify", &s]).fails(1, "1 problem(s)");
    assert!(
        v.stdout.contains("index missing or damaged")
            && v.stdout.contains(&idx.display().to_string())
    );
    shmbus(&b, &["verify", &s, "--topic", "trades", "--repair"]).ok();
    assert!(idx.exists());

    // A flipped byte inside a sealed segment: reported with its offset, not repairable.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, 64 + 64 * 3 + 40).unwrap();
        f.write_all_at(&[b[0] ^ 0x55], 64 + 64 * 3 + 40).unwrap();
    }
    let v = shmbus(&b, &["verify", &s]).fails(1, "problem(s)");
    let line = v.lines()[0];
    assert_eq!(field(line, "path"), Some(seg.to_str().unwrap()), "{v:?}");
    assert!(field(line, "offset").is_some_and(|o| o != "null"), "{v:?}");
    shmbus(&b, &["verify", &s, "--repair"]).fails(1, "problem(s)");
    // Tail over the damaged store reports it in one line too.
    let other = TempDir::new("ver-none");
    shmbus(
        &other.arg(),
        &["tail", "trades", "--store", &s, "--from-position", "0"],
    )
    .fails(1, "corrupt at offset");

    // Stores that are not stores.
    let empty = TempDir::new("ver-empty");
    shmbus(&b, &["verify", &empty.arg()]).fails(1, "is not a shmbus store");
    shmbus(&b, &["verify", "/nonexistent/store"]).fails(1, "store /nonexistent/store");
    shmbus(&b, &["verify", &s, "--topic", "nope"]).fails(1, "has no topic \"nope\"");
}

#[test]
fn record_resumes_where_the_store_ends() {
    let bus = TempDir::new("resume");
    let store = TempDir::new("resume-store");
    let b = bus.arg();
    publish_trades(&bus.path, "trades", 0, 10);
    let rec = start_recorder(&bus, &store, &[]);
    signal(&rec, libc::SIGINT);
    let r = finish(rec, LIMIT);
    assert_eq!((r.code, num(&r.stdout, "records")), (0, 10), "{r:?}");
    publish_trades(&bus.path, "trades", 10, 7);
    let rec = start_recorder(&bus, &store, &["--fsync", "never", "--storage", "pwrite"]);
    // While it runs: its segment is unsealed but that is no problem, and stat shows it.
    shmbus(&b, &["verify", &store.arg()]).ok();
    let st = shmbus(&b, &["stat", "trades", "--interval", "50ms"]).ok();
    assert!(
        st.stdout
            .contains("\"recorder\":{\"name\":\"shmbus-recorder\",\"state\":\"active\""),
        "{st:?}"
    );
    // A second recorder for the same topic and store is refused.
    shmbus(&b, &["record", "trades", "--store", &store.arg()]).fails(1, "another recorder");
    signal(&rec, libc::SIGTERM);
    let r = finish(rec, LIMIT);
    assert_eq!((r.code, num(&r.stdout, "records")), (0, 7), "{r:?}");
    assert!(r.stdout.contains("\"storage\":\"pwrite\""), "{r:?}");
    let v = shmbus(&b, &["verify", &store.arg()]).ok();
    assert_eq!(num(&v.stdout, "records"), 17);
    shmbus(&b, &["record", "nope", "--store", &store.arg()]).fails(1, "unknown topic");
    for (option, value, says) in [
        (
            "--fsync",
            "sometimes",
            "not never, batch or a positive number",
        ),
        ("--storage", "disk", "not auto, io_uring or pwrite"),
    ] {
        let r = shmbus(
            &b,
            &["record", "trades", "--store", &store.arg(), option, value],
        );
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(says), "{r:?}");
        assert_no_panic(&r.stderr);
    }
}

#[test]
fn gc_lists_dead_rings_and_removes_them_only_when_asked() {
    let bus = TempDir::new("gc");
    let b = bus.arg();
    let mut dead = spawn_role("dead", &bus.path, &[("T_TOPIC", "abandoned".into())]);
    let dead_pid = dead.id();
    assert!(wait_limit(&mut dead, LIMIT).success());
    let mut holder = spawn_ready("hold", &bus.path, "inuse");
    let temp = bus.path.join(format!(".half.ring.{dead_pid}.12345"));
    std::fs::write(&temp, b"partial").unwrap();

    let gc = shmbus(&b, &["gc"]).ok();
    let l = lines_of(&gc);
    assert_eq!(l.len(), 2, "{gc:?}");
    let ring = l
        .iter()
        .find(|x| x.contains("\"topic\":\"abandoned\""))
        .unwrap();
    assert!(
        ring.contains("\"named_subscribers\":[{\"name\":\"keeper\""),
        "{ring}"
    );
    assert_eq!(field(ring, "removed"), Some("false"));
    assert!(l.iter().any(|x| x.contains(".half.ring.")));
    assert!(!gc.stdout.contains("inuse"));
    let table = shmbus(&b, &["gc", "--format", "table"]).ok();
    assert!(
        table.stdout.contains("\"keeper\" at ") && table.stdout.contains("NAMED STATE LOST"),
        "{table:?}"
    );
    assert!(bus.path.join("abandoned.ring").exists() && temp.exists());

    let gc = shmbus(&b, &["gc", "--remove"]).ok();
    assert_eq!(gc.stdout.matches("\"removed\":true").count(), 2, "{gc:?}");
    assert!(!bus.path.join("abandoned.ring").exists() && !temp.exists());
    assert!(bus.path.join("inuse.ring").exists());
    // The live topic is never collected, even when asked.
    assert_eq!(shmbus(&b, &["gc", "--remove"]).ok().lines().len(), 0);
    assert!(bus.path.join("inuse.ring").exists());
    let _ = holder.kill();
    let _ = holder.wait();
    // Once its producer is gone, it is.
    let gc = shmbus(&b, &["gc", "--remove"]).ok();
    assert!(
        gc.stdout.contains("\"topic\":\"inuse\"") && !bus.path.join("inuse.ring").exists(),
        "{gc:?}"
    );
}

#[test]
fn doctor_reports_permissions_stale_slots_corrupt_rings_and_leftovers() {
    use std::os::unix::fs::PermissionsExt;
    let bus = TempDir::new("doc");
    let b = bus.arg();
    publish_trades(&bus.path, "healthy", 0, 1);
    let ok = shmbus(&b, &["doctor", "--format", "table"]).ok();
    assert!(ok.stdout.contains("no problems found"), "{ok:?}");

    let mut dead = spawn_role("dead", &bus.path, &[("T_TOPIC", "stale".into())]);
    let dead_pid = dead.id();
    assert!(wait_limit(&mut dead, LIMIT).success());
    std::fs::write(bus.path.join("garbage.ring"), vec![0x42u8; 70_000]).unwrap();
    std::fs::write(bus.path.join(format!(".x.ring.{dead_pid}.1")), b"").unwrap();
    publish_trades(&bus.path, "open", 0, 1);
    std::fs::set_permissions(
        bus.path.join("open.ring"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();

    let d = shmbus(&b, &["doctor"]).fails(1, "problem(s) found");
    let has = |path: &str, what: &str| {
        d.lines()
            .iter()
            .any(|l| field(l, "path").is_some_and(|p| p.ends_with(path)) && l.contains(what))
    };
    assert!(
        has("garbage.ring", "unreadable ring") && has("garbage.ring", "not a shmbus ring"),
        "{d:?}"
    );
    assert!(has("open.ring", "world-writable"), "{d:?}");
    assert!(
        has(
            "stale.ring",
            &format!("stale producer slot 0 (pid {dead_pid} is gone)")
        ),
        "{d:?}"
    );
    assert!(
        has("stale.ring", "stale subscriber \\\"keeper\\\""),
        "{d:?}"
    );
    assert!(has("stale.ring", "stale subscriber slot"), "{d:?}");
    assert!(
        has(
            &format!(".x.ring.{dead_pid}.1"),
            "interrupted topic creation"
        ),
        "{d:?}"
    );
    assert!(!d.stdout.contains("healthy.ring"), "{d:?}");
    // Files of another user: only root can make them here.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let healthy = bus.path.join("healthy.ring");
        std::os::unix::fs::chown(&healthy, Some(12345), None).unwrap();
        let d = shmbus(&b, &["doctor"]).fails(1, "problem(s) found");
        assert!(
            d.lines()
                .iter()
                .any(|l| l.contains("healthy.ring") && l.contains("owned by uid 12345")),
            "{d:?}"
        );
    }
    // ls still lists everything, with the reason for what it cannot open.
    let ls = shmbus(&b, &["ls"]).ok();
    assert!(
        ls.lines()
            .iter()
            .any(|l| l.contains("garbage") && l.contains("\"error\":")),
        "{ls:?}"
    );
}

#[test]
fn bad_input_is_one_line_and_a_nonzero_exit() {
    let bus = TempDir::new("bad");
    let b = bus.arg();
    publish_trades(&bus.path, "trades", 0, 1);
    shmbus(&b, &["info", "nope"]).fails(1, "unknown topic \"nope\"");
    shmbus(&b, &["info", "../etc"]).fails(2, "bad topic name");
    shmbus(&b, &["stat", "nope"]).fails(1, "unknown topic");
    let missing = format!("{}/missing-bus", bus.arg());
    for cmd in [
        &["ls"][..],
        &["info", "trades"],
        &["stat"],
        &["gc"],
        &["doctor"],
        &["tail", "trades"],
    ] {
        shmbus(&missing, cmd).fails(1, "does not exist");
    }
    assert!(
        !bus.path.join("missing-bus").exists(),
        "an inspecting command created a bus"
    );
    shmbus(&b, &["tail", "trades", "--store", "/nonexistent"]).fails(1, "store /nonexistent");
    shmbus(&b, &["verify", "/nonexistent"]).fails(1, "store /nonexistent does not exist");
    // A bus named (not a path) that does not exist: the error lists the buses there.
    let root = TempDir::new("roots");
    std::fs::create_dir(root.path.join("alpha")).unwrap();
    let r = finish(
        shmbus_cmd("beta", &["ls"])
            .env("SHMBUS_DIR", &root.path)
            .spawn()
            .unwrap(),
        LIMIT,
    );
    r.fails(1, "buses there: alpha");
    let r = shmbus(&b, &["stat", "--interval", "soon"]);
    assert_eq!(r.code, 2);
    assert_no_panic(&r.stderr);
    let r = shmbus(&b, &["tail"]);
    assert_eq!(r.code, 2);
    assert_no_panic(&r.stderr);
}
