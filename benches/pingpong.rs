//! The core benchmark: shmbus against the physical floor, on the same two CPUs.
//!
//! In one run it measures
//!
//! - (a) a raw cache-line ping-pong between two threads pinned to CPU A and CPU B
//!   (the floor: what any shared-memory transport must pay per round trip),
//! - (b) a shmbus ping-pong round trip between **two processes** (this binary
//!   re-executed with `SHMBUS_BENCH_ROLE=pong`, pinned to CPU B) with 32-byte typed
//!   events (`#[shmbus::event] struct Ev { seq, a, b, c: u64 }`, rkyv-archived, sent
//!   with `send`, received with `recv` and validated) and `Wait::Spin` subscribers,
//! - (c) one-producer → one-subscriber throughput between the two processes for the
//!   same 32-byte events, one `send` per event from the topic's exclusive publisher
//!   (`Topic::exclusive_publisher`): the subscriber checks every sequence number;
//!   (c1) the same from a shared publisher (`Topic::publisher`, claims by CAS);
//!   (c2) the same events from the exclusive publisher with `send_batch`, 64 per call,
//! - (d) the same round trip between **two C processes** through the C ABI
//!   (`bindings/c/bench/pingpong.c`, compiled here with `cc -O2` against a freshly
//!   built `libshmbus.so`): 32-byte raw events, spinning subscribers, the pong side
//!   echoing in place (`recv`, `claim`, copy, `commit`, `release`). It runs twice:
//!   receives that wait forever (`timeout_ns = -1`, as Rust's `recv`) and receives with
//!   a 10 s timeout (as the C example). Same CPUs, warm-up, counts and repetitions as
//!   (b); the C program writes its raw durations and this harness builds the same HDR
//!   histograms. Skipped, with the reason printed, when `cc` is missing or the build
//!   fails.
//!
//! and prints p50/p99/p99.9 (HDR histograms) of (a), (b) and (d), the ratios (b)/(a)
//! and (d)/(b), and events/s. Each figure is the median of three repetitions.
//!
//! ```text
//! cargo bench --bench pingpong             # full run (~1 min)
//! cargo bench --bench pingpong -- --quick  # smaller counts
//! ```
//!
//! Environment: `SHMBUS_BENCH_CPUS=a,b` picks the two CPUs (default 0,1);
//! `SHMBUS_BENCH_TRUSTED=1` opens the topics trusted (no archive validation);
//! `CC` names the C compiler (default `cc`); `SHMBUS_BENCH_NO_C=1` skips (d).
//!
//! Instruction counts (deterministic, for finding overhead): `SHMBUS_BENCH_ROLE=loop`
//! with `SHMBUS_BENCH_LOOP=typed|raw` and `SHMBUS_BENCH_N=n` makes this binary publish
//! and receive n events on one topic in one process, never waiting, which under
//! `valgrind --tool=callgrind` is comparable with `pingpong loop DIR n TIMEOUT_NS` of
//! the C program (see docs/c-api.md).

use std::hint::spin_loop;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use shmbus::{Bus, Publisher, Start, Subscriber, Topic, Wait};

#[shmbus::event]
struct Ev {
    seq: u64,
    a: u64,
    b: u64,
    c: u64,
}

/// `Ev::a` of a control message on the ping topic.
const CMD_PING: u64 = 0;
const CMD_THROUGHPUT: u64 = 1;
const CMD_QUIT: u64 = 2;

const ROLE_ENV: &str = "SHMBUS_BENCH_ROLE";
const DIR_ENV: &str = "SHMBUS_BENCH_DIR";

struct Config {
    warmup: usize,
    round_trips: usize,
    events: u64,
    reps: usize,
    cpus: (usize, usize),
    trusted: bool,
}

