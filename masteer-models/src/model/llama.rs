//! The Llama-family decoder: embeddings, blocks (RMSNorm → attention → RMSNorm →
//! SwiGLU MLP, each added to the residual stream), final norm and output head, with
//! hook points at every block.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use masteer_types::HookPoint;

use super::attention::{Attention, AttnInputs, GenericInputs};
use super::forward_state::{ForwardState, Kernels};
use super::linear::Linear;
use super::mlp::Mlp;
use super::rmsnorm::RmsNorm;
use super::rope::Rope;
use crate::config::LlamaConfig;
use crate::error::{ModelError, Result};
use crate::weights::{HostTensor, StoredMatrix, WeightSource};

/// One decoder block.
#[derive(Clone, Debug)]
struct Block<B: Backend> {
    attn_norm: RmsNorm<B>,
    attn: Attention<B>,
    mlp_norm: RmsNorm<B>,
    mlp: Mlp<B>,
}

/// A Llama-family decoder on backend `B`.
#[derive(Clone, Debug)]
pub struct Llama<B: Backend> {
    config: LlamaConfig,
    embed: Embedding<B>,
    blocks: Vec<Block<B>>,
    norm: RmsNorm<B>,
    /// Output head `[vocab, width]` (the embeddings when tied).
    head: Linear<B>,
    rope: Rope,
    device: B::Device,
    /// The kernels new sessions run with ([`Kernels::best_for`] the backend unless set).
    kernels: Kernels,
}

/// Input width of stacked parts (all share it).
fn d_in(parts: &[(String, [usize; 2])]) -> usize {
    parts.first().map_or(0, |(_, s)| s[1])
}

/// The token embeddings `[vocab, width]`.
#[derive(Clone, Debug)]
enum Embedding<B: Backend> {
    /// f32 on the backend's device (rows selected by burn).
    Dense(Tensor<B, 2>),
    /// In the file's format on the host (CPU backend): rows dequantised per token.
    Stored(Arc<StoredMatrix>),
}

impl<B: Backend> Embedding<B> {
    /// The rows of `tokens` (ids already checked against the vocabulary), `[n, width]`.
    fn rows(&self, tokens: &[u32], width: usize, device: &B::Device) -> Tensor<B, 2> {
        match self {
            Embedding::Dense(t) => {
                let ids: Vec<i64> = tokens.iter().map(|&x| x as i64).collect();
                let ids =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [tokens.len()]), device);
                t.clone().select(0, ids)
            }
            Embedding::Stored(w) => {
                let mut v = vec![0f32; tokens.len() * width];
                for (row, &id) in v.chunks_mut(width.max(1)).zip(tokens) {
                    w.dequant_rows(id as usize, row);
                }
                Tensor::from_data(TensorData::new(v, [tokens.len(), width]), device)
            }
        }
    }
}

fn check_shape(name: &str, t: &HostTensor, expected: &[usize]) -> Result<()> {
    if t.shape != expected {
        return Err(ModelError::ShapeMismatch {
            name: name.to_string(),
            expected: expected.to_vec(),
            actual: t.shape.clone(),
        });
    }
    Ok(())
}

