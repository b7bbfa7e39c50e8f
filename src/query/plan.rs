//! Query plans: a filter, a time/position range, and either rows (projections) or
//! aggregates (grouped, windowed), compiled once against a schema.

use crate::query::expr::parse_expr;
use crate::query::fields::{HeaderField, Leaf, Rec, Resolver, Target};
use crate::query::filter::Filter;
use crate::query::{Cell, QueryError, ScanStats};
use crate::schema::decode::{read_field, Value};
use crate::schema::{FieldRef, Schema};

use crate::query::spec::{invalid, parse_agg, Agg, QuerySpec};

mod aggregate;
pub(crate) use aggregate::{Exec, Flow};

#[derive(Debug, Clone)]
enum Col {
    Header(HeaderField),
    Field(FieldRef),
}

#[derive(Debug, Clone)]
enum Mode {
    Rows(Vec<Col>),
    Aggregate {
        aggs: Vec<Agg>,
        group: Option<Target>,
        window: Option<u64>,
    },
}

/// A compiled query. Build with [`Plan::new`], run with a source
/// ([`crate::query::StoreTopic::scan`], [`crate::query::LiveTopic::scan`]).
#[derive(Debug, Clone)]
pub struct Plan {
    schema: Option<Schema>,
    root_size: usize,
    filter: Option<Filter>,
    mode: Mode,
    columns: Vec<String>,
    limit: Option<u64>,
    pub(crate) from_time: Option<u64>,
    pub(crate) to_time: Option<u64>,
    pub(crate) from_position: Option<u64>,
    output_needs_payload: bool,
}

impl Plan {
    /// Compiles `spec` against `schema` (`None` for raw topics: header fields only).
    /// `now_ns` anchors relative times in the filter.
    ///
    /// # Errors
    ///
    /// [`QueryError::Parse`], [`QueryError::UnknownField`], [`QueryError::Type`],
    /// [`QueryError::Invalid`] (bad aggregate, `--select` with aggregates, ...).
    pub fn new(spec: &QuerySpec, schema: Option<&Schema>, now_ns: u64) -> Result<Plan, QueryError> {
        let r = Resolver { schema };
        let filter = match spec.filter.as_deref() {
            Some(f) if !f.trim().is_empty() => {
                let e = parse_expr(f).map_err(QueryError::Parse)?;
                Some(Filter::compile(&e, schema, now_ns)?)
            }
            _ => None,
        };
        let aggregate =
            !spec.aggregates.is_empty() || spec.group_by.is_some() || spec.window_ns.is_some();
        let mut columns = Vec::new();
        let mode = if aggregate {
            if !spec.select.is_empty() {
                return Err(invalid(
                    "--select lists rows; it cannot be combined with --agg, --group-by or --window",
                ));
            }
            if spec.window_ns == Some(0) {
                return Err(invalid("the window must be longer than 0"));
            }
            let group = match &spec.group_by {
                Some(g) => {
                    let t = r.resolve(g.trim(), None)?;
                    if let Target::Field { acc, path } = &t {
                        if let Leaf::Other(k) = &acc.leaf {
                            return Err(QueryError::Type {
                                column: None,
                                message: format!(
                                    "cannot group by '{path}', a {k}: pick a scalar field"
                                ),
                            });
                        }
                    }
                    Some(t)
                }
                None => None,
            };
            if spec.window_ns.is_some() {
                columns.push("window".to_string());
            }
            if let Some(g) = &group {
                columns.push(g.name());
            }
            let mut aggs = Vec::new();
            let texts: Vec<&str> = if spec.aggregates.is_empty() {
                vec!["count"]
            } else {
                spec.aggregates.iter().map(String::as_str).collect()
            };
            for t in texts {
                let (a, label) = parse_agg(t, &r)?;
                aggs.push(a);
                columns.push(label);
            }
            Mode::Aggregate {
                aggs,
                group,
                window: spec.window_ns,
            }
        } else {
            let names: Vec<String> = if spec.select.is_empty() {
                let mut v = vec!["position".to_string(), "time".to_string()];
                match schema {
                    Some(s) => v.extend(s.fields().iter().map(|f| f.name.clone())),
                    None => v.extend(["type".to_string(), "len".to_string()]),
                }
                v
            } else {
                spec.select.iter().map(|s| s.trim().to_string()).collect()
            };
            let mut cols = Vec::new();
            for n in names {
                if n.is_empty() {
                    return Err(invalid("empty column name in --select"));
                }
                let col = match r.resolve(&n, None)? {
                    Target::Header(h) => Col::Header(h),
                    Target::Field { path, .. } => {
                        // Resolved above, so the schema has it.
                        let f = schema.and_then(|s| s.field(&path)).ok_or_else(|| {
                            invalid(format!("field {path:?} vanished from the schema"))
                        })?;
                        Col::Field(f)
                    }
                };
                columns.push(n);
                cols.push(col);
            }
            Mode::Rows(cols)
        };
        let output_needs_payload = match &mode {
            Mode::Rows(cols) => cols.iter().any(|c| matches!(c, Col::Field(_))),
            Mode::Aggregate { aggs, group, .. } => {
                aggs.iter()
                    .any(|a| matches!(a.input, Some(Target::Field { .. })))
                    || matches!(group, Some(Target::Field { .. }))
            }
        };
        if let (Some(f), Some(t)) = (spec.from_time, spec.to_time) {
            if f > t {
                return Err(invalid("--from-time is after --to-time"));
            }
        }
        Ok(Plan {
            schema: schema.cloned(),
            root_size: schema.map_or(0, |s| s.root_size() as usize),
            filter,
            mode,
            columns,
            limit: spec.limit,
            from_time: spec.from_time,
            to_time: spec.to_time,
            from_position: spec.from_position,
            output_needs_payload,
        })
    }

