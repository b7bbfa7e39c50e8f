//! The shared mapping of one ring file.
//!
//! # Safety of shared memory
//!
//! A ring file is mapped `MAP_SHARED` by every participant, and other processes write
//! it concurrently. This type is the one place that turns the mapping into Rust
//! references, under these rules:
//!
//! - Every word that more than one process writes or reads while another writes (tail,
//!   positions, owners, intents, commit words, futex words) is accessed only as an
//!   atomic (`AtomicU64`/`AtomicU32` have the size and alignment of `u64`/`u32`, and
//!   every such field is naturally aligned in the layout).
//! - Record headers and payloads are plain bytes. A producer writes them only inside
//!   its own claim, before the commit word is stored with release; a reliable-mode
//!   reader reads them only after acquiring that commit word and while its published
//!   position protects them from the next lap. Lossy-mode readers copy with volatile
//!   reads and validate afterwards ([`crate::ring::Ring::still_valid`]), like a seqlock.
//! - Subscribers map the data region read-only, so no subscriber bug can write the log.
//!   The one write a subscriber ever makes to the data region (a gap record for a dead
//!   producer's claim) goes through a short-lived read-write mapping of that one page.
//! - The mappings live as long as this value; every reference handed out borrows it.

use std::fs::File;
use std::path::PathBuf;

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::ring::layout::HEADER_SIZE;
use crate::ring::Memory;
use crate::sys::sync::{AtomicU32, AtomicU64, Ordering};

// The maps are held only to keep the memory mapped; the pointers above are used.
enum Data {
    ReadOnly(#[allow(dead_code)] Mmap),
    ReadWrite(#[allow(dead_code)] MmapMut),
}

/// A ring file's header (read-write) and data region (read-only for subscribers).
pub(crate) struct Mapping {
    header: *mut u8,
    data: *mut u8,
    capacity: usize,
    file: File,
    pub path: PathBuf,
    _header_map: MmapMut,
    data_map: Data,
}

// SAFETY: the raw pointers point into mappings owned by this value; all shared
// mutation goes through atomics or through claims owned by one thread (see above).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only exposes atomics and bytes guarded by the protocol.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A one-page read-write mapping of the ring file around the record header at file
    /// offset `off`, and the header's offset in it: how a reader whose data mapping is
    /// read-only writes a gap record. `None` if the page cannot be mapped.
    fn header_page(&self, off: usize) -> Option<(memmap2::MmapMut, usize)> {
        let page = 4096usize;
        let file_off = off & !(page - 1);
        // SAFETY: maps one page of the ring file shared; the callers touch only the
        // record header they own under the unblock lock, with atomics for its commit
        // word.
        let m = unsafe {
            MmapOptions::new()
                .offset(file_off as u64)
                .len(page)
                .map_mut(&self.file)
        }
        .ok()?;
        Some((m, off - file_off))
    }

    /// Map `file` (header + `capacity` bytes of data); data read-only unless `writable`.
    pub fn new(
        file: File,
        path: PathBuf,
        capacity: u64,
        writable: bool,
    ) -> std::io::Result<Mapping> {
        if cfg!(loom) {
            // Under loom the ring's atomics are loom objects, not words of memory.
            return Err(std::io::Error::other(
                "ring files cannot be mapped under --cfg loom",
            ));
        }
        // SAFETY: the file is a ring file that other processes map too; see the module
        // docs for how the shared contents are accessed. Its size was checked to cover
        // header + capacity by the caller.
        let mut header_map = unsafe { MmapOptions::new().len(HEADER_SIZE).map_mut(&file)? };
        let header = header_map.as_mut_ptr();
        let mut opts = MmapOptions::new();
        opts.offset(HEADER_SIZE as u64).len(capacity as usize);
        let (data, data_map) = if writable {
            // SAFETY: as above.
            let mut m = unsafe { opts.map_mut(&file)? };
            (m.as_mut_ptr(), Data::ReadWrite(m))
        } else {
            // SAFETY: as above; read-only.
            let m = unsafe { opts.map(&file)? };
            (m.as_ptr() as *mut u8, Data::ReadOnly(m))
        };
        Ok(Mapping {
            header,
            data,
            capacity: capacity as usize,
            file,
            path,
            _header_map: header_map,
            data_map,
        })
    }

    /// A second descriptor of the ring file.
    pub fn try_clone_file(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    /// The header bytes (for parsing static fields and the schema table).
    pub fn header_bytes(&self) -> &[u8] {
        // SAFETY: the header mapping is HEADER_SIZE bytes and lives as long as self.
        // Static fields are written once before the file is published.
        unsafe { std::slice::from_raw_parts(self.header, HEADER_SIZE) }
    }

    /// A payload slice inside the data region.
    ///
    /// # Safety
    ///
    /// `[off, off + len)` must be inside the data region and protected by the protocol
    /// (a committed record behind this reader's published position) for the lifetime
    /// the caller gives the slice.
    #[inline]
    pub unsafe fn data_slice(&self, off: usize, len: usize) -> &[u8] {
        debug_assert!(off >= HEADER_SIZE && off - HEADER_SIZE + len <= self.capacity);
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(self.data.add(off - HEADER_SIZE), len) }
    }

    /// A mutable payload slice inside the data region (producers only).
    ///
    /// # Safety
    ///
    /// The caller owns `[off, off + len)` through an uncommitted claim, and the data
    /// region is mapped read-write.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn data_slice_mut(&self, off: usize, len: usize) -> &mut [u8] {
        debug_assert!(matches!(self.data_map, Data::ReadWrite(_)));
        debug_assert!(off >= HEADER_SIZE && off - HEADER_SIZE + len <= self.capacity);
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts_mut(self.data.add(off - HEADER_SIZE), len) }
    }

    #[inline]
    fn ptr(&self, off: usize) -> *mut u8 {
        if off < HEADER_SIZE {
            // SAFETY: off is inside the header mapping.
            unsafe { self.header.add(off) }
        } else {
            debug_assert!(off - HEADER_SIZE < self.capacity);
            // SAFETY: off is inside the data mapping (ring offsets are masked).
            unsafe { self.data.add(off - HEADER_SIZE) }
        }
    }
}

