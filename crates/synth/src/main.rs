//! `plumbline-synth`: writes a synthetic whole-spine cohort as real DICOM.

use std::process::ExitCode;

use clap::Parser;
use plumbline_synth::{SynthArgs, run_cli};

/// Write a synthetic spine-surgery cohort: DX radiographs, landmark SRs (TID 1500),
/// clinical.csv, truth.csv and design.csv.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    synth: SynthArgs,
}

fn main() -> ExitCode {
    run_cli("plumbline-synth", Args::parse().synth)
}
