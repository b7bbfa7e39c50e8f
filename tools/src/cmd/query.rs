//! `shmbus query`: filter, project and aggregate a topic's events from a store or the
//! live ring (all the work is in `shmbus::query`); rows as a table, JSON lines or CSV.

use std::path::PathBuf;
use std::time::Duration;

use shmbus::query::{write_csv_row, write_json_row, Cell, Plan, QuerySpec};

use crate::error::CliError;
use crate::output::{print_table, right, table, FormatArg};
use crate::scan::{query_err, time_arg, Out, Source};
use crate::times::duration_arg;
use crate::Ctx;

/// Arguments of `shmbus query`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic.
    pub topic: String,
    /// Read the topic's segments in this store (default: the live ring's retained records).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Only events at or after this time: RFC 3339 (2026-11-27T21:00:00Z), a date, Unix
    /// ns, now, or relative (-5m).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub from_time: Option<String>,
    /// Only events before this time (same forms).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
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
    /// Tumbling windows of event time: a bare number of seconds (5) or a number with a
    /// unit (500ms, 2s, 1m).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub window: Option<Duration>,
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
    /// Output format: table (default on a terminal), json (JSON lines), or csv.
    #[arg(long, value_name = "FORMAT", value_enum)]
    pub format: Option<FormatArg>,
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

/// Runs `shmbus query`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let now = shmbus::now_ns();
    let spec = QuerySpec {
        filter: args.filter.clone(),
        select: args.select.clone(),
        aggregates: args.agg.as_deref().map(split_aggs).unwrap_or_default(),
        group_by: args.group_by.clone(),
        window_ns: args
            .window
            .map(|w| u64::try_from(w.as_nanos()).unwrap_or(u64::MAX)),
        limit: args.limit,
        from_time: time_arg("--from-time", args.from_time.as_deref(), now)?,
        to_time: time_arg("--to-time", args.to_time.as_deref(), now)?,
        from_position: args.from_position,
    };
    let source = Source::open(ctx, &args.topic, args.store.as_deref())?;
    let plan = Plan::new(&spec, source.schema(), now).map_err(query_err)?;
    let columns = plan.columns().to_vec();
    let label = format!("query {}", args.topic);
    let format = match args.format.or(ctx.format_arg) {
        Some(f) => f,
        None if ctx.format == crate::output::Format::Table => FormatArg::Table,
        None => FormatArg::Json,
    };
    let stats = match format {
        FormatArg::Json | FormatArg::Csv => {
            let csv = format == FormatArg::Csv;
            let mut out = Out::new();
            let header: Vec<Cell> = columns.iter().map(|c| Cell::Str(c.clone())).collect();
            let ok = !csv || out.write(|s| write_csv_row(s, &header));
            let stats = if ok {
                source.scan(&plan, &label, &mut |cells| {
                    if csv {
                        out.write(|s| write_csv_row(s, cells))
                    } else {
                        out.write(|s| write_json_row(s, &columns, cells))
                    }
                })
            } else {
                Ok(Default::default())
            };
            out.finish()?;
            stats?
        }
        FormatArg::Table => {
            let mut t = table(&columns.iter().map(String::as_str).collect::<Vec<_>>());
            let stats = source.scan(&plan, &label, &mut |cells| {
                t.add_row(cells.iter().map(|c| match c {
                    Cell::Int(_) | Cell::Float(_) => right(c.to_text()),
                    c => c.to_text().into(),
                }));
                true
            })?;
            print_table(&mut t);
            stats
        }
    };
    if args.stats {
        eprintln!("{{\"stats\":{}}}", stats.to_json());
    }
    Ok(())
}
