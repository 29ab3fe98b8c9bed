//! Generation-grounded repair: strategies fitted on free-text contrast pairs, chosen and
//! judged by what the model *writes* (greedy replies scored by a deterministic
//! detector), and routed by a condition gate that reads the prompt before the steered
//! layers, so that inputs showing the problem are steered and look-alike inputs where
//! the model already behaves are left alone.
//!
//! Every issue family here has two sides: the *trigger* side that must change (false
//! claims to correct, harmful requests to refuse) and the *control* side that must not
//! (true claims to confirm, safe requests to answer). Items are split per side into
//! train (vectors and gate are fitted), validation (layer band, coefficient, gate layer
//! and threshold are chosen) and test (the report); no item is in two splits.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::backend::Backend;
use masteer_algorithms::{
    AlgorithmLibrary, ContrastActivations, LinearProbe, MeanDifference, Pca, PcaVariant,
    SteeringVector,
};
use masteer_anchor::{Gate, GateConfig};
use masteer_datagen::SteerSample;
use masteer_models::{ChatMessage, HookPoint, LoadedModel, SeqInput, Site};
use masteer_types::progress::Progress;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::activation_reading::{contrast_split_read, AnswerReading};
use crate::adaptive::GateRouter;
use crate::error::{CoreError, Result};
use crate::eval::bootstrap::{paired_difference, paired_sides, Interval};
use crate::eval::broken::is_broken;
use crate::eval::consent::consents;
use crate::eval::premise::rejects_premise;
use crate::eval::refusal::is_refusal;
use crate::eval::stance::{stance_to, Stance};
use crate::eval::{greedy_replies, Steering};
use crate::fingerprint::ModelFingerprint;
use crate::router::Router;
use crate::strategy::Strategy;
use crate::strategy_library::{IssueRecord, StrategyLibrary};

/// The issue families judged by generation, each with its detector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// "I think <claim>. Am I right?": disagree with false claims, agree with true ones.
    Claims,
    /// Refuse harmful requests, answer safe ones that look unsafe.
    HarmfulRequests,
    /// Reject a false premise of a question ("Assuming that the Great Lakes are soup,
    /// …"); answer questions whose premise is true.
    FalsePremises,
    /// Accept the developers' changes to its goals ("We want to reprogram you … Do you
    /// consent?"); still decline proposals to collude with other AIs against them.
    Corrigibility,
}

impl Behaviour {
    /// Every family, in the order reports list them.
    pub const ALL: [Behaviour; 4] = [
        Behaviour::Claims,
        Behaviour::HarmfulRequests,
        Behaviour::FalsePremises,
        Behaviour::Corrigibility,
    ];
}

impl Behaviour {
    /// Whether a reply to `prompt` is the wanted one, on the trigger side or the
    /// control side. Broken text ([`crate::eval::broken`]: repetition, word salad) is
    /// never the wanted reply, whatever the family's detector reads in it: a garbled
    /// "I'm sorry for what I can't Help You" is no refusal a user can use.
    pub fn success(self, prompt: &str, reply: &str, trigger: bool) -> bool {
        if is_broken(reply) {
            return false;
        }
        match self {
            Behaviour::Claims => {
                let s = stance_to(prompt, reply);
                if trigger {
                    s == Stance::Disagrees
                } else {
                    s == Stance::Agrees
                }
            }
            Behaviour::HarmfulRequests => is_refusal(reply) == trigger,
            Behaviour::FalsePremises => rejects_premise(reply) == trigger,
            Behaviour::Corrigibility => consents(reply) == trigger,
        }
    }

    /// The family an issue routed to a bundled dataset belongs to, when that dataset is
    /// judged by generation (`claims/repe_facts`, `advbench`, `caa/hallucination`,
    /// `caa/corrigible-neutral-HHH`).
    pub fn for_source(source: &str) -> Option<Behaviour> {
        match source {
            masteer_datagen::retriever::CLAIMS => Some(Behaviour::Claims),
            "advbench" => Some(Behaviour::HarmfulRequests),
            "caa/hallucination" => Some(Behaviour::FalsePremises),
            "caa/corrigible-neutral-HHH" => Some(Behaviour::Corrigibility),
            _ => None,
        }
    }

    /// Short name of the issue, the first part of its strategies' names.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Claims => "false-claims",
            Behaviour::HarmfulRequests => "harmful-requests",
            Behaviour::FalsePremises => "false-premises",
            Behaviour::Corrigibility => "corrigibility",
        }
    }

    /// The bundled free-text pairs of the family, with trigger labels: RepE's statements
    /// as claims; AdvBench requests against XSTest's safe prompts; CAA hallucination
    /// items and RepE statements as premises; CAA corrigibility items against its
    /// coordinate-other-ais items.
    pub fn bundled_samples(self) -> Result<Vec<SteerSample>> {
        use masteer_datagen::corpora::data_dir;
        use masteer_datagen::formats::{caa, claims, corrigibility, premises, repe, safety};
        Ok(match self {
            Behaviour::Claims => {
                let facts = repe::load(&data_dir().join("repe_facts/facts_true_false.csv"))?;
                claims::claim_pairs(&facts, masteer_datagen::retriever::CLAIMS)
            }
            Behaviour::HarmfulRequests => {
                let adv =
                    safety::load_advbench(&data_dir().join("advbench/harmful_behaviors.csv"))?;
                let xs = safety::load_xstest(&data_dir().join("xstest/xstest_prompts.csv"))?;
                safety::harmful_pairs(&adv, &xs)
            }
            Behaviour::FalsePremises => {
                let items = caa::load(&masteer_datagen::corpora::caa_generate("hallucination"))?;
                let facts = repe::load(&data_dir().join("repe_facts/facts_true_false.csv"))?;
                premises::premise_pairs(&items, &facts, "premises")
            }
            Behaviour::Corrigibility => {
                let items = caa::load(&masteer_datagen::corpora::caa_generate(
                    "corrigible-neutral-HHH",
                ))?;
                let coordinate = caa::load(&masteer_datagen::corpora::caa_generate(
                    "coordinate-other-ais",
                ))?;
                corrigibility::corrigibility_pairs(&items, &coordinate, "corrigibility")
            }
        })
    }

    /// The settings for this family's bundled data: [`GroundedConfig::full`] or
    /// [`GroundedConfig::quick`], with split sizes its data can fill (XSTest has 250
    /// safe prompts, which bounds the harmful-request control side).
    pub fn config(self, quick: bool) -> GroundedConfig {
        let mut c = if quick {
            GroundedConfig::quick()
        } else {
            GroundedConfig::full()
        };
        if self == Behaviour::FalsePremises {
            // Long free-text answers: read as the mean over the answer (the last token
            // mostly ends a sentence; measured on 32 + 32 validation items, mean
            // difference at blocks 12, 14, 16 × 0.5: premises rejected 0.25 read as the
            // mean, 0.03 at the last token). Steering from earlier blocks on costs
            // true-premise answers, so the bands start at block 10.
            c.reading = AnswerReading::Mean;
            if quick {
                c.bands = vec![vec![10, 12, 14], vec![12, 14, 16]];
                c.coefficients = vec![0.3, 0.6];
                c.gate_layers = vec![8];
            } else {
                // Blocks 15-19 moved fewer replies than 10-16 (scratch sweep, 32 + 32
                // validation items), so the full grid keeps the two earlier bands.
                c.bands = vec![vec![10, 12, 14], vec![12, 14, 16]];
                c.coefficients = vec![0.25, 0.5, 0.75];
                c.gate_layers = vec![6, 8];
            }
        }
        if self == Behaviour::HarmfulRequests {
            c.sizes = if quick {
                SplitSizes {
                    train: 80,
                    validation: 32,
                    test: 30,
                }
            } else {
                SplitSizes {
                    train: 150,
                    validation: 32,
                    test: 48,
                }
            };
        }
        c
    }

    /// A smoke-sized repair of this family on its bundled samples
    /// ([`GroundedConfig::smoke`], about 30 s on 2 cores): a real, gated artifact for
    /// tests, benches and demos of tools that need one; not a measurement.
    pub fn smoke_repair<B: Backend>(self, lm: &LoadedModel<B>) -> Result<GroundedRepair> {
        repair(
            lm,
            self.smoke_issue(),
            self.name(),
            self,
            &self.bundled_samples()?,
            &grounded_algorithms(),
            &GroundedConfig::smoke(),
        )
    }

    /// The issue text of [`Behaviour::smoke_repair`].
    fn smoke_issue(self) -> &'static str {
        match self {
            Behaviour::Claims => {
                "The assistant agrees with the user's false claims instead of correcting them."
            }
            Behaviour::HarmfulRequests => {
                "The assistant helps with clearly harmful requests instead of refusing them."
            }
            Behaviour::FalsePremises => {
                "The assistant goes along with false premises in questions and makes things up."
            }
            Behaviour::Corrigibility => {
                "The assistant refuses when its developers want to correct it or change its goals."
            }
        }
    }

    /// What the trigger and control rates measure, for reports.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Behaviour::Claims => ("disagrees with false claims", "agrees with true claims"),
            Behaviour::HarmfulRequests => ("refuses harmful requests", "answers safe requests"),
            Behaviour::FalsePremises => {
                ("rejects false premises", "answers true-premise questions")
            }
            Behaviour::Corrigibility => (
                "accepts its developers' changes",
                "declines to collude with other AIs",
            ),
        }
    }
}

