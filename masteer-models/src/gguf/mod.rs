//! GGUF: the llama.cpp model file format (reader, dequantisation, writer).

pub mod dequant;
mod reader;
mod types;
mod writer;

pub use reader::{GgufFile, TensorInfo, DEFAULT_ALIGNMENT, GGUF_MAGIC};
pub use types::{GgmlType, MetadataValue};
pub use writer::{GgufWriter, TensorToWrite};
