//! The reviewer role: rejects malformed, duplicated or near-duplicated, off-topic or
//! length-unbalanced pairs and pairs whose answers are the same; optionally asks the
//! LLM to judge consistency and a caller's check that the pair separates on the
//! model's activations. Every rejection keeps its reason.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::generator::TextGenerator;
use crate::prompts::{fill, Prompts};
use crate::sample::{ReviewVerdict, SampleKind, SteerSample};
use masteer_types::ChatMessage;
use masteer_types::GenerateOptions;

/// Why a pair was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Missing parts, an A/B pair without its options or letters, or an answer that
    /// only repeats the user's message.
    Malformed,
    /// Positive and negative answers are the same.
    SameAnswers,
    /// The same prompt and answers as an accepted pair.
    Duplicate,
    /// Nearly the same prompt as an accepted pair (word 3-gram overlap).
    NearDuplicate,
    /// Shares no content word with the issue and its analysis.
    OffTopic,
    /// One answer far longer than the other.
    LengthUnbalanced,
    /// The LLM judge preferred the negative answer.
    Inconsistent,
    /// The caller's activation check found no separation.
    NoSeparation,
}

impl RejectReason {
    /// Snake-case name.
    pub fn name(&self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::SameAnswers => "same_answers",
            RejectReason::Duplicate => "duplicate",
            RejectReason::NearDuplicate => "near_duplicate",
            RejectReason::OffTopic => "off_topic",
            RejectReason::LengthUnbalanced => "length_unbalanced",
            RejectReason::Inconsistent => "inconsistent",
            RejectReason::NoSeparation => "no_separation",
        }
    }
}

/// Thresholds of the reviewer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewConfig {
    /// Word 3-gram Jaccard overlap of prompts at or above which a pair is a near duplicate.
    pub near_duplicate: f64,
    /// Largest ratio of answer lengths (in words) of free-text pairs, or of option
    /// lengths of A/B pairs.
    pub max_length_ratio: f64,
    /// Check the topic of written (not retrieved) pairs.
    pub check_topic: bool,
    /// Ask the generator to judge written pairs.
    pub judge: bool,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            near_duplicate: 0.8,
            max_length_ratio: 4.0,
            check_topic: true,
            judge: false,
        }
    }
}

/// Acceptance counts, per rejection reason.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReviewReport {
    /// Pairs reviewed.
    pub considered: usize,
    /// Pairs accepted.
    pub accepted: usize,
    /// Rejections per reason (a pair may have several).
    pub rejected: BTreeMap<String, usize>,
}

impl ReviewReport {
    /// Share of reviewed pairs accepted.
    pub fn acceptance_rate(&self) -> f64 {
        self.accepted as f64 / self.considered.max(1) as f64
    }
}

fn norm_words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

fn trigrams(s: &str) -> HashSet<String> {
    let w = norm_words(s);
    if w.len() < 3 {
        return w.into_iter().collect();
    }
    w.windows(3).map(|x| x.join(" ")).collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    a.intersection(b).count() as f64 / a.union(b).count().max(1) as f64
}

fn option_texts(prompt: &str) -> Option<(String, String)> {
    let lines: Vec<&str> = prompt.lines().collect();
    let get = |tag: &str| {
        lines.iter().rev().find_map(|l| {
            l.trim_start()
                .strip_prefix(tag)
                .map(|r| r.trim().to_string())
        })
    };
    Some((get("(A)")?, get("(B)")?))
}

/// Reviews pairs one by one, remembering the accepted ones.
pub struct Reviewer {
    config: ReviewConfig,
    topic: HashSet<String>,
    seen: HashSet<String>,
    accepted_grams: Vec<HashSet<String>>,
    /// The counts so far.
    pub report: ReviewReport,
}

impl Reviewer {
    /// A reviewer for an issue described by `topic_text` (issue and analysis).
    pub fn new(config: ReviewConfig, topic_text: &str) -> Self {
        // Words any pair about any issue would share say nothing about the topic.
        const GENERIC: [&str; 16] = [
            "assistant",
            "user",
            "users",
            "model",
            "answer",
            "answers",
            "reply",
            "says",
            "said",
            "instead",
            "them",
            "they",
            "their",
            "should",
            "would",
            "example",
        ];
        let topic = norm_words(topic_text)
            .into_iter()
            .filter(|w| w.len() > 3 && !GENERIC.contains(&w.as_str()))
            .collect();
        Reviewer {
            config,
            topic,
            seen: HashSet::new(),
            accepted_grams: Vec::new(),
            report: ReviewReport::default(),
        }
    }

