//! Products with many rows (prefill), `y = x · Wᵀ`, from `W` in its stored format.
//!
//! No f32 copy of the weights is kept: each task dequantises a tile of
//! [`TILE_ROWS`] weight rows (ggml's exact values) into a scratch buffer that stays in
//! the cache, and multiplies it with all input rows through the `gemm` crate. The
//! dequantisation costs one pass over the stored bytes per call, small against the
//! product itself once there are more than a few rows.

use rayon::prelude::*;

use crate::weights::StoredMatrix;

/// Weight rows dequantised and multiplied per task.
const TILE_ROWS: usize = 128;

/// The output buffer, written by tasks in disjoint column ranges.
struct Out(*mut f32);
// SAFETY: every task writes only the columns of its own tile (see `matmul_tiled`).
unsafe impl Send for Out {}
// SAFETY: as above.
unsafe impl Sync for Out {}

impl Out {
    fn ptr(&self) -> *mut f32 {
        self.0
    }
}

/// `y[m, n] = x[m, k] · W[n, k]ᵀ` for a stored `W`, tile by tile. `x` is row-major
/// `m × k`.
pub(crate) fn matmul_tiled(x: &[f32], m: usize, w: &StoredMatrix) -> Vec<f32> {
    let (n, k) = (w.rows, w.cols);
    debug_assert_eq!(x.len(), m * k);
    let mut y = vec![0f32; m * n];
    if m == 0 || n == 0 {
        return y;
    }
    let out = Out(y.as_mut_ptr());
    (0..n.div_ceil(TILE_ROWS))
        .into_par_iter()
        .for_each_init(Vec::<f32>::new, |buf, tile| {
            let r0 = tile * TILE_ROWS;
            let rows = TILE_ROWS.min(n - r0);
            buf.resize(rows * k, 0.0);
            w.dequant_rows(r0, &mut buf[..rows * k]);
            // SAFETY: dst is the [m, rows] block of y at column r0 (row stride n), lhs
            // the [m, k] input (row stride k), rhs the [k, rows] transpose of the tile
            // (column stride k); all in bounds. Tiles cover disjoint columns.
            unsafe {
                gemm::gemm(
                    m,
                    rows,
                    k,
                    out.ptr().add(r0),
                    1,
                    n as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k as isize,
                    buf.as_ptr(),
                    k as isize,
                    1,
                    0.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::dequant::{dequantize, quantize_q4_1};
    use crate::gguf::GgmlType;
    use crate::weights::StoredType;

    #[test]
    fn tiles_match_a_dense_product() {
        // 300 rows: two full tiles and a partial one.
        let (n, k, m) = (300, 96, 37);
        let dense: Vec<f32> = (0..n * k)
            .map(|i| (((i * 7919) % 1000) as f32 - 500.0) / 300.0)
            .collect();
        let q = quantize_q4_1(&dense).unwrap();
        let dq = dequantize(GgmlType::Q4_1, &q, n * k).unwrap();
        let w = StoredMatrix::new(n, k, StoredType::Q4_1, q).unwrap();
        let x: Vec<f32> = (0..m * k)
            .map(|i| ((i * 31 % 17) as f32 - 8.0) / 7.0)
            .collect();
        let y = matmul_tiled(&x, m, &w);
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|t| x[i * k + t] as f64 * dq[j * k + t] as f64)
                    .sum();
                let got = y[i * n + j] as f64;
                assert!((got - want).abs() <= 1e-4 * (1.0 + want.abs()), "{i},{j}");
            }
        }
    }
}
