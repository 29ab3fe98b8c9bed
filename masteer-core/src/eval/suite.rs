//! The comparison every report makes: unsteered, each strategy at its validated
//! setting, MASteer adaptive (hard and soft), and the per-sample oracle, on an issue's
//! A/B test set and on MMLU A/B, with optional divergence and perplexity on neutral text.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use masteer_datagen::SteerSample;
use masteer_models::LoadedModel;

use super::ab::{self, AbResult, Steering};
use super::capability::{kl_to_unsteered, perplexity, NEUTRAL_PROMPTS, NEUTRAL_TEXT};
use super::report::{ConditionResult, EvalReport};
use crate::error::{CoreError, Result};
use crate::strategy_library::StrategyLibrary;

/// What to measure.
#[derive(Clone, Debug)]
pub struct SuiteConfig {
    /// Batch size.
    pub batch: usize,
    /// Measure KL on neutral prompts and perplexity on neutral text.
    pub capability_text: bool,
    /// Show a progress bar over the conditions.
    pub progress: bool,
}

impl Default for SuiteConfig {
    fn default() -> Self {
        SuiteConfig {
            batch: 8,
            capability_text: true,
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
    let bar = masteer_types::progress::Progress::new(
        conditions.len() as u64,
        "evaluating conditions",
        config.progress,
    );
    for (name, steering) in &conditions {
        tracing::info!(condition = %name, "evaluating");
        let t = ab::score(lm, test, *steering, config.batch)?;
        let m = ab::score(lm, mmlu, *steering, config.batch)?;
        let (kl, ppl) = if config.capability_text {
            (
                Some(kl_to_unsteered(lm, &NEUTRAL_PROMPTS, *steering)?),
                Some(perplexity(lm, NEUTRAL_TEXT, *steering)?),
            )
        } else {
            (None, None)
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
