//! `shmbus query`: filter, project and aggregate a topic's events from a store or the
//! live ring (all the work is in `shmbus::query`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use shmbus::query::{
    parse_duration, parse_time, write_json_row, Cell, LiveTopic, Plan, QueryError, QuerySpec,
    ScanStats, StoreTopic,
};

use crate::error::CliError;
use crate::output::Format;
use crate::Ctx;

/// Arguments of `shmbus query`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic.
    pub topic: String,
    /// Read the topic's segments in this store (default: the live ring's retained records).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Only events at or after this time: RFC 3339 (2026-11-27T21:00:00Z), Unix ns, or -5m.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub from_time: Option<String>,
    /// Only events before this time (same forms).
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    pub to_time: Option<String>,
    /// Only events at or after this position.
    #[arg(long, value_name = "P")]
    pub from_position: Option<u64>,
    /// Filter, e.g. 'price > 100 and side == "Buy"' or 'symbol ^= "AB"'.
    #[arg(long = "where", value_name = "EXPR", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Columns to print (header fields position,time,type,len and schema field paths).
    #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
    pub select: Vec<String>,
    /// Group aggregates by this field.
    #[arg(long, value_name = "FIELD")]
    pub group_by: Option<String>,
    /// Tumbling windows of event time, e.g. 1s, 500ms, 5m.
    #[arg(long, value_name = "DURATION")]
    pub window: Option<String>,
    /// Aggregates: count,sum(f),min(f),max(f),avg(f),p50(f),p90(f),p99(f).
    #[arg(long, value_name = "AGGS")]
    pub agg: Option<String>,
    /// At most this many output rows.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Print the scan's counters (segments skipped, records scanned, ...) as one JSON line
    /// on stderr at the end.
    #[arg(long)]
    pub stats: bool,
}

/// Splits `count,sum(a),p99(b)` at the commas outside parentheses.
fn split_aggs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

/// Turns a query error into the CLI's: usage errors exit 2, the rest 1.
pub fn query_err(e: QueryError) -> CliError {
    if e.is_usage() {
        CliError::usage(e.to_string())
    } else {
        CliError::new(e.to_string())
    }
}

/// Parses a `--from-time`/`--to-time` value.
pub fn time_arg(flag: &str, v: Option<&str>, now: u64) -> Result<Option<u64>, CliError> {
    v.map(|s| parse_time(s, now).map_err(|m| CliError::usage(format!("{flag}: {m}"))))
        .transpose()
}

