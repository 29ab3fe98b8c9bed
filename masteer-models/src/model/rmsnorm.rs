//! RMSNorm: `x / sqrt(mean(x²) + eps) · w`.

use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Root-mean-square normalisation over the last dimension with a learned scale.
#[derive(Clone, Debug)]
pub struct RmsNorm<B: Backend> {
    weight: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    /// A norm with scale `weight` (`[width]`).
    pub fn new(weight: Tensor<B, 1>, eps: f64) -> Self {
        RmsNorm { weight, eps }
    }

    /// Normalise `x` (`[..., width]`).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let ms = x.clone().powi_scalar(2).mean_dim(D - 1);
        let inv = (ms + self.eps).sqrt().recip();
        x * inv * self.weight.clone().unsqueeze::<D>()
    }
}
