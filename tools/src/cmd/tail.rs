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

use shmbus::store::ReplayStart;

use crate::error::CliError;
use crate::output::out_line;
use crate::progress::{share, Progress};
use crate::stored::{for_each_stored, stored_end, stored_schema, StartArgs};
use crate::target::{existing_bus, install_stop_handlers, open_topic, stopping, store_topics};
use crate::Ctx;

mod printer;
mod replay;
mod ring;

pub use printer::{Encoding, Printer};

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

/// Collects output: either the last `keep` lines (printed at the end) or everything
/// up to `limit` lines (printed as it comes).
pub struct Sink {
    last: Option<VecDeque<String>>,
    keep: usize,
    limit: Option<u64>,
    printed: u64,
}

impl Sink {
    pub fn push(&mut self, line: String) -> ControlFlow<()> {
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
    pub fn flush(&mut self) {
        if let Some(q) = self.last.take() {
            for l in q {
                out_line(&l);
            }
        }
        self.limit = None;
    }

    pub fn done(&self) -> bool {
        self.last.is_none() && self.limit.is_some_and(|l| self.printed >= l)
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
            ring::tail_ring(ctx, &args, &topic, start, &mut sink)
        }
        Some(store) => {
            let (_, dir) = store_topics(store, Some(&args.topic))?.remove(0);
            // The live topic if there is one; else the segments alone.
            let live = existing_bus(ctx)
                .ok()
                .and_then(|bus| bus.topic(&args.topic).open().ok());
            match live {
                Some(topic) => replay::tail_replay(ctx, &args, &topic, store, start, &mut sink),
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
pub fn last_n_start(store: &std::path::Path, topic: &str, n: usize) -> u64 {
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
