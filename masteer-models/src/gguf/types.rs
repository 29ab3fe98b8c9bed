//! GGUF value types, tensor types and block layouts.

use std::fmt;

/// A metadata value of a GGUF file.
#[derive(Clone, Debug, PartialEq)]
pub enum MetadataValue {
    /// `uint8`
    U8(u8),
    /// `int8`
    I8(i8),
    /// `uint16`
    U16(u16),
    /// `int16`
    I16(i16),
    /// `uint32`
    U32(u32),
    /// `int32`
    I32(i32),
    /// `float32`
    F32(f32),
    /// `bool`
    Bool(bool),
    /// UTF-8 `string`
    String(String),
    /// `array` of values of one type
    Array(Vec<MetadataValue>),
    /// `uint64`
    U64(u64),
    /// `int64`
    I64(i64),
    /// `float64`
    F64(f64),
}

impl MetadataValue {
    /// The GGUF type code of the value.
    pub fn type_code(&self) -> u32 {
        match self {
            MetadataValue::U8(_) => 0,
            MetadataValue::I8(_) => 1,
            MetadataValue::U16(_) => 2,
            MetadataValue::I16(_) => 3,
            MetadataValue::U32(_) => 4,
            MetadataValue::I32(_) => 5,
            MetadataValue::F32(_) => 6,
            MetadataValue::Bool(_) => 7,
            MetadataValue::String(_) => 8,
            MetadataValue::Array(_) => 9,
            MetadataValue::U64(_) => 10,
            MetadataValue::I64(_) => 11,
            MetadataValue::F64(_) => 12,
        }
    }

    /// The value as an unsigned integer, if it is an integer of any width that fits.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            MetadataValue::U8(v) => Some(v as u64),
            MetadataValue::U16(v) => Some(v as u64),
            MetadataValue::U32(v) => Some(v as u64),
            MetadataValue::U64(v) => Some(v),
            MetadataValue::I8(v) => u64::try_from(v).ok(),
            MetadataValue::I16(v) => u64::try_from(v).ok(),
            MetadataValue::I32(v) => u64::try_from(v).ok(),
            MetadataValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            MetadataValue::F32(v) => Some(v as f64),
            MetadataValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64).or(match *self {
                MetadataValue::I8(v) => Some(v as f64),
                MetadataValue::I16(v) => Some(v as f64),
                MetadataValue::I32(v) => Some(v as f64),
                MetadataValue::I64(v) => Some(v as f64),
                _ => None,
            }),
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            MetadataValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            MetadataValue::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[MetadataValue]> {
        match self {
            MetadataValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// Tensor data types of ggml, by their GGUF type code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// 4-bit, 32 values per block, scale only: 18 bytes.
    Q4_0,
    /// 4-bit, 32 values per block, scale and minimum: 20 bytes.
    Q4_1,
    /// 8-bit, 32 values per block, scale only: 34 bytes.
    Q8_0,
    /// bfloat16.
    BF16,
    /// 5-bit, 32 values per block, scale only: 22 bytes (llama.cpp's fallback for
    /// Q4_K rows that are not a multiple of 256).
    Q5_0,
    /// 5-bit, 32 values per block, scale and minimum: 24 bytes (fallback for Q5_K).
    Q5_1,
    /// 4-bit non-linear codebook, 32 values per block: 18 bytes (fallback for Q2_K/Q3_K).
    Iq4Nl,
    /// K-quant, 2-bit: 256 values per super-block, 84 bytes.
    Q2K,
    /// K-quant, 3-bit: 256 values per super-block, 110 bytes.
    Q3K,
    /// K-quant, 4-bit: 256 values per super-block, 144 bytes.
    Q4K,
    /// K-quant, 5-bit: 256 values per super-block, 176 bytes.
    Q5K,
    /// K-quant, 6-bit: 256 values per super-block, 210 bytes.
    Q6K,
    /// Any other type code (I-quants...): recognised but not dequantised.
    Other(u32),
}

impl GgmlType {
    /// Decode a type code.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            20 => GgmlType::Iq4Nl,
            10 => GgmlType::Q2K,
            11 => GgmlType::Q3K,
            12 => GgmlType::Q4K,
            13 => GgmlType::Q5K,
            14 => GgmlType::Q6K,
            30 => GgmlType::BF16,
            other => GgmlType::Other(other),
        }
    }

    /// The GGUF type code.
    pub fn code(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Iq4Nl => 20,
            GgmlType::Q2K => 10,
            GgmlType::Q3K => 11,
            GgmlType::Q4K => 12,
            GgmlType::Q5K => 13,
            GgmlType::Q6K => 14,
            GgmlType::BF16 => 30,
            GgmlType::Other(c) => c,
        }
    }

    /// `(values per block, bytes per block)`, or `None` for a type this crate cannot size.
    pub fn block_layout(self) -> Option<(usize, usize)> {
        match self {
            GgmlType::F32 => Some((1, 4)),
            GgmlType::F16 | GgmlType::BF16 => Some((1, 2)),
            GgmlType::Q4_0 => Some((32, 18)),
            GgmlType::Q4_1 => Some((32, 20)),
            GgmlType::Q8_0 => Some((32, 34)),
            GgmlType::Q5_0 => Some((32, 22)),
            GgmlType::Q5_1 => Some((32, 24)),
            GgmlType::Iq4Nl => Some((32, 18)),
            GgmlType::Q2K => Some((256, 84)),
            GgmlType::Q3K => Some((256, 110)),
            GgmlType::Q4K => Some((256, 144)),
            GgmlType::Q5K => Some((256, 176)),
            GgmlType::Q6K => Some((256, 210)),
            GgmlType::Other(_) => None,
        }
    }

    /// Bytes needed for `n_elements` values, or `None` if the count is not a whole
    /// number of blocks, overflows, or the type is unknown.
    pub fn byte_size(self, n_elements: u64) -> Option<u64> {
        let (per_block, bytes) = self.block_layout()?;
        if !n_elements.is_multiple_of(per_block as u64) {
            return None;
        }
        (n_elements / per_block as u64).checked_mul(bytes as u64)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GgmlType::F32 => f.write_str("F32"),
            GgmlType::F16 => f.write_str("F16"),
            GgmlType::Q4_0 => f.write_str("Q4_0"),
            GgmlType::Q4_1 => f.write_str("Q4_1"),
            GgmlType::Q8_0 => f.write_str("Q8_0"),
            GgmlType::BF16 => f.write_str("BF16"),
            GgmlType::Q5_0 => f.write_str("Q5_0"),
            GgmlType::Q5_1 => f.write_str("Q5_1"),
            GgmlType::Iq4Nl => f.write_str("IQ4_NL"),
            GgmlType::Q2K => f.write_str("Q2_K"),
            GgmlType::Q3K => f.write_str("Q3_K"),
            GgmlType::Q4K => f.write_str("Q4_K"),
            GgmlType::Q5K => f.write_str("Q5_K"),
            GgmlType::Q6K => f.write_str("Q6_K"),
            GgmlType::Other(c) => write!(f, "ggml type {c}"),
        }
    }
}