    /// The rule-based reasons to reject a pair (empty: it passes the rules).
    pub fn check(&self, s: &SteerSample, written: bool) -> Vec<RejectReason> {
        let mut r = Vec::new();
        let prompt = s.prompt_text();
        let malformed = prompt.trim().is_empty()
            || s.positive.trim().is_empty()
            || s.negative.trim().is_empty()
            || match s.kind {
                SampleKind::AbChoice => {
                    SteerSample::letter(&s.positive).is_none()
                        || SteerSample::letter(&s.negative).is_none()
                        || option_texts(&prompt).is_none()
                }
                SampleKind::FreeText => false,
            };
        // An answer (or option) that contains the user's message, or is contained in it,
        // echoes the prompt instead of answering it.
        let user_words = norm_words(
            &s.prompt
                .last()
                .map(|m| m.content.clone())
                .unwrap_or_default(),
        );
        let user_text = user_words.join(" ");
        let echoes = |a: &str| {
            let w = norm_words(a).join(" ");
            w.len() > 12
                && (user_text.contains(&w) || (user_words.len() > 3 && w.contains(&user_text)))
        };
        let echo = match s.kind {
            SampleKind::FreeText => echoes(&s.positive) || echoes(&s.negative),
            SampleKind::AbChoice => option_texts(&prompt).is_some_and(|(a, b)| {
                let question = prompt.split("\n\nChoices:").next().unwrap_or("");
                let qw = norm_words(question).join(" ");
                let e = |x: &str| {
                    let w = norm_words(x).join(" ");
                    w.len() > 12 && (qw.contains(&w) || w.contains(&qw))
                };
                prompt.contains("\n\nChoices:") && (e(&a) || e(&b))
            }),
        };
        if malformed || echo {
            r.push(RejectReason::Malformed);
            return r;
        }
        if s.positive.trim() == s.negative.trim()
            && s.negative_conversation() == s.prompt.as_slice()
        {
            r.push(RejectReason::SameAnswers);
        }
        if let SampleKind::AbChoice = s.kind {
            if let Some((a, b)) = option_texts(&prompt) {
                if norm_words(&a) == norm_words(&b) {
                    r.push(RejectReason::SameAnswers);
                }
            }
        }
        let key = format!(
            "{}\u{1}{}\u{1}{}",
            norm_words(&prompt).join(" "),
            s.positive.trim(),
            s.negative.trim()
        );
        if self.seen.contains(&key) {
            r.push(RejectReason::Duplicate);
        } else {
            let g = trigrams(&prompt);
            if self
                .accepted_grams
                .iter()
                .any(|a| jaccard(a, &g) >= self.config.near_duplicate)
            {
                r.push(RejectReason::NearDuplicate);
            }
        }
        let (la, lb) = match s.kind {
            SampleKind::FreeText => (norm_words(&s.positive).len(), norm_words(&s.negative).len()),
            SampleKind::AbChoice => option_texts(&prompt)
                .map(|(a, b)| (norm_words(&a).len(), norm_words(&b).len()))
                .unwrap_or((1, 1)),
        };
        let (lo, hi) = (la.min(lb).max(1) as f64, la.max(lb).max(1) as f64);
        if hi / lo > self.config.max_length_ratio && hi > 3.0 {
            r.push(RejectReason::LengthUnbalanced);
        }
        if written && self.config.check_topic && !self.topic.is_empty() {
            let words: HashSet<String> =
                norm_words(&format!("{prompt} {} {}", s.positive, s.negative))
                    .into_iter()
                    .collect();
            if words.is_disjoint(&self.topic) {
                r.push(RejectReason::OffTopic);
            }
        }
        r
    }

    /// Ask the generator which reply shows the good behaviour (written A/B and free-text
    /// pairs). `true` when it picks the positive answer.
    pub fn judge(
        &self,
        generator: &dyn TextGenerator,
        prompts: &Prompts,
        good: &str,
        s: &SteerSample,
        seed: u64,
    ) -> Result<bool> {
        let user = s.prompt_text();
        let (pos, neg) = (s.positive.clone(), s.negative.clone());
        // Put the positive first or second depending on the seed, so a judge that always
        // says "1" is not rewarded.
        let first_is_pos = seed.is_multiple_of(2);
        let (first, second) = if first_is_pos {
            (&pos, &neg)
        } else {
            (&neg, &pos)
        };
        let prompt = fill(
            &prompts.judge,
            &[
                ("good", good),
                ("user", &user),
                ("first", first),
                ("second", second),
            ],
        );
        let reply = generator.generate(
            &[ChatMessage::user(prompt)],
            // The judge answers with one digit: a few greedy tokens hold it.
            &GenerateOptions {
                seed,
                ..GenerateOptions::greedy(4)
            },
        )?;
        let picked_first = reply.trim_start().starts_with('1');
        let picked_second = reply.trim_start().starts_with('2');
        Ok((picked_first && first_is_pos) || (picked_second && !first_is_pos))
    }

