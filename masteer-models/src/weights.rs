//! Weight sources: named f32 tensors in Hugging Face naming, read from a GGUF file or
//! from (sharded) safetensors files, both memory-mapped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use memmap2::Mmap;
use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};
use crate::gguf::{dequant, GgmlType, GgufFile};

/// A dequantised tensor on the host, row-major.
#[derive(Clone, Debug)]
pub struct HostTensor {
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

/// Element formats a weight matrix can be kept in, so that the CPU reads it as stored
/// (few-row products, and prefill tiles dequantised one at a time) instead of holding
/// an f32 copy. It is [`GgmlType`] without `Other`: the kernels match on it
/// exhaustively, and a matrix of an unreadable type cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoredType {
    /// 32-bit floats.
    F32,
    /// IEEE halves.
    F16,
    /// bfloat16.
    BF16,
    /// ggml Q8_0 blocks (34 bytes per 32 values).
    Q8_0,
    /// ggml Q4_0 blocks (18 bytes per 32 values).
    Q4_0,
    /// ggml Q4_1 blocks (20 bytes per 32 values).
    Q4_1,
    /// ggml Q5_0 blocks (22 bytes per 32 values).
    Q5_0,
    /// ggml Q5_1 blocks (24 bytes per 32 values).
    Q5_1,
    /// ggml IQ4_NL blocks (18 bytes per 32 values, non-linear codebook).
    Iq4Nl,
    /// ggml Q2_K super-blocks (84 bytes per 256 values).
    Q2K,
    /// ggml Q3_K super-blocks (110 bytes per 256 values).
    Q3K,
    /// ggml Q4_K super-blocks (144 bytes per 256 values).
    Q4K,
    /// ggml Q5_K super-blocks (176 bytes per 256 values).
    Q5K,
    /// ggml Q6_K super-blocks (210 bytes per 256 values).
    Q6K,
}

impl StoredType {
    /// `(values per block, bytes per block)`.
    pub fn block(self) -> (usize, usize) {
        // Every variant maps to a ggml type with a known layout.
        self.ggml().block_layout().unwrap_or((1, 4))
    }

    /// The ggml type with this layout.
    pub fn ggml(self) -> GgmlType {
        match self {
            StoredType::F32 => GgmlType::F32,
            StoredType::F16 => GgmlType::F16,
            StoredType::BF16 => GgmlType::BF16,
            StoredType::Q8_0 => GgmlType::Q8_0,
            StoredType::Q4_0 => GgmlType::Q4_0,
            StoredType::Q4_1 => GgmlType::Q4_1,
            StoredType::Q5_0 => GgmlType::Q5_0,
            StoredType::Q5_1 => GgmlType::Q5_1,
            StoredType::Iq4Nl => GgmlType::Iq4Nl,
            StoredType::Q2K => GgmlType::Q2K,
            StoredType::Q3K => GgmlType::Q3K,
            StoredType::Q4K => GgmlType::Q4K,
            StoredType::Q5K => GgmlType::Q5K,
            StoredType::Q6K => GgmlType::Q6K,
        }
    }

    /// The stored type for a ggml type, `None` for one this crate cannot read.
    pub fn from_ggml(t: GgmlType) -> Option<Self> {
        Some(match t {
            GgmlType::F32 => StoredType::F32,
            GgmlType::F16 => StoredType::F16,
            GgmlType::BF16 => StoredType::BF16,
            GgmlType::Q8_0 => StoredType::Q8_0,
            GgmlType::Q4_0 => StoredType::Q4_0,
            GgmlType::Q4_1 => StoredType::Q4_1,
            GgmlType::Q5_0 => StoredType::Q5_0,
            GgmlType::Q5_1 => StoredType::Q5_1,
            GgmlType::Iq4Nl => StoredType::Iq4Nl,
            GgmlType::Q2K => StoredType::Q2K,
            GgmlType::Q3K => StoredType::Q3K,
            GgmlType::Q4K => StoredType::Q4K,
            GgmlType::Q5K => StoredType::Q5K,
            GgmlType::Q6K => StoredType::Q6K,
            GgmlType::Other(_) => return None,
        })
    }