impl Config {
    fn from_env() -> Config {
        let quick = std::env::args().any(|a| a == "--quick");
        let cpus = std::env::var("SHMBUS_BENCH_CPUS")
            .ok()
            .and_then(|s| {
                let (a, b) = s.split_once(',')?;
                Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
            })
            .unwrap_or((0, 1));
        Config {
            warmup: if quick { 10_000 } else { 50_000 },
            round_trips: if quick { 20_000 } else { 200_000 },
            events: if quick { 2_000_000 } else { 20_000_000 },
            reps: 3,
            cpus,
            trusted: std::env::var_os("SHMBUS_BENCH_TRUSTED").is_some_and(|v| v == "1"),
        }
    }
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity
    // only read and write that local set; pid 0 is the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!(
                "warning: could not pin to CPU {cpu}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

#[derive(Clone, Copy, Debug)]
struct Lat {
    p50: u64,
    p99: u64,
    p999: u64,
    mean: f64,
}

impl Lat {
    fn of(h: &Histogram<u64>) -> Lat {
        Lat {
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            mean: h.mean(),
        }
    }
}

fn median_by<T: Copy>(v: &[T], key: impl Fn(&T) -> f64) -> T {
    let mut s: Vec<T> = v.to_vec();
    s.sort_by(|x, y| key(x).total_cmp(&key(y)));
    s[s.len() / 2]
}

/// Median of each latency figure over the repetitions.
fn median_lat(v: &[Lat]) -> Lat {
    Lat {
        p50: median_by(v, |l| l.p50 as f64).p50,
        p99: median_by(v, |l| l.p99 as f64).p99,
        p999: median_by(v, |l| l.p999 as f64).p999,
        mean: median_by(v, |l| l.mean).mean,
    }
}

// ------------------------------------------------------------------ (a) raw floor

/// One round trip: A stores `i` in the ping line, B sees it and stores `i` in the
/// pong line, A sees that. One clock read per round trip, as in (b).
fn raw_pingpong(cfg: &Config) -> Lat {
    let ping = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let pong = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let total = (cfg.warmup + cfg.round_trips * cfg.reps) as u64;
    let echo = {
        let (ping, pong, stop) = (ping.clone(), pong.clone(), stop.clone());
        let cpu = cfg.cpus.1;
        std::thread::spawn(move || {
            pin(cpu);
            let mut last = 0;
            while last < total && !stop.load(Ordering::Relaxed) {
                let v = ping.load(Ordering::Acquire);
                if v != last {
                    pong.store(v, Ordering::Release);
                    last = v;
                } else {
                    spin_loop();
                }
            }
        })
    };
    pin(cfg.cpus.0);
    let mut i = 0u64;
    let mut rt = || {
        i += 1;
        ping.store(i, Ordering::Release);
        while pong.load(Ordering::Acquire) != i {
            spin_loop();
        }
    };
    for _ in 0..cfg.warmup {
        rt();
    }
    let mut reps = Vec::new();
    for _ in 0..cfg.reps {
        let mut h = histogram();
        let mut t0 = Instant::now();
        for _ in 0..cfg.round_trips {
            rt();
            let t = Instant::now();
            h.saturating_record((t - t0).as_nanos() as u64);
            t0 = t;
        }
        reps.push(Lat::of(&h));
    }
    stop.store(true, Ordering::Relaxed);
    echo.join().expect("echo thread");
    median_lat(&reps)
}

// ------------------------------------------------------------------ shmbus

struct Topics {
    ping: Topic<Ev>,
    pong: Topic<Ev>,
    tp: Topic<Ev>,
}

fn open_topics(bus: &Bus, trusted: bool) -> Topics {
    let open = |name: &str, cap: u64| {
        bus.topic(name)
            .event::<Ev>()
            .capacity(cap)
            .trusted(trusted)
            .open_or_create()
            .unwrap_or_else(|e| panic!("open topic {name}: {e}"))
    };
    Topics {
        ping: open("ping", 1 << 16),
        pong: open("pong", 1 << 16),
        tp: open("tp", 1 << 20),
    }
}

fn subscribe(t: &Topic<Ev>) -> Subscriber<Ev> {
    t.subscriber()
        .start(Start::Earliest)
        .wait(Wait::Spin)
        .open()
        .expect("subscribe")
}

fn publisher(t: &Topic<Ev>) -> Publisher<Ev> {
    let mut p = t.publisher().expect("publisher");
    p.set_wait(Wait::Spin);
    p
}

fn ev(seq: u64, a: u64, b: u64) -> Ev {
    Ev { seq, a, b, c: !seq }
}

/// The second process: echo pings, and consume throughput runs when told to.
fn pong_role() {
    let dir = std::env::var(DIR_ENV).expect("SHMBUS_BENCH_DIR");
    let cpu: usize = std::env::var("SHMBUS_BENCH_CPU")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let trusted = std::env::var_os("SHMBUS_BENCH_TRUSTED").is_some_and(|v| v == "1");
    // Never outlive the measuring process (this one spins while it waits).
    // SAFETY: prctl with an integer argument; no memory is passed.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    pin(cpu);
    let bus = Bus::open_dir(&dir).expect("open bus");
    let t = open_topics(&bus, trusted);
    let mut ping = subscribe(&t.ping);
    let mut tp = subscribe(&t.tp);
    let mut pong = publisher(&t.pong);
    pong.send(&ev(u64::MAX, 0, 0)).expect("ready");
    loop {
        let (seq, cmd, arg) = {
            let m = ping.recv().expect("recv ping");
            (m.seq.to_native(), m.a.to_native(), m.b.to_native())
        };
        match cmd {
            CMD_PING => {
                pong.send(&ev(seq, CMD_PING, 0)).expect("send pong");
            }
            CMD_THROUGHPUT => {
                let mut next = 0u64;
                while next < arg {
                    let e = tp.recv().expect("recv tp");
                    let s = e.seq.to_native();
                    assert_eq!(s, next, "throughput: sequence");
                    assert_eq!(e.c.to_native(), !s, "throughput: payload");
                    next += 1;
                }
                pong.send(&ev(seq, CMD_THROUGHPUT, next))
                    .expect("send done");
            }
            _ => break,
        }
    }
}

/// Removes the bus directory and stops the child however `main` ends.
struct Cleanup {
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `SHMBUS_BENCH_ROLE=loop`: publish and receive `SHMBUS_BENCH_N` events on one topic
/// in this process (for instruction counts under callgrind; no timing).
fn loop_role() {
    let dir = std::env::var(DIR_ENV).expect("SHMBUS_BENCH_DIR");
    let n: u64 = std::env::var("SHMBUS_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let typed = std::env::var("SHMBUS_BENCH_LOOP").as_deref() != Ok("raw");
    let bus = Bus::open_dir(&dir).expect("open bus");
    if typed {
        let t = bus
            .topic("loop")
            .event::<Ev>()
            .capacity(1 << 16)
            .open_or_create()
            .expect("topic");
        let mut sub = subscribe(&t);
        let mut p = publisher(&t);
        for i in 0..n {
            p.send(&ev(i, 0, 0)).expect("send");
            let m = sub.recv().expect("recv");
            assert_eq!(m.seq.to_native(), i);
        }
    } else {
        let t = bus
            .topic("loop")
            .capacity(1 << 16)
            .open_or_create()
            .expect("topic");
        let mut sub = t
            .subscriber()
            .start(Start::Earliest)
            .wait(Wait::Spin)
            .open()
            .expect("subscribe");
        let mut p = t.publisher().expect("publisher");
        let mut msg = [0u8; 32];
        for i in 0..n {
            msg[..8].copy_from_slice(&i.to_le_bytes());
            p.send_bytes(0, &msg).expect("send");
            let m = sub.recv_bytes().expect("recv");
            assert_eq!(m.bytes()[..8], i.to_le_bytes());
        }
    }
}

/// Build libshmbus (release) and the C ping-pong program; `Err` says why not.
fn build_c_program() -> Result<PathBuf, String> {
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    match Command::new(&cc).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Err(format!("no C compiler ({cc:?} --version failed; set CC)")),
    }
    // This binary is <target>/release/deps/pingpong-<hash>.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target directory")?;
    let target = profile_dir
        .parent()
        .ok_or("cannot find the target directory")?;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet", "--release", "-p", "shmbus-c", "--lib"])
        .arg("--target-dir")
        .arg(target)
        .status()
        .map_err(|e| format!("cannot run cargo to build libshmbus: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p shmbus-c --release: {status}"));
    }
    let lib_dir = target.join("release");
    // The program will load the library's SONAME.
    let so0 = lib_dir.join("libshmbus.so.0");
    if std::fs::read_link(&so0).ok().as_deref() != Some(Path::new("libshmbus.so")) {
        let _ = std::fs::remove_file(&so0);
        std::os::unix::fs::symlink("libshmbus.so", &so0)
            .map_err(|e| format!("cannot link {so0:?}: {e}"))?;
    }
    let out = lib_dir.join("shmbus-c-pingpong");
    let c = root.join("bindings/c");
    let o = Command::new(&cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror"])
        .arg(format!("-I{}", c.join("include").display()))
        .arg(c.join("bench/pingpong.c"))
        .arg("-o")
        .arg(&out)
        .arg(format!("-L{}", lib_dir.display()))
        .arg("-lshmbus")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .output()
        .map_err(|e| format!("cannot run {cc:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{cc:?} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(out)
}

/// (d): the C ping-pong with receives waiting `timeout_ns`; median figures of the reps.
fn c_pingpong(cfg: &Config, exe: &Path, dir: &Path, timeout_ns: i64) -> Result<Lat, String> {
    let out = dir.with_extension(format!("c-{}.bin", timeout_ns.max(0)));
    let _ = std::fs::remove_dir_all(dir);
    let status = Command::new(exe)
        .arg(dir)
        .arg(cfg.cpus.0.to_string())
        .arg(cfg.cpus.1.to_string())
        .arg(cfg.warmup.to_string())
        .arg(cfg.round_trips.to_string())
        .arg(cfg.reps.to_string())
        .arg(&out)
        .arg(timeout_ns.to_string())
        .status()
        .map_err(|e| format!("cannot run {exe:?}: {e}"));
    let _ = std::fs::remove_dir_all(dir);
    let bytes = std::fs::read(&out);
    let _ = std::fs::remove_file(&out);
    let status = status?;
    if !status.success() {
        return Err(format!("the C ping-pong failed: {status}"));
    }
    let bytes = bytes.map_err(|e| format!("read {out:?}: {e}"))?;
    let rtts: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    if rtts.len() != cfg.round_trips * cfg.reps {
        return Err(format!(
            "the C ping-pong wrote {} durations, not {}",
            rtts.len(),
            cfg.round_trips * cfg.reps
        ));
    }
    let reps: Vec<Lat> = rtts
        .chunks_exact(cfg.round_trips)
        .map(|rep| {
            let mut h = histogram();
            for &ns in rep {
                h.saturating_record(ns);
            }
            Lat::of(&h)
        })
        .collect();
    Ok(median_lat(&reps))
}

/// Ends this process with a message if the pong process exits before it is told to
/// quit (e.g. it panicked): the measuring side spins on its topic and would wait for
/// ever. Checks every 100 ms from its own thread without reaping the child
/// (`WNOWAIT`), so the measurement loops are unchanged.
fn watch_child(pid: u32, quitting: Arc<AtomicBool>, dir: PathBuf) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: a zeroed siginfo_t is a valid out-parameter; waitid only writes it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: plain system call on our own child's pid with a valid out-pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: `si_pid` is valid to read for waitid's result (0 while none exited).
        let exited = r == 0 && unsafe { info.si_pid() } != 0;
        if exited && !quitting.load(Ordering::SeqCst) {
            eprintln!("pingpong: the pong process exited early (see its message above)");
            let _ = std::fs::remove_dir_all(&dir);
            std::process::exit(1);
        }
        if exited || r != 0 {
            return;
        }
    });
}

/// (c): `cfg.reps` runs of `cfg.events` single sends from `tp`; the rates, sorted.
fn per_event_rates(
    cfg: &Config,
    ping: &mut Publisher<Ev>,
    pongs: &mut Subscriber<Ev>,
    tp: &mut Publisher<Ev>,
    seq: &mut u64,
) -> Vec<f64> {
    let mut rates = Vec::new();
    for rep in 0..cfg.reps {
        *seq += 1;
        ping.send(&ev(*seq, CMD_THROUGHPUT, cfg.events))
            .expect("send command");
        let t0 = Instant::now();
        for i in 0..cfg.events {
            tp.send(&ev(i, 0, rep as u64)).expect("send");
        }
        let (s, cmd, n) = recv_pong(pongs);
        let dt = t0.elapsed();
        assert_eq!((s, cmd, n), (*seq, CMD_THROUGHPUT, cfg.events), "done");
        rates.push(cfg.events as f64 / dt.as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    rates
}

fn recv_pong(sub: &mut Subscriber<Ev>) -> (u64, u64, u64) {
    let m = sub.recv().expect("recv pong");
    (m.seq.to_native(), m.a.to_native(), m.b.to_native())
}

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("pong") => return pong_role(),
        Ok("loop") => return loop_role(),
        _ => {}
    }
    let cfg = Config::from_env();
    let root = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = root.join(format!("shmbus-bench-{}", std::process::id()));
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        child: None,
    };

