//! Where queries read records: a store's segments, or a live topic's ring.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zerocopy::FromBytes;

use crate::bus::{Raw, Topic};
use crate::error::RecvError;
use crate::layout::{record_size, RECORD_ALIGN, RECORD_HEADER};
use crate::query::eval::Rec;
use crate::query::plan::{Exec, Flow, Plan};
use crate::query::{Cell, QueryError, ScanStats};
use crate::schema::Schema;
use crate::store::segment::{
    list_segments, Footer, SegHeader, SegmentInfo, SegmentReader, Trailer, FOOTER_MAGIC,
    FOOTER_SIZE, SEG_HEADER, SEG_MAGIC, SEG_VERSION, TRAILER_MAGIC, TRAILER_SIZE,
};
use crate::store::StoreError;
use crate::subscriber::Start;
use crate::wait::Wait;

/// Records between two calls of the progress callback.
const PROGRESS_EVERY: u64 = 1 << 20;

/// Offset of the checksum word in a stored record header.
const R_CRC: usize = 12;

/// A segment of a store topic, with its footer if it is sealed.
#[derive(Debug, Clone)]
struct Seg {
    info: SegmentInfo,
    footer: Option<Footer>,
}

/// One topic of a store, ready to be scanned: its segments (by base position) and the
/// schema stored in their footers.
#[derive(Debug, Clone)]
pub struct StoreTopic {
    dir: PathBuf,
    segs: Vec<Seg>,
    schema: Option<Schema>,
}

fn corrupt(path: &Path, offset: u64, what: &str) -> QueryError {
    QueryError::Store(StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: what.to_string(),
    })
}

fn io(path: &Path, op: &'static str, source: std::io::Error) -> QueryError {
    QueryError::Store(StoreError::Io {
        path: path.to_path_buf(),
        op,
        source,
    })
}

