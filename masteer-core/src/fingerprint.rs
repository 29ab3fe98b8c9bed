//! The fingerprint of a model: what an artifact must match to be applied to it.

use burn::tensor::backend::Backend;
use masteer_models::LoadedModel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};

/// Architecture, sizes, tokenizer and weights of a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFingerprint {
    /// `llama`, `mistral`.
    pub architecture: String,
    /// Decoder blocks.
    pub layers: usize,
    /// Residual width.
    pub width: usize,
    /// Query heads.
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// SHA-256 of the tokenizer definition.
    pub tokenizer_hash: String,
    /// SHA-256 over the weight files (name, size and content of each).
    pub weights_hash: String,
}

impl ModelFingerprint {
    /// Fingerprint a loaded model (hashes its weight files: ~0.3 s for the embedded model).
    pub fn of<B: Backend>(lm: &LoadedModel<B>) -> Result<Self> {
        let c = lm.model.config();
        let mut h = Sha256::new();
        for path in lm.source.weight_files()? {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let digest = masteer_models::embedded::sha256_file(&path)?;
            h.update(name.as_bytes());
            h.update(digest.as_bytes());
        }
        Ok(ModelFingerprint {
            architecture: c.architecture.clone(),
            layers: c.num_hidden_layers,
            width: c.hidden_size,
            heads: c.num_attention_heads,
            head_dim: c.head_dim,
            vocab: c.vocab_size,
            tokenizer_hash: lm.tokenizer.content_hash().to_string(),
            weights_hash: hex::encode(h.finalize()),
        })
    }

    /// An error listing every field that differs from `other` (the model at hand).
    pub fn check_matches(&self, other: &ModelFingerprint) -> Result<()> {
        let mut diffs = Vec::new();
        macro_rules! cmp {
            ($f:ident) => {
                if self.$f != other.$f {
                    diffs.push(format!(
                        "{}: artifact {:?}, model {:?}",
                        stringify!($f),
                        self.$f,
                        other.$f
                    ));
                }
            };
        }
        cmp!(architecture);
        cmp!(layers);
        cmp!(width);
        cmp!(heads);
        cmp!(head_dim);
        cmp!(vocab);
        cmp!(tokenizer_hash);
        cmp!(weights_hash);
        if diffs.is_empty() {
            Ok(())
        } else {
            Err(CoreError::ModelMismatch(diffs.join("; ")))
        }
    }
}
