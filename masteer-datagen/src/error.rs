//! The error type of `masteer-datagen`.

/// Result alias of this crate.
pub type Result<T, E = DatagenError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, generating or saving samples.
#[derive(Debug, thiserror::Error)]
pub enum DatagenError {
    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A dataset file is malformed.
    #[error("{path}{}: {message}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Format {
        /// The file.
        path: String,
        /// 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A sample set that cannot be used as given (empty, duplicate ids, one-sided...).
    #[error("invalid sample set: {0}")]
    InvalidSet(String),
    /// A text generator (LLM) failed.
    #[error("generator: {0}")]
    Generator(String),
}

impl DatagenError {
    /// A format error in `path` at `line`.
    pub fn format(
        path: impl std::fmt::Display,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        DatagenError::Format {
            path: path.to_string(),
            line,
            message: message.into(),
        }
    }

    /// An I/O error with context.
    pub fn io(
        context: impl std::fmt::Display,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        DatagenError::Io {
            context: format!("{context} {}", path.display()),
            source,
        }
    }
}

impl From<masteer_types::fsutil::WriteError> for DatagenError {
    fn from(e: masteer_types::fsutil::WriteError) -> Self {
        DatagenError::Io {
            context: format!("{} {}", e.action, e.path),
            source: e.source,
        }
    }
}
