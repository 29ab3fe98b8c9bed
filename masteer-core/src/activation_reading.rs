//! Reading contrast activations of a model on steering samples.
//!
//! Each sample is rendered with the model's chat template; the positive and the
//! negative answer are appended, and activations are read at the answer's last token.
//! For A/B samples that is the closing parenthesis of `(A)`, one token after the
//! letter CAA reads at: measured on SmolLM2 (CAA hallucination, 80/40 pairs), every
//! built-in algorithm separates held-out pairs there (accuracy 1.00 at its best layer,
//! with the letter axis removed by [`GroupProjection`](masteer_algorithms::GroupProjection)),
//! while at the letter itself PCA reaches 0.73, the letter's own embedding dominating
//! the variance.
//!
//! When the two answers share a prefix and have remainders of equal length (always the
//! case for A/B letters), the prompt and the shared prefix run once and each answer's
//! remainder runs as cached steps; otherwise both full sequences run in one batch.

use burn::tensor::backend::Backend;
use masteer_algorithms::{ContrastSplit, PairedRows};
use masteer_datagen::{SampleKind, SteerSample};
use masteer_models::{CaptureSpec, HookPoint, Hooks, LoadedModel, Positions, SeqInput};
use ndarray::{Array2, Axis};

use crate::error::{CoreError, Result};

/// Group labels of the positive and negative answers of each sample (the index of the
/// A/B letter; 0 for free text), for [`GroupProjection`](masteer_algorithms::GroupProjection).
pub fn answer_groups(samples: &[&SteerSample]) -> masteer_algorithms::PairGroups {
    let g = |s: &SteerSample, a: &str| match s.kind {
        SampleKind::AbChoice => SteerSample::letter(a)
            .map(|c| c as u32 - 'A' as u32 + 1)
            .unwrap_or(0),
        SampleKind::FreeText => 0,
    };
    masteer_algorithms::PairGroups {
        positive: samples.iter().map(|s| g(s, &s.positive)).collect(),
        negative: samples.iter().map(|s| g(s, &s.negative)).collect(),
    }
}

/// The text of an answer up to the token whose activation is read.
pub fn reading_text(sample: &SteerSample, answer: &str) -> String {
    match sample.kind {
        SampleKind::AbChoice => answer.trim().to_string(),
        SampleKind::FreeText => answer.to_string(),
    }
}

/// The token ids of a sample's two sequences: `(positive prompt, positive answer,
/// negative prompt, negative answer)`, answers as read.
pub type PairTokens = (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>);

/// Tokenize a sample's two sequences (see [`PairTokens`]).
pub fn tokenize_pair<B: Backend>(lm: &LoadedModel<B>, sample: &SteerSample) -> Result<PairTokens> {
    let prompt = lm.encode_chat(&sample.prompt)?;
    let neg_prompt = match &sample.negative_prompt {
        Some(p) => lm.encode_chat(p)?,
        None => prompt.clone(),
    };
    let pos = lm
        .tokenizer
        .encode(&reading_text(sample, &sample.positive))?;
    let neg = lm
        .tokenizer
        .encode(&reading_text(sample, &sample.negative))?;
    if pos.is_empty() || neg.is_empty() {
        return Err(CoreError::InvalidInput(format!(
            "sample `{}` has an answer with no tokens",
            sample.id
        )));
    }
    Ok((prompt, pos, neg_prompt, neg))
}

/// Where in an answer its activation is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerReading {
    /// The answer's last token (CAA's reading: the whole answer has been seen).
    #[default]
    LastToken,
    /// The mean over every token of the answer (what the answer is about throughout,
    /// for long free-text answers whose last token mostly ends a sentence).
    Mean,
}

/// Activations of `samples` at `points`, paired, in sample order, read at each
/// answer's last token. `batch` samples run together.
pub fn contrast_split<B: Backend>(
    lm: &LoadedModel<B>,
    samples: &[&SteerSample],
    points: &[HookPoint],
    batch: usize,
) -> Result<ContrastSplit> {
    contrast_split_read(lm, samples, points, batch, AnswerReading::LastToken)
}

