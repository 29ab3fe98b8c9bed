//! llama.cpp control vectors: export a strategy to, and import one from, the GGUF
//! format llama.cpp's `--control-vector` reads.
//!
//! Format: `general.architecture = controlvector`, `controlvector.model_hint`,
//! `controlvector.layer_count`, and one F32 1-D tensor `direction.N` per steered block.
//!
//! Layer convention: llama.cpp adds `direction.N` (times its scale) to the output of
//! its block `N`, counting from 0, for every token — our `resid_post(N)`. It ignores
//! `direction.0`, so a vector at `resid_post(0)` cannot be exported. Export folds the
//! strategy's coefficient and scale into the tensors (llama.cpp's own scale then
//! defaults to 1). llama.cpp's `cvector-generator` labels the vector it reads at the
//! output of block `il` as `direction.(il+1)`; a file it wrote is imported as written
//! (`direction.N` → `resid_post(N)`), the convention llama.cpp applies it with.

use std::collections::BTreeMap;
use std::path::Path;

use masteer_algorithms::{LayerDiagnostics, LayerVector, SteeringVector};
use masteer_models::gguf::{GgmlType, GgufFile, GgufWriter, MetadataValue, TensorToWrite};
use masteer_types::{Operation, Positions, Site};

use crate::error::{CoreError, Result};
use crate::strategy::Strategy;

/// Name an imported vector's algorithm carries.
pub const IMPORTED_ALGORITHM: &str = "llamacpp_control_vector";

/// Write a strategy as a llama.cpp control vector. Only `resid_post` additions at
/// layers ≥ 1 can be expressed in the format.
pub fn export_control_vector(
    strategy: &Strategy,
    n_layers: usize,
    model_hint: &str,
    path: &Path,
) -> Result<()> {
    let v = &strategy.vector;
    if v.site != Site::ResidPost || v.operation != Operation::Add {
        return Err(CoreError::InvalidInput(format!(
            "`{}` acts on {} with {}: llama.cpp control vectors only add to block outputs (resid_post)",
            strategy.name, v.site, v.operation
        )));
    }
    if v.positions != Positions::All {
        tracing::warn!(strategy = %strategy.name, positions = %v.positions, "llama.cpp applies control vectors at every position");
    }
    let mut w = GgufWriter::new();
    w.metadata(
        "general.architecture",
        MetadataValue::String("controlvector".into()),
    )
    .metadata(
        "controlvector.model_hint",
        MetadataValue::String(model_hint.into()),
    )
    .metadata(
        "controlvector.layer_count",
        MetadataValue::I32(n_layers.saturating_sub(1) as i32),
    );
    for (&layer, lv) in &v.layers {
        if layer == 0 || layer >= n_layers {
            return Err(CoreError::InvalidInput(format!(
                "`{}` steers layer {layer}: llama.cpp control vectors cover blocks 1..{}",
                strategy.name,
                n_layers.saturating_sub(1)
            )));
        }
        let values = lv.vector(strategy.coefficient);
        w.tensor(TensorToWrite::f32(
            format!("direction.{layer}"),
            vec![values.len()],
            &values,
        ));
    }
    w.write(path)?;
    Ok(())
}

/// Read a llama.cpp control vector as a `resid_post` steering vector (coefficient 1
/// reproduces the file's vectors). `width` is the model's residual width.
pub fn import_control_vector(path: &Path, n_layers: usize, width: usize) -> Result<SteeringVector> {
    let f = GgufFile::open(path)?;
    let arch = f.require_str("general.architecture")?;
    if arch != "controlvector" {
        return Err(CoreError::InvalidInput(format!(
            "{}: general.architecture is `{arch}`, not `controlvector`",
            path.display()
        )));
    }
    let mut layers = BTreeMap::new();
    for t in f.tensors() {
        let Some(n) = t
            .name
            .strip_prefix("direction.")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let bad = |m: String| {
            CoreError::InvalidInput(format!("{}: tensor `{}` {m}", path.display(), t.name))
        };
        if t.dtype != GgmlType::F32 || t.dims.len() != 1 {
            return Err(bad(format!(
                "is {} with {} dimensions, expected a 1-D F32 tensor",
                t.dtype,
                t.dims.len()
            )));
        }
        if t.dims[0] as usize != width {
            return Err(bad(format!(
                "has width {}, the model's residual width is {width}",
                t.dims[0]
            )));
        }
        if n == 0 || n >= n_layers {
            return Err(bad(format!(
                "steers block {n}, outside 1..{}",
                n_layers.saturating_sub(1)
            )));
        }
        let values = f.dequantize(&t.name)?;
        if values.iter().any(|x| !x.is_finite()) {
            return Err(bad("holds non-finite values".into()));
        }
        let norm = values
            .iter()
            .map(|x| (*x as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        if norm == 0.0 {
            continue; // an all-zero direction steers nothing
        }
        layers.insert(
            n,
            LayerVector {
                direction: values.iter().map(|x| (*x as f64 / norm) as f32).collect(),
                scale: norm as f32,
                diagnostics: LayerDiagnostics {
                    raw_norm: norm as f32,
                    ..Default::default()
                },
            },
        );
    }
    if layers.is_empty() {
        return Err(CoreError::InvalidInput(format!(
            "{}: no non-zero direction.N tensor",
            path.display()
        )));
    }
    Ok(SteeringVector {
        algorithm: IMPORTED_ALGORITHM.into(),
        site: Site::ResidPost,
        operation: Operation::Add,
        positions: Positions::All,
        default_coefficient: 1.0,
        layers,
    })
}
