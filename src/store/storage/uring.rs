//! The io_uring backend: several writes in flight, buffers owned by a slab until their
//! completions are reaped.

use std::io;

use super::{Completion, Storage, Write};

/// io_uring: writes are queued and several are in flight at once.
///
/// `user_data` indexes a slab of the owned [`Write`]s, so each buffer lives in the slab
/// until its completion has been reaped.
pub struct UringStorage {
    ring: io_uring::IoUring,
    /// Set up disabled, for the thread that first uses it (see [`UringStorage::new`]).
    disabled: bool,
    slab: Vec<Option<Write>>,
    free: Vec<usize>,
    in_flight: usize,
    /// Completions drained while the submission or completion queue was full.
    stash: Vec<Completion>,
}

impl std::fmt::Debug for UringStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringStorage")
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

impl UringStorage {
    /// Set up a ring of `entries` and check that the kernel supports writes on it.
    ///
    /// Where the kernel has it (6.1 and later), the ring runs completions only when
    /// its one user asks for them (`DEFER_TASKRUN`): otherwise every completion of a
    /// write that the kernel's worker finished interrupts the recorder, sleeping or
    /// not, to post it. Such a ring belongs to one thread, so it is set up disabled
    /// and enabled by the first thread that writes through it (the recorder's, which
    /// is not the one that creates it).
    ///
    /// # Errors
    ///
    /// The setup error (ENOSYS, EPERM under seccomp, ...) or `Unsupported`.
    pub fn new(entries: u32) -> io::Result<UringStorage> {
        let (ring, disabled) = match io_uring::IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_taskrun_flag()
            .setup_r_disabled()
            .build(entries)
        {
            Ok(r) => (r, true),
            // Older kernels refuse the flags (EINVAL): a plain ring.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                (io_uring::IoUring::new(entries)?, false)
            }
            Err(e) => return Err(e),
        };
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        if !probe.is_supported(io_uring::opcode::Write::CODE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring does not support IORING_OP_WRITE on this kernel",
            ));
        }
        Ok(UringStorage {
            ring,
            disabled,
            slab: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            stash: Vec::new(),
        })
    }

    /// Enable a ring set up disabled: it belongs to the calling thread from now on.
    fn enable(&mut self) -> io::Result<()> {
        if self.disabled {
            self.ring.submitter().register_enable_rings()?;
            self.disabled = false;
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<Completion>) -> usize {
        let mut n = 0;
        let cq = self.ring.completion();
        for cqe in cq {
            let i = cqe.user_data() as usize;
            let Some(w) = self.slab.get_mut(i).and_then(Option::take) else {
                continue;
            };
            self.free.push(i);
            self.in_flight -= 1;
            let r = cqe.result();
            let res = if r < 0 {
                Err(io::Error::from_raw_os_error(-r))
            } else {
                Ok(r as usize)
            };
            out.push((w, res));
            n += 1;
        }
        n
    }

    fn enter(&mut self, want: usize, out: &mut Vec<Completion>) -> io::Result<()> {
        loop {
            match self.ring.submit_and_wait(want) {
                Ok(_) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // The completion queue is full: make room and try again.
                    self.drain(out);
                    if want == 0 {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Storage for UringStorage {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn submit(&mut self, w: Write) -> Result<(), Box<(Write, io::Error)>> {
        if let Err(e) = self.enable() {
            return Err(Box::new((w, e)));
        }
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slab.push(None);
                self.slab.len() - 1
            }
        };
        let rest = w.rest();
        let len = rest.len().min(u32::MAX as usize) as u32;
        let ptr = rest.as_ptr();
        let entry = io_uring::opcode::Write::new(io_uring::types::Fd(w.fd), ptr, len)
            .offset(w.offset + w.done as u64)
            .build()
            .user_data(slot as u64);
        self.slab[slot] = Some(w);
        let mut spare = Vec::new();
        loop {
            // SAFETY: the entry points into the source of the Write now owned by
            // `self.slab[slot]`: a Vec's heap buffer (which does not move with the Vec) or
            // a mapping kept alive by the `Mapped`; neither goes away until the
            // completion is reaped in `drain` (and `drop` waits for every completion).
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                break;
            }
            // Submission queue full: hand the queued entries to the kernel.
            if let Err(e) = self.enter(0, &mut spare) {
                self.stash.append(&mut spare);
                let w = self.slab[slot].take().unwrap_or_else(|| unreachable!());
                self.free.push(slot);
                return Err(Box::new((w, e)));
            }
        }
        self.in_flight += 1;
        // Completions drained while making room are reported by the next reap.
        self.stash.append(&mut spare);
        // Hand the entry to the kernel now. If that fails it stays queued and goes in
        // with the next `enter`.
        let mut more = Vec::new();
        let _ = self.enter(0, &mut more);
        self.stash.append(&mut more);
        Ok(())
    }

    fn reap(&mut self, min: usize, out: &mut Vec<Completion>) -> io::Result<()> {
        let start = out.len();
        out.append(&mut self.stash);
        if self.ring.submission().taskrun() {
            // Completions wait for us to run them (`DEFER_TASKRUN`).
            self.enter(0, out)?;
        }
        self.drain(out);
        while out.len() - start < min && self.in_flight > 0 {
            self.enter(1, out)?;
            self.drain(out);
        }
        Ok(())
    }

    fn in_flight(&self) -> usize {
        self.in_flight + self.stash.len()
    }
}

impl Drop for UringStorage {
    fn drop(&mut self) {
        // The kernel may still read from buffers of writes in flight: wait for them
        // before the slab (and the buffers) go.
        let mut out = Vec::new();
        while self.in_flight > 0 {
            if self.enter(1, &mut out).is_err() {
                break;
            }
            self.drain(&mut out);
            out.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Mapped, Source};
    use super::*;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;
    use std::time::Duration;
    use std::time::Instant;

    /// The recorder's case: the ring is set up on the caller's thread and written from
    /// the recorder's, whose polls (`reap` without waiting) must see completions, which
    /// a ring that defers them to its user posts only when asked.
    #[test]
    fn a_uring_set_up_on_one_thread_writes_from_another_and_polls_its_completions() {
        let mut st = match UringStorage::new(8) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("io_uring unavailable here ({e}): nothing to check");
                return;
            }
        };
        let path = std::env::temp_dir().join(format!("shmbus-uring-{}", std::process::id()));
        let file = std::fs::File::options()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .expect("create file");
        let mapped: Arc<Vec<u8>> = Arc::new((0..4096u32).map(|i| (i % 251) as u8).collect());
        let fd = file.as_raw_fd();
        let t = std::thread::spawn(move || {
            let owner: Arc<dyn Send + Sync> = mapped.clone();
            // SAFETY: the bytes live in `mapped`, kept alive by `owner`, and never change.
            let m = unsafe { Mapped::new(mapped.as_ptr(), mapped.len(), owner) };
            let writes = [
                (0, Source::Owned(vec![7u8; 512])),
                (512, Source::Mapped(m)),
                (4608, Source::Owned(vec![9u8; 100])),
            ];
            for (tag, (offset, src)) in writes.into_iter().enumerate() {
                let w = Write {
                    fd,
                    offset,
                    src,
                    done: 0,
                    tag: tag as u64,
                };
                st.submit(w).map_err(|b| b.1).expect("submit");
            }
            let (mut out, t0) = (Vec::new(), Instant::now());
            while out.len() < 3 {
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "polling reaped {} of 3 completions",
                    out.len()
                );
                st.reap(0, &mut out).expect("reap");
                std::thread::sleep(Duration::from_millis(1));
            }
            for (w, r) in &out {
                assert_eq!(
                    r.as_ref().ok(),
                    Some(&w.src.bytes().len()),
                    "write {}",
                    w.tag
                );
            }
            assert_eq!(st.in_flight(), 0);
            mapped
        });
        let mapped = t.join().expect("writer thread");
        let got = std::fs::read(&path).expect("read back");
        let _ = std::fs::remove_file(&path);
        assert_eq!(got.len(), 4708);
        assert!(got[..512].iter().all(|&b| b == 7));
        assert_eq!(&got[512..4608], &mapped[..]);
        assert!(got[4608..].iter().all(|&b| b == 9));
    }
}