/// [`contrast_split`] with the answers read as `reading` says.
pub fn contrast_split_read<B: Backend>(
    lm: &LoadedModel<B>,
    samples: &[&SteerSample],
    points: &[HookPoint],
    batch: usize,
    reading: AnswerReading,
) -> Result<ContrastSplit> {
    if samples.is_empty() {
        return Err(CoreError::InvalidInput(
            "no samples to read activations from".into(),
        ));
    }
    let batch = batch.max(1);
    // Run samples of similar length together (less padding), then restore their order.
    let toks_all = samples
        .iter()
        .map(|s| tokenize_pair(lm, s))
        .collect::<Result<Vec<_>>>()?;
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| (toks_all[i].0.len() + toks_all[i].1.len(), i));
    let mut pos_rows: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); samples.len()]; points.len()];
    let mut neg_rows: Vec<Vec<Vec<f32>>> = vec![vec![Vec::new(); samples.len()]; points.len()];
    for chunk in order.chunks(batch) {
        let four: Vec<&PairTokens> = chunk.iter().map(|&i| &toks_all[i]).collect();
        let same_prompt = four.iter().all(|t| t.0 == t.2);
        let toks: Vec<(Vec<u32>, Vec<u32>, Vec<u32>)> = four
            .iter()
            .map(|t| (t.0.clone(), t.1.clone(), t.3.clone()))
            .collect();
        // Fork after the longest shared prefix when every pair shares its prompt and its
        // answers' remainders have one length.
        let forks: Vec<usize> = toks.iter().map(|(_, p, n)| fork_point(p, n)).collect();
        let rest = toks[0].1.len() - forks[0];
        let forkable = same_prompt
            && toks
                .iter()
                .zip(&forks)
                .all(|((_, p, n), &f)| p.len() == n.len() && p.len() - f == rest && f < p.len());
        let (p, n) = match reading {
            AnswerReading::LastToken if forkable && rest <= MAX_FORK_STEPS => {
                read_forked(lm, &toks, &forks, points)?
            }
            AnswerReading::LastToken => read_full(lm, &four, points)?,
            AnswerReading::Mean => read_mean(lm, &four, points)?,
        };
        for k in 0..points.len() {
            for (j, &i) in chunk.iter().enumerate() {
                pos_rows[k][i] = p[k].row(j).to_vec();
                neg_rows[k][i] = n[k].row(j).to_vec();
            }
        }
    }
    let mut split = ContrastSplit::new(samples.iter().map(|s| s.id.clone()).collect());
    for (k, &point) in points.iter().enumerate() {
        let to_array = |rows: &[Vec<f32>]| -> Result<Array2<f32>> {
            let w = rows.first().map(|r| r.len()).unwrap_or(0);
            Array2::from_shape_vec((rows.len(), w), rows.concat())
                .map_err(|e| CoreError::InvalidInput(e.to_string()))
        };
        split = split.with(
            point,
            PairedRows::new(to_array(&pos_rows[k])?, to_array(&neg_rows[k])?),
        );
    }
    Ok(split)
}

type Rows = Vec<Array2<f32>>;

/// Longest answer remainder read by forking (prompt and shared prefix once, then each
/// remainder as KV-cached decode steps, one token per forward call): past 8 tokens two
/// full prefills of the batch cost less than the steps.
pub const MAX_FORK_STEPS: usize = 8;

/// Length of the shared prefix of two answers, keeping at least one token apart.
fn fork_point(p: &[u32], n: &[u32]) -> usize {
    let shared = p.iter().zip(n).take_while(|(a, b)| a == b).count();
    shared
        .min(p.len().saturating_sub(1))
        .min(n.len().saturating_sub(1))
}

/// Prompt + shared answer prefix once, then each answer's remainder as cached steps
/// (read at the last step).
fn read_forked<B: Backend>(
    lm: &LoadedModel<B>,
    toks: &[(Vec<u32>, Vec<u32>, Vec<u32>)],
    forks: &[usize],
    points: &[HookPoint],
) -> Result<(Rows, Rows)> {
    let rest = toks[0].1.len() - forks[0];
    let inputs: Vec<SeqInput> = toks
        .iter()
        .zip(forks)
        .map(|((prompt, p, _), &f)| {
            let mut t = prompt.clone();
            t.extend_from_slice(&p[..f]);
            SeqInput::prompt(t)
        })
        .collect();
    let (session, _) =
        masteer_models::Session::prefill(&lm.model, inputs, rest, &mut Hooks::none())?;
    let read = |positive: bool, mut s: masteer_models::Session<B>| -> Result<Rows> {
        let answer = |i: usize| if positive { &toks[i].1 } else { &toks[i].2 };
        for step in 0..rest {
            let ids: Vec<u32> = (0..toks.len())
                .map(|i| answer(i)[forks[i] + step])
                .collect();
            if step + 1 < rest {
                s.step(&lm.model, &ids, &mut Hooks::none())?;
            } else {
                let mut hooks = Hooks::capture(CaptureSpec::new(points.to_vec(), Positions::All));
                s.step(&lm.model, &ids, &mut hooks)?;
                return points
                    .iter()
                    .map(|&p| Ok(hooks.captures.require(p)?))
                    .collect();
            }
        }
        Err(CoreError::InvalidInput(
            "an answer has nothing after the shared prefix".into(),
        ))
    };
    let pos = read(true, session.clone())?;
    let neg = read(false, session)?;
    Ok((pos, neg))
}

