//! Runtime SIMD detection and small vector helpers shared by the CPU kernels.
//!
//! On x86-64 with AVX2 + FMA + F16C the kernels use 256-bit intrinsics; elsewhere a
//! portable scalar path computes the same values.

use std::sync::OnceLock;

/// Whether the AVX2 + FMA + F16C kernels can run on this CPU.
pub(crate) fn has_avx2() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx2")
                && std::is_x86_feature_detected!("fma")
                && std::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Whether the AVX-512 (F + DQ) variant of the few-row kernel can run on this CPU (on
/// top of [`has_avx2`]); `MASTEER_NO_AVX512=1` turns it off, to compare.
pub(crate) fn has_avx512() -> bool {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    *DETECTED.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            has_avx2()
                && std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512dq")
                && std::env::var_os("MASTEER_NO_AVX512").is_none()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// Where the tile after the first `tile_bytes` of `rows` starts, and how many cache
/// lines of it lie inside `rows`: the few-row kernels fetch the next tile of weights
/// while they compute on this one (a task's rows are too few kilobytes for the
/// hardware prefetcher to ramp up alone: decoding ran 59 → 75-79 tok/s with it).
#[inline(always)]
pub(crate) fn prefetch_span(rows: &[u8], tile_bytes: usize) -> (*const u8, usize) {
    let rest = rows.len().saturating_sub(tile_bytes);
    (
        rows.as_ptr().wrapping_add(tile_bytes),
        rest.min(tile_bytes).div_ceil(64),
    )
}

/// Dot product of two equal-length slices (portable; vectorised with 8 partial sums).
#[inline]
pub(crate) fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for l in 0..8 {
            acc[l] += a[c * 8 + l] * b[c * 8 + l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[cfg(test)]
mod tests {
    #[test]
    fn vector_exp_is_accurate() {
        if !super::has_avx2() {
            return;
        }
        let xs: Vec<f32> = (-4000..=800)
            .map(|i| i as f32 * 0.02)
            .chain([-100.0, -87.0, 88.0])
            .collect();
        let mut v = xs.clone();
        // SAFETY: AVX2 presence checked above.
        let sum = unsafe { super::avx2::exp_shifted_sum(&mut v, 0.0) };
        let mut want_sum = 0f64;
        for (x, got) in xs.iter().zip(&v) {
            let want = (*x as f64).exp();
            want_sum += want;
            if want > 1e-30 {
                assert!(
                    ((*got as f64 - want) / want).abs() < 5e-7,
                    "exp({x}) = {got}, want {want}"
                );
            } else {
                assert!(*got < 1e-30);
            }
        }
        assert!(((sum as f64 - want_sum) / want_sum).abs() < 1e-5);
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// The 4-bit values `32·sub .. 32·sub + 32` of the Q4_K super-block at `p`, one
    /// per byte (shared by the f32 and the 8-bit kernels).
    ///
    /// # Safety
    /// `p` points at a complete 144-byte block, `sub < 8`; AVX2 is present (the
    /// callers' kernels enable it and inline this).
    #[inline(always)]
    pub(crate) unsafe fn q4k_values(p: *const u8, sub: usize) -> __m256i {
        // SAFETY: forwarded from the contract.
        unsafe {
            let q = _mm256_loadu_si256(p.add(16 + 32 * (sub / 2)) as *const __m256i);
            let q = if sub.is_multiple_of(2) {
                q
            } else {
                _mm256_srli_epi16::<4>(q)
            };
            _mm256_and_si256(q, _mm256_set1_epi8(0x0f))
        }
    }

    /// The 6-bit values (0..64, before ggml's −32) `32·sub .. 32·sub + 32` of the Q6_K
    /// super-block at `p`, one per byte.
    ///
    /// # Safety
    /// `p` points at a complete 210-byte block, `sub < 8`; AVX2 is present.
    #[inline(always)]
    pub(crate) unsafe fn q6k_values(p: *const u8, sub: usize) -> __m256i {
        // SAFETY: forwarded from the contract.
        unsafe {
            let (n, quarter) = (sub / 4, sub % 4);
            let ql = _mm256_loadu_si256(p.add(64 * n + 32 * (quarter % 2)) as *const __m256i);
            let ql = if quarter < 2 {
                ql
            } else {
                _mm256_srli_epi16::<4>(ql)
            };
            let ql = _mm256_and_si256(ql, _mm256_set1_epi8(0x0f));
            let qh = _mm256_loadu_si256(p.add(128 + 32 * n) as *const __m256i);
            let qh = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * quarter as i32));
            let qh = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(3)));
            _mm256_or_si256(ql, qh)
        }
    }

    /// Horizontal sum of the 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn hsum(v: __m256) -> f32 {
        let hi = _mm256_extractf128_ps::<1>(v);
        let lo = _mm256_castps256_ps128(v);
        let s = _mm_add_ps(hi, lo);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }

    /// Dot product of two equal-length slices.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let chunks = n / 16;
        let mut acc0 = _mm256_setzero_ps();
        let mut acc1 = _mm256_setzero_ps();
        for c in 0..chunks {
            // SAFETY: c·16 + 16 <= n for both slices.
            unsafe {
                let pa = a.as_ptr().add(c * 16);
                let pb = b.as_ptr().add(c * 16);
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa), _mm256_loadu_ps(pb), acc0);
                acc1 =
                    _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(8)), _mm256_loadu_ps(pb.add(8)), acc1);
            }
        }
        let mut s = hsum(_mm256_add_ps(acc0, acc1));
        for i in chunks * 16..n {
            s += a[i] * b[i];
        }
        s
    }

    /// `e^x` lane-wise (Cephes' single-precision polynomial, within 2 ulp of `f32::exp`
    /// on the range softmax and SiLU use; inputs below −87.3 give 0).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::excessive_precision)] // constants quoted as Cephes publishes them
    pub(crate) fn exp8(x: __m256) -> __m256 {
        let x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949));
        let underflow = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(-87.3365447504));
        // n = round(x / ln 2), r = x − n·ln 2 (ln 2 split in two for precision)
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4), r);
        let mut p = _mm256_set1_ps(1.9875691500e-4);
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1));
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1));
        let r2 = _mm256_mul_ps(r, r);
        p = _mm256_fmadd_ps(p, r2, r);
        p = _mm256_add_ps(p, _mm256_set1_ps(1.0));
        // scale by 2^n through the exponent bits
        let ni = _mm256_cvtps_epi32(n);
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            ni,
            _mm256_set1_epi32(127),
        )));
        _mm256_andnot_ps(underflow, _mm256_mul_ps(p, pow2))
    }

    /// `v[i] = e^(v[i] − max)` in place; returns the sum.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn exp_shifted_sum(v: &mut [f32], max: f32) -> f32 {
        let n = v.len();
        let chunks = n / 8;
        let vm = _mm256_set1_ps(max);
        let mut acc = _mm256_setzero_ps();
        for c in 0..chunks {
            // SAFETY: c·8 + 8 <= n.
            unsafe {
                let p = v.as_mut_ptr().add(c * 8);
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(p), vm));
                _mm256_storeu_ps(p, e);
                acc = _mm256_add_ps(acc, e);
            }
        }
        let mut s = hsum(acc);
        for x in v[chunks * 8..].iter_mut() {
            *x = (*x - max).exp();
            s += *x;
        }
        s
    }

    /// `y += a · x` over equal-length slices.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
        let n = x.len().min(y.len());
        let chunks = n / 8;
        let va = _mm256_set1_ps(a);
        for c in 0..chunks {
            // SAFETY: c·8 + 8 <= n for both slices.
            unsafe {
                let px = x.as_ptr().add(c * 8);
                let py = y.as_mut_ptr().add(c * 8);
                _mm256_storeu_ps(
                    py,
                    _mm256_fmadd_ps(va, _mm256_loadu_ps(px), _mm256_loadu_ps(py)),
                );
            }
        }
        for i in chunks * 8..n {
            y[i] += a * x[i];
        }
    }
}