    /// The output column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Whether the output is aggregates (else one row per matching record).
    pub fn is_aggregate(&self) -> bool {
        matches!(self.mode, Mode::Aggregate { .. })
    }

    /// Whether deciding if a record matches reads its payload.
    pub fn filter_needs_payload(&self) -> bool {
        self.filter.as_ref().is_some_and(Filter::needs_payload)
    }

    /// Whether the output of a matching record reads its payload.
    pub fn output_needs_payload(&self) -> bool {
        self.output_needs_payload
    }

    /// Whether a record's header is inside the time and position range.
    #[inline]
    pub(crate) fn in_range(&self, r: &Rec<'_>) -> bool {
        self.from_time.is_none_or(|t| r.timestamp >= t)
            && self.to_time.is_none_or(|t| r.timestamp < t)
            && self.from_position.is_none_or(|p| r.position >= p)
    }

    /// The filter's verdict (`None`: undecodable).
    #[inline]
    pub(crate) fn matches(&self, r: &Rec<'_>) -> Option<bool> {
        match &self.filter {
            Some(f) => f.eval(r),
            None => Some(true),
        }
    }

    /// A fresh execution state.
    pub(crate) fn exec(&self) -> Exec {
        Exec::new(self.columns.len())
    }

    fn cell_of(&self, col: &Col, r: &Rec<'_>, stats: &mut ScanStats) -> Cell {
        match col {
            Col::Header(HeaderField::Time) => Cell::Time(r.timestamp),
            Col::Header(h) => Cell::Int(i128::from(h.get(r))),
            Col::Field(f) => {
                let Some(schema) = &self.schema else {
                    return Cell::Null;
                };
                match read_field(schema, r.payload, f) {
                    Ok(v) => value_cell(v),
                    Err(_) => {
                        stats.undecodable += 1;
                        Cell::Null
                    }
                }
            }
        }
    }
}

fn value_cell(v: Value<'_>) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(b),
        Value::I64(i) => Cell::Int(i128::from(i)),
        Value::U64(u) => Cell::Int(i128::from(u)),
        Value::F64(f) => Cell::Float(f),
        Value::Char(c) => Cell::Str(c.to_string()),
        Value::Str(s) => Cell::Str(s.to_string()),
        Value::Enum(e) => Cell::Str(e.to_string()),
        Value::Bytes(b) => {
            let items: Vec<String> = b.iter().map(u8::to_string).collect();
            Cell::Json(format!("[{}]", items.join(",")))
        }
        Value::Composite(c) => {
            let mut s = String::new();
            match c.render_json(&mut s) {
                Ok(()) => Cell::Json(s),
                Err(_) => Cell::Null,
            }
        }
    }
}
