//! `ContrastActivations`: positive and negative activation rows paired by sample,
//! per hook point, with an optional validation split.

use std::collections::BTreeMap;

use masteer_types::{HookPoint, Site};
use ndarray::{Array2, ArrayView1, ArrayView2};

use crate::error::{AlgorithmError, Result};

/// Rows of one hook point: row `i` of `positive` and of `negative` come from the same
/// sample (its wanted and unwanted answer).
#[derive(Clone, Debug, PartialEq)]
pub struct PairedRows {
    /// `[pairs, width]` activations on the positive answers.
    pub positive: Array2<f32>,
    /// `[pairs, width]` activations on the negative answers.
    pub negative: Array2<f32>,
}

impl PairedRows {
    /// Pair two arrays (checked by [`ContrastActivations::validate`]).
    pub fn new(positive: Array2<f32>, negative: Array2<f32>) -> Self {
        PairedRows { positive, negative }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.positive.nrows()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of a row.
    pub fn width(&self) -> usize {
        self.positive.ncols()
    }

    /// The paired differences `positive − negative`, in f64.
    pub fn differences(&self) -> Array2<f64> {
        (&self.positive - &self.negative).mapv(|x| x as f64)
    }

    /// Columns `start..start+len` (one attention head of an `attn_heads` row).
    pub fn columns(&self, start: usize, len: usize) -> (ArrayView2<'_, f32>, ArrayView2<'_, f32>) {
        use ndarray::s;
        (
            self.positive.slice(s![.., start..start + len]),
            self.negative.slice(s![.., start..start + len]),
        )
    }

    fn check(&self, point: HookPoint) -> Result<()> {
        let (p, n) = (self.positive.nrows(), self.negative.nrows());
        if p != n || p == 0 {
            return Err(AlgorithmError::OneSided {
                point,
                positives: p,
                negatives: n,
            });
        }
        if self.positive.ncols() != self.negative.ncols() {
            return Err(AlgorithmError::WidthMismatch {
                point,
                message: format!(
                    "positive rows have width {}, negative rows {}",
                    self.positive.ncols(),
                    self.negative.ncols()
                ),
            });
        }
        if self.positive.ncols() == 0 {
            return Err(AlgorithmError::WidthMismatch {
                point,
                message: "rows have width 0".into(),
            });
        }
        for (side, a) in [("positive", &self.positive), ("negative", &self.negative)] {
            if let Some(row) = a
                .rows()
                .into_iter()
                .position(|r| r.iter().any(|x| !x.is_finite()))
            {
                return Err(AlgorithmError::NonFinite { point, side, row });
            }
        }
        Ok(())
    }
}

/// The activations of one split (train or validation), per hook point.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContrastSplit {
    /// Sample ids, one per pair, in row order.
    pub sample_ids: Vec<String>,
    /// Paired rows per hook point.
    pub points: BTreeMap<HookPoint, PairedRows>,
}

impl ContrastSplit {
    /// A split with the given sample ids and no points yet.
    pub fn new(sample_ids: Vec<String>) -> Self {
        ContrastSplit {
            sample_ids,
            points: BTreeMap::new(),
        }
    }

    /// Add the rows of a hook point (builder style).
    pub fn with(mut self, point: HookPoint, rows: PairedRows) -> Self {
        self.points.insert(point, rows);
        self
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.sample_ids.len()
    }

    /// Whether the split has no pairs.
    pub fn is_empty(&self) -> bool {
        self.sample_ids.is_empty()
    }

    fn validate(&self, name: &str) -> Result<()> {
        if self.points.is_empty() || self.sample_ids.is_empty() {
            return Err(AlgorithmError::Empty(format!(" in the {name} split")));
        }
        let mut widths: BTreeMap<Site, usize> = BTreeMap::new();
        for (&point, rows) in &self.points {
            rows.check(point)?;
            if rows.len() != self.sample_ids.len() {
                return Err(AlgorithmError::OneSided {
                    point,
                    positives: rows.positive.nrows(),
                    negatives: self.sample_ids.len(),
                });
            }
            let w = *widths.entry(point.site).or_insert(rows.width());
            if w != rows.width() {
                return Err(AlgorithmError::WidthMismatch {
                    point,
                    message: format!(
                        "width {} where other layers of {} have {w}",
                        rows.width(),
                        point.site
                    ),
                });
            }
        }
        Ok(())
    }
}

/// Contrast activations for fitting steering vectors: a train split, an optional
/// validation split (held-out diagnostics and selection), and the head count needed
/// to split `attn_heads` rows into heads.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContrastActivations {
    /// Pairs the algorithms fit on.
    pub train: ContrastSplit,
    /// Held-out pairs for diagnostics and selection.
    pub validation: Option<ContrastSplit>,
    /// Attention heads per layer (required by algorithms on `attn_heads`).
    pub n_heads: Option<usize>,
}

impl ContrastActivations {
    /// Activations with a train split only.
    pub fn new(train: ContrastSplit) -> Self {
        ContrastActivations {
            train,
            validation: None,
            n_heads: None,
        }
    }

    /// Attach a validation split.
    pub fn with_validation(mut self, validation: ContrastSplit) -> Self {
        self.validation = Some(validation);
        self
    }

    /// Set the number of attention heads.
    pub fn with_heads(mut self, n_heads: usize) -> Self {
        self.n_heads = Some(n_heads);
        self
    }

    /// Check that every split is non-empty, paired, consistent in width and finite,
    /// and that the validation split has the train split's widths.
    pub fn validate(&self) -> Result<()> {
        self.train.validate("train")?;
        if let Some(v) = &self.validation {
            v.validate("validation")?;
            for (point, rows) in &v.points {
                if let Some(t) = self.train.points.get(point) {
                    if t.width() != rows.width() {
                        return Err(AlgorithmError::WidthMismatch {
                            point: *point,
                            message: format!(
                                "train width {}, validation width {}",
                                t.width(),
                                rows.width()
                            ),
                        });
                    }
                }
            }
        }
        if let Some(h) = self.n_heads {
            for (point, rows) in &self.train.points {
                if point.site == Site::AttnHeads && (h == 0 || !rows.width().is_multiple_of(h)) {
                    return Err(AlgorithmError::WidthMismatch {
                        point: *point,
                        message: format!("width {} is not divisible into {h} heads", rows.width()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Layers available at `site` in the train split, ascending.
    pub fn layers(&self, site: Site) -> Vec<usize> {
        self.train
            .points
            .keys()
            .filter(|p| p.site == site)
            .map(|p| p.layer)
            .collect()
    }

    /// Validation rows of a hook point, if any.
    pub fn held_out(&self, point: HookPoint) -> Option<&PairedRows> {
        self.validation.as_ref().and_then(|v| v.points.get(&point))
    }
}

/// Dot product of an f32 row with an f64 direction.
pub(crate) fn project(row: ArrayView1<'_, f32>, dir: &[f64]) -> f64 {
    row.iter().zip(dir).map(|(a, b)| *a as f64 * b).sum()
}
