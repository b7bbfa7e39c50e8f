//! Cross-language tests: C programs compiled with the system `cc -std=c11 -Wall -Wextra
//! -Werror` against `include/shmbus.h` and libshmbus, run as real processes talking to
//! Rust code and to each other through a fresh temporary bus directory.
//!
//! The library is built by a nested `cargo build -p shmbus-c` (a no-op when current):
//! this crate has no rlib, so `cargo test` does not build the C library by itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use shmbus::{Bus, Start};

/// Bound on any one process or event wait.
const PATIENCE: Duration = Duration::from_secs(120);

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `<target>/<profile>`, holding a current libshmbus.so and libshmbus.a.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test binary is `<target>/<profile>/deps/c_abi-<hash>`.
        let exe = std::env::current_exe().expect("current_exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir");
        let target = profile_dir.parent().expect("target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(p) => p,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
        let status = Command::new(cargo)
            .current_dir(crate_dir())
            .args([
                "build",
                "--quiet",
                "-p",
                "shmbus-c",
                "--lib",
                "--profile",
                profile,
            ])
            .arg("--target-dir")
            .arg(target)
            .status()
            .expect("run cargo build -p shmbus-c");
        assert!(status.success(), "cargo build -p shmbus-c: {status}");
        for lib in ["libshmbus.so", "libshmbus.a"] {
            assert!(
                profile_dir.join(lib).exists(),
                "{lib} missing in {profile_dir:?}"
            );
        }
        // Programs linked against libshmbus.so load its SONAME, libshmbus.so.0 (what
        // `make lib` links next to it too).
        let so0 = profile_dir.join("libshmbus.so.0");
        if std::fs::read_link(&so0).ok().as_deref() != Some(Path::new("libshmbus.so")) {
            let _ = std::fs::remove_file(&so0);
            std::os::unix::fs::symlink("libshmbus.so", &so0).expect("link libshmbus.so.0");
        }
        profile_dir.to_path_buf()
    })
}

/// How a C program is linked.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Link {
    Shared,
    Static,
}