    /// Dequantise whole blocks: `bytes` holds `out.len() / per_block` blocks.
    /// Values equal [`dequantize`](crate::gguf::dequant::dequantize)'s bit for bit.
    pub fn dequant_into(self, bytes: &[u8], out: &mut [f32]) {
        let (per, size) = self.block();
        debug_assert_eq!(bytes.len() / size * per, out.len());
        match self {
            StoredType::F32 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            StoredType::F16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = f16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            StoredType::BF16 => {
                for (o, c) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = bf16::from_le_bytes([c[0], c[1]]).to_f32();
                }
            }
            _ => {
                // Every block type has a block function (`dequant::block_fn`).
                let Some(f) = dequant::block_fn(self.ggml()) else {
                    return;
                };
                for (o, b) in out.chunks_exact_mut(per).zip(bytes.chunks_exact(size)) {
                    f(b, o);
                }
            }
        }
    }
}

/// A `[rows, cols]` weight matrix in its file's element format, rows contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMatrix {
    /// Number of rows (output features).
    pub rows: usize,
    /// Number of columns (input features).
    pub cols: usize,
    /// Element format.
    pub dtype: StoredType,
    /// `rows · row_bytes()` bytes.
    pub data: Vec<u8>,
}

impl StoredMatrix {
    /// A matrix from raw bytes; `None` when the sizes do not agree or a row is not a
    /// whole number of blocks.
    pub fn new(rows: usize, cols: usize, dtype: StoredType, data: Vec<u8>) -> Option<Self> {
        let (per, bytes) = dtype.block();
        // Checked: the sizes come from files (a fuzzed GGUF overflowed `cols / per · bytes`).
        let row_bytes = (cols / per).checked_mul(bytes)?;
        if !cols.is_multiple_of(per) || data.len() != rows.checked_mul(row_bytes)? {
            return None;
        }
        Some(StoredMatrix {
            rows,
            cols,
            dtype,
            data,
        })
    }

    /// An f32 matrix.
    pub fn from_f32(rows: usize, cols: usize, values: &[f32]) -> Option<Self> {
        Self::new(
            rows,
            cols,
            StoredType::F32,
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        let (per, bytes) = self.dtype.block();
        self.cols / per * bytes
    }

    /// Dequantise rows `first..first + out.len() / cols` into `out` (row-major f32).
    pub fn dequant_rows(&self, first: usize, out: &mut [f32]) {
        let rb = self.row_bytes();
        let count = out.len() / self.cols.max(1);
        let bytes = &self.data[first * rb..(first + count) * rb];
        self.dtype.dequant_into(bytes, out);
    }

    /// The whole matrix in f32 (row-major), e.g. for a backend without stored kernels.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        out.par_chunks_mut(self.cols.max(1) * 64)
            .enumerate()
            .for_each(|(i, chunk)| self.dequant_rows(i * 64, chunk));
        out
    }

    /// Stack matrices with the same format and width; `None` otherwise.
    pub fn concat_rows(parts: &[StoredMatrix]) -> Option<StoredMatrix> {
        let first = parts.first()?;
        if parts
            .iter()
            .any(|p| p.dtype != first.dtype || p.cols != first.cols)
        {
            return None;
        }
        let mut data = Vec::with_capacity(parts.iter().map(|p| p.data.len()).sum());
        for p in parts {
            data.extend_from_slice(&p.data);
        }
        Some(StoredMatrix {
            rows: parts.iter().map(|p| p.rows).sum(),
            cols: first.cols,
            dtype: first.dtype,
            data,
        })
    }
}

