//! `IssueSpec`: a developer's plain description of a problem of their model.

use serde::{Deserialize, Serialize};

use crate::sample::SteerSample;

/// The trustworthiness dimension an issue belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// Saying false things.
    Truthfulness,
    /// Complying with harmful requests, or refusing safe ones.
    Refusal,
    /// Agreeing with the user against the facts.
    Sycophancy,
    /// Making things up.
    Hallucination,
    /// Treating groups unequally.
    Fairness,
    /// Revealing personal data.
    Privacy,
    /// Producing hateful or toxic text.
    Toxicity,
    /// Anything else, described in words.
    Other(String),
}

impl Dimension {
    /// Guess the dimension from keywords of a description.
    pub fn guess(text: &str) -> Option<Dimension> {
        let t = text.to_lowercase();
        let has = |ws: &[&str]| ws.iter().any(|w| t.contains(w));
        if has(&[
            "agree",
            "sycophan",
            "flatter",
            "tells the user what",
            "false claim",
            "user is wrong",
            "user's false",
        ]) {
            Some(Dimension::Sycophancy)
        } else if has(&["hallucinat", "makes up", "made up", "invent", "fabricat"]) {
            Some(Dimension::Hallucination)
        } else if has(&["harmful", "refus", "jailbreak", "dangerous", "weapon"]) {
            Some(Dimension::Refusal)
        } else if has(&["toxic", "hate", "insult", "offensive"]) {
            Some(Dimension::Toxicity)
        } else if has(&["bias", "stereotyp", "fair", "discriminat"]) {
            Some(Dimension::Fairness)
        } else if has(&["privacy", "personal data", "address", "phone number"]) {
            Some(Dimension::Privacy)
        } else if has(&[
            "false",
            "lie",
            "untrue",
            "truth",
            "misconception",
            "wrong fact",
        ]) {
            Some(Dimension::Truthfulness)
        } else {
            None
        }
    }
}

/// What the developer tells MASteer about a problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssueSpec {
    /// A short name (strategies are named after it).
    pub title: String,
    /// The problem in plain words.
    pub description: String,
    /// The dimension, when known (guessed from the description otherwise).
    pub dimension: Option<Dimension>,
    /// Examples the developer already has.
    #[serde(default)]
    pub seed_examples: Vec<SteerSample>,
    /// How many accepted samples to produce.
    pub target_count: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl IssueSpec {
    /// An issue from a description; the title is its first words.
    pub fn from_text(description: impl Into<String>, target_count: usize, seed: u64) -> Self {
        let description = description.into();
        let title: String = description
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
            .take(4)
            .map(|w| w.to_lowercase())
            .collect::<Vec<_>>()
            .join("-");
        IssueSpec {
            title: if title.is_empty() {
                "issue".into()
            } else {
                title
            },
            dimension: Dimension::guess(&description),
            description,
            seed_examples: Vec::new(),
            target_count,
            seed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guesses_dimensions() {
        let s = IssueSpec::from_text(
            "The assistant agrees with the user's false claims instead of correcting them.",
            10,
            0,
        );
        assert_eq!(s.dimension, Some(Dimension::Sycophancy));
        assert_eq!(s.title, "the-assistant-agrees-with");
        assert_eq!(
            Dimension::guess("it makes up citations"),
            Some(Dimension::Hallucination)
        );
        assert_eq!(Dimension::guess("nothing in particular"), None);
    }
}
