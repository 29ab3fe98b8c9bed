//! Capture: copies of chosen positions of chosen hook points, in host memory.

use std::collections::BTreeMap;

use masteer_types::{HookPoint, Positions};
use ndarray::Array2;

use crate::error::{ModelError, Result};

/// Which hook points and positions to copy to the host during a forward pass.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureSpec {
    /// Hook points to copy.
    pub points: Vec<HookPoint>,
    /// Positions of every sequence to copy.
    pub positions: Positions,
}

impl CaptureSpec {
    /// Capture `points` at `positions`.
    pub fn new(points: Vec<HookPoint>, positions: Positions) -> Self {
        CaptureSpec { points, positions }
    }
}

/// Identity of one captured row: which sequence of the batch and which absolute position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaptureRow {
    /// Index of the sequence in the batch.
    pub seq: usize,
    /// Absolute token position in that sequence.
    pub pos: usize,
}

/// Captured activations: for each hook point a `[rows, width]` array whose rows are
/// described, in the same order for every point, by [`Captures::rows`]. For
/// `attn_heads` the width is `heads · head_dim`, head-major (reshape to
/// `[rows, heads, head_dim]` to split heads).
#[derive(Clone, Debug, Default)]
pub struct Captures {
    rows: Vec<CaptureRow>,
    widths: BTreeMap<HookPoint, usize>,
    data: BTreeMap<HookPoint, Vec<f32>>,
}

impl Captures {
    /// The identity of every row.
    pub fn rows(&self) -> &[CaptureRow] {
        &self.rows
    }

    /// Captured hook points.
    pub fn points(&self) -> impl Iterator<Item = HookPoint> + '_ {
        self.data.keys().copied()
    }

    /// The `[rows, width]` array of one hook point.
    pub fn get(&self, point: HookPoint) -> Option<Array2<f32>> {
        let data = self.data.get(&point)?;
        let w = *self.widths.get(&point)?;
        Array2::from_shape_vec((data.len() / w.max(1), w), data.clone()).ok()
    }

    /// Like [`Captures::get`] but an error naming the point when it was not captured.
    pub fn require(&self, point: HookPoint) -> Result<Array2<f32>> {
        self.get(point)
            .ok_or_else(|| ModelError::InvalidInput(format!("{point} was not captured")))
    }

    /// Row index of `(seq, pos)`, if captured.
    pub fn row_of(&self, seq: usize, pos: usize) -> Option<usize> {
        self.rows.iter().position(|r| r.seq == seq && r.pos == pos)
    }

    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Start a new batch of rows (called once per forward call).
    pub(crate) fn push_rows(&mut self, rows: &[CaptureRow]) {
        self.rows.extend_from_slice(rows);
    }

    /// Append captured values of one point (rows in the order last pushed).
    pub(crate) fn push_values(&mut self, point: HookPoint, width: usize, values: Vec<f32>) {
        self.widths.insert(point, width);
        self.data.entry(point).or_default().extend(values);
    }
}
