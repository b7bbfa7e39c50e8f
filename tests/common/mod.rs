//! Shared helpers for integration tests: temporary buses and child-process roles.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh bus directory under /dev/shm (or the temp dir), removed on drop.
pub struct TempBus {
    pub dir: PathBuf,
}

impl TempBus {
    pub fn new(tag: &str) -> TempBus {
        let base = if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "shmbus-test-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempBus { dir }
    }

    pub fn bus(&self) -> shmbus::Bus {
        shmbus::Bus::open_dir(&self.dir).unwrap()
    }
}

impl Drop for TempBus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The role this process was re-spawned with, if any.
pub fn role() -> Option<String> {
    std::env::var("SHMBUS_TEST_ROLE").ok()
}

/// Re-run this test binary as a child running only `test`, with a role and extra env.
pub fn spawn_role(test: &str, role: &str, dir: &Path, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("SHMBUS_TEST_ROLE", role)
        .env("SHMBUS_TEST_DIR", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The bus directory handed to a child.
pub fn child_dir() -> PathBuf {
    PathBuf::from(std::env::var("SHMBUS_TEST_DIR").unwrap())
}

/// Wait for a child with a bound; kill it and fail if it overruns.
pub fn wait_child(mut c: Child, limit: Duration) -> (std::process::ExitStatus, String) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            let mut out = String::new();
            use std::io::Read;
            c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            return (st, out);
        }
        if t0.elapsed() > limit {
            let _ = c.kill();
            let _ = c.wait();
            panic!("child {} did not finish within {limit:?}", c.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines of a child's stdout that start with `tag `, without the tag.
pub fn lines_with<'a>(out: &'a str, tag: &str) -> Vec<&'a str> {
    // libtest prints "test name ... " without a newline before the test's own output.
    out.lines()
        .filter_map(|l| l.find(tag).map(|i| l[i + tag.len()..].trim()))
        .collect()
}

/// Wait until `cond` holds, at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

pub fn sigkill(c: &Child) {
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGKILL) };
}

/// The test event: a producer id, a per-producer sequence, filler and a checksum.
#[shmbus::event]
#[derive(Debug, Clone)]
pub struct Msg {
    pub producer: u32,
    pub seq: u64,
    pub data: [u8; 16],
    pub sum: u64,
}

pub fn checksum(producer: u32, seq: u64, data: &[u8; 16]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in producer
        .to_le_bytes()
        .iter()
        .chain(seq.to_le_bytes().iter())
        .chain(data.iter())
    {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

pub fn msg(producer: u32, seq: u64) -> Msg {
    let mut data = [0u8; 16];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (seq as u8)
            .wrapping_mul(31)
            .wrapping_add(i as u8)
            .wrapping_add(producer as u8);
    }
    Msg {
        producer,
        seq,
        data,
        sum: checksum(producer, seq, &data),
    }
}

/// Check an archived message's checksum.
pub fn verify(m: &ArchivedMsg) -> bool {
    checksum(m.producer.to_native(), m.seq.to_native(), &m.data) == m.sum.to_native()
}

/// Read a child's stdout line by line until one contains `tag` (libtest prints its own
/// lines first). Returns false at end of output.
pub fn read_until(out: &mut impl std::io::BufRead, tag: &str) -> bool {
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if line.contains(tag) {
            return true;
        }
    }
}