/// Compile `src` (relative to bindings/c) once per test run; returns the executable.
fn program(src: &str, link: Link) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<(String, Link), PathBuf>>> = Mutex::new(None);
    let lib = lib_dir();
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(p) = built.get(&(src.to_string(), link)) {
        return p.clone();
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shmbus-c-programs");
    std::fs::create_dir_all(&out_dir).expect("create the program directory");
    let stem = Path::new(src).file_stem().unwrap().to_str().unwrap();
    let exe = out_dir.join(match link {
        Link::Shared => stem.to_string(),
        Link::Static => format!("{stem}-static"),
    });
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let mut cmd = Command::new(cc);
    cmd.current_dir(crate_dir())
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .args(["-Iinclude", "-Iexamples", "-Itests/c", src, "-o"])
        .arg(&exe);
    match link {
        Link::Shared => {
            cmd.arg(format!("-L{}", lib.display()))
                .arg("-lshmbus")
                .arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        Link::Static => {
            cmd.arg(lib.join("libshmbus.a")).args([
                "-lpthread",
                "-ldl",
                "-lm",
                "-lrt",
                "-lutil",
                "-lgcc_s",
            ]);
        }
    }
    let out = cmd.output().expect("run cc");
    assert!(
        out.status.success(),
        "cc {src} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.insert((src.to_string(), link), exe.clone());
    exe
}

/// A fresh bus directory, removed on drop.
struct TempBus(PathBuf);

impl TempBus {
    fn new(tag: &str) -> TempBus {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shmbus-c-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempBus(dir)
    }
}

impl Drop for TempBus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running C program whose stdout lines are collected by a thread.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let name = format!("{cmd:?}");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name,
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait (bounded) for a line starting with `prefix`.
    fn expect_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "{}: no line starting with {prefix:?} ({e:?}); saw {:?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Wait (bounded) for the program to exit; returns its status and all its lines.
    fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not exit within {PATIENCE:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // The reader thread ends at EOF, which follows the exit.
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }

    /// `finish`, asserting a zero exit status.
    fn success(self) -> Vec<String> {
        let name = self.name.clone();
        let (status, lines) = self.finish();
        assert!(
            status.success(),
            "{name} exited with {status}; stdout {lines:?}"
        );
        lines
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn command(exe: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Command {
    let mut c = Command::new(exe);
    for a in args {
        c.arg(a);
    }
    c
}

// The payload pattern of examples/payload.h.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn payload(seq: u64) -> Vec<u8> {
    let len = 8 + ((seq * 37) % 200) as usize;
    let mut v = seq.to_le_bytes().to_vec();
    v.extend((8..len).map(|k| (seq.wrapping_mul(31).wrapping_add(k as u64 * 7)) as u8));
    v
}

fn line_with<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in {lines:?}"))
}

#[test]
fn c_publisher_to_rust_subscriber() {
    const N: u64 = 5000;
    let dir = TempBus::new("c2rust");
    let bus = Bus::open_dir(&dir.0).unwrap();
    // The same capacity as the C example asks for.
    let topic = bus
        .topic("c2rust")
        .capacity(64 * 1024)
        .open_or_create()
        .unwrap();
    let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();

    let publisher = program("examples/publisher.c", Link::Shared);
    let n = N.to_string();
    let proc = Proc::spawn(command(&publisher, &[&dir.0, &"c2rust", &n]));

    let mut sum = FNV_OFFSET;
    for seq in 0..N {
        let ev = sub
            .recv_bytes_timeout(PATIENCE)
            .unwrap()
            .unwrap_or_else(|| panic!("event {seq} did not arrive"));
        assert_eq!(ev.type_id(), 0);
        assert_eq!(
            ev.bytes(),
            &payload(seq)[..],
            "event {seq}: payload or order"
        );
        sum = fnv1a(sum, ev.bytes());
    }
    let lines = proc.success();
    assert_eq!(
        line_with(&lines, "published"),
        format!("published {N} events, checksum {sum:016x}")
    );
}

#[shmbus::event]
#[derive(Debug, Clone)]
struct Trade {
    seq: u64,
    symbol: String,
    price: f64,
    qty: u32,
    flags: Vec<u8>,
    venue: Option<String>,
}

fn trade(i: u64) -> Trade {
    Trade {
        seq: i,
        symbol: format!("SYM{i}"),
        price: i as f64 + 0.5,
        qty: (i * 10) as u32,
        flags: vec![i as u8, 7],
        venue: (i % 2 == 0).then(|| "XNAS".to_string()),
    }
}

/// The JSON a correct renderer gives for `trade(i)`, spelled out by hand.
fn trade_json(i: u64) -> String {
    let venue = if i % 2 == 0 { "\"XNAS\"" } else { "null" };
    format!(
        r#"{{"seq":{i},"symbol":"SYM{i}","price":{i}.5,"qty":{},"flags":[{},7],"venue":{venue}}}"#,
        i * 10,
        i as u8
    )
}

#[test]
fn rust_typed_publisher_to_c_subscriber() {
    const N: u64 = 300;
    let dir = TempBus::new("typed");
    let bus = Bus::open_dir(&dir.0).unwrap();
    let topic = bus
        .topic("trades")
        .event::<Trade>()
        .capacity(64 * 1024)
        .open_or_create()
        .unwrap();
    // A raw view of the same topic collects the bytes the C side must checksum.
    let raw = bus.topic("trades").open().unwrap();
    let mut raw_sub = raw.subscriber().start(Start::Earliest).open().unwrap();

    let exe = program("tests/c/typed_sub.c", Link::Shared);
    let n = N.to_string();
    let mut proc = Proc::spawn(command(&exe, &[&dir.0, &"trades", &n]));
    proc.expect_line("ready");

    let mut publisher = topic.publisher().unwrap();
    for i in 0..N {
        publisher.send(&trade(i)).unwrap();
    }
    let mut sum = FNV_OFFSET;
    for i in 0..N {
        let ev = raw_sub
            .recv_bytes_timeout(PATIENCE)
            .unwrap()
            .expect("event");
        assert_eq!(ev.type_id(), <Trade as shmbus::Event>::TYPE_ID, "event {i}");
        sum = fnv1a(sum, ev.bytes());
    }

    let lines = proc.success();
    assert_eq!(line_with(&lines, "type "), "type Trade");
    let schema = line_with(&lines, "schema ");
    assert!(
        schema.contains(r#""type":"Trade""#)
            && schema.contains(r#"{"name":"symbol","kind":"String","offset":"#),
        "{schema}"
    );
    let json: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("json "))
        .collect();
    assert_eq!(json.len() as u64, N);
    for (i, j) in json.iter().enumerate() {
        assert_eq!(*j, trade_json(i as u64), "event {i}: JSON or order");
    }
    assert_eq!(
        line_with(&lines, "checksum "),
        format!("checksum {sum:016x}")
    );
}

#[test]
fn c_publishes_typed_events_from_json() {
    const N: u64 = 50;
    let dir = TempBus::new("from-json");
    let bus = Bus::open_dir(&dir.0).unwrap();
    let topic = bus
        .topic("trades")
        .event::<Trade>()
        .capacity(64 * 1024)
        .open_or_create()
        .unwrap();
    let mut sub = topic.subscriber().start(Start::Earliest).open().unwrap();
    let exe = program("tests/c/from_json.c", Link::Shared);
    let lines = Proc::spawn(command(&exe, &[&dir.0, &"trades", &"raw", &N.to_string()])).success();
    assert_eq!(line_with(&lines, "sent "), format!("sent {}", N + 1));
    line_with(&lines, "from_json: all expectations held");
    for i in 0..=N {
        let ev = sub.recv_timeout(PATIENCE).unwrap().expect("event");
        let want = trade(i);
        assert_eq!(ev.seq, want.seq, "event {i}");
        assert_eq!(ev.symbol, want.symbol);
        assert_eq!(ev.price, want.price);
        assert_eq!(ev.qty, want.qty);
        assert_eq!(ev.flags.as_slice(), want.flags.as_slice());
        assert_eq!(ev.venue.as_deref(), want.venue.as_deref());
    }
    // The rejected texts published nothing.
    assert!(sub.try_recv().unwrap().is_none());
}

#[test]
fn c_to_c_across_processes() {
    const N: u64 = 20_000;
    let dir = TempBus::new("c2c");
    let n = N.to_string();
    let mut sub = Proc::spawn(command(
        &program("examples/subscriber.c", Link::Shared),
        &[&dir.0, &"c2c", &n],
    ));
    sub.expect_line("ready");
    let publisher = Proc::spawn(command(
        &program("examples/publisher.c", Link::Shared),
        &[&dir.0, &"c2c", &n],
    ));
    let published = publisher.success();
    let received = sub.success();
    let sent = line_with(&published, "published");
    let got = line_with(&received, "received");
    let sum = (0..N).fold(FNV_OFFSET, |h, seq| fnv1a(h, &payload(seq)));
    assert_eq!(sent, format!("published {N} events, checksum {sum:016x}"));
    assert_eq!(got, format!("received {N} events, checksum {sum:016x}"));
}

#[test]
fn c_back_pressure_and_timeouts() {
    let dir = TempBus::new("pressure");
    let lines = Proc::spawn(command(
        &program("tests/c/pressure.c", Link::Shared),
        &[&dir.0],
    ))
    .success();
    // Each checked call prints "ok CALL -> DESCRIPTION OF THE CODE IT RETURNED".
    for want in [
        "ok try_send -> back-pressured",
        "ok shmbus_publisher_try_claim(pub, sizeof data, 0, &slot) -> back-pressured",
        "ok shmbus_publisher_send_timeout(pub, 0, data, sizeof data, 50 * MS, NULL) -> timed out",
        "ok shmbus_subscriber_recv(idle, 0, &ev) -> timed out",
        "ok shmbus_subscriber_recv(idle, 100 * MS, &ev) -> timed out",
        "ok shmbus_subscriber_recv(lagging, 0, &ev) -> lapped by producers",
    ] {
        line_with(&lines, want);
    }
    line_with(&lines, "pressure: all expectations held");
}

#[test]
fn c_invalid_use_returns_codes() {
    let dir = TempBus::new("misuse");
    let lines = Proc::spawn(command(
        &program("tests/c/misuse.c", Link::Shared),
        &[&dir.0],
    ))
    .success();
    line_with(&lines, "misuse: all expectations held");
}

/// The issue's scenario from C: subscriber, then fork() without exec; the child's own
/// publisher claims, sleeps past the unblock timeout and commits. The child is alive:
/// its commit succeeds and the parent receives the event.
#[test]
fn c_forked_child_without_exec_publishes_after_a_stall() {
    let dir = TempBus::new("fork");
    let lines = Proc::spawn(command(&program("tests/c/fork.c", Link::Shared), &[&dir.0])).success();
    line_with(&lines, "child commit -> success");
    line_with(&lines, "child exit 0");
    line_with(&lines, "fork: all expectations held");
}

/// Subscriber names of 96 bytes pass and 97 fail; a hidden bus name is refused as a
/// bus name.
#[test]
fn c_name_rules_hold_at_their_boundaries() {
    let dir = TempBus::new("names");
    let lines = Proc::spawn(command(
        &program("tests/c/names.c", Link::Shared),
        &[&dir.0],
    ))
    .success();
    line_with(&lines, "bus error: invalid bus name");
    line_with(&lines, "names: all expectations held");
}

#[test]
fn c_program_links_the_static_library() {
    let dir = TempBus::new("static");
    let lines = Proc::spawn(command(
        &program("tests/c/misuse.c", Link::Static),
        &[&dir.0],
    ))
    .success();
    line_with(&lines, "misuse: all expectations held");
}

#[test]
fn c_examples_are_clean_under_valgrind() {
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("SKIPPED: valgrind not found (apt-get install -y valgrind)");
        return;
    }
    const N: &str = "2000";
    let valgrind = |exe: PathBuf, args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut c = Command::new("valgrind");
        c.args(["-q", "--error-exitcode=1", "--leak-check=full"])
            .arg(exe);
        for a in args {
            c.arg(a);
        }
        c
    };
    let dir = TempBus::new("valgrind");
    let mut sub = Proc::spawn(valgrind(
        program("examples/subscriber.c", Link::Shared),
        &[&dir.0, &"vg", &N],
    ));
    sub.expect_line("ready");
    let publisher = Proc::spawn(valgrind(
        program("examples/publisher.c", Link::Shared),
        &[&dir.0, &"vg", &N],
    ));
    let sent = publisher.success();
    let got = sub.success();
    line_with(&sent, "published 2000 events");
    line_with(&got, "received 2000 events");

    let dir = TempBus::new("valgrind-misuse");
    let lines = Proc::spawn(valgrind(
        program("tests/c/misuse.c", Link::Shared),
        &[&dir.0],
    ))
    .success();
    line_with(&lines, "misuse: all expectations held");
}

#[test]
fn c_pingpong_round_trips() {
    // Correctness only (the figure is for the benchmark run): blocking waits, so the
    // two processes do not fight over the test machine's cores.
    let dir = TempBus::new("pingpong");
    let lines = Proc::spawn(command(
        &program("examples/pingpong.c", Link::Shared),
        &[&dir.0, &"2000", &"block"],
    ))
    .success();
    line_with(&lines, "c pingpong: rounds 2000 p50 ");
}

/// The SONAME and NEEDED entries of an ELF64 little-endian shared object or executable,
/// read from its `SHT_DYNAMIC` section and the string table that section links to.
fn elf_dynamic(path: &Path) -> (Option<String>, Vec<String>) {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    assert!(
        b.len() > 64 && b[..4] == *b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "{path:?} is not an ELF64 little-endian file"
    );
    let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let (shoff, shentsize, shnum) = (u64_at(0x28), u16_at(0x3a), u16_at(0x3c));
    let section = |i: usize| shoff + i * shentsize;
    let dynamic = (0..shnum)
        .map(section)
        .find(|&sh| u32_at(sh + 4) == 6) // SHT_DYNAMIC
        .unwrap_or_else(|| panic!("{path:?} has no dynamic section"));
    let strtab = u64_at(section(u32_at(dynamic + 40)) + 24);
    let string = |off: usize| {
        let start = strtab + off;
        let end = start + b[start..].iter().position(|&c| c == 0).expect("NUL");
        String::from_utf8(b[start..end].to_vec()).expect("UTF-8 name")
    };
    let (mut soname, mut needed) = (None, Vec::new());
    let (start, size) = (u64_at(dynamic + 24), u64_at(dynamic + 32));
    for entry in (start..start + size).step_by(16) {
        match u64_at(entry) {
            0 => break,                                     // DT_NULL
            1 => needed.push(string(u64_at(entry + 8))),    // DT_NEEDED
            14 => soname = Some(string(u64_at(entry + 8))), // DT_SONAME
            _ => {}
        }
    }
    (soname, needed)
}

#[test]
fn shared_library_has_its_soname_and_programs_need_it() {
    let (soname, _) = elf_dynamic(&lib_dir().join("libshmbus.so"));
    assert_eq!(soname.as_deref(), Some("libshmbus.so.0"));
    let exe = program("tests/c/misuse.c", Link::Shared);
    let (_, needed) = elf_dynamic(&exe);
    assert!(
        needed.iter().any(|n| n == "libshmbus.so.0"),
        "a program linked with -lshmbus needs {needed:?}"
    );
}

#[test]
fn make_install_links_the_soname_and_pkg_config_finds_the_library() {
    let lib = lib_dir();
    let profile = lib.file_name().and_then(|n| n.to_str()).expect("profile");
    let target = lib.parent().expect("target dir");
    let prefix = TempBus::new("install");
    let out = Command::new("make")
        .current_dir(crate_dir())
        .args(["--no-print-directory", "install"])
        .arg(format!("PROFILE={profile}"))
        .arg(format!("PREFIX={}", prefix.0.display()))
        .env("CARGO_TARGET_DIR", target)
        .output();
    let Ok(out) = out else {
        println!("SKIPPED: `make` not found");
        return;
    };
    assert!(
        out.status.success(),
        "make install failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let libdir = prefix.0.join("lib");
    let version = env!("CARGO_PKG_VERSION");
    let link = |name: &str| std::fs::read_link(libdir.join(name)).expect(name);
    assert_eq!(link("libshmbus.so"), Path::new("libshmbus.so.0"));
    assert_eq!(
        link("libshmbus.so.0"),
        PathBuf::from(format!("libshmbus.so.{version}"))
    );
    let (soname, _) = elf_dynamic(&libdir.join(format!("libshmbus.so.{version}")));
    assert_eq!(soname.as_deref(), Some("libshmbus.so.0"));
    assert!(prefix.0.join("include/shmbus.h").exists());

    // shmbus.pc names this prefix; a program built with its flags runs.
    let pc_dir = libdir.join("pkgconfig");
    let pc = std::fs::read_to_string(pc_dir.join("shmbus.pc")).expect("shmbus.pc");
    assert!(
        pc.lines()
            .any(|l| l == format!("prefix={}", prefix.0.display())),
        "{pc}"
    );
    assert!(pc.contains(&format!("Version: {version}")), "{pc}");
    let flags = match Command::new("pkg-config")
        .env("PKG_CONFIG_PATH", &pc_dir)
        .args(["--cflags", "--libs", "shmbus"])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8(o.stdout).expect("flags"),
        _ => {
            println!("SKIPPED (pkg-config part): pkg-config not found or failed");
            return;
        }
    };
    let src = prefix.0.join("version.c");
    std::fs::write(
        &src,
        "#include <stdio.h>\n#include <shmbus.h>\n\
         int main(void) { printf(\"shmbus %s\\n\", shmbus_version()); return 0; }\n",
    )
    .expect("write version.c");
    let exe = prefix.0.join("version");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let status = Command::new(cc)
        .args(["-std=c11", "-Wall", "-Werror"])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .status()
        .expect("run cc");
    assert!(status.success(), "cc with pkg-config flags: {status}");
    let out = Command::new(&exe).output().expect("run the program");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("shmbus {version}\n")
    );
}
