//! Linear layers without bias, weights stored `[out, in]` as Hugging Face does.

use std::sync::Arc;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::forward_state::Kernels;
use crate::weights::StoredMatrix;

/// Inputs with at most this many rows use the few-row stored-format kernel on the CPU
/// backend (decode steps, output head); larger ones the tiled product.
#[cfg_attr(not(feature = "cpu"), allow(dead_code))] // used by the CPU kernels only
pub(crate) const SMALL_ROWS: usize = 16;

/// Where a linear layer's weights live.
#[derive(Clone, Debug)]
enum Weights<B: Backend> {
    /// f32 weights on the backend's device, for its matrix product (GPU backends).
    Dense(Tensor<B, 2>),
    /// The file's format on the host, read as stored by the CPU kernels: no f32 copy.
    /// Several parts when the stacked matrices differ in format (llama.cpp's K-quant
    /// mixes store V in Q8_0 beside Q5_0 Q and K, for instance); their outputs are
    /// placed side by side.
    Stored(Vec<Arc<StoredMatrix>>),
}

/// `y = x · Wᵀ` with `W` of shape `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear<B: Backend> {
    weights: Weights<B>,
}

impl<B: Backend> Linear<B> {
    /// A layer over f32 weights `[out, in]` on the backend's device.
    pub fn dense(weight: Tensor<B, 2>) -> Self {
        Linear {
            weights: Weights::Dense(weight),
        }
    }

    /// A layer reading `[out, in]` weights in their stored format (CPU backend).
    pub fn stored(weight: Arc<StoredMatrix>) -> Self {
        Linear {
            weights: Weights::Stored(vec![weight]),
        }
    }

    /// A layer over matrices stacked by rows, each read in its own stored format
    /// (`None` when there are none or their widths differ).
    pub fn stored_parts(parts: Vec<Arc<StoredMatrix>>) -> Option<Self> {
        let cols = parts.first()?.cols;
        if parts.iter().any(|p| p.cols != cols) {
            return None;
        }
        Some(Linear {
            weights: Weights::Stored(parts),
        })
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        match &self.weights {
            Weights::Dense(w) => w.dims()[0],
            Weights::Stored(parts) => parts.iter().map(|p| p.rows).sum(),
        }
    }

    /// Apply to `x` of shape `[rows, in]`.
    pub fn forward_2d(&self, x: Tensor<B, 2>, kernels: Kernels) -> Tensor<B, 2> {
        match &self.weights {
            Weights::Dense(w) => x.matmul(w.clone().transpose()),
            Weights::Stored(parts) => {
                let [m, _] = x.dims();
                let n = self.out_features();
                #[cfg(feature = "cpu")]
                if kernels.fused() {
                    let xs = super::cpu::host_f32(x);
                    let xs = xs.storage::<f32>();
                    let int8 = kernels == Kernels::FusedInt8;
                    let product = |w: &StoredMatrix| {
                        if m <= SMALL_ROWS && int8 && super::cpu::int8_supports(w.dtype) {
                            super::cpu::matmul_int8(xs, m, w)
                        } else if m <= SMALL_ROWS {
                            super::cpu::matmul_stored(xs, m, w)
                        } else {
                            super::cpu::matmul_tiled(xs, m, w)
                        }
                    };
                    let y = match parts.as_slice() {
                        [one] => product(one),
                        _ => {
                            let mut y = vec![0f32; m * n];
                            let mut at = 0;
                            for p in parts {
                                let yp = product(p);
                                for (row, part) in y.chunks_mut(n).zip(yp.chunks(p.rows)) {
                                    row[at..at + p.rows].copy_from_slice(part);
                                }
                                at += p.rows;
                            }
                            y
                        }
                    };
                    return super::cpu::tensor_from_vec(y, [m, n]);
                }
                let _ = (kernels, m);
                // The generic kernels (tests' reference path) on stored weights: the
                // same burn product over the dequantised matrix, built for this call.
                let cols = parts.first().map_or(0, |p| p.cols);
                let mut dense = Vec::with_capacity(n * cols);
                for p in parts {
                    dense.extend_from_slice(&p.to_f32());
                }
                let dense =
                    Tensor::<B, 2>::from_data(TensorData::new(dense, [n, cols]), &x.device());
                x.matmul(dense.transpose())
            }
        }
    }

    /// Apply to `x` of shape `[batch, seq, in]`; the product runs as one 2-D matmul.
    pub fn forward(&self, x: Tensor<B, 3>, kernels: Kernels) -> Tensor<B, 3> {
        let [b, t, k] = x.dims();
        let y = self.forward_2d(x.reshape([b * t, k]), kernels);
        let n = y.dims()[1];
        y.reshape([b, t, n])
    }
}
