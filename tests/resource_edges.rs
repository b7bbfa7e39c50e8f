//! Resource edges: a full `/dev/shm` at topic creation, a full disk and a read-only
//! store under the recorder, every producer and subscriber slot taken, records larger
//! than the topic allows, and an event type that changed shape. Each is a typed error,
//! and nothing committed is lost.
//!
//! Limits are imposed on child processes with `RLIMIT_FSIZE` (with `SIGXFSZ` ignored,
//! so writes past the limit fail with `EFBIG` like a full device), which works for root
//! too, where permission bits would be bypassed.

mod common;

use std::time::Duration;

use common::{child_dir, lines_with, role, spawn_role, wait_child, TempBus};
use shmbus::store::{verify_topic, Recorder, RecorderConfig, SegmentReader, StoreError};
use shmbus::{AttachError, Bus, Event, OpenError, SendError, Start};

/// Limit the size of any file this process writes to `bytes`; writes beyond fail with
/// EFBIG instead of killing the process.
fn limit_file_size(bytes: u64) {
    // SAFETY: setting a resource limit and a signal disposition of our own process.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let lim = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

fn bus_leftovers(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn full_dev_shm_at_topic_creation_is_a_typed_error_and_leaves_nothing() {
    if role().as_deref() == Some("small-fs") {
        limit_file_size(128 << 10);
        let bus = Bus::open_dir(child_dir()).unwrap();
        match bus.topic("big").capacity(1 << 20).open_or_create() {
            Err(OpenError::Io { op, source, .. }) => {
                println!("RESULT io op={op} errno={:?}", source.raw_os_error())
            }
            other => println!("RESULT unexpected {other:?}"),
        }
        // The existing topic still works from this process.
        let t = bus.topic("small").open().unwrap();
        t.publisher()
            .unwrap()
            .send_bytes(1, b"from the child")
            .unwrap();
        println!("RESULT published");
        return;
    }
    if role().is_some() {
        return;
    }
    let tb = TempBus::new("shm-full");
    let bus = tb.bus();
    let small = bus.topic("small").capacity(4096).open_or_create().unwrap();
    let mut sub = small.subscriber().start(Start::Earliest).open().unwrap();
    small.publisher().unwrap().send_bytes(1, b"before").unwrap();
    let c = spawn_role(
        "full_dev_shm_at_topic_creation_is_a_typed_error_and_leaves_nothing",
        "small-fs",
        &tb.dir,
        &[],
    );
    let (st, out) = wait_child(c, Duration::from_secs(60));
    assert!(st.success(), "{out}");
    let res = lines_with(&out, "RESULT");
    assert_eq!(
        res,
        vec!["io op=size ring file errno=Some(27)", "published"],
        "{out}"
    );
    // No half-made ring file, no temporary left behind; nothing committed lost.
    assert!(!bus.ring_path("big").exists());
    assert_eq!(bus_leftovers(&tb.dir), Vec::<String>::new());
    assert_eq!(bus.topics().unwrap(), vec!["small".to_string()]);
    assert_eq!(sub.try_recv_bytes().unwrap().unwrap().bytes(), b"before");
    assert_eq!(
        sub.try_recv_bytes().unwrap().unwrap().bytes(),
        b"from the child"
    );
    // And with room, the topic can be created.
    bus.topic("big").capacity(1 << 20).open_or_create().unwrap();
}

/// A tiny tmpfs, where `fallocate` itself reports ENOSPC. Needs mount rights (root in
/// a namespace that allows it); says SKIPPED otherwise.
#[test]
fn tiny_tmpfs_at_topic_creation_is_a_typed_error() {
    let tb = TempBus::new("tmpfs");
    let mnt = tb.dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let c = |s: &str| std::ffi::CString::new(s).unwrap();
    let target = c(mnt.to_str().unwrap());
    let (src, fstype, opts) = (c("tmpfs"), c("tmpfs"), c("size=256k,mode=0700"));
    // SAFETY: mounting a tmpfs on a directory we own, with valid C strings.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            opts.as_ptr() as *const libc::c_void,
        )
    };
    if r != 0 {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here ({}); the RLIMIT_FSIZE test covers the path",
            std::io::Error::last_os_error()
        );
        return;
    }
    struct Unmount(std::ffi::CString);
    impl Drop for Unmount {
        fn drop(&mut self) {
            // SAFETY: unmounting what this test mounted.
            unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let _u = Unmount(target.clone());
    let bus = Bus::open_dir(mnt.join("bus")).unwrap();
    let small = bus.topic("small").capacity(4096).open_or_create().unwrap();
    match bus.topic("big").capacity(1 << 20).open_or_create() {
        Err(OpenError::Io { op, source, .. }) => {
            assert_eq!(op, "allocate ring file");
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert_eq!(bus_leftovers(&mnt.join("bus")), Vec::<String>::new());
    let mut sub = small.subscriber().start(Start::Earliest).open().unwrap();
    small.publisher().unwrap().send_bytes(1, b"ok").unwrap();
    assert_eq!(sub.try_recv_bytes().unwrap().unwrap().bytes(), b"ok");
}

const EVENTS: u64 = 400;

fn publish_numbered(t: &shmbus::Topic, range: std::ops::Range<u64>) {
    let mut p = t.publisher().unwrap();
    for i in range {
        p.send_bytes(7, &i.to_le_bytes()).unwrap();
    }
}

/// Every stored record, in order, as the numbers they carry.
fn stored_numbers(store: &std::path::Path) -> Vec<u64> {
    let dir = store.join("t");
    for c in verify_topic(&dir).unwrap() {
        assert!(c.error.is_none(), "{c:?}");
    }
    let mut out = Vec::new();
    for s in shmbus::store::list_segments(&dir).unwrap() {
        let r = SegmentReader::open(&s.path).unwrap();
        for rec in r.iter() {
            let rec = rec.unwrap();
            out.push(u64::from_le_bytes(rec.bytes.try_into().unwrap()));
        }
    }
    out
}

fn rec_config() -> RecorderConfig {
    RecorderConfig {
        segment_size: 64 << 10,
        ..RecorderConfig::default()
    }
}

/// The recorder on a full disk reports typed I/O errors and does not commit what it
/// could not write; a later recorder with room persists every event exactly once.
#[test]
fn full_disk_under_the_recorder_loses_nothing() {
    if role().as_deref() == Some("full-disk-recorder") {
        limit_file_size(20 << 10);
        let bus = Bus::open_dir(child_dir()).unwrap();
        let t = bus.topic("t").open().unwrap();
        let rec = Recorder::spawn(&t, child_dir().join("store"), rec_config()).unwrap();
        let mut errs = Vec::new();
        for _ in 0..2000 {
            errs.extend(rec.take_errors());
            if !errs.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for e in &errs {
            if let StoreError::Io { op, source, .. } = e {
                println!("RESULT io op={op} errno={:?}", source.raw_os_error());
            } else {
                println!("RESULT other {e}");
            }
        }
        println!("RESULT persisted={}", rec.persisted());
        // Killed by the parent while still failing: no clean stop.
        std::thread::sleep(Duration::from_secs(600));
        return;
    }
    if role().is_some() {
        return;
    }
    let tb = TempBus::new("disk-full");
    let bus = tb.bus();
    let t = bus.topic("t").capacity(64 << 10).open_or_create().unwrap();
    publish_numbered(&t, 0..EVENTS);
    let tail = t.tail();
    let mut c = spawn_role(
        "full_disk_under_the_recorder_loses_nothing",
        "full-disk-recorder",
        &tb.dir,
        &[],
    );
    let mut out = std::io::BufReader::new(c.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        use std::io::BufRead;
        if out.read_line(&mut l).unwrap() == 0 {
            break;
        }
        if let Some(i) = l.find("RESULT ") {
            let v = l[i + 7..].trim().to_string();
            let done = v.starts_with("persisted=");
            lines.push(v);
            if done {
                break;
            }
        }
    }
    common::sigkill(&c);
    let _ = c.wait();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("io ") && l.contains("Some(27)")),
        "expected EFBIG I/O errors: {lines:?}"
    );
    let persisted: u64 = lines
        .last()
        .and_then(|l| l.strip_prefix("persisted="))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        persisted < tail,
        "the recorder claims {persisted} of {tail} persisted"
    );
    // With room again: everything, exactly once, in order.
    let rec = Recorder::spawn(&t, tb.dir.join("store"), rec_config()).unwrap();
    assert!(rec.wait_persisted(tail, Duration::from_secs(60)));
    rec.stop().unwrap();
    assert_eq!(
        stored_numbers(&tb.dir.join("store")),
        (0..EVENTS).collect::<Vec<_>>()
    );
}

/// A read-only store: the recorder fails with a typed error and commits nothing; once
/// the store is writable, every event is persisted. Read-only comes from a 0500
/// directory for ordinary users and from `RLIMIT_FSIZE = 0` (no byte may be written)
/// for root, whom permission bits do not stop.
#[test]
fn read_only_store_is_a_typed_error_and_loses_nothing() {
    if role().as_deref() == Some("ro-recorder") {
        limit_file_size(0);
        let bus = Bus::open_dir(child_dir()).unwrap();
        let t = bus.topic("t").open().unwrap();
        match Recorder::spawn(&t, child_dir().join("store"), rec_config()) {
            Err(e) => println!("RESULT refused {e}"),
            Ok(rec) => {
                let mut errs = Vec::new();
                for _ in 0..2000 {
                    errs.extend(rec.take_errors());
                    if !errs.is_empty() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                println!("RESULT errors={} persisted={}", errs.len(), rec.persisted());
                std::process::exit(0);
            }
        }
        return;
    }
    if role().is_some() {
        return;
    }
    let tb = TempBus::new("ro-store");
    let bus = tb.bus();
    let t = bus.topic("t").capacity(64 << 10).open_or_create().unwrap();
    publish_numbered(&t, 0..EVENTS);
    let tail = t.tail();
    let store = tb.dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o500)).unwrap();
        match Recorder::spawn(&t, &store, rec_config()) {
            Err(StoreError::Io { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::EACCES))
            }
            other => panic!("expected EACCES, got {other:?}"),
        }
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    } else {
        let c = spawn_role(
            "read_only_store_is_a_typed_error_and_loses_nothing",
            "ro-recorder",
            &tb.dir,
            &[],
        );
        let (st, out) = wait_child(c, Duration::from_secs(60));
        assert!(st.success(), "{out}");
        let res = lines_with(&out, "RESULT");
        assert_eq!(res.len(), 1, "{out}");
        let r = res[0];
        assert!(
            r.starts_with("refused") || (r.starts_with("errors=") && !r.starts_with("errors=0")),
            "{r}"
        );
        if let Some(p) = r.split("persisted=").nth(1) {
            assert!(p.parse::<u64>().unwrap() < tail, "{r}");
        }
    }
    let rec = Recorder::spawn(&t, &store, rec_config()).unwrap();
    assert!(rec.wait_persisted(tail, Duration::from_secs(60)));
    rec.stop().unwrap();
    assert_eq!(stored_numbers(&store), (0..EVENTS).collect::<Vec<_>>());
}

