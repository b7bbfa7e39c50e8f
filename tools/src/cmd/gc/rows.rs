//! What `gc` lists: candidates for removal and their JSON rows.

use std::path::PathBuf;

use serde::Serialize;

pub struct Candidate {
    pub path: PathBuf,
    pub topic: Option<String>,
    pub reason: String,
    /// The position up to which the topic was published.
    pub tail: Option<u64>,
    pub named: Vec<(String, u64)>,
}

#[derive(Serialize)]
pub struct Named<'a> {
    pub name: &'a str,
    pub position: u64,
}

#[derive(Serialize)]
pub struct Row<'a> {
    pub path: String,
    pub topic: Option<&'a str>,
    pub reason: &'a str,
    pub published_to: Option<u64>,
    pub named_subscribers: Vec<Named<'a>>,
    pub removed: bool,
    pub action: &'a str,
}

/// Removes the bus directory if `gc --remove` left it empty (the bus is then gone, as
/// it was before anything created it). Returns whether it did.
pub fn remove_if_empty(dir: &std::path::Path) -> bool {
    let empty = std::fs::read_dir(dir).is_ok_and(|mut rd| rd.next().is_none());
    empty && std::fs::remove_dir(dir).is_ok()
}
