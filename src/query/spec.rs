//! What a query asks for: [`QuerySpec`] as a user gives it (strings), and the typed
//! aggregates ([`Agg`], [`AggFn`]) its `aggregates` strings are parsed into.

use crate::query::fields::{Resolver, Target};
use crate::query::QueryError;

/// What to compute: the query as given by a user (strings), before compiling.
#[derive(Debug, Clone, Default)]
pub struct QuerySpec {
    /// The `--where` expression.
    pub filter: Option<String>,
    /// Columns to project (rows only). Empty: position, time and every top-level field.
    pub select: Vec<String>,
    /// Aggregates: `count`, `sum(f)`, `min(f)`, `max(f)`, `avg(f)` (or `mean(f)`),
    /// `p50(f)`, `p90(f)`, `p99(f)`, any `pN(f)` with 0 < N <= 100.
    pub aggregates: Vec<String>,
    /// Group by this field.
    pub group_by: Option<String>,
    /// Tumbling windows of this many nanoseconds, by event timestamp.
    pub window_ns: Option<u64>,
    /// At most this many output rows.
    pub limit: Option<u64>,
    /// Only records with a timestamp at or after this (ns since the epoch).
    pub from_time: Option<u64>,
    /// Only records with a timestamp before this (exclusive).
    pub to_time: Option<u64>,
    /// Only records at or after this position.
    pub from_position: Option<u64>,
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum AggFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    /// Percentile in (0, 100].
    Pct(f64),
}

/// One aggregate, typed: what `parse_agg` makes of a string like `p99(price)`.
#[derive(Debug, Clone)]
pub(crate) struct Agg {
    /// The function.
    pub(crate) f: AggFn,
    /// Its input field (`None` for `count`).
    pub(crate) input: Option<Target>,
    /// Whether the input is an integer (exact sums).
    pub(crate) int: bool,
}

pub(crate) fn invalid(m: impl Into<String>) -> QueryError {
    QueryError::Invalid(m.into())
}

/// Parse one aggregate (`count`, `sum(f)`, ..., `pN(f)`) against the fields `r`
/// resolves; returns it and its column label.
pub(crate) fn parse_agg(text: &str, r: &Resolver<'_>) -> Result<(Agg, String), QueryError> {
    let t = text.trim();
    let (name, arg) = match t.split_once('(') {
        Some((n, rest)) => {
            let arg = rest
                .strip_suffix(')')
                .ok_or_else(|| invalid(format!("aggregate {t:?} is missing its closing ')'")))?;
            (n.trim().to_ascii_lowercase(), Some(arg.trim()))
        }
        None => (t.to_ascii_lowercase(), None),
    };
    let f = match name.as_str() {
        "count" => AggFn::Count,
        "sum" => AggFn::Sum,
        "min" => AggFn::Min,
        "max" => AggFn::Max,
        "avg" | "mean" => AggFn::Avg,
        p if p.starts_with('p') => {
            let v: f64 = p[1..].parse().map_err(|_| {
                invalid(format!(
                    "unknown aggregate {t:?} (count, sum, min, max, avg, p50, p90, p99, pN)"
                ))
            })?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(invalid(format!(
                    "percentile {v} in {t:?} is not in (0, 100]"
                )));
            }
            AggFn::Pct(v)
        }
        "" => return Err(invalid("empty aggregate in --agg")),
        _ => {
            return Err(invalid(format!(
                "unknown aggregate {t:?} (count, sum, min, max, avg, p50, p90, p99, pN)"
            )))
        }
    };
    let input = match (f, arg) {
        (AggFn::Count, None) => None,
        (AggFn::Count, Some("")) => None,
        (AggFn::Count, Some(_)) => {
            return Err(invalid(format!("count takes no field ({t:?}); use count")))
        }
        (_, None) | (_, Some("")) => {
            return Err(invalid(format!(
                "aggregate {t:?} needs a field, as in {name}(price)"
            )))
        }
        (_, Some(a)) => {
            let target = r.resolve(a, None)?;
            if !target.is_numeric() {
                return Err(QueryError::Type {
                    column: None,
                    message: format!("{name}({a}) needs a numeric field; '{a}' is not a number"),
                });
            }
            Some(target)
        }
    };
    let int = input.as_ref().is_some_and(|t| !t.is_float());
    let label = match &input {
        None => "count".to_string(),
        Some(t) => format!("{name}({})", t.name()),
    };
    Ok((Agg { f, input, int }, label))
}
