//! Writing GGUF v3 files: metadata and tensors (used for llama.cpp control vectors and
//! for building small test models).

use std::io::Write;
use std::path::Path;

use super::reader::{DEFAULT_ALIGNMENT, GGUF_MAGIC};
use super::types::{GgmlType, MetadataValue};
use crate::error::{ModelError, Result};

/// A tensor to be written: name, row-major shape, type and the already-encoded bytes.
#[derive(Clone, Debug)]
pub struct TensorToWrite {
    /// Tensor name.
    pub name: String,
    /// Row-major shape (slowest first); written reversed, as GGUF stores dims.
    pub shape: Vec<usize>,
    /// Element type of `data`.
    pub dtype: GgmlType,
    /// Encoded data, exactly `dtype.byte_size(product(shape))` bytes.
    pub data: Vec<u8>,
}

impl TensorToWrite {
    /// An F32 tensor from values.
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        TensorToWrite {
            name: name.into(),
            shape,
            dtype: GgmlType::F32,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }
}

/// Builds a GGUF v3 file in memory.
#[derive(Default, Debug, Clone)]
pub struct GgufWriter {
    metadata: Vec<(String, MetadataValue)>,
    tensors: Vec<TensorToWrite>,
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, v: &MetadataValue) {
    match v {
        MetadataValue::U8(x) => out.push(*x),
        MetadataValue::I8(x) => out.push(*x as u8),
        MetadataValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::Bool(x) => out.push(*x as u8),
        MetadataValue::String(s) => write_string(out, s),
        MetadataValue::Array(items) => {
            let elem_type = items.first().map(|i| i.type_code()).unwrap_or(4);
            out.extend_from_slice(&elem_type.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for i in items {
                write_value(out, i);
            }
        }
        MetadataValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        MetadataValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a metadata entry (replacing an earlier one with the same key).
    pub fn metadata(&mut self, key: impl Into<String>, value: MetadataValue) -> &mut Self {
        let key = key.into();
        self.metadata.retain(|(k, _)| *k != key);
        self.metadata.push((key, value));
        self
    }

    /// Add a tensor.
    pub fn tensor(&mut self, tensor: TensorToWrite) -> &mut Self {
        self.tensors.push(tensor);
        self
    }

    /// Encode the file. Fails when an array mixes element types, or a tensor's data
    /// does not have the size its shape and type imply.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let err = |message: String| ModelError::Gguf {
            path: "<writer>".to_string(),
            message,
        };
        let alignment = self
            .metadata
            .iter()
            .find(|(k, _)| k == "general.alignment")
            .and_then(|(_, v)| v.as_u64())
            .unwrap_or(DEFAULT_ALIGNMENT);
        let mut out = Vec::new();
        out.extend_from_slice(GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (k, v) in &self.metadata {
            if let MetadataValue::Array(items) = v {
                if let Some(first) = items.first() {
                    if items.iter().any(|i| i.type_code() != first.type_code()) {
                        return Err(err(format!("array `{k}` mixes element types")));
                    }
                }
            }
            write_string(&mut out, k);
            out.extend_from_slice(&v.type_code().to_le_bytes());
            write_value(&mut out, v);
        }
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let n: u64 = t.shape.iter().map(|&d| d as u64).product();
            let size = t.dtype.byte_size(n).ok_or_else(|| {
                err(format!(
                    "tensor `{}`: {n} values cannot be stored as {}",
                    t.name, t.dtype
                ))
            })?;
            if size != t.data.len() as u64 {
                return Err(err(format!(
                    "tensor `{}` has {} bytes of data, its shape needs {size}",
                    t.name,
                    t.data.len()
                )));
            }
            write_string(&mut out, &t.name);
            out.extend_from_slice(&(t.shape.len() as u32).to_le_bytes());
            for &d in t.shape.iter().rev() {
                out.extend_from_slice(&(d as u64).to_le_bytes());
            }
            out.extend_from_slice(&t.dtype.code().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + size).div_ceil(alignment) * alignment;
        }
        let pad = |out: &mut Vec<u8>| {
            let len = out.len() as u64;
            let target = len.div_ceil(alignment) * alignment;
            out.resize(target as usize, 0);
        };
        pad(&mut out);
        let data_start = out.len() as u64;
        for (t, off) in self.tensors.iter().zip(offsets) {
            out.resize((data_start + off) as usize, 0);
            out.extend_from_slice(&t.data);
        }
        pad(&mut out);
        Ok(out)
    }

    /// Write the file atomically: to a temporary file beside `path`, then rename.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        let bytes = self.to_bytes()?;
        Ok(crate::fsutil::write_atomic(path.as_ref(), |f| {
            f.write_all(&bytes)
        })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf::GgufFile;

    #[test]
    fn written_file_reads_back() {
        let mut w = GgufWriter::new();
        w.metadata(
            "general.architecture",
            MetadataValue::String("controlvector".into()),
        )
        .metadata("controlvector.layer_count", MetadataValue::I32(2))
        .metadata(
            "list",
            MetadataValue::Array(vec![
                MetadataValue::String("a".into()),
                MetadataValue::String("b".into()),
            ]),
        )
        .tensor(TensorToWrite::f32("direction.1", vec![3], &[1.0, 2.0, 3.0]))
        .tensor(TensorToWrite::f32(
            "direction.2",
            vec![2, 3],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        ));
        let f = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
        assert_eq!(
            f.require_str("general.architecture").unwrap(),
            "controlvector"
        );
        assert_eq!(
            f.get("controlvector.layer_count"),
            Some(&MetadataValue::I32(2))
        );
        assert_eq!(f.get("list").unwrap().as_array().unwrap().len(), 2);
        assert_eq!(f.dequantize("direction.1").unwrap(), vec![1.0, 2.0, 3.0]);
        let info = f.tensor_info("direction.2").unwrap();
        assert_eq!(info.shape(), vec![2, 3]);
        assert_eq!(info.dims, vec![3, 2]);
        assert_eq!(
            f.dequantize("direction.2").unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        );
    }

    #[test]
    fn inconsistent_tensor_is_refused() {
        let mut w = GgufWriter::new();
        w.tensor(TensorToWrite {
            name: "x".into(),
            shape: vec![4],
            dtype: GgmlType::F32,
            data: vec![0; 12],
        });
        assert!(w.to_bytes().is_err());
    }
}
