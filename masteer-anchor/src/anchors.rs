//! `AnchorSet`: per strategy, centroids of the representations of the samples it
//! helps most, plus "no steering" centroids; fitted and calibrated on held-out samples.

use linfa::prelude::*;
use linfa_clustering::KMeans;
use ndarray::Array2;
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

use crate::calibration::CalibrationSet;
use crate::error::{AnchorError, Result};
use crate::matching::{decide, Decision, MatchMode};

/// One centroid: where a strategy (or no steering) applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Anchor {
    /// Index of the strategy, or `None` for "no steering".
    pub strategy: Option<usize>,
    /// Unit-norm centroid of the centred, normalised representations it stands for.
    /// (Artifacts store it in their tensor file under `tensor`, hence the alias.)
    #[serde(alias = "tensor")]
    pub centroid: Vec<f32>,
    /// Calibration samples in its cluster.
    pub members: usize,
}

/// Settings of anchor fitting and calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnchorConfig {
    /// Most k-means centroids per strategy (and for "no steering").
    pub clusters_per_strategy: usize,
    /// Fewest samples per centroid (fewer samples mean fewer centroids).
    pub min_members: usize,
    /// A strategy must gain more than this over the unsteered model to be a target.
    pub min_gain: f64,
    /// Largest share of out-of-scope samples that may be steered.
    pub max_out_of_scope_steered: f64,
    /// Margins tried (strategy similarity minus no-steering similarity).
    pub margins: Vec<f32>,
    /// Soft-mix temperatures tried.
    pub temperatures: Vec<f32>,
    /// Seed of k-means.
    pub seed: u64,
    /// k-means restarts from different seeds, the best kept: 4 make the centroids of
    /// a few dozen calibration samples stable across seeds.
    #[serde(default = "default_kmeans_runs")]
    pub kmeans_runs: usize,
    /// Most k-means iterations per run: 200 is far past convergence (tolerance 1e-6)
    /// at these sizes, and bounds the time on degenerate data.
    #[serde(default = "default_kmeans_iterations")]
    pub kmeans_iterations: u64,
}

fn default_kmeans_runs() -> usize {
    4
}

fn default_kmeans_iterations() -> u64 {
    200
}

impl Default for AnchorConfig {
    fn default() -> Self {
        AnchorConfig {
            clusters_per_strategy: 3,
            min_members: 3,
            min_gain: 0.0,
            max_out_of_scope_steered: 0.05,
            margins: (-10..=10).map(|i| i as f32 * 0.05).collect(),
            temperatures: vec![0.02, 0.05, 0.1, 0.2, 0.5],
            seed: 0,
            kmeans_runs: default_kmeans_runs(),
            kmeans_iterations: default_kmeans_iterations(),
        }
    }
}

/// What calibration chose and how it scores on the calibration samples.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    /// Chosen hard-matching margin.
    pub hard_margin: f32,
    /// Mean repair score of hard matching.
    pub hard_score: f64,
    /// Share of out-of-scope samples hard matching steers.
    pub hard_out_of_scope_steered: f64,
    /// Chosen soft-mix temperature and margin.
    pub soft_temperature: f32,
    /// Margin of the soft mix.
    pub soft_margin: f32,
    /// Mean repair score of the soft mix (linear in the strategies' scores).
    pub soft_score: f64,
    /// Share of out-of-scope samples the soft mix steers.
    pub soft_out_of_scope_steered: f64,
    /// Mean score of the per-sample oracle.
    pub oracle_score: f64,
    /// Mean score of each strategy applied to every sample.
    pub single_scores: Vec<f64>,
    /// Samples whose oracle target is each strategy.
    pub helped: Vec<usize>,
    /// Problems worth knowing (a strategy without anchor...).
    pub warnings: Vec<String>,
}

/// Anchors of every strategy and the calibrated matching rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnchorSet {
    /// Strategy names, in the order decisions index them.
    pub strategies: Vec<String>,
    /// Mean representation of the calibration samples, subtracted before comparing.
    /// (Artifacts store it in their tensor file under `center_tensor`.)
    #[serde(alias = "center_tensor")]
    pub center: Vec<f32>,
    /// The centroids.
    pub anchors: Vec<Anchor>,
    /// Matching rule in use (hard by default; see [`AnchorSet::with_mode`]).
    pub mode: MatchMode,
    /// Calibration results.
    pub report: CalibrationReport,
}

/// Centre and normalise a representation; `None` if it equals the centre.
pub(crate) fn normalise(rep: &[f32], center: &[f32]) -> Option<Vec<f32>> {
    let v: Vec<f32> = rep.iter().zip(center).map(|(a, c)| a - c).collect();
    let n = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (n > 0.0 && n.is_finite()).then(|| v.iter().map(|x| (*x as f64 / n) as f32).collect())
}