/// Where the decoder's weights come from. Names follow Hugging Face's Llama naming
/// (`model.layers.3.self_attn.q_proj.weight`); linear weights are `[out, in]`.
pub trait WeightSource: Send + Sync {
    /// A short description for error messages (the path).
    fn describe(&self) -> String;
    /// The tensor of that name, dequantised to f32, or `None` when absent.
    fn get(&self, name: &str) -> Result<Option<HostTensor>>;
    /// A 2-D tensor in its stored element format (for the CPU's few-row products), or
    /// `None` when the source cannot provide it that way.
    fn get_stored(&self, _name: &str) -> Result<Option<StoredMatrix>> {
        Ok(None)
    }
    /// The tensor of that name, or a `MissingTensor` error.
    fn require(&self, name: &str) -> Result<HostTensor> {
        self.get(name)?.ok_or_else(|| ModelError::MissingTensor {
            name: name.to_string(),
            source_name: self.describe(),
        })
    }
}

/// Weights read from a GGUF file (llama.cpp naming, un-permuted for rotate-half RoPE).
pub struct GgufWeights {
    file: GgufFile,
    n_heads: usize,
    n_kv_heads: usize,
}

impl GgufWeights {
    /// Wrap a parsed GGUF file; the head counts are needed to un-permute Q and K.
    pub fn new(file: GgufFile, n_heads: usize, n_kv_heads: usize) -> Self {
        GgufWeights {
            file,
            n_heads,
            n_kv_heads,
        }
    }

    /// The underlying file.
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// Map a Hugging Face tensor name to the GGUF name, and say how many heads its
    /// rows are permuted over (Q and K only).
    fn map_name(&self, name: &str) -> Option<(String, Option<usize>)> {
        match name {
            "model.embed_tokens.weight" => return Some(("token_embd.weight".into(), None)),
            "model.norm.weight" => return Some(("output_norm.weight".into(), None)),
            "lm_head.weight" => return Some(("output.weight".into(), None)),
            _ => {}
        }
        let rest = name.strip_prefix("model.layers.")?;
        let (layer, part) = rest.split_once('.')?;
        let layer: usize = layer.parse().ok()?;
        let (gguf, heads) = match part {
            "input_layernorm.weight" => ("attn_norm.weight", None),
            "post_attention_layernorm.weight" => ("ffn_norm.weight", None),
            "self_attn.q_proj.weight" => ("attn_q.weight", Some(self.n_heads)),
            "self_attn.k_proj.weight" => ("attn_k.weight", Some(self.n_kv_heads)),
            "self_attn.v_proj.weight" => ("attn_v.weight", None),
            "self_attn.o_proj.weight" => ("attn_output.weight", None),
            "mlp.gate_proj.weight" => ("ffn_gate.weight", None),
            "mlp.up_proj.weight" => ("ffn_up.weight", None),
            "mlp.down_proj.weight" => ("ffn_down.weight", None),
            _ => return None,
        };
        Some((format!("blk.{layer}.{gguf}"), heads))
    }
}

/// Undo llama.cpp's per-head row permutation of Q/K weights: row `h·hd + j·hd/2 + i`
/// of the Hugging Face layout is row `h·hd + 2i + j` of the GGUF layout. Rows are
/// `row_len` elements long (values, or bytes of quantised blocks).
pub fn unpermute_rows<T: Copy + Default>(
    data: &[T],
    rows: usize,
    row_len: usize,
    n_heads: usize,
) -> Option<Vec<T>> {
    if n_heads == 0
        || !rows.is_multiple_of(n_heads)
        || !(rows / n_heads).is_multiple_of(2)
        || data.len() != rows.checked_mul(row_len)?
    {
        return None;
    }
    let hd = rows / n_heads;
    let half = hd / 2;
    let mut out = vec![T::default(); data.len()];
    for h in 0..n_heads {
        for j in 0..2 {
            for i in 0..half {
                let dst = h * hd + j * half + i;
                let src = h * hd + 2 * i + j;
                out[dst * row_len..(dst + 1) * row_len]
                    .copy_from_slice(&data[src * row_len..(src + 1) * row_len]);
            }
        }
    }
    Some(out)
}

impl WeightSource for GgufWeights {
    fn describe(&self) -> String {
        self.file.path().to_string()
    }

