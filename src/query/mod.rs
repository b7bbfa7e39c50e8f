//! The query engine: filter, project and aggregate a topic's events, from a store's
//! segments or from a live ring, decoding fields straight from the archived bytes.
//!
//! # Pieces
//!
//! - An expression language over header fields (`position`, `time` / `timestamp`,
//!   `type`, `len`) and schema fields by dotted path: `price > 100 and side == "Buy"`,
//!   `symbol ^= "AB"` or `starts_with(symbol, "AB")`, `==` `!=` `<` `<=` `>` `>=`,
//!   `and` `or` `not`, parentheses, numbers, strings, booleans, `null` (for `Option`
//!   fields) and enum variant names (`side == Buy`). See [`parse_expr`] for the
//!   grammar. A bare name means the schema field if there is one, else the header
//!   field; `@time` always means the header field. Parse errors carry the column.
//! - [`Plan::new`] compiles a [`QuerySpec`] against the topic's [`Schema`]: names are
//!   resolved to byte offsets and leaf kinds once, and type errors (a string field
//!   compared with a number, `<` on an enum, an unknown variant) are reported then,
//!   with the column. Evaluation reads the few bytes it needs from the archived
//!   payload with bounds-checked slices: no JSON, no allocation per event, and a
//!   filter on header fields alone never reads a payload.
//! - Output is either rows (`select`: header fields and schema fields, composites as
//!   JSON) or aggregates: `count`, `sum`, `min`, `max`, `avg`, and percentiles `pN`
//!   over numeric fields, optionally grouped by a scalar field and/or in tumbling
//!   windows of event time. Percentiles are **exact** (nearest rank: the
//!   `ceil(N/100 * n)`-th smallest value), so the engine keeps every value of a
//!   percentile's field per group in memory (16 bytes each for integers, 8 for
//!   floats). Sums of integer fields are exact (`i128`); float sums are plain `f64`
//!   additions in log order.
//! - Sources: [`StoreTopic`] (a store's segments in position order, skipping whole
//!   segments by their footers and seeking inside a segment with its sparse index)
//!   and [`LiveTopic`] (a snapshot of a ring's retained records; see
//!   [`LiveTopic::scan`] for the semantics).
//!
//! # Modules
//!
//! | module      | job                                                                  |
//! |-------------|----------------------------------------------------------------------|
//! | `spec`      | [`QuerySpec`] as a user gives it, and its typed aggregates            |
//! | `expr`      | the expression language: [`parse_expr`]                              |
//! | `fields`    | header and schema fields, read from archived bytes                   |
//! | `filter`    | [`Filter`]: an expression compiled against a schema                  |
//! | `plan`      | [`Plan`], and (in `plan::aggregate`) running it: groups, windows     |
//! | `source`    | [`StoreTopic`] and [`LiveTopic`], one [`Source`] trait and one scan loop |
//! | `output`    | [`Cell`] and rows rendered as JSON, CSV or text                      |
//! | `time`      | parsing and formatting times and durations                           |
//!
//! # Time ranges
//!
//! `from_time` is inclusive and `to_time` exclusive. Producer timestamps are only
//! nearly ordered in a multi-producer log, so a segment is skipped for `from_time`
//! exactly when its footer's largest timestamp is earlier, and the first record read
//! in a segment is found with the index's running maximum (exact). There is no lower
//! bound on the timestamps of later segments, so records after `to_time` are still
//! read (their headers only, unless the query needs their payloads) rather than
//! assumed absent.
//!
//! # Examples
//!
//! ```
//! use shmbus::query::{Cell, Plan, QuerySpec};
//!
//! #[shmbus::event]
//! struct Tick {
//!     symbol: String,
//!     price: f64,
//! }
//!
//! use shmbus::Event as _;
//! let spec = QuerySpec {
//!     filter: Some("price > 100 and symbol ^= \"AB\"".into()),
//!     aggregates: vec!["count".into(), "max(price)".into()],
//!     ..Default::default()
//! };
//! let plan = Plan::new(&spec, Some(Tick::schema()), 0)?;
//! assert_eq!(plan.columns(), ["count", "max(price)"]);
//! assert!(plan.filter_needs_payload());
//!
//! let err = Plan::new(
//!     &QuerySpec { filter: Some("symbol > 5".into()), ..Default::default() },
//!     Some(Tick::schema()),
//!     0,
//! )
//! .unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "bad expression at column 10: 'symbol' is a string and cannot be compared with a number"
//! );
//! # Ok::<(), shmbus::query::QueryError>(())
//! ```

use std::fmt;
use std::path::PathBuf;

use crate::error::{AttachError, OpenError, RecvError};
use crate::store::StoreError;

mod expr;
mod fields;
mod filter;
mod output;
mod plan;
mod source;
mod spec;
mod time;

pub use expr::{parse_expr, CmpOp, Expr, Number, Operand, OperandKind, ParseError, MAX_NESTING};
pub use fields::{HeaderField, Rec};
pub use filter::Filter;
pub use output::{write_csv_field, write_csv_row, write_json_row, Cell};
pub use plan::Plan;
pub use source::{LiveTopic, Source, StoreTopic};
pub use spec::QuerySpec;
pub use time::{format_time, parse_duration, parse_time};