    println!(
        "shmbus pingpong bench: CPUs {} and {}, {} round trips x {} reps (+{} warm-up), \
         {} events x {} reps, 32-byte events{}",
        cfg.cpus.0,
        cfg.cpus.1,
        cfg.round_trips,
        cfg.reps,
        cfg.warmup,
        cfg.events,
        cfg.reps,
        if cfg.trusted { " (trusted)" } else { "" }
    );

    // (a) before the child exists, so CPU B is free.
    let raw = raw_pingpong(&cfg);

    // (d) needs the C program; build it now so compiling does not overlap a measurement.
    let c_exe = if std::env::var_os("SHMBUS_BENCH_NO_C").is_some_and(|v| v == "1") {
        Err("SHMBUS_BENCH_NO_C=1".to_string())
    } else {
        build_c_program()
    };

    let bus = Bus::open_dir(&dir).expect("open bus");
    let t = open_topics(&bus, cfg.trusted);
    let mut pongs = subscribe(&t.pong);
    let mut ping = publisher(&t.ping);
    // The throughput runs' only publisher: exclusive (see `Topic::exclusive_publisher`).
    let mut tp = t.tp.exclusive_publisher().expect("exclusive publisher");
    tp.set_wait(Wait::Spin);
    let exe = std::env::current_exe().expect("current exe");
    let child = Command::new(exe)
        .env(ROLE_ENV, "pong")
        .env(DIR_ENV, &dir)
        .env("SHMBUS_BENCH_CPU", cfg.cpus.1.to_string())
        .spawn()
        .expect("spawn pong process");
    let quitting = Arc::new(AtomicBool::new(false));
    watch_child(child.id(), quitting.clone(), dir.clone());
    cleanup.child = Some(child);
    assert_eq!(recv_pong(&mut pongs).0, u64::MAX, "ready");