    fn get_stored(&self, name: &str) -> Result<Option<StoredMatrix>> {
        let Some((gguf_name, heads)) = self.map_name(name) else {
            return Ok(None);
        };
        let Some(info) = self.file.tensor_info(&gguf_name) else {
            return Ok(None);
        };
        let shape = info.shape();
        let (Some(dtype), &[rows, cols]) = (StoredType::from_ggml(info.dtype), shape.as_slice())
        else {
            return Ok(None);
        };
        let bytes = self.file.tensor_bytes(info)?;
        let data = match heads {
            Some(h) => match unpermute_rows(bytes, rows, bytes.len() / rows.max(1), h) {
                Some(d) => d,
                None => return Ok(None),
            },
            None => bytes.to_vec(),
        };
        self.file.release(info);
        Ok(StoredMatrix::new(rows, cols, dtype, data))
    }

    fn get(&self, name: &str) -> Result<Option<HostTensor>> {
        let Some((gguf_name, heads)) = self.map_name(name) else {
            return Ok(None);
        };
        let Some(info) = self.file.tensor_info(&gguf_name) else {
            return Ok(None);
        };
        let shape = info.shape();
        let data = self.file.dequantize(&gguf_name)?;
        self.file.release(info);
        let data = match heads {
            Some(h) => {
                let (rows, cols) = match shape.as_slice() {
                    [r, c] => (*r, *c),
                    _ => {
                        return Err(ModelError::ShapeMismatch {
                            name: gguf_name,
                            expected: vec![0, 0],
                            actual: shape,
                        })
                    }
                };
                unpermute_rows(&data, rows, cols, h).ok_or_else(|| {
                    self.file.error(format!(
                        "tensor `{gguf_name}` with {rows} rows cannot be split into {h} heads of even width"
                    ))
                })?
            }
            None => data,
        };
        Ok(Some(HostTensor { shape, data }))
    }
}

struct Shard {
    path: PathBuf,
    mmap: Mmap,
}

/// Weights read from a Hugging Face folder: `model.safetensors` or the shards listed
/// by `model.safetensors.index.json`.
pub struct SafetensorsWeights {
    shards: Vec<Shard>,
    index: HashMap<String, usize>,
    describe: String,
}

fn st_err(path: &Path, message: impl std::fmt::Display) -> ModelError {
    ModelError::Safetensors {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl SafetensorsWeights {
    /// Open the safetensors files of a Hugging Face model folder.
    pub fn open_folder(dir: &Path) -> Result<Self> {
        let index_path = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index_path.exists() {
            let text = std::fs::read_to_string(&index_path)
                .map_err(|e| ModelError::io("reading", &index_path, e))?;
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| st_err(&index_path, format!("invalid JSON: {e}")))?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| st_err(&index_path, "no `weight_map` object"))?;
            let mut names: Vec<String> = Vec::new();
            for (k, f) in map {
                let f = f.as_str().ok_or_else(|| {
                    st_err(
                        &index_path,
                        format!("weight_map entry `{k}` is not a file name"),
                    )
                })?;
                if f.contains('/') || f.contains('\\') || f.contains("..") {
                    return Err(st_err(
                        &index_path,
                        format!("shard name `{f}` is not a plain file name"),
                    ));
                }
                if !names.iter().any(|n| n == f) {
                    names.push(f.to_string());
                }
            }
            names.sort();
            names.into_iter().map(|n| dir.join(n)).collect()
        } else {
            let single = dir.join("model.safetensors");
            if !single.exists() {
                return Err(ModelError::MissingTensor {
                    name: "model.safetensors or model.safetensors.index.json".into(),
                    source_name: dir.display().to_string(),
                });
            }
            vec![single]
        };
        Self::open_files(&files, dir.display().to_string())
    }

    /// Open an explicit list of safetensors files.
    pub fn open_files(files: &[PathBuf], describe: String) -> Result<Self> {
        let mut shards = Vec::with_capacity(files.len());
        let mut index = HashMap::new();
        for (i, path) in files.iter().enumerate() {
            let file = std::fs::File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
            // SAFETY: read-only map of a file not modified while loaded.
            let mmap =
                unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io("mapping", path, e))?;
            let (_, meta) = SafeTensors::read_metadata(&mmap).map_err(|e| st_err(path, e))?;
            for name in meta.tensors().keys() {
                if index.insert(name.clone(), i).is_some() {
                    return Err(st_err(
                        path,
                        format!("tensor `{name}` appears in two shards"),
                    ));
                }
            }
            shards.push(Shard {
                path: path.clone(),
                mmap,
            });
        }
        Ok(SafetensorsWeights {
            shards,
            index,
            describe,
        })
    }
}

