//! `shmbus export`: a store's events as JSON lines (the default) or CSV with a header.

use std::path::PathBuf;

use shmbus::query::{leaf_paths, write_csv_row, write_json_row, Cell, Plan, QuerySpec};

use crate::error::CliError;
use crate::output::FormatArg;
use crate::scan::{query_err, time_arg, Out, Source};
use crate::Ctx;

/// Arguments of `shmbus export`.
#[derive(clap::Args)]
pub struct Args {
    /// The topic.
    pub topic: String,
    /// The store holding the topic's segments.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// Only events matching this expression (as in `shmbus query --where`).
    #[arg(long = "where", value_name = "EXPR", allow_hyphen_values = true)]
    pub filter: Option<String>,
    /// Only events at or after this time: RFC 3339, a date, Unix ns, now, or -5m.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub from_time: Option<String>,
    /// Only events before this time (same forms).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub to_time: Option<String>,
    /// At most this many events.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// jsonl (the default; also json) or csv.
    #[arg(long, value_name = "FORMAT", value_parser = crate::output::export_format())]
    pub format: Option<FormatArg>,
}

/// Runs `shmbus export`.
pub fn run(ctx: &Ctx, args: Args) -> Result<(), CliError> {
    let csv = args.format.or(ctx.format_arg) == Some(FormatArg::Csv);
    let now = shmbus::now_ns();
    let source = Source::open(ctx, &args.topic, Some(&args.store))?;
    // Columns: every leaf field path, then the header fields (prefixed with '@' if a
    // field has the same name).
    let mut select = source.schema().map(leaf_paths).unwrap_or_default();
    let fields = select.clone();
    let mut headers = vec!["position", "time", "type"];
    if source.schema().is_none() {
        headers.push("len");
    }
    for h in headers {
        if fields.iter().any(|f| f == h) {
            select.push(format!("@{h}"));
        } else {
            select.push(h.to_string());
        }
    }
    let spec = QuerySpec {
        filter: args.filter.clone(),
        select,
        limit: args.limit,
        from_time: time_arg("--from-time", args.from_time.as_deref(), now)?,
        to_time: time_arg("--to-time", args.to_time.as_deref(), now)?,
        ..Default::default()
    };
    let plan = Plan::new(&spec, source.schema(), now).map_err(query_err)?;
    let columns = plan.columns().to_vec();
    let mut out = Out::new();
    let ok = !csv || {
        let header: Vec<Cell> = columns.iter().map(|c| Cell::Str(c.clone())).collect();
        out.write(|s| write_csv_row(s, &header))
    };
    let label = format!("export {}", args.topic);
    let result = if ok {
        source
            .scan(&plan, &label, &mut |cells| {
                if csv {
                    out.write(|s| write_csv_row(s, cells))
                } else {
                    out.write(|s| write_json_row(s, &columns, cells))
                }
            })
            .map(|_| ())
    } else {
        Ok(())
    };
    out.finish()?;
    result
}
