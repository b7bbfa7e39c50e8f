//! The `pwrite` fallback backend: synchronous writes on the recorder's thread.

use std::collections::VecDeque;
use std::io;

use super::{pwrite, Completion, Storage, Write};

/// Synchronous `pwrite`: each write is done when `submit` returns.
#[derive(Debug, Default)]
pub struct PwriteStorage {
    done: VecDeque<Completion>,
}

impl PwriteStorage {
    /// A new backend.
    pub fn new() -> PwriteStorage {
        PwriteStorage::default()
    }
}

impl Storage for PwriteStorage {
    fn name(&self) -> &'static str {
        "pwrite"
    }
    fn submit(&mut self, w: Write) -> Result<(), Box<(Write, io::Error)>> {
        let r = pwrite(w.fd, w.rest(), w.offset + w.done as u64);
        self.done.push_back((w, r));
        Ok(())
    }
    fn reap(&mut self, _min: usize, out: &mut Vec<Completion>) -> io::Result<()> {
        out.extend(self.done.drain(..));
        Ok(())
    }
    fn in_flight(&self) -> usize {
        self.done.len()
    }
}
