//! SwiGLU MLP: `down(silu(gate(x)) · up(x))`, gate and up fused into one product.

use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::forward_state::Kernels;
use super::linear::Linear;

/// The MLP of one block.
#[derive(Clone, Debug)]
pub struct Mlp<B: Backend> {
    gate_up: Linear<B>,
    down: Linear<B>,
    hidden: usize,
}

impl<B: Backend> Mlp<B> {
    /// Build from the fused `[2·ffn, width]` gate/up projection and the `[width, ffn]` down projection.
    pub fn new(gate_up: Linear<B>, down: Linear<B>) -> Self {
        let hidden = gate_up.out_features() / 2;
        Mlp {
            gate_up,
            down,
            hidden,
        }
    }

    /// Apply to `x` (`[batch, cols, width]`, already normalised).
    pub fn forward(&self, x: Tensor<B, 3>, kernels: Kernels) -> Tensor<B, 3> {
        let gu = self.gate_up.forward(x, kernels);
        #[cfg(feature = "cpu")]
        if kernels.fused() {
            let [b, t, _] = gu.dims();
            let host = super::cpu::host_f32(gu);
            let h = super::cpu::swiglu(host.storage::<f32>(), self.hidden);
            return self
                .down
                .forward(super::cpu::tensor_from_vec(h, [b, t, self.hidden]), kernels);
        }
        let gate = gu.clone().narrow(2, 0, self.hidden);
        let up = gu.narrow(2, self.hidden, self.hidden);
        self.down.forward(silu(gate) * up, kernels)
    }
}