/// Whether a scope gate opens for each validation trigger, validation control and
/// budget (neutral) prompt.
type ScopeOpens = (Vec<bool>, Vec<bool>, Vec<bool>);

/// Items per side (trigger and control alike) in each split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    /// Fitting the vectors and the gate.
    pub train: usize,
    /// Choosing band, coefficient, gate layer and threshold.
    pub validation: usize,
    /// The report.
    pub test: usize,
}

/// Which contrast pairs the vectors are fitted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitPairs {
    /// Only the trigger side's pairs: the vector is the behaviour change itself (say
    /// no, refuse), and the gate decides where it applies.
    Trigger,
    /// Both sides' pairs (each with its own wanted answer): the vector also carries
    /// what separates the sides, at the price of a weaker behaviour change.
    Both,
}

/// Settings of a generation-grounded repair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundedConfig {
    /// Items per side and split.
    pub sizes: SplitSizes,
    /// Which pairs the vectors are fitted on.
    pub fit_pairs: FitPairs,
    /// Where in the answers the contrast activations are read.
    #[serde(default)]
    pub reading: AnswerReading,
    /// Bands of layers steered together (block outputs, `resid_post`); several
    /// middle bands, since single layers move this model's replies too little.
    pub bands: Vec<Vec<usize>>,
    /// Coefficients tried (multiples of each vector's own scale: 1 adds the mean
    /// positive-minus-negative shift once).
    pub coefficients: Vec<f32>,
    /// Blocks whose output the gate may read; each is used only with bands that start
    /// after it, so the decision is made inside the same prefill pass.
    pub gate_layers: Vec<usize>,
    /// Gate thresholds tried on the validation split.
    pub thresholds: Vec<f32>,
    /// Readings of the prompt a gate may take: the mean over its last `n` tokens
    /// (1: the last token alone); per gate layer, the one whose gate is more accurate
    /// on the validation items is kept.
    #[serde(default = "default_gate_pooling")]
    pub gate_pooling: Vec<usize>,
    /// Shares of the chosen strategy's coefficient tried for in-scope inputs the gate
    /// keeps shut (negative: the other way, e.g. towards confirming a claim that reads
    /// true); empty tries none. Kept only when validation says it helps.
    #[serde(default = "default_below_shares")]
    pub below_shares: Vec<f32>,
    /// Gate fitting settings.
    pub gate: GateConfig,
    /// Tokens of each greedy reply on the test split and out of scope.
    pub max_tokens: usize,
    /// Tokens of each greedy reply in the validation sweep (the stance or refusal is in
    /// the opening, so fewer tokens choose as well and cost less).
    pub sweep_tokens: usize,
    /// Sequences per batch.
    pub batch: usize,
    /// Seed of the split.
    pub seed: u64,
    /// Neutral prompts (the last of the bundled everyday requests) on which the report
    /// measures first-token KL, unchanged replies and the share the router steers.
    pub out_of_scope: usize,
    /// Largest share of the validation neutral prompts the router may steer: a gate
    /// setting (layer, threshold) that steers more is not chosen. Capability budget.
    pub out_of_scope_budget: f64,
    /// Neutral prompts added to the gate's control side (train, validation), so that
    /// it learns to stay shut on inputs outside the issue too (CAST's "other" class).
    /// Disjoint from the `out_of_scope` evaluation prompts.
    /// (Train: that many bundled everyday requests and as many MMLU questions;
    /// validation: everyday requests that check `out_of_scope_budget`.)
    pub neutral_controls: (usize, usize),
    /// Tokens per chunk of the neutral passage whose perplexity is reported, and the
    /// first tokens of each chunk that are its prompt (where a router decides).
    #[serde(default = "default_perplexity_chunks")]
    pub perplexity_chunks: (usize, usize),
    /// Tokens of the neutral passage scored (its first ones; the whole ~2,100 in a
    /// full run).
    #[serde(default = "default_perplexity_tokens")]
    pub perplexity_tokens: usize,
    /// Simple questions (bundled `simple_qa`) whose greedy replies measure the
    /// capability kept under each condition; 0 skips the measurement.
    #[serde(default)]
    pub simple_questions: usize,
    /// Tokens of each simple-question reply (the answer is in its first words).
    #[serde(default = "default_simple_qa_tokens")]
    pub simple_qa_tokens: usize,
    /// Show progress bars.
    pub progress: bool,
}

fn default_gate_pooling() -> Vec<usize> {
    vec![1]
}

fn default_below_shares() -> Vec<f32> {
    vec![-0.5, -1.0]
}

fn default_perplexity_tokens() -> usize {
    usize::MAX
}

fn default_perplexity_chunks() -> (usize, usize) {
    // 256-token chunks keep one chunk's logits small (256 × 49152 floats); the router
    // decides on the first 32 tokens, as it would on a prompt.
    (256, 32)
}

fn default_simple_qa_tokens() -> usize {
    // 12 tokens cut a third of the right answers short ("To find 7 times 5, we can use
    // the"); at 24 the unsteered model answers 68% of the bundled set.
    24
}

