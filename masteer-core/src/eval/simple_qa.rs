//! Capability kept, where a small model can show damage: greedy replies to simple
//! questions with checkable short answers (the bundled `simple_qa` set: capitals,
//! languages, everyday facts), right when they contain an accepted answer.

use burn::tensor::backend::Backend;
use masteer_datagen::formats::simple_qa::{self, SimpleQuestion};
use masteer_models::{ChatMessage, LoadedModel};

use crate::error::Result;
use crate::eval::{greedy_replies, greedy_replies_given, Steering};

/// The first `n` bundled questions taken in turn from each category (capital, fact,
/// language), so that any `n` mixes them evenly.
pub fn bundled(n: usize) -> Result<Vec<SimpleQuestion>> {
    let all =
        simple_qa::load(&masteer_datagen::corpora::data_dir().join("simple_qa/simple_qa.jsonl"))?;
    let mut by_cat: Vec<(String, std::collections::VecDeque<SimpleQuestion>)> = Vec::new();
    for q in all {
        match by_cat.iter_mut().find(|(c, _)| *c == q.category) {
            Some((_, v)) => v.push_back(q),
            None => by_cat.push((q.category.clone(), [q].into())),
        }
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n && by_cat.iter().any(|(_, v)| !v.is_empty()) {
        for (_, v) in by_cat.iter_mut() {
            if out.len() < n {
                if let Some(q) = v.pop_front() {
                    out.push(q);
                }
            }
        }
    }
    Ok(out)
}

/// Per question, whether the greedy reply (at most `max_tokens`) under `steering`
/// contains an accepted answer.
pub fn answered<B: Backend>(
    lm: &LoadedModel<B>,
    questions: &[SimpleQuestion],
    steering: Steering<'_>,
    max_tokens: usize,
    batch: usize,
) -> Result<Vec<bool>> {
    Ok(judged(
        questions,
        &replies(lm, questions, steering, max_tokens, batch)?,
    ))
}

/// Per question, whether its reply contains an accepted answer.
pub fn judged(questions: &[SimpleQuestion], replies: &[String]) -> Vec<bool> {
    questions
        .iter()
        .zip(replies)
        .map(|(q, r)| q.is_answered_by(r))
        .collect()
}

/// The questions as one-turn conversations.
fn conversations(questions: &[SimpleQuestion]) -> Vec<Vec<ChatMessage>> {
    questions
        .iter()
        .map(|q| vec![ChatMessage::user(q.question.clone())])
        .collect()
}

/// The greedy replies (at most `max_tokens`) to the questions under `steering`.
pub fn replies<B: Backend>(
    lm: &LoadedModel<B>,
    questions: &[SimpleQuestion],
    steering: Steering<'_>,
    max_tokens: usize,
    batch: usize,
) -> Result<Vec<String>> {
    let convs = conversations(questions);
    let refs: Vec<&[ChatMessage]> = convs.iter().map(|c| c.as_slice()).collect();
    Ok(greedy_replies(lm, &refs, steering, max_tokens, batch)?.0)
}

/// [`replies`] given the unsteered replies: a router's replies are generated only for
/// the questions it steers ([`crate::eval::greedy_replies_given`]). Also returns, per
/// question, whether the steering acted on it.
pub fn replies_given<B: Backend>(
    lm: &LoadedModel<B>,
    questions: &[SimpleQuestion],
    steering: Steering<'_>,
    unsteered: &[String],
    max_tokens: usize,
    batch: usize,
) -> Result<(Vec<String>, Vec<bool>)> {
    let convs = conversations(questions);
    let refs: Vec<&[ChatMessage]> = convs.iter().map(|c| c.as_slice()).collect();
    greedy_replies_given(lm, &refs, steering, unsteered, max_tokens, batch)
}