fn kmeans(
    points: &[Vec<f32>],
    k: usize,
    seed: u64,
    config: &AnchorConfig,
) -> Result<Vec<Vec<f32>>> {
    if k <= 1 || points.len() <= 1 {
        let w = points[0].len();
        let mut m = vec![0f64; w];
        for p in points {
            m.iter_mut().zip(p).for_each(|(a, b)| *a += *b as f64);
        }
        return Ok(vec![m
            .iter()
            .map(|x| (*x / points.len() as f64) as f32)
            .collect()]);
    }
    let w = points[0].len();
    let data = Array2::from_shape_vec(
        (points.len(), w),
        points.iter().flatten().map(|x| *x as f64).collect(),
    )
    .map_err(|e| AnchorError::Shape(e.to_string()))?;
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(config.kmeans_runs.max(1))
        .max_n_iterations(config.kmeans_iterations.max(1))
        .tolerance(1e-6)
        .fit(&DatasetBase::from(data))
        .map_err(|e| AnchorError::Clustering(e.to_string()))?;
    Ok(model
        .centroids()
        .rows()
        .into_iter()
        .map(|r| r.iter().map(|x| *x as f32).collect())
        .collect())
}

fn unit(v: &[f32]) -> Option<Vec<f32>> {
    let n = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (n > 0.0).then(|| v.iter().map(|x| (*x as f64 / n) as f32).collect())
}

impl AnchorSet {
    /// Fit anchors on calibration samples and calibrate both matching rules.
    pub fn fit(set: &CalibrationSet, config: &AnchorConfig) -> Result<Self> {
        set.validate()?;
        if config.clusters_per_strategy == 0
            || config.margins.is_empty()
            || config.temperatures.iter().any(|t| t.is_nan() || *t <= 0.0)
        {
            return Err(AnchorError::Settings(
                "clusters_per_strategy must be positive, margins non-empty and temperatures positive".into(),
            ));
        }
        let w = set.width();
        let n = set.samples.len();
        let mut center = vec![0f64; w];
        for s in &set.samples {
            center
                .iter_mut()
                .zip(&s.representation)
                .for_each(|(c, x)| *c += *x as f64);
        }
        let center: Vec<f32> = center.iter().map(|c| (c / n as f64) as f32).collect();
        let normed: Vec<Option<Vec<f32>>> = set
            .samples
            .iter()
            .map(|s| normalise(&s.representation, &center))
            .collect();
        let targets: Vec<Option<usize>> = (0..n).map(|i| set.target(i, config.min_gain)).collect();

        let mut report = CalibrationReport::default();
        let mut anchors = Vec::new();
        let groups: Vec<Option<usize>> = (0..set.strategies.len())
            .map(Some)
            .chain(std::iter::once(None))
            .collect();
        for (gi, group) in groups.iter().enumerate() {
            let members: Vec<Vec<f32>> = (0..n)
                .filter(|&i| targets[i] == *group)
                .filter_map(|i| normed[i].clone())
                .collect();
            if let Some(k) = group {
                report.helped.push(members.len());
                if members.is_empty() {
                    let msg = format!(
                        "strategy `{}` helps no calibration sample: it gets no anchor",
                        set.strategies[*k]
                    );
                    tracing::warn!("{msg}");
                    report.warnings.push(msg);
                    continue;
                }
            } else if members.is_empty() {
                report.warnings.push(
                    "no calibration sample is best left unsteered: every input will be steered"
                        .into(),
                );
                continue;
            }
            let k =
                (members.len() / config.min_members.max(1)).clamp(1, config.clusters_per_strategy);
            let centroids: Vec<Vec<f32>> =
                kmeans(&members, k, config.seed.wrapping_add(gi as u64), config)?
                    .iter()
                    .filter_map(|c| unit(c))
                    .collect();
            let mut counts = vec![0usize; centroids.len()];
            for m in &members {
                let nearest = centroids
                    .iter()
                    .enumerate()
                    .map(|(j, c)| (j, m.iter().zip(c).map(|(a, b)| a * b).sum::<f32>()))
                    .fold(
                        (0, f32::NEG_INFINITY),
                        |best, x| if x.1 > best.1 { x } else { best },
                    );
                if let Some(c) = counts.get_mut(nearest.0) {
                    *c += 1;
                }
            }
            for (c, members) in centroids.into_iter().zip(counts) {
                anchors.push(Anchor {
                    strategy: *group,
                    centroid: c,
                    members,
                });
            }
        }
        report.single_scores = (0..set.strategies.len())
            .map(|k| set.samples.iter().map(|s| s.scores[k]).sum::<f64>() / n as f64)
            .collect();
        report.oracle_score = set.oracle_score(config.min_gain);

        let mut anchor_set = AnchorSet {
            strategies: set.strategies.clone(),
            center,
            anchors,
            mode: MatchMode::Hard { margin: 0.0 },
            report,
        };
        anchor_set.calibrate(set, config)?;
        Ok(anchor_set)
    }

