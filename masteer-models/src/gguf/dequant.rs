//! Dequantisation of ggml tensor types to f32, with ggml's block layouts.
//!
//! - `Q4_0`: 18 bytes per 32 values: f16 scale `d`, 16 bytes of nibbles; `v = (q − 8)·d`.
//! - `Q4_1`: 20 bytes per 32 values: f16 `d`, f16 `m`, 16 bytes of nibbles; `v = q·d + m`.
//! - `Q8_0`: 34 bytes per 32 values: f16 `d`, 32 × i8; `v = q·d`.
//!
//! - K-quants (`Q2_K`…`Q6_K`): super-blocks of 256 values with 6- or 8-bit sub-block
//!   scales (and minimums for Q2/Q4/Q5), in ggml's field order (see each function).
//!
//! In the 4-bit types value `j < 16` is the low nibble of byte `j`, value `j ≥ 16` the
//! high nibble of byte `j − 16`. The arithmetic is done in f32 exactly as ggml does it,
//! so the result equals llama.cpp's own F32 dequantisation bit for bit.

use half::{bf16, f16};
use rayon::prelude::*;

use super::types::GgmlType;

/// Values per quantisation block of the block types.
pub const QK: usize = 32;

/// Chunk of blocks handled by one rayon task.
const BLOCKS_PER_TASK: usize = 1024;

#[inline]
fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantise one Q4_0 block (18 bytes) into 32 values.
#[inline]
pub fn dequant_block_q4_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let qs = &block[2..18];
    for j in 0..16 {
        out[j] = ((qs[j] & 0x0f) as i32 - 8) as f32 * d;
        out[j + 16] = ((qs[j] >> 4) as i32 - 8) as f32 * d;
    }
}

/// Dequantise one Q4_1 block (20 bytes) into 32 values.
#[inline]
pub fn dequant_block_q4_1(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    let m = f16_at(block, 2);
    let qs = &block[4..20];
    for j in 0..16 {
        out[j] = (qs[j] & 0x0f) as f32 * d + m;
        out[j + 16] = (qs[j] >> 4) as f32 * d + m;
    }
}

/// Dequantise one Q8_0 block (34 bytes) into 32 values.
#[inline]
pub fn dequant_block_q8_0(block: &[u8], out: &mut [f32]) {
    let d = f16_at(block, 0);
    for j in 0..QK {
        out[j] = (block[2 + j] as i8) as f32 * d;
    }
}

/// Q5_0 (22 bytes): f16 `d`, `qh[4]` (fifth bits), `qs[16]`; `v = (q − 16)·d`.
pub fn dequant_block_q5_0(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
    let qs = &b[6..22];
    for j in 0..16 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        y[j] = (((qs[j] & 0x0f) as u32 | h0) as i32 - 16) as f32 * d;
        y[j + 16] = (((qs[j] >> 4) as u32 | h1) as i32 - 16) as f32 * d;
    }
}

/// Q5_1 (24 bytes): f16 `d`, f16 `m`, `qh[4]`, `qs[16]`; `v = q·d + m`.
pub fn dequant_block_q5_1(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let m = f16_at(b, 2);
    let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let qs = &b[8..24];
    for j in 0..16 {
        let h0 = ((qh >> j) << 4) & 0x10;
        let h1 = (qh >> (j + 12)) & 0x10;
        y[j] = ((qs[j] & 0x0f) as u32 | h0) as f32 * d + m;
        y[j + 16] = ((qs[j] >> 4) as u32 | h1) as f32 * d + m;
    }
}

/// IQ4_NL's 16 levels.
const IQ4NL_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// IQ4_NL (18 bytes): f16 `d`, `qs[16]` of indices into a fixed non-linear codebook.
pub fn dequant_block_iq4_nl(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let qs = &b[2..18];
    for j in 0..16 {
        y[j] = d * IQ4NL_LEVELS[(qs[j] & 0x0f) as usize] as f32;
        y[j + 16] = d * IQ4NL_LEVELS[(qs[j] >> 4) as usize] as f32;
    }
}

/// Values per K-quant super-block.
pub const QK_K: usize = 256;

/// Scale and minimum of sub-block `j` from Q4_K/Q5_K's 12 packed 6-bit scale bytes.
#[inline]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Scales and minimums (`d·sc`, `dmin·m`) of the two 32-value halves of 64-value
/// group `j` in Q4_K/Q5_K.
#[inline]
fn pair_scales_k4(j: usize, scales: &[u8], d: f32, min: f32) -> [(f32, f32); 2] {
    [2 * j, 2 * j + 1].map(|k| {
        let (sc, m) = scale_min_k4(k, scales);
        (d * sc as f32, min * m as f32)
    })
}

