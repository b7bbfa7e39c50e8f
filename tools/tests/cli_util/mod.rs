//! Helpers for the CLI's end-to-end tests: temporary directories, running the real
//! `shmbus` binary with a hang guard, helper processes (this test binary re-spawned in
//! a role), and a minimal reader for the flat fields of JSON lines.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use shmbus::Bus;

/// The event the helper processes publish: real fields to find in JSON output.
#[shmbus::event]
#[derive(Debug, Clone)]
pub struct Trade {
    pub symbol: String,
    pub price: f64,
    pub qty: u32,
    pub buy: bool,
}

/// The `i`-th trade the helpers publish.
pub fn trade(i: u64) -> Trade {
    Trade {
        symbol: if i % 2 == 0 { "ABC" } else { "XYZ" }.into(),
        price: 100.0 + i as f64,
        qty: i as u32,
        buy: i % 3 == 0,
    }
}

/// A fresh directory (a bus or a store), removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let path = base.join(format!(
            "shmbus-cli-test-{tag}-{}-{}",
            std::process::id(),
            shmbus::now_ns()
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn bus(&self) -> Bus {
        Bus::open_dir(&self.path).unwrap()
    }

    pub fn arg(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// What a finished `shmbus` run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "shmbus failed: {self:?}");
        self
    }

    /// Asserts the failure contract: this exit code, exactly one line on stderr
    /// starting with `shmbus:` and containing `needle`, no panic or backtrace.
    pub fn fails(self, code: i32, needle: &str) -> Run {
        assert_eq!(self.code, code, "unexpected exit code: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr is not one line: {self:?}");
        assert!(lines[0].starts_with("shmbus: "), "{self:?}");
        assert!(
            lines[0].contains(needle),
            "stderr lacks {needle:?}: {self:?}"
        );
        assert_no_panic(&self.stderr);
        self
    }
}

pub fn assert_no_panic(stderr: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "panic: {stderr}"
    );
}

/// The `shmbus` command on bus `bus`.
pub fn shmbus_cmd(bus: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shmbus"));
    c.arg("--bus").arg(bus).args(args);
    c.env_remove("SHMBUS_BUS").env_remove("RUST_BACKTRACE");
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs `shmbus --bus <bus> <args>` to completion (killed after 60 s: a hang guard).
pub fn shmbus(bus: &str, args: &[&str]) -> Run {
    let child = shmbus_cmd(bus, args).spawn().unwrap();
    finish(child, Duration::from_secs(60))
}

/// Waits for a child with piped stdout/stderr, killing it if it overruns `limit`.
pub fn finish(mut child: Child, limit: Duration) -> Run {
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut s = String::new();
        so.read_to_string(&mut s).unwrap();
        s
    });
    let re = std::thread::spawn(move || {
        let mut s = String::new();
        se.read_to_string(&mut s).unwrap();
        s
    });
    let status = wait_limit(&mut child, limit);
    Run {
        code: status.code().unwrap_or(-1),
        stdout: ro.join().unwrap(),
        stderr: re.join().unwrap(),
    }
}

pub fn wait_limit(child: &mut Child, limit: Duration) -> ExitStatus {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process {} did not finish within {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, sig) };
}

/// Wait until `cond` holds, at most `limit` (a hang guard, not a timing assertion).
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// The role this process was re-spawned with, if any.
pub fn role() -> Option<String> {
    std::env::var("SHMBUS_CLI_TEST_ROLE").ok()
}

/// Re-runs this test binary's `helper` test as a child in `role`.
pub fn spawn_role(role: &str, bus: &Path, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["helper", "--exact", "--nocapture", "--test-threads=1"])
        .env("SHMBUS_CLI_TEST_ROLE", role)
        .env("SHMBUS_CLI_TEST_BUS", bus)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Runs a role to completion and returns its stdout.
pub fn run_role(role: &str, bus: &Path, env: &[(&str, String)]) -> String {
    let c = spawn_role(role, bus, env);
    finish_stdout(c)
}

fn finish_stdout(mut c: Child) -> String {
    // Read while it runs: a helper printing more than a pipe holds must not block.
    let mut so = c.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        so.read_to_string(&mut s).unwrap();
        s
    });
    let st = wait_limit(&mut c, Duration::from_secs(60));
    let out = reader.join().unwrap();
    assert!(st.success(), "helper failed: {out}");
    out
}

/// Publishes trades `first..first+count` into typed topic `topic` from a separate
/// process; returns the position of each event.
pub fn publish_trades(bus: &Path, topic: &str, first: u64, count: u64) -> Vec<u64> {
    let out = run_role(
        "publish",
        bus,
        &[
            ("T_TOPIC", topic.into()),
            ("T_FIRST", first.to_string()),
            ("T_COUNT", count.to_string()),
        ],
    );
    out.lines()
        .filter_map(|l| l.find("pos ").map(|i| l[i + 4..].trim().parse().unwrap()))
        .collect()
}

/// The raw value text of a top-level `"key":` in one JSON line (strings without quotes).
/// Enough for the flat fields the CLI prints; nested objects are matched as text.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":");
    let at = line.find(&pat)? + pat.len();
    let rest = &line[at..];
    if let Some(s) = rest.strip_prefix('"') {
        let end = s.find('"')?;
        return Some(&s[..end]);
    }
    let end = rest.find([',', '}', ']']).unwrap_or(rest.len());
    Some(&rest[..end])
}

pub fn num(line: &str, key: &str) -> u64 {
    field(line, key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number {key:?} in {line}"))
}
