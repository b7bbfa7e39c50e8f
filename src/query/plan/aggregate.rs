//! Running a plan: feeding it the records that pass, keeping one running state per
//! aggregate, group and window, and turning them into result rows.

use std::collections::HashMap;

use super::{Mode, Plan};
use crate::query::fields::{HeaderField, Leaf, Loc, Num, Rec, Target};
use crate::query::spec::{Agg, AggFn};
use crate::query::{Cell, ScanStats};

/// Running state of one aggregate in one group.
#[derive(Debug, Clone)]
struct AggState {
    n: u64,
    isum: i128,
    fsum: f64,
    min: Option<Num>,
    max: Option<Num>,
    vals_i: Vec<i128>,
    vals_f: Vec<f64>,
}

impl AggState {
    fn new() -> AggState {
        AggState {
            n: 0,
            isum: 0,
            fsum: 0.0,
            min: None,
            max: None,
            vals_i: Vec::new(),
            vals_f: Vec::new(),
        }
    }

    #[inline]
    fn add(&mut self, f: AggFn, v: Num) {
        self.n += 1;
        match f {
            AggFn::Count => {}
            AggFn::Sum | AggFn::Avg => match v {
                Num::I(i) => self.isum = self.isum.saturating_add(i),
                Num::F(x) => self.fsum += x,
            },
            AggFn::Min => {
                if self.min.is_none_or(|m| less(v, m)) {
                    self.min = Some(v);
                }
            }
            AggFn::Max => {
                if self.max.is_none_or(|m| less(m, v)) {
                    self.max = Some(v);
                }
            }
            AggFn::Pct(_) => match v {
                Num::I(i) => self.vals_i.push(i),
                Num::F(x) => {
                    if !x.is_nan() {
                        self.vals_f.push(x)
                    }
                }
            },
        }
    }

    fn finish(&mut self, a: &Agg) -> Cell {
        if a.f == AggFn::Count {
            return Cell::Int(i128::from(self.n));
        }
        if self.n == 0 {
            return Cell::Null;
        }
        let num = |n: Num| match n {
            Num::I(i) => Cell::Int(i),
            Num::F(f) => Cell::Float(f),
        };
        match a.f {
            AggFn::Count => Cell::Int(i128::from(self.n)),
            AggFn::Sum if a.int => Cell::Int(self.isum),
            AggFn::Sum => Cell::Float(self.fsum),
            AggFn::Avg if a.int => Cell::Float(self.isum as f64 / self.n as f64),
            AggFn::Avg => Cell::Float(self.fsum / self.n as f64),
            AggFn::Min => self.min.map_or(Cell::Null, num),
            AggFn::Max => self.max.map_or(Cell::Null, num),
            AggFn::Pct(p) => {
                if a.int {
                    nearest_rank(&mut self.vals_i, p, |x, y| x.cmp(y)).map_or(Cell::Null, Cell::Int)
                } else {
                    nearest_rank(&mut self.vals_f, p, |x, y| x.total_cmp(y))
                        .map_or(Cell::Null, Cell::Float)
                }
            }
        }
    }
}

fn less(a: Num, b: Num) -> bool {
    match (a, b) {
        (Num::I(x), Num::I(y)) => x < y,
        (x, y) => x.as_f64() < y.as_f64(),
    }
}

/// The exact nearest-rank percentile: the smallest value with at least `p`% of the
/// values at or below it (`ceil(p/100 * n)`-th smallest).
fn nearest_rank<T: Copy>(
    v: &mut [T],
    p: f64,
    cmp: impl FnMut(&T, &T) -> std::cmp::Ordering,
) -> Option<T> {
    if v.is_empty() {
        return None;
    }
    let n = v.len();
    let rank = ((p / 100.0 * n as f64).ceil() as usize).clamp(1, n);
    let (_, x, _) = v.select_nth_unstable_by(rank - 1, cmp);
    Some(*x)
}

#[derive(Debug)]
struct Group {
    window: u64,
    key: Cell,
    sort: SortKey,
    aggs: Vec<AggState>,
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum SortKey {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Bytes(Vec<u8>),
}

/// What to do after a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Mutable state of one run of a plan.
pub(crate) struct Exec {
    groups: Vec<Group>,
    index: HashMap<Box<[u8]>, usize>,
    scratch: Vec<u8>,
    rows: u64,
    cells: Vec<Cell>,
    inputs: Vec<Option<Num>>,
    /// The key and group of the previous record.
    last_key: Vec<u8>,
    last_group: usize,
}

impl Exec {
    /// A fresh execution state for a plan with `columns` output columns.
    pub(crate) fn new(columns: usize) -> Exec {
        Exec {
            groups: Vec::new(),
            index: HashMap::new(),
            scratch: Vec::new(),
            rows: 0,
            cells: Vec::with_capacity(columns),
            inputs: Vec::new(),
            last_key: Vec::new(),
            last_group: usize::MAX,
        }
    }