impl<B: Backend> Llama<B> {
    /// Build the decoder from a weight source (Hugging Face tensor names).
    pub fn load(config: LlamaConfig, src: &dyn WeightSource, device: &B::Device) -> Result<Self> {
        config.validate()?;
        let c = &config;
        let d = c.hidden_size;
        let get = |name: &str, shape: &[usize]| -> Result<HostTensor> {
            let t = src.require(name)?;
            check_shape(name, &t, shape)?;
            Ok(t)
        };
        let t2 = |t: HostTensor| -> Tensor<B, 2> {
            let shape = [t.shape[0], t.shape[1]];
            Tensor::from_data(TensorData::new(t.data, shape), device)
        };
        let t1 = |t: HostTensor| -> Tensor<B, 1> {
            let n = t.data.len();
            Tensor::from_data(TensorData::new(t.data, [n]), device)
        };
        // On the CPU backend every matrix the file stores in a readable format is kept
        // only in that format (the kernels read it as stored); elsewhere, and for a
        // matrix the source cannot give that way, an f32 tensor on the device.
        let stored_only = Kernels::fused_available::<B>();
        // The named `[rows, cols]` parts in stored format, or `None` when the source
        // cannot give one of them that way.
        let stored = |parts: &[(String, [usize; 2])]| -> Result<Option<Vec<StoredMatrix>>> {
            if !stored_only {
                return Ok(None);
            }
            let mut got = Vec::new();
            for (name, shape) in parts {
                match src.get_stored(name)? {
                    Some(p) => {
                        if [p.rows, p.cols] != *shape {
                            return Err(ModelError::ShapeMismatch {
                                name: name.clone(),
                                expected: shape.to_vec(),
                                actual: vec![p.rows, p.cols],
                            });
                        }
                        got.push(p)
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some(got))
        };
        // A linear layer over the parts stacked by rows: one stored matrix when they
        // share a format, one per run of equal formats otherwise.
        let linear = |parts: &[(String, [usize; 2])]| -> Result<Linear<B>> {
            if let Some(got) = stored(parts)? {
                let mut runs: Vec<Vec<StoredMatrix>> = Vec::new();
                for p in got {
                    match runs.last_mut() {
                        Some(run) if run[0].dtype == p.dtype => run.push(p),
                        _ => runs.push(vec![p]),
                    }
                }
                let joined: Option<Vec<Arc<StoredMatrix>>> = runs
                    .iter()
                    .map(|run| StoredMatrix::concat_rows(run).map(Arc::new))
                    .collect();
                if let Some(layer) = joined.and_then(Linear::stored_parts) {
                    return Ok(layer);
                }
            }
            let mut data = Vec::new();
            let mut rows = 0;
            for (name, shape) in parts {
                let t = get(name, shape)?;
                rows += shape[0];
                data.extend_from_slice(&t.data);
            }
            Ok(Linear::dense(t2(HostTensor {
                shape: vec![rows, d_in(parts)],
                data,
            })))
        };
        let embed_part = [("model.embed_tokens.weight".to_string(), [c.vocab_size, d])];
        let embed = match stored(&embed_part)?.and_then(|mut v| v.pop()) {
            Some(w) => Embedding::Stored(Arc::new(w)),
            None => Embedding::Dense(t2(get("model.embed_tokens.weight", &[c.vocab_size, d])?)),
        };
        // Not `with_capacity(num_hidden_layers)`: the count comes from the file, and a
        // corrupt one must fail on its first missing tensor, not on a huge allocation
        // (found by fuzzing: fuzz/README.md).
        let mut blocks = Vec::new();
        for l in 0..c.num_hidden_layers {
            let n = |s: &str| format!("model.layers.{l}.{s}");
            let qkv = linear(&[
                (n("self_attn.q_proj.weight"), [c.q_width(), d]),
                (n("self_attn.k_proj.weight"), [c.kv_width(), d]),
                (n("self_attn.v_proj.weight"), [c.kv_width(), d]),
            ])?;
            let o = linear(&[(n("self_attn.o_proj.weight"), [d, c.q_width()])])?;
            let gu = linear(&[
                (n("mlp.gate_proj.weight"), [c.intermediate_size, d]),
                (n("mlp.up_proj.weight"), [c.intermediate_size, d]),
            ])?;
            let down = linear(&[(n("mlp.down_proj.weight"), [d, c.intermediate_size])])?;
            blocks.push(Block {
                attn_norm: RmsNorm::new(
                    t1(get(&n("input_layernorm.weight"), &[d])?),
                    c.rms_norm_eps,
                ),
                attn: Attention::new(qkv, o, c),
                mlp_norm: RmsNorm::new(
                    t1(get(&n("post_attention_layernorm.weight"), &[d])?),
                    c.rms_norm_eps,
                ),
                mlp: Mlp::new(gu, down),
            });
        }
        let norm = RmsNorm::new(t1(get("model.norm.weight", &[d])?), c.rms_norm_eps);
        let head_part = [("lm_head.weight".to_string(), [c.vocab_size, d])];
        let head = if c.tie_word_embeddings {
            None
        } else if let Some(w) = stored(&head_part)?.and_then(|mut v| v.pop()) {
            Some(Linear::stored(Arc::new(w)))
        } else {
            // Some files omit the head and tie it implicitly.
            match src.get("lm_head.weight")? {
                Some(h) => {
                    check_shape("lm_head.weight", &h, &[c.vocab_size, d])?;
                    Some(Linear::dense(t2(h)))
                }
                None => None,
            }
        };
        let head = match (head, &embed) {
            (Some(h), _) => h,
            (None, Embedding::Dense(t)) => Linear::dense(t.clone()),
            (None, Embedding::Stored(w)) => Linear::stored(w.clone()),
        };
        Ok(Llama {
            rope: Rope::new(c.rope_inv_freq()),
            config,
            embed,
            blocks,
            norm,
            head,
            device: device.clone(),
            kernels: Kernels::best_for::<B>(),
        })
    }

    /// The same model running `kernels` in new sessions (fused CPU kernels are the
    /// default on the CPU backend; generic ones run the same burn operations on every
    /// backend, which tests compare against). Cloning a model is cheap: the weights are
    /// shared.
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels.available_for::<B>();
        self
    }

    /// The kernels new sessions run with.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The hyperparameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> &B::Device {
        &self.device
    }

