//! The roles of sample generation: analyst → retriever → writer → reviewer.

pub mod analyst;
pub mod reviewer;
pub mod writer;
