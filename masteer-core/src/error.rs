//! The error type of `masteer-core`.

/// Result alias of this crate.
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Everything the pipeline can fail on, by the crate it came from.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The model (loading, running, steering).
    #[error(transparent)]
    Model(#[from] masteer_models::ModelError),
    /// An algorithm fit or selection.
    #[error(transparent)]
    Algorithm(#[from] masteer_algorithms::AlgorithmError),
    /// Anchor calibration or matching.
    #[error(transparent)]
    Anchor(#[from] masteer_anchor::AnchorError),
    /// Samples and datasets.
    #[error(transparent)]
    Data(#[from] masteer_datagen::DatagenError),
    /// An artifact made for another model.
    #[error("the artifact was made for a different model: {0}")]
    ModelMismatch(String),
    /// An artifact that cannot be read (missing file, unknown schema, bad tensors).
    #[error("artifact {path}: {message}")]
    Artifact {
        /// The artifact directory.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Input the pipeline cannot use.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl From<masteer_types::fsutil::WriteError> for CoreError {
    fn from(e: masteer_types::fsutil::WriteError) -> Self {
        CoreError::Io {
            context: format!("{} {}", e.action, e.path),
            source: e.source,
        }
    }
}

impl CoreError {
    /// An I/O error with context.
    pub fn io(
        context: impl std::fmt::Display,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        CoreError::Io {
            context: format!("{context} {}", path.display()),
            source,
        }
    }
}