impl Memory for Mapping {
    #[inline]
    fn word(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off % 8 == 0);
        // SAFETY: `off` is an 8-aligned field offset inside the mapping (see layout);
        // AtomicU64 has the size and alignment of u64; the mapping outlives `&self`.
        unsafe { &*(self.ptr(off) as *const AtomicU64) }
    }

    #[inline]
    fn word32(&self, off: usize) -> &AtomicU32 {
        debug_assert!(off % 4 == 0);
        // SAFETY: as for `word`, with a 4-aligned u32 field.
        unsafe { &*(self.ptr(off) as *const AtomicU32) }
    }

    #[inline]
    unsafe fn write(&self, off: usize, src: &[u8]) {
        // SAFETY: the caller owns the bytes by its claim; producers map data read-write.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr(off), src.len()) };
    }

    #[inline]
    fn read(&self, off: usize, dst: &mut [u8]) {
        let src = self.ptr(off);
        // Volatile: another process may be writing these bytes; lossy readers validate
        // what they copied afterwards. Whole aligned words first, then single bytes.
        let mut i = 0;
        if src as usize % 8 == 0 {
            let words = dst.len() / 8;
            for (k, chunk) in dst[..words * 8].chunks_exact_mut(8).enumerate() {
                // SAFETY: `off..off+dst.len()` is inside the mapping (record headers
                // never straddle the lap end) and `src + 8k` is 8-aligned.
                let w = unsafe { std::ptr::read_volatile(src.add(k * 8) as *const u64) };
                chunk.copy_from_slice(&w.to_ne_bytes());
            }
            i = words * 8;
        }
        for (j, b) in dst[i..].iter_mut().enumerate() {
            // SAFETY: as above, byte by byte.
            *b = unsafe { std::ptr::read_volatile(src.add(i + j)) };
        }
    }

    fn cas_data_word(&self, off: usize, current: u64, new: u64) -> bool {
        if let Data::ReadWrite(_) = self.data_map {
            return self
                .word(off)
                .compare_exchange(current, new, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok();
        }
        // Read-only data mapping: the CAS below is the only access through the page, on
        // a word the unblock lock holder decides.
        let Some((mut m, in_page)) = self.header_page(off) else {
            return false;
        };
        let p = m.as_mut_ptr();
        // SAFETY: in_page is 64-aligned within a page-aligned mapping that lives until
        // the end of this function.
        let w = unsafe { &*(p.add(in_page) as *const AtomicU64) };
        w.compare_exchange(current, new, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
    }

    fn store_gap(&self, off: usize, len: u32, commit: u64) {
        if let Data::ReadWrite(_) = self.data_map {
            // SAFETY: the unblock lock is held and the claim is abandoned: no one else
            // writes these bytes.
            unsafe { self.write(off + 8, &len.to_le_bytes()) };
            self.word(off).store(commit, Ordering::Release);
            return;
        }
        // Read-only data mapping: the bytes written are the abandoned record's header,
        // owned by the unblock lock holder.
        let Some((mut m, in_page)) = self.header_page(off) else {
            return;
        };
        m[in_page + 8..in_page + 12].copy_from_slice(&len.to_le_bytes());
        let p = m.as_mut_ptr();
        // SAFETY: in_page is 64-aligned within a page-aligned mapping.
        let w = unsafe { &*(p.add(in_page) as *const AtomicU64) };
        w.store(commit, Ordering::Release);
    }
}
