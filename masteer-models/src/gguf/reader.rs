//! Parsing of GGUF v2/v3 files: header, metadata, tensor infos and tensor data.
//!
//! Every count, length and offset read from the file is checked against the bytes
//! that remain before it is used, so a malformed file yields a [`ModelError::Gguf`]
//! naming the problem and its offset, never a panic or a huge allocation.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use super::dequant;
use super::types::{GgmlType, MetadataValue};
use crate::error::{ModelError, Result};

/// The four magic bytes at the start of every GGUF file.
pub const GGUF_MAGIC: &[u8; 4] = b"GGUF";
/// Default alignment of the tensor data section.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// Deepest nesting of metadata arrays accepted (arrays of arrays of ...).
const MAX_ARRAY_DEPTH: usize = 4;
/// Most dimensions a tensor may have.
const MAX_DIMS: u32 = 4;

/// The bytes of a GGUF file: memory-mapped from disk or owned.
enum Storage {
    Mmap(Mmap),
    Owned(Vec<u8>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mmap(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// Description of one tensor of a GGUF file.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    /// Tensor name as stored (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions in GGUF order: fastest-varying first (`[in, out]` for a linear weight).
    pub dims: Vec<u64>,
    /// Element type.
    pub dtype: GgmlType,
    /// Offset of the data relative to the start of the data section.
    pub offset: u64,
    /// Number of values.
    pub n_elements: u64,
}

impl TensorInfo {
    /// Dimensions in row-major order (slowest first), as Hugging Face and burn use them.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file whose tensor data stays memory-mapped until asked for.
pub struct GgufFile {
    path: String,
    storage: Arc<Storage>,
    /// Format version (2 or 3).
    pub version: u32,
    metadata: Vec<(String, MetadataValue)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_start: u64,
    alignment: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

/// A bounds-checked little-endian reader over a byte slice.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> std::result::Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: {what} at offset {} needs {n} bytes, only {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &str) -> std::result::Result<[u8; N], String> {
        let s = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> std::result::Result<u8, String> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &str) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    fn u32(&mut self, what: &str) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    fn u64(&mut self, what: &str) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-prefixed UTF-8 string.
    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let at = self.pos;
        let len = self.u64(what)?;
        if len > self.remaining() as u64 {
            return Err(format!(
                "{what} at offset {at} declares length {len}, larger than the {} bytes left in the file",
                self.remaining()
            ));
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("{what} at offset {at} is not valid UTF-8"))
    }
}

/// Smallest encoded size of one value of a metadata type, used to bound array lengths.
fn min_value_size(type_code: u32) -> Option<usize> {
    Some(match type_code {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => 8,
        9 => 12,
        10..=12 => 8,
        _ => return None,
    })
}

fn read_value(
    c: &mut Cursor<'_>,
    type_code: u32,
    key: &str,
    depth: usize,
) -> std::result::Result<MetadataValue, String> {
    let what = |t: &str| format!("{t} value of `{key}`");
    Ok(match type_code {
        0 => MetadataValue::U8(c.u8(&what("u8"))?),
        1 => MetadataValue::I8(c.u8(&what("i8"))? as i8),
        2 => MetadataValue::U16(c.u16(&what("u16"))?),
        3 => MetadataValue::I16(c.u16(&what("i16"))? as i16),
        4 => MetadataValue::U32(c.u32(&what("u32"))?),
        5 => MetadataValue::I32(c.u32(&what("i32"))? as i32),
        6 => MetadataValue::F32(f32::from_bits(c.u32(&what("f32"))?)),
        7 => {
            let at = c.pos;
            match c.u8(&what("bool"))? {
                0 => MetadataValue::Bool(false),
                1 => MetadataValue::Bool(true),
                v => {
                    return Err(format!(
                        "bool value of `{key}` at offset {at} is {v}, not 0 or 1"
                    ))
                }
            }
        }
        8 => MetadataValue::String(c.string(&what("string"))?),
        9 => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(format!(
                    "array `{key}` nests deeper than {MAX_ARRAY_DEPTH} levels"
                ));
            }
            let at = c.pos;
            let elem_type = c.u32(&what("array element type"))?;
            let len = c.u64(&what("array length"))?;
            let min = min_value_size(elem_type).ok_or_else(|| {
                format!("array `{key}` at offset {at} has unknown element type {elem_type}")
            })?;
            if len
                .checked_mul(min as u64)
                .is_none_or(|need| need > c.remaining() as u64)
            {
                return Err(format!(
                    "array `{key}` at offset {at} declares {len} elements, more than the {} bytes left in the file can hold",
                    c.remaining()
                ));
            }
            let mut items = Vec::with_capacity(len as usize);
            for _ in 0..len {
                items.push(read_value(c, elem_type, key, depth + 1)?);
            }
            MetadataValue::Array(items)
        }
        10 => MetadataValue::U64(c.u64(&what("u64"))?),
        11 => MetadataValue::I64(c.u64(&what("i64"))? as i64),
        12 => MetadataValue::F64(f64::from_bits(c.u64(&what("f64"))?)),
        other => return Err(format!("metadata `{key}` has unknown value type {other}")),
    })
}

