//! The measuring processes. The harness runs `peers child TEST TRANSPORT ROLE k=v...`;
//! the child pins itself, sets up its transport, prints `ready`, waits for `go` on
//! stdin, measures, and prints result lines (`lat ...`, `start NS`, `done NS`).
//!
//! Tests and roles:
//! - `rtt` ping/pong: ping sends `size` bytes and waits for the echo; one clock read per
//!   round trip; `warm` round trips, then `reps` histograms of `rounds` round trips.
//! - `wake`: as `rtt` with blocking receivers, and ping idles `gap` ns (spinning on its
//!   own CPU) before each round trip so the other process is asleep when woken.
//! - `tput` prod/cons: each producer sends `n` messages; each consumer receives
//!   `n * producers` and checks every producer's sequence.
//! - `rate` prod/cons: the producer sends `n` messages on a fixed schedule (`rate` per
//!   second) carrying their intended send time; the consumer records now − intended
//!   (coordinated omission corrected: a late send counts from when it should have gone).

use std::collections::HashMap;
use std::path::PathBuf;

use crate::transports::{self as t, Ctx, Pair, Rx, Tx, WaitMode};
use crate::util::{self, emit, fill, histogram, mono_ns, pin, ready_then_wait_go, word, Pct};

pub struct Params {
    kv: HashMap<String, String>,
}

impl Params {
    fn parse(args: &[String]) -> Params {
        let kv = args
            .iter()
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Params { kv }
    }

    fn get(&self, k: &str) -> u64 {
        self.kv
            .get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("child: missing numeric parameter {k}"))
    }

    fn str(&self, k: &str) -> &str {
        self.kv.get(k).map(String::as_str).unwrap_or("")
    }

    fn ctx(&self) -> Ctx {
        Ctx {
            dir: PathBuf::from(self.str("dir")),
            tag: self.str("tag").to_string(),
            size: self.get("size") as usize,
            wait: WaitMode::parse(self.str("wait")),
            first: self.str("first") == "1",
            redis: self.kv.get("redis").map(PathBuf::from),
        }
    }
}

pub fn main(args: &[String]) {
    let (test, transport, role) = (args[0].as_str(), args[1].as_str(), args[2].as_str());
    let p = Params::parse(&args[3..]);
    pin(p.get("cpu") as usize);
    let ctx = p.ctx();
    match (test, role) {
        ("rtt", "threads") => floor_threads(&p),
        ("rtt" | "wake", _) => {
            let ping = role == "ping";
            match transport {
                "floor" => duplex(t::floor_proc(&ctx), &p, ping),
                "shmbus" => duplex(t::shm_pair(&ctx), &p, ping),
                "iceoryx2" => duplex(t::ice_pair(&ctx), &p, ping),
                "iceoryx2-event" => duplex(t::ice_event_pair(&ctx), &p, ping),
                "uds" => duplex(t::uds_pair(&ctx), &p, ping),
                "pipe" => duplex(t::pipe_pair(&ctx), &p, ping),
                #[cfg(feature = "zmq")]
                "zmq" => duplex(t::zmq_t::zmq_pair(&ctx), &p, ping),
                "redis" => duplex(t::redis_pair(&ctx), &p, ping),
                other => panic!("child: unknown transport {other}"),
            }
        }
        ("tput" | "rate", "prod") => match transport {
            "shmbus" => producer(t::shm_tx(&ctx, "t"), &p, test),
            "iceoryx2" => {
                let node = t::ice_node();
                producer(t::ice_tx(&ctx, &node, "t"), &p, test)
            }
            "uds" => producer(t::uds_tx(&ctx), &p, test),
            other => panic!("child: unknown transport {other}"),
        },
        ("tput" | "rate", "cons") => match transport {
            "shmbus" => consumer(t::shm_rx(&ctx, "t"), &p, test),
            "iceoryx2" => {
                let node = t::ice_node();
                consumer(t::ice_rx(&ctx, &node, "t"), &p, test)
            }
            "uds" => consumer(t::uds_rx(&ctx), &p, test),
            other => panic!("child: unknown transport {other}"),
        },
        _ => panic!("child: unknown test/role {test}/{role}"),
    }
}

fn duplex<T: Tx, R: Rx>(mut d: Pair<T, R>, p: &Params, ping: bool) {
    let (warm, rounds, reps) = (p.get("warm"), p.get("rounds"), p.get("reps"));
    ready_then_wait_go();
    if !ping {
        for _ in 0..warm + rounds * reps {
            d.echo();
        }
        return;
    }
    let gap = p.kv.get("gap").and_then(|g| g.parse::<u64>().ok());
    for r in ping_loop(&mut d, p.get("size") as usize, warm, rounds, reps, gap) {
        emit(&r.line());
    }
}