pub use crate::schema::Schema;

/// A query failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum QueryError {
    /// The expression does not parse.
    Parse(ParseError),
    /// A name is neither a schema field nor a header field.
    UnknownField {
        /// The name as written.
        name: String,
        /// Its column in the expression, if it came from one.
        column: Option<usize>,
        /// The names that exist.
        known: Vec<String>,
    },
    /// A comparison or aggregate that cannot apply to the field's type.
    Type {
        /// Column in the expression, if it came from one.
        column: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A malformed or contradictory query option (aggregate, window, range, ...).
    Invalid(String),
    /// The store directory is missing or is not a store.
    NotAStore {
        /// The directory given.
        path: PathBuf,
        /// Why it is not a store.
        why: String,
    },
    /// The topic is not in the store (or not on the bus).
    UnknownTopic {
        /// The topic asked for.
        topic: String,
        /// The store searched, if any.
        store: Option<PathBuf>,
        /// The topics that exist there.
        known: Vec<String>,
    },
    /// Reading the store failed: I/O, or a corrupt segment (with path and offset).
    Store(StoreError),
    /// Opening a live topic failed.
    Open(OpenError),
    /// Attaching the scan's subscriber failed.
    Attach(AttachError),
    /// Receiving from the live topic failed.
    Recv(RecvError),
}

impl QueryError {
    /// Whether the query itself is wrong (a usage error), rather than the data or the
    /// system.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            QueryError::Parse(_)
                | QueryError::UnknownField { .. }
                | QueryError::Type { .. }
                | QueryError::Invalid(_)
        )
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryError::Parse(e) => e.fmt(f),
            QueryError::UnknownField {
                name,
                column,
                known,
            } => {
                match column {
                    Some(c) => write!(f, "bad expression at column {c}: unknown field '{name}'")?,
                    None => write!(f, "unknown field '{name}'")?,
                }
                write!(f, " (known: {})", known.join(", "))
            }
            QueryError::Type { column, message } => match column {
                Some(c) => write!(f, "bad expression at column {c}: {message}"),
                None => f.write_str(message),
            },
            QueryError::Invalid(m) => f.write_str(m),
            QueryError::NotAStore { path, why } => {
                write!(f, "{} is not a shmbus store: {why}", path.display())
            }
            QueryError::UnknownTopic {
                topic,
                store,
                known,
            } => {
                match store {
                    Some(s) => write!(f, "no topic {topic:?} in store {}", s.display())?,
                    None => write!(f, "no topic {topic:?}")?,
                }
                if known.is_empty() {
                    Ok(())
                } else {
                    write!(f, " (topics: {})", known.join(", "))
                }
            }
            QueryError::Store(e) => e.fmt(f),
            QueryError::Open(e) => e.fmt(f),
            QueryError::Attach(e) => e.fmt(f),
            QueryError::Recv(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueryError::Parse(e) => Some(e),
            QueryError::Store(e) => Some(e),
            QueryError::Open(e) => Some(e),
            QueryError::Attach(e) => Some(e),
            QueryError::Recv(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> Self {
        QueryError::Store(e)
    }
}

impl From<OpenError> for QueryError {
    fn from(e: OpenError) -> Self {
        QueryError::Open(e)
    }
}

/// Counters of one scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Segments considered.
    pub segments: u64,
    /// Segments skipped without reading their records (footer or index showed nothing
    /// in range).
    pub segments_skipped: u64,
    /// Records whose headers were read.
    pub records_scanned: u64,
    /// Bytes of stored records walked (headers, payloads and padding).
    pub bytes_scanned: u64,
    /// Records that passed the range and the filter.
    pub records_matched: u64,
    /// Records whose payload was read, each after the crc32c of its run was verified.
    pub payloads_verified: u64,
    /// Runs of records (index entries, at most 4 KiB) whose crc32c this scan checked.
    pub runs_verified: u64,
    /// Segments read by their records' structure alone: unsealed ones whose index was
    /// missing, so no checksum vouches for their records.
    pub segments_unverified: u64,
    /// Records whose payload did not decode with the schema (never matched).
    pub undecodable: u64,
    /// Live lossy topics: bytes producers overwrote before the scan read them.
    pub missed_bytes: u64,
    /// Output rows.
    pub rows: u64,
}

impl ScanStats {
    /// The counters as one JSON object.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"segments\":{},\"segments_skipped\":{},\"records_scanned\":{},\"bytes_scanned\":{},\
             \"records_matched\":{},\"payloads_verified\":{},\"runs_verified\":{},\"segments_unverified\":{},\
             \"undecodable\":{},\"missed_bytes\":{},\"rows\":{}}}",
            self.segments,
            self.segments_skipped,
            self.records_scanned,
            self.bytes_scanned,
            self.records_matched,
            self.payloads_verified,
            self.runs_verified,
            self.segments_unverified,
            self.undecodable,
            self.missed_bytes,
            self.rows
        )
    }
}

/// Every leaf field path of a schema (nested structs flattened to dotted paths), in
/// declaration order: the columns of an export.
pub fn leaf_paths(schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    fields::leaf_paths(schema.root(), "", &mut out);
    out
}
