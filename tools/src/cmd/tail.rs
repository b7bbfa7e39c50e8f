//! `shmbus tail <topic> [-n N] [-f] [--from-time T | --from-position P] [--store DIR]`.
//!
//! Without a start, prints the last N (default 10) events now in the ring (or in the
//! store and the ring, with `--store`). With a start, prints the events from there to
//! the current end, at most N with `-n`. `-f` then keeps following the live ring until
//! SIGINT/SIGTERM. Typed events are decoded to JSON from the topic's stored schema;
//! raw payloads (and records whose type id is not the topic's) are printed as hex or
//! base64 next to their header fields.
//!
//! With `--store`, reading starts in the store's segments and crosses into the live
//! ring through [`shmbus::store::Replay`], with no gap and no duplicate; if the topic is
//! not on the bus, only the segments are read.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use shmbus::schema::Schema;
use shmbus::store::{Replay, ReplayStart};
use shmbus::{AttachError, Raw, RecvError, Start, Topic};

use crate::error::CliError;
use crate::output::Format;
use crate::progress::{share, Progress};
use crate::report::{base64, hex, note, out_line, Obj};
use crate::stored::{for_each_stored, stored_end, stored_schema, StartArgs};
use crate::target::{existing_bus, install_stop_handlers, open_topic, stopping, store_topics};
use crate::timefmt::format_time;
use crate::Ctx;

/// How raw payloads are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// Arguments of `shmbus tail`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic.
    pub topic: String,
    /// Without a start: how many of the latest events to print (default 10). With
    /// --from-*: the most events to print.
    #[arg(short = 'n', long = "lines")]
    pub n: Option<u64>,
    /// Keep following the live ring (until SIGINT/SIGTERM).
    #[arg(short, long)]
    pub follow: bool,
    #[command(flatten)]
    pub from: StartArgs,
    /// Read the store's segments first, then cross into the live ring.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// How to print raw payloads.
    #[arg(long, value_name = "ENCODING", value_enum, default_value = "hex")]
    pub raw_encoding: Encoding,
}

/// Renders records as JSON lines or table lines.
pub struct Printer {
    schema: Option<Schema>,
    type_id: u64,
    encoding: Encoding,
    format: Format,
    show_source: bool,
    buf: String,
}

impl Printer {
    /// A printer for a topic carrying `type_id` events described by `schema`.
    pub fn new(
        schema: Option<Schema>,
        type_id: u64,
        encoding: Encoding,
        format: Format,
        show_source: bool,
    ) -> Printer {
        Printer {
            schema,
            type_id,
            encoding,
            format,
            show_source,
            buf: String::new(),
        }
    }

    /// One record as a line of output.
    pub fn render(
        &mut self,
        position: u64,
        timestamp: u64,
        type_id: u64,
        bytes: &[u8],
        from_disk: bool,
    ) -> String {
        self.buf.clear();
        let mut decoded = None;
        let mut decode_error = None;
        if let Some(s) = &self.schema {
            if type_id == self.type_id {
                match shmbus::schema::decode::render_json(s, bytes, &mut self.buf) {
                    Ok(()) => decoded = Some(self.buf.as_str()),
                    Err(e) => decode_error = Some(e.to_string()),
                }
            }
        }
        let payload = || match self.encoding {
            Encoding::Hex => ("payload_hex", hex(bytes)),
            Encoding::Base64 => ("payload_base64", base64(bytes)),
        };
        match self.format {
            Format::Json => {
                let mut o = Obj::new()
                    .u64("position", position)
                    .str("time", &format_time(timestamp))
                    .u64("timestamp_ns", timestamp)
                    .u64("type_id", type_id)
                    .u64("len", bytes.len() as u64);
                if self.show_source {
                    o = o.str("source", if from_disk { "store" } else { "ring" });
                }
                match decoded {
                    Some(j) => o.raw("event", j).finish(),
                    None => {
                        let (k, v) = payload();
                        if let Some(e) = &decode_error {
                            o = o.str("decode_error", e);
                        }
                        o.str(k, &v).finish()
                    }
                }
            }
            Format::Table => {
                let body = match decoded {
                    Some(j) => j.to_string(),
                    None => {
                        let (k, v) = payload();
                        match &decode_error {
                            Some(e) => format!("{k}={v} (undecodable: {e})"),
                            None => format!("type={type_id:#x} len={} {k}={v}", bytes.len()),
                        }
                    }
                };
                let src = if !self.show_source {
                    ""
                } else if from_disk {
                    "store  "
                } else {
                    "ring   "
                };
                format!("{position:>12}  {}  {src}{body}", format_time(timestamp))
            }
        }
    }
}

/// Collects output: either the last `keep` lines (printed at the end) or everything
/// up to `limit` lines (printed as it comes).
struct Sink {
    last: Option<VecDeque<String>>,
    keep: usize,
    limit: Option<u64>,
    printed: u64,
}

