//! PCA (RepE): the first principal component of the pairs, in three variants.
//!
//! With `Dᵢ = positiveᵢ − negativeᵢ`:
//!
//! | variant | rows analysed | centred? | finds |
//! |---|---|---|---|
//! | `Diff` | `Dᵢ − mean(D)` | yes (as PCA is) | the axis along which the differences *vary*; a shift shared by every pair is removed by the centring |
//! | `Center` | `±Dᵢ/2` (each pair around its midpoint) | no | the axis of largest second moment of the differences, shared shift included |
//! | `Pairwise` | `±Dᵢ` | no | the same axis as `Center`; projections on the scale of whole differences (twice `Center`'s) |
//!
//! So on a constructed example where every pair differs by the same vector `μ` plus a
//! zero-mean spread along `s ⟂ μ` with `|μ|² > var(s)`, `Center` and `Pairwise` return
//! `μ/|μ|` while `Diff` returns `s`: centring the differences (what `pca_diff` does in
//! other libraries through scikit-learn) throws away a consistent shift. The tests
//! check exactly this.
//!
//! The component is computed by power iteration on the rows (`v ← Xᵀ(Xv)`) from a
//! fixed pseudo-random start, in f64: deterministic, no dependency on a random seed
//! or a clock, and only the first component is needed. (linfa-reduction's PCA always
//! centres its input, which is right for `Diff` only.) The sign is oriented so that
//! positives project above their paired negatives for the majority of pairs.

use masteer_types::{HookPoint, Positions, Site};
use ndarray::{Array1, Array2, Axis};

use crate::activations::{ContrastActivations, PairedRows};
use crate::algorithm::{fit_per_layer, SteeringAlgorithm};
use crate::diagnostics::{layer_diagnostics, layer_vector, normalise, orient};
use crate::error::{AlgorithmError, Result};
use crate::vector::SteeringVector;

/// Which rows the principal component is computed on (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PcaVariant {
    /// Centred PCA of the paired differences (RepE's reader).
    Diff,
    /// Each pair centred on its midpoint; uncentred second moment.
    Center,
    /// Plus and minus the paired differences; uncentred.
    Pairwise,
}

impl PcaVariant {
    /// Snake-case name.
    pub fn name(self) -> &'static str {
        match self {
            PcaVariant::Diff => "diff",
            PcaVariant::Center => "center",
            PcaVariant::Pairwise => "pairwise",
        }
    }
}

/// First principal component of the pairs, oriented towards the positives.
#[derive(Clone, Debug, PartialEq)]
pub struct Pca {
    /// Which rows are analysed.
    pub variant: PcaVariant,
    /// Site read and steered.
    pub site: Site,
    /// Positions steered.
    pub positions: Positions,
    /// Most power iterations.
    pub max_iterations: usize,
    /// Stop when the component moves less than this (L2).
    pub tolerance: f64,
}

impl Pca {
    /// PCA with a variant; named `pca_<variant>`.
    pub fn new(variant: PcaVariant) -> Self {
        Pca {
            variant,
            site: Site::ResidPost,
            positions: Positions::All,
            max_iterations: 2000,
            tolerance: 1e-10,
        }
    }

    /// The rows the variant analyses. `Center` and `Pairwise` stack `+D` and `−D`,
    /// which leaves the second moment equal to that of `D` alone, so `D` (scaled) stands
    /// for both halves.
    fn rows(&self, pairs: &PairedRows) -> Array2<f64> {
        let d = pairs.differences();
        match self.variant {
            PcaVariant::Diff => {
                let mean = d
                    .mean_axis(Axis(0))
                    .unwrap_or_else(|| Array1::zeros(d.ncols()));
                d - &mean
            }
            PcaVariant::Center => d * 0.5,
            PcaVariant::Pairwise => d,
        }
    }
}

/// A fixed pseudo-random unit vector (never orthogonal to a component in practice).
fn start_vector(width: usize) -> Vec<f64> {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..width)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        })
        .collect()
}

/// First right singular vector of `x` by power iteration, and its eigenvalue share.
pub(crate) fn first_component(
    x: &Array2<f64>,
    point: HookPoint,
    max_iter: usize,
    tol: f64,
) -> Result<(Vec<f64>, f64)> {
    let total: f64 = x.iter().map(|v| v * v).sum();
    if total.is_nan() || total <= 1e-24 {
        return Err(AlgorithmError::Degenerate {
            point,
            message: "the analysed rows are all zero (no variance)".into(),
        });
    }
    let mut v = Array1::from(start_vector(x.ncols()));
    let n0 = v.dot(&v).sqrt();
    v /= n0;
    for _ in 0..max_iter {
        let xv = x.dot(&v);
        let mut next = x.t().dot(&xv);
        let n = next.dot(&next).sqrt();
        if n.is_nan() || n <= 0.0 {
            return Err(AlgorithmError::Degenerate {
                point,
                message: "power iteration collapsed to zero".into(),
            });
        }
        next /= n;
        let moved = (&next - &v).mapv(|a| a * a).sum().sqrt();
        v = next;
        if moved < tol {
            break;
        }
    }
    let xv = x.dot(&v);
    let lambda: f64 = xv.dot(&xv);
    Ok((v.to_vec(), lambda / total))
}

impl SteeringAlgorithm for Pca {
    /// `pca_<variant>`, from the variant it holds now.
    fn name(&self) -> &str {
        match self.variant {
            PcaVariant::Diff => "pca_diff",
            PcaVariant::Center => "pca_center",
            PcaVariant::Pairwise => "pca_pairwise",
        }
    }

    fn site(&self) -> Site {
        self.site
    }

    fn fit(&self, acts: &ContrastActivations) -> Result<SteeringVector> {
        let layers = fit_per_layer(acts, self.site, self.name(), |point, pairs| {
            let x = self.rows(pairs);
            let (mut dir, explained) =
                first_component(&x, point, self.max_iterations, self.tolerance)?;
            normalise(&mut dir, point, "the principal component")?;
            orient(&mut dir, pairs);
            // Scale: root-mean-square of the analysed rows projected on the component.
            let proj = x.dot(&Array1::from(dir.clone()));
            let rms = (proj.dot(&proj) / proj.len().max(1) as f64).sqrt();
            let mut diag = layer_diagnostics(acts, point, &dir, rms);
            diag.explained_variance = Some(explained as f32);
            Ok(layer_vector(&dir, rms, diag))
        })?;
        Ok(SteeringVector::additive(
            self.name(),
            self.site,
            self.positions,
            layers,
        ))
    }
}
