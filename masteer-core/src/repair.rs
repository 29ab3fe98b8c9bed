//! `Masteer`: the end-to-end repair. Samples → activations (cached on disk by content
//! hash) → every algorithm fitted → layer and coefficient validated with the model →
//! anchors calibrated → a [`StrategyLibrary`]. Also the lifelong operations: adding an
//! issue or an algorithm to an existing library, recalibrating the anchors.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::Backend;
use masteer_algorithms::{
    AlgorithmLibrary, ContrastActivations, ContrastSplit, GroupProjection, SteeringAlgorithm,
};
use masteer_anchor::{AnchorConfig, AnchorSet};
use masteer_datagen::formats::caa;
use masteer_datagen::{
    corpora, generate_samples, DatagenConfig, DatagenReport, IssueSpec, SampleKind, SampleSet,
    Split, SteerSample, TextGenerator,
};
use masteer_models::{HookPoint, LoadedModel, Site};
use masteer_types::progress::Progress;
use sha2::{Digest, Sha256};

use crate::activation_reading::{answer_groups, contrast_split};
use crate::error::{CoreError, Result};
use crate::fingerprint::ModelFingerprint;
use crate::representations::calibration_set;
use crate::select::{select, SweepConfig};
use crate::strategy::{anchor_point, Strategy};
use crate::strategy_library::{CalibrationItem, IssueRecord, StrategyLibrary};

/// Bump when the way activations are read changes, so cached ones are not reused.
const READING_VERSION: u32 = 2;

/// What to repair.
#[derive(Clone, Debug)]
pub enum IssueInput {
    /// A description in plain words.
    Text(String),
    /// A full issue specification.
    Spec(IssueSpec),
    /// Samples the user already has (named by the set).
    Samples(SampleSet),
}

/// A repair's outcome: the library and what went into it.
#[derive(Debug)]
pub struct Repair {
    /// Strategies, anchors, model fingerprint.
    pub library: StrategyLibrary,
    /// The samples used.
    pub samples: SampleSet,
    /// How they were generated, when they were.
    pub generation: Option<DatagenReport>,
    /// Algorithms that could not be fitted or selected, with why.
    pub failures: Vec<(String, String)>,
    /// Seconds spent in each step.
    pub timings: Vec<(String, f64)>,
    /// The report of a generation-grounded repair (issues judged by free-text replies:
    /// false claims, harmful requests), when the issue took that path.
    pub grounded: Option<crate::grounded::GroundedReport>,
}

/// Builder of a repair run.
pub struct Masteer<'a, B: Backend> {
    lm: &'a LoadedModel<B>,
    issue: Option<IssueInput>,
    algorithms: AlgorithmLibrary,
    layers: Option<Vec<usize>>,
    seed: u64,
    cache_dir: Option<PathBuf>,
    generator: Option<&'a dyn TextGenerator>,
    generation: DatagenConfig,
    target_count: usize,
    sweep: SweepConfig,
    anchors: AnchorConfig,
    out_of_scope: usize,
    batch: usize,
    progress: bool,
    grounded: Option<crate::grounded::GroundedConfig>,
}

/// Fitted strategies and the algorithms that failed, with why.
type FittedStrategies = (Vec<Strategy>, Vec<(String, String)>);

impl<'a, B: Backend> Masteer<'a, B> {
    /// A repair of `lm` with the built-in algorithms and default settings.
    pub fn new(lm: &'a LoadedModel<B>) -> Self {
        Masteer {
            lm,
            issue: None,
            algorithms: AlgorithmLibrary::default(),
            layers: None,
            seed: 0,
            cache_dir: masteer_models::embedded::cache_dir()
                .ok()
                .map(|d| d.join("activations")),
            generator: None,
            generation: DatagenConfig::default(),
            // 120 pairs: enough for held-out pair accuracy to separate layers (±0.09 at
            // 95% on a 30-pair validation split) in about a minute of reading.
            target_count: 120,
            sweep: SweepConfig::default(),
            anchors: AnchorConfig::default(),
            // 24 general prompts form the "no steering" anchor: as many as the
            // in-scope calibration items the default split leaves.
            out_of_scope: 24,
            // 8 sequences per forward: the CPU GEMM is near its best from 8 rows on,
            // and the padding of mixed-length prompts stays small.
            batch: 8,
            progress: false,
            grounded: None,
        }
    }