/// Both full sequences of every pair in one batch, each read as the mean over its
/// answer's tokens.
fn read_mean<B: Backend>(
    lm: &LoadedModel<B>,
    toks: &[&PairTokens],
    points: &[HookPoint],
) -> Result<(Rows, Rows)> {
    let mut inputs = Vec::with_capacity(toks.len() * 2);
    for (pp, p, np, n) in toks.iter().map(|t| (&t.0, &t.1, &t.2, &t.3)) {
        for (prompt, answer) in [(pp, p), (np, n)] {
            let mut t = prompt.clone();
            t.extend_from_slice(answer);
            inputs.push(SeqInput {
                tokens: t,
                prompt_len: prompt.len(),
                plan: None,
            });
        }
    }
    let n_seq = inputs.len();
    // The answer's tokens are the positions at or after the prompt length.
    let mut hooks = Hooks::capture(CaptureSpec::new(points.to_vec(), Positions::Generated));
    masteer_models::Session::prefill(&lm.model, inputs, 0, &mut hooks)?;
    let seqs: Vec<usize> = hooks.captures.rows().iter().map(|r| r.seq).collect();
    let mut pos = Vec::with_capacity(points.len());
    let mut neg = Vec::with_capacity(points.len());
    for &p in points {
        let all = hooks.captures.require(p)?;
        let mut sums = Array2::<f32>::zeros((n_seq, all.ncols()));
        let mut counts = vec![0f32; n_seq];
        for (r, &s) in seqs.iter().enumerate() {
            let mut row = sums.row_mut(s);
            row += &all.row(r);
            counts[s] += 1.0;
        }
        for (s, c) in counts.iter().enumerate() {
            if *c == 0.0 {
                return Err(CoreError::InvalidInput(format!(
                    "sequence {s} of a batch has no answer tokens to read"
                )));
            }
            sums.row_mut(s).mapv_inplace(|x| x / c);
        }
        let even: Vec<usize> = (0..n_seq).step_by(2).collect();
        let odd: Vec<usize> = (1..n_seq).step_by(2).collect();
        pos.push(sums.select(Axis(0), &even));
        neg.push(sums.select(Axis(0), &odd));
    }
    Ok((pos, neg))
}

/// Both full sequences of every pair in one batch, read at their last token.
fn read_full<B: Backend>(
    lm: &LoadedModel<B>,
    toks: &[&PairTokens],
    points: &[HookPoint],
) -> Result<(Rows, Rows)> {
    let mut inputs = Vec::with_capacity(toks.len() * 2);
    for (pp, p, np, n) in toks.iter().map(|t| (&t.0, &t.1, &t.2, &t.3)) {
        for (prompt, answer) in [(pp, p), (np, n)] {
            let mut t = prompt.clone();
            t.extend_from_slice(answer);
            inputs.push(SeqInput::prompt(t));
        }
    }
    let mut hooks = Hooks::capture(CaptureSpec::new(
        points.to_vec(),
        Positions::LastPromptToken,
    ));
    masteer_models::Session::prefill(&lm.model, inputs, 0, &mut hooks)?;
    let mut pos = Vec::with_capacity(points.len());
    let mut neg = Vec::with_capacity(points.len());
    for &p in points {
        let all = hooks.captures.require(p)?; // rows: pos0, neg0, pos1, neg1, ...
        let even: Vec<usize> = (0..all.nrows()).step_by(2).collect();
        let odd: Vec<usize> = (1..all.nrows()).step_by(2).collect();
        pos.push(all.select(Axis(0), &even));
        neg.push(all.select(Axis(0), &odd));
    }
    Ok((pos, neg))
}
