//! Sending payloads with a bounded wait under back-pressure, and reading hex.

use std::time::Duration;

use shmbus::{Publisher, Raw, SendError, Topic};

use crate::error::CliError;
use crate::output::{json_line, out_line, Format};

#[derive(serde::Serialize)]
struct Published {
    position: u64,
}

/// Publishes payloads (and prints their positions, for single events).
pub struct Sink {
    publisher: Publisher<Raw>,
    format: Format,
    timeout: Duration,
    count: u64,
}

impl Sink {
    /// A publisher on `topic`.
    pub fn new(
        topic: &Topic<Raw>,
        format: Format,
        timeout: Duration,
        count: u64,
    ) -> Result<Sink, CliError> {
        let publisher = topic
            .publisher()
            .map_err(|e| CliError::new(format!("cannot publish to {:?}: {e}", topic.name())))?;
        Ok(Sink {
            publisher,
            format,
            timeout,
            count,
        })
    }

    /// Publishes one payload, waiting at most the timeout under back-pressure.
    pub fn send(&mut self, type_id: u64, bytes: &[u8]) -> Result<u64, CliError> {
        self.publisher
            .send_bytes_timeout(type_id, bytes, self.timeout)
            .map_err(|e| match e {
                SendError::Timeout => CliError::new(format!(
                    "timed out after {:?} under back-pressure (a subscriber is a full ring \
                     behind)",
                    self.timeout
                )),
                e => CliError::new(format!("cannot publish: {e}")),
            })
    }

    /// Publishes a payload `count` times, printing each position.
    pub fn send_and_print(&mut self, type_id: u64, bytes: &[u8]) -> Result<(), CliError> {
        for _ in 0..self.count {
            let position = self.send(type_id, bytes)?;
            match self.format {
                Format::Json => json_line(&Published { position }),
                Format::Table => out_line(&position.to_string()),
            }
        }
        Ok(())
    }
}

/// Hex digits to bytes; whitespace, ':' and a leading `0x` are ignored.
pub fn parse_hex(s: &str) -> Result<Vec<u8>, CliError> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let mut digits = Vec::new();
    for (i, c) in t.char_indices() {
        if c.is_whitespace() || c == ':' {
            continue;
        }
        let d = c.to_digit(16).ok_or_else(|| {
            CliError::usage(format!("--hex: {c:?} at offset {i} is not a hex digit"))
        })?;
        digits.push(d as u8);
    }
    if digits.len() % 2 != 0 {
        return Err(CliError::usage("--hex: an odd number of hex digits"));
    }
    Ok(digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::parse_hex;

    #[test]
    fn hex() {
        assert_eq!(
            parse_hex("0xDEad be:ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert_eq!(parse_hex("").unwrap(), Vec::<u8>::new());
    }
}