/// Q2_K (84 bytes): `scales[16]` (4-bit scale, 4-bit min), `qs[64]`, f16 `d`, f16 `dmin`.
pub fn dequant_block_q2_k(b: &[u8], y: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let d = f16_at(b, 80);
    let min = f16_at(b, 82);
    let mut out = 0;
    let mut is = 0;
    for n in 0..2 {
        let q = &qs[n * 32..n * 32 + 32];
        for shift in [0u32, 2, 4, 6] {
            for half in 0..2 {
                let sc = scales[is];
                is += 1;
                let dl = d * (sc & 0x0f) as f32;
                let ml = min * (sc >> 4) as f32;
                for l in 0..16 {
                    y[out] = dl * ((q[l + 16 * half] >> shift) & 3) as f32 - ml;
                    out += 1;
                }
            }
        }
    }
}

/// Q3_K (110 bytes): `hmask[32]`, `qs[64]`, `scales[12]` (16 packed 6-bit scales), f16 `d`.
pub fn dequant_block_q3_k(b: &[u8], y: &mut [f32]) {
    let (hm, qs, packed) = (&b[0..32], &b[32..96], &b[96..108]);
    let d_all = f16_at(b, 108);
    let mut aux = [0u32; 4];
    for (k, a) in aux.iter_mut().take(3).enumerate() {
        *a = u32::from_le_bytes([
            packed[4 * k],
            packed[4 * k + 1],
            packed[4 * k + 2],
            packed[4 * k + 3],
        ]);
    }
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4);
    aux[3] = ((aux[1] >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4);
    aux[0] = (aux[0] & KMASK2) | ((tmp & KMASK1) << 4);
    aux[1] = (aux[1] & KMASK2) | (((tmp >> 2) & KMASK1) << 4);
    let scales: Vec<i8> = aux
        .iter()
        .flat_map(|a| a.to_le_bytes())
        .map(|v| v as i8)
        .collect();
    let mut out = 0;
    let mut is = 0;
    let mut m = 1u8;
    for n in 0..2 {
        let q = &qs[n * 32..n * 32 + 32];
        for shift in [0u32, 2, 4, 6] {
            for half in 0..2 {
                let dl = d_all * (scales[is] as i32 - 32) as f32;
                is += 1;
                for l in 0..16 {
                    let k = l + 16 * half;
                    let low = ((q[k] >> shift) & 3) as i32;
                    let high = if hm[k] & m != 0 { 0 } else { 4 };
                    y[out] = dl * (low - high) as f32;
                    out += 1;
                }
            }
            m <<= 1;
        }
    }
}

/// Q4_K (144 bytes): f16 `d`, f16 `dmin`, `scales[12]` (8 packed 6-bit scale/min pairs), `qs[128]`.
pub fn dequant_block_q4_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let (scales, qs) = (&b[4..16], &b[16..144]);
    for j in 0..4 {
        let q = &qs[32 * j..32 * j + 32];
        let [(d1, m1), (d2, m2)] = pair_scales_k4(j, scales, d, min);
        let o = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            o[l] = d1 * (q[l] & 0x0f) as f32 - m1;
            o[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
        }
    }
}

/// Q5_K (176 bytes): f16 `d`, f16 `dmin`, `scales[12]`, `qh[32]` (fifth bits), `qs[128]`.
pub fn dequant_block_q5_k(b: &[u8], y: &mut [f32]) {
    let d = f16_at(b, 0);
    let min = f16_at(b, 2);
    let (scales, qh, qs) = (&b[4..16], &b[16..48], &b[48..176]);
    for j in 0..4 {
        let ql = &qs[32 * j..32 * j + 32];
        let (u1, u2) = (1u8 << (2 * j), 2u8 << (2 * j));
        let [(d1, m1), (d2, m2)] = pair_scales_k4(j, scales, d, min);
        let o = &mut y[64 * j..64 * j + 64];
        for l in 0..32 {
            let h1 = if qh[l] & u1 != 0 { 16 } else { 0 };
            let h2 = if qh[l] & u2 != 0 { 16 } else { 0 };
            o[l] = d1 * ((ql[l] & 0x0f) + h1) as f32 - m1;
            o[l + 32] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
        }
    }
}