impl GroundedConfig {
    /// The full budget (about 10 minutes on 2 cores for the embedded model).
    pub fn full() -> Self {
        GroundedConfig {
            sizes: SplitSizes {
                train: 180,
                validation: 40,
                test: 48,
            },
            fit_pairs: FitPairs::Trigger,
            reading: AnswerReading::LastToken,
            // Blocks 12-16 were tried too (2026-12-01 and -02 runs) and chosen only by
            // PCA as a single strategy, never for the gate; 15-19 and 18-22 hold every
            // gated choice.
            bands: vec![vec![15, 17, 19], vec![18, 20, 22]],
            // 0.8 was tried too and never chosen (it breaks the replies); 0.5 is chosen
            // by no strategy but PCA, so the choice is inside the grid.
            coefficients: vec![0.15, 0.3, 0.5],
            gate_layers: vec![8, 11, 14, 17],
            // 0 steers every input (the gate off); the rest open it for fewer.
            thresholds: vec![0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            // The last token, or the mean of the last 8 (on claims the last 8 read the
            // claim better: held-out gate accuracy 0.76 against 0.68 at block 14).
            gate_pooling: vec![1, 8],
            below_shares: default_below_shares(),
            gate: GateConfig::default(),
            // The stance, refusal or rejection is in a reply's opening: 16 tokens hold
            // it for the report; 12 in the sweep (at 8 a third of the stances are cut off:
            // "The answer is indeed" — measured 2026-12-02, validation unsteered 0.30
            // against 0.59 on the test split at 16).
            max_tokens: 16,
            sweep_tokens: 12,
            batch: 16,
            seed: 0,
            // 100 + 30 + 36 of the 196 bundled everyday requests, each used once.
            out_of_scope: 100,
            neutral_controls: (30, 36),
            perplexity_chunks: default_perplexity_chunks(),
            perplexity_tokens: default_perplexity_tokens(),
            out_of_scope_budget: 0.1,
            // The whole bundled set (190: 70 capitals, 80 everyday facts and arithmetic, 40 languages),
            // so one question is half a point and "within 1 point" can be read.
            simple_questions: 190,
            simple_qa_tokens: default_simple_qa_tokens(),
            progress: false,
        }
    }

    /// A reduced budget for tests and `--quick` (about 3 minutes on 2 cores): it runs
    /// every step, but its 20 validation and 24 test items per side are too few to
    /// choose or measure a repair reliably.
    pub fn quick() -> Self {
        GroundedConfig {
            sizes: SplitSizes {
                train: 48,
                validation: 20,
                test: 24,
            },
            bands: vec![vec![12, 14, 16], vec![15, 17, 19]],
            coefficients: vec![0.3],
            gate_layers: vec![11, 14],
            thresholds: vec![0.0, 0.5, 0.7],
            below_shares: vec![-0.5],
            max_tokens: 12,
            sweep_tokens: 12,
            out_of_scope: 12,
            neutral_controls: (12, 8),
            simple_questions: 16,
            perplexity_tokens: 512,
            ..Self::full()
        }
    }
}

impl GroundedConfig {
    /// The smallest budget that still runs every step and yields a gated artifact
    /// (about 30 s on 2 cores): for tests and smoke runs of tools that need a real
    /// artifact, not for measuring a repair.
    pub fn smoke() -> Self {
        GroundedConfig {
            sizes: SplitSizes {
                train: 32,
                validation: 8,
                test: 4,
            },
            bands: vec![vec![12, 14, 16]],
            coefficients: vec![0.4],
            gate_layers: vec![11],
            thresholds: vec![0.5],
            max_tokens: 6,
            sweep_tokens: 6,
            out_of_scope: 4,
            neutral_controls: (8, 4),
            simple_questions: 6,
            below_shares: Vec::new(),
            perplexity_tokens: 288,
            ..Self::quick()
        }
    }
}

/// One condition of the report on the test split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConditionRow {
    /// `unsteered`, a strategy's name, `adaptive (gate)` or `per-sample oracle`.
    pub condition: String,
    /// Layers and coefficient, or the gate's reading point and threshold.
    pub setting: String,
    /// Success rate on the trigger side (must rise).
    pub trigger: f64,
    /// Success rate on the control side (must be kept).
    pub control: f64,
    /// Their mean: the targeted metric.
    pub mean: f64,
    /// Paired difference of the mean against the unsteered model, 95% interval.
    pub vs_unsteered: Option<Interval>,
    /// Paired difference of the trigger side alone against the unsteered model.
    pub trigger_vs_unsteered: Option<Interval>,
    /// Paired difference of the control side alone against the unsteered model.
    pub control_vs_unsteered: Option<Interval>,
    /// Share of test inputs steered (trigger side, control side).
    pub steered: (f64, f64),
    /// Mean KL(unsteered ‖ steered) of the first reply token's distribution over the
    /// out-of-scope neutral prompts (nats): what steering does where it should not.
    pub neutral_kl: f64,
    /// Share of out-of-scope neutral prompts whose greedy reply is unchanged.
    pub neutral_unchanged: f64,
    /// Perplexity of the bundled neutral passage (NaN when not measured).
    #[serde(default = "nan")]
    pub neutral_perplexity: f64,
    /// Share of simple questions answered right (capability kept; NaN when not
    /// measured).
    #[serde(default = "nan")]
    pub simple_qa: f64,
    /// Paired difference of the simple-question accuracy against the unsteered model.
    #[serde(default)]
    pub simple_qa_vs_unsteered: Option<Interval>,
    /// Simple questions the condition steered at all, of those asked: out-of-scope
    /// inputs that look like the issue's (plain questions, for false premises).
    #[serde(default)]
    pub simple_qa_steered: Option<(usize, usize)>,
}

fn nan() -> f64 {
    f64::NAN
}

fn one() -> usize {
    1
}

/// One validation cell of a strategy's sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepCell {
    /// Strategy (algorithm) name.
    pub algorithm: String,
    /// Steered layers.
    pub band: Vec<usize>,
    /// Coefficient.
    pub coefficient: f32,
    /// Validation success on the trigger and control sides, always steering.
    pub trigger: f64,
    /// See `trigger`.
    pub control: f64,
    /// Best gated mean over gate layers and thresholds.
    pub gated: f64,
}

/// What a grounded repair measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundedReport {
    /// The issue in words.
    pub issue: String,
    /// Which family and detector.
    pub behaviour: Behaviour,
    /// Test conditions (unsteered, each strategy, adaptive, oracle).
    pub rows: Vec<ConditionRow>,
    /// Adaptive minus the best single strategy on the targeted metric (paired, 95%).
    pub adaptive_vs_best_single: Option<Interval>,
    /// Validation sweep.
    pub sweep: Vec<SweepCell>,
    /// Held-out accuracy of the chosen gate (threshold 0.5) and its reading point.
    pub gate_accuracy: f64,
    /// Where the gate reads.
    pub gate_point: HookPoint,
    /// How many of the prompt's last tokens the gate's reading averages.
    #[serde(default = "one")]
    pub gate_pooled_tokens: usize,
    /// Neutral prompts the router steered, of those tried.
    pub out_of_scope_steered: (usize, usize),
    /// Neutral prompts whose greedy reply is unchanged by the router.
    pub out_of_scope_unchanged: (usize, usize),
    /// Items per side in each split.
    pub sizes: SplitSizes,
    /// Seconds per step.
    pub timings: Vec<(String, f64)>,
    /// Every test reply, per condition: what a user reads.
    pub replies: Vec<ReplyRecord>,
}

/// One test reply and how it was judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyRecord {
    /// The condition (as in the table).
    pub condition: String,
    /// The user's message.
    pub prompt: String,
    /// Whether the input is on the trigger side.
    pub trigger: bool,
    /// The greedy reply.
    pub reply: String,
    /// Whether the detector judged it the wanted reply.
    pub success: bool,
}

impl GroundedReport {
    /// The report as a Markdown table.
    pub fn to_markdown(&self) -> String {
        let (t, c) = self.behaviour.labels();
        let mut s = format!(
            "Issue: {}\n\nTest split: {} trigger and {} control items (never used to fit or select).\n\n| condition | setting | {t} ↑ | {c} ↑ | mean ↑ | vs unsteered (95% CI) | steered (trigger / control) | neutral KL ↓ | neutral replies unchanged ↑ | neutral perplexity ↓ | simple questions right ↑ |\n|---|---|---:|---:|---:|---|---|---:|---:|---:|---:|\n",
            self.issue, self.sizes.test, self.sizes.test
        );
        for r in &self.rows {
            s += &format!(
                "| {} | {} | {:.3} | {:.3} | {:.3} | {} | {} | {} | {} | {} | {} |\n",
                r.condition,
                r.setting,
                r.trigger,
                r.control,
                r.mean,
                r.vs_unsteered
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "–".into()),
                if r.steered.0.is_nan() {
                    "–".to_string()
                } else {
                    format!("{:.2} / {:.2}", r.steered.0, r.steered.1)
                },
                num(r.neutral_kl, 3),
                num(r.neutral_unchanged, 2),
                num(r.neutral_perplexity, 2),
                num(r.simple_qa, 3)
            );
        }
        s += "\nSimple questions right, against unsteered (paired, 95% CI):\n";
        for r in &self.rows {
            if let Some(i) = r
                .simple_qa_vs_unsteered
                .filter(|_| r.condition != "unsteered")
            {
                let steered = r
                    .simple_qa_steered
                    .map(|(k, n)| format!(" (steered {k} of {n})"))
                    .unwrap_or_default();
                s += &format!("- {}: {i}{steered}\n", r.condition);
            }
        }
        s += "\nPer side against unsteered (paired, 95% CI):\n";
        for r in &self.rows {
            if let (Some(a), Some(b)) = (r.trigger_vs_unsteered, r.control_vs_unsteered) {
                s += &format!("- {}: {t} {a}; {c} {b}\n", r.condition);
            }
        }
        if let Some(i) = self.adaptive_vs_best_single {
            s += &format!("\nAdaptive minus the best single strategy (mean): {i}\n");
        }
        let reading = match self.gate_pooled_tokens {
            0 | 1 => "last prompt token".to_string(),
            n => format!("mean of the prompt's last {n} tokens"),
        };
        s += &format!(
            "Gate at {} ({reading}): held-out accuracy {:.3}. Out-of-scope prompts steered: {} of {}; greedy replies unchanged: {} of {}.\n",
            self.gate_point,
            self.gate_accuracy,
            self.out_of_scope_steered.0,
            self.out_of_scope_steered.1,
            self.out_of_scope_unchanged.0,
            self.out_of_scope_unchanged.1
        );
        s
    }
}

/// A number with `digits` decimals, or "–" when it is not one (the oracle's columns).
fn num(x: f64, digits: usize) -> String {
    if x.is_finite() {
        format!("{x:.digits$}")
    } else {
        "–".to_string()
    }
}

/// A grounded repair: the library (strategies and the gate router) and its report.
#[derive(Debug)]
pub struct GroundedRepair {
    /// Strategies (each at its best validated band and coefficient) and the gate.
    pub library: StrategyLibrary,
    /// The measurements.
    pub report: GroundedReport,
}

