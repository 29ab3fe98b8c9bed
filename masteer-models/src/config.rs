//! `LlamaConfig`: the hyperparameters of a Llama-family decoder, read from GGUF
//! metadata or from a Hugging Face `config.json`.

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;

/// How RoPE frequencies are rescaled for long contexts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RopeScaling {
    /// Plain RoPE.
    #[default]
    None,
    /// Positions divided by `factor` (linear interpolation).
    Linear {
        /// Interpolation factor.
        factor: f64,
    },
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        /// Overall factor (8 for Llama 3.1).
        factor: f64,
        /// Wavelengths longer than `original / low_freq_factor` are scaled fully.
        low_freq_factor: f64,
        /// Wavelengths shorter than `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// Context length of the original training.
        original_max_position_embeddings: usize,
    },
}

/// Hyperparameters of a Llama-family decoder (Llama 2/3.x, SmolLM2, TinyLlama, Mistral).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    /// Architecture name as the file gives it (`llama`, `mistral`).
    pub architecture: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of decoder blocks.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention when smaller than the query heads).
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Epsilon of RMSNorm.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f64,
    /// RoPE rescaling.
    #[serde(default)]
    pub rope_scaling: RopeScaling,
    /// Longest context the model was trained for.
    pub max_position_embeddings: usize,
    /// Whether the output head reuses the token embeddings.
    pub tie_word_embeddings: bool,
}

/// Largest accepted value of any size field, a guard against absurd configs that
/// would make us allocate terabytes.
const MAX_DIM: usize = 1 << 20;

