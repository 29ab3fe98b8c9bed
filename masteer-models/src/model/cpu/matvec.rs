//! Products with few rows, `y = x · Wᵀ`, reading `W` in its stored format.
//!
//! Decoding one token reads every weight once, so this product is limited by memory
//! bandwidth: reading the embedded model's Q4_1 blocks (98 MB) instead of their f32
//! dequantisation (533 MB) is what makes CPU decoding fast. Each 32-value block is
//! dequantised in registers exactly as ggml does (`q·d + m` for Q4_1), then multiplied
//! with up to four input rows at once; rows of `W` are split across threads.

use half::{bf16, f16};
use rayon::prelude::*;

use super::simd;
use crate::gguf::dequant::{dequant_block_q4_0, dequant_block_q4_1, dequant_block_q8_0};
use crate::weights::{StoredMatrix, StoredType};

/// Values per block handled by the kernels (all stored formats are read in 32s).
const BLOCK: usize = 32;

/// `y[m, n] = x[m, k] · W[n, k]ᵀ` for a stored `W`. `x` is row-major `m × k`.
pub(crate) fn matmul_stored(x: &[f32], m: usize, w: &StoredMatrix) -> Vec<f32> {
    let (n, k) = (w.rows, w.cols);
    debug_assert_eq!(x.len(), m * k);
    let row_bytes = w.row_bytes();
    // Transposed output [n, m]: each task owns a contiguous run of rows of W.
    let mut yt = vec![0f32; n * m];
    let threads = rayon::current_num_threads().max(1);
    let rows_per_task = (n / (threads * 8)).clamp(8, 256);
    let avx2 = simd::has_avx2() && k % BLOCK == 0;
    yt.par_chunks_mut(rows_per_task * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * rows_per_task;
            for (r, out_row) in out.chunks_mut(m).enumerate() {
                let row = &w.data[(first + r) * row_bytes..(first + r + 1) * row_bytes];
                if avx2 {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: AVX2/FMA/F16C presence was checked by `has_avx2`.
                    unsafe {
                        x86::row(w.dtype, row, x, m, k, out_row)
                    };
                } else {
                    row_portable(w.dtype, row, x, m, k, out_row);
                }
            }
        });
    if m == 1 {
        return yt;
    }
    let mut y = vec![0f32; m * n];
    for (j, col) in yt.chunks(m).enumerate() {
        for (i, v) in col.iter().enumerate() {
            y[i * n + j] = *v;
        }
    }
    y
}

/// Decode `count` values starting at value index `start` of a stored row (any format).
fn decode_portable(dtype: StoredType, row: &[u8], start: usize, out: &mut [f32]) {
    match dtype {
        StoredType::F32 => {
            for (i, o) in out.iter_mut().enumerate() {
                let b = (start + i) * 4;
                *o = f32::from_le_bytes([row[b], row[b + 1], row[b + 2], row[b + 3]]);
            }
        }
        StoredType::F16 => {
            for (i, o) in out.iter_mut().enumerate() {
                let b = (start + i) * 2;
                *o = f16::from_le_bytes([row[b], row[b + 1]]).to_f32();
            }
        }
        StoredType::BF16 => {
            for (i, o) in out.iter_mut().enumerate() {
                let b = (start + i) * 2;
                *o = bf16::from_le_bytes([row[b], row[b + 1]]).to_f32();
            }
        }
        StoredType::Q8_0 | StoredType::Q4_0 | StoredType::Q4_1 => {
            let (_, bytes) = dtype.block();
            let blk = start / BLOCK;
            let p = &row[blk * bytes..(blk + 1) * bytes];
            match dtype {
                StoredType::Q8_0 => dequant_block_q8_0(p, out),
                StoredType::Q4_0 => dequant_block_q4_0(p, out),
                _ => dequant_block_q4_1(p, out),
            }
        }
    }
}

