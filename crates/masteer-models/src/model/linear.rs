//! Linear layers without bias, weights stored `[out, in]` as Hugging Face does.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `y = x · Wᵀ` with `W` of shape `[out, in]`.
#[derive(Clone, Debug)]
pub struct Linear<B: Backend> {
    weight: Tensor<B, 2>,
}

impl<B: Backend> Linear<B> {
    /// Wrap a `[out, in]` weight.
    pub fn new(weight: Tensor<B, 2>) -> Self {
        Linear { weight }
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The `[out, in]` weight.
    pub fn weight(&self) -> &Tensor<B, 2> {
        &self.weight
    }

    /// Apply to `x` of shape `[batch, seq, in]`; the product runs as one 2-D matmul.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, k] = x.dims();
        let y = x.reshape([b * t, k]).matmul(self.weight.clone().transpose());
        let n = y.dims()[1];
        y.reshape([b, t, n])
    }
}