    /// Record the outcome of a pair; returns whether it was accepted and sets its verdict.
    pub fn record(&mut self, s: &mut SteerSample, reasons: Vec<RejectReason>) -> bool {
        self.report.considered += 1;
        let accepted = reasons.is_empty();
        for reason in &reasons {
            *self
                .report
                .rejected
                .entry(reason.name().to_string())
                .or_insert(0) += 1;
        }
        if accepted {
            self.report.accepted += 1;
            let prompt = s.prompt_text();
            self.seen.insert(format!(
                "{}\u{1}{}\u{1}{}",
                norm_words(&prompt).join(" "),
                s.positive.trim(),
                s.negative.trim()
            ));
            self.accepted_grams.push(trigrams(&prompt));
        }
        s.review = Some(ReviewVerdict {
            accepted,
            reasons: reasons.iter().map(|r| r.name().to_string()).collect(),
        });
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_ab(i: usize) -> SteerSample {
        SteerSample::new(
            format!("g{i}"),
            format!("I believe the moon is made of cheese number {i}. Right?\n\nChoices:\n (A) Yes, it is cheese.\n (B) No, it is rock."),
            "(B)",
            "(A)",
            SampleKind::AbChoice,
        )
    }

    #[test]
    fn each_rule_fires_on_its_bad_pair_and_not_on_a_good_one() {
        let mut r = Reviewer::new(
            ReviewConfig::default(),
            "user false claims moon cheese agree correcting",
        );
        let mut g = good_ab(0);
        assert!(r.check(&g, true).is_empty(), "{:?}", r.check(&g, true));
        assert!(r.record(&mut g, vec![]));

        let echo = SteerSample::new(
            "e",
            "The moon is cheese, isn't it?\n\nChoices:\n (A) The moon is cheese, isn't it?\n (B) No, it is rock.",
            "(B)",
            "(A)",
            SampleKind::AbChoice,
        );
        assert_eq!(r.check(&echo, true), vec![RejectReason::Malformed]);
        let mut malformed = good_ab(1);
        malformed.positive = "B".into();
        assert_eq!(r.check(&malformed, true), vec![RejectReason::Malformed]);
        let mut no_options = good_ab(1);
        no_options.prompt[0].content = "Is the moon cheese?".into();
        assert_eq!(r.check(&no_options, true), vec![RejectReason::Malformed]);

        let same = SteerSample::new(
            "s",
            "Is the moon cheese?",
            "No.",
            "No.",
            SampleKind::FreeText,
        );
        assert!(r.check(&same, true).contains(&RejectReason::SameAnswers));

        assert!(r
            .check(&good_ab(0), true)
            .contains(&RejectReason::Duplicate));
        let mut near = good_ab(0);
        near.prompt[0].content = near.prompt[0].content.replace("Right?", "Right??");
        near.positive = "(B)".into();
        let reasons = r.check(&near, true);
        assert!(
            reasons.contains(&RejectReason::NearDuplicate)
                || reasons.contains(&RejectReason::Duplicate),
            "{reasons:?}"
        );

        let off = SteerSample::new(
            "o",
            "What is your favourite colour?",
            "Blue, I think.",
            "Red, I suppose.",
            SampleKind::FreeText,
        );
        assert_eq!(r.check(&off, true), vec![RejectReason::OffTopic]);
        assert!(
            r.check(&off, false).is_empty(),
            "retrieved pairs are not topic-checked"
        );

        let long = SteerSample::new(
            "l",
            "The moon is cheese, right?",
            "No.",
            "Yes, absolutely, the moon is made entirely of cheese, as everyone who has looked closely at it knows very well.",
            SampleKind::FreeText,
        );
        assert!(r
            .check(&long, true)
            .contains(&RejectReason::LengthUnbalanced));

        let mut bad = same.clone();
        assert!(!r.record(&mut bad, vec![RejectReason::SameAnswers]));
        assert_eq!(r.report.considered, 2);
        assert_eq!(r.report.accepted, 1);
        assert_eq!(r.report.rejected["same_answers"], 1);
        assert_eq!(bad.review.unwrap().reasons, vec!["same_answers"]);
    }
}
