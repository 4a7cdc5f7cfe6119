//! The `plumbline` command's library: pipeline files, the batch run and file inspection.
//! The binary (`src/main.rs`) only parses arguments and prints.

pub mod inspect;
pub mod merge;
pub mod pipeline;
pub mod run;