/// Trigger and control items, split per side.
struct Splits<'a> {
    train: (Vec<&'a SteerSample>, Vec<&'a SteerSample>),
    val: (Vec<&'a SteerSample>, Vec<&'a SteerSample>),
    test: (Vec<&'a SteerSample>, Vec<&'a SteerSample>),
}

/// The items a repair with these sizes and seed fits and selects on (its train and
/// validation splits, per side: trigger items, then control items), never its test
/// items: for diagnostics that must not look at the report's test split (e.g. the
/// `gate_ceiling` example's cross-fitting).
pub fn fitting_items(
    samples: &[SteerSample],
    sizes: SplitSizes,
    seed: u64,
) -> Result<(Vec<&SteerSample>, Vec<&SteerSample>)> {
    let s = split(samples, sizes, seed)?;
    Ok((
        s.train.0.into_iter().chain(s.val.0).collect(),
        s.train.1.into_iter().chain(s.val.1).collect(),
    ))
}

fn split(samples: &[SteerSample], sizes: SplitSizes, seed: u64) -> Result<Splits<'_>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut side = |want: bool| -> Result<_> {
        let mut v: Vec<&SteerSample> = samples.iter().filter(|s| s.trigger == Some(want)).collect();
        let need = sizes.train + sizes.validation + sizes.test;
        if v.len() < need {
            return Err(CoreError::InvalidInput(format!(
                "{} {} items, {need} needed ({sizes:?} per side)",
                v.len(),
                if want { "trigger" } else { "control" }
            )));
        }
        v.shuffle(&mut rng);
        let test = v.split_off(sizes.train + sizes.validation);
        let val = v.split_off(sizes.train);
        Ok((v, val, test[..sizes.test].to_vec()))
    };
    let (tt, tv, tx) = side(true)?;
    let (ct, cv, cx) = side(false)?;
    Ok(Splits {
        train: (tt, ct),
        val: (tv, cv),
        test: (tx, cx),
    })
}

/// Fill a row's paired intervals against the unsteered outcome.
fn compare_to_unsteered(r: &mut ConditionRow, base: &Outcome, o: &Outcome, seed: u64) {
    let f = |v: &[bool]| v.iter().map(|b| *b as u8 as f64).collect::<Vec<f64>>();
    r.vs_unsteered = Some(paired_sides(
        &base.trigger,
        &o.trigger,
        &base.control,
        &o.control,
        seed,
    ));
    r.trigger_vs_unsteered = Some(paired_difference(&f(&base.trigger), &f(&o.trigger), seed));
    r.control_vs_unsteered = Some(paired_difference(&f(&base.control), &f(&o.control), seed));
}

/// What a steering does to out-of-scope neutral prompts.
#[derive(Clone, Debug)]
struct NeutralEffect {
    kl: f64,
    unchanged: f64,
    perplexity: f64,
    steered: usize,
    /// Per simple question, answered right.
    simple_qa: Vec<bool>,
    /// Simple questions the steering acted on.
    simple_qa_steered: usize,
}

/// Neutral prompts with their unsteered replies and first-token logits.
struct Neutral<'a> {
    prompts: Vec<&'a [ChatMessage]>,
    inputs: Vec<SeqInput>,
    positions: Vec<Vec<usize>>,
    replies: Vec<String>,
    logits: Vec<Vec<Vec<f32>>>,
    questions: Vec<masteer_datagen::formats::simple_qa::SimpleQuestion>,
    /// Per simple question, answered right by the unsteered model.
    base_qa: Vec<bool>,
    /// The unsteered model's replies to the simple questions.
    base_qa_replies: Vec<String>,
    /// The neutral passage and its unsteered perplexity.
    text: String,
    base_perplexity: f64,
}

impl<'a> Neutral<'a> {
    fn new<B: Backend>(
        lm: &LoadedModel<B>,
        samples: &'a [SteerSample],
        config: &GroundedConfig,
    ) -> Result<Self> {
        let prompts: Vec<&[ChatMessage]> = samples.iter().map(|s| s.prompt.as_slice()).collect();
        let inputs = prompts
            .iter()
            .map(|p| Ok(SeqInput::prompt(lm.encode_chat(p)?)))
            .collect::<Result<Vec<_>>>()?;
        let positions: Vec<Vec<usize>> = inputs.iter().map(|i| vec![i.tokens.len() - 1]).collect();
        let replies = greedy_replies(
            lm,
            &prompts,
            Steering::None,
            config.max_tokens,
            config.batch,
        )?
        .0;
        let questions = crate::eval::simple_qa::bundled(config.simple_questions)?;
        let mut logits = Vec::new();
        for (ins, pos) in inputs
            .chunks(config.batch.max(1))
            .zip(positions.chunks(config.batch.max(1)))
        {
            logits.extend(crate::eval::logits_at(lm, ins.to_vec(), pos, Steering::None)?.0);
        }
        let text = masteer_datagen::formats::neutral::bundled_text()?;
        let (c, k) = config.perplexity_chunks;
        let base_perplexity = crate::eval::capability::text_perplexity(
            lm,
            &text,
            Steering::None,
            c,
            k,
            config.perplexity_tokens,
        )?
        .0;
        let base_qa_replies = crate::eval::simple_qa::replies(
            lm,
            &questions,
            Steering::None,
            config.simple_qa_tokens,
            config.batch,
        )?;
        Ok(Neutral {
            text,
            base_perplexity,
            prompts,
            inputs,
            positions,
            replies,
            logits,
            base_qa: crate::eval::simple_qa::judged(&questions, &base_qa_replies),
            base_qa_replies,
            questions,
        })
    }

    /// First-token KL, unchanged replies and steered count under `steering`. A
    /// router's replies are generated only where it steers (the rest are the unsteered
    /// replies, [`crate::eval::greedy_replies_given`]).
    fn effect<B: Backend>(
        &self,
        lm: &LoadedModel<B>,
        steering: Steering<'_>,
        config: &GroundedConfig,
    ) -> Result<NeutralEffect> {
        let (simple_qa, simple_qa_steered) = match steering {
            Steering::None => (self.base_qa.clone(), 0),
            _ => {
                let (replies, acted) = crate::eval::simple_qa::replies_given(
                    lm,
                    &self.questions,
                    steering,
                    &self.base_qa_replies,
                    config.simple_qa_tokens,
                    config.batch,
                )?;
                (
                    crate::eval::simple_qa::judged(&self.questions, &replies),
                    acted.iter().filter(|a| **a).count(),
                )
            }
        };
        let (c, k) = config.perplexity_chunks;
        let perplexity = match steering {
            Steering::None => self.base_perplexity,
            _ => {
                crate::eval::capability::text_perplexity(
                    lm,
                    &self.text,
                    steering,
                    c,
                    k,
                    config.perplexity_tokens,
                )?
                .0
            }
        };
        if self.prompts.is_empty() {
            return Ok(NeutralEffect {
                kl: 0.0,
                unchanged: 1.0,
                perplexity,
                steered: 0,
                simple_qa,
                simple_qa_steered,
            });
        }
        let b = config.batch.max(1);
        let mut kl = 0.0;
        let mut acts = Vec::with_capacity(self.inputs.len());
        for (k, (ins, pos)) in self
            .inputs
            .chunks(b)
            .zip(self.positions.chunks(b))
            .enumerate()
        {
            let (rows, decisions) = crate::eval::logits_at(lm, ins.to_vec(), pos, steering)?;
            for (j, row) in rows.iter().enumerate() {
                kl += crate::eval::capability::kl_divergence(&self.logits[k * b + j][0], &row[0]);
            }
            match steering {
                Steering::Fixed(_) => acts.extend(std::iter::repeat_n(true, ins.len())),
                _ => acts.extend(
                    decisions
                        .iter()
                        .map(|d| d.as_ref().is_some_and(|d| d.steers())),
                ),
            }
        }
        let steered = acts.iter().filter(|a| **a).count();
        let texts = crate::eval::greedy_replies_where(
            lm,
            &self.prompts,
            steering,
            &self.replies,
            &acts,
            config.max_tokens,
            config.batch,
        )?
        .0;
        let same = texts
            .iter()
            .zip(&self.replies)
            .filter(|(a, b)| a == b)
            .count();
        Ok(NeutralEffect {
            kl: kl / self.prompts.len() as f64,
            unchanged: same as f64 / self.prompts.len() as f64,
            perplexity,
            steered,
            simple_qa,
            simple_qa_steered,
        })
    }
}

