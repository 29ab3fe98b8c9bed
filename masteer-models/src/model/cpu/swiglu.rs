//! The SwiGLU gate over the fused gate/up product: `silu(gate) · up`.

use rayon::prelude::*;

use super::simd;

/// `gu` is `[rows, 2·hidden]` (gate then up); returns `[rows, hidden]`.
pub(crate) fn swiglu(gu: &[f32], hidden: usize) -> Vec<f32> {
    let rows = gu.len() / (2 * hidden);
    let mut out = vec![0f32; rows * hidden];
    let avx2 = simd::has_avx2();
    out.par_chunks_mut(hidden)
        .zip(gu.par_chunks(2 * hidden))
        .for_each(|(o, row)| {
            let (gate, up) = row.split_at(hidden);
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: AVX2/FMA presence checked by `has_avx2`.
                unsafe { x86::swiglu_row(gate, up, o) };
                return;
            }
            let _ = avx2;
            for ((oi, &g), &u) in o.iter_mut().zip(gate).zip(up) {
                *oi = g / (1.0 + (-g).exp()) * u;
            }
        });
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::simd::avx2::exp8;

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn swiglu_row(gate: &[f32], up: &[f32], out: &mut [f32]) {
        let n = out.len();
        let chunks = n / 8;
        let one = _mm256_set1_ps(1.0);
        for c in 0..chunks {
            // SAFETY: c·8 + 8 <= n for all three slices.
            unsafe {
                let g = _mm256_loadu_ps(gate.as_ptr().add(c * 8));
                let u = _mm256_loadu_ps(up.as_ptr().add(c * 8));
                let e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
                let silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
                _mm256_storeu_ps(out.as_mut_ptr().add(c * 8), _mm256_mul_ps(silu, u));
            }
        }
        for i in chunks * 8..n {
            out[i] = gate[i] / (1.0 + (-gate[i]).exp()) * up[i];
        }
    }
}
