//! Fused CPU kernels for burn's flex backend.
//!
//! The decoder is written with burn tensor operations and runs on any burn backend.
//! On the CPU backend a few hot spots are replaced by kernels that work directly on
//! the flex tensors' buffers (no copy in or out):
//!
//! - products with few rows (decode, output head) read the weights in the format the
//!   file stored them (Q4_1, Q8_0, F16, K-quants...), dequantising on the fly: the
//!   memory read per token drops from 533 MB (f32) to ~100 MB for the embedded model,
//!   with the exact dequantised values; or, with [`crate::Kernels::FusedInt8`], with
//!   the input rounded to 8 bits and integer products, as llama.cpp computes them;
//! - products with many rows (prefill) dequantise one tile of weight rows at a time
//!   into the GEMM, so no f32 copy of the weights is ever held;
//! - RoPE, the KV-cache write and grouped-query attention in one pass, without
//!   materialising repeated key/value heads or transposed copies;
//! - the SwiGLU gate.
//!
//! Each kernel computes the same mathematics as the generic burn path (only the
//! summation order differs); tests compare the two paths on the real model.

mod attention;
mod int8;
mod matvec;
mod simd;
mod swiglu;
mod tiled;

use std::any::{Any, TypeId};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use burn_flex::{Flex, FlexTensor};

pub(crate) use attention::{attention, rope_rows, write_cache, AttentionShape};
pub(crate) use int8::{matmul_int8, supports as int8_supports};
pub(crate) use matvec::matmul_stored;
pub(crate) use swiglu::swiglu;
pub(crate) use tiled::matmul_tiled;

/// Pseudo-random blocks of `dtype` whose f16 scales (at the given byte offsets within a
/// block) are small finite values; any other bit pattern is a valid block. For the
/// kernels' tests.
#[cfg(test)]
pub(crate) fn random_blocks(
    dtype: crate::weights::StoredType,
    blocks: usize,
    scales: &[usize],
    seed: u64,
) -> Vec<u8> {
    let (_, size) = dtype.block();
    let mut state = seed;
    let mut out = Vec::with_capacity(blocks * size);
    for b in 0..blocks {
        let start = out.len();
        for _ in 0..size {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.push((state >> 24) as u8);
        }
        for (i, &at) in scales.iter().enumerate() {
            let v = half::f16::from_f32(0.01 * (1 + (b + i) % 5) as f32).to_le_bytes();
            out[start + at..start + at + 2].copy_from_slice(&v);
        }
    }
    out
}

/// Whether `B` is burn's flex CPU backend (the only backend these kernels serve).
pub(crate) fn is_flex<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>()
}

/// The flex tensor behind a burn tensor of backend `B`. Callers check [`is_flex`] first.
pub(crate) fn to_flex<B: Backend, const D: usize>(t: Tensor<B, D>) -> FlexTensor {
    let prim = t.into_primitive().tensor();
    let boxed: Box<dyn Any> = Box::new(prim);
    match boxed.downcast::<FlexTensor>() {
        Ok(f) => *f,
        // Internal invariant: only reached after `is_flex::<B>()` returned true.
        Err(_) => unreachable!("to_flex called on a non-flex backend"),
    }
}

/// A burn tensor of backend `B` wrapping a flex tensor. Callers check [`is_flex`] first.
pub(crate) fn from_flex<B: Backend, const D: usize>(f: FlexTensor) -> Tensor<B, D> {
    let boxed: Box<dyn Any> = Box::new(f);
    match boxed.downcast::<B::FloatTensorPrimitive>() {
        Ok(p) => Tensor::from_primitive(TensorPrimitive::Float(*p)),
        // Internal invariant: only reached after `is_flex::<B>()` returned true.
        Err(_) => unreachable!("from_flex called on a non-flex backend"),
    }
}

/// A contiguous f32 copy-or-view of a burn tensor's values on the CPU backend.
pub(crate) fn host_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> FlexTensor {
    let f = to_flex(t);
    let f = if f.dtype() == burn::tensor::DType::F32 {
        f
    } else {
        FlexTensor::from_data(f.into_data().convert::<f32>())
    };
    f.to_contiguous()
}

/// A burn tensor of shape `shape` holding `values`.
pub(crate) fn tensor_from_vec<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
) -> Tensor<B, D> {
    from_flex(FlexTensor::from_data(TensorData::new(values, shape)))
}
