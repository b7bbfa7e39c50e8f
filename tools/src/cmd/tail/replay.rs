//! `tail --store` with the topic on the bus: the store's segments, then the live ring,
//! through [`shmbus::store::Replay`] (no gap, no duplicate).

use std::time::Duration;

use shmbus::store::{Replay, ReplayStart};
use shmbus::{Raw, Topic};

use super::ring::claim_settle_time;
use super::{last_n_start, Args, Printer, Sink};
use crate::error::CliError;
use crate::output::out_line;
use crate::progress::{share, Progress};
use crate::target::stopping;
use crate::Ctx;

pub fn tail_replay(
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