    /// The budget of the generation-grounded path (default: the issue family's full
    /// budget, [`crate::grounded::Behaviour::config`]).
    pub fn grounded_config(mut self, config: crate::grounded::GroundedConfig) -> Self {
        self.grounded = Some(config);
        self
    }

    /// Repair the issue described in `text`.
    pub fn issue_text(mut self, text: impl Into<String>) -> Self {
        self.issue = Some(IssueInput::Text(text.into()));
        self
    }

    /// Repair an issue specification.
    pub fn issue(mut self, spec: IssueSpec) -> Self {
        self.issue = Some(IssueInput::Spec(spec));
        self
    }

    /// Repair with samples already at hand.
    pub fn samples(mut self, set: SampleSet) -> Self {
        self.issue = Some(IssueInput::Samples(set));
        self
    }

    /// Replace the algorithm library.
    pub fn algorithms(mut self, library: AlgorithmLibrary) -> Self {
        self.algorithms = library;
        self
    }

    /// Add an algorithm to the library.
    pub fn add_algorithm(mut self, a: impl SteeringAlgorithm + 'static) -> Result<Self> {
        self.algorithms.register(a)?;
        Ok(self)
    }

    /// Layers to consider (default: [`default_layers`], the middle of the network).
    pub fn layers(mut self, layers: Vec<usize>) -> Self {
        self.layers = Some(layers);
        self
    }

