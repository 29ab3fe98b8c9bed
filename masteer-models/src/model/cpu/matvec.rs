//! Products with few rows, `y = x · Wᵀ`, reading `W` in its stored format.
//!
//! Decoding one token reads every weight once, so this product is limited by memory
//! bandwidth: reading the embedded model's Q4_1 blocks (98 MB) instead of their f32
//! dequantisation (533 MB) is what makes CPU decoding fast. Each 32 values of a block
//! (a K-quant super-block holds eight such runs) are dequantised in registers exactly
//! as ggml does (`q·d + m` for Q4_1, `d·sc·q − dmin·m` for Q4_K), then multiplied with
//! up to eight input rows at once; rows of `W` are split across threads. Where AVX-512 is
//! present, eight input rows go as four pairs in 512-bit registers (each lane's sums are
//! the AVX2 kernel's, bit for bit: a batched row still equals that row alone). Formats
//! without a register decoder (Q2_K, Q3_K, Q5_K, IQ4_NL) dequantise a row at a time.

use rayon::prelude::*;

use super::simd;
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
    #[cfg(target_arch = "x86_64")]
    let registers = avx2 && x86::decodes(w.dtype);
    #[cfg(not(target_arch = "x86_64"))]
    let registers = false;
    // Input rows in pairs for the AVX-512 kernel (eight or more rows), built once.
    #[cfg(target_arch = "x86_64")]
    let paired = (registers && m >= 8 && simd::has_avx512()).then(|| x86::pair_rows(x, m, k));
    #[cfg(target_arch = "x86_64")]
    let paired = paired.as_deref();
    let blockwise = w.dtype.block().0 <= BLOCK;
    yt.par_chunks_mut(rows_per_task * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * rows_per_task;
            let count = out.len() / m;
            if registers {
                let rows = &w.data[first * row_bytes..(first + count) * row_bytes];
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX2/FMA/F16C presence was checked by `has_avx2` (AVX-512 by
                // `has_avx512` when `paired` is there); `rows` holds `count` whole rows
                // of `dtype`, `out` `count · m` values, `paired` is `pair_rows(x, m, k)`.
                unsafe {
                    x86::rows(w.dtype, rows, row_bytes, (x, paired), m, k, out)
                };
                return;
            }
            let mut buf = Vec::new();
            for (r, out_row) in out.chunks_mut(m).enumerate() {
                let row = &w.data[(first + r) * row_bytes..(first + r + 1) * row_bytes];
                if blockwise {
                    row_portable(w.dtype, row, x, m, k, out_row);
                } else {
                    row_dequantised(w.dtype, row, x, k, out_row, &mut buf, avx2);
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

/// Any format, used for the K-quants without a register decoder (and all K-quants off
/// x86-64): dequantise the row once into `buf` (ggml's exact values), then dot it with
/// every input row (`out.len()` of them). The memory read is still the stored bytes.
fn row_dequantised(
    dtype: StoredType,
    row: &[u8],
    x: &[f32],
    k: usize,
    out: &mut [f32],
    buf: &mut Vec<f32>,
    avx2: bool,
) {
    buf.resize(k, 0.0);
    dtype.dequant_into(row, buf);
    for (i, o) in out.iter_mut().enumerate() {
        let xi = &x[i * k..(i + 1) * k];
        *o = if avx2 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2/FMA presence was checked by the caller (`has_avx2`).
            unsafe {
                simd::avx2::dot(buf, xi)
            }
            #[cfg(not(target_arch = "x86_64"))]
            simd::dot_portable(buf, xi)
        } else {
            simd::dot_portable(buf, xi)
        };
    }
}

/// Portable kernel for the formats of at most 32 values per block: dequantise each
/// 32 values to the stack, then dot with every input row (summed block by block, as the
/// register kernels do).
fn row_portable(dtype: StoredType, row: &[u8], x: &[f32], m: usize, k: usize, out: &mut [f32]) {
    let mut acc = vec![0f32; m];
    let mut buf = [0f32; BLOCK];
    let (per, bytes) = dtype.block();
    let mut start = 0;
    while start < k {
        let len = BLOCK.min(k - start);
        let b0 = start / per * bytes;
        let b1 = (start + len).div_ceil(per) * bytes;
        dtype.dequant_into(&row[b0..b1], &mut buf[..len]);
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

    use super::super::simd::avx2::{hsum, q4k_values, q6k_values};
    use super::BLOCK;
    use crate::gguf::dequant::scale_min_k4;
    use crate::weights::StoredType;

    /// Whether [`row`] has a register decoder for `dtype`.
    pub(super) fn decodes(dtype: StoredType) -> bool {
        matches!(
            dtype,
            StoredType::F32
                | StoredType::F16
                | StoredType::BF16
                | StoredType::Q8_0
                | StoredType::Q4_0
                | StoredType::Q4_1
                | StoredType::Q5_0
                | StoredType::Q5_1
                | StoredType::Q4K
                | StoredType::Q6K
        )
    }

    /// Dequantisation of 32 values of a block into four vectors of eight.
    trait Decode {
        /// Bytes of one block.
        const BYTES: usize;
        /// Values per block: 32, or 256 for the K-quants' super-blocks, which are
        /// decoded 32 values (`sub`) at a time.
        const VALUES: usize = BLOCK;
        /// Values `32·sub .. 32·sub + 32` of the block at `p`.
        ///
        /// # Safety
        /// `p` points at one complete block, `sub < VALUES / 32`; the caller has AVX2,
        /// FMA and F16C.
        unsafe fn decode(p: *const u8, sub: usize) -> [__m256; 4];
    }

    struct Q41;
    struct Q40;
    struct Q80;
    struct Q50;
    struct Q51;
    struct Q4K;
    struct Q6K;
    struct F16;
    struct Bf16;
    struct F32;

    // The `decode` bodies are `#[inline(always)]` so that they are compiled inside the
    // AVX2 kernels that call them (they carry no target features of their own).
    impl Decode for Q41 {
        const BYTES: usize = 20;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
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
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
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
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
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
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
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
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
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
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let f = |o: usize| _mm256_loadu_ps(p.add(o) as *const f32);
                [f(0), f(32), f(64), f(96)]
            }
        }
    }

    // The decoders below follow the same rule as those above: `#[inline(always)]`, no
    // target features and no closures passed to generic code, so that everything is
    // compiled inside the AVX2 kernel that calls them (an out-of-line call returning
    // four vectors costs more than the decoding).

    /// The fifth bits of values `8g .. 8g + 8` of a Q5 block (`qh` bit `i` is value
    /// `i`'s), as 16 or 0 in eight lanes.
    #[inline(always)]
    unsafe fn fifth_bits(qh: u32, g: usize) -> __m256i {
        // SAFETY: AVX2 is present (the trait contract).
        unsafe {
            let bits = _mm256_set1_epi32(((qh >> (8 * g)) & 0xff) as i32);
            let lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
            let set = _mm256_cmpeq_epi32(_mm256_and_si256(bits, lanes), lanes);
            _mm256_and_si256(set, _mm256_set1_epi32(16))
        }
    }

    /// The 5-bit values of a Q5 block: nibbles at `qs` (16 bytes), fifth bits `qh`.
    #[inline(always)]
    unsafe fn q5_values(qs: *const u8, qh: u32) -> [__m256i; 4] {
        // SAFETY: forwarded from the trait contract (16 readable bytes at `qs`).
        unsafe {
            let qs = _mm_loadu_si128(qs as *const __m128i);
            let mask = _mm_set1_epi8(0x0f);
            let lo = _mm_and_si128(qs, mask);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(qs), mask);
            [
                _mm256_or_si256(_mm256_cvtepu8_epi32(lo), fifth_bits(qh, 0)),
                _mm256_or_si256(
                    _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(lo)),
                    fifth_bits(qh, 1),
                ),
                _mm256_or_si256(_mm256_cvtepu8_epi32(hi), fifth_bits(qh, 2)),
                _mm256_or_si256(
                    _mm256_cvtepu8_epi32(_mm_srli_si128::<8>(hi)),
                    fifth_bits(qh, 3),
                ),
            ]
        }
    }

    impl Decode for Q50 {
        const BYTES: usize = 22;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = _mm256_set1_ps(half_at(p));
                let qh = std::ptr::read_unaligned(p.add(2) as *const u32);
                let q = q5_values(p.add(6), qh);
                let sixteen = _mm256_set1_epi32(16);
                [
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q[0], sixteen)), d),
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q[1], sixteen)), d),
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q[2], sixteen)), d),
                    _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q[3], sixteen)), d),
                ]
            }
        }
    }

    impl Decode for Q51 {
        const BYTES: usize = 24;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = _mm256_set1_ps(half_at(p));
                let m = _mm256_set1_ps(half_at(p.add(2)));
                let qh = std::ptr::read_unaligned(p.add(4) as *const u32);
                let q = q5_values(p.add(8), qh);
                [
                    _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q[0]), d), m),
                    _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q[1]), d), m),
                    _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q[2]), d), m),
                    _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(q[3]), d), m),
                ]
            }
        }
    }

    impl Decode for Q4K {
        const BYTES: usize = 144;
        const VALUES: usize = 256;
        #[inline(always)]
        unsafe fn decode(p: *const u8, sub: usize) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract (144 readable bytes at `p`).
            unsafe {
                let scales = std::slice::from_raw_parts(p.add(4), 12);
                let (sc, mn) = scale_min_k4(sub, scales);
                let d = _mm256_set1_ps(half_at(p) * sc as f32);
                let m = _mm256_set1_ps(half_at(p.add(2)) * mn as f32);
                let q = q4k_values(p, sub);
                let lo = _mm256_castsi256_si128(q);
                let hi = _mm256_extracti128_si256::<1>(q);
                [
                    _mm256_sub_ps(
                        _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo))),
                        m,
                    ),
                    _mm256_sub_ps(
                        _mm256_mul_ps(
                            d,
                            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(lo))),
                        ),
                        m,
                    ),
                    _mm256_sub_ps(
                        _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi))),
                        m,
                    ),
                    _mm256_sub_ps(
                        _mm256_mul_ps(
                            d,
                            _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128::<8>(hi))),
                        ),
                        m,
                    ),
                ]
            }
        }
    }

    impl Decode for Q6K {
        const BYTES: usize = 210;
        const VALUES: usize = 256;
        #[inline(always)]
        unsafe fn decode(p: *const u8, sub: usize) -> [__m256; 4] {
            // SAFETY: forwarded from the trait contract (210 readable bytes at `p`).
            unsafe {
                let (n, quarter) = (sub / 4, sub % 4);
                let q = _mm256_sub_epi8(q6k_values(p, sub), _mm256_set1_epi8(32));
                let d = half_at(p.add(208));
                let sc = p.add(192 + 8 * n + 2 * quarter);
                let da = _mm256_set1_ps(d * (*sc as i8) as f32);
                let db = _mm256_set1_ps(d * (*sc.add(1) as i8) as f32);
                let lo = _mm256_castsi256_si128(q);
                let hi = _mm256_extracti128_si256::<1>(q);
                [
                    _mm256_mul_ps(da, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))),
                    _mm256_mul_ps(
                        da,
                        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(lo))),
                    ),
                    _mm256_mul_ps(db, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))),
                    _mm256_mul_ps(
                        db,
                        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(hi))),
                    ),
                ]
            }
        }
    }

    /// The f16 at `p`, converted by F16C inside the kernel (exact, as `half`'s
    /// conversion, which costs a call and a run-time feature check per value).
    #[inline(always)]
    fn half_at(p: *const u8) -> f32 {
        // SAFETY: callers pass a pointer to two readable bytes; the kernels that
        // inline this run with F16C enabled.
        unsafe {
            let bits = std::ptr::read_unaligned(p as *const u16);
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
        }
    }

    /// `out[r·m + g0 + i] = W[r] · x[g0 + i]` for `R` consecutive rows of `W` (at
    /// `rows`, `row_bytes` apart) and `G` input rows. Each (weight row, input row)
    /// pair has its own accumulator fed in the same order whatever `R` and `G` are, so
    /// the tiling changes no result; several weight rows give a single input row
    /// independent chains of FMAs (one row alone waits on its chain's latency).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile<D: Decode, const R: usize, const G: usize>(
        rows: &[u8],
        row_bytes: usize,
        x: &[f32],
        (g0, m, k): (usize, usize, usize),
        out: &mut [f32],
    ) {
        let nb = k / D::VALUES;
        let mut acc = [[_mm256_setzero_ps(); G]; R];
        let runs = nb * (D::VALUES / BLOCK);
        let (ahead, ahead_lines) = super::simd::prefetch_span(rows, R * row_bytes);
        let lines_per_run = ahead_lines.div_ceil(runs.max(1));
        for b in 0..runs {
            for l in b * lines_per_run..((b + 1) * lines_per_run).min(ahead_lines) {
                // SAFETY: a prefetch has no effect on memory; the address is inside `rows`.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.add(64 * l) as *const i8) };
            }
            let (blk, sub) = (b / (D::VALUES / BLOCK), b % (D::VALUES / BLOCK));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: block `blk` lies inside weight row `r` (nb blocks of D::BYTES
                // bytes) and each input row has k values, of which b·32..b·32+32 are
                // read.
                unsafe {
                    let w = D::decode(rows.as_ptr().add(r * row_bytes + blk * D::BYTES), sub);
                    for (i, a) in acc_r.iter_mut().enumerate() {
                        let xp = x.as_ptr().add((g0 + i) * k + b * BLOCK);
                        *a = _mm256_fmadd_ps(w[0], _mm256_loadu_ps(xp), *a);
                        *a = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xp.add(8)), *a);
                        *a = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xp.add(16)), *a);
                        *a = _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xp.add(24)), *a);
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (i, a) in acc_r.iter().enumerate() {
                out[r * m + g0 + i] = hsum(*a);
            }
        }
    }

    /// The input rows of each whole group of eight, in pairs for [`tile_pairs`]: for
    /// pair `p` (rows `2p`, `2p + 1`) and eight-value run `c`, sixteen floats, row
    /// `2p`'s values `8c .. 8c + 8` then row `2p + 1`'s.
    pub(super) fn pair_rows(x: &[f32], m: usize, k: usize) -> Vec<f32> {
        let (pairs, runs) = (m / 8 * 4, k / 8);
        let mut out = vec![0f32; pairs * runs * 16];
        for p in 0..pairs {
            for c in 0..runs {
                let o = (p * runs + c) * 16;
                out[o..o + 8].copy_from_slice(&x[2 * p * k + 8 * c..2 * p * k + 8 * c + 8]);
                out[o + 8..o + 16]
                    .copy_from_slice(&x[(2 * p + 1) * k + 8 * c..(2 * p + 1) * k + 8 * c + 8]);
            }
        }
        out
    }

    /// [`tile`] for eight input rows (`g0 ..= g0 + 7`, `g0` a multiple of eight) with
    /// AVX-512: two input rows share a 512-bit accumulator (lanes 0–7 the first row's
    /// eight-lane accumulator of [`tile`], lanes 8–15 the second's) and the weights'
    /// eight-value vectors are repeated in both halves, so every lane receives the same
    /// FMAs in the same order as in [`tile`] and the sums are bit-identical, with half
    /// the instructions. `paired` is [`pair_rows`] of the input.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
    unsafe fn tile_pairs<D: Decode, const R: usize>(
        rows: &[u8],
        row_bytes: usize,
        paired: &[f32],
        (g0, m, k): (usize, usize, usize),
        out: &mut [f32],
    ) {
        let nb = k / D::VALUES;
        let runs8 = k / 8;
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        let runs = nb * (D::VALUES / BLOCK);
        let (ahead, ahead_lines) = super::simd::prefetch_span(rows, R * row_bytes);
        let lines_per_run = ahead_lines.div_ceil(runs.max(1));
        let p0 = g0 / 2;
        for b in 0..runs {
            for l in b * lines_per_run..((b + 1) * lines_per_run).min(ahead_lines) {
                // SAFETY: a prefetch has no effect on memory; the address is inside `rows`.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.add(64 * l) as *const i8) };
            }
            let (blk, sub) = (b / (D::VALUES / BLOCK), b % (D::VALUES / BLOCK));
            for (r, acc_r) in acc.iter_mut().enumerate() {
                // SAFETY: block `blk` lies inside weight row `r`; pair `p0 + p` has
                // `runs8` runs of sixteen floats in `paired`, of which 4b..4b+4 are read.
                unsafe {
                    let w = D::decode(rows.as_ptr().add(r * row_bytes + blk * D::BYTES), sub);
                    let wd = [
                        _mm512_broadcast_f32x8(w[0]),
                        _mm512_broadcast_f32x8(w[1]),
                        _mm512_broadcast_f32x8(w[2]),
                        _mm512_broadcast_f32x8(w[3]),
                    ];
                    for (p, a) in acc_r.iter_mut().enumerate() {
                        let xp = paired.as_ptr().add(((p0 + p) * runs8 + 4 * b) * 16);
                        *a = _mm512_fmadd_ps(wd[0], _mm512_loadu_ps(xp), *a);
                        *a = _mm512_fmadd_ps(wd[1], _mm512_loadu_ps(xp.add(16)), *a);
                        *a = _mm512_fmadd_ps(wd[2], _mm512_loadu_ps(xp.add(32)), *a);
                        *a = _mm512_fmadd_ps(wd[3], _mm512_loadu_ps(xp.add(48)), *a);
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (p, a) in acc_r.iter().enumerate() {
                out[r * m + g0 + 2 * p] = hsum(_mm512_castps512_ps256(*a));
                out[r * m + g0 + 2 * p + 1] = hsum(_mm512_extractf32x8_ps::<1>(*a));
            }
        }
    }

    /// The input rows from `g0` on, fewer than eight, through [`tile`].
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rest_rows<D: Decode, const R: usize>(
        rows: &[u8],
        row_bytes: usize,
        x: &[f32],
        (mut g0, m, k): (usize, usize, usize),
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the callers' contract.
        unsafe {
            if m - g0 >= 4 {
                tile::<D, R, 4>(rows, row_bytes, x, (g0, m, k), out);
                g0 += 4;
            }
            match m - g0 {
                3 => tile::<D, R, 3>(rows, row_bytes, x, (g0, m, k), out),
                2 => tile::<D, R, 2>(rows, row_bytes, x, (g0, m, k), out),
                1 => tile::<D, R, 1>(rows, row_bytes, x, (g0, m, k), out),
                _ => {}
            }
        }
    }

    /// [`rows_against_all`] with the whole groups of eight input rows through
    /// [`tile_pairs`] (the rest through [`tile`], whose sums are the same).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512dq")]
    unsafe fn rows_against_all_paired<D: Decode, const R: usize>(
        rows: &[u8],
        row_bytes: usize,
        (x, paired): (&[f32], &[f32]),
        (m, k): (usize, usize),
        out: &mut [f32],
    ) {
        let mut g0 = 0;
        // SAFETY: forwarded from `rows_typed`'s contract.
        unsafe {
            while m - g0 >= 8 {
                tile_pairs::<D, R>(rows, row_bytes, paired, (g0, m, k), out);
                g0 += 8;
            }
            rest_rows::<D, R>(rows, row_bytes, x, (g0, m, k), out);
        }
    }

    /// `R` weight rows against all `m` input rows, in groups of at most eight.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows_against_all<D: Decode, const R: usize>(
        rows: &[u8],
        row_bytes: usize,
        x: &[f32],
        (m, k): (usize, usize),
        out: &mut [f32],
    ) {
        let mut g0 = 0;
        // SAFETY: forwarded from `rows_typed`'s contract.
        unsafe {
            while m - g0 >= 8 {
                tile::<D, R, 8>(rows, row_bytes, x, (g0, m, k), out);
                g0 += 8;
            }
            rest_rows::<D, R>(rows, row_bytes, x, (g0, m, k), out);
        }
    }

    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows_typed<D: Decode>(
        rows: &[u8],
        row_bytes: usize,
        (x, paired): (&[f32], Option<&[f32]>),
        m: usize,
        k: usize,
        out: &mut [f32],
    ) {
        let n = rows.len() / row_bytes;
        let mut r0 = 0;
        // SAFETY: forwarded from `rows`'s contract; each call gets whole rows.
        unsafe {
            if let Some(paired) = paired {
                // Two weight rows at a time: eight 512-bit accumulators in flight.
                while n - r0 >= 2 {
                    rows_against_all_paired::<D, 2>(
                        &rows[r0 * row_bytes..],
                        row_bytes,
                        (x, paired),
                        (m, k),
                        &mut out[r0 * m..],
                    );
                    r0 += 2;
                }
                while r0 < n {
                    rows_against_all_paired::<D, 1>(
                        &rows[r0 * row_bytes..],
                        row_bytes,
                        (x, paired),
                        (m, k),
                        &mut out[r0 * m..],
                    );
                    r0 += 1;
                }
                return;
            }
            // One or two input rows: four weight rows at a time (4 or 8 accumulators).
            if m <= 2 {
                while n - r0 >= 4 {
                    rows_against_all::<D, 4>(
                        &rows[r0 * row_bytes..],
                        row_bytes,
                        x,
                        (m, k),
                        &mut out[r0 * m..],
                    );
                    r0 += 4;
                }
            }
            while r0 < n {
                rows_against_all::<D, 1>(
                    &rows[r0 * row_bytes..],
                    row_bytes,
                    x,
                    (m, k),
                    &mut out[r0 * m..],
                );
                r0 += 1;
            }
        }
    }

    /// Consecutive rows of `W` (`rows`, each `row_bytes` long) against all `m` input
    /// rows; `out` holds `m` values per weight row.
    ///
    /// # Safety
    /// The CPU must support AVX2, FMA and F16C, and AVX-512 F and DQ when `x.1` (the
    /// input in pairs, [`pair_rows`]`(x.0, m, k)`) is given; each row holds `k / 32`
    /// blocks of `dtype`; `x.0` holds `m · k` values; `k % 32 == 0`; `out` holds `m`
    /// values per row.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn rows(
        dtype: StoredType,
        rows: &[u8],
        row_bytes: usize,
        x: (&[f32], Option<&[f32]>),
        m: usize,
        k: usize,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe {
            match dtype {
                StoredType::Q4_1 => rows_typed::<Q41>(rows, row_bytes, x, m, k, out),
                StoredType::Q4_0 => rows_typed::<Q40>(rows, row_bytes, x, m, k, out),
                StoredType::Q8_0 => rows_typed::<Q80>(rows, row_bytes, x, m, k, out),
                StoredType::F16 => rows_typed::<F16>(rows, row_bytes, x, m, k, out),
                StoredType::BF16 => rows_typed::<Bf16>(rows, row_bytes, x, m, k, out),
                StoredType::F32 => rows_typed::<F32>(rows, row_bytes, x, m, k, out),
                StoredType::Q5_0 => rows_typed::<Q50>(rows, row_bytes, x, m, k, out),
                StoredType::Q5_1 => rows_typed::<Q51>(rows, row_bytes, x, m, k, out),
                StoredType::Q4K => rows_typed::<Q4K>(rows, row_bytes, x, m, k, out),
                StoredType::Q6K => rows_typed::<Q6K>(rows, row_bytes, x, m, k, out),
                // Not reached: `matmul_stored` sends the other formats to
                // `row_dequantised` (see `decodes`).
                _ => out.iter_mut().for_each(|o| *o = f32::NAN),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use half::{bf16, f16};

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

    fn random_blocks(dtype: StoredType, blocks: usize, scales: &[usize]) -> Vec<u8> {
        super::super::random_blocks(dtype, blocks, scales, 0x9e37_79b9_7f4a_7c15u64)
    }

    #[test]
    fn ggml_formats_without_register_decoding_match_a_dense_product() {
        // (type, byte offsets of its f16 scales within a block)
        let types = [
            (StoredType::Q5_0, vec![0]),
            (StoredType::Q5_1, vec![0, 2]),
            (StoredType::Iq4Nl, vec![0]),
            (StoredType::Q2K, vec![80, 82]),
            (StoredType::Q3K, vec![108]),
            (StoredType::Q4K, vec![0, 2]),
            (StoredType::Q5K, vec![0, 2]),
            (StoredType::Q6K, vec![208]),
        ];
        for (dtype, scales) in types {
            let (per, _) = dtype.block();
            let (n, k) = (21, 2 * per.max(64));
            let data = random_blocks(dtype, n * k / per, &scales);
            let dense = dequantize(dtype.ggml(), &data, n * k).unwrap();
            assert!(dense.iter().all(|v| v.is_finite()), "{dtype:?}");
            let w = StoredMatrix::new(n, k, dtype, data).unwrap();
            for m in [1usize, 3, 8, 17] {
                let x: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 31 % 17) as f32 - 8.0) / 7.0)
                    .collect();
                let want = reference(&x, m, &dense, n, k);
                let few = matmul_stored(&x, m, &w);
                let tiled = super::super::matmul_tiled(&x, m, &w);
                for (i, r) in want.iter().enumerate() {
                    let tol = 1e-4 * (1.0 + r.abs());
                    assert!(
                        (few[i] - r).abs() <= tol,
                        "{dtype:?} m={m}: {} vs {r}",
                        few[i]
                    );
                    assert!(
                        (tiled[i] - r).abs() <= tol,
                        "{dtype:?} m={m} tiled: {} vs {r}",
                        tiled[i]
                    );
                }
            }
        }
    }
}