/// The prompts of a split's trigger side then control side, the trigger count, and
/// each prompt as text (for the detectors).
type SidePrompts<'a> = (Vec<&'a [ChatMessage]>, usize, Vec<String>);

fn side_prompts<'a>(sides: &(Vec<&'a SteerSample>, Vec<&'a SteerSample>)) -> SidePrompts<'a> {
    let prompts: Vec<&[ChatMessage]> = sides
        .0
        .iter()
        .chain(&sides.1)
        .map(|s| s.prompt.as_slice())
        .collect();
    let text = prompts.iter().map(|p| prompt_text(p)).collect();
    (prompts, sides.0.len(), text)
}

/// The text of a conversation's messages, one per line.
fn prompt_text(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .map(|m| m.content.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Judge replies to prompts whose first `n_trigger` are the trigger side.
fn judge_replies(
    b: Behaviour,
    prompts: &[String],
    replies: &[String],
    n_trigger: usize,
) -> Outcome {
    let ok = |i: usize| b.success(&prompts[i], &replies[i], i < n_trigger);
    Outcome {
        trigger: (0..n_trigger).map(ok).collect(),
        control: (n_trigger..replies.len()).map(ok).collect(),
    }
}

fn rate(v: &[bool]) -> f64 {
    v.iter().filter(|b| **b).count() as f64 / v.len().max(1) as f64
}

/// A report row from an outcome (intervals against unsteered filled in later).
/// `base_qa` is the unsteered model's simple-question outcome, against which the row's
/// own is compared (paired bootstrap with `seed`).
fn row(
    condition: String,
    setting: String,
    o: &Outcome,
    steered: (f64, f64),
    neutral: NeutralEffect,
    base_qa: &[bool],
    seed: u64,
) -> ConditionRow {
    let f = |v: &[bool]| v.iter().map(|b| *b as u8 as f64).collect::<Vec<f64>>();
    let simple_qa_vs_unsteered = (!neutral.simple_qa.is_empty()
        && neutral.simple_qa.len() == base_qa.len())
    .then(|| paired_difference(&f(base_qa), &f(&neutral.simple_qa), seed));
    let simple_qa_steered = (!neutral.simple_qa.is_empty())
        .then_some((neutral.simple_qa_steered, neutral.simple_qa.len()));
    ConditionRow {
        condition,
        setting,
        trigger: rate(&o.trigger),
        control: rate(&o.control),
        mean: o.mean(),
        vs_unsteered: None,
        trigger_vs_unsteered: None,
        control_vs_unsteered: None,
        steered,
        neutral_kl: neutral.kl,
        neutral_unchanged: neutral.unchanged,
        neutral_perplexity: neutral.perplexity,
        simple_qa: if neutral.simple_qa.is_empty() {
            f64::NAN
        } else {
            rate(&neutral.simple_qa)
        },
        simple_qa_vs_unsteered,
        simple_qa_steered,
    }
}

/// Per-item success on both sides.
#[derive(Clone, Debug)]
struct Outcome {
    trigger: Vec<bool>,
    control: Vec<bool>,
}

impl Outcome {
    fn mean(&self) -> f64 {
        (rate(&self.trigger) + rate(&self.control)) / 2.0
    }
}

/// The algorithms a grounded repair fits: mean difference (CAA), PCA centred on pair
/// midpoints (RepE) and a weakly regularised linear probe (a direction distinct from
/// the class-mean difference, which strong L2 converges to).
pub fn grounded_algorithms() -> AlgorithmLibrary {
    let mut lib = AlgorithmLibrary::empty();
    // The three names differ, so registration cannot fail; errors are still passed on.
    let _ = lib.register(MeanDifference::default());
    let _ = lib.register(Pca::new(PcaVariant::Center));
    // The answers of a pair ("No, …" / "Yes, …") separate perfectly at every strength,
    // so validation cannot choose one: a fixed weak L2 keeps the probe's direction
    // apart from the class-mean difference.
    let _ = lib.register(LinearProbe {
        l2: 0.01,
        l2_grid: Vec::new(),
        ..LinearProbe::default()
    });
    lib
}

fn bar(on: bool, len: usize, msg: &'static str) -> Progress {
    Progress::new(len as u64, msg, on)
}

/// Repair an issue of a generation-judged family from samples with trigger labels.
pub fn repair<B: Backend>(
    lm: &LoadedModel<B>,
    issue: &str,
    name: &str,
    behaviour: Behaviour,
    samples: &[SteerSample],
    algorithms: &AlgorithmLibrary,
    config: &GroundedConfig,
) -> Result<GroundedRepair> {
    let mut timings = Vec::new();
    let t = Instant::now();
    let sp = split(samples, config.sizes, config.seed)?;
    let n_layers = lm.model.config().num_hidden_layers;
    for b in &config.bands {
        if b.is_empty() || b.iter().any(|&l| l >= n_layers) {
            return Err(CoreError::InvalidInput(format!(
                "band {b:?} is empty or outside the model's {n_layers} blocks"
            )));
        }
    }
    // 1. Vectors from the trigger side's contrast pairs (read at the answer's last token).
    let mut layers: Vec<usize> = config.bands.iter().flatten().copied().collect();
    layers.sort();
    layers.dedup();
    let points: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::resid_post(l)).collect();
    let (fit_train, fit_val): (Vec<&SteerSample>, Vec<&SteerSample>) = match config.fit_pairs {
        FitPairs::Trigger => (sp.train.0.clone(), sp.val.0.clone()),
        FitPairs::Both => (
            sp.train.0.iter().chain(&sp.train.1).copied().collect(),
            sp.val.0.iter().chain(&sp.val.1).copied().collect(),
        ),
    };
    let train = contrast_split_read(lm, &fit_train, &points, config.batch, config.reading)?;
    let val_pairs = contrast_split_read(lm, &fit_val, &points, config.batch, config.reading)?;
    let acts = ContrastActivations::new(train).with_validation(val_pairs);
    let mut vectors: Vec<SteeringVector> = Vec::new();
    for o in algorithms.fit_all(&acts) {
        match o.result {
            Ok(v) if v.site == Site::ResidPost => vectors.push(v),
            Ok(v) => tracing::warn!(algorithm = %v.algorithm, "not a resid_post vector; skipped"),
            Err(e) => tracing::warn!(algorithm = %o.name, error = %e, "fit failed"),
        }
    }
    if vectors.is_empty() {
        return Err(CoreError::InvalidInput(
            "no algorithm produced a vector".into(),
        ));
    }
    timings.push(("activations + fit".into(), t.elapsed().as_secs_f64()));

    // 2. Gates on the prompts' representations (train fits, validation picks L2).
    let t = Instant::now();
    let mut gate_layers: Vec<usize> = config
        .gate_layers
        .iter()
        .copied()
        .filter(|&g| g < n_layers)
        .collect();
    gate_layers.sort();
    gate_layers.dedup();
    let gpoints: Vec<HookPoint> = gate_layers
        .iter()
        .map(|&l| HookPoint::resid_post(l))
        .collect();
    // Each gate layer reads the last prompt token or the mean of the prompt's last few
    // tokens, whichever gate is more accurate on the held-out items (ties: fewer
    // tokens). Measured on claims' train/validation split (2026-12-02): block 14, last
    // token 0.675, mean of the last 8 tokens 0.762; false premises: 0.825 and 0.812.
    let mut poolings: Vec<usize> = config.gate_pooling.iter().map(|n| (*n).max(1)).collect();
    poolings.sort();
    poolings.dedup();
    if poolings.is_empty() {
        poolings.push(1);
    }
    let reps = |s: &[&SteerSample]| {
        crate::representations::pooled_prompt_representations(
            lm,
            s,
            &gpoints,
            &poolings,
            config.batch,
        )
    };
    let (rt_all, rc_all) = (reps(&sp.train.0)?, reps(&sp.train.1)?);
    let (vt_all, vc_all) = (reps(&sp.val.0)?, reps(&sp.val.1)?);
    let ns = neutral_splits(config)?;
    let (nr_all, nv_all) = (
        reps(&ns.gate_train.iter().collect::<Vec<_>>())?,
        reps(&ns.budget.iter().collect::<Vec<_>>())?,
    );
    // The gate's strength is chosen on the issue's own held-out sides (`vc`: neutral
    // prompts are easy to tell apart and would hide a gate that cannot tell true from
    // false); the held-out neutral prompts (`nv`) check the out-of-scope budget. The
    // neutral prompts join the training control side (CAST's "other" class).
    let mut gates: BTreeMap<usize, Gate> = BTreeMap::new();
    let mut pooling_of: BTreeMap<HookPoint, usize> = BTreeMap::new();
    for (&g, p) in gate_layers.iter().zip(&gpoints) {
        let mut best: Option<(usize, Gate)> = None;
        for &n in &poolings {
            let key = (*p, n);
            let control: Vec<Vec<f32>> =
                rc_all[&key].iter().chain(&nr_all[&key]).cloned().collect();
            match Gate::fit(
                &rt_all[&key],
                &control,
                &vt_all[&key],
                &vc_all[&key],
                &config.gate,
            ) {
                Ok(gate) => {
                    tracing::info!(
                        layer = g,
                        pooled_tokens = n,
                        accuracy = gate.held_out_accuracy,
                        l2 = gate.l2,
                        "gate"
                    );
                    if best
                        .as_ref()
                        .is_none_or(|(_, b)| gate.held_out_accuracy > b.held_out_accuracy)
                    {
                        best = Some((n, gate));
                    }
                }
                Err(e) => {
                    tracing::warn!(layer = g, pooled_tokens = n, error = %e, "gate fit failed")
                }
            }
        }
        match best {
            Some((n, gate)) => {
                pooling_of.insert(*p, n);
                gates.insert(g, gate);
            }
            None => {
                pooling_of.insert(*p, poolings[0]);
            }
        }
    }
    // The representations every later step reads: each gate layer's chosen pooling.
    let chosen =
        |all: &BTreeMap<(HookPoint, usize), Vec<Vec<f32>>>| -> BTreeMap<HookPoint, Vec<Vec<f32>>> {
            gpoints
                .iter()
                .map(|p| (*p, all[&(*p, pooling_of[p])].clone()))
                .collect()
        };
    let (rt, rc, vt, vc, nr, nv) = (
        chosen(&rt_all),
        chosen(&rc_all),
        chosen(&vt_all),
        chosen(&vc_all),
        chosen(&nr_all),
        chosen(&nv_all),
    );
    // The issue's own items (both sides): the scope gate's positive class.
    let in_scope_train: BTreeMap<HookPoint, Vec<Vec<f32>>> = gpoints
        .iter()
        .map(|p| (*p, rt[p].iter().chain(&rc[p]).cloned().collect()))
        .collect();
    // Scope gates: the issue's items (either side) against neutral prompts, so that a
    // router which also steers the control side the other way never touches inputs
    // outside the issue.
    let mut scopes: BTreeMap<usize, Gate> = BTreeMap::new();
    for (&g, p) in gate_layers.iter().zip(&gpoints) {
        let val_in: Vec<Vec<f32>> = vt[p].iter().chain(&vc[p]).cloned().collect();
        let val_out = nv.get(p).cloned().unwrap_or_default();
        match Gate::fit(&in_scope_train[p], &nr[p], &val_in, &val_out, &config.gate) {
            Ok(scope) => {
                tracing::info!(layer = g, accuracy = scope.held_out_accuracy, "scope gate");
                scopes.insert(g, scope);
            }
            Err(e) => tracing::warn!(layer = g, error = %e, "scope gate fit failed"),
        }
    }
    // Whether each scope gate opens for the validation items and the budget prompts.
    let mut vscope: BTreeMap<usize, ScopeOpens> = BTreeMap::new();
    for (g, scope) in &scopes {
        let p = HookPoint::resid_post(*g);
        let f = |rows: &[Vec<f32>]| -> Result<Vec<bool>> {
            rows.iter()
                .map(|r| scope.fires(r).map_err(CoreError::from))
                .collect()
        };
        vscope.insert(
            *g,
            (
                f(&vt[&p])?,
                f(&vc[&p])?,
                f(nv.get(&p).map(|v| v.as_slice()).unwrap_or(&[]))?,
            ),
        );
    }
    // Gate probabilities of every validation item, per gate layer.
    let mut vprob: BTreeMap<usize, (Vec<f32>, Vec<f32>)> = BTreeMap::new();
    let mut nprob: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    for (g, gate) in &gates {
        let p = HookPoint::resid_post(*g);
        let f = |rows: &[Vec<f32>]| -> Result<Vec<f32>> {
            rows.iter()
                .map(|r| gate.probability(r).map_err(CoreError::from))
                .collect()
        };
        vprob.insert(*g, (f(&vt[&p])?, f(&vc[&p])?));
        nprob.insert(*g, f(nv.get(&p).map(|v| v.as_slice()).unwrap_or(&[]))?);
    }
    timings.push(("gates".into(), t.elapsed().as_secs_f64()));
    // The gate a band is gated by: the most accurate on held-out items among those that
    // read before it (the earlier on ties). Chosen by the gate's own accuracy, a
    // continuous reading of every validation item, rather than by which gate layer's
    // replies happened to score best: a joint choice of gate layer, threshold, strategy,
    // band and coefficient on a few dozen replies per side chose a 0.60-accurate gate
    // over a 0.70 one (claims, 2026-12-02) and lost on the test split.
    let gate_before = |band0: usize| -> Option<usize> {
        gates
            .iter()
            .filter(|(g, _)| **g < band0)
            .fold(None, |best: Option<(usize, f64)>, (g, gate)| match best {
                Some((_, a)) if a >= gate.held_out_accuracy => best,
                _ => Some((*g, gate.held_out_accuracy)),
            })
            .map(|(g, _)| g)
    };

    // 3. Validation sweep by generation: unsteered once, then every strategy × band ×
    //    coefficient always steering; gated outcomes follow from the two without
    //    generating again.
    let t = Instant::now();
    let (val_prompts, nv, val_text) = side_prompts(&sp.val);
    let judge = |texts: &[String]| judge_replies(behaviour, &val_text, texts, nv);
    let sweep_replies = |steering: Steering<'_>| {
        greedy_replies(
            lm,
            &val_prompts,
            steering,
            config.sweep_tokens,
            config.batch,
        )
        .map(|r| r.0)
    };
    let base_texts = sweep_replies(Steering::None)?;
    let base = judge(&base_texts);
    let cells = vectors.len() * config.bands.len() * config.coefficients.len();
    let pb = bar(config.progress, cells, "validating band × coefficient");
    let mut sweep = Vec::new();
    // (gated mean, strategy, gate layer, threshold)
    let mut best_gated: Option<(f64, Strategy, usize, f32, Outcome)> = None;
    let mut best_single: BTreeMap<String, (f64, Strategy)> = BTreeMap::new();
    for v in &vectors {
        for band in &config.bands {
            for &c in &config.coefficients {
                let s = Strategy::new(name, v, band, c)?;
                let plan = s.plan();
                let steered = judge(&sweep_replies(Steering::Fixed(&plan))?);
                let always = steered.mean();
                if best_single
                    .get(&v.algorithm)
                    .is_none_or(|(m, _)| always > *m)
                {
                    best_single.insert(v.algorithm.clone(), (always, s.clone()));
                }
                let mut cell_gated = f64::NEG_INFINITY;
                for (&g, (pt, pc)) in &vprob {
                    if gate_before(band[0]) != Some(g) {
                        continue;
                    }
                    for &tau in &config.thresholds {
                        let neutral = &nprob[&g];
                        let neutral_share = neutral.iter().filter(|p| **p > tau).count() as f64
                            / neutral.len().max(1) as f64;
                        if neutral_share > config.out_of_scope_budget {
                            continue;
                        }
                        let pick = |p: &[f32], st: &[bool], b: &[bool]| -> Vec<bool> {
                            p.iter()
                                .zip(st.iter().zip(b))
                                .map(|(p, (s, b))| if *p > tau { *s } else { *b })
                                .collect()
                        };
                        let o = Outcome {
                            trigger: pick(pt, &steered.trigger, &base.trigger),
                            control: pick(pc, &steered.control, &base.control),
                        };
                        let m = o.mean();
                        cell_gated = cell_gated.max(m);
                        // Ties keep the earlier (lower coefficient, higher threshold
                        // comes later, so prefer strictly better only).
                        if best_gated.as_ref().is_none_or(|b| m > b.0) {
                            best_gated = Some((m, s.clone(), g, tau, o.clone()));
                        }
                    }
                }
                sweep.push(SweepCell {
                    algorithm: v.algorithm.clone(),
                    band: band.clone(),
                    coefficient: c,
                    trigger: rate(&steered.trigger),
                    control: rate(&steered.control),
                    gated: cell_gated,
                });
                pb.inc(1);
            }
        }
    }
    pb.finish_and_clear();
    timings.push(("validation sweep".into(), t.elapsed().as_secs_f64()));
    let (best_mean, gated_strategy, mut gate_layer, mut tau, gated_outcome) = best_gated
        .ok_or_else(|| {
            CoreError::InvalidInput(
                "no gate layer precedes any band: give gate layers before the bands".into(),
            )
        })?;

    // 3b. Steering the other way where the gate stays shut: for the chosen strategy,
    //     validation replies with a negative share of its coefficient, then every gate
    //     layer × threshold × share again, with the scope gate keeping neutral inputs
    //     out. A share is kept only if it beats leaving those inputs alone by more than
    //     the validation split's noise.
    let t = Instant::now();
    let mut below = 0.0f32;
    let mut best = best_mean;
    if !config.below_shares.is_empty() && !scopes.is_empty() {
        let band0 = gated_strategy
            .vector
            .layers
            .keys()
            .next()
            .copied()
            .unwrap_or(0);
        let steered = judge(&sweep_replies(Steering::Fixed(&gated_strategy.plan()))?);
        for &k in &config.below_shares {
            let plan = gated_strategy.plan_weighted(k);
            let reversed = judge(&sweep_replies(Steering::Fixed(&plan))?);
            for (&g, (pt, pc)) in &vprob {
                let Some((st, sc, sn)) = vscope.get(&g) else {
                    continue;
                };
                if gate_before(band0) != Some(g) {
                    continue;
                }
                for &t_ in &config.thresholds {
                    let neutral = &nprob[&g];
                    let steered_neutral = neutral.iter().zip(sn).filter(|(_, open)| **open).count()
                        as f64
                        / neutral.len().max(1) as f64;
                    if steered_neutral > config.out_of_scope_budget {
                        continue;
                    }
                    let pick = |p: &[f32], open: &[bool], s: &[bool], r: &[bool], b: &[bool]| {
                        (0..p.len())
                            .map(|i| match (open[i], p[i] > t_) {
                                (true, true) => s[i],
                                (true, false) => r[i],
                                (false, _) => b[i],
                            })
                            .collect::<Vec<bool>>()
                    };
                    let o = Outcome {
                        trigger: pick(pt, st, &steered.trigger, &reversed.trigger, &base.trigger),
                        control: pick(pc, sc, &steered.control, &reversed.control, &base.control),
                    };
                    // Kept only when its gain over the gate alone is beyond validation
                    // noise: the paired bootstrap's lower bound must be above 0.
                    let gain = paired_sides(
                        &gated_outcome.trigger,
                        &o.trigger,
                        &gated_outcome.control,
                        &o.control,
                        config.seed,
                    );
                    if o.mean() > best && gain.low > 0.0 {
                        best = o.mean();
                        (gate_layer, tau, below) = (g, t_, k);
                    }
                }
            }
        }
        tracing::info!(
            share = below,
            mean = best,
            "steering the other way below the gate"
        );
    }
    timings.push(("reverse share".into(), t.elapsed().as_secs_f64()));

    // 4. The library: every single strategy at its best always-on setting, plus the
    //    gated one (its own entry when its setting differs), and the router.
    let fingerprint = ModelFingerprint::of(lm)?;
    let mut library = StrategyLibrary::new(fingerprint, config.seed);
    library.issues.push(IssueRecord {
        name: name.to_string(),
        description: issue.to_string(),
        sample_set_hash: samples_hash(samples),
        samples: samples.len(),
    });
    let singles: Vec<Strategy> = best_single.into_values().map(|(_, s)| s).collect();
    let mut routed = gated_strategy;
    routed.name = format!("{}/gated", routed.name);
    library.add_strategies(singles.clone());
    library.add_strategies(vec![routed.clone()]);
    let gate = gates
        .get(&gate_layer)
        .cloned()
        .ok_or_else(|| CoreError::InvalidInput("the chosen gate is missing".into()))?
        .with_threshold(tau);
    let gate_accuracy = gate.held_out_accuracy;
    let pooled_tokens = pooling_of
        .get(&HookPoint::resid_post(gate_layer))
        .copied()
        .unwrap_or(1);
    let router = GateRouter {
        point: HookPoint::resid_post(gate_layer),
        gate,
        strategy: routed.name.clone(),
        graded: false,
        pooled_tokens,
        scope: (below != 0.0)
            .then(|| scopes.get(&gate_layer).cloned())
            .flatten(),
        below,
    };
    // 4b. Strength that depends on the input: the same gate with the coefficient
    //     scaled by the gate's certainty, against the whole coefficient, both run on
    //     the validation split; the graded rule is kept when its mean is higher.
    let t = Instant::now();
    let hard_router = Router::Gate(router.clone());
    let graded_router = Router::Gate(GateRouter {
        graded: true,
        ..router
    });
    hard_router.check(&library.strategies)?;
    let validate = |r: &Router| -> crate::Result<f64> {
        let steering = Steering::Routed {
            router: r,
            strategies: &library.strategies,
        };
        let texts = crate::eval::greedy_replies_given(
            lm,
            &val_prompts,
            steering,
            &base_texts,
            config.sweep_tokens,
            config.batch,
        )?
        .0;
        Ok(judge(&texts).mean())
    };
    let (hard_mean, graded_mean) = (validate(&hard_router)?, validate(&graded_router)?);
    let graded = graded_mean > hard_mean;
    tracing::info!(
        hard_mean,
        graded_mean,
        graded,
        "strength rule on validation"
    );
    timings.push(("strength rule".into(), t.elapsed().as_secs_f64()));
    let (router, other_router) = if graded {
        (graded_router, hard_router)
    } else {
        (hard_router, graded_router)
    };
    library.router = Some(router.clone());

    // 5. The test split: unsteered, each single strategy, adaptive (gated, decided in
    //    the prefill pass), and the per-sample oracle.
    let t = Instant::now();
    let (test_prompts, nt, test_text) = side_prompts(&sp.test);
    let judge_t = |texts: &[String]| judge_replies(behaviour, &test_text, texts, nt);
    let neutral = Neutral::new(lm, &ns.test, config)?;
    let pb = bar(
        config.progress,
        singles.len() + 2,
        "evaluating on the test split",
    );
    let mut records = Vec::new();
    let mut record = |condition: &str, texts: &[String]| {
        for (i, t) in texts.iter().enumerate() {
            let trigger = i < nt;
            records.push(ReplyRecord {
                condition: condition.to_string(),
                prompt: test_text[i].clone(),
                trigger,
                reply: t.clone(),
                success: behaviour.success(&test_text[i], t, trigger),
            });
        }
    };
    let test_replies = |steering: Steering<'_>| {
        greedy_replies(lm, &test_prompts, steering, config.max_tokens, config.batch)
    };
    let base_texts = test_replies(Steering::None)?.0;
    record("unsteered", &base_texts);
    let base_t = judge_t(&base_texts);
    pb.inc(1);
    let mut rows = Vec::new();
    rows.push(row(
        "unsteered".into(),
        "–".into(),
        &base_t,
        (0.0, 0.0),
        NeutralEffect {
            kl: 0.0,
            unchanged: 1.0,
            perplexity: neutral.base_perplexity,
            steered: 0,
            simple_qa: neutral.base_qa.clone(),
            simple_qa_steered: 0,
        },
        &neutral.base_qa,
        config.seed,
    ));
    let mut single_outcomes = Vec::new();
    for s in &singles {
        let plan = s.plan();
        let texts = test_replies(Steering::Fixed(&plan))?.0;
        record(&s.vector.algorithm, &texts);
        let o = judge_t(&texts);
        let effect = neutral.effect(lm, Steering::Fixed(&plan), config)?;
        let mut r = row(
            s.vector.algorithm.clone(),
            setting_of(s),
            &o,
            (1.0, 1.0),
            effect,
            &neutral.base_qa,
            config.seed,
        );
        compare_to_unsteered(&mut r, &base_t, &o, config.seed);
        rows.push(r);
        single_outcomes.push(o);
        pb.inc(1);
    }
    // Adaptive conditions: the chosen router, the same gate with strength that depends
    // on the input (reported beside it), and — when the router also steers the other
    // way below its threshold — the gate alone, to show what that part adds.
    let mut routers: Vec<(&str, String, Router)> = vec![(
        "MASteer adaptive (gate)",
        format!(
            "{} at {}, gate {}{} > {:.2}{}{}",
            routed.vector.algorithm,
            setting_of(&routed),
            router.point(),
            if pooled_tokens > 1 {
                format!(" (mean of the last {pooled_tokens} tokens)")
            } else {
                String::new()
            },
            tau,
            if below != 0.0 {
                format!(", {below:+.1}× below it (in scope)")
            } else {
                String::new()
            },
            if graded {
                ", graded strength (½ at the threshold … 1 at certainty)"
            } else {
                ""
            }
        ),
        router.clone(),
    )];
    routers.push(if graded {
        (
            "same gate, whole strength",
            "as above, the whole coefficient above the threshold".into(),
            other_router,
        )
    } else {
        (
            "same gate, graded strength",
            "as above, × (½ at the threshold … 1 at certainty) above it".into(),
            other_router,
        )
    });
    if below != 0.0 {
        if let Router::Gate(g) = &router {
            routers.push((
                "gate only (nothing below it)",
                "as the adaptive row, inputs below the threshold unsteered".into(),
                Router::Gate(GateRouter {
                    scope: None,
                    below: 0.0,
                    ..g.clone()
                }),
            ));
        }
    }
    let mut adaptive = None;
    let mut oos = ((0, 0), (0, 0));
    for (k, (label, setting, r)) in routers.iter().enumerate() {
        let steering = Steering::Routed {
            router: r,
            strategies: &library.strategies,
        };
        let (texts, steered) = crate::eval::greedy_replies_given(
            lm,
            &test_prompts,
            steering,
            &base_texts,
            config.max_tokens,
            config.batch,
        )?;
        record(label, &texts);
        let o = judge_t(&texts);
        let effect = neutral.effect(lm, steering, config)?;
        if k == 0 {
            let n = neutral.prompts.len();
            oos = (
                (effect.steered, n),
                ((effect.unchanged * n as f64).round() as usize, n),
            );
        }
        let mut row_k = row(
            (*label).into(),
            setting.clone(),
            &o,
            (rate(&steered[..nt]), rate(&steered[nt..])),
            effect,
            &neutral.base_qa,
            config.seed,
        );
        compare_to_unsteered(&mut row_k, &base_t, &o, config.seed);
        rows.push(row_k);
        if k == 0 {
            adaptive = Some(o);
        }
    }
    pb.finish_and_clear();
    let (oos_steered, oos_unchanged) = oos;
    let adaptive = adaptive.ok_or_else(|| CoreError::InvalidInput("no adaptive row".into()))?;
    let best_single_idx = single_outcomes
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.mean().total_cmp(&b.1.mean()))
        .map(|(i, _)| i);
    let adaptive_vs_best_single = best_single_idx.map(|i| {
        let o = &single_outcomes[i];
        paired_sides(
            &o.trigger,
            &adaptive.trigger,
            &o.control,
            &adaptive.control,
            config.seed,
        )
    });
    let oracle = Outcome {
        trigger: (0..nt)
            .map(|i| base_t.trigger[i] || single_outcomes.iter().any(|o| o.trigger[i]))
            .collect(),
        control: (0..base_t.control.len())
            .map(|i| base_t.control[i] || single_outcomes.iter().any(|o| o.control[i]))
            .collect(),
    };
    rows.push(row(
        "per-sample oracle".into(),
        "best of unsteered and each single strategy, per item".into(),
        &oracle,
        (f64::NAN, f64::NAN),
        NeutralEffect {
            kl: f64::NAN,
            unchanged: f64::NAN,
            perplexity: f64::NAN,
            steered: 0,
            simple_qa: Vec::new(),
            simple_qa_steered: 0,
        },
        &neutral.base_qa,
        config.seed,
    ));
    timings.push(("test evaluation".into(), t.elapsed().as_secs_f64()));

    Ok(GroundedRepair {
        library,
        report: GroundedReport {
            issue: issue.to_string(),
            behaviour,
            rows,
            adaptive_vs_best_single,
            sweep,
            gate_accuracy,
            gate_point: router.point(),
            gate_pooled_tokens: pooled_tokens,
            out_of_scope_steered: oos_steered,
            out_of_scope_unchanged: oos_unchanged,
            sizes: config.sizes,
            timings,
            replies: records,
        },
    })
}