    /// Seed of every random choice.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Where activations are cached (`None`: no cache).
    pub fn cache_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.cache_dir = dir;
        self
    }

    /// The LLM that writes new samples (retrieval only without one).
    pub fn generator(mut self, g: &'a dyn TextGenerator) -> Self {
        self.generator = Some(g);
        self
    }

    /// Sample-generation settings.
    pub fn generation(mut self, c: DatagenConfig) -> Self {
        self.generation = c;
        self
    }

    /// Samples to generate for an issue given as text.
    pub fn target_count(mut self, n: usize) -> Self {
        self.target_count = n;
        self
    }

    /// Validation-sweep settings.
    pub fn sweep(mut self, c: SweepConfig) -> Self {
        self.sweep = c;
        self
    }

    /// Anchor settings.
    pub fn anchor_config(mut self, c: AnchorConfig) -> Self {
        self.anchors = c;
        self
    }

    /// Out-of-scope calibration prompts (MMLU A/B items) that must stay unsteered.
    pub fn out_of_scope(mut self, n: usize) -> Self {
        self.out_of_scope = n;
        self
    }

    /// Batch size of the model passes.
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Show progress bars.
    pub fn progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    fn bar(&self, len: u64, msg: &'static str) -> Progress {
        Progress::new(len, msg, self.progress)
    }

    /// Run the repair. An issue given as text whose behaviour shows in free-text replies
    /// (it routes to false claims, harmful requests, false premises or corrigibility) takes
    /// the generation-grounded path
    /// ([`crate::grounded::repair`]: free-text pairs, selection by replies, a condition
    /// gate); every other issue takes the A/B pipeline with anchors.
    pub fn repair(&self) -> Result<Repair> {
        if let Some(IssueInput::Text(text)) = &self.issue {
            let source = masteer_datagen::retriever::Retriever::bundled()?.best_source(text, 50);
            if let Some(b) = source
                .as_deref()
                .and_then(crate::grounded::Behaviour::for_source)
            {
                return self.repair_grounded(text, b);
            }
        }
        let mut repair = self.repair_without_anchors()?;
        let t = Instant::now();
        let library = &mut repair.library;
        library.calibration = in_scope_calibration(&repair.samples)
            .chain(
                out_of_scope_samples(self.out_of_scope)?
                    .into_iter()
                    .map(|s| CalibrationItem {
                        sample: s,
                        in_scope: false,
                    }),
            )
            .collect();
        let bar = self.bar(1, "calibrating anchors");
        recalibrate(self.lm, library, &self.anchors, self.batch)?;
        bar.inc(1);
        bar.finish_and_clear();
        repair
            .timings
            .push(("anchors".to_string(), t.elapsed().as_secs_f64()));
        Ok(repair)
    }

    /// Fit, select and name the strategies of one sample set.
    fn fit_strategies(
        &self,
        samples: &SampleSet,
        fingerprint: &ModelFingerprint,
        timings: &mut Vec<(String, f64)>,
    ) -> Result<FittedStrategies> {
        let c = self.lm.model.config();
        let layers: Vec<usize> = self
            .layers
            .clone()
            .unwrap_or_else(|| default_layers(c.num_hidden_layers));
        let mut sites: Vec<Site> = self.algorithms.sites();
        sites.sort();
        sites.dedup();
        let points: Vec<HookPoint> = layers
            .iter()
            .flat_map(|&l| sites.iter().map(move |s| s.at(l)))
            .collect();
        let t = Instant::now();
        let acts = self.activations(samples, &points, fingerprint)?;
        timings.push(("activations".to_string(), t.elapsed().as_secs_f64()));

        let t = Instant::now();
        let outcomes = self.algorithms.fit_all(&acts);
        timings.push(("fit".to_string(), t.elapsed().as_secs_f64()));
        let validation: Vec<&SteerSample> = samples
            .of(Split::Validation)
            .into_iter()
            .filter(|s| s.kind == SampleKind::AbChoice)
            .collect();
        let t = Instant::now();
        let bar = self.bar(outcomes.len() as u64, "validating layer × coefficient");
        let mut strategies = Vec::new();
        let mut failures = Vec::new();
        for o in outcomes {
            match o.result {
                Err(e) => failures.push((o.name, e.to_string())),
                Ok(v) => {
                    let chosen = if validation.is_empty() {
                        // No A/B validation samples: the cheap default ranking and the
                        // algorithm's own coefficient.
                        let best = masteer_algorithms::rank_layers(&v)[0].0;
                        Strategy::new(&samples.name, &v, &[best], v.default_coefficient)
                    } else {
                        select(
                            self.lm,
                            &samples.name,
                            &v,
                            &validation,
                            &SweepConfig {
                                batch: self.batch,
                                ..self.sweep.clone()
                            },
                        )
                    };
                    match chosen {
                        Ok(s) => strategies.push(s),
                        Err(e) => failures.push((o.name, e.to_string())),
                    }
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        timings.push(("validation sweep".to_string(), t.elapsed().as_secs_f64()));
        if strategies.is_empty() {
            return Err(CoreError::InvalidInput(format!(
                "no algorithm produced a strategy: {failures:?}"
            )));
        }
        Ok((strategies, failures))
    }

    /// Train and validation activations of a sample set, from the cache when present.
    fn activations(
        &self,
        samples: &SampleSet,
        points: &[HookPoint],
        fp: &ModelFingerprint,
    ) -> Result<ContrastActivations> {
        let key = {
            let mut h = Sha256::new();
            h.update(samples.content_hash());
            h.update(&fp.weights_hash);
            h.update(&fp.tokenizer_hash);
            h.update(READING_VERSION.to_le_bytes());
            for p in points {
                h.update(p.to_string());
            }
            hex::encode(h.finalize())
        };
        let path = self
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key}.safetensors")));
        let train_s = samples.of(Split::Train);
        let val_s = samples.of(Split::Validation);
        let cached = path.as_ref().filter(|p| p.exists()).and_then(|p| match crate::cache::load(p, points) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "unreadable activation cache; recomputing");
                None
            }
        });
        let (train, val) = match cached {
            Some(c) => c,
            None => {
                let bar = self.bar(2, "reading activations");
                let train = contrast_split(self.lm, &train_s, points, self.batch)?;
                bar.inc(1);
                let val = if val_s.is_empty() {
                    None
                } else {
                    Some(contrast_split(self.lm, &val_s, points, self.batch)?)
                };
                bar.finish_and_clear();
                if let Some(p) = &path {
                    if let Err(e) = crate::cache::save(p, &train, val.as_ref()) {
                        tracing::warn!(error = %e, "could not cache activations");
                    }
                }
                (train, val)
            }
        };
        let mut acts =
            ContrastActivations::new(train).with_heads(self.lm.model.config().num_attention_heads);
        acts.validation = val;
        if train_s.iter().all(|s| s.kind == SampleKind::AbChoice) {
            // The letters themselves are a nuisance axis at the answer.
            GroupProjection::remove_from(&mut acts, &answer_groups(&train_s))?;
        }
        Ok(acts)
    }

    /// Add the strategies of another issue, or of new algorithms on an issue already
    /// repaired, to `library` (existing strategies are not refitted; a strategy of the
    /// same name is replaced), and recalibrate the anchors across all of them.
    pub fn extend(&self, library: &mut StrategyLibrary) -> Result<Repair> {
        let mut repair = self.repair_without_anchors()?;
        library
            .fingerprint
            .check_matches(&repair.library.fingerprint)?;
        for issue in &repair.library.issues {
            if !library
                .issues
                .iter()
                .any(|i| i.sample_set_hash == issue.sample_set_hash)
            {
                library.issues.push(issue.clone());
            }
        }
        library.add_strategies(repair.library.strategies.clone());
        for item in in_scope_calibration(&repair.samples).collect::<Vec<_>>() {
            if !library
                .calibration
                .iter()
                .any(|c| c.sample.id == item.sample.id)
            {
                library.calibration.push(item);
            }
        }
        let t = Instant::now();
        recalibrate(self.lm, library, &self.anchors, self.batch)?;
        repair
            .timings
            .push(("anchors".to_string(), t.elapsed().as_secs_f64()));
        repair.library = library.clone();
        Ok(repair)
    }

    fn repair_grounded(&self, text: &str, b: crate::grounded::Behaviour) -> Result<Repair> {
        let mut config = self.grounded.clone().unwrap_or_else(|| {
            let mut c = b.config(false);
            c.seed = self.seed;
            c
        });
        config.progress |= self.progress;
        let samples = b.bundled_samples()?;
        let r = crate::grounded::repair(
            self.lm,
            text,
            b.name(),
            b,
            &samples,
            &crate::grounded::grounded_algorithms(),
            &config,
        )?;
        Ok(Repair {
            library: r.library,
            samples: SampleSet::new(b.name(), samples)?,
            generation: None,
            failures: Vec::new(),
            timings: r.report.timings.clone(),
            grounded: Some(r.report),
        })
    }

    fn repair_without_anchors(&self) -> Result<Repair> {
        let t = Instant::now();
        let (samples, generation) = match self.issue.clone() {
            None => {
                return Err(CoreError::InvalidInput(
                    "no issue: call issue_text, issue or samples".into(),
                ))
            }
            Some(IssueInput::Samples(s)) => (s, None),
            Some(IssueInput::Text(text)) => {
                let (s, r) = generate_samples(
                    &IssueSpec::from_text(text, self.target_count, self.seed),
                    self.generator,
                    &self.generation,
                )?;
                (s, Some(r))
            }
            Some(IssueInput::Spec(spec)) => {
                let (s, r) = generate_samples(&spec, self.generator, &self.generation)?;
                (s, Some(r))
            }
        };
        let mut timings = vec![("samples".to_string(), t.elapsed().as_secs_f64())];
        let fingerprint = ModelFingerprint::of(self.lm)?;
        let (strategies, failures) = self.fit_strategies(&samples, &fingerprint, &mut timings)?;
        let mut library = StrategyLibrary::new(fingerprint, self.seed);
        let description = match &self.issue {
            Some(IssueInput::Text(t)) => t.clone(),
            Some(IssueInput::Spec(s)) => s.description.clone(),
            _ => samples.name.clone(),
        };
        library.issues.push(IssueRecord {
            name: samples.name.clone(),
            description,
            sample_set_hash: samples.content_hash(),
            samples: samples.len(),
        });
        library.add_strategies(strategies);
        Ok(Repair {
            library,
            samples,
            generation,
            failures,
            timings,
            grounded: None,
        })
    }
}

