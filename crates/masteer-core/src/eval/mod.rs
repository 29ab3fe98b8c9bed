//! Evaluation: how much a repair changes the targeted behaviour and how much general
//! capability it keeps.

pub mod ab;
