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
use plumbline_ingest::privacy::Pseudonymizer;

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

/// `plumbline run`'s options.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Folder holding the DICOM files (any depth, any names; never written to), or a
    /// DICOMweb base URL (http:// or https://, e.g. https://pacs.example/dicom-web): the
    /// clinical table's patients are searched there (QIDO-RS) over the pipeline's windows
    /// and read by WADO-RS through a cache in --out.
    #[arg(long, value_name = "FOLDER|URL")]
    input: PathBuf,
    /// Credentials of the DICOMweb server: the file holds `user:password` (HTTP Basic) or
    /// `Bearer TOKEN`. Never written to any output or log.
    #[arg(long, value_name = "FILE")]
    auth_file: Option<PathBuf>,
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
    /// Also write each reading's metrics and classification as a DICOM SR (TID 1500
    /// Measurement Report) to out/sr/{patient}/{timepoint}_{reader}.dcm, in the study it
    /// measures. Not with --pseudonymize: the SR names the patient, as its images do.
    #[arg(long, conflicts_with = "pseudonymize")]
    write_sr: bool,
    /// Write the results SRs (as --write-sr) and store them with STOW-RS on the DICOMweb
    /// --input, or on the server at URL; what is not stored is a QC error in qc.csv.
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        default_missing_value = "",
        conflicts_with = "pseudonymize"
    )]
    stow: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the batch: scan the DICOM tree, read landmarks, compute every metric, write
    /// measurements.csv, patients.csv, cohort_summary.csv, qc.csv and run.json.
    Run(RunArgs),
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

/// Why a command failed: printed once, in `main`, which also picks the exit code.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// The command line, the pipeline file or the key file is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The run could not run or finish (its own exit code).
    #[error(transparent)]
    Run(#[from] plumbline::run::RunError),
    /// The shards could not be merged (exit 1).
    #[error("merge: {0}")]
    Merge(#[from] plumbline::merge::MergeError),
    /// The worker threads could not be started (exit 1).
    #[error("{0}")]
    Threads(String),
    /// The generator could not write the cohort (exit 1).
    #[cfg(feature = "synth")]
    #[error("synth: {0}")]
    Synth(#[from] plumbline_synth::SynthError),
    /// `inspect` could not read its file; what it found is printed already (exit 1).
    #[error("inspect: {} could not be read as DICOM or a landmark file", .0.display())]
    Unreadable(PathBuf),
}

impl CliError {
    /// The exit code (README): 1 could not finish, 2 the command or its files are wrong.
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Run(e) => e.exit_code(),
            CliError::Merge(_) | CliError::Threads(_) | CliError::Unreadable(_) => 1,
            #[cfg(feature = "synth")]
            CliError::Synth(_) => 1,
        }
    }
}

fn load_pipeline(path: Option<&PathBuf>) -> Result<Pipeline, CliError> {
    match path {
        Some(p) => Pipeline::load(p).map_err(|e| CliError::Usage(e.to_string())),
        None => Ok(Pipeline::embedded_default()),
    }
}

fn main() -> ExitCode {
    match dispatch(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("plumbline: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Runs one command; the error, if any, is printed by `main`.
fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run(args) => run_command(args),
        #[cfg(feature = "synth")]
        Command::Synth(args) => {
            plumbline::synth_args::run("plumbline synth", args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge {
            shards,
            out,
            parquet,
        } => {
            let n = plumbline::merge::merge(&shards, &out, parquet)?;
            eprintln!(
                "plumbline merge: {} shards, {n} readings -> {}",
                shards.len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { file, pipeline } => {
            let pipeline = load_pipeline(pipeline.as_ref())?;
            let (text, readable) = inspect(&file, &pipeline);
            print!("{text}");
            if readable {
                Ok(ExitCode::SUCCESS)
            } else {
                Err(CliError::Unreadable(file))
            }
        }
    }
}

/// `plumbline run`: the options checked, the worker threads started, the batch run.
fn run_command(a: RunArgs) -> Result<ExitCode, CliError> {
    let shard = plumbline::run::parse_shard(a.shard.as_deref(), |k| std::env::var(k).ok())
        .map_err(CliError::Usage)?;
    let pseudonymize = a
        .pseudonymize
        .map(|k| Pseudonymizer::from_key_file(&k, a.shift_dates))
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let pipeline = load_pipeline(a.pipeline.as_ref())?;
    if let Some(n) = a.threads {
        if n == 0 {
            return Err(CliError::Usage("--threads must be at least 1".into()));
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| CliError::Threads(format!("cannot start {n} threads: {e}")))?;
    }
    let opts = RunOptions {
        input: a.input,
        clinical: a.clinical,
        out: a.out,
        pipeline,
        progress: !a.quiet && std::io::stderr().is_terminal(),
        overlays: a.overlays,
        pseudonymize,
        fresh: a.fresh,
        shard,
        parquet: a.parquet,
        landmark_map: a.landmark_map,
        write_sr: a.write_sr,
        auth_file: a.auth_file,
        stow: a.stow.map(|u| Some(u).filter(|u| !u.is_empty())),
    };
    let summary = run(&opts)?;
    if !a.quiet {
        eprintln!("{}", summary.closing_line(&opts.out));
    }
    Ok(ExitCode::SUCCESS)
}