    // (b) round trips between the processes.
    let mut seq = 0u64;
    let mut rt = |ping: &mut Publisher<Ev>, pongs: &mut Subscriber<Ev>| {
        seq += 1;
        ping.send(&ev(seq, CMD_PING, 0)).expect("send ping");
        let (s, _, _) = recv_pong(pongs);
        assert_eq!(s, seq, "pong sequence");
    };
    for _ in 0..cfg.warmup {
        rt(&mut ping, &mut pongs);
    }
    let mut reps = Vec::new();
    for _ in 0..cfg.reps {
        let mut h = histogram();
        let mut t0 = Instant::now();
        for _ in 0..cfg.round_trips {
            rt(&mut ping, &mut pongs);
            let t = Instant::now();
            h.saturating_record((t - t0).as_nanos() as u64);
            t0 = t;
        }
        reps.push(Lat::of(&h));
    }
    let bus_lat = median_lat(&reps);

    // (c) throughput: N events from this process to the other, one `send` each.
    let rates = per_event_rates(&cfg, &mut ping, &mut pongs, &mut tp, &mut seq);
    // (c2) the same with `send_batch`, 64 events per call.
    const BATCH: u64 = 64;
    let mut batch_rates = Vec::new();
    let mut batch = Vec::with_capacity(BATCH as usize);
    for rep in 0..cfg.reps {
        seq += 1;
        ping.send(&ev(seq, CMD_THROUGHPUT, cfg.events))
            .expect("send command");
        let t0 = Instant::now();
        let mut i = 0;
        while i < cfg.events {
            batch.clear();
            batch.extend((i..(i + BATCH).min(cfg.events)).map(|k| ev(k, 0, rep as u64)));
            tp.send_batch(&batch).expect("send batch");
            i += batch.len() as u64;
        }
        let (s, cmd, n) = recv_pong(&mut pongs);
        let dt = t0.elapsed();
        assert_eq!((s, cmd, n), (seq, CMD_THROUGHPUT, cfg.events), "done");
        batch_rates.push(cfg.events as f64 / dt.as_secs_f64());
    }
    // (c1) the same as (c) from a shared publisher (several may publish on the topic).
    drop(tp);
    let mut tp = publisher(&t.tp);
    let shared_rates = per_event_rates(&cfg, &mut ping, &mut pongs, &mut tp, &mut seq);
    batch_rates.sort_by(f64::total_cmp);
    let batch_rate = batch_rates[batch_rates.len() / 2];
    seq += 1;
    quitting.store(true, Ordering::SeqCst);
    ping.send(&ev(seq, CMD_QUIT, 0)).expect("send quit");
    let rate = rates[rates.len() / 2];
    let shared_rate = shared_rates[shared_rates.len() / 2];
    // The pong process spins on CPU B until it has quit; (d) needs that CPU.
    if let Some(mut c) = cleanup.child.take() {
        let _ = c.wait();
    }

