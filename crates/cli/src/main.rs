//! `plumbline`: DICOM whole-spine radiographs and landmark SRs to cohort-study tables.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use plumbline::inspect::inspect;
use plumbline::pipeline::Pipeline;
use plumbline::run::{RunOptions, run};
#[cfg(feature = "synth")]
use plumbline::synth_args::SynthArgs;

/// Exit codes (README): 0 the run finished (bad input files are in qc.csv); 1 it could
/// not finish (I/O: output not writable, a file vanished) or `inspect` could not read its
/// file; 2 the command, the pipeline file or the clinical table is wrong.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Spine alignment metrics and cohort tables from DICOM radiographs and landmark SRs",
    after_help = "Exit codes: 0 finished (bad input files are listed in qc.csv); 1 could not finish (I/O); 2 the command, pipeline file or clinical table is wrong."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the batch: scan the DICOM tree, read landmarks, compute every metric, write
    /// measurements.csv, patients.csv, cohort_summary.csv, qc.csv and run.json.
    Run {
        /// Folder holding the DICOM files (any depth, any names); never written to.
        #[arg(long)]
        input: PathBuf,
        /// Clinical table: patient_id,surgery_date,herniation_level,herniation_side[,...].
        #[arg(long)]
        clinical: PathBuf,
        /// Output folder (created if missing; must not be inside --input).
        #[arg(long)]
        out: PathBuf,
        /// Pipeline file (TOML); default: pipelines/default.toml, built in.
        #[arg(long)]
        pipeline: Option<PathBuf>,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// No progress bars and no closing summary.
        #[arg(long)]
        quiet: bool,
        /// Also render QC overlays (out/overlays/...); same as `overlays = true` in the
        /// pipeline's [outputs].
        #[arg(long)]
        overlays: bool,
        /// Replace every patient identifier in every output by the first 16 hex digits of
        /// HMAC-SHA256(key, PatientID); the key is this file's bytes (at least 16).
        #[arg(long, value_name = "KEYFILE")]
        pseudonymize: Option<PathBuf>,
        /// With --pseudonymize: shift each patient's dates by a keyed offset (-182..=182 days).
        #[arg(long, requires = "pseudonymize")]
        shift_dates: bool,
        /// Process only shard K of N (K from 0) of the patients, for cluster array jobs;
        /// read from SLURM_ARRAY_TASK_ID/COUNT when not given. Combine with `plumbline merge`.
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Ignore the work record of earlier runs into this --out (re-read every file).
        #[arg(long)]
        fresh: bool,
        /// Also write measurements.parquet and patients.parquet (same columns as the CSVs)
        /// for Spark, DuckDB or Polars.
        #[arg(long)]
        parquet: bool,
        /// CSV `file,sop_instance_uid[,observer]`: the image (and reader) of each 3D Slicer
        /// markups file in patient mm whose name does not start with the image's UID.
        #[arg(long, value_name = "CSV")]
        landmark_map: Option<PathBuf>,
    },
    /// Combine the output folders of `plumbline run --shard K/N` into the tables of one run.
    Merge {
        /// The shard output folders (all N of them).
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Also write measurements.parquet and patients.parquet.
        #[arg(long)]
        parquet: bool,
    },
    /// Write a synthetic cohort (same as the plumbline-synth program).
    #[cfg(feature = "synth")]
    Synth(SynthArgs),
    /// Show what one file yields: landmarks, image, spacing source, orientation, QC problems.
    Inspect {
        /// The file.
        file: PathBuf,
        /// Pipeline file for vocabulary synonyms (default: built in).
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
}

fn load_pipeline(path: Option<&PathBuf>) -> Result<Pipeline, String> {
    match path {
        Some(p) => Pipeline::load(p).map_err(|e| e.to_string()),
        None => Ok(Pipeline::embedded_default()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            input,
            clinical,
            out,
            pipeline,
            threads,
            quiet,
            overlays,
            pseudonymize,
            shift_dates,
            shard,
            fresh,
            parquet,
            landmark_map,
        } => {
            let shard =
                match plumbline::run::parse_shard(shard.as_deref(), |k| std::env::var(k).ok()) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("plumbline: error: {e}");
                        return ExitCode::from(2);
                    }
                };
            let pseudonymize = match pseudonymize
                .map(|k| plumbline::privacy::Pseudonymizer::from_key_file(&k, shift_dates))
                .transpose()
            {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("plumbline: error: {e}");
                    return ExitCode::from(2);
                }
            };
            let pipeline = match load_pipeline(pipeline.as_ref()) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("plumbline: error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(n) = threads {
                if n == 0 {
                    eprintln!("plumbline: error: --threads must be at least 1");
                    return ExitCode::from(2);
                }
                if let Err(e) = rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build_global()
                {
                    eprintln!("plumbline: error: cannot start {n} threads: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let opts = RunOptions {
                input,
                clinical,
                out,
                pipeline,
                progress: !quiet && std::io::stderr().is_terminal(),
                overlays,
                pseudonymize,
                fresh,
                shard,
                parquet,
                landmark_map,
            };
            match run(&opts) {
                Ok(s) => {
                    if !quiet {
                        eprintln!("{}", s.closing_line(&opts.out));
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("plumbline: error: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        #[cfg(feature = "synth")]
        Command::Synth(args) => plumbline::synth_args::run("plumbline synth", args),
        Command::Merge {
            shards,
            out,
            parquet,
        } => match plumbline::merge::merge(&shards, &out, parquet) {
            Ok(n) => {
                eprintln!(
                    "plumbline merge: {} shards, {n} readings -> {}",
                    shards.len(),
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("plumbline merge: error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Inspect { file, pipeline } => {
            let pipeline = match load_pipeline(pipeline.as_ref()) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("plumbline: error: {e}");
                    return ExitCode::from(2);
                }
            };
            let (text, readable) = inspect(&file, &pipeline);
            print!("{text}");
            if readable {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