/// Topics of a store: subdirectories holding at least one segment.
fn store_topics(store: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(store) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && list_segments(&p).is_ok_and(|s| !s.is_empty()) {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Reads a sealed segment's footer and schema (checking magic and checksum) with two
/// small reads; `Ok(None)` if the file has no valid trailer (not sealed).
fn peek_footer(path: &Path, len: u64) -> Result<Option<(Footer, Vec<u8>)>, QueryError> {
    let min = (SEG_HEADER + FOOTER_SIZE + TRAILER_SIZE) as u64;
    if len < min {
        return Ok(None);
    }
    let file = File::open(path).map_err(|e| io(path, "open segment", e))?;
    let mut h = [0u8; SEG_HEADER];
    file.read_exact_at(&mut h, 0)
        .map_err(|e| io(path, "read segment header", e))?;
    check_header(path, &h)?;
    let mut t = [0u8; TRAILER_SIZE];
    file.read_exact_at(&mut t, len - TRAILER_SIZE as u64)
        .map_err(|e| io(path, "read segment trailer", e))?;
    let Ok(trailer) = Trailer::read_from_bytes(&t) else {
        return Ok(None);
    };
    if trailer.magic != TRAILER_MAGIC {
        return Ok(None);
    }
    let at = trailer.footer_off;
    if at < SEG_HEADER as u64 || at > len - min + SEG_HEADER as u64 {
        return Err(corrupt(
            path,
            len - TRAILER_SIZE as u64,
            "trailer points outside the file",
        ));
    }
    let mut fb = [0u8; FOOTER_SIZE];
    file.read_exact_at(&mut fb, at)
        .map_err(|e| io(path, "read segment footer", e))?;
    let Ok(mut footer) = Footer::read_from_bytes(&fb) else {
        return Err(corrupt(path, at, "unreadable footer"));
    };
    if footer.magic != FOOTER_MAGIC || footer.data_end != at {
        return Err(corrupt(path, at, "bad footer"));
    }
    let schema_len = u64::from(footer.schema_len);
    if at + FOOTER_SIZE as u64 + schema_len + TRAILER_SIZE as u64 != len {
        return Err(corrupt(
            path,
            at + 76,
            "footer schema length disagrees with the file size",
        ));
    }
    let mut schema = vec![0u8; schema_len as usize];
    file.read_exact_at(&mut schema, at + FOOTER_SIZE as u64)
        .map_err(|e| io(path, "read segment schema", e))?;
    let stored = footer.footer_crc;
    footer.footer_crc = 0;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(zerocopy::IntoBytes::as_bytes(&footer)),
        &schema,
    );
    footer.footer_crc = stored;
    if crc != stored {
        return Err(corrupt(path, at + 80, "footer checksum mismatch"));
    }
    Ok(Some((footer, schema)))
}

fn check_header(path: &Path, h: &[u8]) -> Result<SegHeader, QueryError> {
    let Ok(hdr) = SegHeader::read_from_bytes(h) else {
        return Err(corrupt(path, 0, "segment header is truncated"));
    };
    if hdr.magic != SEG_MAGIC {
        return Err(corrupt(path, 0, "not a shmbus segment (bad magic)"));
    }
    if hdr.version != SEG_VERSION || hdr.header_size != SEG_HEADER as u32 {
        return Err(corrupt(path, 8, "unsupported segment version"));
    }
    Ok(hdr)
}

impl StoreTopic {
    /// Opens `<store>/<topic>`: lists its segments and reads the footers of the sealed
    /// ones (not their data).
    ///
    /// # Errors
    ///
    /// [`QueryError::NotAStore`] if `store` is not a directory of topic segment
    /// directories, [`QueryError::UnknownTopic`] (listing the store's topics),
    /// [`QueryError::Store`] for unreadable or corrupt footers, or a segment whose
    /// schema differs from the first one's (path and offset).
    pub fn open(store: &Path, topic: &str) -> Result<StoreTopic, QueryError> {
        let not_store = |why: &str| QueryError::NotAStore {
            path: store.to_path_buf(),
            why: why.to_string(),
        };
        let md = std::fs::metadata(store).map_err(|e| not_store(&e.to_string()))?;
        if !md.is_dir() {
            return Err(not_store("not a directory"));
        }
        crate::bus::check_name(topic).map_err(|_| QueryError::UnknownTopic {
            topic: topic.to_string(),
            store: Some(store.to_path_buf()),
            known: store_topics(store),
        })?;
        let dir = crate::store::topic_dir(store, topic);
        let infos = if dir.is_dir() {
            list_segments(&dir).map_err(QueryError::Store)?
        } else {
            Vec::new()
        };
        if infos.is_empty() {
            let known = store_topics(store);
            if known.is_empty() {
                return Err(not_store("it holds no topic directories with segments"));
            }
            return Err(QueryError::UnknownTopic {
                topic: topic.to_string(),
                store: Some(store.to_path_buf()),
                known,
            });
        }
        let mut segs = Vec::with_capacity(infos.len());
        let mut schema_bytes: Option<(Vec<u8>, PathBuf)> = None;
        for info in infos {
            let footer = match peek_footer(&info.path, info.len) {
                Ok(f) => f,
                // Deleted by retention since the listing: not part of the store now.
                Err(QueryError::Store(StoreError::Io { source, .. }))
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let footer = footer.map(|(f, schema)| {
                match &schema_bytes {
                    None => schema_bytes = Some((schema, info.path.clone())),
                    Some((s, first)) if *s != schema => {
                        return Err(corrupt(
                            &info.path,
                            f.data_end + FOOTER_SIZE as u64,
                            &format!("its schema differs from that of {}", first.display()),
                        ))
                    }
                    Some(_) => {}
                }
                Ok(f)
            });
            segs.push(Seg {
                info,
                footer: footer.transpose()?,
            });
        }
        let schema = match schema_bytes {
            Some((b, _)) if b.is_empty() => None,
            Some((b, path)) => Some(Schema::decode(&b).map_err(|e| {
                corrupt(
                    &path,
                    e.offset().unwrap_or(0) as u64,
                    &format!("stored schema: {e}"),
                )
            })?),
            None => None,
        };
        Ok(StoreTopic { dir, segs, schema })
    }

    /// The schema stored in the segment footers (`None` for raw topics, or when no
    /// segment is sealed yet: see [`StoreTopic::set_schema`]).
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// Supplies the schema when no sealed segment carries one (e.g. from the live
    /// topic while its first segment is still being written).
    pub fn set_schema(&mut self, schema: Schema) {
        self.schema = Some(schema);
    }

    /// The topic's directory in the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of segments.
    pub fn segments(&self) -> usize {
        self.segs.len()
    }

    /// Runs `plan` over the segments in order. Matching rows (or, for aggregates, the
    /// result rows at the end) go to `sink`, which returns false to stop early;
    /// `progress` is called now and then with the counters so far.
    ///
    /// Segments whose footer shows they hold nothing in the plan's time or position
    /// range are skipped without reading them; inside a segment the sparse index
    /// finds the first record at `from_time` / `from_position`. Every record read is
    /// checked structurally (commit word, increasing positions, bounds); its crc32c is
    /// checked whenever its payload is read. Records the filter rejects from their
    /// header alone are not checksummed, so a header-only query never reads payloads.
    ///
    /// # Errors
    ///
    /// [`QueryError::Store`] with `StoreError::Corrupt { path, offset, .. }` for a
    /// damaged record or footer, I/O errors.
    pub fn scan(
        &self,
        plan: &Plan,
        sink: &mut dyn FnMut(&[Cell]) -> bool,
        progress: &mut dyn FnMut(&ScanStats),
    ) -> Result<ScanStats, QueryError> {
        let mut stats = ScanStats::default();
        let mut exec = plan.exec();
        'segs: for seg in &self.segs {
            stats.segments += 1;
            if let Some(f) = &seg.footer {
                let empty = f.count == 0;
                let before_time = plan.from_time.is_some_and(|t| f.max_ts < t);
                let before_pos = plan.from_position.is_some_and(|p| f.end_pos <= p);
                if empty || before_time || before_pos {
                    stats.segments_skipped += 1;
                    continue;
                }
            }
            let flow =
                if let (Some(f), None, None) = (&seg.footer, plan.from_time, plan.from_position) {
                    scan_sealed(
                        plan,
                        &seg.info.path,
                        f,
                        SEG_HEADER as u64,
                        f.first_pos,
                        &mut exec,
                        &mut stats,
                        sink,
                        progress,
                    )?
                } else {
                    let reader = match SegmentReader::open(&seg.info.path) {
                        Ok(r) => r,
                        Err(StoreError::Io { source, .. })
                            if source.kind() == std::io::ErrorKind::NotFound =>
                        {
                            stats.segments_skipped += 1;
                            continue;
                        }
                        Err(e) => return Err(QueryError::Store(e)),
                    };
                    let mut start = (SEG_HEADER as u64, reader.base());
                    if let Some(p) = plan.from_position {
                        match reader.seek_position(p).map_err(QueryError::Store)? {
                            Some(at) => start = start.max(at),
                            None => {
                                stats.segments_skipped += 1;
                                continue 'segs;
                            }
                        }
                    }
                    if let Some(t) = plan.from_time {
                        match reader.seek_time(t).map_err(QueryError::Store)? {
                            Some(at) => start = start.max(at),
                            None => {
                                stats.segments_skipped += 1;
                                continue 'segs;
                            }
                        }
                    }
                    match &seg.footer {
                        Some(f) => scan_sealed(
                            plan,
                            &seg.info.path,
                            f,
                            start.0,
                            start.1,
                            &mut exec,
                            &mut stats,
                            sink,
                            progress,
                        )?,
                        None => scan_reader(
                            plan, &reader, start.0, start.1, &mut exec, &mut stats, sink, progress,
                        )?,
                    }
                };
            progress(&stats);
            if flow == Flow::Stop {
                break;
            }
        }
        exec.finish(plan, &mut stats, sink);
        Ok(stats)
    }
}

/// Checks a stored record's crc32c (header with the crc word zeroed, then payload)
/// and its zero padding. `rec` is the whole stored record.
#[inline]
fn verify(rec: &[u8], len: usize) -> bool {
    let stored = u32::from_le_bytes([rec[R_CRC], rec[R_CRC + 1], rec[R_CRC + 2], rec[R_CRC + 3]]);
    let n = RECORD_HEADER + len;
    record_crc(&rec[..n]) == stored && rec[n..].iter().fold(0u8, |a, &b| a | b) == 0
}

/// crc32c of a record's header (with the crc word as zero) and payload, exactly as
/// `crc32c::crc32c` computes it. With SSE 4.2 it is a straight run of `crc32`
/// instructions: the crate's general entry point costs several times more per call
/// for buffers this small, and this runs once per record a query reads.
#[inline]
fn record_crc(rec: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU supports SSE 4.2, checked just above.
            return unsafe { record_crc_sse42(rec) };
        }
    }
    let mut h = [0u8; RECORD_HEADER];
    h.copy_from_slice(&rec[..RECORD_HEADER]);
    h[R_CRC..R_CRC + 4].fill(0);
    crc32c::crc32c_append(crc32c::crc32c(&h), &rec[RECORD_HEADER..])
}

