//! The opt-in decision log: one JSON line per request saying which strategy fired
//! for which input, and why (similarities, threshold, margin).

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::api::SteeringDecision;
use crate::error::ServerError;

/// Most characters of the input kept per line.
const INPUT_CHARS: usize = 2000;

/// An append-only JSON-lines file of steering decisions.
pub struct DecisionLog {
    file: Mutex<std::fs::File>,
}

#[derive(Serialize)]
struct Line<'a> {
    time: f64,
    request: u64,
    endpoint: &'a str,
    input: &'a str,
    #[serde(flatten)]
    decision: &'a SteeringDecision,
}

impl DecisionLog {
    /// Open (or create) `path` for appending.
    pub fn open(path: &Path) -> Result<Self, ServerError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| ServerError::DecisionLog {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(DecisionLog {
            file: Mutex::new(file),
        })
    }

    /// Append one decision. A failed write is logged, never fatal to the request.
    pub fn record(&self, request: u64, endpoint: &str, input: &str, decision: &SteeringDecision) {
        let cut = input
            .char_indices()
            .nth(INPUT_CHARS)
            .map_or(input.len(), |(i, _)| i);
        let line = Line {
            time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            request,
            endpoint,
            input: &input[..cut],
            decision,
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        let mut f = match self.file.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        if let Err(e) = f.write_all(text.as_bytes()) {
            tracing::warn!("writing the decision log: {e}");
        }
    }
}
