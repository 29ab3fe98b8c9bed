//! Tokenizer through the `tokenizers` crate: from a Hugging Face `tokenizer.json`, or
//! rebuilt from the vocabulary and merges stored in a GGUF file.
//!
//! Special tokens: text is encoded with added special tokens recognised (as both
//! llama.cpp with `special = true` and Hugging Face's `apply_chat_template` do), so a
//! literal `<|im_start|>` in text becomes the control token. Callers that feed
//! untrusted text into a chat should strip such markers first.

use std::path::Path;

use serde_json::{json, Value};

use crate::error::{ModelError, Result};
use crate::gguf::{GgufFile, MetadataValue};

/// GGUF token type of control tokens (`<|im_start|>`...).
const TOKEN_TYPE_CONTROL: i64 = 3;
/// GGUF token type of user-defined tokens.
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The regexes of DeepSeek LLM's pre-tokenizer (`tokenizer.ggml.pre = deepseek-llm`),
/// applied in turn, each match kept as its own piece (llama.cpp's `llama-vocab.cpp`).
const DEEPSEEK_LLM_PATTERNS: [&str; 6] = [
    "[\r\n]",
    "\\s?[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+",
    "\\s?[!-/:-~\u{ff01}-\u{ff0f}\u{ff1a}-\u{ff5e}\u{2018}-\u{201f}\u{3000}-\u{3002}]+",
    "\\s+$",
    "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
    "\\p{N}+",
];

/// The regexes of DeepSeek Coder's pre-tokenizer (`tokenizer.ggml.pre = deepseek-coder`).
const DEEPSEEK_CODER_PATTERNS: [&str; 5] = [
    "[\r\n]",
    "\\s?\\p{L}+",
    "\\s?\\p{P}+",
    "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+",
    "\\p{N}",
];

/// Regex of Llama 3's pre-tokenizer (`tokenizer.ggml.pre = llama-bpe`).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A text tokenizer with the model's special-token ids.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos_id: Option<u32>,
    eos_ids: Vec<u32>,
    pad_id: Option<u32>,
    add_bos: bool,
    json_hash: String,
    /// Byte-level vocabularies' user-defined tokens (llama.cpp's token type 4: DeepSeek's
    /// single letters such as `ü`), whose text is the raw string, not byte symbols, and
    /// is written as it is when decoding.
    raw_tokens: std::collections::HashMap<u32, String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab", &self.vocab_size())
            .field("bos_id", &self.bos_id)
            .field("eos_ids", &self.eos_ids)
            .finish()
    }
}