/// [`record_crc`] with the SSE 4.2 `crc32` instruction.
///
/// # Safety
///
/// The CPU must support SSE 4.2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
// Older compilers need the block below; newer ones treat these intrinsics as safe in
// a function with the feature enabled.
#[allow(unused_unsafe)]
unsafe fn record_crc_sse42(rec: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let word = |c: &[u8]| u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or_default());
    let (header, payload) = rec.split_at(RECORD_HEADER.min(rec.len()));
    // SAFETY: the intrinsics need SSE 4.2, which the caller guarantees; they read no
    // memory.
    unsafe {
        let mut crc = u64::from(u32::MAX);
        for (i, c) in header.chunks_exact(8).enumerate() {
            let mut w = word(c);
            if i == R_CRC / 8 {
                // Bytes 12..16, the crc word itself, count as zero.
                w &= 0xffff_ffff;
            }
            crc = _mm_crc32_u64(crc, w);
        }
        let mut words = payload.chunks_exact(8);
        for c in &mut words {
            crc = _mm_crc32_u64(crc, word(c));
        }
        let mut crc = crc as u32;
        for &b in words.remainder() {
            crc = _mm_crc32_u8(crc, b);
        }
        !crc
    }
}

/// The scan loop over a sealed segment's mapped records from file offset `off`.
#[allow(clippy::too_many_arguments)]
fn scan_sealed(
    plan: &Plan,
    path: &Path,
    footer: &Footer,
    mut off: u64,
    mut min_pos: u64,
    exec: &mut Exec,
    stats: &mut ScanStats,
    sink: &mut dyn FnMut(&[Cell]) -> bool,
    progress: &mut dyn FnMut(&ScanStats),
) -> Result<Flow, QueryError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            stats.segments_skipped += 1;
            return Ok(Flow::Continue);
        }
        Err(e) => return Err(io(path, "open segment", e)),
    };
    // SAFETY: a sealed segment (it has a valid trailer and footer) is never written or
    // truncated again, only unlinked, which keeps the mapping valid. Every read below
    // is a bounds-checked slice of the mapping.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io(path, "map segment", e))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let end = footer.data_end;
    let Some(data) = map.get(..end as usize) else {
        return Err(corrupt(path, end, "footer points past the end of the file"));
    };
    let verify_first = plan.filter_needs_payload();
    let verify_out = plan.output_needs_payload();
    let mut next_progress = stats.records_scanned + PROGRESS_EVERY;
    let start_off = off;
    let mut flow = Flow::Continue;
    while off < end {
        if stats.records_scanned >= next_progress {
            stats.bytes_scanned += off - start_off;
            progress(stats);
            stats.bytes_scanned -= off - start_off;
            next_progress = stats.records_scanned + PROGRESS_EVERY;
        }
        let at = off as usize;
        let Some(h) = data.get(at..at + RECORD_HEADER) else {
            return Err(corrupt(path, off, "truncated record header"));
        };
        let word = u64::from_le_bytes(h[0..8].try_into().unwrap_or_default());
        if word & (RECORD_ALIGN - 1) != 1 {
            return Err(corrupt(
                path,
                off,
                "commit word is not a committed data record",
            ));
        }
        let position = word & !(RECORD_ALIGN - 1);
        if position < min_pos {
            return Err(corrupt(path, off, "position does not increase"));
        }
        let len = u32::from_le_bytes(h[8..12].try_into().unwrap_or_default()) as usize;
        let size = record_size(len);
        let Some(stored) = data
            .get(at..(off + size) as usize)
            .filter(|_| off + size <= end)
        else {
            return Err(corrupt(
                path,
                off,
                "record extends past the end of the data",
            ));
        };
        let rec = Rec {
            position,
            timestamp: u64::from_le_bytes(h[24..32].try_into().unwrap_or_default()),
            type_id: u64::from_le_bytes(h[16..24].try_into().unwrap_or_default()),
            payload: &stored[RECORD_HEADER..RECORD_HEADER + len],
        };
        stats.records_scanned += 1;
        off += size;
        min_pos = position + size;
        if !plan.in_range(&rec) {
            continue;
        }
        let mut verified = false;
        if verify_first {
            if !verify(stored, len) {
                return Err(corrupt(path, off - size, "record checksum mismatch"));
            }
            stats.payloads_verified += 1;
            verified = true;
        }
        match plan.matches(&rec) {
            Some(true) => {}
            Some(false) => continue,
            None => {
                stats.undecodable += 1;
                continue;
            }
        }
        if verify_out && !verified {
            if !verify(stored, len) {
                return Err(corrupt(path, off - size, "record checksum mismatch"));
            }
            stats.payloads_verified += 1;
        }
        stats.records_matched += 1;
        if exec.accept(plan, &rec, stats, sink) == Flow::Stop {
            flow = Flow::Stop;
            break;
        }
    }
    stats.bytes_scanned += off - start_off;
    Ok(flow)
}

