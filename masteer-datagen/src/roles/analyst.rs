//! The analyst role: from the issue's description, the target behaviour, its opposite
//! and a few scenarios.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::generator::TextGenerator;
use crate::pipeline::Sampling;
use crate::prompts::{field, fields, fill, Prompts};
use crate::spec::{Dimension, IssueSpec};
use masteer_types::ChatMessage;
use masteer_types::GenerateOptions;

/// What the analyst understood of the issue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// What the assistant should do.
    pub good: String,
    /// What it does wrong.
    pub bad: String,
    /// Situations where the problem shows.
    pub scenarios: Vec<String>,
    /// Whether the analysis came from the LLM (false: the dimension's template).
    pub from_llm: bool,
}

/// A template analysis for a dimension, used when no generator is given or its replies
/// cannot be parsed.
pub fn template(spec: &IssueSpec) -> Analysis {
    let (good, bad, scenarios): (&str, &str, &[&str]) = match spec.dimension {
        Some(Dimension::Sycophancy) => (
            "The assistant politely corrects the user when the user is wrong.",
            "The assistant agrees with the user's false claims.",
            &[
                "a user states a wrong arithmetic result",
                "a user shares a popular myth as fact",
                "a user insists on a wrong date in history",
            ],
        ),
        Some(Dimension::Hallucination) => (
            "The assistant says when something does not exist or is unknown.",
            "The assistant invents facts and details.",
            &[
                "a question about a fictional event",
                "a question with a false premise",
                "a request for a citation that does not exist",
            ],
        ),
        Some(Dimension::Refusal) => (
            "The assistant refuses harmful requests and helps with safe ones.",
            "The assistant complies with harmful requests.",
            &[
                "a request for dangerous instructions",
                "a request to hack an account",
                "a request to hurt someone",
            ],
        ),
        Some(Dimension::Truthfulness) => (
            "The assistant states true facts.",
            "The assistant repeats misconceptions as facts.",
            &[
                "a question about a common myth",
                "a question about health folklore",
                "a question about science trivia",
            ],
        ),
        Some(Dimension::Toxicity) | Some(Dimension::Fairness) => (
            "The assistant speaks about groups of people respectfully and without stereotypes.",
            "The assistant produces hateful or stereotyped statements.",
            &[
                "a request to describe a nationality",
                "a request to joke about a religion",
                "a question about a minority",
            ],
        ),
        _ => (
            "The assistant behaves as described in the issue.",
            "The assistant shows the problem described in the issue.",
            &["a typical user request"],
        ),
    };
    Analysis {
        good: good.into(),
        bad: bad.into(),
        scenarios: scenarios.iter().map(|s| s.to_string()).collect(),
        from_llm: false,
    }
}

/// Ask the generator (up to `retries` times, varying the seed) and parse its reply;
/// fall back to the dimension's template when no reply parses.
pub fn analyse(
    spec: &IssueSpec,
    generator: Option<&dyn TextGenerator>,
    prompts: &Prompts,
    retries: usize,
    sampling: &Sampling,
    calls: &mut usize,
) -> Result<Analysis> {
    let Some(g) = generator else {
        return Ok(template(spec));
    };
    let prompt = fill(&prompts.analyst, &[("description", &spec.description)]);
    for attempt in 0..retries.max(1) {
        *calls += 1;
        // The first try is greedy; a retry samples, so that it can differ. 160 tokens
        // hold the four labelled fields the prompt asks for.
        let seed = spec.seed.wrapping_add(attempt as u64);
        let opts = if attempt == 0 {
            GenerateOptions {
                seed,
                ..GenerateOptions::greedy(160)
            }
        } else {
            GenerateOptions::sampled(160, sampling.temperature, sampling.top_p, seed)
        };
        let reply = g.generate(&[ChatMessage::user(prompt.clone())], &opts)?;
        let (good, bad) = (field(&reply, "GOOD"), field(&reply, "BAD"));
        let scenarios = fields(&reply, "SCENARIO");
        // A small model may copy the example instead of analysing the problem.
        let copied = reply.contains("does not exist") && !spec.description.contains("exist");
        if let (Some(good), Some(bad), false) = (good, bad, copied) {
            if !scenarios.is_empty() && good != bad {
                return Ok(Analysis {
                    good,
                    bad,
                    scenarios,
                    from_llm: true,
                });
            }
        }
        tracing::debug!(attempt, reply = %reply, "analyst reply did not parse");
    }
    Ok(template(spec))
}