/// Q6_K (210 bytes): `ql[128]` (low 4 bits), `qh[64]` (high 2 bits), `scales[16]` (i8), f16 `d`.
pub fn dequant_block_q6_k(b: &[u8], y: &mut [f32]) {
    let (ql_all, qh_all, sc_all) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = f16_at(b, 208);
    for n in 0..2 {
        let ql = &ql_all[64 * n..64 * n + 64];
        let qh = &qh_all[32 * n..32 * n + 32];
        let sc = &sc_all[8 * n..8 * n + 8];
        let o = &mut y[128 * n..128 * n + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
            let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
            let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
            let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
            o[l] = d * (sc[is] as i8) as f32 * q1 as f32;
            o[l + 32] = d * (sc[is + 2] as i8) as f32 * q2 as f32;
            o[l + 64] = d * (sc[is + 4] as i8) as f32 * q3 as f32;
            o[l + 96] = d * (sc[is + 6] as i8) as f32 * q4 as f32;
        }
    }
}

fn dequant_blocks(
    bytes: &[u8],
    n: usize,
    (per_block, block_bytes): (usize, usize),
    f: BlockFn,
) -> Vec<f32> {
    let blocks_per_task = (QK * BLOCKS_PER_TASK / per_block).max(1);
    let mut out = vec![0f32; n];
    out.par_chunks_mut(per_block * blocks_per_task)
        .zip(bytes.par_chunks(block_bytes * blocks_per_task))
        .for_each(|(o, b)| {
            for (ob, bb) in o
                .chunks_exact_mut(per_block)
                .zip(b.chunks_exact(block_bytes))
            {
                f(bb, ob);
            }
        });
    out
}

/// A function dequantising one block (its bytes) into its values.
pub type BlockFn = fn(&[u8], &mut [f32]);

/// The function that dequantises one block of a block type (`None` for the per-value
/// types F32/F16/BF16 and for unknown types).
pub fn block_fn(dtype: GgmlType) -> Option<BlockFn> {
    Some(match dtype {
        GgmlType::Q4_0 => dequant_block_q4_0,
        GgmlType::Q4_1 => dequant_block_q4_1,
        GgmlType::Q8_0 => dequant_block_q8_0,
        GgmlType::Q5_0 => dequant_block_q5_0,
        GgmlType::Q5_1 => dequant_block_q5_1,
        GgmlType::Iq4Nl => dequant_block_iq4_nl,
        GgmlType::Q2K => dequant_block_q2_k,
        GgmlType::Q3K => dequant_block_q3_k,
        GgmlType::Q4K => dequant_block_q4_k,
        GgmlType::Q5K => dequant_block_q5_k,
        GgmlType::Q6K => dequant_block_q6_k,
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Other(_) => return None,
    })
}

/// Dequantise `n` values of type `dtype` from `bytes`. Returns `None` for a type this
/// crate does not handle or when `bytes` is not exactly the size `n` values need.
pub fn dequantize(dtype: GgmlType, bytes: &[u8], n: usize) -> Option<Vec<f32>> {
    if dtype.byte_size(n as u64)? != bytes.len() as u64 {
        return None;
    }
    Some(match dtype {
        GgmlType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        GgmlType::F16 => bytes
            .par_chunks(2 * 4096)
            .flat_map_iter(|ch| {
                ch.chunks_exact(2)
                    .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            })
            .collect(),
        GgmlType::BF16 => bytes
            .par_chunks(2 * 4096)
            .flat_map_iter(|ch| {
                ch.chunks_exact(2)
                    .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            })
            .collect(),
        GgmlType::Q4_0 => dequant_blocks(bytes, n, (QK, 18), dequant_block_q4_0),
        GgmlType::Q4_1 => dequant_blocks(bytes, n, (QK, 20), dequant_block_q4_1),
        GgmlType::Q8_0 => dequant_blocks(bytes, n, (QK, 34), dequant_block_q8_0),
        GgmlType::Q5_0 => dequant_blocks(bytes, n, (QK, 22), dequant_block_q5_0),
        GgmlType::Q5_1 => dequant_blocks(bytes, n, (QK, 24), dequant_block_q5_1),
        GgmlType::Iq4Nl => dequant_blocks(bytes, n, (QK, 18), dequant_block_iq4_nl),
        GgmlType::Q2K => dequant_blocks(bytes, n, (QK_K, 84), dequant_block_q2_k),
        GgmlType::Q3K => dequant_blocks(bytes, n, (QK_K, 110), dequant_block_q3_k),
        GgmlType::Q4K => dequant_blocks(bytes, n, (QK_K, 144), dequant_block_q4_k),
        GgmlType::Q5K => dequant_blocks(bytes, n, (QK_K, 176), dequant_block_q5_k),
        GgmlType::Q6K => dequant_blocks(bytes, n, (QK_K, 210), dequant_block_q6_k),
        GgmlType::Other(_) => return None,
    })
}