#[test]
fn all_producer_and_subscriber_slots_taken_are_typed_errors() {
    let tb = TempBus::new("slots");
    let bus = tb.bus();
    let t = bus.topic("t").capacity(1 << 16).open_or_create().unwrap();
    let mut subs: Vec<_> = (0..shmbus::ring::layout::MAX_CONSUMERS)
        .map(|_| t.subscriber().open().unwrap())
        .collect();
    assert_eq!(
        t.subscriber().open().err(),
        Some(AttachError::TooManySubscribers)
    );
    assert_eq!(
        t.subscriber().named("late").open().err(),
        Some(AttachError::TooManySubscribers)
    );
    let mut pubs: Vec<_> = (0..shmbus::ring::layout::MAX_PRODUCERS)
        .map(|_| t.publisher().unwrap())
        .collect();
    assert_eq!(t.publisher().err(), Some(AttachError::TooManyProducers));
    // Everyone still works at the limit: every subscriber gets every event.
    for (i, p) in pubs.iter_mut().enumerate() {
        p.send_bytes(1, &(i as u64).to_le_bytes()).unwrap();
    }
    for s in &mut subs {
        for i in 0..pubs.len() as u64 {
            assert_eq!(
                s.try_recv_bytes().unwrap().unwrap().bytes(),
                i.to_le_bytes()
            );
        }
        assert!(s.try_recv_bytes().unwrap().is_none());
    }
    // A freed slot is usable again.
    drop(subs.pop());
    drop(pubs.pop());
    let mut late = t.subscriber().named("late").open().unwrap();
    let mut p = t.publisher().unwrap();
    p.send_bytes(1, b"after").unwrap();
    assert_eq!(late.try_recv_bytes().unwrap().unwrap().bytes(), b"after");
}

