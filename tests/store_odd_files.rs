//! Odd files where a store's files belong: a FIFO, a link to a device, a sparse file of
//! gigabytes. Every reader returns promptly with the records (an index that is not a
//! regular file of plausible size is treated as missing and rebuilt from the checksummed
//! data) or with a typed error naming the path; none blocks in `open` or reads more than
//! the format allows.

mod store_util;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use shmbus::store::{
    list_segments, verify_topic, Fsync, Recorder, RecorderConfig, ReplayStart, StoreError,
    StoredTopic,
};
use store_util::*;

const EVENTS: u64 = 6_000;

/// A store of topic `t` holding `EVENTS` events of producer 0 in several sealed segments.
fn recorded(tag: &str) -> Dirs {
    let d = Dirs::new(tag);
    let topic = d
        .bus()
        .topic("t")
        .capacity(1 << 16)
        .open_or_create()
        .unwrap();
    let cfg = RecorderConfig {
        segment_size: 64 << 10,
        write_size: 16 << 10,
        fsync: Fsync::Never,
        ..Default::default()
    };
    let rec = Recorder::spawn(&topic, &d.store, cfg).unwrap();
    let mut publisher = topic.publisher().unwrap();
    let mut end = 0;
    for seq in 0..EVENTS {
        end = publisher.send_bytes(1, &payload(0, seq)).unwrap() + 64;
    }
    assert!(rec.wait_persisted(end, Duration::from_secs(30)));
    rec.stop().unwrap();
    assert!(list_segments(&d.topic_dir("t")).unwrap().len() >= 3);
    d
}

/// Runs `f` on another thread and fails the test if it does not return within 30 s.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("{what} did not return within 30 s"))
}

/// Every record of the store through the library's store cursor: (position, seq).
fn read_all(dir: PathBuf) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut c = StoredTopic::from_dir(dir).cursor(ReplayStart::Position(0))?;
    let mut out = Vec::new();
    while let Some(r) = c.next_record()? {
        out.push((r.position, decode(r.bytes).1));
    }
    Ok(out)
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// The peak resident set of this process, in KiB.
fn max_rss_kib() -> i64 {
    // SAFETY: getrusage writes only into `u`.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    u.ru_maxrss
}

#[test]
fn an_index_that_is_a_fifo_a_device_or_a_huge_sparse_file_is_rebuilt_not_read() {
    let d = recorded("odd-idx");
    let dir = d.topic_dir("t");
    let segs = list_segments(&dir).unwrap();
    let middle = segs[segs.len() / 2].idx_path();
    for (kind, plant) in [
        ("a FIFO", &(|p: &Path| mkfifo(p)) as &dyn Fn(&Path)),
        ("a link to /dev/zero", &|p: &Path| {
            let _ = std::fs::remove_file(p);
            std::os::unix::fs::symlink("/dev/zero", p).unwrap();
        }),
        ("a sparse 16 GiB file", &|p: &Path| {
            let _ = std::fs::remove_file(p);
            let f = std::fs::File::create(p).unwrap();
            f.set_len(16 << 30).unwrap();
        }),
    ] {
        plant(&middle);
        let rss_before = max_rss_kib();
        let recs = within(&format!("reading past {kind}"), {
            let dir = dir.clone();
            move || read_all(dir)
        })
        .unwrap_or_else(|e| panic!("an index that is {kind}: {e}"));
        assert_eq!(recs.len() as u64, EVENTS, "an index that is {kind}");
        assert!(recs.iter().enumerate().all(|(i, r)| r.1 == i as u64));
        let checks = within(&format!("verifying past {kind}"), {
            let dir = dir.clone();
            move || verify_topic(&dir).unwrap()
        });
        let c = checks
            .iter()
            .find(|c| c.path.with_extension("idx") == middle);
        let c = c.unwrap_or_else(|| panic!("{checks:?}"));
        assert!(c.index_damaged && c.error.is_none(), "{kind}: {c:?}");
        // Never more than the format allows: nowhere near the 16 GiB the file claims.
        assert!(
            max_rss_kib() - rss_before < 256 << 10,
            "{kind}: the peak RSS grew by {} KiB",
            max_rss_kib() - rss_before
        );
    }
}

#[test]
fn a_segment_that_is_a_fifo_is_a_typed_error_naming_it() {
    let d = recorded("odd-seg");
    let dir = d.topic_dir("t");
    let segs = list_segments(&dir).unwrap();
    let first = segs[0].path.clone();
    mkfifo(&first);
    let err = within("reading a store with a FIFO segment", {
        let dir = dir.clone();
        move || read_all(dir)
    })
    .expect_err("a FIFO is not a segment");
    let msg = err.to_string();
    assert!(
        msg.contains(&*first.to_string_lossy()) && msg.contains("not a regular file"),
        "{msg}"
    );
    let checks = within("verifying a store with a FIFO segment", move || {
        verify_topic(&dir)
    });
    match checks {
        Err(e) => assert!(e.to_string().contains("not a regular file"), "{e}"),
        Ok(checks) => {
            let c = checks.iter().find(|c| c.path == first).unwrap();
            assert!(c.error.is_some(), "{c:?}");
        }
    }
}