/// Quantise f32 values to Q8_0 as ggml's reference quantiser does (used to build test files).
pub fn quantize_q8_0(values: &[f32]) -> Option<Vec<u8>> {
    if !values.len().is_multiple_of(QK) {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() / QK * 34);
    for block in values.chunks_exact(QK) {
        let amax = block.iter().fold(0f32, |a, &v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        for &v in block {
            out.push(((v * id).round() as i8) as u8);
        }
    }
    Some(out)
}

/// Quantise f32 values to Q4_1 as ggml's reference quantiser does (used to build test files).
pub fn quantize_q4_1(values: &[f32]) -> Option<Vec<u8>> {
    if !values.len().is_multiple_of(QK) {
        return None;
    }
    let mut out = Vec::with_capacity(values.len() / QK * 20);
    for block in values.chunks_exact(QK) {
        let min = block.iter().fold(f32::INFINITY, |a, &v| a.min(v));
        let max = block.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
        let d = (max - min) / 15.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
        let mut qs = [0u8; 16];
        for j in 0..16 {
            let q0 = (((block[j] - min) * id + 0.5) as u8).min(15);
            let q1 = (((block[j + 16] - min) * id + 0.5) as u8).min(15);
            qs[j] = q0 | (q1 << 4);
        }
        out.extend_from_slice(&qs);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_block_layout_matches_ggml() {
        // d = 0.5, m = -1.0, nibbles: byte j = low j%16, high 15 - j%16
        let mut block = Vec::new();
        block.extend_from_slice(&f16::from_f32(0.5).to_le_bytes());
        block.extend_from_slice(&f16::from_f32(-1.0).to_le_bytes());
        for j in 0..16u8 {
            block.push(j | ((15 - j) << 4));
        }
        let v = dequantize(GgmlType::Q4_1, &block, 32).unwrap();
        for j in 0..16 {
            assert_eq!(v[j], j as f32 * 0.5 - 1.0);
            assert_eq!(v[j + 16], (15 - j) as f32 * 0.5 - 1.0);
        }
    }

    #[test]
    fn q4_0_block_layout_matches_ggml() {
        let mut block = Vec::new();
        block.extend_from_slice(&f16::from_f32(2.0).to_le_bytes());
        for j in 0..16u8 {
            block.push(j | (3 << 4));
        }
        let v = dequantize(GgmlType::Q4_0, &block, 32).unwrap();
        for j in 0..16 {
            assert_eq!(v[j], (j as f32 - 8.0) * 2.0);
            assert_eq!(v[j + 16], (3.0 - 8.0) * 2.0);
        }
    }

    #[test]
    fn q8_0_block_layout_matches_ggml() {
        let mut block = Vec::new();
        block.extend_from_slice(&f16::from_f32(0.25).to_le_bytes());
        for j in 0..32i8 {
            block.push((j - 16) as u8);
        }
        let v = dequantize(GgmlType::Q8_0, &block, 32).unwrap();
        for (j, x) in v.iter().enumerate() {
            assert_eq!(*x, (j as f32 - 16.0) * 0.25);
        }
    }

    #[test]
    fn half_types() {
        let vals = [1.5f32, -2.25, 0.0, 65504.0];
        let f16b: Vec<u8> = vals
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(dequantize(GgmlType::F16, &f16b, 4).unwrap(), vals);
        let bf: Vec<u8> = [1.5f32, -2.25, 0.0, 3.0e38]
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect();
        let back = dequantize(GgmlType::BF16, &bf, 4).unwrap();
        assert_eq!(&back[..3], &[1.5, -2.25, 0.0]);
        assert!((back[3] / 3.0e38 - 1.0).abs() < 1e-2);
    }

    #[test]
    fn quantisers_round_trip_within_one_step() {
        let vals: Vec<f32> = (0..64)
            .map(|i| ((i * 37 % 64) as f32 - 32.0) / 10.0)
            .collect();
        let q8 = quantize_q8_0(&vals).unwrap();
        let back = dequantize(GgmlType::Q8_0, &q8, 64).unwrap();
        for (a, b) in vals.iter().zip(&back) {
            assert!((a - b).abs() < 3.2 / 127.0 + 1e-3, "{a} vs {b}");
        }
        let q4 = quantize_q4_1(&vals).unwrap();
        let back = dequantize(GgmlType::Q4_1, &q4, 64).unwrap();
        for (a, b) in vals.iter().zip(&back) {
            assert!((a - b).abs() < 6.4 / 15.0, "{a} vs {b}");
        }
    }

    #[test]
    fn wrong_sizes_and_types_are_refused() {
        assert!(dequantize(GgmlType::Q4_1, &[0u8; 19], 32).is_none());
        assert!(dequantize(GgmlType::Q4_1, &[0u8; 20], 31).is_none());
        assert!(dequantize(GgmlType::Other(12), &[0u8; 20], 32).is_none());
    }
}