#[shmbus::event]
#[derive(Debug, Clone)]
struct Blob {
    data: Vec<u8>,
}

#[test]
fn records_larger_than_the_topic_allows_are_refused_and_write_nothing() {
    let tb = TempBus::new("large");
    let bus = tb.bus();
    let t = bus.topic("t").capacity(4096).open_or_create().unwrap();
    let max = t.max_payload();
    assert_eq!(max, 1024);
    let mut sub = t.subscriber().open().unwrap();
    let mut p = t.publisher().unwrap();
    let tail = t.tail();
    for len in [max + 1, 4096, 4096 * 2, 1 << 20] {
        assert_eq!(
            p.send_bytes(1, &vec![1u8; len]),
            Err(SendError::TooLarge { len, max })
        );
        assert_eq!(
            p.try_send_bytes(1, &vec![1u8; len]).err(),
            Some(SendError::TooLarge { len, max })
        );
        assert!(matches!(p.claim(len), Err(SendError::TooLarge { .. })));
    }
    assert_eq!(t.tail(), tail, "a refused record must not claim anything");
    p.send_bytes(1, &vec![2u8; max]).unwrap();
    assert_eq!(sub.try_recv_bytes().unwrap().unwrap().bytes().len(), max);
    assert!(sub.try_recv_bytes().unwrap().is_none());

    // Typed: the archive is what counts.
    let tt = bus
        .topic("typed")
        .event::<Blob>()
        .capacity(4096)
        .open_or_create()
        .unwrap();
    let mut tsub = tt.subscriber().open().unwrap();
    let mut tp = tt.publisher().unwrap();
    match tp.send(&Blob {
        data: vec![0; 2000],
    }) {
        Err(SendError::TooLarge { len, max }) => assert!(len > max && max == 1024),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    tp.send(&Blob { data: vec![9; 10] }).unwrap();
    assert_eq!(&tsub.try_recv().unwrap().unwrap().data[..], &[9; 10]);
    assert!(tsub.try_recv().unwrap().is_none());
}

mod v1 {
    #[shmbus::event]
    #[derive(Debug, Clone)]
    pub struct Quote {
        pub seq: u64,
        pub price: f64,
    }
}

mod v2 {
    /// The same type name, one more field.
    #[shmbus::event]
    #[derive(Debug, Clone)]
    pub struct Quote {
        pub seq: u64,
        pub price: f64,
        pub venue: String,
    }
}

mod v3 {
    /// The same fields, another order.
    #[shmbus::event]
    #[derive(Debug, Clone)]
    pub struct Quote {
        pub price: f64,
        pub seq: u64,
    }
}

#[test]
fn an_event_type_that_changed_shape_is_a_type_mismatch() {
    let tb = TempBus::new("shape");
    let bus = tb.bus();
    let t = bus
        .topic("q")
        .event::<v1::Quote>()
        .capacity(4096)
        .open_or_create()
        .unwrap();
    let mut sub = t.subscriber().start(Start::Earliest).open().unwrap();
    t.publisher()
        .unwrap()
        .send(&v1::Quote { seq: 1, price: 2.5 })
        .unwrap();
    assert_ne!(
        v1::Quote::schema().fingerprint(),
        v2::Quote::schema().fingerprint()
    );
    for r in [
        bus.topic("q").event::<v2::Quote>().open().err(),
        bus.topic("q").event::<v2::Quote>().open_or_create().err(),
    ] {
        match r {
            Some(OpenError::TypeMismatch { found, expected }) => {
                assert_eq!((found.as_str(), expected.as_str()), ("Quote", "Quote"))
            }
            other => panic!("expected TypeMismatch, got {other:?}"),
        }
    }
    assert!(matches!(
        bus.topic("q").event::<v3::Quote>().open(),
        Err(OpenError::TypeMismatch { .. })
    ));
    // Nothing committed is lost: the right type still reads it, and a raw reader sees
    // the stored (v1) schema.
    let ev = sub.try_recv().unwrap().unwrap();
    assert_eq!((ev.seq.to_native(), ev.price.to_native()), (1, 2.5));
    let raw = bus.topic("q").open().unwrap();
    assert_eq!(raw.schema().unwrap(), v1::Quote::schema());
}
