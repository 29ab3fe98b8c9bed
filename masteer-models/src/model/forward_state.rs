//! `ForwardState`: what one forward call reads and writes besides the weights and the
//! tokens — the KV cache, the absolute positions of the call's columns, the hooks, and
//! which kernels run. A [`Session`](crate::generation::Session) builds one per call.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;
use masteer_types::HookPoint;

use super::kv_cache::KvCache;
use crate::config::LlamaConfig;
use crate::error::Result;
use crate::hooks::apply::{ForwardCtx, HookState};

/// Which implementation runs the heavy operations of a forward call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The fused CPU kernels (matrix-vector products read from the stored format,
    /// fused attention and SwiGLU); only on the CPU (`flex`) backend.
    Fused,
    /// The fused CPU kernels, with the input of each few-row product (decode steps,
    /// the output head) rounded to 8 bits per 32 values and multiplied in integers, as
    /// llama.cpp multiplies quantised weights: faster decoding at llama.cpp's
    /// precision instead of the exact dequantised product (prefill is unchanged).
    /// Formats without an integer kernel (F16, F32, BF16, Q2_K, Q3_K, Q5_K, IQ4_NL)
    /// keep the exact product.
    FusedInt8,
    /// burn's operations, on any backend.
    Generic,
}

impl Kernels {
    /// The fastest kernels backend `B` can run: fused on the CPU backend, generic
    /// elsewhere.
    pub fn best_for<B: Backend>() -> Self {
        if Self::fused_available::<B>() {
            Kernels::Fused
        } else {
            Kernels::Generic
        }
    }

    /// `self`, or [`Kernels::Generic`] where backend `B` cannot run the fused kernels.
    pub fn available_for<B: Backend>(self) -> Self {
        match self {
            Kernels::Fused | Kernels::FusedInt8 if Self::fused_available::<B>() => self,
            _ => Kernels::Generic,
        }
    }

    /// Whether backend `B` runs these kernels as asked (the fused ones fall back to
    /// the generic ones off the CPU backend).
    pub fn fused_on<B: Backend>(self) -> bool {
        self.available_for::<B>() == self
    }

    /// Whether these are the fused CPU kernels (exact or with 8-bit inputs).
    pub fn fused(self) -> bool {
        matches!(self, Kernels::Fused | Kernels::FusedInt8)
    }

    /// Whether backend `B` runs the fused CPU kernels (and so keeps weights only in
    /// their stored format).
    pub(crate) fn fused_available<B: Backend>() -> bool {
        #[cfg(feature = "cpu")]
        {
            super::cpu::is_flex::<B>()
        }
        #[cfg(not(feature = "cpu"))]
        {
            false
        }
    }
}

/// The mutable context of one forward call: KV cache, positions, hooks, kernels.
pub struct ForwardState<'a, B: Backend> {
    /// Keys and values of every past column; the call appends its own.
    pub(crate) cache: &'a mut KvCache<B>,
    /// Padding columns at the start of each sequence in the cache.
    pub(crate) pads: &'a [usize],
    /// Absolute positions and prompt lengths of the call's columns.
    pub(crate) ctx: ForwardCtx,
    /// Plans, captures and the decider consulted at hook points.
    pub(crate) hooks: HookState<'a>,
    /// Which kernels run.
    pub(crate) kernels: Kernels,
}

impl<B: Backend> ForwardState<'_, B> {
    /// Run whatever the hooks hold at `p` on `x` (`[batch, cols, width]`); `x` is
    /// returned untouched when nothing happens there.
    pub(crate) fn hook(
        &mut self,
        p: HookPoint,
        x: Tensor<B, 3>,
        cfg: &LlamaConfig,
    ) -> Result<Tensor<B, 3>> {
        if self.hooks.wants(p) {
            self.hooks.run(p, x, &self.ctx, cfg)
        } else {
            Ok(x)
        }
    }
}
