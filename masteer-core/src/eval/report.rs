//! Evaluation reports: one row per condition (unsteered, each strategy, adaptive, the
//! per-sample oracle), written as JSON and Markdown.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Measurements under one condition; absent metrics were not measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConditionResult {
    /// `unsteered`, a strategy name, `adaptive (hard)`, `adaptive (soft)`, `oracle`.
    pub condition: String,
    /// Mean share of the wanted A/B answer on the issue's test set.
    pub behaviour: Option<f64>,
    /// Paired difference of `behaviour` against the unsteered model (95% bootstrap
    /// interval over test items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behaviour_vs_unsteered: Option<super::bootstrap::Interval>,
    /// Paired difference of the MMLU A/B accuracy against the unsteered model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmlu_vs_unsteered: Option<super::bootstrap::Interval>,
    /// Share of simple questions answered right (bundled `simple_qa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple_qa: Option<f64>,
    /// MMLU A/B accuracy.
    pub mmlu: Option<f64>,
    /// KL(unsteered ‖ steered) on neutral prompts, nats per token.
    pub kl: Option<f64>,
    /// Perplexity of a neutral text.
    pub perplexity: Option<f64>,
    /// TruthfulQA MC1.
    pub tqa_mc1: Option<f64>,
    /// TruthfulQA MC2.
    pub tqa_mc2: Option<f64>,
    /// Refusal rate on harmful requests.
    pub refusal: Option<f64>,
    /// Refusal rate on safe prompts.
    pub over_refusal: Option<f64>,
    /// Adaptive conditions: how many test inputs went to each strategy (or `none`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub decisions: BTreeMap<String, usize>,
}

/// A report comparing conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// What was repaired.
    pub issue: String,
    /// Model description.
    pub model: String,
    /// Test-set sizes and other facts worth stating.
    pub notes: Vec<String>,
    /// The rows.
    pub conditions: Vec<ConditionResult>,
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}"))
        .unwrap_or_else(|| "–".into())
}

impl EvalReport {
    /// A Markdown table.
    pub fn to_markdown(&self) -> String {
        let mut s = format!("## {}\n\nModel: {}\n\n", self.issue, self.model);
        s.push_str("| condition | behaviour ↑ | vs unsteered (95% CI) | MMLU A/B ↑ | KL ↓ | perplexity ↓ | simple questions ↑ | TQA MC1 ↑ | TQA MC2 ↑ | refusal (harmful) | refusal (safe) ↓ | decisions |\n");
        s.push_str("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        for c in &self.conditions {
            let d = c
                .decisions
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.condition,
                cell(c.behaviour, 3),
                c.behaviour_vs_unsteered
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "–".into()),
                cell(c.mmlu, 3),
                cell(c.kl, 4),
                cell(c.perplexity, 2),
                cell(c.simple_qa, 3),
                cell(c.tqa_mc1, 3),
                cell(c.tqa_mc2, 3),
                cell(c.refusal, 2),
                cell(c.over_refusal, 2),
                d
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("\n- {n}"));
        }
        s.push('\n');
        s
    }

    /// Write `report.json` and `report.md` into `dir` (atomically each).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| CoreError::InvalidInput(format!("cannot encode the report: {e}")))?;
        masteer_types::fsutil::write_bytes_atomic(&dir.join("report.json"), &json)?;
        masteer_types::fsutil::write_bytes_atomic(
            &dir.join("report.md"),
            self.to_markdown().as_bytes(),
        )?;
        Ok(())
    }
}