    /// Feeds a record that passed the range and the filter.
    pub(crate) fn accept(
        &mut self,
        plan: &Plan,
        r: &Rec<'_>,
        stats: &mut ScanStats,
        sink: &mut dyn FnMut(&[Cell]) -> bool,
    ) -> Flow {
        match &plan.mode {
            Mode::Rows(cols) => {
                if plan.limit.is_some_and(|l| self.rows >= l) {
                    return Flow::Stop;
                }
                self.cells.clear();
                for c in cols {
                    let cell = plan.cell_of(c, r, stats);
                    self.cells.push(cell);
                }
                self.rows += 1;
                stats.rows += 1;
                if !sink(&self.cells) || plan.limit.is_some_and(|l| self.rows >= l) {
                    return Flow::Stop;
                }
                Flow::Continue
            }
            Mode::Aggregate {
                aggs,
                group,
                window,
            } => {
                if group.is_none() && window.is_none() && aggs.iter().all(|a| a.input.is_none()) {
                    // Plain counts: one group, nothing to read.
                    if self.groups.is_empty() {
                        self.groups.push(Group {
                            window: 0,
                            key: Cell::Null,
                            sort: SortKey::Null,
                            aggs: vec![AggState::new(); aggs.len()],
                        });
                    }
                    for s in &mut self.groups[0].aggs {
                        s.n += 1;
                    }
                    return Flow::Continue;
                }
                let w = window.map_or(0, |w| r.timestamp - r.timestamp % w);
                self.scratch.clear();
                self.scratch.extend_from_slice(&w.to_le_bytes());
                if let Some(g) = group {
                    if !key_bytes(g, r, plan.root_size, &mut self.scratch) {
                        stats.undecodable += 1;
                        return Flow::Continue;
                    }
                }
                // Read every input first, so an undecodable record changes nothing.
                self.inputs.clear();
                for a in aggs {
                    let v = match &a.input {
                        None => None,
                        Some(t) => match t.num(r, plan.root_size) {
                            Ok(v) => v,
                            Err(()) => {
                                stats.undecodable += 1;
                                return Flow::Continue;
                            }
                        },
                    };
                    self.inputs.push(v);
                }
                // Consecutive records usually fall in the same group (one group without
                // --group-by, and windows follow time): skip the hash lookup then.
                let cached = (self.last_key == self.scratch).then_some(self.last_group);
                let gi = match cached.or_else(|| self.index.get(&self.scratch[..]).copied()) {
                    Some(i) => i,
                    None => {
                        let (key, sort) = match group {
                            Some(g) => key_cell(g, r, plan),
                            None => (Cell::Null, SortKey::Null),
                        };
                        self.groups.push(Group {
                            window: w,
                            key,
                            sort,
                            aggs: vec![AggState::new(); aggs.len()],
                        });
                        self.index.insert(
                            self.scratch.clone().into_boxed_slice(),
                            self.groups.len() - 1,
                        );
                        self.groups.len() - 1
                    }
                };
                if gi != self.last_group || self.last_key != self.scratch {
                    self.last_group = gi;
                    self.last_key.clear();
                    self.last_key.extend_from_slice(&self.scratch);
                }
                let g = &mut self.groups[gi];
                for (i, a) in aggs.iter().enumerate() {
                    match (&a.input, self.inputs[i]) {
                        (None, _) => g.aggs[i].add(AggFn::Count, Num::I(0)),
                        (Some(_), Some(v)) => g.aggs[i].add(a.f, v),
                        (Some(_), None) => {}
                    }
                }
                Flow::Continue
            }
        }
    }

