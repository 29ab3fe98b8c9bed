//! Token positions an intervention or a capture applies to.
//!
//! Positions are *absolute* token positions of each sequence (0 is the first real
//! token of that sequence, padding excluded), never indices into the tensor of the
//! current forward call. This is what keeps steering correct under left padding and
//! KV caching.

use serde::{Deserialize, Serialize};

use crate::TypesError;

/// Which absolute token positions of a sequence are selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Positions {
    /// Every position, prompt and generated.
    #[default]
    All,
    /// The prompt tokens only.
    Prompt,
    /// Generated tokens only (positions at or after the prompt length).
    Generated,
    /// The last token of the prompt.
    LastPromptToken,
    /// Positions `start..end` (end exclusive).
    Range {
        /// First selected position.
        start: usize,
        /// One past the last selected position.
        end: usize,
    },
}

impl Positions {
    /// A checked `Range` constructor.
    pub fn range(start: usize, end: usize) -> Result<Self, TypesError> {
        if end < start {
            return Err(TypesError::InvalidRange { start, end });
        }
        Ok(Positions::Range { start, end })
    }

    /// Whether absolute position `pos` is selected for a sequence whose prompt has
    /// `prompt_len` tokens.
    #[inline]
    pub fn contains(&self, pos: usize, prompt_len: usize) -> bool {
        match *self {
            Positions::All => true,
            Positions::Prompt => pos < prompt_len,
            Positions::Generated => pos >= prompt_len,
            Positions::LastPromptToken => prompt_len > 0 && pos + 1 == prompt_len,
            Positions::Range { start, end } => pos >= start && pos < end,
        }
    }
}

impl std::fmt::Display for Positions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Positions::All => f.write_str("all"),
            Positions::Prompt => f.write_str("prompt"),
            Positions::Generated => f.write_str("generated"),
            Positions::LastPromptToken => f.write_str("last_prompt_token"),
            Positions::Range { start, end } => write!(f, "{start}..{end}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_by_kind() {
        let prompt_len = 4;
        let sel = |p: Positions| -> Vec<usize> {
            (0..7).filter(|&i| p.contains(i, prompt_len)).collect()
        };
        assert_eq!(sel(Positions::All), vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(sel(Positions::Prompt), vec![0, 1, 2, 3]);
        assert_eq!(sel(Positions::Generated), vec![4, 5, 6]);
        assert_eq!(sel(Positions::LastPromptToken), vec![3]);
        assert_eq!(sel(Positions::range(2, 5).unwrap()), vec![2, 3, 4]);
        assert!(!Positions::LastPromptToken.contains(0, 0));
    }

    #[test]
    fn reversed_range_is_an_error() {
        assert_eq!(
            Positions::range(5, 2),
            Err(TypesError::InvalidRange { start: 5, end: 2 })
        );
    }

    #[test]
    fn serde_form() {
        let s = serde_json::to_string(&Positions::Range { start: 1, end: 3 }).unwrap();
        assert_eq!(s, r#"{"kind":"range","start":1,"end":3}"#);
        let p: Positions = serde_json::from_str(r#"{"kind":"last_prompt_token"}"#).unwrap();
        assert_eq!(p, Positions::LastPromptToken);
    }
}