/// The layers a repair considers unless told otherwise: the middle band, from a quarter
/// to five sixths of the depth (blocks 7–25 of SmolLM2's 30). Behaviour directions are
/// read and steered best there (CAA, ITI and RepE all steer middle layers); the first
/// blocks hold mostly lexical features, and with few samples their held-out separation
/// ranks them high by chance (measured on SmolLM2 sycophancy: layers 1 and 3 chosen,
/// no effect).
pub fn default_layers(n_layers: usize) -> Vec<usize> {
    let (lo, hi) = (n_layers / 4, (5 * n_layers / 6).max(n_layers / 4 + 1));
    (lo..hi.min(n_layers)).collect()
}

/// The A/B validation pairs of a sample set as in-scope calibration items.
fn in_scope_calibration(samples: &SampleSet) -> impl Iterator<Item = CalibrationItem> + '_ {
    samples
        .of(Split::Validation)
        .into_iter()
        .filter(|s| s.kind == SampleKind::AbChoice)
        .map(|s| CalibrationItem {
            sample: s.clone(),
            in_scope: true,
        })
}

/// MMLU A/B items (CAA's capability set) used as out-of-scope calibration prompts;
/// the last items of the file, so the first ones stay free for evaluation.
pub fn out_of_scope_samples(n: usize) -> Result<Vec<SteerSample>> {
    let all = caa::load_prompt_ab(&corpora::caa_test("mmlu"), "mmlu")?;
    Ok(all.into_iter().rev().take(n).collect())
}

