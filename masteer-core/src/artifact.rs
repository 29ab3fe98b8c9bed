//! The artifact on disk: a directory with `manifest.json` — the [`StrategyLibrary`]'s
//! own serde form beside the schema version — and `tensors.safetensors`, which holds
//! every vector (directions, anchor centroids and centre) the manifest names by
//! `tensor` / `center_tensor`. Written atomically; read back checked.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CoreError, Result};
use crate::strategy_library::StrategyLibrary;

/// Version of the artifact layout this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
/// Manifest file name inside an artifact directory.
pub const MANIFEST: &str = "manifest.json";
/// Tensor file name inside an artifact directory.
pub const TENSORS: &str = "tensors.safetensors";

/// Fields whose vectors live in the tensor file, and the manifest key that names them
/// there (the domain types accept either key back).
const EXTERNAL: [(&str, &str); 3] = [
    ("direction", "tensor"),
    ("centroid", "tensor"),
    ("center", "center_tensor"),
];

#[derive(Serialize)]
struct ManifestRef<'a> {
    schema_version: u32,
    crate_version: &'a str,
    #[serde(flatten)]
    library: &'a StrategyLibrary,
}

#[derive(Deserialize)]
struct Manifest {
    #[allow(dead_code)] // checked on the raw JSON before the rest is read
    schema_version: u32,
    #[serde(flatten)]
    library: StrategyLibrary,
}