    /// Emits the aggregate rows (nothing for row plans).
    pub(crate) fn finish(
        &mut self,
        plan: &Plan,
        stats: &mut ScanStats,
        sink: &mut dyn FnMut(&[Cell]) -> bool,
    ) {
        let Mode::Aggregate {
            aggs,
            group,
            window,
        } = &plan.mode
        else {
            return;
        };
        if self.groups.is_empty() && group.is_none() && window.is_none() {
            // A plain aggregate over no records is one row (count 0).
            self.groups.push(Group {
                window: 0,
                key: Cell::Null,
                sort: SortKey::Null,
                aggs: vec![AggState::new(); aggs.len()],
            });
        }
        self.groups.sort_by(|a, b| {
            a.window.cmp(&b.window).then(
                a.sort
                    .partial_cmp(&b.sort)
                    .unwrap_or(std::cmp::Ordering::Equal),
            )
        });
        for g in &mut self.groups {
            if plan.limit.is_some_and(|l| stats.rows >= l) {
                break;
            }
            let mut cells = Vec::with_capacity(plan.columns.len());
            if window.is_some() {
                cells.push(Cell::Time(g.window));
            }
            if group.is_some() {
                cells.push(g.key.clone());
            }
            for (s, a) in g.aggs.iter_mut().zip(aggs) {
                cells.push(s.finish(a));
            }
            stats.rows += 1;
            if !sink(&cells) {
                break;
            }
        }
    }
}

/// Appends a group key's bytes; false if undecodable.
#[inline]
fn key_bytes(t: &Target, r: &Rec<'_>, root: usize, out: &mut Vec<u8>) -> bool {
    match t {
        Target::Header(h) => {
            out.push(1);
            out.extend_from_slice(&h.get(r).to_le_bytes());
            true
        }
        Target::Field { acc, .. } => match acc.locate(r.payload, root) {
            Loc::Bad => false,
            Loc::Null => {
                out.push(0);
                true
            }
            Loc::At(at) => {
                out.push(1);
                match &acc.leaf {
                    Leaf::Str | Leaf::Char => {
                        let mut buf = [0u8; 4];
                        match acc.str_at(r.payload, at, &mut buf) {
                            Some(s) if std::str::from_utf8(s).is_ok() => {
                                out.extend_from_slice(s);
                                true
                            }
                            _ => false,
                        }
                    }
                    Leaf::Enum(e) => match r.payload.get(at) {
                        Some(&tag) if e.variant_name(tag).is_some() => {
                            out.push(tag);
                            true
                        }
                        _ => false,
                    },
                    Leaf::Bool => match r.payload.get(at) {
                        Some(&b) if b <= 1 => {
                            out.push(b);
                            true
                        }
                        _ => false,
                    },
                    l if l.is_numeric() => match acc.num_at(r.payload, at) {
                        Some(Num::I(i)) => {
                            out.extend_from_slice(&i.to_le_bytes());
                            true
                        }
                        Some(Num::F(f)) => {
                            out.extend_from_slice(&f.to_bits().to_le_bytes());
                            true
                        }
                        None => false,
                    },
                    _ => false,
                }
            }
        },
    }
}

/// The display cell and sort key of a group key (called once per group).
fn key_cell(t: &Target, r: &Rec<'_>, plan: &Plan) -> (Cell, SortKey) {
    match t {
        Target::Header(HeaderField::Time) => (
            Cell::Time(r.timestamp),
            SortKey::Int(i128::from(r.timestamp)),
        ),
        Target::Header(h) => {
            let v = i128::from(h.get(r));
            (Cell::Int(v), SortKey::Int(v))
        }
        Target::Field { acc, .. } => {
            let at = match acc.locate(r.payload, plan.root_size) {
                Loc::At(at) => at,
                _ => return (Cell::Null, SortKey::Null),
            };
            match &acc.leaf {
                Leaf::Enum(e) => {
                    let tag = r.payload.get(at).copied().unwrap_or(0);
                    (
                        Cell::Str(e.variant_name(tag).unwrap_or("?").to_string()),
                        SortKey::Int(i128::from(tag)),
                    )
                }
                Leaf::Bool => {
                    let b = r.payload.get(at) == Some(&1);
                    (Cell::Bool(b), SortKey::Bool(b))
                }
                Leaf::Str | Leaf::Char => {
                    let mut buf = [0u8; 4];
                    let s = acc.str_at(r.payload, at, &mut buf).unwrap_or_default();
                    (
                        Cell::Str(String::from_utf8_lossy(s).into_owned()),
                        SortKey::Bytes(s.to_vec()),
                    )
                }
                _ => match acc.num_at(r.payload, at) {
                    Some(Num::I(i)) => (Cell::Int(i), SortKey::Int(i)),
                    Some(Num::F(f)) => (Cell::Float(f), SortKey::Float(f)),
                    None => (Cell::Null, SortKey::Null),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<i128> = (1..=100).collect();
        assert_eq!(nearest_rank(&mut v, 50.0, |a, b| a.cmp(b)), Some(50));
        assert_eq!(nearest_rank(&mut v, 99.0, |a, b| a.cmp(b)), Some(99));
        assert_eq!(nearest_rank(&mut v, 100.0, |a, b| a.cmp(b)), Some(100));
        assert_eq!(nearest_rank(&mut v, 0.1, |a, b| a.cmp(b)), Some(1));
        let mut v: Vec<i128> = (1..=10).rev().collect();
        assert_eq!(nearest_rank(&mut v, 25.0, |a, b| a.cmp(b)), Some(3));
        assert_eq!(nearest_rank(&mut v, 95.0, |a, b| a.cmp(b)), Some(10));
        assert_eq!(nearest_rank(&mut v, 10.0, |a, b| a.cmp(b)), Some(1));
        assert_eq!(nearest_rank(&mut v, 11.0, |a, b| a.cmp(b)), Some(2));
        let mut v = vec![3.0, 1.0, 2.0];
        assert_eq!(
            nearest_rank(&mut v, 50.0, |a: &f64, b| a.total_cmp(b)),
            Some(2.0)
        );
        let mut e: Vec<f64> = vec![];
        assert_eq!(
            nearest_rank(&mut e, 50.0, |a: &f64, b| a.total_cmp(b)),
            None
        );
    }
}