/// The ping side's loop, shared with the floor-threads variant.
fn ping_loop<T: Tx, R: Rx>(
    d: &mut Pair<T, R>,
    size: usize,
    warm: u64,
    rounds: u64,
    reps: u64,
    gap: Option<u64>,
) -> Vec<Pct> {
    let mut msg = vec![0x5au8; size];
    let mut seq = 0u64;
    // Event-only transports (iceoryx2 events) carry no bytes: nothing to check.
    let verify = size > 0;
    let mut rt = |d: &mut Pair<T, R>, msg: &mut [u8]| {
        seq += 1;
        fill(msg, seq, 0);
        d.tx.send(msg);
        let ok =
            d.rx.recv(|b| !verify || (b.len() == msg.len() && word(b, 0) == seq));
        assert!(ok, "echo mismatch at round trip {seq}");
    };
    for _ in 0..warm {
        rt(d, &mut msg);
    }
    let mut out = Vec::new();
    for _ in 0..reps {
        let mut h = histogram();
        match gap {
            None => {
                let mut t0 = mono_ns();
                for _ in 0..rounds {
                    rt(d, &mut msg);
                    let t = mono_ns();
                    h.saturating_record(t - t0);
                    t0 = t;
                }
            }
            Some(gap) => {
                let mut t = mono_ns();
                for _ in 0..rounds {
                    util::spin_until(t + gap);
                    let t0 = mono_ns();
                    rt(d, &mut msg);
                    t = mono_ns();
                    h.saturating_record(t - t0);
                }
            }
        }
        out.push(Pct::of(&h));
    }
    out
}

/// The floor between two threads of one process (an anonymous shared mapping).
fn floor_threads(p: &Params) {
    let (warm, rounds, reps) = (p.get("warm"), p.get("rounds"), p.get("reps"));
    let size = p.get("size") as usize;
    let cpu2 = p.get("cpu2") as usize;
    let map = t::SharedMap::anonymous(2 * t::FLOOR_REGION);
    struct SendPtr(usize);
    let addr = SendPtr(&map as *const t::SharedMap as usize);
    ready_then_wait_go();
    std::thread::scope(|s| {
        s.spawn(move || {
            pin(cpu2);
            let addr = addr;
            // SAFETY: `map` outlives the scope; the echo thread only builds its own
            // view of the regions (a borrowed mapping, never unmapped by this thread).
            let map: &t::SharedMap = unsafe { &*(addr.0 as *const t::SharedMap) };
            let mut d = t::floor_pair(std::rc::Rc::new(map.borrowed()), false);
            for _ in 0..warm + rounds * reps {
                d.echo();
            }
        });
        let mut d = t::floor_pair(std::rc::Rc::new(map.borrowed()), true);
        for r in ping_loop(&mut d, size, warm, rounds, reps, None) {
            emit(&r.line());
        }
    });
}

fn producer<T: Tx>(mut tx: T, p: &Params, test: &str) {
    let n = p.get("n");
    let id = p.get("id");
    let size = p.get("size") as usize;
    let mut msg = vec![0xa5u8; size];
    ready_then_wait_go();
    // Start only once every consumer has connected (it touches a file in `dir`).
    let dir = PathBuf::from(p.str("dir"));
    let consumers = p.get("consumers");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while (0..consumers).any(|c| !dir.join(format!("connected-{c}")).exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "consumers did not connect"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    tx.connect();
    if test == "tput" {
        emit(&format!("start {}", mono_ns()));
        for i in 0..n {
            fill(&mut msg, i, id);
            tx.send(&msg);
        }
    } else {
        let period = 1_000_000_000 / p.get("rate");
        let start = mono_ns() + 1_000_000;
        // Sends that began more than 10 µs after their due time (the producer was
        // descheduled or back-pressured): evidence for where latency came from.
        let mut late = 0u64;
        for i in 0..n {
            let due = start + i * period;
            let now = mono_ns();
            if now < due {
                util::spin_until(due);
            } else if now - due > 10_000 && i >= n / 10 {
                late += 1;
            }
            fill(&mut msg, i, due);
            tx.send(&msg);
        }
        emit(&format!("late {late} {}", n - n / 10));
    }
}

fn consumer<R: Rx>(mut rx: R, p: &Params, test: &str) {
    let n = p.get("n");
    let producers = p.get("producers") as usize;
    ready_then_wait_go();
    rx.connect();
    let flag = PathBuf::from(p.str("dir")).join(format!("connected-{}", p.get("id")));
    std::fs::write(&flag, b"").expect("write connected flag");
    if test == "tput" {
        let mut next = vec![0u64; producers];
        for _ in 0..n * producers as u64 {
            rx.recv(|b| {
                let (seq, id) = (word(b, 0), word(b, 1) as usize);
                assert!(
                    id < producers && seq == next[id],
                    "throughput: producer {id} sent {seq}, expected {}",
                    next.get(id).copied().unwrap_or(0)
                );
                next[id] += 1;
            });
        }
        emit(&format!("done {}", mono_ns()));
    } else {
        // The first 10% warm the path up and are not recorded.
        let skip = n / 10;
        let mut h = histogram();
        for i in 0..n {
            let due = rx.recv(|b| {
                assert_eq!(word(b, 0), i, "rate: sequence");
                word(b, 1)
            });
            let now = mono_ns();
            if i >= skip {
                h.saturating_record(now.saturating_sub(due));
            }
        }
        emit(&Pct::of(&h).line());
    }
}
