//! Where queries read records: a store's segments, or a live topic's ring, behind one
//! [`Source`] trait and one step of the scan loop ([`feed`]). The store's segments are
//! opened, checked and read through the store's own reader and validator
//! ([`crate::store::StoredTopic`], [`SegmentReader`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::RecvError;
use crate::query::fields::Rec;
use crate::query::plan::{Exec, Flow, Plan};
use crate::query::{Cell, QueryError, ScanStats};
use crate::schema::Schema;
use crate::store::format::segment::SEG_HEADER;
use crate::store::{list_segments, SegmentMeta, SegmentReader, StoreError, StoredTopic};
use crate::topic::subscriber::Start;
use crate::topic::wait::Wait;
use crate::topic::{Raw, Topic};

/// Records between two calls of the progress callback.
const PROGRESS_EVERY: u64 = 1 << 20;

/// One topic of a store, ready to be scanned: its segments (by base position) and the
/// schema stored in their footers.
#[derive(Debug, Clone)]
pub struct StoreTopic {
    dir: PathBuf,
    segs: Vec<SegmentMeta>,
    schema: Option<Schema>,
}

fn corrupt(path: &Path, offset: u64, what: &str) -> QueryError {
    QueryError::Store(StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what: what.to_string(),
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
        crate::topic::check_name(topic).map_err(|_| QueryError::UnknownTopic {
            topic: topic.to_string(),
            store: Some(store.to_path_buf()),
            known: store_topics(store),
        })?;
        let stored = StoredTopic::new(store, topic);
        let dir = stored.dir().to_path_buf();
        let segs = if dir.is_dir() {
            stored.peek_segments().map_err(QueryError::Store)?
        } else {
            Vec::new()
        };
        if segs.is_empty() {
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
        let mut schema_bytes: Option<(&[u8], &Path)> = None;
        for seg in segs.iter().filter(|s| s.footer.is_some()) {
            match schema_bytes {
                None => schema_bytes = Some((&seg.schema, &seg.info.path)),
                Some((s, first)) if *s != seg.schema[..] => {
                    return Err(corrupt(
                        &seg.info.path,
                        seg.schema_offset(),
                        &format!("its schema differs from that of {}", first.display()),
                    ))
                }
                Some(_) => {}
            }
        }
        let schema = match schema_bytes {
            Some(([], _)) => None,
            Some((b, path)) => Some(Schema::decode(b).map_err(|e| {
                corrupt(
                    path,
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
    /// finds the first record at `from_time` / `from_position`.
    ///
    /// Segments are read through the store's [`SegmentReader`], so they are checked
    /// the way every reader of the store checks them. The records carry no checksum of
    /// their own; the index holds one crc32c per run of records (at most 4 KiB).
    ///
    /// - Every record read is checked structurally: commit word `position | 1`,
    ///   position consecutive inside its run (so increasing), length within its run.
    /// - Before any payload of a run is read (by the filter or for the output), the
    ///   run's crc32c is verified, so every payload a query uses is covered by a
    ///   verified checksum. A filter on header fields alone checks structure only and
    ///   never reads or checksums a payload ([`ScanStats::runs_verified`] stays 0;
    ///   only the seek to `from_time` / `from_position` verifies the runs it reads,
    ///   through [`SegmentReader::seek_time`], as every store reader does).
    /// - A sealed segment whose index is missing or damaged is read with an index
    ///   rebuilt from its records once the footer's crc32c of all its data verifies
    ///   (else it is corrupt at the footer's checksum). An unsealed segment without a
    ///   usable index is read by the records' structure alone, as the store's reader
    ///   does; it is counted in [`ScanStats::segments_unverified`].
    ///
    /// # Errors
    ///
    /// [`QueryError::Store`] with `StoreError::Corrupt { path, offset, .. }` for a
    /// damaged record (its offset), run (the run's offset: `run checksum mismatch`),
    /// index or footer; I/O errors.
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
                // `--to-time` is exclusive; a footer without a smallest timestamp
                // (0, older files) never skips.
                let after_time = plan.to_time.is_some_and(|t| f.min_ts >= t && f.min_ts > 0);
                let before_pos = plan.from_position.is_some_and(|p| f.end_pos <= p);
                if empty || before_time || after_time || before_pos {
                    stats.segments_skipped += 1;
                    continue;
                }
            }
            let reader = match SegmentReader::open(&seg.info.path) {
                Ok(r) => r,
                // Deleted by retention since the listing: not part of the store now.
                Err(StoreError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    stats.segments_skipped += 1;
                    continue;
                }
                Err(e) => return Err(QueryError::Store(e)),
            };
            if reader.unverified() {
                stats.segments_unverified += 1;
            }
            let mut start = SEG_HEADER as u64;
            if let Some(p) = plan.from_position {
                match reader.seek_position(p)? {
                    Some((off, _)) => start = start.max(off),
                    None => {
                        stats.segments_skipped += 1;
                        continue 'segs;
                    }
                }
            }
            if let Some(t) = plan.from_time {
                match reader.seek_time(t)? {
                    Some((off, _)) => start = start.max(off),
                    None => {
                        stats.segments_skipped += 1;
                        continue 'segs;
                    }
                }
            }
            let flow = scan_segment(plan, &reader, start, &mut exec, &mut stats, sink, progress)?;
            progress(&stats);
            if flow == Flow::Stop {
                break;
            }
        }
        exec.finish(plan, &mut stats, sink);
        Ok(stats)
    }
}

/// The scan loop over one segment from file offset `off` (a record's), run by run.
///
/// Each record's header is checked for structure as it is read ([`Run::records_from`]:
/// commit word, position, length within its run). A run's crc32c from the index is
/// verified before the first payload of the run is read, by the filter or by the
/// output, so every payload a query uses is covered by a verified checksum; records
/// that are rejected by their header fields alone do not make their run be verified.
///
/// [`Run::records_from`]: crate::store::Run::records_from
#[allow(clippy::too_many_arguments)]
fn scan_segment(
    plan: &Plan,
    reader: &SegmentReader,
    off: u64,
    exec: &mut Exec,
    stats: &mut ScanStats,
    sink: &mut dyn FnMut(&[Cell]) -> bool,
    progress: &mut dyn FnMut(&ScanStats),
) -> Result<Flow, QueryError> {
    let Some(first) = reader.run_at(off) else {
        return Ok(Flow::Continue);
    };
    let mut next_progress = stats.records_scanned + PROGRESS_EVERY;
    let (start_off, mut end_off) = (off, off);
    let mut flow = Flow::Continue;
    'runs: for i in first..reader.index().len() {
        let Some(run) = reader.run(i) else { break };
        let mut verified = run.is_verified();
        let mut verify = |stats: &mut ScanStats| -> Result<(), QueryError> {
            if !verified {
                run.verify()?;
                stats.runs_verified += 1;
                verified = true;
            }
            stats.payloads_verified += 1;
            Ok(())
        };
        for r in run.records_from(off) {
            let r = r?;
            end_off = r.next_offset;
            stats.records_scanned += 1;
            if stats.records_scanned >= next_progress {
                stats.bytes_scanned += end_off - start_off;
                progress(stats);
                stats.bytes_scanned -= end_off - start_off;
                next_progress = stats.records_scanned + PROGRESS_EVERY;
            }
            let rec = Rec {
                position: r.position,
                timestamp: r.timestamp,
                type_id: r.type_id,
                payload: r.bytes,
            };
            if feed(plan, exec, stats, &rec, Some(&mut verify), sink)? == Flow::Stop {
                flow = Flow::Stop;
                break 'runs;
            }
        }
    }
    stats.bytes_scanned += end_off - start_off;
    Ok(flow)
}

/// A live ring's records need no check before their payload is used: the subscriber
/// validated them.
const NO_CHECK: Option<&mut NoCheck> = None;

/// The type of [`NO_CHECK`].
type NoCheck = fn(&mut ScanStats) -> Result<(), QueryError>;

/// The scan loop's work on one record, the same for every source: the plan's range,
/// then the filter, then the output. `check` runs before the record's payload is
/// first used (by the filter, or else by the output): the store verifies the crc32c
/// of the record's run there; a live ring has nothing to check (`None`).
///
/// Generic over the check so that it is inlined into each source's loop.
#[inline]
fn feed<C: FnMut(&mut ScanStats) -> Result<(), QueryError>>(
    plan: &Plan,
    exec: &mut Exec,
    stats: &mut ScanStats,
    rec: &Rec<'_>,
    mut check: Option<&mut C>,
    sink: &mut dyn FnMut(&[Cell]) -> bool,
) -> Result<Flow, QueryError> {
    if !plan.in_range(rec) {
        return Ok(Flow::Continue);
    }
    let filter_reads = plan.filter_needs_payload();
    if filter_reads {
        if let Some(c) = check.as_mut() {
            c(stats)?;
        }
    }
    match plan.matches(rec) {
        Some(true) => {}
        Some(false) => return Ok(Flow::Continue),
        None => {
            stats.undecodable += 1;
            return Ok(Flow::Continue);
        }
    }
    if plan.output_needs_payload() && !filter_reads {
        if let Some(c) = check.as_mut() {
            c(stats)?;
        }
    }
    stats.records_matched += 1;
    Ok(exec.accept(plan, rec, stats, sink))
}

/// Where a query reads records: a store's segments ([`StoreTopic`]) or a live topic's
/// ring ([`LiveTopic`]). Both run every record through the same step of the scan loop
/// (range, filter with the payload checked before its first use, output); they differ
/// only in how they walk their records.
pub trait Source {
    /// The topic's schema, if it has one.
    fn schema(&self) -> Option<&Schema>;

    /// Runs `plan` over the records. Matching rows (or, for aggregates, the result
    /// rows at the end) go to `sink`, which returns false to stop early; `progress` is
    /// called now and then with the counters so far.
    ///
    /// # Errors
    ///
    /// As the source's own `scan`.
    fn scan(
        &self,
        plan: &Plan,
        sink: &mut dyn FnMut(&[Cell]) -> bool,
        progress: &mut dyn FnMut(&ScanStats),
    ) -> Result<ScanStats, QueryError>;
}

/// Implements [`Source`] with a source's own `schema` and `scan`.
macro_rules! impl_source {
    ($($t:ty),*) => {$(
        impl Source for $t {
            fn schema(&self) -> Option<&Schema> {
                <$t>::schema(self)
            }

            fn scan(
                &self,
                plan: &Plan,
                sink: &mut dyn FnMut(&[Cell]) -> bool,
                progress: &mut dyn FnMut(&ScanStats),
            ) -> Result<ScanStats, QueryError> {
                <$t>::scan(self, plan, sink, progress)
            }
        }
    )*};
}

impl_source!(StoreTopic, LiveTopic);

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
    /// A record claimed but not yet committed is waited for; a dead producer's claim
    /// is skipped after the topic's unblock timeout. The scan is an inspecting reader
    /// ([`SubscriberBuilder::inspect`](crate::SubscriberBuilder::inspect)): it writes
    /// nothing into the ring but its own consumer slot, no gap record either.
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
            .inspect(true)
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
                    if feed(plan, &mut exec, &mut stats, &rec, NO_CHECK, sink)? == Flow::Stop {
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
