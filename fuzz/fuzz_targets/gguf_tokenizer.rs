//! The tokenizer rebuilt from a GGUF file's metadata (`tokenizer.ggml.*`): byte-level
//! BPE with each supported pre-tokenizer, SentencePiece, token types, merges and special
//! ids; then a round trip of a short text through the result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use masteer_models::gguf::GgufFile;
use masteer_models::tokenizer::Tokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let Ok(tok) = Tokenizer::from_gguf(&file) else {
        return;
    };
    if let Ok(ids) = tok.encode("Hello, world! 2+2=4 ünïcode") {
        let _ = tok.decode(&ids, false);
    }
});
