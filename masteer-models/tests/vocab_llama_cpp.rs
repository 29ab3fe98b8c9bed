//! GGUF tokenizers against llama.cpp's own tokenizer tests (`tests/fixtures/llama_cpp_vocab`,
//! MIT, from llama.cpp): its vocabulary-only GGUF files, the test strings, and the ids
//! llama.cpp produces for them. SentencePiece (`llama-spm`: Llama 2, Mistral,
//! TinyLlama; `phi-3`), GPT-2 byte-level BPE, and the DeepSeek LLM and DeepSeek Coder
//! pre-tokenizers (byte-level BPE split by their own regexes).

use std::path::PathBuf;

use masteer_models::gguf::GgufFile;
use masteer_models::Tokenizer;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama_cpp_vocab")
        .join(name)
}

/// Encode every test string of `vocab` and compare with llama.cpp's ids; returns the
/// number of strings checked.
fn check(vocab: &str) -> usize {
    let f = GgufFile::open(fixture(&format!("ggml-vocab-{vocab}.gguf"))).expect("vocab file");
    let tok = Tokenizer::from_gguf(&f).expect("tokenizer");
    let inp = std::fs::read_to_string(fixture(&format!("ggml-vocab-{vocab}.gguf.inp"))).unwrap();
    let out = std::fs::read_to_string(fixture(&format!("ggml-vocab-{vocab}.gguf.out"))).unwrap();
    let inp = inp.strip_suffix("\n__ggml_vocab_test__\n").unwrap_or(&inp);
    let texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
    let want: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        texts.len(),
        want.len(),
        "{vocab}: strings and id lines differ in number"
    );
    let bos = tok.bos_id();
    let mut failures = Vec::new();
    for (text, ids) in texts.iter().zip(&want) {
        let mut got = tok.encode(text).expect("encode");
        // llama.cpp's test prints the ids without the BOS its tokenizer adds.
        if got.first().copied() == bos && ids.first().copied() != bos {
            got.remove(0);
        }
        if &got != ids {
            failures.push(format!("{text:?}: got {got:?}, llama.cpp {ids:?}"));
        }
        // Decoding gives the text back (SentencePiece drops the added leading space).
        if !got.is_empty() {
            let back = tok.decode(&got, true).unwrap();
            assert_eq!(back, *text, "{vocab}: decode(encode({text:?}))");
        }
    }
    assert!(failures.is_empty(), "{vocab}:\n{}", failures.join("\n"));
    texts.len()
}

#[test]
fn sentencepiece_llama_matches_llama_cpp() {
    assert!(check("llama-spm") >= 30);
}

#[test]
fn sentencepiece_phi3_matches_llama_cpp() {
    assert!(check("phi-3") >= 30);
}

#[test]
fn gpt2_bpe_matches_llama_cpp() {
    assert!(check("gpt-2") >= 30);
}

#[test]
fn deepseek_llm_pre_tokenizer_matches_llama_cpp() {
    assert!(check("deepseek-llm") >= 30);
}

#[test]
fn deepseek_coder_pre_tokenizer_matches_llama_cpp() {
    assert!(check("deepseek-coder") >= 30);
}
