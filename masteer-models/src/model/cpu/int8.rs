//! Products with few rows, `y ≈ x · Wᵀ`, with the input rounded to 8 bits: how
//! llama.cpp multiplies quantised weights on the CPU.
//!
//! Each input row is rounded per 32 values to signed bytes with one scale (`max|x| /
//! 127`, ggml's Q8 blocks). Each 32 stored weights are read as small unsigned integers
//! with a scale and an offset per 16 values (`w = a·q + c`: Q4_0, Q4_1, Q5_0, Q5_1,
//! Q4_K, Q6_K), or as signed bytes (Q8_0); the products are summed in integers (AVX2
//! `maddubs`, or AVX-512 VNNI `dpbusd` where the CPU has it) and scaled once per 32
//! values. Against the f32 product of [`super::matvec`] this reads the same bytes but
//! does about half the instructions per weight, at the price of rounding the input:
//! it is chosen with [`crate::Kernels::FusedInt8`], never by default.
//!
//! Every path (portable, AVX2, VNNI) computes the same integer sums and applies the
//! same floating-point operations in the same order, so they give bit-identical
//! results; the unit tests check that, and the rows of a batch equal each row alone.

use rayon::prelude::*;

use super::simd;
use crate::weights::{StoredMatrix, StoredType};

/// Values per run: the unit of scaling of both the input and the weights.
const RUN: usize = 32;

/// Input rows rounded to 8 bits per 32 values.
pub(crate) struct QuantizedRows {
    /// Values per row (a multiple of 32).
    k: usize,
    /// `rows · k` rounded values.
    q: Vec<i8>,
    /// Scale and sums of each run, `rows · k/32`.
    runs: Vec<RunStats>,
}

/// What a run of 32 rounded input values needs besides its bytes (one 16-byte read).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
struct RunStats {
    /// Scale: value ≈ `d · q`.
    d: f32,
    /// `d · Σq` over the run (for the weights' offsets).
    sum32: f32,
    /// `d · Σq` over each 16-value half (Q6_K's offsets differ by half).
    sum16: [f32; 2],
}

impl QuantizedRows {
    /// Round `m` rows of `k` values (`k % 32 == 0`). A non-finite value makes its run's
    /// scale NaN, so the products that read it are NaN, as in the f32 product.
    pub(crate) fn new(x: &[f32], m: usize, k: usize) -> Self {
        debug_assert!(k.is_multiple_of(RUN) && x.len() == m * k);
        let runs = m * k / RUN;
        let mut out = QuantizedRows {
            k,
            q: vec![0; m * k],
            runs: Vec::with_capacity(runs),
        };
        for (xs, qs) in x.chunks_exact(RUN).zip(out.q.chunks_exact_mut(RUN)) {
            let finite = xs.iter().all(|v| v.is_finite());
            let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = if finite { amax / 127.0 } else { f32::NAN };
            let id = if d != 0.0 && finite { 1.0 / d } else { 0.0 };
            let mut halves = [0i32; 2];
            for (j, (v, q)) in xs.iter().zip(qs.iter_mut()).enumerate() {
                *q = (v * id).round().clamp(-127.0, 127.0) as i8;
                halves[j / 16] += *q as i32;
            }
            out.runs.push(RunStats {
                d,
                sum32: d * (halves[0] + halves[1]) as f32,
                sum16: [d * halves[0] as f32, d * halves[1] as f32],
            });
        }
        out
    }

    fn runs_per_row(&self) -> usize {
        self.k / RUN
    }
}

/// Whether [`matmul_int8`] reads `dtype` (the others keep the f32 product).
pub(crate) fn supports(dtype: StoredType) -> bool {
    matches!(
        dtype,
        StoredType::Q8_0
            | StoredType::Q4_0
            | StoredType::Q4_1
            | StoredType::Q5_0
            | StoredType::Q5_1
            | StoredType::Q4K
            | StoredType::Q6K
    )
}