impl GgufFile {
    /// Memory-map and parse a GGUF file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| ModelError::io("opening", path, e))?;
        // SAFETY: the map is read-only; the file is not expected to change while the
        // model is loaded (the same assumption llama.cpp and safetensors make).
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io("mapping", path, e))?;
        Self::parse(path.display().to_string(), Storage::Mmap(mmap))
    }

    /// Parse a GGUF file held in memory (tests, fuzzing, files received over the network).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::parse("<memory>".to_string(), Storage::Owned(bytes))
    }

    fn parse(path: String, storage: Storage) -> Result<Self> {
        let err = |message: String| ModelError::Gguf {
            path: path.clone(),
            message,
        };
        let buf = storage.bytes();
        let mut c = Cursor { buf, pos: 0 };
        let magic = c.array::<4>("magic").map_err(err)?;
        if &magic != GGUF_MAGIC {
            return Err(err(format!(
                "wrong magic {:?} (expected \"GGUF\"): not a GGUF file",
                String::from_utf8_lossy(&magic)
            )));
        }
        let version = c.u32("version").map_err(err)?;
        if !(2..=3).contains(&version) {
            return Err(err(format!(
                "unsupported GGUF version {version} (this reader handles versions 2 and 3)"
            )));
        }
        let n_tensors = c.u64("tensor count").map_err(err)?;
        let n_kv = c.u64("metadata count").map_err(err)?;
        // Each metadata entry takes at least 8 (key length) + 4 (type) + 1 bytes; each
        // tensor info at least 8 + 4 + 4 + 8 bytes.
        if n_kv.saturating_mul(13) > c.remaining() as u64 {
            return Err(err(format!(
                "metadata count {n_kv} is larger than the file can hold ({} bytes left)",
                c.remaining()
            )));
        }
        if n_tensors.saturating_mul(24) > c.remaining() as u64 {
            return Err(err(format!(
                "tensor count {n_tensors} is larger than the file can hold ({} bytes left)",
                c.remaining()
            )));
        }

        let mut metadata = Vec::with_capacity(n_kv as usize);
        let mut metadata_index = HashMap::with_capacity(n_kv as usize);
        for i in 0..n_kv {
            let key = c
                .string(&format!("key of metadata entry {i}"))
                .map_err(err)?;
            let type_code = c.u32(&format!("type of `{key}`")).map_err(err)?;
            let value = read_value(&mut c, type_code, &key, 0).map_err(err)?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(err(format!("metadata key `{key}` appears twice")));
            }
            metadata.push((key, value));
        }

        let alignment = match metadata_index.get("general.alignment") {
            Some(&i) => {
                let a = metadata[i].1.as_u64().ok_or_else(|| {
                    err("general.alignment is not an unsigned integer".to_string())
                })?;
                if a == 0 || !a.is_power_of_two() {
                    return Err(err(format!(
                        "general.alignment is {a}, not a positive power of two"
                    )));
                }
                a
            }
            None => DEFAULT_ALIGNMENT,
        };

        let mut tensors = Vec::with_capacity(n_tensors as usize);
        let mut tensor_index = HashMap::with_capacity(n_tensors as usize);
        for i in 0..n_tensors {
            let name = c.string(&format!("name of tensor {i}")).map_err(err)?;
            let at = c.pos;
            let n_dims = c
                .u32(&format!("dimension count of `{name}`"))
                .map_err(err)?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(err(format!(
                    "tensor `{name}` at offset {at} has {n_dims} dimensions (1 to {MAX_DIMS} supported)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            let mut n_elements: u64 = 1;
            for d in 0..n_dims {
                let dim = c.u64(&format!("dimension {d} of `{name}`")).map_err(err)?;
                n_elements = n_elements.checked_mul(dim).ok_or_else(|| {
                    err(format!("tensor `{name}`: element count overflows 64 bits"))
                })?;
                dims.push(dim);
            }
            let dtype = GgmlType::from_code(c.u32(&format!("type of `{name}`")).map_err(err)?);
            let offset = c.u64(&format!("data offset of `{name}`")).map_err(err)?;
            if offset % alignment != 0 {
                return Err(err(format!(
                    "tensor `{name}` data offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(err(format!("tensor `{name}` appears twice")));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                dtype,
                offset,
                n_elements,
            });
        }

        let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
        let file_len = buf.len() as u64;
        for t in &tensors {
            let Some(size) = t.dtype.byte_size(t.n_elements) else {
                if t.dtype.block_layout().is_some() {
                    return Err(err(format!(
                        "tensor `{}` has {} values, not a whole number of {} blocks",
                        t.name, t.n_elements, t.dtype
                    )));
                }
                // Unknown type: cannot be sized; it is refused when read.
                continue;
            };
            let end = data_start
                .checked_add(t.offset)
                .and_then(|s| s.checked_add(size))
                .ok_or_else(|| err(format!("tensor `{}` data range overflows", t.name)))?;
            if end > file_len {
                return Err(err(format!(
                    "tensor `{}` data [{}..{end}) lies beyond the end of the file ({file_len} bytes)",
                    t.name,
                    data_start + t.offset
                )));
            }
        }

        Ok(GgufFile {
            path,
            storage: Arc::new(storage),
            version,
            metadata,
            metadata_index,
            tensors,
            tensor_index,
            data_start,
            alignment,
        })
    }

    /// Path the file was read from (`<memory>` for in-memory files).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Alignment of the tensor data section.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// All metadata entries, in file order.
    pub fn metadata(&self) -> &[(String, MetadataValue)] {
        &self.metadata
    }

    /// One metadata value by key.
    pub fn get(&self, key: &str) -> Option<&MetadataValue> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// A required metadata value, or an error naming the missing key.
    pub fn require(&self, key: &str) -> Result<&MetadataValue> {
        self.get(key)
            .ok_or_else(|| self.error(format!("missing metadata key `{key}`")))
    }

    /// A required unsigned-integer metadata value.
    pub fn require_u64(&self, key: &str) -> Result<u64> {
        self.require(key)?
            .as_u64()
            .ok_or_else(|| self.error(format!("metadata `{key}` is not an unsigned integer")))
    }

    /// A required string metadata value.
    pub fn require_str(&self, key: &str) -> Result<&str> {
        self.require(key)?
            .as_str()
            .ok_or_else(|| self.error(format!("metadata `{key}` is not a string")))
    }

    /// Tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// One tensor info by name.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The raw bytes of a tensor's data (still quantised).
    pub fn tensor_bytes(&self, info: &TensorInfo) -> Result<&[u8]> {
        let size = info.dtype.byte_size(info.n_elements).ok_or_else(|| {
            ModelError::UnsupportedTensorType {
                name: info.name.clone(),
                dtype: info.dtype.to_string(),
            }
        })?;
        let start = (self.data_start + info.offset) as usize;
        let end = start + size as usize; // checked against the file length in `parse`
        Ok(&self.storage.bytes()[start..end])
    }

    /// Drop the pages of a tensor's data from this process's resident memory; they are
    /// read again from the file if touched. The loader calls it once a tensor is copied
    /// or dequantised, so loading never holds the whole map and its copy at once (peak
    /// memory ≈ the file's size, not twice it). A no-op for in-memory files and off Unix.
    pub fn release(&self, info: &TensorInfo) {
        #[cfg(unix)]
        if let (Storage::Mmap(m), Some(size)) =
            (&*self.storage, info.dtype.byte_size(info.n_elements))
        {
            let start = (self.data_start + info.offset) as usize;
            // SAFETY: the map is a read-only file mapping, so pages dropped here read
            // back identical from the file; no slice into it sees different bytes.
            // Failure only means the pages stay resident.
            let _ = unsafe {
                m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, size as usize)
            };
        }
        #[cfg(not(unix))]
        let _ = info;
    }

    /// Dequantise a tensor to f32 values in row-major order.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let info = self
            .tensor_info(name)
            .ok_or_else(|| ModelError::MissingTensor {
                name: name.to_string(),
                source_name: self.path.clone(),
            })?;
        let bytes = self.tensor_bytes(info)?;
        dequant::dequantize(info.dtype, bytes, info.n_elements as usize).ok_or_else(|| {
            ModelError::UnsupportedTensorType {
                name: info.name.clone(),
                dtype: info.dtype.to_string(),
            }
        })
    }

    /// A `ModelError::Gguf` about this file.
    pub fn error(&self, message: impl Into<String>) -> ModelError {
        ModelError::Gguf {
            path: self.path.clone(),
            message: message.into(),
        }
    }
}
