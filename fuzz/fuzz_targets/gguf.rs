//! The GGUF reader and everything a model load does with it: header, metadata of every
//! type, tensor infos, alignment, configuration, dequantisation and the shape checks of
//! the Llama loader. The tokenizer built from the same metadata has its own target
//! (`gguf_tokenizer`): two thirds of this target's time per input went to compiling the
//! fixed pre-tokenizer regexes inside the `tokenizers` crate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masteer_models::backend::Cpu;
use masteer_models::config::LlamaConfig;
use masteer_models::gguf::GgufFile;
use masteer_models::weights::GgufWeights;
use masteer_models::Llama;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    for t in file.tensors() {
        let _ = file.dequantize(&t.name);
    }
    let Ok(config) = LlamaConfig::from_gguf(&file) else {
        return;
    };
    let weights = GgufWeights::new(file, config.num_attention_heads, config.num_key_value_heads);
    let _ = Llama::<Cpu>::load(config, &weights, &Default::default());
});
