//! The error type of `masteer-algorithms`.

use masteer_types::HookPoint;

/// Result alias of this crate.
pub type Result<T, E = AlgorithmError> = std::result::Result<T, E>;

/// Everything that can make a fit or a selection fail.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AlgorithmError {
    /// The activations hold no pairs.
    #[error("no contrast pairs{0}")]
    Empty(String),
    /// Positive and negative rows do not pair up (different counts, or one side empty).
    #[error("one-sided or unpaired data at {point}: {positives} positive rows, {negatives} negative rows")]
    OneSided {
        /// Where.
        point: HookPoint,
        /// Positive rows.
        positives: usize,
        /// Negative rows.
        negatives: usize,
    },
    /// Rows of different widths, or a width that does not fit the site.
    #[error("width mismatch at {point}: {message}")]
    WidthMismatch {
        /// Where.
        point: HookPoint,
        /// What differs.
        message: String,
    },
    /// A NaN or infinite activation.
    #[error("non-finite activation at {point}, {side} row {row}")]
    NonFinite {
        /// Where.
        point: HookPoint,
        /// `positive` or `negative`.
        side: &'static str,
        /// Row index.
        row: usize,
    },
    /// Data from which no direction can be read (zero variance, identical pairs).
    #[error("degenerate data at {point}: {message}")]
    Degenerate {
        /// Where.
        point: HookPoint,
        /// Why.
        message: String,
    },
    /// The activations lack the site (or layers) an algorithm needs.
    #[error("missing activations: {0}")]
    Missing(String),
    /// An algorithm's settings are invalid.
    #[error("invalid settings of `{algorithm}`: {message}")]
    InvalidSettings {
        /// The algorithm.
        algorithm: String,
        /// What is wrong.
        message: String,
    },
    /// The logistic-regression solver failed.
    #[error("probe at {point} failed: {message}")]
    Probe {
        /// Where.
        point: HookPoint,
        /// The solver's message.
        message: String,
    },
    /// A second algorithm with a name already registered.
    #[error("an algorithm named `{0}` is already registered")]
    DuplicateName(String),
    /// A selection's scoring closure failed or returned nothing usable.
    #[error("selection: {0}")]
    Selection(String),
}