    // (d) the C ping-pong, receives waiting forever and with a timeout.
    let c_dir = dir.with_extension("c");
    let c_lat = c_exe.and_then(|exe| {
        let forever = c_pingpong(&cfg, &exe, &c_dir, -1)?;
        let timeout = c_pingpong(&cfg, &exe, &c_dir, 10_000_000_000)?;
        Ok((forever, timeout))
    });

    println!();
    println!("                                  p50      p99    p99.9     mean  (ns)");
    let row = |name: &str, l: &Lat| {
        println!(
            "{name:<30} {:>7} {:>8} {:>8} {:>8.1}",
            l.p50, l.p99, l.p999, l.mean
        )
    };
    row("(a) raw cache-line round trip", &raw);
    row("(b) shmbus round trip", &bus_lat);
    if let Ok((forever, timeout)) = &c_lat {
        row("(d) C round trip, recv(-1)", forever);
        row("(d) C round trip, recv(10 s)", timeout);
    }
    println!();
    println!(
        "ratio (b)/(a): p50 {:.2}  p99 {:.2}  p99.9 {:.2}  mean {:.2}   (target p50 <= 2.0)",
        bus_lat.p50 as f64 / raw.p50 as f64,
        bus_lat.p99 as f64 / raw.p99 as f64,
        bus_lat.p999 as f64 / raw.p999 as f64,
        bus_lat.mean / raw.mean,
    );
    match &c_lat {
        Ok((forever, timeout)) => {
            for (what, l) in [("recv(-1)", forever), ("recv(10 s)", timeout)] {
                println!(
                    "ratio (d)/(b), C {what:<10}: p50 {:.2}  p99 {:.2}  p99.9 {:.2}  mean {:.2}   \
                     (target p50 <= 1.10)",
                    l.p50 as f64 / bus_lat.p50 as f64,
                    l.p99 as f64 / bus_lat.p99 as f64,
                    l.p999 as f64 / bus_lat.p999 as f64,
                    l.mean / bus_lat.mean,
                );
            }
        }
        Err(why) => println!("(d) C round trip: SKIPPED: {why}"),
    }
    println!(
        "(c) throughput: {:.2} M events/s  ({:.2} GB/s of payload, {:.2} GB/s of ring) \
         median of {:?} M/s   (target >= 20 M/s)",
        rate / 1e6,
        rate * 32.0 / 1e9,
        rate * 64.0 / 1e9,
        rates
            .iter()
            .map(|r| (r / 1e4).round() / 100.0)
            .collect::<Vec<_>>()
    );
    println!(
        "(c1) throughput, shared publisher: {:.2} M events/s  median of {:?} M/s",
        shared_rate / 1e6,
        shared_rates
            .iter()
            .map(|r| (r / 1e4).round() / 100.0)
            .collect::<Vec<_>>()
    );
    println!(
        "(c2) throughput, send_batch of {BATCH}: {:.2} M events/s  ({:.2} GB/s of ring) \
         median of {:?} M/s   (target >= 20 M/s)",
        batch_rate / 1e6,
        batch_rate * 64.0 / 1e9,
        batch_rates
            .iter()
            .map(|r| (r / 1e4).round() / 100.0)
            .collect::<Vec<_>>()
    );
    drop(cleanup);
}
