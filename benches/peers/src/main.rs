//! shmbus against the physical floor and the peers users would pick instead, in one
//! run on the same two CPUs, written to `benches/RESULTS.md`.
//!
//! ```text
//! benches/run [--quick]        # setup (apt packages), build, run, write benches/RESULTS.md
//! cargo run --release --manifest-path benches/peers/Cargo.toml -- [--quick] [--out FILE]
//! ```
//!
//! Every measurement runs in child processes (this binary re-executed as
//! `peers child ...`, or the C ping-pong program), each pinned to one of the two CPUs;
//! the harness starts them in order, waits for each to say `ready`, sends `go` to all,
//! collects their result lines and takes medians over repetitions. Nothing in the
//! report is typed in by hand: every number comes from this run.
//!
//! Options: `--quick` (smaller counts, under two minutes after the build),
//! `--out FILE` (default `benches/RESULTS.md` of the repository), `--cpus A,B`
//! (default 0,1), `--only a,b` (sections: rtt, tput, wake, rate, profile, store),
//! `--no-store` (skip the store benchmark), `--doc FILE` (replace the section between
//! the two `benches/run writes this section` markers in FILE with the headline figures
//! and the targets; `benches/run` passes `docs/performance.md`).

mod child;
mod transports;
mod util;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::{median_f64, Pct};

const SIZES: [usize; 4] = [32, 256, 1024, 8192];

/// Throughput scenarios: label, producers, consumers, how shared-memory receivers and
/// back-pressured senders wait. Three processes on two CPUs must yield; two may spin,
/// and 1→1 is also run yielding to show what the wait strategy costs.
const SCENARIOS: [(&str, usize, usize, &str); 4] = [
    ("1→1 spin", 1, 1, "spin"),
    ("1→1 yield", 1, 1, "yield"),
    ("1→2 yield", 1, 2, "yield"),
    ("2→1 yield", 2, 1, "yield"),
];

struct Cfg {
    quick: bool,
    out: PathBuf,
    cpus: (usize, usize),
    only: Option<Vec<String>>,
    store: bool,
    doc: Option<PathBuf>,
    root: PathBuf,
    exe: PathBuf,
    base: PathBuf,
    command: String,
}

impl Cfg {
    fn wants(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|v| v.iter().any(|s| s == section))
    }

    /// Warm-up, round trips per repetition, repetitions for a ping-pong transport.
    fn rtt_counts(&self, slow: bool) -> (u64, u64, u64) {
        match (self.quick, slow) {
            (true, false) => (5_000, 20_000, 3),
            (true, true) => (1_000, 4_000, 3),
            (false, false) => (50_000, 200_000, 5),
            (false, true) => (5_000, 40_000, 5),
        }
    }

    fn reps(&self) -> usize {
        if self.quick {
            3
        } else {
            5
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child::main(&args[2..]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("profile") {
        profile_child(&args[2..]);
        return;
    }
    let cfg = parse_cli(&args);
    let started = Instant::now();
    std::fs::create_dir_all(&cfg.base).expect("create scratch directory");
    let mut h = Harness {
        cfg,
        group: 0,
        skipped: Vec::new(),
        notes: Vec::new(),
        loadavg: std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        redis: None,
        c_prog: None,
    };
    let report = h.run_all();
    let elapsed = started.elapsed();
    let md = h.render(&report, elapsed);
    if let Some(dir) = h.cfg.out.parent() {
        std::fs::create_dir_all(dir).ok();
    }
    std::fs::write(&h.cfg.out, &md).expect("write results");
    if let Some(doc) = h.cfg.doc.clone() {
        match update_doc(&doc, &h.doc_section(&report, &doc)) {
            Ok(()) => println!("updated the benchmark section of {}", doc.display()),
            Err(e) => eprintln!("{} not updated: {e}", doc.display()),
        }
    }
    h.stop_redis();
    std::fs::remove_dir_all(&h.cfg.base).ok();
    println!(
        "\nwrote {} in {:.1} s",
        h.cfg.out.display(),
        elapsed.as_secs_f64()
    );
}

fn parse_cli(args: &[String]) -> Cfg {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root");
    let mut cfg = Cfg {
        quick: false,
        out: root.join("benches/RESULTS.md"),
        cpus: (0, 1),
        only: None,
        store: true,
        doc: None,
        exe: std::env::current_exe().expect("current exe"),
        base: if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        }
        .join(format!("shmbus-peers-{}", std::process::id())),
        command: std::env::var("PEERS_COMMAND").unwrap_or_else(|_| {
            let mut c =
                String::from("cargo run --release --manifest-path benches/peers/Cargo.toml --");
            for a in &args[1..] {
                c.push(' ');
                c.push_str(a);
            }
            c
        }),
        root,
    };
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--quick" => cfg.quick = true,
            "--no-store" => cfg.store = false,
            "--out" => {
                i += 1;
                cfg.out = PathBuf::from(&args[i]);
            }
            "--doc" => {
                i += 1;
                cfg.doc = Some(PathBuf::from(&args[i]));
            }
            "--cpus" => {
                i += 1;
                let (a, b) = args[i].split_once(',').expect("--cpus A,B");
                cfg.cpus = (a.parse().expect("cpu"), b.parse().expect("cpu"));
            }
            "--only" => {
                i += 1;
                cfg.only = Some(args[i].split(',').map(str::to_string).collect());
            }
            "-h" | "--help" => {
                println!(
                    "usage: peers [--quick] [--out FILE] [--cpus A,B] [--only rtt,tput,wake,rate,profile,store] [--no-store] [--doc docs/performance.md]"
                );
                std::process::exit(0);
            }
            other => {
                eprintln!("unknown argument {other} (see --help)");
                std::process::exit(2);
            }
        }
        i += 1;
    }
    cfg
}

// ------------------------------------------------------------------ process groups

/// One process of a group: program and arguments.
struct Spec {
    program: PathBuf,
    args: Vec<String>,
}

enum Msg {
    Line(usize, String),
    Eof(usize),
}

/// Kills whatever is still running when a group ends early.
struct Group {
    children: Vec<Child>,
}

