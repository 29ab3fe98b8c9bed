//! Rotary position embeddings, rotate-half convention (Hugging Face Llama), with
//! per-sequence absolute positions.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// RoPE tables computed on the host for the positions of each call.
#[derive(Clone, Debug)]
pub struct Rope {
    inv_freq: Vec<f64>,
}

impl Rope {
    /// RoPE with the given inverse frequencies (`head_dim / 2` of them).
    pub fn new(inv_freq: Vec<f64>) -> Self {
        Rope { inv_freq }
    }

    /// `cos` and `sin` tables on the host, `positions.len() × head_dim/2` values each.
    pub fn host_tables(&self, positions: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(positions.len() * half);
        let mut sin = Vec::with_capacity(positions.len() * half);
        for &p in positions {
            for &f in &self.inv_freq {
                let a = p as f64 * f;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
        }
        (cos, sin)
    }

    /// Host tables as tensors of shape `[batch, cols, 1, head_dim/2]`.
    pub fn tables<B: Backend>(
        cos: &[f32],
        sin: &[f32],
        batch: usize,
        cols: usize,
        device: &B::Device,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let half = cos.len() / (batch * cols).max(1);
        let c = Tensor::from_data(
            TensorData::new(cos.to_vec(), [batch, cols, 1, half]),
            device,
        );
        let s = Tensor::from_data(
            TensorData::new(sin.to_vec(), [batch, cols, 1, half]),
            device,
        );
        (c, s)
    }

    /// Rotate `x` of shape `[batch, cols, heads, head_dim]`.
    pub fn apply<B: Backend>(
        x: Tensor<B, 4>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
    ) -> Tensor<B, 4> {
        let hd = x.dims()[3];
        let half = hd / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.narrow(3, half, half);
        let o1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
        let o2 = x2 * cos.clone() + x1 * sin.clone();
        Tensor::cat(vec![o1, o2], 3)
    }
}
