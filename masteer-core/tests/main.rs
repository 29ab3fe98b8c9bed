//! masteer-core's integration tests in one binary (one build and link, the embedded model
//! loaded once): each module is a file of this folder, named for what it tests.

mod common;

mod adaptive_on_smollm;
mod algorithms_on_smollm;
mod artifacts;
mod bad_input;
mod datagen_e2e;
mod detectors;
mod grounded_on_smollm;
mod repair_on_smollm;
mod routing_on_smollm;
mod simple_qa_on_smollm;
