//! `plumbline-synth`: writes a synthetic whole-spine cohort as real DICOM; the same
//! program as `plumbline synth`, with the same options ([`plumbline::synth_args`]).

use std::process::ExitCode;

use clap::Parser;
use plumbline::synth_args::{SynthArgs, run};

/// Write a synthetic spine-surgery cohort: DX radiographs, landmark SRs (TID 1500),
/// clinical.csv, truth.csv and design.csv.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Synthetic whole-spine cohort generator writing real DICOM images and landmark SRs"
)]
struct Args {
    #[command(flatten)]
    synth: SynthArgs,
}

fn main() -> ExitCode {
    match run("plumbline-synth", Args::parse().synth) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("plumbline-synth: error: {e}");
            ExitCode::FAILURE
        }
    }
}
