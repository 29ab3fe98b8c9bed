//! The comparison every report makes: unsteered, each strategy at its validated
//! setting, MASteer adaptive (hard and soft), and the per-sample oracle, on an issue's
//! A/B test set and on MMLU A/B, with optional divergence and perplexity on neutral text.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use masteer_datagen::SteerSample;
use masteer_models::LoadedModel;

use super::ab::{self, AbResult, Steering};
use super::bootstrap::paired_difference;
use super::capability::{kl_to_unsteered, text_perplexity};
use super::report::{ConditionResult, EvalReport};
use crate::error::{CoreError, Result};
use crate::strategy_library::StrategyLibrary;

/// What to measure.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// Batch size.
    pub batch: usize,
    /// Measure KL on the bundled neutral prompts (the last `neutral_prompts` of them)
    /// and perplexity on the bundled neutral text; 0 measures neither.
    pub neutral_prompts: usize,
    /// Simple questions (bundled `simple_qa`) answered under each condition; 0 skips.
    pub simple_questions: usize,
    /// Seed of the bootstrap intervals.
    pub seed: u64,
    /// Show a progress bar over the conditions.
    pub progress: bool,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            batch: 8,
            neutral_prompts: 100,
            simple_questions: 0,
            seed: 0,
            progress: false,
        }
    }
}

fn decisions_summary(results: &[AbResult]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in results {
        if let Some(d) = &r.decision {
            *m.entry(d.name.clone().unwrap_or_else(|| "none".into()))
                .or_insert(0) += 1;
        }
    }
    m
}

/// Run the comparison for `library` on `test` (the issue's A/B test items, positive =
/// wanted) and `mmlu` (positive = correct).
pub fn compare<B: Backend>(
    lm: &LoadedModel<B>,
    library: &StrategyLibrary,
    issue: &str,
    test: &[&SteerSample],
    mmlu: &[&SteerSample],
    config: &SuiteConfig,
) -> Result<EvalReport> {
    let router = library
        .router
        .as_ref()
        .filter(|r| r.anchors().is_some())
        .ok_or_else(|| CoreError::InvalidInput("library without calibrated anchors".into()))?;
    let mut report = EvalReport {
        issue: issue.to_string(),
        model: format!(
            "{} ({} layers, width {})",
            lm.source.path().display(),
            lm.model.config().num_hidden_layers,
            lm.model.config().hidden_size
        ),
        notes: vec![format!(
            "{} test items, {} MMLU A/B items",
            test.len(),
            mmlu.len()
        )],
        conditions: Vec::new(),
    };
    let plans: Vec<_> = library.strategies.iter().map(|s| s.plan()).collect();
    let anchors = router
        .anchors()
        .ok_or_else(|| CoreError::InvalidInput("library without calibrated anchors".into()))?;
    let hard = router.clone().with_mode(anchors.hard_mode());
    let soft = router.clone().with_mode(anchors.soft_mode());
    let mut conditions: Vec<(String, Steering<'_>)> = vec![("unsteered".into(), Steering::None)];
    for (s, p) in library.strategies.iter().zip(&plans) {
        conditions.push((s.name.clone(), Steering::Fixed(p)));
    }
    conditions.push((
        "MASteer adaptive (hard)".into(),
        Steering::Routed {
            router: &hard,
            strategies: &library.strategies,
        },
    ));
    conditions.push((
        "MASteer adaptive (soft)".into(),
        Steering::Routed {
            router: &soft,
            strategies: &library.strategies,
        },
    ));
    let mut per_condition_test: Vec<Vec<AbResult>> = Vec::new();
    let mut mmlu_unsteered = None;
    let neutral: Vec<String> = if config.neutral_prompts > 0 {
        let all = masteer_datagen::formats::neutral::bundled_prompts()?;
        let n = config.neutral_prompts.min(all.len());
        all[all.len() - n..]
            .iter()
            .map(|s| s.prompt_text())
            .collect()
    } else {
        Vec::new()
    };
    let neutral: Vec<&str> = neutral.iter().map(String::as_str).collect();
    let text = masteer_datagen::formats::neutral::bundled_text()?;
    let questions = super::simple_qa::bundled(config.simple_questions)?;
    let (mut base_test, mut base_mmlu): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    // The unsteered replies to the simple questions (the first condition is unsteered).
    let mut qa_unsteered: Option<Vec<String>> = None;
    let bar = masteer_types::progress::Progress::new(
        conditions.len() as u64,
        "evaluating conditions",
        config.progress,
    );
    for (name, steering) in &conditions {
        tracing::info!(condition = %name, "evaluating");
        let t = ab::score(lm, test, *steering, config.batch)?;
        let m = ab::score(lm, mmlu, *steering, config.batch)?;
        let (kl, ppl) = if neutral.is_empty() {
            (None, None)
        } else {
            (
                Some(kl_to_unsteered(lm, &neutral, *steering)?),
                Some(text_perplexity(lm, &text, *steering, 256, 32, usize::MAX)?.0),
            )
        };
        let simple_qa = if questions.is_empty() {
            None
        } else {
            // A router's replies are generated only where it steers.
            let replies = match &qa_unsteered {
                Some(u) => {
                    super::simple_qa::replies_given(lm, &questions, *steering, u, 24, config.batch)?
                        .0
                }
                None => super::simple_qa::replies(lm, &questions, *steering, 24, config.batch)?,
            };
            let v = super::simple_qa::judged(&questions, &replies);
            if qa_unsteered.is_none() {
                qa_unsteered = Some(replies);
            }
            Some(v.iter().filter(|b| **b).count() as f64 / v.len() as f64)
        };
        let shares: Vec<f64> = t.iter().map(AbResult::positive_share).collect();
        let right: Vec<f64> = m
            .iter()
            .map(|r| f64::from(u8::from(r.logp_positive > r.logp_negative)))
            .collect();
        let (vs_base, mmlu_vs_base) = if name == "unsteered" {
            (base_test, base_mmlu) = (shares.clone(), right.clone());
            (None, None)
        } else {
            (
                Some(paired_difference(&base_test, &shares, config.seed)),
                Some(paired_difference(&base_mmlu, &right, config.seed)),
            )
        };
        let mut decisions = decisions_summary(&t);
        for (k, v) in decisions_summary(&m) {
            *decisions.entry(format!("mmlu→{k}")).or_insert(0) += v;
        }
        if name == "unsteered" {
            mmlu_unsteered = Some(ab::accuracy(&m));
        }
        report.conditions.push(ConditionResult {
            condition: name.clone(),
            behaviour: Some(ab::mean_positive_share(&t)),
            behaviour_vs_unsteered: vs_base,
            mmlu_vs_unsteered: mmlu_vs_base,
            simple_qa,
            mmlu: Some(ab::accuracy(&m)),
            kl,
            perplexity: ppl,
            decisions,
            ..Default::default()
        });
        per_condition_test.push(t);
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Oracle: per test item, the best of unsteered and each single strategy; out-of-scope
    // (MMLU) items stay unsteered.
    let n_single = 1 + library.strategies.len();
    let oracle = (0..test.len())
        .map(|i| {
            (0..n_single)
                .map(|c| per_condition_test[c][i].positive_share())
                .fold(f64::NEG_INFINITY, f64::max)
        })
        .sum::<f64>()
        / test.len().max(1) as f64;
    report.conditions.push(ConditionResult {
        condition: "per-sample oracle".into(),
        behaviour: Some(oracle),
        mmlu: mmlu_unsteered,
        ..Default::default()
    });
    Ok(report)
}
