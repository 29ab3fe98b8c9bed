//! masteer-models's integration tests in one binary (one build and link, the embedded model
//! loaded once): each module is a file of this folder, named for what it tests.

mod common;

mod chat_templates;
mod continuous;
mod golden;
mod hooks;
mod kquants;
mod loaders;
mod vocab_llama_cpp;