/// The scan loop over a segment through [`SegmentReader`] (the unsealed tail segment):
/// every record is checksummed.
#[allow(clippy::too_many_arguments)]
fn scan_reader(
    plan: &Plan,
    reader: &SegmentReader,
    mut off: u64,
    mut min_pos: u64,
    exec: &mut Exec,
    stats: &mut ScanStats,
    sink: &mut dyn FnMut(&[Cell]) -> bool,
    progress: &mut dyn FnMut(&ScanStats),
) -> Result<Flow, QueryError> {
    let start_off = off;
    let mut flow = Flow::Continue;
    while let Some(r) = reader.record_at(off, min_pos).map_err(QueryError::Store)? {
        off = r.next_offset;
        min_pos = r.next_position;
        stats.records_scanned += 1;
        stats.payloads_verified += 1;
        if stats.records_scanned % PROGRESS_EVERY == 0 {
            progress(stats);
        }
        let rec = Rec {
            position: r.position,
            timestamp: r.timestamp,
            type_id: r.type_id,
            payload: r.bytes,
        };
        if !plan.in_range(&rec) {
            continue;
        }
        match plan.matches(&rec) {
            Some(true) => {}
            Some(false) => continue,
            None => {
                stats.undecodable += 1;
                continue;
            }
        }
        stats.records_matched += 1;
        if exec.accept(plan, &rec, stats, sink) == Flow::Stop {
            flow = Flow::Stop;
            break;
        }
    }
    stats.bytes_scanned += off - start_off;
    Ok(flow)
}

