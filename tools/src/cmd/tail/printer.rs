//! One record as a line: a JSON object (header fields, then the event decoded with the
//! topic's schema by the library's zero-copy `render_json`, or the raw payload as hex
//! or base64), or a table line.

use serde::Serialize;
use serde_json::value::RawValue;
use shmbus::schema::Schema;

use crate::output::{base64, hex, Format};
use crate::times::format_time;

/// How raw payloads are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

#[derive(Serialize)]
struct Line<'a> {
    position: u64,
    time: String,
    timestamp_ns: u64,
    type_id: u64,
    len: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_hex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

/// Renders records as JSON lines or table lines.
pub struct Printer {
    schema: Option<Schema>,
    type_id: u64,
    encoding: Encoding,
    format: Format,
    show_source: bool,
    buf: String,
}

impl Printer {
    /// A printer for a topic carrying `type_id` events described by `schema`.
    pub fn new(
        schema: Option<Schema>,
        type_id: u64,
        encoding: Encoding,
        format: Format,
        show_source: bool,
    ) -> Printer {
        Printer {
            schema,
            type_id,
            encoding,
            format,
            show_source,
            buf: String::new(),
        }
    }

    /// One record as a line of output.
    pub fn render(
        &mut self,
        position: u64,
        timestamp: u64,
        type_id: u64,
        bytes: &[u8],
        from_disk: bool,
    ) -> String {
        self.buf.clear();
        let mut decode_error = None;
        let mut decoded = false;
        if let Some(s) = &self.schema {
            if type_id == self.type_id {
                match shmbus::schema::decode::render_json(s, bytes, &mut self.buf) {
                    Ok(()) => decoded = true,
                    Err(e) => decode_error = Some(e.to_string()),
                }
            }
        }
        let source = self
            .show_source
            .then_some(if from_disk { "store" } else { "ring" });
        let payload = |enc| match enc {
            Encoding::Hex => ("payload_hex", hex(bytes)),
            Encoding::Base64 => ("payload_base64", base64(bytes)),
        };
        match self.format {
            Format::Json => {
                let event = if decoded {
                    serde_json::from_str::<&RawValue>(&self.buf).ok()
                } else {
                    None
                };
                let (k, v) = if event.is_none() {
                    let (k, v) = payload(self.encoding);
                    (k, Some(v))
                } else {
                    ("", None)
                };
                let line = Line {
                    position,
                    time: format_time(timestamp),
                    timestamp_ns: timestamp,
                    type_id,
                    len: bytes.len(),
                    source,
                    event,
                    decode_error,
                    payload_hex: v.clone().filter(|_| k == "payload_hex"),
                    payload_base64: v.filter(|_| k == "payload_base64"),
                };
                serde_json::to_string(&line).unwrap_or_default()
            }
            Format::Table => {
                let body = if decoded {
                    self.buf.clone()
                } else {
                    let (k, v) = payload(self.encoding);
                    match &decode_error {
                        Some(e) => format!("{k}={v} (undecodable: {e})"),
                        None => format!("type={type_id:#x} len={} {k}={v}", bytes.len()),
                    }
                };
                let src = source.map_or(String::new(), |s| format!("{s:<7}"));
                format!("{position:>12}  {}  {src}{body}", format_time(timestamp))
            }
        }
    }
}