/// Portable kernel: dequantise each block to the stack, then dot with every input row.
fn row_portable(dtype: StoredType, row: &[u8], x: &[f32], m: usize, k: usize, out: &mut [f32]) {
    let mut acc = vec![0f32; m];
    let mut buf = [0f32; BLOCK];
    let mut start = 0;
    while start < k {
        let len = BLOCK.min(k - start);
        let blockwise = matches!(
            dtype,
            StoredType::Q8_0 | StoredType::Q4_0 | StoredType::Q4_1
        );
        if blockwise && len < BLOCK {
            break; // not reached: block formats have k % 32 == 0
        }
        decode_portable(dtype, row, start, &mut buf[..len]);
        for (i, a) in acc.iter_mut().enumerate() {
            *a += simd::dot_portable(&buf[..len], &x[i * k + start..i * k + start + len]);
        }
        start += len;
    }
    out.copy_from_slice(&acc);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::simd::avx2::hsum;
    use super::BLOCK;
    use crate::weights::StoredType;

    /// Dequantisation of one 32-value block into four vectors of eight.
    trait Decode {
        /// Bytes of one 32-value block.
        const BYTES: usize;
        /// # Safety
        /// `p` points at one complete block; the caller has AVX2, FMA and F16C.
        unsafe fn decode(p: *const u8) -> [__m256; 4];
    }

    struct Q41;
    struct Q40;
    struct Q80;
    struct F16;
    struct Bf16;
    struct F32;

    // The `decode` bodies are `#[inline(always)]` so that they are compiled inside the
    // AVX2 kernels that call them (they carry no target features of their own).
    impl Decode for Q41 {
        const BYTES: usize = 20;
        #[inline(always)]
        unsafe fn decode(p: *const u8) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = _mm256_set1_ps(half_at(p));
                let m = _mm256_set1_ps(half_at(p.add(2)));
                let qs = _mm_loadu_si128(p.add(4) as *const __m128i);
                let mask = _mm_set1_epi8(0x0f);
                let lo = _mm_and_si128(qs, mask);
                let hi = _mm_and_si128(_mm_srli_epi16::<4>(qs), mask);
                let f = |v: __m128i| {
                    _mm256_add_ps(
                        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)), d),
                        m,
                    )
                };
                [
                    f(lo),
                    f(_mm_srli_si128::<8>(lo)),
                    f(hi),
                    f(_mm_srli_si128::<8>(hi)),
                ]
            }
        }
    }

    impl Decode for Q40 {
        const BYTES: usize = 18;
        #[inline(always)]
        unsafe fn decode(p: *const u8) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = _mm256_set1_ps(half_at(p));
                let qs = _mm_loadu_si128(p.add(2) as *const __m128i);
                let mask = _mm_set1_epi8(0x0f);
                let lo = _mm_and_si128(qs, mask);
                let hi = _mm_and_si128(_mm_srli_epi16::<4>(qs), mask);
                let eight = _mm256_set1_epi32(8);
                let f = |v: __m128i| {
                    _mm256_mul_ps(
                        _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(v), eight)),
                        d,
                    )
                };
                [
                    f(lo),
                    f(_mm_srli_si128::<8>(lo)),
                    f(hi),
                    f(_mm_srli_si128::<8>(hi)),
                ]
            }
        }
    }

    impl Decode for Q80 {
        const BYTES: usize = 34;
        #[inline(always)]
        unsafe fn decode(p: *const u8) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = _mm256_set1_ps(half_at(p));
                let q = p.add(2);
                let f = |o: usize| {
                    let v = _mm_loadl_epi64(q.add(o) as *const __m128i);
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)), d)
                };
                [f(0), f(8), f(16), f(24)]
            }
        }
    }

    impl Decode for F16 {
        const BYTES: usize = 64;
        #[inline(always)]
        unsafe fn decode(p: *const u8) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let f = |o: usize| _mm256_cvtph_ps(_mm_loadu_si128(p.add(o) as *const __m128i));
                [f(0), f(16), f(32), f(48)]
            }
        }
    }

    impl Decode for Bf16 {
        const BYTES: usize = 64;
        #[inline(always)]
        unsafe fn decode(p: *const u8) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let f = |o: usize| {
                    let v = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.add(o) as *const __m128i));
                    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v))
                };
                [f(0), f(16), f(32), f(48)]
            }
        }
    }

    impl Decode for F32 {
        const BYTES: usize = 128;
        #[inline(always)]
        unsafe fn decode(p: *const u8) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let f = |o: usize| _mm256_loadu_ps(p.add(o) as *const f32);
                [f(0), f(32), f(64), f(96)]
            }
        }
    }

    #[inline(always)]
    fn half_at(p: *const u8) -> f32 {
        // SAFETY: callers pass a pointer to two readable bytes.
        let bits = unsafe { std::ptr::read_unaligned(p as *const u16) };
        half::f16::from_bits(bits).to_f32()
    }

    /// `out[g0 + i] = row · x[g0 + i]` for `G` input rows.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn group<D: Decode, const G: usize>(
        row: &[u8],
        x: &[f32],
        g0: usize,
        k: usize,
        out: &mut [f32],
    ) {
        let nb = k / BLOCK;
        let mut acc = [_mm256_setzero_ps(); G];
        for b in 0..nb {
            // SAFETY: block b lies inside `row` (nb blocks of D::BYTES bytes) and each
            // input row has k values, of which b·32..b·32+32 are read.
            unsafe {
                let w = D::decode(row.as_ptr().add(b * D::BYTES));
                for (i, a) in acc.iter_mut().enumerate() {
                    let xp = x.as_ptr().add((g0 + i) * k + b * BLOCK);
                    *a = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(xp), *a);
                    *a = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xp.add(8)), *a);
                    *a = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xp.add(16)), *a);
                    *a = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xp.add(24)), *a);
                }
            }
        }
        for (i, a) in acc.iter().enumerate() {
            out[g0 + i] = hsum(*a);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row_typed<D: Decode>(row: &[u8], x: &[f32], m: usize, k: usize, out: &mut [f32]) {
        let mut g0 = 0;
        // SAFETY: forwarded from `row`'s contract.
        unsafe {
            while m - g0 >= 8 {
                group::<D, 8>(row, x, g0, k, out);
                g0 += 8;
            }
            if m - g0 >= 4 {
                group::<D, 4>(row, x, g0, k, out);
                g0 += 4;
            }
            match m - g0 {
                3 => group::<D, 3>(row, x, g0, k, out),
                2 => group::<D, 2>(row, x, g0, k, out),
                1 => group::<D, 1>(row, x, g0, k, out),
                _ => {}
            }
        }
    }

    /// One row of `W` against all `m` input rows.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C; `row` holds `k / 32` blocks of
    /// `dtype`; `x` holds `m · k` values; `k % 32 == 0`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn row(
        dtype: StoredType,
        row: &[u8],
        x: &[f32],
        m: usize,
        k: usize,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            match dtype {
                StoredType::Q4_1 => row_typed::<Q41>(row, x, m, k, out),
                StoredType::Q4_0 => row_typed::<Q40>(row, x, m, k, out),
                StoredType::Q8_0 => row_typed::<Q80>(row, x, m, k, out),
                StoredType::F16 => row_typed::<F16>(row, x, m, k, out),
                StoredType::BF16 => row_typed::<Bf16>(row, x, m, k, out),
                StoredType::F32 => row_typed::<F32>(row, x, m, k, out),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::dequant::dequantize;
    use crate::gguf::dequant::{quantize_q4_1, quantize_q8_0};
    use crate::gguf::GgmlType;

    fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k)
                    .map(|t| x[i * k + t] as f64 * w[j * k + t] as f64)
                    .sum::<f64>() as f32;
            }
        }
        y
    }

    fn check(dtype: StoredType, data: Vec<u8>, dense: &[f32], n: usize, k: usize) {
        let w = StoredMatrix::new(n, k, dtype, data).unwrap();
        for m in [1usize, 2, 3, 4, 5, 8, 9, 16, 19] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 31 % 17) as f32 - 8.0) / 7.0)
                .collect();
            let got = matmul_stored(&x, m, &w);
            let want = reference(&x, m, dense, n, k);
            for (g, r) in got.iter().zip(&want) {
                assert!(
                    (g - r).abs() <= 1e-4 * (1.0 + r.abs()),
                    "{dtype:?} m={m}: {g} vs {r}"
                );
            }
            // Each input row's products are bit-identical to that row alone (batched
            // decode gives every sequence the values it gets by itself).
            for i in 0..m {
                let alone = matmul_stored(&x[i * k..(i + 1) * k], 1, &w);
                assert_eq!(
                    &got[i * n..(i + 1) * n],
                    alone.as_slice(),
                    "{dtype:?} m={m} row {i}"
                );
            }
            // The portable path agrees too.
            let mut port = vec![0f32; m];
            row_portable(dtype, &w.data[..w.row_bytes()], &x, m, k, &mut port);
            for i in 0..m {
                assert!((port[i] - want[i * n]).abs() <= 1e-4 * (1.0 + want[i * n].abs()));
            }
        }
    }

    #[test]
    fn every_stored_format_matches_a_dense_product() {
        let (n, k) = (37, 96);
        let dense: Vec<f32> = (0..n * k)
            .map(|i| (((i * 7919) % 1000) as f32 - 500.0) / 300.0)
            .collect();
        check(
            StoredType::F32,
            dense.iter().flat_map(|v| v.to_le_bytes()).collect(),
            &dense,
            n,
            k,
        );
        let h: Vec<f32> = dense.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
        check(
            StoredType::F16,
            dense
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect(),
            &h,
            n,
            k,
        );
        let b: Vec<f32> = dense.iter().map(|&v| bf16::from_f32(v).to_f32()).collect();
        check(
            StoredType::BF16,
            dense
                .iter()
                .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
                .collect(),
            &b,
            n,
            k,
        );
        let q8 = quantize_q8_0(&dense).unwrap();
        let dq8 = dequantize(GgmlType::Q8_0, &q8, n * k).unwrap();
        check(StoredType::Q8_0, q8, &dq8, n, k);
        let q41 = quantize_q4_1(&dense).unwrap();
        let dq41 = dequantize(GgmlType::Q4_1, &q41, n * k).unwrap();
        check(StoredType::Q4_1, q41, &dq41, n, k);
        // Longer rows, as in the model's MLP (608 values).
        let (n2, k2) = (19, 608);
        let long: Vec<f32> = (0..n2 * k2)
            .map(|i| (((i * 7919) % 1000) as f32 - 500.0) / 300.0)
            .collect();
        let q = quantize_q4_1(&long).unwrap();
        let dq = dequantize(GgmlType::Q4_1, &q, n2 * k2).unwrap();
        check(StoredType::Q4_1, q, &dq, n2, k2);
        // Q4_0 from hand-built blocks.
        let mut q40 = Vec::new();
        for blk in 0..n * k / 32 {
            q40.extend_from_slice(&f16::from_f32(0.125 * (1 + blk % 3) as f32).to_le_bytes());
            for j in 0..16u8 {
                q40.push(
                    (j.wrapping_mul(7).wrapping_add(blk as u8)) & 0x0f | (((j + 3) % 16) << 4),
                );
            }
        }
        let dq40 = dequantize(GgmlType::Q4_0, &q40, n * k).unwrap();
        check(StoredType::Q4_0, q40, &dq40, n, k);
    }
}