fn artifact_err(path: &Path, message: impl Into<String>) -> CoreError {
    CoreError::Artifact {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// One step of a path into the manifest's JSON.
enum Step {
    Key(String),
    Index(usize),
}

impl Step {
    fn is(&self, key: &str) -> bool {
        matches!(self, Step::Key(k) if k == key)
    }
}

/// The tensor name of the vector under `field` of the object at `path`: the names the
/// first artifacts used (`strategy.{i}.layer.{l}`, `anchors.center`, `anchors.{j}`),
/// else the path joined with dots.
fn tensor_name(path: &[Step], field: &str, obj: &serde_json::Map<String, Value>) -> String {
    match path {
        [s, Step::Index(i), l, Step::Index(_)] if s.is("strategies") && l.is("layers") => {
            if let Some(layer) = obj.get("layer").and_then(Value::as_u64) {
                return format!("strategy.{i}.layer.{layer}");
            }
        }
        [a] if a.is("anchors") && field == "center" => return "anchors.center".into(),
        [a, b, Step::Index(j)] if a.is("anchors") && b.is("anchors") => {
            return format!("anchors.{j}")
        }
        _ => {}
    }
    path.iter()
        .map(|s| match s {
            Step::Key(k) => k.clone(),
            Step::Index(i) => i.to_string(),
        })
        .chain(std::iter::once(field.to_string()))
        .collect::<Vec<_>>()
        .join(".")
}

fn numbers(v: &Value) -> Option<Vec<f32>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

/// Move every vector under an [`EXTERNAL`] field out of `v` into `out`, leaving its
/// tensor name under the manifest key.
fn externalise(v: &mut Value, path: &mut Vec<Step>, out: &mut Vec<(String, Vec<f32>)>) {
    match v {
        Value::Object(obj) => {
            for (field, key) in EXTERNAL {
                if let Some(values) = obj.get(field).and_then(numbers) {
                    let name = tensor_name(path, field, obj);
                    obj.remove(field);
                    obj.insert(key.to_string(), Value::String(name.clone()));
                    out.push((name, values));
                }
            }
            for (k, child) in obj.iter_mut() {
                path.push(Step::Key(k.clone()));
                externalise(child, path, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter_mut().enumerate() {
                path.push(Step::Index(i));
                externalise(child, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Replace every tensor name under a manifest key of [`EXTERNAL`] by its values from
/// `tensors` (1-D, F32, finite).
fn internalise(
    v: &mut Value,
    tensors: &SafeTensors<'_>,
    cache: &mut HashMap<String, Value>,
    dir: &Path,
) -> Result<()> {
    match v {
        Value::Object(obj) => {
            for key in ["tensor", "center_tensor"] {
                let Some(Value::String(name)) = obj.get(key) else {
                    continue;
                };
                let name = name.clone();
                let values = match cache.get(&name) {
                    Some(v) => v.clone(),
                    None => {
                        let loaded = Value::from(read_tensor(tensors, &name, dir)?);
                        cache.insert(name, loaded.clone());
                        loaded
                    }
                };
                obj.insert(key.to_string(), values);
            }
            for child in obj.values_mut() {
                internalise(child, tensors, cache, dir)?;
            }
        }
        Value::Array(items) => {
            for child in items {
                internalise(child, tensors, cache, dir)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn read_tensor(st: &SafeTensors<'_>, name: &str, dir: &Path) -> Result<Vec<f32>> {
    let view = st
        .tensor(name)
        .map_err(|_| artifact_err(dir, format!("missing tensor `{name}`")))?;
    if view.dtype() != Dtype::F32 || view.shape().len() != 1 {
        return Err(artifact_err(
            dir,
            format!("tensor `{name}` is not a 1-D F32 tensor"),
        ));
    }
    let v: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if v.iter().any(|x| !x.is_finite()) {
        return Err(artifact_err(
            dir,
            format!("tensor `{name}` holds non-finite values"),
        ));
    }
    Ok(v)
}

/// Write `library` as the artifact directory `dir`, atomically (a temporary directory
/// beside it, synced, swapped into place).
pub fn save(library: &StrategyLibrary, dir: &Path) -> Result<()> {
    let mut manifest = serde_json::to_value(ManifestRef {
        schema_version: SCHEMA_VERSION,
        crate_version: env!("CARGO_PKG_VERSION"),
        library,
    })
    .map_err(|e| artifact_err(dir, format!("cannot encode the manifest: {e}")))?;
    let mut tensors = Vec::new();
    externalise(&mut manifest, &mut Vec::new(), &mut tensors);
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| CoreError::io("creating", &parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".masteer-tmp-")
        .tempdir_in(&parent)
        .map_err(|e| CoreError::io("creating a temporary directory in", &parent, e))?;
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| artifact_err(dir, format!("cannot encode the manifest: {e}")))?;
    let bytes: Vec<(String, Vec<u8>, usize)> = tensors
        .iter()
        .map(|(n, v)| {
            (
                n.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                v.len(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, b, len)| {
            TensorView::new(Dtype::F32, vec![*len], b)
                .map(|v| (n.clone(), v))
                .map_err(|e| artifact_err(dir, e.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let st = safetensors::serialize(views, None).map_err(|e| artifact_err(dir, e.to_string()))?;
    masteer_types::fsutil::write_bytes_atomic(&tmp.path().join(TENSORS), &st)?;
    masteer_types::fsutil::write_bytes_atomic(&tmp.path().join(MANIFEST), &json)?;
    let tmp_path = tmp.keep();
    masteer_types::fsutil::replace_dir(&tmp_path, dir)?;
    Ok(())
}

/// Read the artifact directory `dir` and check the library it holds
/// ([`StrategyLibrary::check`]).
pub fn load(dir: &Path) -> Result<StrategyLibrary> {
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read(&mpath).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => artifact_err(
            dir,
            format!("no {MANIFEST}: not an artifact directory, or one whose write did not finish"),
        ),
        _ => CoreError::io("reading", &mpath, e),
    })?;
    let mut manifest: Value = serde_json::from_slice(&text)
        .map_err(|e| artifact_err(dir, format!("{MANIFEST} is not valid JSON: {e}")))?;
    match manifest.get("schema_version").and_then(Value::as_u64) {
        Some(v) if v == SCHEMA_VERSION as u64 => {}
        Some(v) => {
            return Err(artifact_err(
                dir,
                format!(
                    "unknown schema version {v}: this build of masteer-core reads version {SCHEMA_VERSION}"
                ),
            ))
        }
        None => return Err(artifact_err(dir, "manifest has no schema_version")),
    }
    let tpath = dir.join(TENSORS);
    let bytes = std::fs::read(&tpath).map_err(|e| CoreError::io("reading", &tpath, e))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| artifact_err(dir, format!("{TENSORS}: {e}")))?;
    internalise(&mut manifest, &st, &mut HashMap::new(), dir)?;
    let m: Manifest = serde_json::from_value(manifest)
        .map_err(|e| artifact_err(dir, format!("malformed manifest: {e}")))?;
    m.library.check().map_err(|e| artifact_err(dir, e))?;
    Ok(m.library)
}
