//! RoPE, KV-cache writes and grouped-query attention over host buffers.
//!
//! Layouts: the fused projection output is `[batch·cols, (heads + 2·kv_heads)·head_dim]`
//! (queries, then keys, then values); each cache is `[batch, kv_heads, capacity, head_dim]`;
//! the output is `[batch·cols, heads·head_dim]`, the layout of the `attn_heads` site.
//! Query head `h` reads key/value head `h / (heads / kv_heads)`, as in Hugging Face.

use rayon::prelude::*;

use super::simd;

/// Sizes of one attention call.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AttentionShape {
    pub batch: usize,
    pub cols: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Columns the cache can hold.
    pub capacity: usize,
    /// Columns already in the cache before this call.
    pub past: usize,
}

impl AttentionShape {
    fn qkv_width(&self) -> usize {
        (self.heads + 2 * self.kv_heads) * self.head_dim
    }
}

/// Rotate the query and key heads of every row in place (rotate-half convention).
/// `cos`/`sin` hold `head_dim / 2` values per row.
pub(crate) fn rope_rows(qkv: &mut [f32], s: &AttentionShape, cos: &[f32], sin: &[f32]) {
    let hd = s.head_dim;
    let half = hd / 2;
    let width = s.qkv_width();
    let rotated_heads = s.heads + s.kv_heads;
    qkv.par_chunks_mut(width)
        .zip(cos.par_chunks(half).zip(sin.par_chunks(half)))
        .for_each(|(row, (c, sn))| {
            for head in 0..rotated_heads {
                let x = &mut row[head * hd..(head + 1) * hd];
                let (x1, x2) = x.split_at_mut(half);
                for i in 0..half {
                    let (a, b) = (x1[i], x2[i]);
                    x1[i] = a * c[i] - b * sn[i];
                    x2[i] = b * c[i] + a * sn[i];
                }
            }
        });
}

/// Copy the key and value heads of the new columns into the caches.
pub(crate) fn write_cache(
    qkv: &[f32],
    s: &AttentionShape,
    k_cache: &mut [f32],
    v_cache: &mut [f32],
) {
    let hd = s.head_dim;
    let width = s.qkv_width();
    for b in 0..s.batch {
        for c in 0..s.cols {
            let row = &qkv[(b * s.cols + c) * width..(b * s.cols + c + 1) * width];
            for kvh in 0..s.kv_heads {
                let dst = ((b * s.kv_heads + kvh) * s.capacity + s.past + c) * hd;
                let k_src = (s.heads + kvh) * hd;
                let v_src = (s.heads + s.kv_heads + kvh) * hd;
                k_cache[dst..dst + hd].copy_from_slice(&row[k_src..k_src + hd]);
                v_cache[dst..dst + hd].copy_from_slice(&row[v_src..v_src + hd]);
            }
        }
    }
}

/// Queries handled by one task of a prefill.
const QUERY_BLOCK: usize = 64;

/// Causal attention of the new columns' queries over every cached key of the same
/// sequence; keys in a sequence's left padding are skipped (a padding query attends
/// only to itself, so no row is empty). Tasks are (sequence, head, block of queries).
pub(crate) fn attention(
    qkv: &[f32],
    s: &AttentionShape,
    pads: &[usize],
    k_cache: &[f32],
    v_cache: &[f32],
) -> Vec<f32> {
    let hd = s.head_dim;
    let blocks = s.cols.div_ceil(QUERY_BLOCK);
    let outputs: Vec<Vec<f32>> = (0..s.batch * s.heads * blocks)
        .into_par_iter()
        .map(|task| {
            let t = Task {
                b: task / (s.heads * blocks),
                h: (task / blocks) % s.heads,
                c0: (task % blocks) * QUERY_BLOCK,
                c1: ((task % blocks + 1) * QUERY_BLOCK).min(s.cols),
            };
            let mut out = vec![0f32; (t.c1 - t.c0) * hd];
            run_task(qkv, s, pads[t.b], k_cache, v_cache, &t, &mut out);
            out
        })
        .collect();
    let mut result = vec![0f32; s.batch * s.cols * s.heads * hd];
    for (task, out) in outputs.iter().enumerate() {
        let (b, h, c0) = (
            task / (s.heads * blocks),
            (task / blocks) % s.heads,
            (task % blocks) * QUERY_BLOCK,
        );
        for (i, o) in out.chunks(hd).enumerate() {
            let dst = (b * s.cols + c0 + i) * s.heads * hd + h * hd;
            result[dst..dst + hd].copy_from_slice(o);
        }
    }
    result
}

/// One (sequence, head, query block) unit of work.
struct Task {
    b: usize,
    h: usize,
    c0: usize,
    c1: usize,
}

/// Keys `lo..=hi` visible to the query in cache column `col`.
#[inline]
fn key_range(col: usize, pad: usize) -> (usize, usize) {
    if col < pad {
        (col, col)
    } else {
        (pad, col)
    }
}