impl Sink {
    fn push(&mut self, line: String) -> ControlFlow<()> {
        if stopping() {
            return ControlFlow::Break(());
        }
        if let Some(q) = &mut self.last {
            if self.keep == 0 {
                return ControlFlow::Continue(());
            }
            if q.len() == self.keep {
                q.pop_front();
            }
            q.push_back(line);
            return ControlFlow::Continue(());
        }
        out_line(&line);
        self.printed += 1;
        if self.limit.is_some_and(|l| self.printed >= l) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// Prints what a "last N" sink kept and turns it into a pass-through sink.
    fn flush(&mut self) {
        if let Some(q) = self.last.take() {
            for l in q {
                out_line(&l);
            }
        }
        self.limit = None;
    }

    fn done(&self) -> bool {
        self.last.is_none() && self.limit.is_some_and(|l| self.printed >= l)
    }
}

fn recv_error(topic: &str, e: RecvError) -> CliError {
    match e {
        RecvError::Evicted => CliError::new(format!(
            "evicted from topic {topic:?} (too slow for a reliable topic's producers)"
        )),
        e => CliError::new(format!("reading topic {topic:?}: {e}")),
    }
}

fn attach_error(topic: &str, e: AttachError) -> CliError {
    match e {
        AttachError::InvalidPosition(p) => CliError::new(format!(
            "position {p} is not a record boundary of topic {topic:?}"
        )),
        AttachError::PositionLost { requested, oldest } => CliError::new(format!(
            "position {requested} of topic {topic:?} was overwritten; the oldest in the \
             ring is {oldest} (use --store to read older records)"
        )),
        e => CliError::new(format!("cannot subscribe to topic {topic:?}: {e}")),
    }
}

/// Runs `shmbus tail`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let start = args.from.start()?;
    let mut sink = Sink {
        last: start.is_none().then(VecDeque::new),
        keep: args.n.unwrap_or(10) as usize,
        limit: if start.is_some() { args.n } else { None },
        printed: 0,
    };
    install_stop_handlers()?;
    match &args.store {
        None => {
            let bus = existing_bus(ctx)?;
            let topic = open_topic(&bus, &args.topic)?;
            tail_ring(ctx, &args, &topic, start, &mut sink)
        }
        Some(store) => {
            let (_, dir) = store_topics(store, Some(&args.topic))?.remove(0);
            // The live topic if there is one; else the segments alone.
            let live = existing_bus(ctx)
                .ok()
                .and_then(|bus| bus.topic(&args.topic).open().ok());
            match live {
                Some(topic) => tail_replay(ctx, &args, &topic, store, start, &mut sink),
                None => {
                    if args.follow {
                        return Err(CliError::new(format!(
                            "topic {:?} is not on bus {:?}: cannot follow it (drop -f to \
                             read the store alone)",
                            args.topic, ctx.bus
                        )));
                    }
                    let (schema, type_id) = stored_schema(&dir)?;
                    let from = start.unwrap_or_else(|| {
                        ReplayStart::Position(last_n_start(store, &args.topic, sink.keep))
                    });
                    let mut pr =
                        Printer::new(schema, type_id, args.raw_encoding, ctx.format, false);
                    let end = stored_end(&dir);
                    let mut progress = Progress::new(format!("tail {}", args.topic), "events");
                    let mut p0 = None;
                    for_each_stored(&dir, from, |r| {
                        let p0 = *p0.get_or_insert(r.position);
                        progress.advance(1, share(p0, r.next_position, end));
                        Ok(sink.push(pr.render(r.position, r.timestamp, r.type_id, r.bytes, true)))
                    })?;
                    progress.finish();
                    sink.flush();
                    Ok(())
                }
            }
        }
    }
}

/// Where to start reading a store to see its last `n` records: the base of the last
/// segment from which at least `n` records remain (0 when the store holds fewer), so
/// `tail -n` does not read a whole store. Records the ring holds beyond the store only
/// add to what is read.
fn last_n_start(store: &std::path::Path, topic: &str, n: usize) -> u64 {
    let dir = shmbus::store::topic_dir(store, topic);
    let Ok(segs) = shmbus::store::list_segments(&dir) else {
        return 0;
    };
    let mut have = 0u64;
    for s in segs.iter().rev() {
        let Ok(r) = shmbus::store::SegmentReader::open(&s.path) else {
            return 0;
        };
        have += r.summary().count;
        if have >= n as u64 {
            return s.base;
        }
    }
    0
}

