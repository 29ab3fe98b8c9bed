//! Grouped-query self-attention with RoPE, a KV cache and the `attn_heads` and
//! `attn_out` hook points.

use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};
use masteer_types::HookPoint;

use super::kv_cache::KvCache;
use super::linear::Linear;
use super::rope::Rope;
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::hooks::apply::{ForwardCtx, HookState};

/// Attention of one block: fused Q/K/V projection and output projection.
#[derive(Clone, Debug)]
pub struct Attention<B: Backend> {
    qkv: Linear<B>,
    o: Linear<B>,
    n_heads: usize,
    n_kv: usize,
    head_dim: usize,
}

/// Per-call inputs shared by every block.
pub(crate) struct AttnInputs<'a, B: Backend> {
    pub cos: &'a Tensor<B, 4>,
    pub sin: &'a Tensor<B, 4>,
    /// `[batch, 1, cols, keys]`, true where a key must be hidden.
    pub mask: &'a Tensor<B, 4, Bool>,
}

impl<B: Backend> Attention<B> {
    /// Build from the fused `[q + 2·kv, width]` projection and the `[width, q]` output projection.
    pub fn new(qkv: Linear<B>, o: Linear<B>, cfg: &LlamaConfig) -> Self {
        Attention {
            qkv,
            o,
            n_heads: cfg.num_attention_heads,
            n_kv: cfg.num_key_value_heads,
            head_dim: cfg.head_dim,
        }
    }

    /// Attention output for `x` (`[batch, cols, width]`, already normalised).
    pub(crate) fn forward(
        &self,
        x: Tensor<B, 3>,
        layer: usize,
        inputs: &AttnInputs<'_, B>,
        cache: &mut KvCache<B>,
        hooks: &mut HookState<'_>,
        ctx: &ForwardCtx,
        cfg: &LlamaConfig,
    ) -> Result<Tensor<B, 3>> {
        let [b, t, _] = x.dims();
        let (h, kv, hd) = (self.n_heads, self.n_kv, self.head_dim);
        let qkv = self.qkv.forward(x);
        let q = qkv.clone().narrow(2, 0, h * hd).reshape([b, t, h, hd]);
        let k = qkv.clone().narrow(2, h * hd, kv * hd).reshape([b, t, kv, hd]);
        let v = qkv.narrow(2, (h + kv) * hd, kv * hd).reshape([b, t, kv, hd]);
        let q = Rope::apply(q, inputs.cos, inputs.sin).swap_dims(1, 2);
        let k = Rope::apply(k, inputs.cos, inputs.sin).swap_dims(1, 2);
        let v = v.swap_dims(1, 2);
        let (k_all, v_all) = cache.append(layer, k, v);
        let s = k_all.dims()[2];
        let group = h / kv;
        let expand = |x: Tensor<B, 4>| -> Tensor<B, 4> {
            if group == 1 {
                x
            } else {
                x.unsqueeze_dim::<5>(2).expand([b, kv, group, s, hd]).reshape([b, h, s, hd])
            }
        };
        let mask = inputs.mask.clone().expand([b, h, t, s]);
        let out = attention(
            q,
            expand(k_all),
            expand(v_all),
            Some(mask),
            None,
            AttentionModuleOptions::default(),
        );
        // [b, h, t, hd] -> [b, t, h·hd]: per-head outputs before the output projection.
        let mut heads = out.swap_dims(1, 2).reshape([b, t, h * hd]);
        let p = HookPoint::attn_heads(layer);
        if hooks.wants(p) {
            heads = hooks.run(p, heads, ctx, cfg)?;
        }
        let mut o = self.o.forward(heads);
        let p = HookPoint::attn_out(layer);
        if hooks.wants(p) {
            o = hooks.run(p, o, ctx, cfg)?;
        }
        Ok(o)
    }
}
