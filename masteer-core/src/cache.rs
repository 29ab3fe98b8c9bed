//! The on-disk cache of contrast activations: one safetensors file per (sample set,
//! model, hook points), named by their hash, written atomically.

use std::collections::HashMap;
use std::path::Path;

use masteer_algorithms::{ContrastSplit, PairedRows};
use masteer_models::HookPoint;
use ndarray::Array2;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{CoreError, Result};

fn err(path: &Path, m: impl std::fmt::Display) -> CoreError {
    CoreError::Artifact {
        path: path.display().to_string(),
        message: m.to_string(),
    }
}

/// Write the train (and validation) split.
pub fn save(path: &Path, train: &ContrastSplit, val: Option<&ContrastSplit>) -> Result<()> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut meta = HashMap::new();
    for (tag, split) in std::iter::once(("train", train)).chain(val.map(|v| ("val", v))) {
        meta.insert(
            format!("{tag}_ids"),
            serde_json::to_string(&split.sample_ids).map_err(|e| err(path, e))?,
        );
        for (p, rows) in &split.points {
            for (side, a) in [("pos", &rows.positive), ("neg", &rows.negative)] {
                let bytes: Vec<u8> = a.iter().flat_map(|x| x.to_le_bytes()).collect();
                owned.push((
                    format!("{tag}/{p}/{side}"),
                    vec![a.nrows(), a.ncols()],
                    bytes,
                ));
            }
        }
    }
    let views = owned
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(Dtype::F32, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| err(path, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let data = safetensors::serialize(views, Some(meta)).map_err(|e| err(path, e))?;
    masteer_types::fsutil::write_bytes_atomic(path, &data)?;
    Ok(())
}

/// Read the splits back; an error if any of `points` is missing.
pub fn load(path: &Path, points: &[HookPoint]) -> Result<(ContrastSplit, Option<ContrastSplit>)> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io("reading", path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| err(path, e))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| err(path, e))?;
    let m = meta.metadata().clone().unwrap_or_default();
    let read = |tag: &str| -> Result<Option<ContrastSplit>> {
        let Some(ids) = m.get(&format!("{tag}_ids")) else {
            return Ok(None);
        };
        let ids: Vec<String> = serde_json::from_str(ids).map_err(|e| err(path, e))?;
        let mut split = ContrastSplit::new(ids);
        for p in points {
            let get = |side: &str| -> Result<Array2<f32>> {
                let name = format!("{tag}/{p}/{side}");
                let v = st
                    .tensor(&name)
                    .map_err(|_| err(path, format!("missing tensor {name}")))?;
                let [r, c] = v.shape() else {
                    return Err(err(path, format!("{name} is not 2-D")));
                };
                let data: Vec<f32> = v
                    .data()
                    .chunks_exact(4)
                    .map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]]))
                    .collect();
                Array2::from_shape_vec((*r, *c), data).map_err(|e| err(path, e))
            };
            split = split.with(*p, PairedRows::new(get("pos")?, get("neg")?));
        }
        Ok(Some(split))
    };
    let train = read("train")?.ok_or_else(|| err(path, "no train split"))?;
    Ok((train, read("val")?))
}
