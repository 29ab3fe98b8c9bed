//! The error type of `masteer-models`.

use std::path::PathBuf;

use masteer_types::HookPoint;

/// Result alias of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, running or steering a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A GGUF file is malformed or unsupported.
    #[error("GGUF {path}: {message}")]
    Gguf {
        /// The file (or `<memory>`).
        path: String,
        /// What is wrong, with the offset where it was found.
        message: String,
    },
    /// A safetensors file is malformed or unsupported.
    #[error("safetensors {path}: {message}")]
    Safetensors {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The model configuration is missing a field or holds an inconsistent value.
    #[error("model config: {0}")]
    Config(String),
    /// A tensor the architecture needs is absent from the weights.
    #[error("missing tensor `{name}` in {source_name}")]
    MissingTensor {
        /// Tensor name (Hugging Face naming).
        name: String,
        /// Which weight source was searched.
        source_name: String,
    },
    /// A tensor has a shape other than the config implies.
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?} from the config")]
    ShapeMismatch {
        /// Tensor name.
        name: String,
        /// Shape implied by the config.
        expected: Vec<usize>,
        /// Shape found in the file.
        actual: Vec<usize>,
    },
    /// A tensor type this crate cannot dequantise.
    #[error("tensor `{name}` has unsupported type {dtype}")]
    UnsupportedTensorType {
        /// Tensor name.
        name: String,
        /// The type, as the file names it.
        dtype: String,
    },
    /// Building or using the tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Rendering the chat template failed.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// A hook point names a block the model does not have.
    #[error("hook point {point} is out of range: the model has {n_layers} blocks (0..{n_layers})")]
    LayerOutOfRange {
        /// The offending hook point.
        point: HookPoint,
        /// Number of blocks of the model.
        n_layers: usize,
    },
    /// A steering vector whose width does not match the site it is applied to.
    #[error("vector for {point} has width {actual}, the site has width {expected}")]
    VectorWidth {
        /// Where it was to be applied.
        point: HookPoint,
        /// Width of the site.
        expected: usize,
        /// Width of the vector.
        actual: usize,
    },
    /// A vector holding NaN or infinite values.
    #[error("vector for {point} holds a non-finite value at index {index}")]
    NonFiniteVector {
        /// Where it was to be applied.
        point: HookPoint,
        /// First offending index.
        index: usize,
    },
    /// A token id outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// Vocabulary size.
        vocab: usize,
    },
    /// Input that cannot be run (empty prompt, too long, inconsistent batch...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An adaptive-steering decider returned an unusable plan.
    #[error("decider at {at}: {message}")]
    Decider {
        /// Hook point where the decider ran.
        at: HookPoint,
        /// What was wrong with its answer.
        message: String,
    },
    /// Locating or fetching the embedded default model failed.
    #[error("embedded model: {0}")]
    Embedded(String),
    /// A backend operation failed (data transfer, device).
    #[error("backend: {0}")]
    Backend(String),
}

impl From<masteer_types::fsutil::WriteError> for ModelError {
    fn from(e: masteer_types::fsutil::WriteError) -> Self {
        ModelError::Io {
            context: format!("{} {}", e.action, e.path),
            source: e.source,
        }
    }
}

impl ModelError {
    /// Wrap an I/O error with the path it concerns.
    pub fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        ModelError::Io {
            context: format!("{} {}", context.into(), path.into().display()),
            source,
        }
    }
}
