//! `plumbline-synth`: writes a synthetic whole-spine cohort as real DICOM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use plumbline_synth::{ImageSize, SynthOptions, generate};

/// Write a synthetic spine-surgery cohort: DX radiographs, landmark SRs (TID 1500),
/// clinical.csv, truth.csv and design.csv.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Number of patients.
    #[arg(long)]
    patients: usize,
    /// Random seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (created; must not already contain a dicom/ folder).
    #[arg(long)]
    out: PathBuf,
    /// Pixel matrix: small (320 x 136) or clinical (7000 x 3000).
    #[arg(long, value_enum, default_value = "small")]
    image_size: ImageSize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let start = Instant::now();
    let opts = SynthOptions {
        patients: args.patients,
        seed: args.seed,
        out: args.out,
        image_size: args.image_size,
    };
    match generate(&opts) {
        Ok(s) => {
            eprintln!(
                "plumbline-synth: {} patients, {} DICOM files ({:.1} MB), {} truth rows in {:.1} s -> {}",
                opts.patients,
                s.files,
                s.bytes as f64 / 1e6,
                s.truth_rows,
                start.elapsed().as_secs_f64(),
                opts.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("plumbline-synth: error: {e}");
            ExitCode::FAILURE
        }
    }
}