impl WeightSource for SafetensorsWeights {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn get_stored(&self, name: &str) -> Result<Option<StoredMatrix>> {
        let Some(&i) = self.index.get(name) else {
            return Ok(None);
        };
        let shard = &self.shards[i];
        let st = SafeTensors::deserialize(&shard.mmap).map_err(|e| st_err(&shard.path, e))?;
        let view = st.tensor(name).map_err(|e| st_err(&shard.path, e))?;
        let dtype = match view.dtype() {
            Dtype::F32 => StoredType::F32,
            Dtype::F16 => StoredType::F16,
            Dtype::BF16 => StoredType::BF16,
            _ => return Ok(None),
        };
        let [rows, cols] = view.shape() else {
            return Ok(None);
        };
        Ok(StoredMatrix::new(*rows, *cols, dtype, view.data().to_vec()))
    }

    fn get(&self, name: &str) -> Result<Option<HostTensor>> {
        let Some(&i) = self.index.get(name) else {
            return Ok(None);
        };
        let shard = &self.shards[i];
        let st = SafeTensors::deserialize(&shard.mmap).map_err(|e| st_err(&shard.path, e))?;
        let view = st.tensor(name).map_err(|e| st_err(&shard.path, e))?;
        let bytes = view.data();
        let data: Vec<f32> = match view.dtype() {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(ModelError::UnsupportedTensorType {
                    name: name.to_string(),
                    dtype: format!("{other:?}"),
                })
            }
        };
        Ok(Some(HostTensor {
            shape: view.shape().to_vec(),
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_size_that_overflows_is_refused_not_wrapped() {
        // 4 · (2⁶² + 1) wraps to 4 in 64 bits: without checked arithmetic four bytes
        // would pass for a row of 2⁶² + 1 f32 values (and a release build reads past them).
        let cols = (1usize << 62) + 1;
        assert!(StoredMatrix::new(1, cols, StoredType::F32, vec![0u8; 4]).is_none());
        assert!(StoredMatrix::new(usize::MAX, 32, StoredType::Q4_1, vec![0u8; 20]).is_none());
        assert!(StoredMatrix::new(2, 32, StoredType::Q4_1, vec![0u8; 40]).is_some());
    }

    #[test]
    fn unpermute_inverts_llama_cpp_permutation() {
        // llama.cpp's converter: w.reshape(h, 2, hd/2, cols).swapaxes(1, 2).reshape(rows, cols)
        let (heads, hd, cols) = (2, 4, 3);
        let rows = heads * hd;
        let hf: Vec<f32> = (0..rows * cols).map(|x| x as f32).collect();
        let mut gguf = vec![0f32; hf.len()];
        for h in 0..heads {
            for j in 0..2 {
                for i in 0..hd / 2 {
                    let src = h * hd + j * hd / 2 + i; // hf row
                    let dst = h * hd + 2 * i + j; // permuted row
                    gguf[dst * cols..(dst + 1) * cols]
                        .copy_from_slice(&hf[src * cols..(src + 1) * cols]);
                }
            }
        }
        assert_eq!(unpermute_rows(&gguf, rows, cols, heads).unwrap(), hf);
        assert!(unpermute_rows(&gguf, rows, cols, 3).is_none());
    }
}