impl Drop for Group {
    fn drop(&mut self) {
        for c in &mut self.children {
            if let Ok(None) = c.try_wait() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Start `specs` one after the other (each after the previous one printed `ready`),
/// send `go` to all, and return each process's result lines.
fn run_group(specs: Vec<Spec>, timeout: Duration) -> Result<Vec<Vec<String>>, String> {
    let (tx, rx) = mpsc::channel::<Msg>();
    let mut g = Group {
        children: Vec::new(),
    };
    let errs: Vec<Arc<Mutex<String>>> = (0..specs.len())
        .map(|_| Arc::new(Mutex::new(String::new())))
        .collect();
    let mut out: Vec<Vec<String>> = vec![Vec::new(); specs.len()];
    let mut open = specs.len();
    let stderr_of = |i: usize| {
        let s = errs[i].lock().unwrap();
        let s = s.trim();
        // A panic: its location and message.
        if let Some(k) = s.find("panicked at") {
            return s[k..].lines().take(2).collect::<Vec<_>>().join(" ");
        }
        let tail: String = s
            .chars()
            .rev()
            .take(600)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if tail.is_empty() {
            "(no output on stderr)".to_string()
        } else {
            tail.replace('\n', " / ")
        }
    };
    let deadline = Instant::now() + timeout;
    let wait = |rx: &mpsc::Receiver<Msg>, until: Instant| -> Option<Msg> {
        let left = until.saturating_duration_since(Instant::now());
        rx.recv_timeout(left).ok()
    };
    for (i, spec) in specs.iter().enumerate() {
        let mut child = Command::new(&spec.program)
            .args(&spec.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spec.program.display()))?;
        let so = child.stdout.take().expect("stdout");
        let se = child.stderr.take().expect("stderr");
        let t = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(so).lines() {
                let Ok(line) = line else { break };
                if t.send(Msg::Line(i, line)).is_err() {
                    break;
                }
            }
            let _ = t.send(Msg::Eof(i));
        });
        let e = errs[i].clone();
        std::thread::spawn(move || {
            for line in BufReader::new(se).lines() {
                let Ok(line) = line else { break };
                let mut e = e.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        g.children.push(child);
        let ready_by = (Instant::now() + Duration::from_secs(30)).min(deadline);
        loop {
            match wait(&rx, ready_by) {
                Some(Msg::Line(j, l)) if l == "ready" && j == i => break,
                Some(Msg::Line(j, l)) => out[j].push(l),
                Some(Msg::Eof(j)) => {
                    std::thread::sleep(Duration::from_millis(50));
                    return Err(format!(
                        "process {j} exited before it was ready: {}",
                        stderr_of(j)
                    ));
                }
                None => {
                    return Err(format!(
                        "process {i} was not ready in time: {}",
                        stderr_of(i)
                    ))
                }
            }
        }
    }
    for c in &mut g.children {
        let stdin = c.stdin.as_mut().expect("stdin");
        if stdin
            .write_all(b"go\n")
            .and_then(|_| stdin.flush())
            .is_err()
        {
            return Err("a process closed its stdin before go".into());
        }
    }
    while open > 0 {
        match wait(&rx, deadline) {
            Some(Msg::Line(j, l)) => out[j].push(l),
            Some(Msg::Eof(j)) => {
                open -= 1;
                // A failed process fails the group at once (its peer may wait forever).
                let st = g.children[j].wait().map_err(|e| e.to_string())?;
                if !st.success() {
                    std::thread::sleep(Duration::from_millis(50));
                    return Err(format!("process {j} failed ({st}): {}", stderr_of(j)));
                }
            }
            None => return Err(format!("timed out after {timeout:?}")),
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ the harness

#[derive(Default)]
struct Report {
    /// (contender, size) -> round trip percentiles (medians over repetitions).
    rtt: BTreeMap<(String, usize), Pct>,
    /// (contender, scenario, size) -> events per second (median).
    tput: BTreeMap<(String, String, usize), f64>,
    wake: BTreeMap<String, Pct>,
    /// (contender, rate) -> one-way latency from the intended send time.
    rate: BTreeMap<(String, u64), Pct>,
    /// (contender, rate) -> fraction of sends that started > 10 µs late (median).
    late: BTreeMap<(String, u64), f64>,
    /// (contender) -> (instructions per send+receive, note)
    profile: Vec<(String, f64)>,
    profile_note: Option<String>,
    /// (contender, [(function, instructions per send + receive)]), the top ones.
    profile_funcs: Vec<(String, Vec<(String, f64)>)>,
    store: Option<String>,
}

struct Harness {
    cfg: Cfg,
    group: usize,
    /// (contender or section, reason)
    skipped: Vec<(String, String)>,
    notes: Vec<String>,
    loadavg: String,
    redis: Option<(Child, PathBuf)>,
    c_prog: Option<PathBuf>,
}

/// Display names, in table order.
const RTT_CONTENDERS: [(&str, &str); 9] = [
    ("floor-threads", "floor: two threads (shared line)"),
    ("floor", "floor: two processes (shared mapping)"),
    ("shmbus", "shmbus, Rust API"),
    ("shmbus-c", "shmbus, C ABI"),
    ("iceoryx2", "iceoryx2 (ipc, publish-subscribe)"),
    ("uds", "Unix domain socket (stream)"),
    ("pipe", "pipe (two FIFOs)"),
    ("zmq", "ZeroMQ PAIR over ipc://"),
    ("redis", "Redis pub/sub over a Unix socket"),
];

fn name_of(key: &str) -> &str {
    RTT_CONTENDERS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, n)| *n)
        .unwrap_or(key)
}

impl Harness {
    fn scratch(&mut self) -> (PathBuf, String) {
        self.group += 1;
        let dir = self.cfg.base.join(format!("g{}", self.group));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        (dir, format!("peers{}x{}", std::process::id(), self.group))
    }

    fn child_spec(&self, args: Vec<String>) -> Spec {
        let mut a = vec!["child".to_string()];
        a.extend(args);
        Spec {
            program: self.cfg.exe.clone(),
            args: a,
        }
    }

    fn skip(&mut self, what: &str, why: String) {
        println!("  skipped {what}: {why}");
        self.skipped.push((what.to_string(), why));
    }

    fn run_all(&mut self) -> Report {
        let mut r = Report::default();
        println!(
            "shmbus peers benchmark{}: CPUs {} and {}",
            if self.cfg.quick { " (quick)" } else { "" },
            self.cfg.cpus.0,
            self.cfg.cpus.1
        );
        if self.cfg.wants("rtt") {
            self.prepare_peers();
            self.rtt(&mut r);
        }
        if self.cfg.wants("tput") {
            self.tput(&mut r);
        }
        if self.cfg.wants("wake") {
            self.wake(&mut r);
        }
        if self.cfg.wants("rate") {
            self.rate(&mut r);
        }
        if self.cfg.wants("profile") {
            self.profile(&mut r);
        }
        if self.cfg.wants("store") && self.cfg.store {
            r.store = self.store();
        }
        r
    }

    /// Build the C contender and start redis-server; record why when impossible.
    fn prepare_peers(&mut self) {
        match self.build_c() {
            Ok(p) => self.c_prog = Some(p),
            Err(e) => self.skip("shmbus-c", e),
        }
        if !cfg!(feature = "zmq") {
            self.skip(
                "zmq",
                "built without the `zmq` feature (libzmq was not found at build time)".into(),
            );
        }
        match self.start_redis() {
            Ok(()) => {}
            Err(e) => self.skip("redis", e),
        }
    }

    fn root_target_dir(&self) -> PathBuf {
        std::env::var_os("SHMBUS_ROOT_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.cfg.root.join("target"))
    }

    fn build_c(&self) -> Result<PathBuf, String> {
        let td = self.root_target_dir();
        println!(
            "building libshmbus (cargo build -p shmbus-c --release, target {})",
            td.display()
        );
        let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "shmbus-c", "--release", "--quiet"])
            .current_dir(&self.cfg.root)
            .env("CARGO_TARGET_DIR", &td)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !st.success() {
            return Err(format!("cargo build -p shmbus-c failed ({st})"));
        }
        let lib = td.join("release");
        let out = self.cfg.base.join("pingpong_peers");
        let src = self.cfg.root.join("benches/peers/c/pingpong_peers.c");
        let inc = self.cfg.root.join("bindings/c/include");
        let o = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror"])
            .arg("-I")
            .arg(&inc)
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .arg(format!("-L{}", lib.display()))
            .arg("-lshmbus")
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .output()
            .map_err(|e| format!("cannot run cc: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "cc failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(out)
    }

    fn start_redis(&mut self) -> Result<(), String> {
        let sock = self.cfg.base.join("redis.sock");
        let cpus = [self.cfg.cpus.0, self.cfg.cpus.1];
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", "0", "--unixsocket"])
            .arg(&sock)
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
            ])
            .arg(&self.cfg.base)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: the closure only calls sched_setaffinity (async-signal-safe).
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                util::allow_cpus(&cpus);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("redis-server not available ({e}); run benches/peers/setup.sh"))?;
        self.redis = Some((child, sock.clone()));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = std::os::unix::net::UnixStream::connect(&sock) {
                let _ = s.write_all(b"*1\r\n$4\r\nPING\r\n");
                let mut b = [0u8; 7];
                if std::io::Read::read_exact(&mut s, &mut b).is_ok() && &b == b"+PONG\r\n" {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                self.stop_redis();
                return Err("redis-server did not answer PING within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_redis(&mut self) {
        if let Some((mut c, _)) = self.redis.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn available(&self, key: &str) -> bool {
        !self.skipped.iter().any(|(k, _)| k == key)
    }

    // -------------------------------------------------------------- round trip

    fn rtt(&mut self, r: &mut Report) {
        println!("round trip between two processes, payloads {SIZES:?}");
        for (key, _) in RTT_CONTENDERS {
            if !self.available(key) {
                continue;
            }
            let slow = matches!(key, "uds" | "pipe" | "zmq" | "redis");
            let (warm, rounds, reps) = self.cfg.rtt_counts(slow);
            for size in SIZES {
                let (dir, tag) = self.scratch();
                let common = |first: bool, cpu: usize| -> Vec<String> {
                    let mut v = vec![
                        format!("size={size}"),
                        format!("warm={warm}"),
                        format!("rounds={rounds}"),
                        format!("reps={reps}"),
                        format!("cpu={cpu}"),
                        format!("dir={}", dir.display()),
                        format!("tag={tag}"),
                        "wait=spin".into(),
                        format!("first={}", first as u8),
                    ];
                    if let Some((_, s)) = &self.redis {
                        v.push(format!("redis={}", s.display()));
                    }
                    v
                };
                let (a, b) = self.cfg.cpus;
                let specs = match key {
                    "floor-threads" => {
                        let mut v = vec!["rtt".into(), "floor".into(), "threads".into()];
                        v.extend(common(true, a));
                        v.push(format!("cpu2={b}"));
                        vec![self.child_spec(v)]
                    }
                    "shmbus-c" => {
                        let prog = self.c_prog.clone().expect("C program");
                        let bus = dir.join("bus");
                        let c = |role: &str, cpu: usize| Spec {
                            program: prog.clone(),
                            args: vec![
                                role.into(),
                                bus.display().to_string(),
                                size.to_string(),
                                warm.to_string(),
                                rounds.to_string(),
                                reps.to_string(),
                                cpu.to_string(),
                            ],
                        };
                        vec![c("pong", b), c("ping", a)]
                    }
                    _ => {
                        let mut pong = vec!["rtt".into(), key.into(), "pong".into()];
                        pong.extend(common(true, b));
                        let mut ping = vec!["rtt".into(), key.into(), "ping".into()];
                        ping.extend(common(false, a));
                        vec![self.child_spec(pong), self.child_spec(ping)]
                    }
                };
                let timeout = Duration::from_secs(if self.cfg.quick { 60 } else { 300 });
                let t0 = Instant::now();
                let res = run_group(specs, timeout);
                if std::env::var_os("PEERS_VERBOSE").is_some() {
                    eprintln!(
                        "    ({key} {size} B took {:.2} s)",
                        t0.elapsed().as_secs_f64()
                    );
                }
                match res {
                    Ok(out) => {
                        let lats: Vec<Pct> = out
                            .last()
                            .unwrap()
                            .iter()
                            .filter_map(|l| Pct::parse(l))
                            .collect();
                        if lats.is_empty() {
                            self.skip(key, format!("{size} B: no result lines"));
                            break;
                        }
                        let m = Pct::median(&lats);
                        println!(
                            "  {:<40} {size:>5} B  p50 {:>7} ns  p99 {:>8}  p99.9 {:>8}  max {:>9}",
                            name_of(key),
                            m.p50,
                            m.p99,
                            m.p999,
                            m.max
                        );
                        r.rtt.insert((key.to_string(), size), m);
                    }
                    Err(e) => {
                        self.skip(key, format!("{size} B round trip failed: {e}"));
                        break;
                    }
                }
                std::fs::remove_dir_all(&dir).ok();
            }
        }
        self.stop_redis();
    }

    // -------------------------------------------------------------- throughput

    fn tput(&mut self, r: &mut Report) {
        println!("throughput (events/s), median of {} runs", self.cfg.reps());
        for (scen, prods, conss, wait) in SCENARIOS {
            for size in [32usize, 1024] {
                for key in ["shmbus", "iceoryx2", "uds"] {
                    if key == "uds" && scen != SCENARIOS[0].0 {
                        continue;
                    }
                    let n: u64 = match (self.cfg.quick, size) {
                        (true, 32) => 300_000,
                        (true, _) => 100_000,
                        (false, 32) => 5_000_000,
                        (false, _) => 1_000_000,
                    } / prods as u64;
                    let n = if key == "uds" { n / 4 } else { n };
                    let mut rates = Vec::new();
                    let mut failed = None;
                    for _ in 0..self.cfg.reps() {
                        let (dir, tag) = self.scratch();
                        let (a, b) = self.cfg.cpus;
                        let mut specs = Vec::new();
                        let arg = |role: &str, cpu: usize, id: usize, first: bool| {
                            vec![
                                "tput".to_string(),
                                key.to_string(),
                                role.to_string(),
                                format!("size={size}"),
                                format!("n={n}"),
                                format!("producers={prods}"),
                                format!("consumers={conss}"),
                                format!("id={id}"),
                                format!("cpu={cpu}"),
                                format!("dir={}", dir.display()),
                                format!("tag={tag}"),
                                format!("wait={wait}"),
                                format!("first={}", first as u8),
                            ]
                        };
                        for c in 0..conss {
                            specs.push(self.child_spec(arg("cons", b, c, true)));
                        }
                        for p in 0..prods {
                            specs.push(self.child_spec(arg("prod", a, p, false)));
                        }
                        let timeout = Duration::from_secs(if self.cfg.quick { 60 } else { 300 });
                        match run_group(specs, timeout) {
                            Ok(out) => {
                                let num = |p: &str| -> Vec<u64> {
                                    out.iter()
                                        .flatten()
                                        .filter_map(|l| l.strip_prefix(p)?.trim().parse().ok())
                                        .collect()
                                };
                                let (starts, dones) = (num("start "), num("done "));
                                if starts.len() != prods || dones.len() != conss {
                                    failed = Some("missing start/done lines".to_string());
                                    break;
                                }
                                let t = dones.iter().max().unwrap() - starts.iter().min().unwrap();
                                rates.push((n * prods as u64) as f64 / (t as f64 / 1e9));
                            }
                            Err(e) => {
                                failed = Some(e);
                                break;
                            }
                        }
                        std::fs::remove_dir_all(&dir).ok();
                    }
                    match failed {
                        Some(e) => self.skip(&format!("throughput {key} {scen} {size} B"), e),
                        None => {
                            let m = median_f64(rates);
                            println!(
                                "  {scen} {size:>5} B  {:<10} {:>7.2} M events/s  {:>6.2} GB/s",
                                key,
                                m / 1e6,
                                m * size as f64 / 1e9
                            );
                            r.tput.insert((key.to_string(), scen.to_string(), size), m);
                        }
                    }
                }
            }
        }
    }

    // -------------------------------------------------------------- wake-up

    fn wake(&mut self, r: &mut Report) {
        let gap = 50_000u64;
        let (warm, rounds, reps) = if self.cfg.quick {
            (200, 2_000, 3)
        } else {
            (1_000, 20_000, 5)
        };
        println!("wake-up: blocking round trips after {} µs idle", gap / 1000);
        for key in ["shmbus", "iceoryx2-event", "uds", "pipe"] {
            let (dir, tag) = self.scratch();
            let size = if key == "iceoryx2-event" { 0 } else { 32 };
            let (a, b) = self.cfg.cpus;
            let arg = |role: &str, cpu: usize, first: bool| {
                vec![
                    "wake".to_string(),
                    key.to_string(),
                    role.to_string(),
                    format!("size={size}"),
                    format!("warm={warm}"),
                    format!("rounds={rounds}"),
                    format!("reps={reps}"),
                    format!("gap={gap}"),
                    format!("cpu={cpu}"),
                    format!("dir={}", dir.display()),
                    format!("tag={tag}"),
                    "wait=block".into(),
                    format!("first={}", first as u8),
                ]
            };
            let specs = vec![
                self.child_spec(arg("pong", b, true)),
                self.child_spec(arg("ping", a, false)),
            ];
            match run_group(specs, Duration::from_secs(120)) {
                Ok(out) => {
                    let lats: Vec<Pct> = out[1].iter().filter_map(|l| Pct::parse(l)).collect();
                    let m = Pct::median(&lats);
                    println!(
                        "  {key:<16} p50 {:>7} ns  p99 {:>8}  p99.9 {:>8}",
                        m.p50, m.p99, m.p999
                    );
                    r.wake.insert(key.to_string(), m);
                }
                Err(e) => self.skip(&format!("wake-up {key}"), e),
            }
            std::fs::remove_dir_all(&dir).ok();
        }
    }

    // -------------------------------------------------------------- fixed rate

    fn rate(&mut self, r: &mut Report) {
        let secs = if self.cfg.quick { 0.3 } else { 3.0 };
        println!("fixed offered rate, 32-byte events, {secs} s per run");
        for rate in [100_000u64, 1_000_000] {
            for key in ["shmbus", "iceoryx2", "uds"] {
                let n = (rate as f64 * secs) as u64;
                let mut lats = Vec::new();
                let mut lates = Vec::new();
                let mut failed = None;
                for _ in 0..self.cfg.reps() {
                    let (dir, tag) = self.scratch();
                    let (a, b) = self.cfg.cpus;
                    let arg = |role: &str, cpu: usize, first: bool| {
                        vec![
                            "rate".to_string(),
                            key.to_string(),
                            role.to_string(),
                            "size=32".into(),
                            format!("n={n}"),
                            format!("rate={rate}"),
                            "producers=1".into(),
                            "consumers=1".into(),
                            "id=0".into(),
                            format!("cpu={cpu}"),
                            format!("dir={}", dir.display()),
                            format!("tag={tag}"),
                            "wait=spin".into(),
                            format!("first={}", first as u8),
                        ]
                    };
                    let specs = vec![
                        self.child_spec(arg("cons", b, true)),
                        self.child_spec(arg("prod", a, false)),
                    ];
                    match run_group(specs, Duration::from_secs(120)) {
                        Ok(out) => {
                            lats.extend(out[0].iter().filter_map(|l| Pct::parse(l)));
                            lates.extend(out[1].iter().filter_map(|l| {
                                let mut v = l.strip_prefix("late ")?.split_whitespace();
                                let late: f64 = v.next()?.parse().ok()?;
                                let of: f64 = v.next()?.parse().ok()?;
                                Some(late / of.max(1.0))
                            }));
                        }
                        Err(e) => {
                            failed = Some(e);
                            break;
                        }
                    }
                    std::fs::remove_dir_all(&dir).ok();
                }
                match failed {
                    Some(e) => self.skip(&format!("rate {key} {rate}/s"), e),
                    None if !lats.is_empty() => {
                        let m = Pct::median(&lats);
                        println!(
                            "  {:>9}/s {key:<10} p50 {:>8} ns  p99 {:>9}  p99.9 {:>9}",
                            rate, m.p50, m.p99, m.p999
                        );
                        r.rate.insert((key.to_string(), rate), m);
                        if !lates.is_empty() {
                            r.late.insert((key.to_string(), rate), median_f64(lates));
                        }
                    }
                    None => self.skip(&format!("rate {key} {rate}/s"), "no result".into()),
                }
            }
        }
    }

    // -------------------------------------------------------------- profile

    /// Instructions per send + receive of one 32-byte message inside one process
    /// (no waiting involved), counted by callgrind as the difference of two runs.
    fn profile(&mut self, r: &mut Report) {
        let have = Command::new("valgrind")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !have {
            r.profile_note = Some("valgrind is not installed: no instruction counts".into());
            return;
        }
        let perf = Command::new("perf")
            .args(["stat", "-x,", "-e", "instructions", "true"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
            .unwrap_or_default();
        if perf.is_empty() || perf.contains("not supported") || perf.contains("<not") {
            self.notes.push(
                "`perf stat -e instructions,cycles` reports the counters as not supported on this machine (a VM without a PMU), so instruction counts come from `valgrind --tool=callgrind`.".into(),
            );
        }
        println!("callgrind: instructions per send + receive (32 B, one process)");
        let (n1, n2) = (2_000u64, 22_000u64);
        for key in ["floor", "shmbus", "iceoryx2"] {
            let mut ir = Vec::new();
            let mut funcs = Vec::new();
            for n in [n1, n2] {
                let (dir, tag) = self.scratch();
                let outf = dir.join("cg.out");
                let o = Command::new("valgrind")
                    .args(["--tool=callgrind", "--cache-sim=no"])
                    .arg(format!("--callgrind-out-file={}", outf.display()))
                    .arg(&self.cfg.exe)
                    .args(["profile", key, &n.to_string()])
                    .arg(dir.display().to_string())
                    .arg(&tag)
                    .output();
                let total = o
                    .ok()
                    .and_then(|_| std::fs::read_to_string(&outf).ok())
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| {
                                l.strip_prefix("summary:")
                                    .or_else(|| l.strip_prefix("totals:"))
                            })
                            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    });
                funcs.push(callgrind_functions(&outf));
                std::fs::remove_dir_all(&dir).ok();
                match total {
                    Some(t) => ir.push(t),
                    None => break,
                }
            }
            if ir.len() == 2 {
                let per = (ir[1] as f64 - ir[0] as f64) / (n2 - n1) as f64;
                println!("  {key:<10} {per:>8.0} instructions");
                r.profile.push((key.to_string(), per));
                // Where they go: per-function differences between the two runs.
                if key != "floor" && funcs.len() == 2 {
                    let mut v: Vec<(String, f64)> = funcs[1]
                        .iter()
                        .map(|(f, &c)| {
                            let c0 = funcs[0].get(f).copied().unwrap_or(0);
                            (f.clone(), (c as f64 - c0 as f64) / (n2 - n1) as f64)
                        })
                        .filter(|(_, c)| *c >= 1.0)
                        .collect();
                    v.sort_by(|a, b| b.1.total_cmp(&a.1));
                    v.truncate(8);
                    r.profile_funcs.push((key.to_string(), v));
                }
            } else {
                self.skip(&format!("profile {key}"), "callgrind run failed".into());
            }
        }
    }

    // -------------------------------------------------------------- store

    fn store(&mut self) -> Option<String> {
        let bench = self.cfg.root.join("benches/store.rs");
        if !bench.exists() {
            println!("store benchmark not present");
            self.notes.push(
                "store benchmark not present (benches/store.rs does not exist): skipped.".into(),
            );
            return None;
        }
        println!("running the store benchmark (cargo bench --bench store)");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["bench", "--bench", "store", "--"]);
        if self.cfg.quick {
            cmd.arg("--quick");
        }
        let limit = Duration::from_secs(if self.cfg.quick { 600 } else { 3600 });
        let o = run_with_limit(
            cmd.current_dir(&self.cfg.root)
                .env("CARGO_TARGET_DIR", self.root_target_dir()),
            limit,
        );
        match o {
            Ok((status, stdout)) if status.success() => {
                let s = stdout;
                print!("{s}");
                // Its Markdown section: from the first heading or table line on.
                let start = s
                    .lines()
                    .position(|l| l.starts_with('#') || l.starts_with('|'));
                Some(match start {
                    Some(i) => s.lines().skip(i).collect::<Vec<_>>().join("\n"),
                    None => format!("```text\n{}\n```", s.trim()),
                })
            }
            Ok((status, _)) => {
                self.skip(
                    "store",
                    format!("cargo bench --bench store failed ({status})"),
                );
                None
            }
            Err(e) => {
                self.skip("store", e);
                None
            }
        }
    }

    // -------------------------------------------------------------- report

    fn render(&self, r: &Report, elapsed: Duration) -> String {
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(w, "# shmbus versus the floor and its peers\n");
        if self.cfg.quick {
            let _ = writeln!(
                w,
                "> **Provisional** (`--quick`: small counts, taken on a shared 2-CPU machine while other \
                 builds were running, so timings are noisy). Regenerate on a quiet machine with \
                 the full command below.\n"
            );
        }
        let _ = writeln!(
            w,
            "- Date: {}",
            sh("date", &["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        );
        let _ = writeln!(w, "- Kernel: {}", sh("uname", &["-r"]));
        let _ = writeln!(w, "- CPU: {}", lscpu_summary());
        let _ = writeln!(w, "- Load average before the run: {}", self.loadavg);
        let _ = writeln!(
            w,
            "- Command: `{}` ({:.0} s)",
            self.cfg.command,
            elapsed.as_secs_f64()
        );
        let _ = writeln!(
            w,
            "- Pinning: every measuring process is pinned to CPU {} or CPU {} (ping / producers on {}, \
             pong / consumers on {}); warm-up first; each figure is the median over {} repetitions.\n",
            self.cfg.cpus.0,
            self.cfg.cpus.1,
            self.cfg.cpus.0,
            self.cfg.cpus.1,
            self.cfg.reps()
        );

        // Targets first: what the run shows.
        let _ = writeln!(w, "## Targets\n");
        for line in self.targets(r) {
            let _ = writeln!(w, "- {line}");
        }
        let _ = writeln!(w);

        // Round trips.
        let _ = writeln!(w, "## Round trip between two processes\n");
        let _ = writeln!(
            w,
            "One process sends a message of the given size, the other echoes it straight from its \
             receive buffer, the first checks the echo. Busy-polling receivers for the shared-memory \
             transports, blocking reads for the kernel ones. Nanoseconds; HDR histograms (3 significant digits); \
             ratios are p50 divided by the p50 of the reference at the same size. Up to 48 bytes the \
             floor is one cache line each way; beyond that it is a plain copy into a shared buffer \
             plus a flag, a reference point rather than a strict lower bound.\n"
        );
        for size in SIZES {
            let _ = writeln!(w, "### {} payload\n", human(size));
            let _ = writeln!(
                w,
                "| contender | p50 | p99 | p99.9 | p99.99 | max | ÷ floor | ÷ iceoryx2 | ÷ UDS |"
            );
            let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
            let refp = |k: &str| r.rtt.get(&(k.to_string(), size)).map(|p| p.p50 as f64);
            for (key, name) in RTT_CONTENDERS {
                let Some(p) = r.rtt.get(&(key.to_string(), size)) else {
                    continue;
                };
                let ratio = |k: &str| {
                    refp(k).map_or("—".to_string(), |d| format!("{:.2}", p.p50 as f64 / d))
                };
                let bold = if key == "shmbus" || key == "shmbus-c" {
                    "**"
                } else {
                    ""
                };
                let _ = writeln!(
                    w,
                    "| {bold}{name}{bold} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    p.p50,
                    p.p99,
                    p.p999,
                    p.p9999,
                    p.max,
                    ratio("floor"),
                    ratio("iceoryx2"),
                    ratio("uds")
                );
            }
            let _ = writeln!(w);
        }

        // Throughput.
        let _ = writeln!(w, "## Throughput\n");
        let _ = writeln!(
            w,
            "Producers on CPU {}, consumers on CPU {}; every consumer receives every event \
             (broadcast) and checks each producer's sequence. Rate = events delivered to each consumer \
             ÷ (last consumer done − first producer start). `spin`: shared-memory receivers and \
             back-pressured senders busy-poll; `yield`: they call `sched_yield` between polls (needed \
             when three processes share the two CPUs). UDS (blocking reads) is run once. Both shmbus and iceoryx2 are lossless (shmbus reliable mode, 1 MiB ring; iceoryx2 \
             `RetryUntilDelivered`, {}-sample subscriber buffers). GB/s counts payload bytes.\n",
            self.cfg.cpus.0,
            self.cfg.cpus.1,
            transports::ICE_BUFFER
        );
        let _ = writeln!(
            w,
            "| scenario | size | shmbus M ev/s | shmbus GB/s | iceoryx2 M ev/s | iceoryx2 GB/s | shmbus ÷ iceoryx2 | UDS M ev/s | shmbus ÷ UDS |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (scen, ..) in SCENARIOS {
            for size in [32usize, 1024] {
                let g = |k: &str| {
                    r.tput
                        .get(&(k.to_string(), scen.to_string(), size))
                        .copied()
                };
                let (sb, ic, ud) = (g("shmbus"), g("iceoryx2"), g("uds"));
                if sb.is_none() && ic.is_none() {
                    continue;
                }
                let m = |v: Option<f64>| v.map_or("—".into(), |v| format!("{:.2}", v / 1e6));
                let gb = |v: Option<f64>| {
                    v.map_or("—".into(), |v| format!("{:.2}", v * size as f64 / 1e9))
                };
                let q = |a: Option<f64>, b: Option<f64>| match (a, b) {
                    (Some(a), Some(b)) => format!("{:.2}", a / b),
                    _ => "—".into(),
                };
                let _ = writeln!(
                    w,
                    "| {scen} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    human(size),
                    m(sb),
                    gb(sb),
                    m(ic),
                    gb(ic),
                    q(sb, ic),
                    m(ud),
                    q(sb, ud)
                );
            }
        }
        let _ = writeln!(w);

        // Wake-up.
        let _ = writeln!(w, "## Wake-up latency (blocking waits)\n");
        let _ = writeln!(
            w,
            "Ping-pong where both receivers block (shmbus `Wait::Block`: futex; iceoryx2: event \
             service, `Listener::blocking_wait` / `Notifier::notify`; UDS and pipe: blocking `read`). \
             Before each round trip the sender idles 50 µs so the other side is asleep: a round \
             trip is two wake-ups. 32-byte messages (iceoryx2 events carry no payload). Nanoseconds.\n"
        );
        let _ = writeln!(
            w,
            "| contender | p50 | p99 | p99.9 | p99.99 | max | ÷ UDS |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|");
        let wake_names = [
            ("shmbus", "shmbus, `Wait::Block` (futex)"),
            ("iceoryx2-event", "iceoryx2 event service"),
            ("uds", "Unix domain socket, blocking read"),
            ("pipe", "pipe, blocking read"),
        ];
        for (k, n) in wake_names {
            if let Some(p) = r.wake.get(k) {
                let rel = r.wake.get("uds").map_or("—".into(), |u| {
                    format!("{:.2}", p.p50 as f64 / u.p50 as f64)
                });
                let _ = writeln!(
                    w,
                    "| {n} | {} | {} | {} | {} | {} | {rel} |",
                    p.p50, p.p99, p.p999, p.p9999, p.max
                );
            }
        }
        let _ = writeln!(w);

        // Fixed rate.
        let _ = writeln!(w, "## Latency at a fixed offered rate\n");
        let _ = writeln!(
            w,
            "The producer sends 32-byte events on a fixed schedule and stamps each with its \
             intended send time; the consumer records arrival − intended time, so a stalled or \
             back-pressured producer shows up as latency (coordinated omission corrected). The first \
             10% of each run is warm-up. One-way, nanoseconds. The shared-memory producer and consumer \
             both spin, so they need their two CPUs to themselves: any other runnable process on \
             those CPUs takes time slices from them, which shows up here in full (check the load \
             average above). The last column counts the sends that began more than 10 µs after \
             their due time (producer descheduled, or held back by a full ring/queue): when it is \
             high, the latency is the producer's lateness, not the transport's.\n"
        );
        let _ = writeln!(
            w,
            "| rate | contender | p50 | p99 | p99.9 | max | sends started > 10 µs late |"
        );
        let _ = writeln!(w, "|---|---|---:|---:|---:|---:|---:|");
        for rate in [100_000u64, 1_000_000] {
            for (k, n) in [
                ("shmbus", "shmbus"),
                ("iceoryx2", "iceoryx2"),
                ("uds", "Unix domain socket"),
            ] {
                if let Some(p) = r.rate.get(&(k.to_string(), rate)) {
                    let _ = writeln!(
                        w,
                        "| {} k/s | {n} | {} | {} | {} | {} | {} |",
                        rate / 1000,
                        p.p50,
                        p.p99,
                        p.p999,
                        p.max,
                        r.late
                            .get(&(k.to_string(), rate))
                            .map_or("—".into(), |f| format!("{:.1}%", f * 100.0))
                    );
                }
            }
        }
        let _ = writeln!(w);

        // Profile.
        let _ = writeln!(w, "## Instruction counts\n");
        if let Some(n) = &r.profile_note {
            let _ = writeln!(w, "{n}\n");
        }
        if !r.profile.is_empty() {
            let _ = writeln!(
                w,
                "`valgrind --tool=callgrind`: instructions for one send plus one receive of a \
                 32-byte message in a single process (publisher and subscriber of the same \
                 topic/service, so no waiting is counted), from the difference of two runs \
                 of different lengths. A round trip is two of these plus the wait.\n"
            );
            let _ = writeln!(w, "| contender | instructions per send + receive |");
            let _ = writeln!(w, "|---|---:|");
            for (k, v) in &r.profile {
                let _ = writeln!(
                    w,
                    "| {} | {v:.0} |",
                    if k == "floor" {
                        "floor (copy + release store + acquire load)"
                    } else {
                        k
                    }
                );
            }
            let _ = writeln!(w);
        }

        for (k, fs) in &r.profile_funcs {
            let _ = writeln!(
                w,
                "Where {k}'s instructions go (self cost per send + receive, by function as \
                 callgrind attributes it after inlining: `shmbus_peers_bench::main` is the harness's \
                 loop together with whatever the compiler inlined into it; top {}):\n",
                fs.len()
            );
            let _ = writeln!(w, "| function | instructions |");
            let _ = writeln!(w, "|---|---:|");
            for (f, c) in fs {
                let f = f.replace('|', "\\|");
                let _ = writeln!(w, "| `{f}` | {c:.0} |");
            }
            let _ = writeln!(w);
        }

        // Store.
        let _ = writeln!(w, "## Store\n");
        match &r.store {
            Some(md) => {
                let _ = writeln!(
                    w,
                    "Output of `cargo bench --bench store{}`:\n",
                    if self.cfg.quick { " -- --quick" } else { "" }
                );
                let _ = writeln!(w, "{md}\n");
            }
            None => {
                let _ = writeln!(w, "Not measured in this run (see notes).\n");
            }
        }

        let _ = writeln!(w, "## Skipped and notes\n");
        if self.skipped.is_empty() && self.notes.is_empty() {
            let _ = writeln!(w, "Nothing was skipped.");
        }
        for (k, why) in &self.skipped {
            let _ = writeln!(w, "- skipped **{k}**: {why}");
        }
        for n in &self.notes {
            let _ = writeln!(w, "- {n}");
        }
        s
    }

    /// The summary written into `doc` (see `--doc`): headline figures and the targets,
    /// with a link to the full results relative to `doc`'s directory.
    fn doc_section(&self, r: &Report, doc: &Path) -> String {
        let results = relative_link(doc, &self.cfg.out);
        let mut s = String::new();
        let w = &mut s;
        let _ = writeln!(
            w,
            "`{}` ({}; {}, kernel {}, {}). Full tables, method and notes: \
             [`benches/RESULTS.md`]({results}).{}\n",
            self.cfg.command,
            if self.cfg.quick {
                "quick mode"
            } else {
                "full run"
            },
            lscpu_summary().split(',').next().unwrap_or("?"),
            sh("uname", &["-r"]),
            sh("date", &["-u", "+%Y-%m-%d"]),
            if self.cfg.quick {
                " **Provisional**: quick mode on a busy shared machine; the lead re-runs the full command on a quiet one."
            } else {
                ""
            }
        );
        let cols = [
            ("floor", "floor (2 proc.)"),
            ("shmbus", "shmbus"),
            ("shmbus-c", "shmbus C"),
            ("iceoryx2", "iceoryx2"),
            ("uds", "UDS"),
            ("pipe", "pipe"),
            ("zmq", "ZeroMQ"),
            ("redis", "Redis"),
        ];
        let _ = write!(w, "| two processes, pinned |");
        for (_, n) in cols {
            let _ = write!(w, " {n} |");
        }
        let _ = writeln!(w);
        let _ = write!(w, "|---|");
        for _ in cols {
            let _ = write!(w, "---:|");
        }
        let _ = writeln!(w);
        for size in [32usize, 1024, 8192] {
            let _ = write!(w, "| round trip p50, {} |", human(size));
            for (k, _) in cols {
                let v = r.rtt.get(&(k.to_string(), size));
                let _ = write!(
                    w,
                    " {} |",
                    v.map_or("—".into(), |p| format!("{} ns", p.p50))
                );
            }
            let _ = writeln!(w);
        }
        let _ = write!(w, "| round trip p99.9, 32 B |");
        for (k, _) in cols {
            let v = r.rtt.get(&(k.to_string(), 32));
            let _ = write!(
                w,
                " {} |",
                v.map_or("—".into(), |p| format!("{} ns", p.p999))
            );
        }
        let _ = writeln!(w);
        let _ = write!(w, "| 1→1 throughput, 32 B |");
        for (k, _) in cols {
            let v = r.tput.get(&(k.to_string(), SCENARIOS[0].0.to_string(), 32));
            let _ = write!(
                w,
                " {} |",
                v.map_or("—".into(), |v| format!("{:.2} M/s", v / 1e6))
            );
        }
        let _ = writeln!(w);
        let _ = write!(w, "| blocking wake-up round trip p50 |");
        for (k, _) in cols {
            let k = if k == "iceoryx2" { "iceoryx2-event" } else { k };
            let v = r.wake.get(k);
            let _ = write!(
                w,
                " {} |",
                v.map_or("—".into(), |p| format!("{} ns", p.p50))
            );
        }
        let _ = writeln!(w);
        let _ = writeln!(w);
        for t in self.targets(r) {
            let _ = writeln!(w, "- {t}");
        }
        s
    }

    /// One line per target, each marked met / not met with its numbers.
    fn targets(&self, r: &Report) -> Vec<String> {
        let mut out = Vec::new();
        let p50 = |k: &str, s: usize| r.rtt.get(&(k.to_string(), s)).map(|p| p.p50);
        let mark = |ok: bool| if ok { "**met**" } else { "**not met**" };
        // 1. floor
        match (
            p50("shmbus", 32),
            p50("floor", 32),
            p50("floor-threads", 32),
        ) {
            (Some(b), Some(f), ft) => {
                let q = b as f64 / f as f64;
                let extra = ft.map_or(String::new(), |t| {
                    format!(
                        "; versus the two-thread floor ({t} ns) {:.2}×",
                        b as f64 / t as f64
                    )
                });
                out.push(format!(
                    "shmbus p50 round trip ≤ 2.0× the floor (32 B, two processes): {} — {b} ns vs {f} ns = {q:.2}×{extra}",
                    mark(q <= 2.0)
                ));
            }
            _ => out.push("shmbus p50 round trip ≤ 2.0× the floor: not measured".into()),
        }
        // 2. iceoryx2 at every size
        let mut all = true;
        let mut parts = Vec::new();
        let mut any = false;
        for s in SIZES {
            if let (Some(b), Some(i)) = (p50("shmbus", s), p50("iceoryx2", s)) {
                any = true;
                let q = b as f64 / i as f64;
                all &= q <= 1.0;
                parts.push(format!("{}: {b} vs {i} ns = {q:.2}×", human(s)));
            } else {
                all = false;
                parts.push(format!("{}: not measured", human(s)));
            }
        }
        out.push(if any {
            format!(
                "shmbus p50 round trip ≤ 1.0× iceoryx2 at every payload size: {} — {}",
                mark(all),
                parts.join("; ")
            )
        } else {
            "shmbus p50 round trip ≤ 1.0× iceoryx2: not measured (iceoryx2 skipped)".into()
        });
        // 3. UDS: judged at 32 B (the issue names no size); every size is listed with
        // what the floor itself achieves there.
        match (p50("shmbus", 32), p50("uds", 32)) {
            (Some(b), Some(u)) => {
                let q = u as f64 / b as f64;
                let parts: Vec<String> = SIZES[1..]
                    .iter()
                    .filter_map(|&s| {
                        let (b, u) = (p50("shmbus", s)?, p50("uds", s)?);
                        let fl = p50("floor", s).map_or(String::new(), |f| {
                            format!(", the floor {:.1}×", u as f64 / f as f64)
                        });
                        Some(format!(
                            "{} {}: {:.1}×{fl}",
                            human(s),
                            if u as f64 / b as f64 >= 20.0 {
                                "met"
                            } else {
                                "not met"
                            },
                            u as f64 / b as f64
                        ))
                    })
                    .collect();
                out.push(format!(
                    "shmbus p50 round trip ≥ 20× faster than UDS (32 B): {} — {u} / {b} ns = {q:.1}×. \
                     Larger payloads (UDS ÷ shmbus): {}",
                    mark(q >= 20.0),
                    parts.join("; ")
                ));
            }
            _ => out.push("shmbus ≥ 20× faster than UDS: not measured".into()),
        }
        // 4. throughput
        let t = |k: &str, sc: &str| r.tput.get(&(k.to_string(), sc.to_string(), 32)).copied();
        match (t("shmbus", SCENARIOS[0].0), t("iceoryx2", SCENARIOS[0].0)) {
            (Some(b), Some(i)) => {
                let q = b / i;
                let others: Vec<String> = SCENARIOS[1..]
                    .iter()
                    .map(|s| s.0)
                    .filter_map(|sc| {
                        Some(format!(
                            "{sc}: {:.2}×",
                            t("shmbus", sc)? / t("iceoryx2", sc)?
                        ))
                    })
                    .collect();
                out.push(format!(
                    "32-byte throughput ≥ 1.5× iceoryx2 (1→1, spinning): {} — {:.2} vs {:.2} M events/s = {q:.2}× (also {})",
                    mark(q >= 1.5),
                    b / 1e6,
                    i / 1e6,
                    others.join(", ")
                ));
            }
            _ => out.push("32-byte throughput ≥ 1.5× iceoryx2: not measured".into()),
        }
        // C ABI next to Rust (issue 5's target).
        if let (Some(c), Some(b)) = (p50("shmbus-c", 32), p50("shmbus", 32)) {
            let q = c as f64 / b as f64;
            out.push(format!(
                "C ABI p50 round trip within 10% of Rust (32 B): {} — {c} vs {b} ns = {q:.2}×",
                mark(q <= 1.10)
            ));
        }
        out
    }
}

/// Start of the section `--doc` rewrites.
const DOC_BEGIN: &str = "<!-- benches/run writes this section: begin -->";
/// End of the section `--doc` rewrites.
const DOC_END: &str = "<!-- benches/run writes this section: end -->";

/// Replace the text between the document's markers with `section`.
fn update_doc(path: &Path, section: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let (Some(a), Some(b)) = (text.find(DOC_BEGIN), text.find(DOC_END)) else {
        return Err("the section markers are missing".into());
    };
    if b < a {
        return Err("the section markers are out of order".into());
    }
    let new = format!(
        "{}{DOC_BEGIN}\n{}\n{}",
        &text[..a],
        section.trim_end(),
        &text[b..]
    );
    std::fs::write(path, new).map_err(|e| e.to_string())
}

/// A Markdown link target for `target` as seen from the directory of `doc`: relative
/// when both lie under one directory (`../benches/RESULTS.md` from
/// `docs/performance.md`), else `target` as it is.
fn relative_link(doc: &Path, target: &Path) -> String {
    let abs = |p: &Path| {
        let p = if p.is_absolute() {
            p.to_path_buf()
        } else {
            std::env::current_dir().unwrap_or_default().join(p)
        };
        // The file may not exist yet: canonicalise its directory.
        match (p.parent().and_then(|d| d.canonicalize().ok()), p.file_name()) {
            (Some(d), Some(f)) => d.join(f),
            _ => p,
        }
    };
    let (from, to) = (abs(doc), abs(target));
    let Some(from_dir) = from.parent() else {
        return target.display().to_string();
    };
    let common = from_dir
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common <= 1 {
        return target.display().to_string();
    }
    let mut link = String::new();
    for _ in from_dir.components().skip(common) {
        link.push_str("../");
    }
    let rest: Vec<String> = to
        .components()
        .skip(common)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    link.push_str(&rest.join("/"));
    link
}

/// Self instruction counts per function from `callgrind_annotate` (empty if missing).
fn callgrind_functions(file: &Path) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    let Ok(o) = Command::new("callgrind_annotate")
        .args(["--threshold=100", "--auto=no"])
        .arg(file)
        .output()
    else {
        return m;
    };
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        // "1,298,000 (12.66%)  /path/file.rs:crate::func [/obj]"
        let t = line.trim_start();
        let Some((num, rest)) = t.split_once(' ') else {
            continue;
        };
        let Ok(n) = num.replace(',', "").parse::<u64>() else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix('(') else {
            continue;
        };
        let Some((_, loc)) = rest.split_once(')') else {
            continue;
        };
        let loc = loc.trim();
        let loc = loc.split(" [").next().unwrap_or(loc);
        let Some((_, func)) = loc.split_once(':') else {
            continue;
        };
        *m.entry(func.to_string()).or_insert(0) += n;
    }
    m
}

/// Run a command with stderr shown and stdout captured, killing it after `limit`.
fn run_with_limit(
    cmd: &mut Command,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String), String> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut so = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok((st, reader.join().unwrap_or_default())),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "the store benchmark did not finish within {limit:?}"
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn human(size: usize) -> String {
    if size >= 1024 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

fn lscpu_summary() -> String {
    let out = sh("lscpu", &[]);
    let get = |k: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(k))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let mut parts = Vec::new();
    if let Some(m) = get("Model name") {
        parts.push(m);
    }
    if let Some(c) = get("CPU(s)") {
        parts.push(format!("{c} CPUs"));
    }
    for (k, n) in [("L1d cache", "L1d"), ("L2 cache", "L2"), ("L3 cache", "L3")] {
        if let Some(v) = get(k) {
            parts.push(format!("{n} {v}"));
        }
    }
    if let Some(h) = get("Hypervisor vendor") {
        parts.push(format!("hypervisor {h}"));
    }
    parts.join(", ")
}

// ------------------------------------------------------------------ profile child

/// `peers profile KIND N DIR TAG`: N sends and receives of 32 bytes in one process.
fn profile_child(args: &[String]) {
    use transports::{Ctx, Rx, Tx, WaitMode};
    let kind = args[0].as_str();
    let n: u64 = args[1].parse().expect("count");
    let ctx = Ctx {
        dir: PathBuf::from(&args[2]),
        tag: args[3].clone(),
        size: 32,
        wait: WaitMode::Spin,
        first: true,
        redis: None,
    };
    let mut msg = [7u8; 32];
    fn go<T: Tx, R: Rx>(tx: &mut T, rx: &mut R, n: u64, msg: &mut [u8; 32]) {
        for i in 0..n {
            util::fill(msg, i, 0);
            tx.send(msg);
            let ok = rx.recv(|b| util::word(b, 0) == i);
            assert!(ok);
        }
    }
    match kind {
        "floor" => {
            let map = std::rc::Rc::new(transports::SharedMap::anonymous(
                2 * transports::FLOOR_REGION,
            ));
            let mut p = transports::floor_pair(map.clone(), true);
            let mut q = transports::floor_pair(map, false);
            go(&mut p.tx, &mut q.rx, n, &mut msg);
        }
        "shmbus" => {
            let mut rx = transports::shm_rx(&ctx, "t");
            let mut tx = transports::shm_tx(&ctx, "t");
            go(&mut tx, &mut rx, n, &mut msg);
        }
        "iceoryx2" => {
            let node = transports::ice_node();
            let mut rx = transports::ice_rx(&ctx, &node, "t");
            let mut tx = transports::ice_tx(&ctx, &node, "t");
            go(&mut tx, &mut rx, n, &mut msg);
        }
        _ => panic!("unknown profile kind"),
    }
}