/// `y[m, n] ≈ x[m, k] · W[n, k]ᵀ` with `x` rounded to 8 bits (`supports(W.dtype)`,
/// `k % 32 == 0`). Rows of `W` are split across threads; `x` is rounded once.
pub(crate) fn matmul_int8(x: &[f32], m: usize, w: &StoredMatrix) -> Vec<f32> {
    let (n, k) = (w.rows, w.cols);
    let xq = QuantizedRows::new(x, m, k);
    let row_bytes = w.row_bytes();
    let mut yt = vec![0f32; n * m];
    let threads = rayon::current_num_threads().max(1);
    let rows_per_task = (n / (threads * 8)).clamp(8, 256);
    let kernel = Kernel::detect();
    yt.par_chunks_mut(rows_per_task * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * rows_per_task;
            let count = out.len() / m;
            let rows = &w.data[first * row_bytes..(first + count) * row_bytes];
            kernel.rows(w.dtype, rows, row_bytes, &xq, out);
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

/// Which implementation runs, chosen once from the CPU's features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kernel {
    /// Plain Rust (any CPU; aarch64 and others).
    Portable,
    /// AVX2 `maddubs` + `madd`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Avx2,
    /// AVX-512 VNNI `dpbusd` on 256-bit registers.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub(crate) fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if simd::has_avx2() {
                if std::is_x86_feature_detected!("avx512vnni")
                    && std::is_x86_feature_detected!("avx512vl")
                {
                    return Kernel::Vnni;
                }
                return Kernel::Avx2;
            }
        }
        Kernel::Portable
    }

    /// Every kernel this CPU runs (for tests and benchmarks).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn available() -> Vec<Kernel> {
        let mut v = vec![Kernel::Portable];
        let best = Kernel::detect();
        if best != Kernel::Portable {
            v.push(Kernel::Avx2);
        }
        if best == Kernel::Vnni {
            v.push(Kernel::Vnni);
        }
        v
    }

    /// Consecutive rows of `W` (`w`: whole rows of `row_bytes`, each `xq.k / 32` runs
    /// of `dtype`) against every row of `xq`; `out` holds `xq`'s row count per row.
    pub(crate) fn rows(
        self,
        dtype: StoredType,
        w: &[u8],
        row_bytes: usize,
        xq: &QuantizedRows,
        out: &mut [f32],
    ) {
        match self {
            Kernel::Portable => {
                let m = out.len() / (w.len() / row_bytes).max(1);
                for (row, o) in w.chunks_exact(row_bytes).zip(out.chunks_mut(m)) {
                    portable::row(dtype, row, xq, o);
                }
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `detect` chose these only where the CPU has their features; the
            // rows hold `xq.k / 32` runs of `dtype` (the caller's `StoredMatrix`).
            Kernel::Avx2 => unsafe { x86::rows_avx2(dtype, w, row_bytes, xq, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Vnni => unsafe { x86::rows_vnni(dtype, w, row_bytes, xq, out) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => Kernel::Portable.rows(dtype, w, row_bytes, xq, out),
        }
    }
}

/// The sum of eight lanes in the order `simd::avx2::hsum` adds them.
#[inline(always)]
fn hsum8(a: &[f32; 8]) -> f32 {
    ((a[4] + a[0]) + (a[6] + a[2])) + ((a[5] + a[1]) + (a[7] + a[3]))
}

/// The layout of one stored format, read 32 values (`sub`) at a time.
mod formats {
    use crate::gguf::dequant::scale_min_k4;
    use crate::weights::StoredType;

    /// How 32 decoded weights turn into values: `a[h]·q + c[h]` for the 16-value half
    /// `h`, `q` unsigned bytes; or `a[0]·q` with `q` signed bytes.
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Scales {
        pub a: [f32; 2],
        pub c: [f32; 2],
    }

    /// Bytes of one block and values per block.
    pub(super) fn layout(dtype: StoredType) -> (usize, usize) {
        let (per, bytes) = dtype.block();
        (bytes, per)
    }

    /// Whether `q` holds signed bytes (no offset).
    pub(super) fn signed(dtype: StoredType) -> bool {
        dtype == StoredType::Q8_0
    }

    /// Whether the two halves of a run have their own scale and offset.
    pub(super) fn split_halves(dtype: StoredType) -> bool {
        dtype == StoredType::Q6K
    }

    #[inline(always)]
    pub(super) fn half(b: &[u8]) -> f32 {
        half::f16::from_le_bytes([b[0], b[1]]).to_f32()
    }

    /// Values `32·sub .. 32·sub + 32` of the block `b` into `q`, with their scales.
    pub(super) fn decode(dtype: StoredType, b: &[u8], sub: usize, q: &mut [u8; 32]) -> Scales {
        let nib = |qs: &[u8], q: &mut [u8; 32]| {
            for j in 0..16 {
                q[j] = qs[j] & 0x0f;
                q[j + 16] = qs[j] >> 4;
            }
        };
        let fifth = |qh: u32, q: &mut [u8; 32]| {
            for (j, v) in q.iter_mut().enumerate() {
                *v |= (((qh >> j) & 1) as u8) << 4;
            }
        };
        match dtype {
            StoredType::Q8_0 => {
                q.copy_from_slice(&b[2..34]);
                let d = half(b);
                Scales {
                    a: [d, d],
                    c: [0.0, 0.0],
                }
            }
            StoredType::Q4_0 => {
                nib(&b[2..18], q);
                let d = half(b);
                Scales {
                    a: [d, d],
                    c: [-8.0 * d, -8.0 * d],
                }
            }
            StoredType::Q4_1 => {
                nib(&b[4..20], q);
                let (d, m) = (half(b), half(&b[2..]));
                Scales {
                    a: [d, d],
                    c: [m, m],
                }
            }
            StoredType::Q5_0 => {
                nib(&b[6..22], q);
                fifth(u32::from_le_bytes([b[2], b[3], b[4], b[5]]), q);
                let d = half(b);
                Scales {
                    a: [d, d],
                    c: [-16.0 * d, -16.0 * d],
                }
            }
            StoredType::Q5_1 => {
                nib(&b[8..24], q);
                fifth(u32::from_le_bytes([b[4], b[5], b[6], b[7]]), q);
                let (d, m) = (half(b), half(&b[2..]));
                Scales {
                    a: [d, d],
                    c: [m, m],
                }
            }
            StoredType::Q4K => {
                let qs = &b[16 + 32 * (sub / 2)..16 + 32 * (sub / 2) + 32];
                let shift = if sub.is_multiple_of(2) { 0 } else { 4 };
                for (v, s) in q.iter_mut().zip(qs) {
                    *v = (s >> shift) & 0x0f;
                }
                let (sc, mn) = scale_min_k4(sub, &b[4..16]);
                let a = half(b) * sc as f32;
                let c = -(half(&b[2..]) * mn as f32);
                Scales {
                    a: [a, a],
                    c: [c, c],
                }
            }
            StoredType::Q6K => {
                let (n, quarter) = (sub / 4, sub % 4);
                let ql = &b[64 * n + 32 * (quarter % 2)..][..32];
                let qh = &b[128 + 32 * n..][..32];
                let (sl, sh) = (if quarter < 2 { 0 } else { 4 }, 2 * quarter);
                for j in 0..32 {
                    q[j] = ((ql[j] >> sl) & 0x0f) | (((qh[j] >> sh) & 3) << 4);
                }
                let d = half(&b[208..]);
                let sc = &b[192 + 8 * n + 2 * quarter..];
                let (a0, a1) = (d * (sc[0] as i8) as f32, d * (sc[1] as i8) as f32);
                Scales {
                    a: [a0, a1],
                    c: [-32.0 * a0, -32.0 * a1],
                }
            }
            // `supports` keeps the other formats away.
            _ => Scales {
                a: [f32::NAN; 2],
                c: [f32::NAN; 2],
            },
        }
    }
}

/// The portable kernel: the reference every other one equals.
mod portable {
    use super::formats::{self, Scales};
    use super::{hsum8, QuantizedRows, RUN};
    use crate::weights::StoredType;

    pub(super) fn row(dtype: StoredType, row: &[u8], xq: &QuantizedRows, out: &mut [f32]) {
        let (bytes, per) = formats::layout(dtype);
        let (signed, split) = (formats::signed(dtype), formats::split_halves(dtype));
        let runs = xq.runs_per_row();
        let mut acc = vec![[0f32; 8]; out.len()];
        let mut off = vec![0f32; out.len()];
        let mut q = [0u8; 32];
        for r in 0..runs {
            let (blk, sub) = (r * RUN / per, (r * RUN % per) / RUN);
            let s: Scales =
                formats::decode(dtype, &row[blk * bytes..(blk + 1) * bytes], sub, &mut q);
            for (i, (a, o)) in acc.iter_mut().zip(off.iter_mut()).enumerate() {
                let xs = &xq.q[i * xq.k + r * RUN..][..RUN];
                let st = xq.runs[i * runs + r];
                let dx = st.d;
                for (l, lane) in a.iter_mut().enumerate() {
                    let mut isum = 0i32;
                    for j in 4 * l..4 * l + 4 {
                        let w = if signed {
                            q[j] as i8 as i32
                        } else {
                            q[j] as i32
                        };
                        isum += w * xs[j] as i32;
                    }
                    let scale = s.a[l / 4] * dx;
                    *lane = (isum as f32).mul_add(scale, *lane);
                }
                if signed {
                    continue;
                }
                if split {
                    *o = s.c[0].mul_add(st.sum16[0], *o);
                    *o = s.c[1].mul_add(st.sum16[1], *o);
                } else {
                    *o = s.c[0].mul_add(st.sum32, *o);
                }
            }
        }
        for ((y, a), o) in out.iter_mut().zip(&acc).zip(&off) {
            *y = hsum8(a) + o;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::super::simd::avx2::{hsum, q4k_values, q6k_values};
    use super::super::simd::prefetch_span;
    use super::{QuantizedRows, RUN};
    use crate::gguf::dequant::scale_min_k4;
    use crate::weights::StoredType;

    /// 32 weights as bytes (unsigned, or signed for Q8_0) with their scales: `a` per
    /// lane (four lanes per 16-value half) and the offsets `c` of the two halves.
    struct Run {
        q: __m256i,
        a: __m256,
        c: [f32; 2],
    }

    /// One stored format's register decoder.
    trait Decode {
        const BYTES: usize;
        const VALUES: usize = RUN;
        /// Signed bytes, no offsets (Q8_0).
        const SIGNED: bool = false;
        /// Each half has its own offset (Q6_K).
        const SPLIT: bool = false;
        /// # Safety
        /// `p` points at one complete block; `sub < VALUES / 32`; AVX2 is present.
        unsafe fn decode(p: *const u8, sub: usize) -> Run;
    }

    /// The integer dot product of 32 unsigned by 32 signed bytes into eight i32 lanes
    /// (lane `l` sums values `4l .. 4l + 4`).
    trait Product {
        /// # Safety
        /// The CPU has the instructions the implementation uses.
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i;
    }

    struct Maddubs;
    struct Vnni;

    impl Product for Maddubs {
        #[inline(always)]
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i {
            // Pairs of products fit an i16: |w| ≤ 128 (Q8_0's magnitude) or ≤ 63
            // (unsigned formats), |x| ≤ 127, so 2·128·127 < 2^15 and no saturation.
            _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1))
        }
    }

    impl Product for Vnni {
        #[inline(always)]
        unsafe fn dot(w: __m256i, x: __m256i) -> __m256i {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), w, x)
        }
    }

    /// The f16 at `p` (F16C; the conversion is exact, as `half`'s).
    #[inline(always)]
    unsafe fn half(p: *const u8) -> f32 {
        // SAFETY: two readable bytes at `p` (the callers' block contract); F16C present.
        unsafe {
            let bits = std::ptr::read_unaligned(p as *const u16);
            _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
        }
    }

    /// The two f16 at `p` and `p + 2`.
    #[inline(always)]
    unsafe fn halves(p: *const u8) -> (f32, f32) {
        // SAFETY: four readable bytes at `p`; F16C present.
        unsafe {
            let v = _mm_cvtph_ps(_mm_cvtsi32_si128(std::ptr::read_unaligned(p as *const i32)));
            (_mm_cvtss_f32(v), _mm_cvtss_f32(_mm_movehdup_ps(v)))
        }
    }

    /// Both halves scaled by `a`.
    #[inline(always)]
    unsafe fn same(a: f32) -> __m256 {
        _mm256_set1_ps(a)
    }

    /// Nibbles of 16 bytes at `p`: low nibbles as values 0..16, high ones as 16..32.
    #[inline(always)]
    unsafe fn nibbles(p: *const u8) -> __m256i {
        // SAFETY: 16 readable bytes at `p` (the callers' block contract).
        unsafe {
            let qs = _mm_loadu_si128(p as *const __m128i);
            let mask = _mm_set1_epi8(0x0f);
            _mm256_set_m128i(
                _mm_and_si128(_mm_srli_epi16::<4>(qs), mask),
                _mm_and_si128(qs, mask),
            )
        }
    }

    /// 16 in byte `j` where bit `j` of `qh` is set, else 0.
    #[inline(always)]
    unsafe fn fifth_bits(qh: u32) -> __m256i {
        let v = _mm256_set1_epi32(qh as i32);
        let spread = _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
            3, 3, 3,
        );
        let bytes = _mm256_shuffle_epi8(v, spread);
        let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
        let set = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
        _mm256_and_si256(set, _mm256_set1_epi8(16))
    }

    struct Q80;
    struct Q40;
    struct Q41;
    struct Q50;
    struct Q51;
    struct Q4K;
    struct Q6K;

    impl Decode for Q80 {
        const BYTES: usize = 34;
        const SIGNED: bool = true;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> Run {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = half(p);
                Run {
                    q: _mm256_loadu_si256(p.add(2) as *const __m256i),
                    a: same(d),
                    c: [0.0, 0.0],
                }
            }
        }
    }

    impl Decode for Q40 {
        const BYTES: usize = 18;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> Run {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = half(p);
                Run {
                    q: nibbles(p.add(2)),
                    a: same(d),
                    c: [-8.0 * d, -8.0 * d],
                }
            }
        }
    }

    impl Decode for Q41 {
        const BYTES: usize = 20;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> Run {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let (d, m) = halves(p);
                Run {
                    q: nibbles(p.add(4)),
                    a: same(d),
                    c: [m, m],
                }
            }
        }
    }

    impl Decode for Q50 {
        const BYTES: usize = 22;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> Run {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let d = half(p);
                let qh = std::ptr::read_unaligned(p.add(2) as *const u32);
                Run {
                    q: _mm256_or_si256(nibbles(p.add(6)), fifth_bits(u32::from_le(qh))),
                    a: same(d),
                    c: [-16.0 * d, -16.0 * d],
                }
            }
        }
    }

    impl Decode for Q51 {
        const BYTES: usize = 24;
        #[inline(always)]
        unsafe fn decode(p: *const u8, _sub: usize) -> Run {
            // SAFETY: forwarded from the trait contract.
            unsafe {
                let (d, m) = halves(p);
                let qh = std::ptr::read_unaligned(p.add(4) as *const u32);
                Run {
                    q: _mm256_or_si256(nibbles(p.add(8)), fifth_bits(u32::from_le(qh))),
                    a: same(d),
                    c: [m, m],
                }
            }
        }
    }

    impl Decode for Q4K {
        const BYTES: usize = 144;
        const VALUES: usize = 256;
        #[inline(always)]
        unsafe fn decode(p: *const u8, sub: usize) -> Run {
            // SAFETY: forwarded from the trait contract (144 readable bytes at `p`).
            unsafe {
                let (sc, mn) = scale_min_k4(sub, std::slice::from_raw_parts(p.add(4), 12));
                let (d, dmin) = halves(p);
                let a = d * sc as f32;
                let c = -(dmin * mn as f32);
                Run {
                    q: q4k_values(p, sub),
                    a: same(a),
                    c: [c, c],
                }
            }
        }
    }

    impl Decode for Q6K {
        const BYTES: usize = 210;
        const VALUES: usize = 256;
        const SPLIT: bool = true;
        #[inline(always)]
        unsafe fn decode(p: *const u8, sub: usize) -> Run {
            // SAFETY: forwarded from the trait contract (210 readable bytes at `p`).
            unsafe {
                let (n, quarter) = (sub / 4, sub % 4);
                let d = half(p.add(208));
                let sc = p.add(192 + 8 * n + 2 * quarter);
                let (a0, a1) = (d * (*sc as i8) as f32, d * (*sc.add(1) as i8) as f32);
                Run {
                    q: q6k_values(p, sub),
                    a: _mm256_setr_ps(a0, a0, a0, a0, a1, a1, a1, a1),
                    c: [-32.0 * a0, -32.0 * a1],
                }
            }
        }
    }

    /// `out[r·m + g0 + i]` for `R` consecutive weight rows (`row_bytes` apart) and `G`
    /// input rows: for each pair the same operations, in the same order, as the
    /// portable kernel, whatever `R` and `G` are.
    #[inline(always)]
    unsafe fn tile<D: Decode, P: Product, const R: usize, const G: usize>(
        rows: &[u8],
        row_bytes: usize,
        xq: &QuantizedRows,
        (g0, m): (usize, usize),
        out: &mut [f32],
    ) {
        let runs = xq.runs_per_row();
        let per = D::VALUES / RUN;
        let mut acc = [[_mm256_setzero_ps(); G]; R];
        let mut off = [[0f32; G]; R];
        // The tile after this one is fetched ahead, evenly over the runs (a task's
        // rows are too few kilobytes for the hardware prefetcher to ramp up alone).
        let (ahead, ahead_lines) = prefetch_span(rows, R * row_bytes);
        let lines_per_run = ahead_lines.div_ceil(runs.max(1));
        for r in 0..runs {
            for l in r * lines_per_run..((r + 1) * lines_per_run).min(ahead_lines) {
                // SAFETY: a prefetch has no effect on memory; the address is inside `rows`.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(ahead.add(64 * l) as *const i8) };
            }
            for w_row in 0..R {
                // SAFETY: run `r` lies inside weight row `w_row` (runs · 32 values of
                // `D`) and each input row has `k` values, of which r·32..r·32+32 are
                // read.
                unsafe {
                    let w = D::decode(
                        rows.as_ptr().add(w_row * row_bytes + (r / per) * D::BYTES),
                        r % per,
                    );
                    let wu = if D::SIGNED {
                        _mm256_sign_epi8(w.q, w.q)
                    } else {
                        w.q
                    };
                    for i in 0..G {
                        let row_i = g0 + i;
                        let st = &*xq.runs.as_ptr().add(row_i * runs + r);
                        let x = _mm256_loadu_si256(
                            xq.q.as_ptr().add(row_i * xq.k + r * RUN) as *const __m256i
                        );
                        let x = if D::SIGNED {
                            _mm256_sign_epi8(x, w.q)
                        } else {
                            x
                        };
                        let isum = P::dot(wu, x);
                        let scale = _mm256_mul_ps(w.a, _mm256_set1_ps(st.d));
                        let a = &mut acc[w_row][i];
                        *a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, *a);
                        if D::SIGNED {
                            continue;
                        }
                        let o = &mut off[w_row][i];
                        if D::SPLIT {
                            *o = w.c[0].mul_add(st.sum16[0], *o);
                            *o = w.c[1].mul_add(st.sum16[1], *o);
                        } else {
                            *o = w.c[0].mul_add(st.sum32, *o);
                        }
                    }
                }
            }
        }
        for w_row in 0..R {
            for i in 0..G {
                // SAFETY: AVX2 is present (the callers' target features).
                out[w_row * m + g0 + i] = unsafe { hsum(acc[w_row][i]) } + off[w_row][i];
            }
        }
    }

    /// `R` weight rows against every input row, in groups of at most eight.
    #[inline(always)]
    unsafe fn against_all<D: Decode, P: Product, const R: usize>(
        rows: &[u8],
        row_bytes: usize,
        xq: &QuantizedRows,
        m: usize,
        out: &mut [f32],
    ) {
        let mut g0 = 0;
        // SAFETY: forwarded from the callers' contract.
        unsafe {
            while m - g0 >= 8 {
                tile::<D, P, R, 8>(rows, row_bytes, xq, (g0, m), out);
                g0 += 8;
            }
            if m - g0 >= 4 {
                tile::<D, P, R, 4>(rows, row_bytes, xq, (g0, m), out);
                g0 += 4;
            }
            match m - g0 {
                3 => tile::<D, P, R, 3>(rows, row_bytes, xq, (g0, m), out),
                2 => tile::<D, P, R, 2>(rows, row_bytes, xq, (g0, m), out),
                1 => tile::<D, P, R, 1>(rows, row_bytes, xq, (g0, m), out),
                _ => {}
            }
        }
    }

    /// Consecutive weight rows against every input row: four weight rows at a time
    /// for one or two input rows (independent chains), one at a time otherwise.
    #[inline(always)]
    unsafe fn rows<D: Decode, P: Product>(
        rows: &[u8],
        row_bytes: usize,
        xq: &QuantizedRows,
        out: &mut [f32],
    ) {
        let n = rows.len() / row_bytes;
        let m = out.len() / n.max(1);
        let mut r0 = 0;
        // SAFETY: forwarded from the callers' contract; each call gets whole rows.
        unsafe {
            if m <= 2 {
                while n - r0 >= 4 {
                    against_all::<D, P, 4>(
                        &rows[r0 * row_bytes..],
                        row_bytes,
                        xq,
                        m,
                        &mut out[r0 * m..],
                    );
                    r0 += 4;
                }
            }
            while r0 < n {
                against_all::<D, P, 1>(
                    &rows[r0 * row_bytes..],
                    row_bytes,
                    xq,
                    m,
                    &mut out[r0 * m..],
                );
                r0 += 1;
            }
        }
    }

    #[inline(always)]
    unsafe fn dispatch<P: Product>(
        dtype: StoredType,
        w: &[u8],
        row_bytes: usize,
        xq: &QuantizedRows,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the callers' contract.
        unsafe {
            match dtype {
                StoredType::Q8_0 => rows::<Q80, P>(w, row_bytes, xq, out),
                StoredType::Q4_0 => rows::<Q40, P>(w, row_bytes, xq, out),
                StoredType::Q4_1 => rows::<Q41, P>(w, row_bytes, xq, out),
                StoredType::Q5_0 => rows::<Q50, P>(w, row_bytes, xq, out),
                StoredType::Q5_1 => rows::<Q51, P>(w, row_bytes, xq, out),
                StoredType::Q4K => rows::<Q4K, P>(w, row_bytes, xq, out),
                StoredType::Q6K => rows::<Q6K, P>(w, row_bytes, xq, out),
                // `supports` keeps the other formats away.
                _ => out.iter_mut().for_each(|o| *o = f32::NAN),
            }
        }
    }

    /// Consecutive rows of `W` (`row_bytes` each) against every row of `xq`, with
    /// AVX2; `out` holds `xq`'s row count per weight row.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; each row holds `xq.k / 32` runs of `dtype`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn rows_avx2(
        dtype: StoredType,
        w: &[u8],
        row_bytes: usize,
        xq: &QuantizedRows,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { dispatch::<Maddubs>(dtype, w, row_bytes, xq, out) }
    }

    /// As [`rows_avx2`], with AVX-512 VNNI on 256 bits.
    ///
    /// # Safety
    /// As [`rows_avx2`], and the CPU has AVX512-VNNI and AVX512-VL.
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub(super) unsafe fn rows_vnni(
        dtype: StoredType,
        w: &[u8],
        row_bytes: usize,
        xq: &QuantizedRows,
        out: &mut [f32],
    ) {
        // SAFETY: forwarded from the caller's contract.
        unsafe { dispatch::<Vnni>(dtype, w, row_bytes, xq, out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::dequant::dequantize;

    fn random_blocks(dtype: StoredType, blocks: usize, scales: &[usize]) -> Vec<u8> {
        super::super::random_blocks(dtype, blocks, scales, 0x2545_f491_4f6c_dd1du64)
    }

    fn formats() -> Vec<(StoredType, Vec<usize>)> {
        vec![
            (StoredType::Q8_0, vec![0]),
            (StoredType::Q4_0, vec![0]),
            (StoredType::Q4_1, vec![0, 2]),
            (StoredType::Q5_0, vec![0]),
            (StoredType::Q5_1, vec![0, 2]),
            (StoredType::Q4K, vec![0, 2]),
            (StoredType::Q6K, vec![208]),
        ]
    }

    fn inputs(m: usize, k: usize) -> Vec<f32> {
        (0..m * k)
            .map(|i| (((i * 7919) % 1013) as f32 - 506.0) / 97.0)
            .collect()
    }

    #[test]
    fn every_kernel_equals_the_portable_one_bit_for_bit() {
        for (dtype, scales) in formats() {
            let (per, _) = dtype.block();
            let (n, k) = (13, 2 * per.max(64));
            let w =
                StoredMatrix::new(n, k, dtype, random_blocks(dtype, n * k / per, &scales)).unwrap();
            for m in [1usize, 2, 3, 4, 5, 7, 16] {
                let xq = QuantizedRows::new(&inputs(m, k), m, k);
                let mut want = vec![0f32; n * m];
                Kernel::Portable.rows(dtype, &w.data, w.row_bytes(), &xq, &mut want);
                for kernel in Kernel::available() {
                    let mut got = vec![0f32; n * m];
                    kernel.rows(dtype, &w.data, w.row_bytes(), &xq, &mut got);
                    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{dtype:?} {kernel:?} m={m}");
                }
            }
        }
    }

    #[test]
    fn products_are_close_to_the_exact_ones_and_rows_are_independent() {
        for (dtype, scales) in formats() {
            let (per, _) = dtype.block();
            let (n, k) = (11, 2 * per.max(64));
            let data = random_blocks(dtype, n * k / per, &scales);
            let dense = dequantize(dtype.ggml(), &data, n * k).unwrap();
            let w = StoredMatrix::new(n, k, dtype, data).unwrap();
            let m = 5;
            let x = inputs(m, k);
            let got = matmul_int8(&x, m, &w);
            for i in 0..m {
                let alone = matmul_int8(&x[i * k..(i + 1) * k], 1, &w);
                assert_eq!(
                    &got[i * n..(i + 1) * n],
                    alone.as_slice(),
                    "{dtype:?} row {i}"
                );
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|t| x[i * k + t] as f64 * dense[j * k + t] as f64)
                        .sum();
                    let scale: f64 = (0..k)
                        .map(|t| (x[i * k + t] as f64 * dense[j * k + t] as f64).abs())
                        .sum();
                    // Rounding the input to 8 bits moves each product by at most half a
                    // step (max|x|/254) per value: well under 1% of Σ|x·w| here.
                    assert!(
                        (got[i * n + j] as f64 - exact).abs() <= 0.01 * scale + 1e-6,
                        "{dtype:?} ({i}, {j}): {} vs {exact}",
                        got[i * n + j]
                    );
                }
            }
        }
    }

    #[test]
    fn rounding_follows_ggml_q8_blocks() {
        let x: Vec<f32> = (0..32).map(|i| i as f32 - 12.7).collect();
        let q = QuantizedRows::new(&x, 1, 32);
        let d = 18.3f32 / 127.0;
        assert_eq!(q.runs[0].d, d);
        assert_eq!(q.q[31], 127);
        assert_eq!(q.q[0], (-12.7f32 / d).round() as i8);
        let sum: i32 = q.q.iter().map(|v| *v as i32).sum();
        assert_eq!(q.runs[0].sum32, d * sum as f32);
        // A zero run has a zero scale and zero values; a NaN makes its run's scale NaN.
        let z = QuantizedRows::new(&[0.0; 32], 1, 32);
        assert_eq!((z.runs[0].d, z.q[5]), (0.0, 0));
        let mut bad = x.clone();
        bad[3] = f32::NAN;
        assert!(QuantizedRows::new(&bad, 1, 32).runs[0].d.is_nan());
    }
}
