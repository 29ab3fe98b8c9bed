//! Sample generation end to end: analyst → retriever → writer → reviewer, looping until
//! the target count or the generator budget is reached.

use masteer_types::progress::Progress;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{DatagenError, Result};
use crate::generator::TextGenerator;
use crate::prompts::Prompts;
use crate::retriever::Retriever;
use crate::roles::analyst::{analyse, Analysis};
use crate::roles::reviewer::{ReviewConfig, ReviewReport, Reviewer};
use crate::roles::writer::{ab_sample, balance_letters, draft, free_sample};
use crate::sample::{Provenance, SampleKind, SteerSample};
use crate::set::{SampleSet, SplitFractions};
use crate::spec::IssueSpec;

/// The form of the pairs the writer produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WrittenForm {
    /// Both options in the prompt, answers `(A)`/`(B)`.
    AbChoice,
    /// Free-text answers.
    FreeText,
}

/// Settings of a generation run.
#[derive(Clone, Debug)]
pub struct DatagenConfig {
    /// Share of the target filled with retrieved seed pairs before the writer runs.
    pub retrieved_share: f64,
    /// Most calls to the generator (all roles together).
    pub max_generator_calls: usize,
    /// Reviewer thresholds.
    pub review: ReviewConfig,
    /// Train / validation / test shares.
    pub splits: SplitFractions,
    /// Role prompts.
    pub prompts: Prompts,
    /// Form of written pairs.
    pub form: WrittenForm,
    /// How the roles sample when they write (drafts, analyst retries).
    pub sampling: Sampling,
    /// Tries the analyst gets before its template stands in: a small model's reply
    /// misses a labelled field about one time in three, so three tries nearly always
    /// yield a parsed analysis.
    pub analyst_retries: usize,
    /// Show a progress bar.
    pub progress: bool,
}

/// Sampling settings of the writing roles.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Temperature: 0.7 varies drafts across seeds while keeping them on topic.
    pub temperature: f32,
    /// Nucleus: 0.95 cuts the long tail of junk tokens a 135M model samples otherwise.
    pub top_p: f32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 0.7,
            top_p: 0.95,
        }
    }
}

impl Default for DatagenConfig {
    fn default() -> Self {
        DatagenConfig {
            retrieved_share: 0.5,
            max_generator_calls: 60,
            review: ReviewConfig::default(),
            splits: SplitFractions::default(),
            prompts: Prompts::default(),
            form: WrittenForm::AbChoice,
            sampling: Sampling::default(),
            analyst_retries: 3,
            progress: false,
        }
    }
}

/// What a generation run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DatagenReport {
    /// The analyst's reading of the issue.
    pub analysis: Option<Analysis>,
    /// The bundled dataset the retriever matched the issue to.
    pub source: Option<String>,
    /// The text generator, if one was used.
    pub generator: Option<String>,
    /// Calls made to it.
    pub generator_calls: usize,
    /// Accepted pairs the writer wrote with the generator.
    pub written_accepted: usize,
    /// Written drafts that did not parse.
    pub unparsed_drafts: usize,
    /// Accepted pairs taken from retrieved seeds.
    pub retrieved_accepted: usize,
    /// Reviewer counts.
    pub review: ReviewReport,
    /// The generator error that stopped writing, if any (samples made before it are kept).
    pub error: Option<String>,
}