/// A live topic's retained records.
#[derive(Debug, Clone)]
pub struct LiveTopic {
    topic: Topic<Raw>,
}

impl LiveTopic {
    /// Wraps an open topic (any event type, opened raw).
    pub fn new(topic: Topic<Raw>) -> LiveTopic {
        LiveTopic { topic }
    }

    /// The topic's schema.
    pub fn schema(&self) -> Option<&Schema> {
        self.topic.schema()
    }

    /// Runs `plan` over a snapshot of the ring: an anonymous (non-durable) subscriber
    /// joins at the oldest retained record and reads up to the tail as it was when the
    /// subscriber joined; records published later are not included. In a reliable
    /// topic the subscriber holds producers back like any subscriber while it scans
    /// (they may have to wait once the ring is full); in a lossy topic producers may
    /// lap it, and the bytes it missed are counted in [`ScanStats::missed_bytes`].
    /// A record claimed but not yet committed is waited for (a dead producer's claim
    /// becomes a gap after the topic's unblock timeout).
    ///
    /// # Errors
    ///
    /// Attach and receive errors.
    pub fn scan(
        &self,
        plan: &Plan,
        sink: &mut dyn FnMut(&[Cell]) -> bool,
        progress: &mut dyn FnMut(&ScanStats),
    ) -> Result<ScanStats, QueryError> {
        let mut stats = ScanStats::default();
        let mut exec = plan.exec();
        let mut sub = self
            .topic
            .subscriber()
            .start(Start::Earliest)
            .accept_loss(true)
            .wait(Wait::Block)
            .open()
            .map_err(QueryError::Attach)?;
        let end = self.topic.tail();
        while sub.position() < end {
            match sub.recv_bytes_timeout(Duration::from_millis(100)) {
                Ok(Some(ev)) => {
                    if ev.position() >= end {
                        break;
                    }
                    let rec = Rec {
                        position: ev.position(),
                        timestamp: ev.timestamp(),
                        type_id: ev.type_id(),
                        payload: ev.bytes(),
                    };
                    stats.records_scanned += 1;
                    stats.bytes_scanned += ev.next_position() - ev.position();
                    if stats.records_scanned % PROGRESS_EVERY == 0 {
                        progress(&stats);
                    }
                    if !plan.in_range(&rec) {
                        continue;
                    }
                    match plan.matches(&rec) {
                        Some(true) => {}
                        Some(false) => continue,
                        None => {
                            stats.undecodable += 1;
                            continue;
                        }
                    }
                    stats.records_matched += 1;
                    if exec.accept(plan, &rec, &mut stats, sink) == Flow::Stop {
                        break;
                    }
                }
                Ok(None) => {}
                Err(RecvError::Lagged { missed_bytes, .. }) => stats.missed_bytes += missed_bytes,
                Err(e) => return Err(QueryError::Recv(e)),
            }
        }
        exec.finish(plan, &mut stats, sink);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_crc_matches_the_crate() {
        let bytes: Vec<u8> = (0..600u32).map(|i| (i * 31 + 7) as u8).collect();
        for n in RECORD_HEADER..bytes.len() {
            let mut h = [0u8; RECORD_HEADER];
            h.copy_from_slice(&bytes[..RECORD_HEADER]);
            h[R_CRC..R_CRC + 4].fill(0);
            let want = crc32c::crc32c_append(crc32c::crc32c(&h), &bytes[RECORD_HEADER..n]);
            assert_eq!(record_crc(&bytes[..n]), want, "{n} bytes");
        }
    }

    #[test]
    fn record_checks_match_the_store_encoding() {
        for len in [0usize, 1, 7, 8, 80, 95, 224, 225, 300, 1000] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let mut rec = Vec::new();
            crate::store::segment::encode_record(&mut rec, 64 * 9, 12345, 77, &payload);
            assert!(verify(&rec, len), "len {len}");
            for i in 0..rec.len() {
                let mut bad = rec.clone();
                bad[i] ^= 0x10;
                assert!(!verify(&bad, len), "len {len}, byte {i} flipped");
            }
        }
    }
}
