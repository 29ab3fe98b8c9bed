//! Grouped-query self-attention with RoPE, a KV cache and the `attn_heads` and
//! `attn_out` hook points.

use burn::tensor::backend::Backend;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};
use masteer_types::HookPoint;

use super::forward_state::ForwardState;
use super::kv_cache::KvCache;
use super::linear::Linear;
use super::rope::Rope;
use crate::config::LlamaConfig;
use crate::error::Result;

/// Attention of one block: fused Q/K/V projection and output projection.
#[derive(Clone, Debug)]
pub struct Attention<B: Backend> {
    qkv: Linear<B>,
    o: Linear<B>,
    n_heads: usize,
    n_kv: usize,
    head_dim: usize,
}

/// Inputs of the generic (any backend) attention path.
pub(crate) struct GenericInputs<B: Backend> {
    /// `[batch, cols, 1, head_dim/2]`.
    pub cos: Tensor<B, 4>,
    /// `[batch, cols, 1, head_dim/2]`.
    pub sin: Tensor<B, 4>,
    /// `[batch, 1, group·cols, keys]`, true where a key must be hidden.
    pub mask: Tensor<B, 4, Bool>,
}

/// Per-call inputs shared by every block (computed once from the call's positions).
#[cfg_attr(not(feature = "cpu"), allow(dead_code))] // used by the CPU kernels only
pub(crate) struct AttnInputs<'a, B: Backend> {
    /// RoPE tables on the host, `[batch·cols, head_dim/2]` each.
    pub cos_host: &'a [f32],
    pub sin_host: &'a [f32],
    /// Present when the generic path runs.
    pub generic: Option<GenericInputs<B>>,
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

    /// Attention output for `x` (`[batch, cols, width]`, already normalised) of block
    /// `layer`, with the cache, hooks and kernels of `state`.
    pub(crate) fn forward(
        &self,
        x: Tensor<B, 3>,
        layer: usize,
        inputs: &AttnInputs<'_, B>,
        state: &mut ForwardState<'_, B>,
        cfg: &LlamaConfig,
    ) -> Result<Tensor<B, 3>> {
        let qkv = self.qkv.forward(x, state.kernels);
        let heads = match &inputs.generic {
            Some(g) => self.heads_generic(qkv, layer, g, state.cache),
            None => self.heads_cpu(qkv, layer, inputs, state.pads, state.cache),
        };
        let heads = state.hook(HookPoint::attn_heads(layer), heads, cfg)?;
        let o = self.o.forward(heads, state.kernels);
        state.hook(HookPoint::attn_out(layer), o, cfg)
    }

    /// Per-head outputs `[batch, cols, heads·head_dim]` with burn operations.
    fn heads_generic(
        &self,
        qkv: Tensor<B, 3>,
        layer: usize,
        g: &GenericInputs<B>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let [b, t, _] = qkv.dims();
        let (h, kv, hd) = (self.n_heads, self.n_kv, self.head_dim);
        let group = h / kv;
        let q = qkv.clone().narrow(2, 0, h * hd).reshape([b, t, h, hd]);
        let k = qkv
            .clone()
            .narrow(2, h * hd, kv * hd)
            .reshape([b, t, kv, hd]);
        let v = qkv
            .narrow(2, (h + kv) * hd, kv * hd)
            .reshape([b, t, kv, hd]);
        let q = Rope::apply(q, &g.cos, &g.sin).swap_dims(1, 2);
        let k = Rope::apply(k, &g.cos, &g.sin).swap_dims(1, 2);
        let (k_all, v_all) = cache.append(layer, k, v.swap_dims(1, 2));
        let s = k_all.dims()[2];
        // Query heads of one key/value head are adjacent, so [b, h, t, hd] regroups as
        // [b, kv, group·t, hd] and keys/values are used without being repeated.
        let q = q.reshape([b, kv, group * t, hd]);
        let mask = g.mask.clone().expand([b, kv, group * t, s]);
        let out = attention(
            q,
            k_all,
            v_all,
            Some(mask),
            None,
            AttentionModuleOptions::default(),
        );
        out.reshape([b, h, t, hd])
            .swap_dims(1, 2)
            .reshape([b, t, h * hd])
    }

    /// Per-head outputs with the fused CPU kernels (flex backend).
    #[cfg(feature = "cpu")]
    fn heads_cpu(
        &self,
        qkv: Tensor<B, 3>,
        layer: usize,
        inputs: &AttnInputs<'_, B>,
        pads: &[usize],
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        use super::cpu;
        let [b, t, _] = qkv.dims();
        let shape = cpu::AttentionShape {
            batch: b,
            cols: t,
            heads: self.n_heads,
            kv_heads: self.n_kv,
            head_dim: self.head_dim,
            capacity: 0,
            past: cache.len(),
        };
        cache.reserve(cache.len() + t);
        let shape = cpu::AttentionShape {
            capacity: cache.capacity(),
            ..shape
        };
        let mut qkv = cpu::host_f32(qkv);
        cpu::rope_rows(
            qkv.storage_mut::<f32>(),
            &shape,
            inputs.cos_host,
            inputs.sin_host,
        );
        let (k, v) = cache.take_layer(layer);
        let mut k = cpu::host_f32(k);
        let mut v = cpu::host_f32(v);
        cpu::write_cache(
            qkv.storage::<f32>(),
            &shape,
            k.storage_mut::<f32>(),
            v.storage_mut::<f32>(),
        );
        let out = cpu::attention(
            qkv.storage::<f32>(),
            &shape,
            pads,
            k.storage::<f32>(),
            v.storage::<f32>(),
        );
        cache.put_layer(layer, cpu::from_flex(k), cpu::from_flex(v));
        cpu::tensor_from_vec(out, [b, t, self.n_heads * self.head_dim])
    }

    #[cfg(not(feature = "cpu"))]
    fn heads_cpu(
        &self,
        _: Tensor<B, 3>,
        _: usize,
        _: &AttnInputs<'_, B>,
        _: &[usize],
        _: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        unreachable!("the CPU kernels are only selected when the cpu feature is on")
    }
}