    /// The forward pass: run every block on `tokens` (`batch · cols` ids, row-major)
    /// with the cache, positions, hooks and kernels of `state`, and return the residual
    /// stream after the last block (`[batch, cols, width]`, before the final norm).
    /// A [`Session`](crate::generation::Session) builds the state and calls this.
    pub fn forward(&self, tokens: &[u32], state: &mut ForwardState<'_, B>) -> Result<Tensor<B, 3>> {
        let b = state.ctx.batch();
        let t = state.ctx.cols;
        if tokens.len() != b * t || state.pads.len() != b {
            return Err(ModelError::InvalidInput(format!(
                "{} tokens for a batch of {b} × {t} columns",
                tokens.len()
            )));
        }
        let vocab = self.config.vocab_size;
        if let Some(&bad) = tokens.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::TokenOutOfRange { id: bad, vocab });
        }
        let cfg = &self.config;
        state.hooks.begin(&state.ctx);

        let mut x = self
            .embed
            .rows(tokens, cfg.hidden_size, &self.device)
            .reshape([b, t, cfg.hidden_size]);

        let positions: Vec<usize> = (0..b)
            .flat_map(|i| (0..t).map(move |c| (i, c)))
            .map(|(i, c)| state.ctx.abs_pos(i, c).unwrap_or(0))
            .collect();
        let (cos_host, sin_host) = self.rope.host_tables(&positions);
        let generic = if state.kernels.fused() {
            None
        } else {
            let (cos, sin) = Rope::tables::<B>(&cos_host, &sin_host, b, t, &self.device);
            let group = cfg.num_attention_heads / cfg.num_key_value_heads;
            Some(GenericInputs {
                cos,
                sin,
                mask: self.attention_mask(&state.ctx, state.pads, state.cache.len(), group),
            })
        };
        let inputs = AttnInputs {
            cos_host: &cos_host,
            sin_host: &sin_host,
            generic,
        };

        for (l, block) in self.blocks.iter().enumerate() {
            x = state.hook(HookPoint::resid_pre(l), x, cfg)?;
            let a =
                block
                    .attn
                    .forward(block.attn_norm.forward(x.clone()), l, &inputs, state, cfg)?;
            x = x + a;
            let m = block
                .mlp
                .forward(block.mlp_norm.forward(x.clone()), state.kernels);
            let m = state.hook(HookPoint::mlp_out(l), m, cfg)?;
            x = x + m;
            x = state.hook(HookPoint::resid_post(l), x, cfg)?;
        }
        state.cache.advance(t);
        Ok(x)
    }

    /// Boolean mask `[batch, 1, group·cols, keys]` (the rows of `cols` repeated for the
    /// `group` query heads sharing a key/value head), true where a key is hidden: keys
    /// before the sequence's padding ends or after the query. A padding query sees
    /// only itself, so no softmax row is empty.
    fn attention_mask(
        &self,
        ctx: &crate::hooks::apply::ForwardCtx,
        pads: &[usize],
        past: usize,
        group: usize,
    ) -> Tensor<B, 4, Bool> {
        let b = ctx.batch();
        let t = ctx.cols;
        let s = past + t;
        let mut m = vec![true; b * group * t * s];
        for i in 0..b {
            for g in 0..group {
                for c in 0..t {
                    let q = past + c;
                    let start = ((i * group + g) * t + c) * s;
                    let row = &mut m[start..start + s];
                    if q < pads[i] {
                        row[q] = false;
                    } else {
                        for x in &mut row[pads[i]..=q] {
                            *x = false;
                        }
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(m, [b, 1, group * t, s]), &self.device)
    }

    /// Final norm and output head on selected rows of the residual stream
    /// (`[n, width]` in, `[n, vocab]` logits out).
    pub fn logits(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let h = self.norm.forward(hidden);
        self.head.forward_2d(h, self.kernels)
    }
}