fn tok_err(e: impl std::fmt::Display) -> ModelError {
    ModelError::Tokenizer(e.to_string())
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

impl Tokenizer {
    /// Build from the text of a `tokenizer.json` document.
    pub fn from_json_str(json: &str) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(json.as_bytes())
            .map_err(|e| tok_err(format!("invalid tokenizer.json: {e}")))?;
        Ok(Tokenizer {
            inner,
            bos_id: None,
            eos_ids: Vec::new(),
            pad_id: None,
            add_bos: false,
            json_hash: sha256_hex(json.as_bytes()),
            raw_tokens: Default::default(),
        })
    }

    /// Read `tokenizer.json` (and, when present beside it, the special tokens of
    /// `tokenizer_config.json`).
    pub fn from_hf_folder(dir: &Path) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => tok_err(format!("missing {}", path.display())),
            _ => ModelError::io("reading", &path, e),
        })?;
        let mut tok = Self::from_json_str(&text)?;
        let cfg_path = dir.join("tokenizer_config.json");
        if cfg_path.exists() {
            let cfg = std::fs::read_to_string(&cfg_path)
                .map_err(|e| ModelError::io("reading", &cfg_path, e))?;
            let cfg: Value = serde_json::from_str(&cfg)
                .map_err(|e| tok_err(format!("{} is not valid JSON: {e}", cfg_path.display())))?;
            let token_of = |v: Option<&Value>| -> Option<String> {
                match v? {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(String::from),
                    _ => None,
                }
            };
            tok.bos_id = token_of(cfg.get("bos_token")).and_then(|t| tok.inner.token_to_id(&t));
            if let Some(eos) =
                token_of(cfg.get("eos_token")).and_then(|t| tok.inner.token_to_id(&t))
            {
                tok.eos_ids = vec![eos];
            }
            tok.pad_id = token_of(cfg.get("pad_token")).and_then(|t| tok.inner.token_to_id(&t));
            tok.add_bos = cfg
                .get("add_bos_token")
                .and_then(|b| b.as_bool())
                .unwrap_or(false);
        }
        let gen_cfg = dir.join("generation_config.json");
        if let Ok(text) = std::fs::read_to_string(&gen_cfg) {
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                match v.get("eos_token_id") {
                    Some(Value::Number(n)) => {
                        if let Some(id) = n.as_u64() {
                            tok.push_eos(id as u32);
                        }
                    }
                    Some(Value::Array(a)) => {
                        for id in a.iter().filter_map(|x| x.as_u64()) {
                            tok.push_eos(id as u32);
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(tok)
    }

    fn push_eos(&mut self, id: u32) {
        if !self.eos_ids.contains(&id) {
            self.eos_ids.push(id);
        }
    }

    /// BOS, EOS/EOT, padding ids and whether BOS is added, from GGUF metadata
    /// (`add_bos_default` when the file does not say).
    fn set_special_ids(&mut self, f: &GgufFile, add_bos_default: bool) {
        let id = |k: &str| f.get(k).and_then(|v| v.as_u64()).map(|v| v as u32);
        self.bos_id = id("tokenizer.ggml.bos_token_id");
        for k in ["tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"] {
            if let Some(e) = id(k) {
                self.push_eos(e);
            }
        }
        self.pad_id = id("tokenizer.ggml.padding_token_id");
        self.add_bos = f
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.as_bool())
            .unwrap_or(add_bos_default);
    }

    /// A SentencePiece tokenizer from GGUF metadata (`tokenizer.ggml.model = llama`:
    /// Llama 2, Mistral, TinyLlama, Phi-3): vocabulary, scores and token types become a
    /// BPE with byte fallback whose merges are ordered by the merged piece's score (the
    /// conversion Hugging Face's `LlamaTokenizerFast` uses), spaces as `▁` with one
    /// prepended unless `tokenizer.ggml.add_space_prefix` is false.
    fn from_gguf_spm(f: &GgufFile) -> Result<Self> {
        let tokens = f
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .ok_or_else(|| tok_err("GGUF lacks tokenizer.ggml.tokens"))?;
        let scores = f
            .get("tokenizer.ggml.scores")
            .and_then(|v| v.as_array())
            .ok_or_else(|| tok_err("GGUF lacks tokenizer.ggml.scores (SentencePiece)"))?;
        let types = token_types(f, tokens.len());
        if scores.len() != tokens.len() || types.len() != tokens.len() {
            return Err(tok_err(format!(
                "SentencePiece metadata disagree: {} tokens, {} scores, {} token types",
                tokens.len(),
                scores.len(),
                types.len()
            )));
        }
        let mut pieces = Vec::with_capacity(tokens.len());
        for (id, t) in tokens.iter().enumerate() {
            let s = t
                .as_str()
                .ok_or_else(|| tok_err(format!("token {id} is not a string")))?;
            let score = scores[id]
                .as_f64()
                .ok_or_else(|| tok_err(format!("score of token {id} is not a number")))?;
            pieces.push((s, score as f32));
        }
        let index: std::collections::HashMap<&str, usize> =
            pieces.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
        // Merges: every split of a piece into two pieces of the vocabulary, ranked by the
        // piece's score (highest first), ties by the halves' ids.
        let mut merges: Vec<(f32, usize, usize, &str, &str)> = Vec::new();
        for (s, score) in &pieces {
            for (cut, _) in s.char_indices().skip(1) {
                let (l, r) = s.split_at(cut);
                if let (Some(&a), Some(&b)) = (index.get(l), index.get(r)) {
                    merges.push((*score, a, b, l, r));
                }
            }
        }
        merges.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
        let mut vocab = serde_json::Map::with_capacity(pieces.len());
        let mut added = Vec::new();
        for (id, ((s, _), ty)) in pieces.iter().zip(&types).enumerate() {
            vocab.insert(s.to_string(), json!(id));
            if *ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED {
                added.push(json!({
                    "id": id, "content": s, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": *ty == TOKEN_TYPE_CONTROL,
                }));
            }
        }
        let id = |k: &str| f.get(k).and_then(|v| v.as_u64()).map(|v| v as u32);
        let unk = id("tokenizer.ggml.unknown_token_id")
            .and_then(|u| pieces.get(u as usize))
            .map(|p| p.0.to_string());
        let space_prefix = f
            .get("tokenizer.ggml.add_space_prefix")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        let mut normalizers = Vec::new();
        if space_prefix {
            normalizers.push(json!({"type": "Prepend", "prepend": "\u{2581}"}));
        }
        normalizers
            .push(json!({"type": "Replace", "pattern": {"String": " "}, "content": "\u{2581}"}));
        let mut decoders = vec![
            json!({"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "}),
            json!({"type": "ByteFallback"}),
            json!({"type": "Fuse"}),
        ];
        if space_prefix {
            decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
        }
        let doc = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": normalizers},
            "pre_tokenizer": null,
            "post_processor": null,
            "decoder": {"type": "Sequence", "decoders": decoders},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": unk,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": true, "byte_fallback": true, "ignore_merges": false,
                "vocab": Value::Object(vocab),
                "merges": merges.iter().map(|m| json!([m.3, m.4])).collect::<Vec<_>>(),
            },
        });
        let mut tok = Self::from_json_str(&doc.to_string())?;
        tok.set_special_ids(f, true);
        Ok(tok)
    }

    /// Rebuild the tokenizer from GGUF metadata (`tokenizer.ggml.*`). Supports the
    /// byte-level BPE tokenizers (`tokenizer.ggml.model = gpt2`) with the `smollm`,
    /// `gpt2`/`default` and `llama-bpe` pre-tokenizers, and SentencePiece (`llama`).
    pub fn from_gguf(f: &GgufFile) -> Result<Self> {
        let model = f
            .get("tokenizer.ggml.model")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                tok_err(format!(
                    "{}: GGUF has no tokenizer metadata (tokenizer.ggml.model)",
                    f.path()
                ))
            })?;
        if model == "llama" {
            return Self::from_gguf_spm(f);
        }
        if model != "gpt2" {
            return Err(tok_err(format!(
                "GGUF tokenizer model `{model}` is not supported (byte-level BPE `gpt2` and SentencePiece `llama` are); load the Hugging Face folder with its tokenizer.json instead"
            )));
        }
        let pre = f
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.as_str())
            .unwrap_or("default");
        let tokens = f
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .ok_or_else(|| tok_err("GGUF lacks tokenizer.ggml.tokens"))?;
        let merges = f
            .get("tokenizer.ggml.merges")
            .and_then(|v| v.as_array())
            .ok_or_else(|| tok_err("GGUF lacks tokenizer.ggml.merges"))?;
        let types = token_types(f, tokens.len());
        if types.len() != tokens.len() {
            return Err(tok_err(format!(
                "tokenizer.ggml.token_type has {} entries for {} tokens",
                types.len(),
                tokens.len()
            )));
        }

        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        let mut added = Vec::new();
        let mut raw_tokens = std::collections::HashMap::new();
        for (id, (t, ty)) in tokens.iter().zip(&types).enumerate() {
            let s = t
                .as_str()
                .ok_or_else(|| tok_err(format!("token {id} is not a string")))?;
            vocab.insert(s.to_string(), json!(id));
            if *ty == TOKEN_TYPE_USER_DEFINED {
                raw_tokens.insert(id as u32, s.to_string());
            }
            if *ty == TOKEN_TYPE_CONTROL || *ty == TOKEN_TYPE_USER_DEFINED {
                added.push(json!({
                    "id": id, "content": s, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": *ty == TOKEN_TYPE_CONTROL,
                }));
            }
        }
        let mut merge_pairs = Vec::with_capacity(merges.len());
        for (i, m) in merges.iter().enumerate() {
            let s = m
                .as_str()
                .ok_or_else(|| tok_err(format!("merge {i} is not a string")))?;
            let (a, b) = s
                .split_once(' ')
                .ok_or_else(|| tok_err(format!("merge {i} `{s}` has no space")))?;
            merge_pairs.push(json!([a, b]));
        }
        let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
        // Regexes applied in turn, each match its own piece, then bytes to symbols.
        let split_sequence = |patterns: &[&str]| {
            let mut seq: Vec<serde_json::Value> = patterns
                .iter()
                .map(|p| json!({"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": false}))
                .collect();
            seq.push(byte_level(false));
            json!({"type": "Sequence", "pretokenizers": seq})
        };
        let pre_tokenizer = match pre {
            "smollm" => json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            "gpt2" | "gpt-2" | "default" => byte_level(true),
            "llama-bpe" | "llama3" => json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN}, "behavior": "Isolated", "invert": false},
                byte_level(false)]}),
            "deepseek-llm" => split_sequence(&DEEPSEEK_LLM_PATTERNS),
            "deepseek-coder" => split_sequence(&DEEPSEEK_CODER_PATTERNS),
            other => {
                return Err(tok_err(format!(
                    "GGUF pre-tokenizer `{other}` is not supported (smollm, gpt2, default, llama-bpe, deepseek-llm, deepseek-coder); load the Hugging Face folder with its tokenizer.json instead"
                )))
            }
        };
        let doc = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": null,
            "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null,
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": Value::Object(vocab), "merges": merge_pairs,
            },
        });
        let mut tok = Self::from_json_str(&doc.to_string())?;
        tok.set_special_ids(f, false);
        tok.raw_tokens = raw_tokens;
        Ok(tok)
    }

    /// Encode text to ids. Special tokens written in the text are recognised; a BOS
    /// token is prepended only when the model asks for it (`add_bos_token`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| tok_err(format!("encoding failed: {e}")))?;
        let mut ids = enc.get_ids().to_vec();
        if self.add_bos {
            if let Some(b) = self.bos_id {
                if ids.first() != Some(&b) {
                    ids.insert(0, b);
                }
            }
        }
        Ok(ids)
    }

    /// Decode ids to text; special tokens are kept when `skip_special` is false.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let decode = |run: &[u32]| {
            self.inner
                .decode(run, skip_special)
                .map_err(|e| tok_err(format!("decoding failed: {e}")))
        };
        if self.raw_tokens.is_empty() || !ids.iter().any(|i| self.raw_tokens.contains_key(i)) {
            return decode(ids);
        }
        // Runs of byte-level tokens decoded together, raw tokens written as they are.
        let mut out = String::new();
        let mut start = 0;
        for (k, id) in ids.iter().enumerate() {
            if let Some(raw) = self.raw_tokens.get(id) {
                out += &decode(&ids[start..k])?;
                out += raw;
                start = k + 1;
            }
        }
        out += &decode(&ids[start..])?;
        Ok(out)
    }

    /// The text of one token id (as stored in the vocabulary).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a token string.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Beginning-of-sequence id, if the model has one.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos_id
    }

    /// Ids that end a turn or the text (EOS, end-of-turn).
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos_ids
    }

    /// Set the ids that stop generation.
    pub fn set_eos_ids(&mut self, ids: Vec<u32>) {
        self.eos_ids = ids;
    }

    /// Padding id (EOS when the model has none).
    pub fn pad_id(&self) -> u32 {
        self.pad_id.or(self.eos_ids.first().copied()).unwrap_or(0)
    }

    /// The token string of the BOS id, for the chat template.
    pub fn bos_token(&self) -> String {
        self.bos_id
            .and_then(|i| self.id_to_token(i))
            .unwrap_or_default()
    }

    /// The token string of the first EOS id, for the chat template.
    pub fn eos_token(&self) -> String {
        self.eos_ids
            .first()
            .and_then(|&i| self.id_to_token(i))
            .unwrap_or_default()
    }

    /// SHA-256 of the tokenizer's JSON definition: part of the model fingerprint.
    pub fn content_hash(&self) -> &str {
        &self.json_hash
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// `tokenizer.ggml.token_type` as integers (all "normal" when absent).
fn token_types(f: &GgufFile, n: usize) -> Vec<i64> {
    match f
        .get("tokenizer.ggml.token_type")
        .and_then(|v| v.as_array())
    {
        Some(a) => a
            .iter()
            .map(|t| match t {
                MetadataValue::I32(x) => *x as i64,
                other => other.as_u64().map(|u| u as i64).unwrap_or(1),
            })
            .collect(),
        None => vec![1; n],
    }
}