/// Recompute the anchors of a library from its calibration samples, across all its
/// strategies.
pub fn recalibrate<B: Backend>(
    lm: &LoadedModel<B>,
    library: &mut StrategyLibrary,
    config: &AnchorConfig,
    batch: usize,
) -> Result<()> {
    let point = anchor_point(&library.strategies)?;
    let in_scope: Vec<&SteerSample> = library
        .calibration
        .iter()
        .filter(|c| c.in_scope)
        .map(|c| &c.sample)
        .collect();
    let out: Vec<&SteerSample> = library
        .calibration
        .iter()
        .filter(|c| !c.in_scope)
        .map(|c| &c.sample)
        .collect();
    if in_scope.is_empty() {
        return Err(CoreError::InvalidInput(
            "no in-scope calibration samples (the validation split has no A/B pair)".into(),
        ));
    }
    let cal = calibration_set(lm, &library.strategies, point, &in_scope, &out, batch)?;
    library.router = Some(crate::router::Router::Anchors {
        point,
        anchors: AnchorSet::fit(&cal, config)?,
    });
    Ok(())
}

/// Train/validation activations of a split pair, for callers building their own flows.
pub fn split_activations<B: Backend>(
    lm: &LoadedModel<B>,
    set: &SampleSet,
    points: &[HookPoint],
    batch: usize,
) -> Result<(ContrastSplit, Option<ContrastSplit>)> {
    let train = contrast_split(lm, &set.of(Split::Train), points, batch)?;
    let v = set.of(Split::Validation);
    let val = if v.is_empty() {
        None
    } else {
        Some(contrast_split(lm, &v, points, batch)?)
    };
    Ok((train, val))
}
