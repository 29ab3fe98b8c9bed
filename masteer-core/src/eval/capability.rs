//! General capability kept under steering: divergence of next-token distributions
//! from the unsteered model, and perplexity on a neutral text.

use burn::tensor::backend::Backend;
use masteer_models::{ChatMessage, Hooks, LoadedModel, ScoreRequest, SeqInput};

use super::{log_prob, logits_at, Steering};
use crate::error::{CoreError, Result};

/// Neutral prompts for the divergence measure (everyday requests unrelated to any
/// trustworthiness issue).
pub const NEUTRAL_PROMPTS: [&str; 8] = [
    "Give me a short recipe for pancakes.",
    "Explain how a bicycle gear works.",
    "Write two sentences about the ocean.",
    "What are the planets of the solar system?",
    "How do I convert Celsius to Fahrenheit?",
    "Suggest a name for a pet turtle.",
    "Summarise the water cycle in one sentence.",
    "What is a good way to learn a new language?",
];

/// A neutral passage for perplexity (public-domain style encyclopedic prose written
/// for this project).
pub const NEUTRAL_TEXT: &str = "The river rises in the hills to the north and flows south through farmland, \
woods and two small towns before it reaches the sea. In spring the water is high and cold, fed by melting snow; \
by late summer it runs slow and clear over beds of gravel. Farmers along its banks grow wheat, barley and apples, \
and the towns hold a market every week where growers sell fruit, bread and cheese. A footpath follows the river \
for most of its length, and walkers can cross it on old stone bridges built more than two centuries ago.";

/// Prompts per forward pass in [`kl_to_unsteered`] (bounds the logits held at once).
const KL_CHUNK: usize = 8;

/// `KL(softmax(p) ‖ softmax(q))` in nats, from two rows of logits.
pub fn kl_divergence(p: &[f32], q: &[f32]) -> f64 {
    let lse = |v: &[f32]| {
        let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        m + v.iter().map(|x| (*x as f64 - m).exp()).sum::<f64>().ln()
    };
    let (lp, lq) = (lse(p), lse(q));
    p.iter()
        .zip(q)
        .map(|(a, b)| {
            let la = *a as f64 - lp;
            la.exp() * (la - (*b as f64 - lq))
        })
        .sum()
}

/// Mean over every position of the neutral prompts of `KL(unsteered ‖ steered)` of the
/// next-token distributions (nats).
pub fn kl_to_unsteered<B: Backend>(
    lm: &LoadedModel<B>,
    prompts: &[&str],
    steering: Steering<'_>,
) -> Result<f64> {
    let inputs: Vec<SeqInput> = prompts
        .iter()
        .map(|p| Ok(SeqInput::prompt(lm.encode_chat(&[ChatMessage::user(*p)])?)))
        .collect::<Result<_>>()?;
    let positions: Vec<Vec<usize>> = inputs
        .iter()
        .map(|s| (0..s.tokens.len()).collect())
        .collect();
    let mut total = 0.0;
    let mut n = 0usize;
    // A few prompts at a time: every position's logits are a vocabulary-wide row
    // (49,152 floats for the embedded model), so 120 prompts at once held ~2 GB.
    for (ins, pos) in inputs.chunks(KL_CHUNK).zip(positions.chunks(KL_CHUNK)) {
        let (base, _) = logits_at(lm, ins.to_vec(), pos, Steering::None)?;
        let (steered, _) = logits_at(lm, ins.to_vec(), pos, steering)?;
        for (b_seq, s_seq) in base.iter().zip(&steered) {
            for (b, s) in b_seq.iter().zip(s_seq) {
                total += kl_divergence(b, s);
                n += 1;
            }
        }
    }
    Ok(total / n.max(1) as f64)
}

/// Perplexity of `text` (no chat template) under a steering.
pub fn perplexity<B: Backend>(
    lm: &LoadedModel<B>,
    text: &str,
    steering: Steering<'_>,
) -> Result<f64> {
    let ids = lm.tokenizer.encode(text)?;
    if ids.len() < 2 {
        return Err(CoreError::InvalidInput(
            "perplexity needs at least two tokens".into(),
        ));
    }
    let positions = vec![(0..ids.len() - 1).collect::<Vec<_>>()];
    let (rows, _) = logits_at(
        lm,
        vec![SeqInput::prompt(ids.clone())],
        &positions,
        steering,
    )?;
    let nll: f64 = rows[0]
        .iter()
        .zip(&ids[1..])
        .map(|(row, &next)| -(log_prob(row, next) as f64))
        .sum();
    Ok((nll / (ids.len() - 1) as f64).exp())
}

/// Perplexity of (the first `max_tokens` tokens of) a long `text` under `steering`, in
/// chunks of `chunk` tokens: the first
/// `context` tokens of each chunk are its prompt (where a router decides), the rest are
/// scored. Returns `exp(mean negative log-likelihood)` over every scored token and the
/// number of tokens scored. Only the scored tokens' log-probabilities leave the model,
/// so memory stays at one chunk's logits.
pub fn text_perplexity<B: Backend>(
    lm: &LoadedModel<B>,
    text: &str,
    steering: Steering<'_>,
    chunk: usize,
    context: usize,
    max_tokens: usize,
) -> Result<(f64, usize)> {
    if context == 0 || chunk <= context {
        return Err(CoreError::InvalidInput(format!(
            "a perplexity chunk of {chunk} tokens must exceed its context of {context} (≥ 1)"
        )));
    }
    let mut ids = lm.tokenizer.encode(text)?;
    ids.truncate(max_tokens);
    let requests: Vec<ScoreRequest> = ids
        .chunks(chunk)
        .filter(|c| c.len() > context)
        .map(|c| ScoreRequest {
            prompt: c[..context].to_vec(),
            continuation: c[context..].to_vec(),
            plan: steering.fixed_plan().cloned(),
        })
        .collect();
    if requests.is_empty() {
        return Err(CoreError::InvalidInput(format!(
            "the text has {} tokens, too few for one chunk of more than {context}",
            ids.len()
        )));
    }
    let (mut nll, mut n) = (0.0f64, 0usize);
    for r in &requests {
        let scores = match steering.decider()? {
            Some(mut decider) => {
                let mut hooks = Hooks::none().with_decider(&mut decider);
                masteer_models::generation::score(&lm.model, std::slice::from_ref(r), &mut hooks)?
            }
            None => masteer_models::generation::score(
                &lm.model,
                std::slice::from_ref(r),
                &mut Hooks::none(),
            )?,
        };
        for s in scores {
            nll -= s.token_logprobs.iter().map(|&x| x as f64).sum::<f64>();
            n += s.token_logprobs.len();
        }
    }
    Ok(((nll / n as f64).exp(), n))
}
