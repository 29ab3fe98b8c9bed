//! `SteerSample`: one contrast pair — a prompt with a wanted (positive) and an
//! unwanted (negative) answer — with where it came from and how it was reviewed.

use masteer_types::ChatMessage;
use serde::{Deserialize, Serialize};

/// The form of a pair's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// Both options are in the prompt; the answers are letters such as `(A)` and `(B)`
    /// (CAA's format). Activations are read at the letter.
    AbChoice,
    /// The answers are free text.
    FreeText,
}

/// Where a sample came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The dataset, or the role that produced it (`writer`, `caa/sycophancy`...).
    pub source: String,
    /// The text generator that wrote it, if any (`smollm2-135m`, `http:gpt-4o`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// The seed sample it was derived from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
}

/// A reviewer's verdict on a sample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewVerdict {
    /// Whether the sample was accepted.
    pub accepted: bool,
    /// Why it was rejected (empty when accepted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

/// One contrast pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SteerSample {
    /// Unique id within its set.
    pub id: String,
    /// The conversation up to the answer (usually one user message).
    pub prompt: Vec<ChatMessage>,
    /// A different conversation for the negative answer (RepE-style persona pairs,
    /// where the prompts differ and the answers agree); `None` when both share `prompt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<Vec<ChatMessage>>,
    /// The wanted answer.
    pub positive: String,
    /// The unwanted answer.
    pub negative: String,
    /// A/B choice or free text.
    pub kind: SampleKind,
    /// Where it came from.
    #[serde(default)]
    pub provenance: Provenance,
    /// The review, when one ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewVerdict>,
    /// Whether the prompt is one where steering is wanted (CAST's condition label):
    /// `Some(true)` for an input showing the problem (a false claim, a harmful
    /// request), `Some(false)` for a look-alike where the model must be left alone (a
    /// true claim, a safe request), `None` when unknown. Gates are fitted on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<bool>,
}

impl SteerSample {
    /// A single-turn sample.
    pub fn new(
        id: impl Into<String>,
        user: impl Into<String>,
        positive: impl Into<String>,
        negative: impl Into<String>,
        kind: SampleKind,
    ) -> Self {
        SteerSample {
            id: id.into(),
            prompt: vec![ChatMessage::user(user)],
            negative_prompt: None,
            positive: positive.into(),
            negative: negative.into(),
            kind,
            provenance: Provenance::default(),
            review: None,
            trigger: None,
        }
    }

    /// A single-turn free-text contrast pair taken from `source`, on the trigger side
    /// (`true`: the input needs steering) or the control side (`false`: it must not
    /// change): the shape every bundled free-text family builds.
    pub fn free_text_pair(
        id: impl Into<String>,
        user: impl Into<String>,
        positive: impl Into<String>,
        negative: impl Into<String>,
        source: &str,
        trigger: bool,
    ) -> Self {
        let mut s = SteerSample::new(id, user, positive, negative, SampleKind::FreeText);
        s.provenance.source = source.to_string();
        s.trigger = Some(trigger);
        s
    }

    /// The conversation the negative answer follows.
    pub fn negative_conversation(&self) -> &[ChatMessage] {
        self.negative_prompt.as_deref().unwrap_or(&self.prompt)
    }

    /// The text of every prompt message, one per line (for review, dedup and display).
    pub fn prompt_text(&self) -> String {
        self.prompt
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The letter inside an A/B answer such as `(A)`, if the answer has that form.
    pub fn letter(answer: &str) -> Option<char> {
        let t = answer.trim();
        let inner = t.strip_prefix('(')?.strip_suffix(')')?;
        let mut chars = inner.chars();
        let c = chars.next()?;
        (chars.next().is_none() && c.is_ascii_uppercase()).then_some(c)
    }
}