fn tail_ring(
    ctx: &Ctx,
    args: &Args,
    topic: &Topic<Raw>,
    start: Option<ReplayStart>,
    sink: &mut Sink,
) -> Result<(), CliError> {
    let name = topic.name().to_string();
    let mut pr = Printer::new(
        topic.schema().cloned(),
        topic.meta().type_id,
        args.raw_encoding,
        ctx.format,
        false,
    );
    let (sub_start, min_time) = match start {
        Some(ReplayStart::Position(p)) => (Start::Position(p), None),
        Some(ReplayStart::Time(t)) => (Start::Earliest, Some(t)),
        None => (Start::Earliest, None),
    };
    let mut sub = topic
        .subscriber()
        .start(sub_start)
        .accept_loss(start.is_none() || min_time.is_some())
        .open()
        .map_err(|e| attach_error(&name, e))?;
    let end_at = topic.tail();
    let mut time_reached = min_time.is_none();
    let mut seen_gaps = (0, 0);
    let settle = claim_settle_time(topic);
    let mut progress = Progress::new(format!("tail {name}"), "events");
    let p0 = sub.position();
    // What is in the ring now. Everything before `end_at` is claimed, so waiting for it
    // is bounded: a live producer commits at once, a dead one's claim becomes a gap
    // after the topic's unblock timeout.
    while sub.position() < end_at && !sink.done() {
        match sub.recv_bytes_timeout(settle) {
            Ok(Some(ev)) => {
                progress.advance(1, share(p0, ev.position(), end_at));
                if !time_reached && ev.timestamp() < min_time.unwrap_or(0) {
                    continue;
                }
                time_reached = true;
                let line = pr.render(
                    ev.position(),
                    ev.timestamp(),
                    ev.type_id(),
                    ev.bytes(),
                    false,
                );
                if sink.push(line).is_break() {
                    break;
                }
            }
            Ok(None) => break,
            Err(RecvError::Lagged { missed_bytes, .. }) => {
                note(&format!("lapped by producers, {missed_bytes} bytes missed"));
            }
            Err(e) => return Err(recv_error(&name, e)),
        }
        note_gaps(&sub, &mut seen_gaps);
    }
    progress.finish();
    sink.flush();
    if !args.follow || sink.done() {
        return Ok(());
    }
    while !stopping() {
        match sub.recv_bytes_timeout(Duration::from_millis(100)) {
            Ok(Some(ev)) => {
                if !time_reached && ev.timestamp() < min_time.unwrap_or(0) {
                    continue;
                }
                time_reached = true;
                let line = pr.render(
                    ev.position(),
                    ev.timestamp(),
                    ev.type_id(),
                    ev.bytes(),
                    false,
                );
                out_line(&line);
            }
            Ok(None) => {}
            Err(RecvError::Lagged { missed_bytes, .. }) => {
                note(&format!("lapped by producers, {missed_bytes} bytes missed"));
            }
            Err(e) => return Err(recv_error(&name, e)),
        }
        note_gaps(&sub, &mut seen_gaps);
    }
    Ok(())
}

/// How long to wait for a record already claimed before the snapshot of the tail: the
/// unblock timeout (after which a dead producer's claim turns into a gap) and a margin.
fn claim_settle_time(topic: &Topic<Raw>) -> Duration {
    Duration::from_nanos(topic.meta().unblock_timeout_ns.saturating_mul(2)) + Duration::from_secs(1)
}

/// Says on stderr when the subscriber skipped gap records since the last call.
fn note_gaps(sub: &shmbus::Subscriber<Raw>, seen: &mut (u64, u64)) {
    let now = sub.gaps();
    if now != *seen {
        note(&format!(
            "skipped {} gap record(s) covering {} bytes (claims of producers that died \
             before committing)",
            now.0 - seen.0,
            now.1 - seen.1
        ));
        *seen = now;
    }
}

fn tail_replay(
    ctx: &Ctx,
    args: &Args,
    topic: &Topic<Raw>,
    store: &std::path::Path,
    start: Option<ReplayStart>,
    sink: &mut Sink,
) -> Result<(), CliError> {
    let name = topic.name().to_string();
    let mut pr = Printer::new(
        topic.schema().cloned(),
        topic.meta().type_id,
        args.raw_encoding,
        ctx.format,
        true,
    );
    let from =
        start.unwrap_or_else(|| ReplayStart::Position(last_n_start(store, &name, sink.keep)));
    let mut replay = Replay::open(topic, store, from).map_err(|e| {
        CliError::new(format!(
            "cannot replay {name:?} from {}: {e}",
            store.display()
        ))
    })?;
    let end_at = topic.tail();
    let store_err = |e: shmbus::store::StoreError| CliError::new(format!("reading {name:?}: {e}"));
    let settle = claim_settle_time(topic);
    let mut progress = Progress::new(format!("tail {name}"), "events");
    let p0 = replay.position();
    // What is stored and in the ring now (see `tail_ring` on waiting).
    while replay.position() < end_at && !sink.done() {
        match replay.next_timeout(settle).map_err(store_err)? {
            Some(ev) => {
                progress.advance(1, share(p0, ev.position(), end_at));
                let line = pr.render(
                    ev.position(),
                    ev.timestamp(),
                    ev.type_id(),
                    ev.bytes(),
                    ev.from_disk(),
                );
                if sink.push(line).is_break() {
                    break;
                }
            }
            None => break,
        }
    }
    progress.finish();
    sink.flush();
    if !args.follow || sink.done() {
        return Ok(());
    }
    while !stopping() {
        if let Some(ev) = replay
            .next_timeout(Duration::from_millis(100))
            .map_err(store_err)?
        {
            let line = pr.render(
                ev.position(),
                ev.timestamp(),
                ev.type_id(),
                ev.bytes(),
                ev.from_disk(),
            );
            out_line(&line);
        }
    }
    Ok(())
}
