//! Routing an issue in plain words to the bundled dataset it is about, by meaning: the
//! model's own mean-pooled hidden states of the issue text are compared (cosine, after
//! removing the mean over datasets) with a profile of each dataset — the mean state of
//! its description and a few of its prompts — and BM25's vote share breaks near ties.
//! Lexical matching alone sends "refuses when its developers want to correct it" to the
//! refusal set on the word "refuses".

use burn::tensor::backend::Backend;
use masteer_datagen::retriever::{dataset_description, Retriever};
use masteer_models::{CaptureSpec, HookPoint, Hooks, LoadedModel, Positions, SeqInput};

use crate::error::{CoreError, Result};

/// Settings of the router.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteConfig {
    /// The block whose output is mean-pooled (a middle layer: lexical early, task-bound late).
    pub layer: usize,
    /// Prompts per dataset in its profile.
    pub prompts_per_source: usize,
    /// Characters of each prompt kept (the opening says what it is about).
    pub prompt_chars: usize,
    /// Weight of BM25's vote share added to the cosine similarity.
    pub bm25_weight: f64,
    /// Documents BM25 votes with.
    pub bm25_top: usize,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            layer: 15,
            prompts_per_source: 8,
            prompt_chars: 300,
            bm25_weight: 0.25,
            bm25_top: 50,
        }
    }
}

/// One dataset's routing score.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteScore {
    /// The dataset.
    pub source: String,
    /// Cosine similarity of the centred states.
    pub similarity: f64,
    /// BM25's vote share.
    pub bm25: f64,
    /// `similarity + bm25_weight · bm25`.
    pub score: f64,
}

/// Mean over the tokens of `text` of the hidden state after block `layer`.
fn mean_state<B: Backend>(lm: &LoadedModel<B>, text: &str, layer: usize) -> Result<Vec<f32>> {
    let ids = lm.tokenizer.encode(text)?;
    if ids.is_empty() {
        return Err(CoreError::InvalidInput("empty text to route".into()));
    }
    let point = HookPoint::resid_post(layer);
    let mut hooks = Hooks::capture(CaptureSpec::new(vec![point], Positions::All));
    masteer_models::Session::prefill(&lm.model, vec![SeqInput::prompt(ids)], 0, &mut hooks)?;
    let a = hooks.captures.require(point)?;
    // The first token's state has a norm far above the rest (an attention sink); pool
    // over the others.
    let skip = usize::from(a.nrows() > 1);
    let n = (a.nrows() - skip).max(1) as f32;
    Ok((0..a.ncols())
        .map(|j| a.column(j).iter().skip(skip).sum::<f32>() / n)
        .collect())
}

/// Dataset profiles of a model, computed once, to rank issues against.
pub struct IssueRouter<'a> {
    retriever: &'a Retriever,
    config: RouteConfig,
    layer: usize,
    sources: Vec<String>,
    profiles: Vec<Vec<f64>>,
    centre: Vec<f32>,
    spread: Vec<f32>,
}

impl<'a> IssueRouter<'a> {
    /// Profile every dataset of `retriever` with `lm`.
    pub fn new<B: Backend>(
        lm: &LoadedModel<B>,
        retriever: &'a Retriever,
        config: RouteConfig,
    ) -> Result<Self> {
        let sources = retriever.sources();
        if sources.is_empty() {
            return Err(CoreError::InvalidInput("no dataset to route to".into()));
        }
        let layer = config
            .layer
            .min(lm.model.config().num_hidden_layers.saturating_sub(1));
        let mut raw: Vec<Vec<f32>> = Vec::with_capacity(sources.len());
        for src in &sources {
            let mut texts = vec![dataset_description(src).to_string()];
            let docs = retriever.of_source(src);
            let step = (docs.len() / config.prompts_per_source.max(1)).max(1);
            for d in docs.iter().step_by(step).take(config.prompts_per_source) {
                let t: String = d
                    .sample
                    .prompt_text()
                    .chars()
                    .take(config.prompt_chars)
                    .collect();
                texts.push(t);
            }
            texts.retain(|t| !t.trim().is_empty());
            let mut acc: Vec<f32> = Vec::new();
            for t in &texts {
                let m = mean_state(lm, t, layer)?;
                if acc.is_empty() {
                    acc = vec![0.0; m.len()];
                }
                for (a, x) in acc.iter_mut().zip(&m) {
                    *a += x / texts.len() as f32;
                }
            }
            raw.push(acc);
        }
        let width = raw[0].len();
        let centre: Vec<f32> = (0..width)
            .map(|j| raw.iter().map(|p| p[j]).sum::<f32>() / raw.len() as f32)
            .collect();
        // Per-dimension spread across the profiles: dimensions that differ between
        // datasets count; a few huge dimensions shared by all texts do not.
        let spread: Vec<f32> = (0..width)
            .map(|j| {
                let v =
                    raw.iter().map(|p| (p[j] - centre[j]).powi(2)).sum::<f32>() / raw.len() as f32;
                v.sqrt().max(1e-6)
            })
            .collect();
        let mut router = IssueRouter {
            retriever,
            config,
            layer,
            sources,
            profiles: Vec::new(),
            centre,
            spread,
        };
        router.profiles = raw.iter().map(|p| router.unit(p)).collect();
        Ok(router)
    }

    fn unit(&self, v: &[f32]) -> Vec<f64> {
        let c: Vec<f64> = v
            .iter()
            .zip(&self.centre)
            .zip(&self.spread)
            .map(|((a, m), s)| ((a - m) / s) as f64)
            .collect();
        let n = c.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        c.into_iter().map(|x| x / n).collect()
    }

    /// Every dataset ranked for `issue`, best first.
    pub fn route<B: Backend>(&self, lm: &LoadedModel<B>, issue: &str) -> Result<Vec<RouteScore>> {
        let q = self.unit(&mean_state(lm, issue, self.layer)?);
        let votes = self.retriever.source_votes(issue, self.config.bm25_top);
        let mut out: Vec<RouteScore> = self
            .sources
            .iter()
            .zip(&self.profiles)
            .map(|(src, p)| {
                let similarity: f64 = p.iter().zip(&q).map(|(a, b)| a * b).sum();
                let bm25 = votes.iter().find(|(s, _)| s == src).map_or(0.0, |v| v.1);
                RouteScore {
                    source: src.clone(),
                    similarity,
                    bm25,
                    score: similarity + self.config.bm25_weight * bm25,
                }
            })
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.source.cmp(&b.source)));
        Ok(out)
    }
}