/// The bus directory named by `--bus`, without creating it.
fn bus_dir(bus: &str) -> PathBuf {
    if bus.contains('/') {
        PathBuf::from(bus)
    } else {
        std::env::var_os("SHMBUS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(shmbus::topic::bus::DEFAULT_ROOT))
            .join(bus)
    }
}

/// A scan source: a store's topic or a live topic.
pub enum Source {
    /// Segments of a store.
    Store(StoreTopic),
    /// The retained records of a ring.
    Live(LiveTopic),
}

impl Source {
    /// Opens the store's topic (`store` given) or the live topic on the bus.
    pub fn open(ctx: &Ctx, topic: &str, store: Option<&Path>) -> Result<Source, CliError> {
        if let Some(store) = store {
            let mut st = StoreTopic::open(store, topic).map_err(query_err)?;
            if st.schema().is_none() {
                // No sealed segment carries the schema yet: take it from the live topic
                // if it exists (without creating a bus).
                if bus_dir(&ctx.bus).join(format!("{topic}.ring")).exists() {
                    if let Ok(t) = ctx.open_bus()?.topic(topic).open() {
                        if let Some(s) = t.schema() {
                            st.set_schema(s.clone());
                        }
                    }
                }
            }
            return Ok(Source::Store(st));
        }
        let bus = ctx.open_bus()?;
        match bus.topic(topic).open() {
            Ok(t) => Ok(Source::Live(LiveTopic::new(t))),
            Err(shmbus::OpenError::NotFound(_)) | Err(shmbus::OpenError::InvalidName(_)) => {
                let known = bus.topics().unwrap_or_default();
                let mut m = format!("no topic {topic:?} on bus {:?}", ctx.bus);
                if !known.is_empty() {
                    m.push_str(&format!(" (topics: {})", known.join(", ")));
                }
                Err(CliError::new(m))
            }
            Err(e) => Err(CliError::new(format!("cannot open topic {topic:?}: {e}"))),
        }
    }

    /// The topic's schema, if typed.
    pub fn schema(&self) -> Option<&shmbus::schema::Schema> {
        match self {
            Source::Store(s) => s.schema(),
            Source::Live(l) => l.schema(),
        }
    }

    /// Runs the plan.
    pub fn scan(
        &self,
        plan: &Plan,
        sink: &mut dyn FnMut(&[Cell]) -> bool,
        progress: &mut dyn FnMut(&ScanStats),
    ) -> Result<ScanStats, CliError> {
        match self {
            Source::Store(s) => s.scan(plan, sink, progress),
            Source::Live(l) => l.scan(plan, sink, progress),
        }
        .map_err(query_err)
    }
}

/// A `\r` progress line on stderr for scans longer than a second, when stderr is a
/// terminal.
pub struct Progress {
    start: Instant,
    tty: bool,
    shown: bool,
}

impl Progress {
    /// Starts the clock.
    pub fn new() -> Progress {
        Progress {
            start: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Shows the counters if the scan has run for more than a second.
    pub fn update(&mut self, s: &ScanStats) {
        if !self.tty || self.start.elapsed().as_secs_f64() < 1.0 {
            return;
        }
        self.shown = true;
        eprint!(
            "\rscanned {} records ({} MiB, {} of {} segments skipped), {} matched",
            s.records_scanned,
            s.bytes_scanned >> 20,
            s.segments_skipped,
            s.segments,
            s.records_matched
        );
    }

    /// Clears the line.
    pub fn done(&self) {
        if self.shown {
            eprint!("\r\x1b[K");
        }
    }
}

/// Writes rows to stdout, stopping quietly when the reader goes away.
pub struct Out {
    w: std::io::BufWriter<std::io::StdoutLock<'static>>,
    /// A write error other than a closed pipe.
    pub error: Option<std::io::Error>,
    line: String,
}

impl Out {
    /// Buffered stdout.
    pub fn new() -> Out {
        Out {
            w: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
            error: None,
            line: String::new(),
        }
    }

    /// Writes `f`'s text; false once writing failed.
    pub fn write(&mut self, f: impl FnOnce(&mut String)) -> bool {
        self.line.clear();
        f(&mut self.line);
        self.put()
    }

    fn put(&mut self) -> bool {
        match self.w.write_all(self.line.as_bytes()) {
            Ok(()) => true,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    self.error = Some(e);
                }
                false
            }
        }
    }

    /// Flushes; the first error other than a closed pipe.
    pub fn finish(mut self) -> Result<(), CliError> {
        if let Err(e) = self.w.flush() {
            if e.kind() != std::io::ErrorKind::BrokenPipe && self.error.is_none() {
                self.error = Some(e);
            }
        }
        match self.error {
            Some(e) => Err(CliError::new(format!("cannot write output: {e}"))),
            None => Ok(()),
        }
    }
}

/// Runs `shmbus query`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let now = shmbus::now_ns();
    let window_ns = args
        .window
        .as_deref()
        .map(|w| parse_duration(w).map_err(|m| CliError::usage(format!("--window: {m}"))))
        .transpose()?;
    let spec = QuerySpec {
        filter: args.filter.clone(),
        select: args.select.clone(),
        aggregates: args.agg.as_deref().map(split_aggs).unwrap_or_default(),
        group_by: args.group_by.clone(),
        window_ns,
        limit: args.limit,
        from_time: time_arg("--from-time", args.from_time.as_deref(), now)?,
        to_time: time_arg("--to-time", args.to_time.as_deref(), now)?,
        from_position: args.from_position,
    };
    let source = Source::open(ctx, &args.topic, args.store.as_deref())?;
    let plan = Plan::new(&spec, source.schema(), now).map_err(query_err)?;
    let columns = plan.columns().to_vec();
    let mut progress = Progress::new();
    let stats = match ctx.format {
        Format::Json => {
            let mut out = Out::new();
            let stats = source.scan(
                &plan,
                &mut |cells| out.write(|s| write_json_row(s, &columns, cells)),
                &mut |s| progress.update(s),
            );
            progress.done();
            out.finish()?;
            stats?
        }
        Format::Table => {
            let mut rows: Vec<Vec<String>> = Vec::new();
            let stats = source.scan(
                &plan,
                &mut |cells| {
                    rows.push(cells.iter().map(Cell::to_text).collect());
                    true
                },
                &mut |s| progress.update(s),
            );
            progress.done();
            let stats = stats?;
            let mut out = Out::new();
            print_table(&mut out, &columns, &rows);
            out.finish()?;
            stats
        }
    };
    note_unverified(&stats);
    if args.stats {
        eprintln!("{{\"stats\":{}}}", stats.to_json());
    }
    Ok(())
}

/// Says on stderr when a scan read segments that no checksum vouches for (unsealed
/// segments whose index was missing: their records were checked by structure only).
pub fn note_unverified(stats: &ScanStats) {
    match stats.segments_unverified {
        0 => {}
        1 => eprintln!(
            "shmbus: note: 1 segment had no index: its records were checked by their \
             structure only, not by checksums (see shmbus verify)"
        ),
        n => eprintln!(
            "shmbus: note: {n} segments had no index: their records were checked by their \
             structure only, not by checksums (see shmbus verify)"
        ),
    }
}

/// Aligned columns, two spaces apart; numbers right-aligned.
fn print_table(out: &mut Out, columns: &[String], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric = |s: &str| s.parse::<f64>().is_ok();
    let line = |cells: &[String], s: &mut String| {
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = w - c.chars().count();
            if numeric(c) {
                s.extend(std::iter::repeat_n(' ', pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        s.push('\n');
    };
    if !out.write(|s| line(columns, s)) {
        return;
    }
    for r in rows {
        if !out.write(|s| line(r, s)) {
            return;
        }
    }
}