    /// Mean score and out-of-scope steered share of a matching rule on `set`.
    fn evaluate(&self, set: &CalibrationSet, mode: MatchMode) -> Result<(f64, f64)> {
        let mut total = 0.0;
        let mut oos = 0usize;
        let mut oos_steered = 0usize;
        for s in &set.samples {
            let d = decide(self, &s.representation, mode)?;
            let gain = if d.weights.is_empty() {
                d.strategy.map(|k| s.scores[k]).unwrap_or(0.0)
            } else {
                d.weights
                    .iter()
                    .zip(&s.scores)
                    .map(|(w, x)| *w as f64 * x)
                    .sum()
            };
            total += gain;
            if !s.in_scope {
                oos += 1;
                if d.steers() {
                    oos_steered += 1;
                }
            }
        }
        Ok((
            total / set.samples.len() as f64,
            if oos == 0 {
                0.0
            } else {
                oos_steered as f64 / oos as f64
            },
        ))
    }

    /// Choose the margin (hard) and temperature and margin (soft) that maximise the mean
    /// score while steering at most the allowed share of out-of-scope samples.
    fn calibrate(&mut self, set: &CalibrationSet, config: &AnchorConfig) -> Result<()> {
        // Among the settings within the out-of-scope limit, the best mean score; ties
        // (common on small calibration sets) resolve to the middle of the tied run of
        // the grid, the setting farthest from flipping a decision.
        let pick = |cands: Vec<(MatchMode, f64, f64)>| -> (MatchMode, f64, f64) {
            let ok: Vec<&(MatchMode, f64, f64)> = cands
                .iter()
                .filter(|c| c.2 <= config.max_out_of_scope_steered)
                .collect();
            let pool: Vec<&(MatchMode, f64, f64)> = if ok.is_empty() {
                // None satisfies the out-of-scope limit: steer out-of-scope inputs least.
                let least = cands.iter().map(|c| c.2).fold(f64::INFINITY, f64::min);
                cands.iter().filter(|c| c.2 == least).collect()
            } else {
                ok
            };
            let best = pool.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max);
            let tied: Vec<&&(MatchMode, f64, f64)> =
                pool.iter().filter(|c| c.1 >= best - 1e-9).collect();
            **tied[tied.len() / 2]
        };
        let mut hard = Vec::new();
        for &m in &config.margins {
            let mode = MatchMode::Hard { margin: m };
            let (score, oos) = self.evaluate(set, mode)?;
            hard.push((mode, score, oos));
        }
        let (hmode, hscore, hoos) = pick(hard);
        let mut soft = Vec::new();
        for &t in &config.temperatures {
            for &m in &config.margins {
                let mode = MatchMode::Soft {
                    temperature: t,
                    margin: m,
                };
                let (score, oos) = self.evaluate(set, mode)?;
                soft.push((mode, score, oos));
            }
        }
        let (smode, sscore, soos) = pick(soft);
        if let MatchMode::Hard { margin } = hmode {
            self.report.hard_margin = margin;
        }
        if let MatchMode::Soft {
            temperature,
            margin,
        } = smode
        {
            self.report.soft_temperature = temperature;
            self.report.soft_margin = margin;
        }
        self.report.hard_score = hscore;
        self.report.hard_out_of_scope_steered = hoos;
        self.report.soft_score = sscore;
        self.report.soft_out_of_scope_steered = soos;
        self.mode = hmode;
        Ok(())
    }

    /// The calibrated hard rule.
    pub fn hard_mode(&self) -> MatchMode {
        MatchMode::Hard {
            margin: self.report.hard_margin,
        }
    }

    /// The calibrated soft rule.
    pub fn soft_mode(&self) -> MatchMode {
        MatchMode::Soft {
            temperature: self.report.soft_temperature,
            margin: self.report.soft_margin,
        }
    }

    /// The same anchors with another matching rule.
    pub fn with_mode(mut self, mode: MatchMode) -> Self {
        self.mode = mode;
        self
    }

    /// Width of the representations.
    pub fn width(&self) -> usize {
        self.center.len()
    }

    /// Match one representation with the set's rule.
    pub fn decide(&self, rep: &[f32]) -> Result<Decision> {
        decide(self, rep, self.mode)
    }

    /// Match every row of a `[batch, width]` array.
    pub fn decide_batch(&self, reps: ndarray::ArrayView2<'_, f32>) -> Result<Vec<Decision>> {
        reps.rows()
            .into_iter()
            .map(|r| match r.as_slice() {
                Some(s) => self.decide(s),
                None => self.decide(&r.to_vec()),
            })
            .collect()
    }
}
