//! The `plumbline` command's library: pipeline files, the batch run and file inspection,
//! and (with the `synth` feature) the generator's command line, shared by `plumbline
//! synth` and the `plumbline-synth` program. The binary (`src/main.rs`) only parses
//! arguments and prints.

pub mod inspect;
pub mod merge;
pub mod pipeline;
pub mod run;
#[cfg(feature = "synth")]
pub mod synth_args;