fn run_task(
    qkv: &[f32],
    s: &AttentionShape,
    pad: usize,
    k_cache: &[f32],
    v_cache: &[f32],
    t: &Task,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if simd::has_avx2() {
        // SAFETY: AVX2/FMA presence checked by `has_avx2`.
        unsafe { x86::run_task(qkv, s, pad, k_cache, v_cache, t, out) };
        return;
    }
    run_task_portable(qkv, s, pad, k_cache, v_cache, t, out);
}

fn run_task_portable(
    qkv: &[f32],
    s: &AttentionShape,
    pad: usize,
    k_cache: &[f32],
    v_cache: &[f32],
    t: &Task,
    out: &mut [f32],
) {
    let hd = s.head_dim;
    let width = s.qkv_width();
    let kvh = t.h / (s.heads / s.kv_heads);
    let base = (t.b * s.kv_heads + kvh) * s.capacity * hd;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut scores = Vec::new();
    for c in t.c0..t.c1 {
        let row = (t.b * s.cols + c) * width + t.h * hd;
        let q = &qkv[row..row + hd];
        let (lo, hi) = key_range(s.past + c, pad);
        scores.clear();
        scores.extend(
            (lo..=hi).map(|j| {
                simd::dot_portable(q, &k_cache[base + j * hd..base + (j + 1) * hd]) * scale
            }),
        );
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for v in scores.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let o = &mut out[(c - t.c0) * hd..(c - t.c0 + 1) * hd];
        for (idx, j) in (lo..=hi).enumerate() {
            let p = scores[idx] / sum;
            for (oi, vi) in o
                .iter_mut()
                .zip(&v_cache[base + j * hd..base + (j + 1) * hd])
            {
                *oi += p * vi;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::simd::avx2;
    use super::{key_range, AttentionShape, Task};

    /// AVX2 version: one query at a time for decode steps; for a block of queries, the
    /// scores and the weighted values are two matrix products over the block's keys.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn run_task(
        qkv: &[f32],
        s: &AttentionShape,
        pad: usize,
        k_cache: &[f32],
        v_cache: &[f32],
        t: &Task,
        out: &mut [f32],
    ) {
        let hd = s.head_dim;
        let width = s.qkv_width();
        let kvh = t.h / (s.heads / s.kv_heads);
        let base = (t.b * s.kv_heads + kvh) * s.capacity * hd;
        let keys = &k_cache[base..base + s.capacity * hd];
        let values = &v_cache[base..base + s.capacity * hd];
        let scale = 1.0 / (hd as f32).sqrt();
        let n_q = t.c1 - t.c0;
        if n_q == 1 {
            let c = t.c0;
            let row = (t.b * s.cols + c) * width + t.h * hd;
            let q = &qkv[row..row + hd];
            let (lo, hi) = key_range(s.past + c, pad);
            let mut scores: Vec<f32> = (lo..=hi)
                .map(|j| avx2::dot(q, &keys[j * hd..(j + 1) * hd]) * scale)
                .collect();
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let inv = 1.0 / avx2::exp_shifted_sum(&mut scores, max);
            for (idx, j) in (lo..=hi).enumerate() {
                avx2::axpy(scores[idx] * inv, &values[j * hd..(j + 1) * hd], out);
            }
            return;
        }
        // Keys any query of the block may see: from the padding's end (or the first
        // padding query) to the last query.
        let first = key_range(s.past + t.c0, pad).0;
        let last = s.past + t.c1 - 1;
        let n_k = last + 1 - first;
        let mut scores = vec![0f32; n_q * n_k];
        // SAFETY: pointers and strides describe in-bounds [n_q, hd], [hd, n_k] and
        // [n_q, n_k] matrices of the slices above.
        unsafe {
            gemm::gemm(
                n_q,
                n_k,
                hd,
                scores.as_mut_ptr(),
                1,
                n_k as isize,
                false,
                qkv.as_ptr().add((t.b * s.cols + t.c0) * width + t.h * hd),
                1,
                width as isize,
                keys.as_ptr().add(first * hd),
                hd as isize,
                1,
                0.0f32,
                scale,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for (i, row) in scores.chunks_mut(n_k).enumerate() {
            let (lo, hi) = key_range(s.past + t.c0 + i, pad);
            let (lo, hi) = (lo - first, hi - first);
            let valid = &mut row[lo..=hi];
            let max = valid.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let inv = 1.0 / avx2::exp_shifted_sum(valid, max);
            valid.iter_mut().for_each(|v| *v *= inv);
            row[..lo].iter_mut().for_each(|v| *v = 0.0);
            row[hi + 1..].iter_mut().for_each(|v| *v = 0.0);
        }
        // SAFETY: as above, for [n_q, n_k] · [n_k, hd] into [n_q, hd].
        unsafe {
            gemm::gemm(
                n_q,
                hd,
                n_k,
                out.as_mut_ptr(),
                1,
                hd as isize,
                false,
                scores.as_ptr(),
                1,
                n_k as isize,
                values.as_ptr().add(first * hd),
                1,
                hd as isize,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}
