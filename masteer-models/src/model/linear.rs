//! Linear layers without bias, weights stored `[out, in]` as Hugging Face does.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::forward_state::Kernels;
use crate::weights::StoredMatrix;

/// Inputs with at most this many rows use the stored-format kernel on the CPU backend
/// (decode steps, output head); larger ones use the backend's f32 matrix product.
#[cfg_attr(not(feature = "cpu"), allow(dead_code))] // used by the CPU kernels only
pub(crate) const SMALL_ROWS: usize = 16;

/// `y = x · Wᵀ` with `W` of shape `[out, in]`.
#[cfg_attr(not(feature = "cpu"), allow(dead_code))] // used by the CPU kernels only
#[derive(Clone, Debug)]
pub struct Linear<B: Backend> {
    weight: Tensor<B, 2>,
    /// The same weights in the file's format, for few-row products on the CPU.
    stored: Option<Arc<StoredMatrix>>,
}

impl<B: Backend> Linear<B> {
    /// Wrap a `[out, in]` weight and, optionally, its stored-format copy.
    pub fn new(weight: Tensor<B, 2>, stored: Option<StoredMatrix>) -> Self {
        Linear {
            weight,
            stored: stored.map(Arc::new),
        }
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Apply to `x` of shape `[rows, in]`.
    pub fn forward_2d(&self, x: Tensor<B, 2>, kernels: Kernels) -> Tensor<B, 2> {
        let [m, _] = x.dims();
        #[cfg(feature = "cpu")]
        if kernels.fused() && m <= SMALL_ROWS {
            if let Some(w) = &self.stored {
                let xs = super::cpu::host_f32(x);
                let y = super::cpu::matmul_stored(xs.storage::<f32>(), m, w);
                return super::cpu::tensor_from_vec(y, [m, w.rows]);
            }
        }
        let _ = (kernels, m);
        x.matmul(self.weight.clone().transpose())
    }

    /// Apply to `x` of shape `[batch, seq, in]`; the product runs as one 2-D matmul.
    pub fn forward(&self, x: Tensor<B, 3>, kernels: Kernels) -> Tensor<B, 3> {
        let [b, t, k] = x.dims();
        let y = self.forward_2d(x.reshape([b * t, k]), kernels);
        let n = y.dims()[1];
        y.reshape([b, t, n])
    }
}