impl LlamaConfig {
    /// Check the invariants the decoder relies on.
    pub fn validate(&self) -> Result<()> {
        let fields = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (name, v) in fields {
            if v == 0 || v > MAX_DIM * 16 {
                return Err(ModelError::Config(format!(
                    "{name} is {v}, outside 1..={}",
                    MAX_DIM * 16
                )));
            }
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(ModelError::Config(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            )));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(ModelError::Config(format!(
                "head_dim {} is odd; RoPE needs pairs",
                self.head_dim
            )));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(ModelError::Config(format!(
                "rms_norm_eps {} is not positive",
                self.rms_norm_eps
            )));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return Err(ModelError::Config(format!(
                "rope_theta {} must be > 1",
                self.rope_theta
            )));
        }
        Ok(())
    }

    /// Width of the concatenated query heads (`heads · head_dim`), the width of `attn_heads`.
    pub fn q_width(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// Width of the concatenated key (or value) heads.
    pub fn kv_width(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }

    /// Read the config from GGUF metadata (`{arch}.block_count`, ...).
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let arch = f.require_str("general.architecture")?.to_string();
        if !matches!(arch.as_str(), "llama" | "mistral") {
            return Err(f.error(format!(
                "architecture `{arch}` is not supported (Llama-family `llama` or `mistral` only)"
            )));
        }
        let key = |k: &str| format!("{arch}.{k}");
        let get_usize = |k: &str| -> Result<usize> {
            let v = f.require_u64(&key(k))?;
            usize::try_from(v)
                .map_err(|_| f.error(format!("{} = {v} does not fit in usize", key(k))))
        };
        let hidden = get_usize("embedding_length")?;
        let heads = get_usize("attention.head_count")?;
        let kv_heads = match f.get(&key("attention.head_count_kv")) {
            Some(v) => v.as_u64().ok_or_else(|| {
                f.error(format!(
                    "{} is not an integer",
                    key("attention.head_count_kv")
                ))
            })? as usize,
            None => heads,
        };
        if heads == 0 {
            return Err(f.error("attention.head_count is 0"));
        }
        let head_dim = match f.get(&key("attention.key_length")) {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| f.error("attention.key_length is not an integer"))?
                as usize,
            None => hidden / heads,
        };
        let vocab = match f.get(&key("vocab_size")) {
            Some(v) => v
                .as_u64()
                .ok_or_else(|| f.error("vocab_size is not an integer"))?
                as usize,
            None => f
                .get("tokenizer.ggml.tokens")
                .and_then(|t| t.as_array())
                .map(|a| a.len())
                .ok_or_else(|| {
                    f.error("neither vocab_size nor tokenizer.ggml.tokens is present")
                })?,
        };
        let eps = f
            .require(&key("attention.layer_norm_rms_epsilon"))?
            .as_f64()
            .ok_or_else(|| f.error("attention.layer_norm_rms_epsilon is not a number"))?;
        let theta = match f.get(&key("rope.freq_base")) {
            Some(v) => v
                .as_f64()
                .ok_or_else(|| f.error("rope.freq_base is not a number"))?,
            None => 10_000.0,
        };
        let rope_scaling = match f.get(&key("rope.scaling.type")).and_then(|v| v.as_str()) {
            Some("linear") => RopeScaling::Linear {
                factor: f
                    .get(&key("rope.scaling.factor"))
                    .and_then(|v| v.as_f64())
                    .ok_or_else(|| {
                        f.error("rope.scaling.type is linear but rope.scaling.factor is missing")
                    })?,
            },
            Some("none") | None => RopeScaling::None,
            Some(other) => {
                return Err(f.error(format!("rope scaling type `{other}` is not supported")));
            }
        };
        let cfg = LlamaConfig {
            architecture: arch.clone(),
            vocab_size: vocab,
            hidden_size: hidden,
            intermediate_size: get_usize("feed_forward_length")?,
            num_hidden_layers: get_usize("block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rms_norm_eps: eps,
            rope_theta: theta,
            rope_scaling,
            max_position_embeddings: get_usize("context_length")?,
            tie_word_embeddings: f.tensor_info("output.weight").is_none(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read the config from the text of a Hugging Face `config.json`.
    pub fn from_hf_json(text: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| ModelError::Config(format!("config.json is not valid JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ModelError::Config("config.json is not a JSON object".into()))?;
        let model_type = obj
            .get("model_type")
            .and_then(|m| m.as_str())
            .unwrap_or("llama");
        if !matches!(model_type, "llama" | "mistral") {
            return Err(ModelError::Config(format!(
                "model_type `{model_type}` is not supported (Llama-family `llama` or `mistral` only)"
            )));
        }
        let req = |k: &str| -> Result<usize> {
            let x = obj
                .get(k)
                .ok_or_else(|| ModelError::Config(format!("config.json lacks `{k}`")))?;
            x.as_u64().map(|u| u as usize).ok_or_else(|| {
                ModelError::Config(format!(
                    "config.json `{k}` is {x}, not a non-negative integer"
                ))
            })
        };
        let opt_f64 = |k: &str, default: f64| -> Result<f64> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(x) => x.as_f64().ok_or_else(|| {
                    ModelError::Config(format!("config.json `{k}` is {x}, not a number"))
                }),
            }
        };
        let hidden = req("hidden_size")?;
        let heads = req("num_attention_heads")?;
        if heads == 0 {
            return Err(ModelError::Config("num_attention_heads is 0".into()));
        }
        let kv_heads = if obj.contains_key("num_key_value_heads") {
            req("num_key_value_heads")?
        } else {
            heads
        };
        let head_dim = match obj.get("head_dim") {
            Some(serde_json::Value::Null) | None => hidden / heads,
            Some(_) => req("head_dim")?,
        };
        let rope_scaling = match obj.get("rope_scaling") {
            None | Some(serde_json::Value::Null) => RopeScaling::None,
            Some(s) => {
                let kind = s
                    .get("rope_type")
                    .or_else(|| s.get("type"))
                    .and_then(|t| t.as_str())
                    .unwrap_or("");
                let num = |k: &str| -> Result<f64> {
                    s.get(k).and_then(|x| x.as_f64()).ok_or_else(|| {
                        ModelError::Config(format!(
                            "rope_scaling of type `{kind}` lacks numeric `{k}`"
                        ))
                    })
                };
                match kind {
                    "linear" => RopeScaling::Linear {
                        factor: num("factor")?,
                    },
                    "llama3" => RopeScaling::Llama3 {
                        factor: num("factor")?,
                        low_freq_factor: num("low_freq_factor")?,
                        high_freq_factor: num("high_freq_factor")?,
                        original_max_position_embeddings: num("original_max_position_embeddings")?
                            as usize,
                    },
                    "default" => RopeScaling::None,
                    other => {
                        return Err(ModelError::Config(format!(
                            "rope_scaling type `{other}` is not supported"
                        )))
                    }
                }
            }
        };
        let cfg = LlamaConfig {
            architecture: model_type.to_string(),
            vocab_size: req("vocab_size")?,
            hidden_size: hidden,
            intermediate_size: req("intermediate_size")?,
            num_hidden_layers: req("num_hidden_layers")?,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rms_norm_eps: opt_f64("rms_norm_eps", 1e-6)?,
            rope_theta: opt_f64("rope_theta", 10_000.0)?,
            rope_scaling,
            max_position_embeddings: req("max_position_embeddings").unwrap_or(4096),
            tie_word_embeddings: obj
                .get("tie_word_embeddings")
                .and_then(|t| t.as_bool())
                .unwrap_or(false),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// RoPE inverse frequencies (`1 / theta^(2i/d)`), with the configured rescaling applied.
    pub fn rope_inv_freq(&self) -> Vec<f64> {
        let d = self.head_dim as f64;
        let base: Vec<f64> = (0..self.head_dim / 2)
            .map(|i| 1.0 / self.rope_theta.powf(2.0 * i as f64 / d))
            .collect();
        match self.rope_scaling {
            RopeScaling::None => base,
            RopeScaling::Linear { factor } => base.into_iter().map(|f| f / factor).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let old = original_max_position_embeddings as f64;
                let low_wavelen = old / low_freq_factor;
                let high_wavelen = old / high_freq_factor;
                base.into_iter()
                    .map(|f| {
                        let wavelen = 2.0 * std::f64::consts::PI / f;
                        if wavelen < high_wavelen {
                            f
                        } else if wavelen > low_wavelen {
                            f / factor
                        } else {
                            let smooth = (old / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * f / factor + smooth * f
                        }
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = r#"{
      "architectures": ["LlamaForCausalLM"], "model_type": "llama",
      "hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9,
      "num_hidden_layers": 30, "num_key_value_heads": 3, "rms_norm_eps": 1e-05,
      "rope_theta": 100000, "max_position_embeddings": 8192, "tie_word_embeddings": true,
      "vocab_size": 49152, "rope_scaling": null }"#;

    #[test]
    fn parses_a_hf_config() {
        let c = LlamaConfig::from_hf_json(SMOL).unwrap();
        assert_eq!(c.head_dim, 64);
        assert_eq!(c.num_key_value_heads, 3);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.rope_theta, 100000.0);
        assert_eq!(c.q_width(), 576);
        assert_eq!(c.kv_width(), 192);
    }

    #[test]
    fn bad_configs_are_errors() {
        assert!(LlamaConfig::from_hf_json("{").is_err());
        assert!(LlamaConfig::from_hf_json("[]").is_err());
        let missing = SMOL.replace("\"hidden_size\": 576,", "");
        let e = LlamaConfig::from_hf_json(&missing).unwrap_err().to_string();
        assert!(e.contains("hidden_size"), "{e}");
        let gqa = SMOL.replace("\"num_key_value_heads\": 3", "\"num_key_value_heads\": 4");
        let e = LlamaConfig::from_hf_json(&gqa).unwrap_err().to_string();
        assert!(e.contains("multiple"), "{e}");
        let other = SMOL.replace("\"model_type\": \"llama\"", "\"model_type\": \"gpt2\"");
        assert!(LlamaConfig::from_hf_json(&other).is_err());
        let neg = SMOL.replace("\"hidden_size\": 576", "\"hidden_size\": -1");
        assert!(LlamaConfig::from_hf_json(&neg).is_err());
    }

    #[test]
    fn llama3_scaling_keeps_high_and_scales_low_frequencies() {
        let mut c = LlamaConfig::from_hf_json(SMOL).unwrap();
        c.rope_theta = 500000.0;
        c.head_dim = 128;
        c.rope_scaling = RopeScaling::Llama3 {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192,
        };
        let f = c.rope_inv_freq();
        let plain = LlamaConfig {
            rope_scaling: RopeScaling::None,
            ..c.clone()
        }
        .rope_inv_freq();
        assert_eq!(f[0], plain[0]);
        assert!((f[63] - plain[63] / 8.0).abs() < 1e-15);
    }
}