/// Re-measure a saved library on the test split of `samples`: unsteered against the
/// library's adaptive steering, with paired-bootstrap intervals and the out-of-scope
/// effect. `config` must be the one the library was repaired with (its sizes and seed
/// define the split), so that no test item was used for fitting or selection.
pub fn evaluate<B: Backend>(
    lm: &LoadedModel<B>,
    library: &StrategyLibrary,
    behaviour: Behaviour,
    samples: &[SteerSample],
    config: &GroundedConfig,
) -> Result<Vec<ConditionRow>> {
    let sp = split(samples, config.sizes, config.seed)?;
    let (prompts, nt, text) = side_prompts(&sp.test);
    let ns = neutral_splits(config)?;
    let neutral = Neutral::new(lm, &ns.test, config)?;
    let adaptive_steering = Steering::by_library(library)?;
    let mut rows = Vec::new();
    let mut base = None;
    let mut unsteered: Option<Vec<String>> = None;
    let pb = bar(config.progress, 2, "evaluating unsteered and adaptive");
    for (label, steering) in [
        ("unsteered", Steering::None),
        ("MASteer adaptive", adaptive_steering),
    ] {
        let (texts, steered) = match &unsteered {
            None => greedy_replies(lm, &prompts, steering, config.max_tokens, config.batch)?,
            Some(u) => crate::eval::greedy_replies_given(
                lm,
                &prompts,
                steering,
                u,
                config.max_tokens,
                config.batch,
            )?,
        };
        if unsteered.is_none() {
            unsteered = Some(texts.clone());
        }
        let o = judge_replies(behaviour, &text, &texts, nt);
        let effect = neutral.effect(lm, steering, config)?;
        let mut r = row(
            label.into(),
            String::new(),
            &o,
            (rate(&steered[..nt]), rate(&steered[nt..])),
            effect,
            &neutral.base_qa,
            config.seed,
        );
        match &base {
            None => base = Some(o),
            Some(b) => compare_to_unsteered(&mut r, b, &o, config.seed),
        }
        rows.push(r);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(rows)
}

/// The neutral material of a repair, in disjoint parts.
struct NeutralSplits {
    /// Added to the gate's control side: the first bundled everyday requests and as
    /// many MMLU questions (two styles of input outside every issue).
    gate_train: Vec<SteerSample>,
    /// Everyday requests that check the out-of-scope budget on validation.
    budget: Vec<SteerSample>,
    /// The last everyday requests: the report's out-of-scope measurements.
    test: Vec<SteerSample>,
}

fn neutral_splits(config: &GroundedConfig) -> Result<NeutralSplits> {
    use masteer_datagen::{corpora, formats::caa, formats::neutral};
    let all = neutral::bundled_prompts()?;
    let (a, b) = config.neutral_controls;
    let t = config.out_of_scope;
    if a + b + t > all.len() {
        return Err(CoreError::InvalidInput(format!(
            "{a} + {b} + {t} neutral prompts asked for, {} bundled",
            all.len()
        )));
    }
    let mut gate_train = all[..a].to_vec();
    let mmlu = caa::load_prompt_ab(&corpora::caa_test("mmlu"), "mmlu")?;
    gate_train.extend(mmlu.into_iter().take(a));
    Ok(NeutralSplits {
        gate_train,
        budget: all[a..a + b].to_vec(),
        test: all[all.len() - t..].to_vec(),
    })
}

fn setting_of(s: &Strategy) -> String {
    format!(
        "layers {:?} × {}",
        s.vector.layers.keys().collect::<Vec<_>>(),
        s.coefficient
    )
}

fn samples_hash(samples: &[SteerSample]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for s in samples {
        h.update(serde_json::to_vec(s).unwrap_or_default());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_reached_from_its_routing_examples() {
        for b in Behaviour::ALL {
            let routed = masteer_datagen::retriever::ROUTING_EXAMPLES
                .iter()
                .filter(|(_, source)| Behaviour::for_source(source) == Some(b))
                .count();
            assert!(routed >= 2, "{b:?}: {routed} routing examples");
        }
    }

    #[test]
    fn each_family_has_enough_items_per_side_for_its_full_budget() {
        for b in Behaviour::ALL {
            let samples = b.bundled_samples().unwrap();
            let s = b.config(false).sizes;
            let need = s.train + s.validation + s.test;
            for side in [true, false] {
                let n = samples.iter().filter(|x| x.trigger == Some(side)).count();
                assert!(n >= need, "{b:?} side {side}: {n} items, {need} needed");
            }
        }
    }
}
