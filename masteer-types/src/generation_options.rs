//! `GenerateOptions`: how many tokens to generate and how to pick them.

/// Settings of a generation run: the one options type every generator takes (the
/// model's own loop, the local and the HTTP text generators of sample generation).
#[derive(Clone, Debug, PartialEq)]
pub struct GenerateOptions {
    /// Most new tokens per sequence.
    pub max_new_tokens: usize,
    /// 0 for greedy decoding.
    pub temperature: f32,
    /// Keep only the k most likely tokens when sampling.
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches p when sampling.
    pub top_p: Option<f32>,
    /// Seed of the sampler (sequence `i` uses `seed + i`).
    pub seed: u64,
    /// Ids that end a sequence; `None` uses the model's end-of-turn / EOS ids.
    /// (Ignored by generators that do not see token ids, such as an HTTP endpoint.)
    pub stop_ids: Option<Vec<u32>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
            stop_ids: None,
        }
    }
}

impl GenerateOptions {
    /// Greedy decoding of at most `max_new_tokens`.
    pub fn greedy(max_new_tokens: usize) -> Self {
        GenerateOptions {
            max_new_tokens,
            ..Default::default()
        }
    }

    /// Sampling at `temperature` with nucleus `top_p`, seeded.
    pub fn sampled(max_new_tokens: usize, temperature: f32, top_p: f32, seed: u64) -> Self {
        GenerateOptions {
            max_new_tokens,
            temperature,
            top_p: Some(top_p),
            seed,
            ..Default::default()
        }
    }
}
