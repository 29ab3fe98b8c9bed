//! Dequantisation of ggml tensor types to f32, with ggml's block layouts.
//!
//! - `Q4_0`: 18 bytes per 32 values: f16 scale `d`, 16 bytes of nibbles; `v = (q − 8)·d`.
//! - `Q4_1`: 20 bytes per 32 values: f16 `d`, f16 `m`, 16 bytes of nibbles; `v = q·d + m`.
//! - `Q8_0`: 34 bytes per 32 values: f16 `d`, 32 × i8; `v = q·d`.
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

fn dequant_blocks(
    bytes: &[u8],
    n: usize,
    block_bytes: usize,
    f: fn(&[u8], &mut [f32]),
) -> Vec<f32> {
    let mut out = vec![0f32; n];
    out.par_chunks_mut(QK * BLOCKS_PER_TASK)
        .zip(bytes.par_chunks(block_bytes * BLOCKS_PER_TASK))
        .for_each(|(o, b)| {
            for (ob, bb) in o.chunks_exact_mut(QK).zip(b.chunks_exact(block_bytes)) {
                f(bb, ob);
            }
        });
    out
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
        GgmlType::Q4_0 => dequant_blocks(bytes, n, 18, dequant_block_q4_0),
        GgmlType::Q4_1 => dequant_blocks(bytes, n, 20, dequant_block_q4_1),
        GgmlType::Q8_0 => dequant_blocks(bytes, n, 34, dequant_block_q8_0),
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
