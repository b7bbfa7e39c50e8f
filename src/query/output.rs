//! Rendering results: one output value ([`Cell`]) as JSON, CSV or text, and whole rows
//! as JSON lines or CSV lines.

use std::fmt::Write as _;

use crate::query::format_time;
use crate::schema::decode::push_json_str;

/// One output value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value (a `None`, an empty aggregate, an undecodable field).
    Null,
    /// A bool.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
    /// A timestamp, ns since the Unix epoch (JSON and CSV: the number; tables: RFC 3339).
    Time(u64),
    /// A string (also enum variants and chars).
    Str(String),
    /// A composite value already rendered as JSON.
    Json(String),
}

impl Cell {
    /// Appends the value as JSON.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Cell::Null => out.push_str("null"),
            Cell::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Cell::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Cell::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f:?}");
            }
            Cell::Float(_) => out.push_str("null"),
            Cell::Time(t) => {
                let _ = write!(out, "{t}");
            }
            Cell::Str(s) => push_json_str(out, s),
            Cell::Json(j) => out.push_str(j),
        }
    }

    /// The value for a human table (times as RFC 3339).
    pub fn to_text(&self) -> String {
        match self {
            Cell::Null => "-".into(),
            Cell::Time(t) => format_time(*t),
            Cell::Str(s) => s.clone(),
            other => {
                let mut s = String::new();
                other.write_json(&mut s);
                s
            }
        }
    }

    /// Appends the value as one CSV field (RFC 4180 quoting; null is empty).
    pub fn write_csv(&self, out: &mut String) {
        let text = match self {
            Cell::Null => return,
            Cell::Str(s) | Cell::Json(s) => s.clone(),
            other => {
                let mut s = String::new();
                other.write_json(&mut s);
                s
            }
        };
        write_csv_field(out, &text);
    }
}

/// Appends `s` as one CSV field, quoted when it holds a comma, quote, CR or LF, or
/// starts or ends with a space.
pub fn write_csv_field(out: &mut String, s: &str) {
    let quote = s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if quote {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Appends one JSON object line (`{"col":value,...}` and `\n`) for a row.
pub fn write_json_row(out: &mut String, columns: &[String], cells: &[Cell]) {
    out.push('{');
    for (i, (c, v)) in columns.iter().zip(cells).enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, c);
        out.push(':');
        v.write_json(out);
    }
    out.push_str("}\n");
}

/// Appends one CSV line for a row (or, with `Cell::Str`s of the column names, the
/// header).
pub fn write_csv_row(out: &mut String, cells: &[Cell]) {
    for (i, v) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        v.write_csv(out);
    }
    out.push_str("\r\n");
}
