//! `tail` of the live ring: what is there now, then, with `-f`, what comes.

use std::time::Duration;

use shmbus::store::ReplayStart;
use shmbus::{AttachError, Raw, RecvError, Start, Topic};

use super::{Args, Printer, Sink};
use crate::error::CliError;
use crate::output::{note, out_line};
use crate::progress::{share, Progress};
use crate::target::stopping;
use crate::Ctx;

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

pub fn tail_ring(
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
pub fn claim_settle_time(topic: &Topic<Raw>) -> Duration {
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
