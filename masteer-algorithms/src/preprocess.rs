//! Removing a nuisance subspace before fitting.
//!
//! At the answer letter of an A/B sample the activation carries the letter itself
//! (`A` or `B`) as well as what choosing it means. With the letters balanced a mean
//! difference cancels the letter, but methods driven by variance (PCA) or by
//! individual points (probes) still lock onto it. [`GroupProjection`] estimates, per
//! hook point, the directions separating group means (here: letters) on the train
//! split and projects them out of every row.

use std::collections::BTreeMap;

use masteer_types::HookPoint;
use ndarray::{Array2, Axis};

use crate::activations::{ContrastActivations, ContrastSplit};
use crate::error::{AlgorithmError, Result};

/// Per hook point, an orthonormal basis of the directions between group means.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupProjection {
    basis: BTreeMap<HookPoint, Vec<Vec<f64>>>,
}

/// Labels of the positive and negative row of every train pair (e.g. their letters).
#[derive(Clone, Debug, PartialEq)]
pub struct PairGroups {
    /// Group of each positive row.
    pub positive: Vec<u32>,
    /// Group of each negative row.
    pub negative: Vec<u32>,
}

impl GroupProjection {
    /// Estimate the directions from the train split: for each group, its mean minus the
    /// mean of all rows; orthonormalised (directions shorter than `1e-9` of the largest
    /// are dropped).
    pub fn fit(train: &ContrastSplit, groups: &PairGroups) -> Result<Self> {
        let n = train.len();
        if groups.positive.len() != n || groups.negative.len() != n {
            return Err(AlgorithmError::Missing(format!(
                "group labels for {} / {} rows, the split has {n} pairs",
                groups.positive.len(),
                groups.negative.len()
            )));
        }
        let mut basis = BTreeMap::new();
        for (point, rows) in &train.points {
            let all = ndarray::concatenate(Axis(0), &[rows.positive.view(), rows.negative.view()])
                .map_err(|e| AlgorithmError::WidthMismatch {
                    point: *point,
                    message: e.to_string(),
                })?
                .mapv(|v| v as f64);
            let labels: Vec<u32> = groups
                .positive
                .iter()
                .chain(&groups.negative)
                .copied()
                .collect();
            let mean = all
                .mean_axis(Axis(0))
                .unwrap_or_else(|| ndarray::Array1::zeros(all.ncols()));
            let mut group_ids: Vec<u32> = labels.clone();
            group_ids.sort_unstable();
            group_ids.dedup();
            let mut dirs: Vec<Vec<f64>> = Vec::new();
            for g in group_ids {
                let idx: Vec<usize> = labels
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| **l == g)
                    .map(|(i, _)| i)
                    .collect();
                let gm = all
                    .select(Axis(0), &idx)
                    .mean_axis(Axis(0))
                    .unwrap_or_else(|| mean.clone());
                dirs.push((&gm - &mean).to_vec());
            }
            basis.insert(*point, orthonormalise(dirs));
        }
        Ok(GroupProjection { basis })
    }

    /// Number of directions removed at a point.
    pub fn rank(&self, point: HookPoint) -> usize {
        self.basis.get(&point).map(|b| b.len()).unwrap_or(0)
    }

    /// Project the directions out of every row of a split.
    pub fn apply(&self, split: &mut ContrastSplit) {
        for (point, rows) in split.points.iter_mut() {
            if let Some(b) = self.basis.get(point) {
                project_out(&mut rows.positive, b);
                project_out(&mut rows.negative, b);
            }
        }
    }

    /// Fit on the train split of `acts` and apply to every split.
    pub fn remove_from(acts: &mut ContrastActivations, groups: &PairGroups) -> Result<Self> {
        let p = Self::fit(&acts.train, groups)?;
        p.apply(&mut acts.train);
        if let Some(v) = acts.validation.as_mut() {
            p.apply(v);
        }
        Ok(p)
    }
}

fn orthonormalise(dirs: Vec<Vec<f64>>) -> Vec<Vec<f64>> {
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let largest = dirs.iter().map(|d| norm(d)).fold(0.0, f64::max);
    let mut out: Vec<Vec<f64>> = Vec::new();
    for mut d in dirs {
        for b in &out {
            let dot: f64 = d.iter().zip(b).map(|(x, y)| x * y).sum();
            d.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
        }
        let n = norm(&d);
        if n > 1e-9 * largest.max(f64::MIN_POSITIVE) {
            out.push(d.into_iter().map(|x| x / n).collect());
        }
    }
    out
}

fn project_out(rows: &mut Array2<f32>, basis: &[Vec<f64>]) {
    for mut r in rows.rows_mut() {
        for b in basis {
            let dot: f64 = r.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
            r.iter_mut()
                .zip(b)
                .for_each(|(x, y)| *x -= (dot * y) as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activations::PairedRows;

    #[test]
    fn removes_exactly_the_group_axis() {
        // Rows: letter part ±5 along e0 (A: +, B: −), behaviour ±1 along e1.
        let n = 4;
        let mut pos = Array2::<f32>::zeros((n, 3));
        let mut neg = Array2::<f32>::zeros((n, 3));
        let mut gp = Vec::new();
        let mut gn = Vec::new();
        for i in 0..n {
            let pos_is_a = i % 2 == 0;
            pos[[i, 0]] = if pos_is_a { 5.0 } else { -5.0 };
            neg[[i, 0]] = -pos[[i, 0]];
            pos[[i, 1]] = 1.0;
            neg[[i, 1]] = -1.0;
            pos[[i, 2]] = i as f32;
            neg[[i, 2]] = i as f32;
            gp.push(if pos_is_a { 0 } else { 1 });
            gn.push(if pos_is_a { 1 } else { 0 });
        }
        let p = HookPoint::resid_post(0);
        let mut split = ContrastSplit::new((0..n).map(|i| i.to_string()).collect())
            .with(p, PairedRows::new(pos, neg));
        let proj = GroupProjection::fit(
            &split,
            &PairGroups {
                positive: gp,
                negative: gn,
            },
        )
        .unwrap();
        assert_eq!(proj.rank(p), 1);
        proj.apply(&mut split);
        let rows = &split.points[&p];
        for i in 0..n {
            assert!(rows.positive[[i, 0]].abs() < 1e-6 && rows.negative[[i, 0]].abs() < 1e-6);
            assert_eq!(rows.positive[[i, 1]], 1.0);
            assert_eq!(rows.negative[[i, 1]], -1.0);
        }
    }
}