/// Generate samples for an issue. Without a generator, the analysis comes from the
/// dimension's template and every pair is retrieved.
pub fn generate_samples(
    spec: &IssueSpec,
    generator: Option<&dyn TextGenerator>,
    config: &DatagenConfig,
) -> Result<(SampleSet, DatagenReport)> {
    if spec.target_count == 0 {
        return Err(DatagenError::InvalidSet("target count is 0".into()));
    }
    let mut report = DatagenReport {
        generator: generator.map(|g| g.name()),
        ..Default::default()
    };
    let mut calls = 0usize;
    let analysis = match analyse(
        spec,
        generator,
        &config.prompts,
        config.analyst_retries,
        &config.sampling,
        &mut calls,
    ) {
        Ok(a) => a,
        Err(e) => {
            report.error = Some(e.to_string());
            crate::roles::analyst::template(spec)
        }
    };
    report.generator_calls = calls;

    let retriever = Retriever::bundled()?;
    // The dataset is chosen on the user's own words: the analyst's reading (from a small
    // local model, often) adds words that pull toward other datasets (measured: a
    // sycophancy issue went to survival-instinct when the analysis was included).
    let query = format!("{} {}", spec.title, spec.description);
    let source = retriever.best_source(&query, 50);
    report.source = source.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut seeds: Vec<SteerSample> = spec.seed_examples.clone();
    if let Some(src) = &source {
        let mut pool: Vec<SteerSample> = retriever
            .of_source(src)
            .into_iter()
            .map(|d| d.sample.clone())
            .collect();
        pool.shuffle(&mut rng);
        seeds.extend(pool);
    }
    let topic = format!(
        "{} {} {} {}",
        spec.description,
        analysis.good,
        analysis.bad,
        analysis.scenarios.join(" ")
    );
    let mut reviewer = Reviewer::new(config.review.clone(), &topic);
    let bar = Progress::new(spec.target_count as u64, "samples", config.progress);

    let mut accepted: Vec<SteerSample> = Vec::new();
    let mut seed_iter = seeds.into_iter();
    let retrieved_target =
        ((spec.target_count as f64) * config.retrieved_share.clamp(0.0, 1.0)).round() as usize;
    let mut take_retrieved = |accepted: &mut Vec<SteerSample>,
                              reviewer: &mut Reviewer,
                              want: usize,
                              report: &mut DatagenReport| {
        while accepted.len() < want {
            let Some(mut s) = seed_iter.next() else { break };
            s.provenance = Provenance {
                source: format!("retriever:{}", s.provenance.source),
                generator: None,
                seed: Some(s.id.clone()),
            };
            s.id = format!("{}/{}", spec.title, s.id);
            let reasons = reviewer.check(&s, false);
            if reviewer.record(&mut s, reasons) {
                accepted.push(s);
                report.retrieved_accepted += 1;
                bar.inc(1);
            }
        }
    };
    take_retrieved(&mut accepted, &mut reviewer, retrieved_target, &mut report);
    // Short retrieved prompts make good examples; long ones (persona introductions) are
    // copied verbatim by small models, so they are left out.
    let examples: Vec<String> = accepted
        .iter()
        .filter_map(|s| s.prompt.last().map(|m| m.content.clone()))
        .filter(|c| c.chars().count() <= 160 && !c.contains("(A)"))
        .collect();

    if let Some(g) = generator {
        let mut k = 0usize;
        while accepted.len() < spec.target_count && calls < config.max_generator_calls {
            let scenario = &analysis.scenarios[k % analysis.scenarios.len().max(1)];
            let example = examples
                .get(k % examples.len().max(1))
                .map(String::as_str)
                .unwrap_or(scenario.as_str());
            let seed = spec.seed.wrapping_mul(1_000_003).wrapping_add(k as u64);
            k += 1;
            let d = match draft(g, config, &analysis, scenario, example, seed, &mut calls) {
                Ok(Some(d)) => d,
                Ok(None) => {
                    report.unparsed_drafts += 1;
                    continue;
                }
                Err(e) => {
                    report.error = Some(e.to_string());
                    break;
                }
            };
            let provenance = Provenance {
                source: "writer".into(),
                generator: Some(g.name()),
                seed: Some(scenario.clone()),
            };
            let id = format!("{}/written/{k}", spec.title);
            let mut s = match config.form {
                WrittenForm::AbChoice => {
                    let letter = if report.written_accepted.is_multiple_of(2) {
                        'A'
                    } else {
                        'B'
                    };
                    ab_sample(id, &d, letter, provenance)
                }
                WrittenForm::FreeText => free_sample(id, &d, provenance),
            };
            let mut reasons = reviewer.check(&s, true);
            if reasons.is_empty() && config.review.judge && calls < config.max_generator_calls {
                calls += 1;
                match reviewer.judge(g, &config.prompts, &analysis.good, &s, seed) {
                    Ok(true) => {}
                    Ok(false) => reasons.push(crate::roles::reviewer::RejectReason::Inconsistent),
                    Err(e) => {
                        report.error = Some(e.to_string());
                        break;
                    }
                }
            }
            if reviewer.record(&mut s, reasons) {
                accepted.push(s);
                report.written_accepted += 1;
                bar.inc(1);
            }
        }
    }
    take_retrieved(&mut accepted, &mut reviewer, spec.target_count, &mut report);
    bar.finish_and_clear();
    report.generator_calls = calls;
    report.analysis = Some(analysis);
    report.review = reviewer.report.clone();
    if accepted.is_empty() {
        return Err(DatagenError::InvalidSet(format!(
            "no sample accepted for `{}` (generator error: {:?})",
            spec.title, report.error
        )));
    }
    let ab: Vec<usize> = (0..accepted.len())
        .filter(|&i| accepted[i].kind == SampleKind::AbChoice)
        .collect();
    let mut ab_samples: Vec<SteerSample> = ab.iter().map(|&i| accepted[i].clone()).collect();
    balance_letters(&mut ab_samples, spec.seed);
    for (j, &i) in ab.iter().enumerate() {
        accepted[i] = ab_samples[j].clone();
    }
    let set = SampleSet::new(spec.title.clone(), accepted)?.split(config.splits, spec.seed)?;
    Ok((set, report))
}
