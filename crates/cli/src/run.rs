//! `plumbline run`: scan -> landmarks -> metrics -> tables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use plumbline_export::analyses::{Strata, strata};
use plumbline_export::parquet::table_parquet;
use plumbline_export::results_sr::{SrSettings, SrWritten, write_reading_srs};
use plumbline_export::tables::{
    Measured, MeasuredReading, SummaryRow, Table, measurements_table, metric_columns,
    patients_table, qc_csv, summary_csv, summary_rows,
};
use plumbline_export::{Durability, write_atomic, write_atomic_with};
use plumbline_geometry::Metric;
use plumbline_ingest::cache::{CacheError, ScanCache};
use plumbline_ingest::clinical::{ClinicalTable, read_clinical_for};
use plumbline_ingest::dicomweb::{Auth, Client, DicomWebError, RetryPolicy};
use plumbline_ingest::scan::{FileOutcome, ScanResult, scan_with};
use plumbline_ingest::source::dicomweb::{DicomWeb, DicomWebStats, PatientQuery, study_date_span};
use plumbline_ingest::source::{Folder, Source};
use plumbline_ingest::{Cohort, ImageFiles, QcIssue, Reading, ScanOptions, Severity, group};
use plumbline_render::overlay_files::{overlay_count, write_overlays};
use plumbline_render::report::{OverlayLink, ReportData, report_html};
use rayon::prelude::*;
use serde_json::json;

use crate::pipeline::Pipeline;

/// What `plumbline run` needs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The DICOM tree (read only).
    pub input: PathBuf,
    /// The clinical table.
    pub clinical: PathBuf,
    /// The output folder (created if missing).
    pub out: PathBuf,
    /// The pipeline.
    pub pipeline: Pipeline,
    /// Show progress bars (stderr is a terminal and not --quiet).
    pub progress: bool,
    /// Render QC overlays even if the pipeline does not ask for them.
    pub overlays: bool,
    /// Replace patient identifiers (and shift dates) in every output.
    pub pseudonymize: Option<plumbline_ingest::privacy::Pseudonymizer>,
    /// Ignore the work record of earlier runs in the output folder and start it anew.
    pub fresh: bool,
    /// Process only shard K (0-based) of N: the patients with `shard_of(id, N) == K`;
    /// QC problems of no patient go to shard 0.
    pub shard: Option<Shard>,
    /// Also write `measurements.parquet` and `patients.parquet` beside their CSVs.
    pub parquet: bool,
    /// `--landmark-map`: which image (and reader) each Slicer markups file in patient mm
    /// belongs to (`file,sop_instance_uid[,observer]`).
    pub landmark_map: Option<PathBuf>,
    /// `--write-sr`: also write each reading's results as a DICOM SR
    /// (`out/sr/{patient}/{timepoint}_{reader}.dcm`, `export::results_sr`).
    pub write_sr: bool,
    /// `--auth-file`: the credentials of a DICOMweb input or STOW-RS server
    /// (`user:password` for HTTP Basic, or `Bearer TOKEN`).
    pub auth_file: Option<PathBuf>,
    /// `--stow [URL]`: store the results SRs with STOW-RS (implies `write_sr`):
    /// `Some(None)` to the DICOMweb input, `Some(Some(url))` to that server.
    pub stow: Option<Option<String>>,
}

impl RunOptions {
    /// A run of `input` with `clinical` into `out` as `plumbline run` does it without
    /// other flags: the built-in default pipeline, no progress bars, no overlays, no
    /// pseudonyms, the work record reused, all patients, no Parquet. Change a field with
    /// struct update syntax:
    ///
    /// ```
    /// use plumbline::run::RunOptions;
    /// let opts = RunOptions {
    ///     overlays: true,
    ///     ..RunOptions::new("dicom".into(), "clinical.csv".into(), "out".into())
    /// };
    /// assert!(opts.overlays && !opts.fresh && opts.shard.is_none());
    /// ```
    pub fn new(input: PathBuf, clinical: PathBuf, out: PathBuf) -> RunOptions {
        RunOptions {
            input,
            clinical,
            out,
            pipeline: Pipeline::embedded_default(),
            progress: false,
            overlays: false,
            pseudonymize: None,
            fresh: false,
            shard: None,
            parquet: false,
            landmark_map: None,
            write_sr: false,
            auth_file: None,
            stow: None,
        }
    }

    /// The DICOMweb base URL when `input` is one (it starts with `http://` or
    /// `https://`), else `None` (a folder).
    pub fn dicomweb_url(&self) -> Option<&str> {
        let text = self.input.to_str()?;
        let lower = text.get(..8)?.to_ascii_lowercase();
        (lower.starts_with("http://") || lower.starts_with("https://")).then_some(text)
    }
}

/// The part of the patients one run of an array job processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// K, from 0.
    pub k: usize,
    /// N, at least 1.
    pub n: usize,
    /// Where K/N came from: `"--shard"` or `"SLURM_ARRAY_TASK_ID"` (the Slurm array
    /// variables), so that a run inside an array job never covers 1/N of the patients
    /// without saying so.
    pub source: &'static str,
}

/// Why a run could not run at all (bad files are QC, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The input folder is missing or not a folder.
    #[error("input folder {}: {reason}; give --input the folder that holds the DICOM files", path.display())]
    Input {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The output folder would be inside the input.
    #[error(
        "output folder {} is inside the input folder {}; Plumbline never writes into its input: choose --out elsewhere",
        out.display(),
        input.display()
    )]
    OutInsideInput {
        /// --out.
        out: PathBuf,
        /// --input.
        input: PathBuf,
    },
    /// The output folder cannot be created or written.
    #[error("cannot write to the output folder {}: {source}; choose a writable --out", path.display())]
    Output {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The landmark map cannot be used.
    #[error("{0}; fix the table given to --landmark-map")]
    LandmarkMap(String),
    /// The clinical table cannot be used at all.
    #[error(transparent)]
    Clinical(#[from] plumbline_ingest::clinical::ClinicalError),
    /// A `[[strata]]` of the pipeline names a column the clinical table lacks.
    #[error(
        "the pipeline's strata[{index}] compares the patients by column `{column}`, which the clinical table {} does not have (its columns: {found}); add the column or remove the stratum",
        path.display()
    )]
    StrataColumn {
        /// Index in `[[strata]]`.
        index: usize,
        /// The column named.
        column: String,
        /// The clinical table.
        path: PathBuf,
        /// Its columns, comma-separated.
        found: String,
    },
    /// Scanning the input failed at the top level.
    #[error(transparent)]
    Scan(#[from] plumbline_ingest::scan::ScanError),
    /// Writing an output failed.
    #[error(transparent)]
    Write(#[from] plumbline_export::WriteError),
    /// The work record cannot be opened.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The DICOMweb server cannot be used at all (credentials refused, no QIDO-RS at the
    /// URL, an unreadable --auth-file); failures of single studies are QC.
    #[error("DICOMweb server {url}: {source}")]
    DicomWeb {
        /// The base URL.
        url: String,
        /// What went wrong.
        #[source]
        source: DicomWebError,
    },
    /// `--stow` without a URL and with a folder as input.
    #[error(
        "--stow without a URL stores to the DICOMweb input, but --input is a folder: give the server, `--stow https://pacs.example/dicom-web`"
    )]
    StowWithoutServer,
}

/// What a run produced, for the closing summary line.
#[derive(Clone, Debug, Default)]
pub struct RunSummary {
    /// Files scanned.
    pub files: usize,
    /// Patients with at least one reading.
    pub patients: usize,
    /// Rows of measurements.csv.
    pub rows: usize,
    /// QC problems by severity: errors, warnings, infos.
    pub qc: (usize, usize, usize),
    /// Wall time.
    pub wall: Duration,
    /// Why the work record of an earlier run was set aside (every file was read again).
    pub record_discarded: Option<String>,
    /// The shard processed, when only part of the patients was.
    pub shard: Option<Shard>,
}

impl RunError {
    /// The process exit code for this error: 2 when the command, the pipeline or the
    /// clinical table must be changed, 1 when the run could not finish (I/O).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Input { .. }
            | RunError::OutInsideInput { .. }
            | RunError::Clinical(_)
            | RunError::StrataColumn { .. }
            | RunError::LandmarkMap(_)
            | RunError::StowWithoutServer => 2,
            RunError::DicomWeb { source, .. } => match source {
                DicomWebError::BaseUrl(_)
                | DicomWebError::Auth(_)
                | DicomWebError::AuthFile { .. }
                | DicomWebError::Refused { .. }
                | DicomWebError::Status {
                    status: 404 | 405, ..
                } => 2,
                _ => 1,
            },
            RunError::Output { .. }
            | RunError::Scan(_)
            | RunError::Write(_)
            | RunError::Cache(_) => 1,
        }
    }
}

impl RunSummary {
    /// The line `plumbline run` ends with: counts, QC by severity, wall time, the output
    /// folder, and (when so) the shard processed and why an earlier work record was set
    /// aside.
    pub fn closing_line(&self, out: &Path) -> String {
        let mut s = format!(
            "plumbline: {} files, {} patients, {} rows; QC: {} errors, {} warnings, {} notes; {:.1} s -> {}",
            self.files,
            self.patients,
            self.rows,
            self.qc.0,
            self.qc.1,
            self.qc.2,
            self.wall.as_secs_f64(),
            out.display()
        );
        if let Some(sh) = self.shard {
            s.push_str(&format!(
                "\nplumbline: shard {}/{} only (from {}): the patients of the other shards are not in these tables; combine all shards with `plumbline merge`",
                sh.k, sh.n, sh.source
            ));
        }
        if let Some(why) = &self.record_discarded {
            s.push_str(&format!(
                "\nplumbline: the work record of an earlier run was set aside ({why}); every file was read again"
            ));
        }
        s
    }
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The absolute form of a path that may not exist yet: its nearest existing ancestor
/// canonicalized (links resolved), with the rest appended.
fn resolved(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(c) = std::fs::canonicalize(cur) {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                cur = parent;
            }
            _ => return abs,
        }
    }
}

fn bar(mp: &MultiProgress, len: u64, what: &str, show: bool) -> ProgressBar {
    let b = if show {
        mp.add(ProgressBar::new(len))
    } else {
        ProgressBar::hidden()
    };
    b.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} {msg} ({per_sec}, ETA {eta})",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    b.set_prefix(what.to_string());
    b
}

/// Runs the batch. Returns the summary; bad input files end up in `qc.csv`.
///
/// Each stage is one function, and records flow one way (ARCHITECTURE.md): check the
/// inputs -> scan the source -> group into readings -> pseudonymise (when asked) ->
/// measure -> cohort statistics -> write tables -> overlays and report.
pub fn run(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let start = Instant::now();
    let p = &opts.pipeline;
    let progress = Progress::new(opts.progress);
    let mut clock = Clock::default();
    let mut checked = check_inputs(opts)?;
    let stow_client = checked.stow_client.take();
    let input = clock.time("discover", || open_input(opts, &mut checked, &progress))?;
    // `--stow URL`'s server, else the DICOMweb input (check_inputs made sure of one).
    let stow_to = stow_client
        .as_ref()
        .or_else(|| input.web().map(DicomWeb::client));
    let source = input.source();
    let cache = ScanCache::open(&opts.out, opts.fresh, &checked.scan_options)?;
    let scanned = clock.time("scan", || {
        scan(source, &checked.scan_options, &cache, &progress, &|| {
            input.tick()
        })
    })?;
    let (cohort, image_files) =
        clock.time("group", || group_readings(&scanned, checked, p, opts.shard));
    // Only the counts are read from here on: the records are dropped before the metrics
    // and the tables are made, which lowers the run's peak memory.
    let counts = counts_only(scanned);
    let cohort = pseudonymise(opts, cohort);
    let (measured, plausibility) = clock.time("metrics", || measure(cohort.readings, p, &progress));
    let rows: Vec<MeasuredReading> = measured.iter().map(|m| m.row.clone()).collect();
    let stats = cohort_statistics(p, &rows, &cohort.clinical);
    let tables = TableInputs {
        out: &opts.out,
        pipeline: p,
        input: source.name(),
        files: counts.files,
        images: counts.images,
        landmark_files: counts.srs + counts.landmark_files,
        measured: &rows,
        clinical: &cohort.clinical,
        parquet: opts.parquet,
    };
    let mut issues = cohort.issues;
    issues.extend(plausibility);
    let mut outputs = serde_json::Map::new();
    let issues = write_outputs(
        opts,
        &tables,
        &stats,
        (&measured, &image_files, input.source(), stow_to),
        issues,
        &counts,
        &mut outputs,
        (&progress, &mut clock),
    )?;
    let summary = RunSummary {
        files: counts.files,
        patients: stats.patients,
        rows: rows.len(),
        qc: qc_counts(&issues),
        wall: start.elapsed(),
        record_discarded: cache.discarded().map(String::from),
        shard: opts.shard,
    };
    let facts = RunFacts {
        dicomweb: input.web().map(DicomWeb::stats),
        clinical: &cohort.clinical,
        counts: &counts,
        cache: &cache,
        outputs: &outputs,
        clock: &clock,
    };
    write_run_json(opts, &facts, &summary)?;
    if opts.pseudonymize.is_some() {
        forget_cache(cache, &opts.out)?;
    }
    free_in_background((measured, rows, image_files, cohort.clinical, stats));
    Ok(summary)
}

/// Frees `records` on a thread of its own: the readings of a large cohort are millions
/// of small allocations, and freeing them one by one took the last half second of a
/// 5000-patient run (`perf record`: `BTreeMap::drop` and `free` only). The run returns
/// at once; `plumbline` then exits, which ends the thread and gives the memory back in
/// one go, and a library caller goes on while the thread frees it.
fn free_in_background<T: Send + 'static>(records: T) {
    // Without a thread to be had, `records` is dropped here, with the closure.
    let _ = std::thread::Builder::new()
        .name("plumbline-free".into())
        .spawn(move || drop(records));
}

/// The scan's counts; the records it found are dropped here.
fn counts_only(scanned: ScanResult) -> plumbline_ingest::scan::ScanCounts {
    scanned.counts
}

/// The pseudonymisation stage, with `--pseudonymize` ([`Pseudonymizer::pseudonymise`]):
/// after it no record holds a real PatientID or (with `--shift-dates`) date.
///
/// [`Pseudonymizer::pseudonymise`]: plumbline_ingest::privacy::Pseudonymizer::pseudonymise
fn pseudonymise(opts: &RunOptions, cohort: Cohort) -> Cohort {
    match &opts.pseudonymize {
        Some(ps) => ps.pseudonymise(cohort),
        None => cohort,
    }
}

/// The writing stages: the tables, then the overlays (when asked), then the report, QC
/// and (for a shard) the shard files. Returns every QC issue of the run, sorted and
/// deduplicated, as qc.csv holds them.
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    opts: &RunOptions,
    tables: &TableInputs,
    stats: &CohortStats,
    (measured, image_files, source, stow_to): (
        &[Measured],
        &ImageFiles,
        &dyn Source,
        Option<&Client>,
    ),
    mut issues: Vec<QcIssue>,
    counts: &plumbline_ingest::scan::ScanCounts,
    outputs: &mut serde_json::Map<String, serde_json::Value>,
    (progress, clock): (&Progress, &mut Clock),
) -> Result<Vec<QcIssue>, RunError> {
    clock.time("write", || write_tables(tables, stats, outputs))?;
    let overlays = clock.time("overlays", || {
        let (links, found) = overlays(opts, measured, image_files, source, progress);
        issues.extend(found);
        links
    });
    if let Some(links) = &overlays {
        outputs.insert("overlays".into(), json!(links.len()));
    }
    if opts.write_sr || opts.stow.is_some() {
        let written = clock.time("sr", || {
            let (written, found) = results_srs(opts, measured, image_files, progress);
            issues.extend(found);
            written
        });
        outputs.insert("sr".into(), json!(written.len()));
        if let (Some(_), Some(client)) = (&opts.stow, stow_to) {
            let (stored, found) =
                clock.time("stow", || stow(client, &opts.out, &written, progress));
            issues.extend(found);
            outputs.insert("sr_stored".into(), json!(stored));
        }
    }
    issues.sort();
    issues.dedup();
    let overlays = overlays.unwrap_or_default();
    clock.time("write", || {
        write_report(tables, stats, &issues, &overlays, outputs)?;
        match opts.shard {
            Some(Shard { k, n, .. }) => {
                write_shard_files(tables, k, n, &opts.input, counts, &overlays)
            }
            None => Ok(()),
        }
    })?;
    Ok(issues)
}

/// Progress bars on stderr (hidden without `progress`).
struct Progress {
    mp: MultiProgress,
    show: bool,
}

impl Progress {
    fn new(show: bool) -> Progress {
        let target = if show {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            mp: MultiProgress::with_draw_target(target),
            show,
        }
    }

    fn bar(&self, len: usize, what: &str) -> ProgressBar {
        bar(&self.mp, len as u64, what, self.show)
    }

    /// A bar of bytes received (its position set by the caller), without a length.
    fn bytes_bar(&self) -> ProgressBar {
        let b = if self.show {
            self.mp.add(ProgressBar::no_length())
        } else {
            ProgressBar::hidden()
        };
        b.set_style(
            ProgressStyle::with_template("{prefix:>10} {bytes} ({bytes_per_sec})")
                .expect("static template"),
        );
        b.set_prefix("received");
        b
    }
}

/// Wall time per stage, for `run.json`'s `durations_s`.
#[derive(Default)]
struct Clock {
    spent: BTreeMap<&'static str, Duration>,
}

impl Clock {
    /// Runs `f`, adding its wall time to `stage`.
    fn time<T>(&mut self, stage: &'static str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        *self.spent.entry(stage).or_default() += t.elapsed();
        out
    }

    fn secs(&self, stage: &str) -> f64 {
        self.spent.get(stage).map_or(0.0, Duration::as_secs_f64)
    }
}

/// The input folder exists, is a folder, and the output is not inside it.
fn check_input_folder(opts: &RunOptions) -> Result<(), RunError> {
    let meta = std::fs::metadata(&opts.input).map_err(|e| RunError::Input {
        path: opts.input.clone(),
        reason: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Err(RunError::Input {
            path: opts.input.clone(),
            reason: "not a folder".into(),
        });
    }
    if resolved(&opts.out).starts_with(canonical(&opts.input)) {
        return Err(RunError::OutInsideInput {
            out: opts.out.clone(),
            input: opts.input.clone(),
        });
    }
    Ok(())
}

/// Where the run's files come from: a folder, or a DICOMweb server (with its progress
/// bar of bytes received).
enum RunInput {
    Folder(Folder),
    Web(Box<DicomWeb>, ProgressBar),
}

impl RunInput {
    fn source(&self) -> &dyn Source {
        match self {
            RunInput::Folder(f) => f,
            RunInput::Web(w, _) => w.as_ref(),
        }
    }

    fn web(&self) -> Option<&DicomWeb> {
        match self {
            RunInput::Folder(_) => None,
            RunInput::Web(w, _) => Some(w),
        }
    }

    /// Brings the bytes bar up to date.
    fn tick(&self) {
        if let RunInput::Web(w, bar) = self {
            bar.set_position(w.client().bytes_received());
        }
    }
}

/// A DICOMweb error of the server at `url` as the run's error.
fn web_error(url: &str) -> impl FnOnce(DicomWebError) -> RunError + '_ {
    move |source| RunError::DicomWeb {
        url: url.to_string(),
        source,
    }
}

/// The credentials of `--auth-file`, if given.
fn auth(opts: &RunOptions, url: &str) -> Result<Option<Auth>, RunError> {
    opts.auth_file
        .as_deref()
        .map(Auth::from_file)
        .transpose()
        .map_err(web_error(url))
}

/// A DICOMweb client of `url` with `--auth-file`'s credentials.
fn client(opts: &RunOptions, url: &str) -> Result<Client, RunError> {
    Client::new(url, auth(opts, url)?, RetryPolicy::default()).map_err(web_error(url))
}

/// The source stage: the input folder, or the DICOMweb server searched for every
/// clinical-table patient (of the run's shard) over the pipeline's windows
/// ([`DicomWeb::discover`]), its cache in `out/.plumbline/dicomweb`.
fn open_input(
    opts: &RunOptions,
    checked: &mut Checked,
    progress: &Progress,
) -> Result<RunInput, RunError> {
    let (Some(url), Some(client)) = (opts.dicomweb_url(), checked.input_client.take()) else {
        return Ok(RunInput::Folder(Folder::new(&opts.input)));
    };
    let queries: Vec<PatientQuery> = checked
        .clinical
        .rows
        .iter()
        .filter(|r| in_shard(opts.shard, &r.patient_id))
        .map(|r| PatientQuery {
            patient_id: r.patient_id.clone(),
            date_ranges: study_date_span(r.surgery_day, &opts.pipeline.windows)
                .into_iter()
                .collect(),
        })
        .collect();
    let bytes = progress.bytes_bar();
    let counter = client.byte_counter();
    let bar = progress.bar(queries.len(), "patients");
    let studies = AtomicUsize::new(0);
    let cache = opts.out.join(".plumbline").join("dicomweb");
    let web = DicomWeb::discover(client, &cache, &queries, &|n| {
        let total = studies.fetch_add(n, Ordering::Relaxed) + n;
        bar.set_message(format!("{total} studies"));
        bar.inc(1);
        bytes.set_position(counter.load(Ordering::Relaxed));
    })
    .map_err(web_error(url))?;
    bar.finish();
    let input = RunInput::Web(Box::new(web), bytes);
    input.tick();
    Ok(input)
}

/// The STOW-RS stage (`--stow`): the results SRs `written` (below `out`) stored with
/// `client`, one request per study. Returns how many were stored and a QC error for each
/// that was not (a conflict, a failed-SOP entry, a network failure).
fn stow(
    client: &Client,
    out: &Path,
    written: &[SrWritten],
    progress: &Progress,
) -> (usize, Vec<QcIssue>) {
    let mut by_study: BTreeMap<&str, Vec<&SrWritten>> = BTreeMap::new();
    for w in written {
        by_study.entry(&w.study_uid).or_default().push(w);
    }
    let bar = progress.bar(written.len(), "stored");
    let by_study: Vec<(&str, Vec<&SrWritten>)> = by_study.into_iter().collect();
    let results: Vec<(usize, Vec<QcIssue>)> = by_study
        .par_iter()
        .with_max_len(1)
        .map(|(study, srs)| {
            let r = stow_study(client, out, study, srs);
            bar.inc(srs.len() as u64);
            r
        })
        .collect();
    bar.finish();
    let mut stored = 0;
    let mut issues = Vec::new();
    for (n, found) in results {
        stored += n;
        issues.extend(found);
    }
    (stored, issues)
}

/// One study's results SRs stored by one STOW-RS request.
fn stow_study(
    client: &Client,
    out: &Path,
    study: &str,
    srs: &[&SrWritten],
) -> (usize, Vec<QcIssue>) {
    let fail = |w: &SrWritten, why: String| {
        QcIssue::file(
            &out.join(&w.rel),
            Severity::Error,
            plumbline_ingest::qc::codes::STOW_FAILED,
            format!(
                "results SR {} (instance {}) was not stored on {}: {why}; the file is kept in the output folder: store it again with --stow",
                w.rel,
                w.sop_instance_uid,
                client.base_url()
            ),
        )
        .with_ids(&w.sop_instance_uid, "")
    };
    let mut bodies = Vec::with_capacity(srs.len());
    let mut issues = Vec::new();
    let mut sent = Vec::new();
    for w in srs {
        match std::fs::read(out.join(&w.rel)) {
            Ok(b) => {
                bodies.push(b);
                sent.push(*w);
            }
            Err(e) => issues.push(fail(w, format!("cannot read it: {e}"))),
        }
    }
    if bodies.is_empty() {
        return (0, issues);
    }
    match client.stow(study, &bodies) {
        Ok(outcome) => {
            let mut stored = 0;
            for w in &sent {
                let failure = outcome
                    .failed
                    .iter()
                    .find(|f| f.sop_instance_uid == w.sop_instance_uid);
                match failure {
                    Some(f) => issues.push(fail(
                        w,
                        format!(
                            "the server listed it as failed (HTTP {}, reason {})",
                            outcome.status,
                            f.reason
                                .map_or("not given".to_string(), |r| format!("{r:#06x}"))
                        ),
                    )),
                    None if outcome.status == 409 => {
                        issues.push(fail(w, "the server answered 409 Conflict".to_string()))
                    }
                    None => stored += 1,
                }
            }
            (stored, issues)
        }
        Err(e) => {
            for w in &sent {
                issues.push(fail(w, e.to_string()));
            }
            (0, issues)
        }
    }
}

/// What the input checks hand on.
struct Checked {
    clinical: ClinicalTable,
    clinical_issues: Vec<QcIssue>,
    scan_options: ScanOptions,
    /// The client of a DICOMweb `--input`.
    input_client: Option<Client>,
    /// The client of `--stow URL`'s server.
    stow_client: Option<Client>,
}

/// Checks everything the user gave before anything is created or scanned: the input
/// folder, that the output is not inside it, the clinical table (and the pipeline's
/// strata columns in it), the landmark map, and that the output folder can be written.
fn check_inputs(opts: &RunOptions) -> Result<Checked, RunError> {
    // A DICOMweb URL and the auth file are checked now, before anything is created (no
    // request is made here); the clients are handed on.
    let input_client = match opts.dicomweb_url() {
        None => {
            check_input_folder(opts)?;
            None
        }
        Some(url) => Some(client(opts, url)?),
    };
    let stow_client = match &opts.stow {
        Some(Some(url)) => Some(client(opts, url)?),
        Some(None) if input_client.is_none() => return Err(RunError::StowWithoutServer),
        _ => None,
    };
    let (clinical, clinical_issues) = read_clinical_for(&opts.clinical, opts.pipeline.anchored)?;
    check_strata(&opts.pipeline, &clinical)?;
    let landmark_map = match &opts.landmark_map {
        Some(path) => {
            plumbline_ingest::markups::read_landmark_map(path).map_err(RunError::LandmarkMap)?
        }
        None => Default::default(),
    };
    std::fs::create_dir_all(&opts.out).map_err(|source| RunError::Output {
        path: opts.out.clone(),
        source,
    })?;
    // Fail early, before hours of scanning, if the output folder is not writable.
    write_atomic(&opts.out, ".plumbline-write-test", b"ok").and_then(|p| {
        std::fs::remove_file(&p).map_err(|source| plumbline_export::WriteError { path: p, source })
    })?;
    Ok(Checked {
        clinical,
        clinical_issues,
        input_client,
        stow_client,
        scan_options: ScanOptions {
            landmark_map,
            shard: opts.shard.map(|s| (s.k, s.n)),
            ..opts.pipeline.scan_options()
        },
    })
}

/// The scan stage: every entry of `source` classified and read (headers and landmark
/// documents, never pixel data), through the scan cache.
fn scan(
    source: &dyn Source,
    options: &ScanOptions,
    cache: &ScanCache,
    progress: &Progress,
    tick: &(dyn Fn() + Sync),
) -> Result<ScanResult, RunError> {
    let (files, _) = source.list()?;
    let bar = progress.bar(files.len(), "files");
    let srs = AtomicUsize::new(0);
    let read = |path: &Path, so: &ScanOptions| cache.scan_file(path, so);
    let scanned = scan_with(source, options, &read, &|o| {
        if matches!(o, FileOutcome::Landmarks(_)) {
            let n = srs.fetch_add(1, Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} landmark files"));
        }
        bar.inc(1);
        tick();
    })?;
    bar.finish();
    Ok(scanned)
}

/// Whether the patient `pid` is processed by a run of `shard` (every patient without
/// one; problems of no patient, `pid` empty, belong to shard 0).
fn in_shard(shard: Option<Shard>, pid: &str) -> bool {
    match shard {
        None => true,
        Some(s) if pid.is_empty() => s.k == 0,
        Some(s) => shard_of(pid, s.n) == s.k,
    }
}

/// The grouping stage: landmarks joined to images, views and timepoints decided
/// ([`group`]); then only the run's shard of the patients is kept (readings, clinical
/// rows and QC issues; issues of no patient go to shard 0). Also returns where each
/// image's file is, which only the overlay stage reads and which never enters the cohort.
fn group_readings(
    scanned: &ScanResult,
    checked: Checked,
    p: &Pipeline,
    shard: Option<Shard>,
) -> (Cohort, ImageFiles) {
    let mut clinical = checked.clinical;
    let grouped = group(scanned, Some(&clinical), &p.windows);
    let in_shard = |pid: &str| in_shard(shard, pid);
    let mut readings = grouped.readings;
    readings.retain(|r| in_shard(&r.patient_id));
    clinical.rows.retain(|r| in_shard(&r.patient_id));
    let mut issues: Vec<QcIssue> = checked.clinical_issues;
    issues.extend(scanned.issues.iter().cloned());
    issues.extend(grouped.issues);
    issues.retain(|i| in_shard(&i.patient_id));
    let cohort = Cohort {
        readings,
        clinical,
        issues,
    };
    (cohort, grouped.image_files)
}

/// The measure stage: every reading through [`plumbline_geometry::measure`] in parallel
/// (metrics, classification, each view's plausibility checks), carried with the reading;
/// then pelvic incidence across each reader's timepoints. Returns the measured readings
/// in reading order and the plausibility warnings.
fn measure(
    readings: Vec<Reading>,
    p: &Pipeline,
    progress: &Progress,
) -> (Vec<Measured>, Vec<QcIssue>) {
    let bar = progress.bar(readings.len(), "readings");
    let mut measured: Vec<Measured> = readings
        .into_par_iter()
        .map(|r| {
            let m = plumbline_geometry::measure(
                r.lateral.as_ref().map(|v| &v.landmarks),
                r.ap.as_ref().map(|v| &v.landmarks),
                &p.metric_options,
                &p.thresholds,
            );
            bar.inc(1);
            Measured::new(r, m)
        })
        .collect();
    bar.finish();
    let issues = plumbline_export::plausibility::assess(&mut measured, p.pi_tolerance_deg);
    (measured, issues)
}

/// The cohort statistics of a run or a merge: the pipeline's timepoints and baseline,
/// metric columns and strata, and every row of `cohort_summary.csv`.
pub(crate) struct CohortStats {
    timepoints: Vec<String>,
    baseline: usize,
    metrics: Vec<Metric>,
    strata: Vec<Strata>,
    summary: Vec<SummaryRow>,
    /// Patients with at least one reading.
    patients: usize,
}

/// The statistics stage: `cohort_summary.csv`'s rows from the readings' table rows
/// (sorted by patient, timepoint, reader) and the clinical table.
pub(crate) fn cohort_statistics(
    p: &Pipeline,
    rows: &[MeasuredReading],
    clinical: &ClinicalTable,
) -> CohortStats {
    let timepoints: Vec<String> = p.windows.iter().map(|w| w.name.clone()).collect();
    let baseline = timepoints
        .iter()
        .position(|x| *x == p.baseline)
        .unwrap_or(0);
    let metrics = metric_columns(p.segments.as_deref());
    let strata: Vec<Strata> = p
        .strata
        .iter()
        .filter_map(|s| strata(s, clinical))
        .collect();
    let summary = summary_rows(rows, clinical, &timepoints, baseline, &metrics, &strata);
    let patients: BTreeSet<&str> = rows.iter().map(|r| r.patient_id.as_str()).collect();
    CohortStats {
        patients: patients.len(),
        timepoints,
        baseline,
        metrics,
        strata,
        summary,
    }
}

/// The overlay stage, when the pipeline or `--overlays` asks for it: the links of the
/// PNGs written and a QC warning per view that could not be drawn.
fn overlays(
    opts: &RunOptions,
    measured: &[Measured],
    image_files: &ImageFiles,
    source: &dyn Source,
    progress: &Progress,
) -> (Option<Vec<OverlayLink>>, Vec<QcIssue>) {
    if !(opts.pipeline.outputs.overlays || opts.overlays) {
        return (None, Vec::new());
    }
    let bar = progress.bar(overlay_count(measured), "overlays");
    let (links, issues) = write_overlays(&opts.out, measured, image_files, source, &|| bar.inc(1));
    bar.finish();
    (Some(links), issues)
}

/// The results SR stage (`--write-sr`): one SR per reading, its source headers read from
/// `image_files`; a QC warning per reading that got none.
fn results_srs(
    opts: &RunOptions,
    measured: &[Measured],
    image_files: &ImageFiles,
    progress: &Progress,
) -> (Vec<SrWritten>, Vec<QcIssue>) {
    let settings = SrSettings {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline_sha256: opts.pipeline.sha256.clone(),
    };
    let bar = progress.bar(measured.len(), "results SRs");
    let out = write_reading_srs(&opts.out, measured, image_files, &settings, &|| bar.inc(1));
    bar.finish();
    out
}

fn qc_counts(issues: &[QcIssue]) -> (usize, usize, usize) {
    let count = |s: Severity| issues.iter().filter(|i| i.severity == s).count();
    (
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
    )
}

/// What `run.json` reports besides the options and the summary.
struct RunFacts<'a> {
    dicomweb: Option<DicomWebStats>,
    clinical: &'a ClinicalTable,
    counts: &'a plumbline_ingest::scan::ScanCounts,
    cache: &'a ScanCache,
    outputs: &'a serde_json::Map<String, serde_json::Value>,
    clock: &'a Clock,
}

/// `run.json`: the tool, pipeline, input counts, outputs, QC counts and stage times.
fn write_run_json(opts: &RunOptions, f: &RunFacts, summary: &RunSummary) -> Result<(), RunError> {
    let p = &opts.pipeline;
    let (clinical, counts, cache, outputs, clock) =
        (f.clinical, f.counts, f.cache, f.outputs, f.clock);
    let (read, reused) = cache.counts();
    let run_json = json!({
        "tool": "plumbline",
        "version": env!("CARGO_PKG_VERSION"),
        "pipeline": { "name": p.name, "source": p.source, "sha256": p.sha256 },
        "input": {
            "folder": opts.input.display().to_string(),
            "clinical": opts.clinical.display().to_string(),
            "clinical_rows": clinical.rows.len(),
            "files": counts.files,
            "images": counts.images,
            "landmark_srs": counts.srs,
            "landmark_files": counts.landmark_files,
            "other_dicom": counts.other_dicom,
            "not_dicom": counts.not_dicom,
            "broken": counts.broken,
            "files_read": read,
            "files_reused": reused,
        },
        "dicomweb": f.dicomweb,
        "record_discarded": cache.discarded(),
        "shard": opts.shard.map(|s| json!({ "k": s.k, "n": s.n, "source": s.source })),
        "outputs": outputs,
        "patients": summary.patients,
        "readings": summary.rows,
        "qc": { "error": summary.qc.0, "warning": summary.qc.1, "info": summary.qc.2 },
        "threads": rayon::current_num_threads(),
        "durations_s": {
            "discover": clock.secs("discover"),
            "scan": clock.secs("scan"),
            "group": clock.secs("group"),
            "metrics": clock.secs("metrics"),
            "overlays": clock.secs("overlays"),
            "sr": clock.secs("sr"),
            "stow": clock.secs("stow"),
            "write": clock.secs("write"),
            "total": summary.wall.as_secs_f64(),
        },
    });
    let text = serde_json::to_string_pretty(&run_json).expect("json") + "\n";
    write_atomic(&opts.out, "run.json", text.as_bytes())?;
    Ok(())
}

/// A pseudonymised output folder keeps the scan cache, which holds real identifiers,
/// only while the run is unfinished (to resume after a kill): it is removed at the end.
fn forget_cache(cache: ScanCache, out: &Path) -> Result<(), RunError> {
    drop(cache);
    let dir = out.join(plumbline_ingest::cache::JOURNAL);
    let dir = dir.parent().expect("the cache lives in a folder");
    std::fs::remove_dir_all(dir).map_err(|source| RunError::Output {
        path: dir.to_path_buf(),
        source,
    })
}

/// What the tables, the report and QC are written from (a run or a merge of shards).
pub(crate) struct TableInputs<'a> {
    pub out: &'a Path,
    pub pipeline: &'a Pipeline,
    pub input: String,
    pub files: usize,
    pub images: usize,
    pub landmark_files: usize,
    /// Sorted by (patient, timepoint index, observer).
    pub measured: &'a [MeasuredReading],
    pub clinical: &'a ClinicalTable,
    /// Also write the Parquet forms of measurements.csv and patients.csv.
    pub parquet: bool,
}

/// Every `[[strata]]` column must be a column of the clinical table (checked before
/// anything is written).
fn check_strata(p: &Pipeline, clinical: &ClinicalTable) -> Result<(), RunError> {
    for (index, s) in p.strata.iter().enumerate() {
        if strata(s, clinical).is_none() {
            return Err(RunError::StrataColumn {
                index,
                column: s.column.clone(),
                path: clinical.path.clone(),
                found: clinical.headers.join(", "),
            });
        }
    }
    Ok(())
}

/// Writes `table` as CSV to `out/name`, atomically, as it is made (not held in memory).
fn write_table(out: &Path, name: &str, table: &Table) -> Result<(), RunError> {
    write_atomic_with(out, name, Durability::Flushed, |f| table.write_csv(f))?;
    Ok(())
}

/// Writes measurements.csv, patients.csv and cohort_summary.csv as the pipeline asks
/// (the first two also as Parquet with `t.parquet`), and notes their row counts in
/// `outputs`.
pub(crate) fn write_tables(
    t: &TableInputs,
    stats: &CohortStats,
    outputs: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), RunError> {
    let p = t.pipeline;
    if p.outputs.measurements {
        let table = measurements_table(t.measured, &stats.metrics);
        write_table(t.out, "measurements.csv", &table)?;
        if t.parquet {
            write_atomic(t.out, "measurements.parquet", &table_parquet(&table))?;
        }
        outputs.insert("measurements_rows".into(), json!(table.rows));
    }
    if p.outputs.patients {
        let table = patients_table(
            t.measured,
            t.clinical,
            &stats.timepoints,
            stats.baseline,
            &stats.metrics,
        );
        write_table(t.out, "patients.csv", &table)?;
        if t.parquet {
            write_atomic(t.out, "patients.parquet", &table_parquet(&table))?;
        }
        outputs.insert("patients_rows".into(), json!(table.rows));
    }
    if p.outputs.cohort_summary {
        write_atomic(t.out, "cohort_summary.csv", &summary_csv(&stats.summary))?;
        outputs.insert("cohort_summary_rows".into(), json!(stats.summary.len()));
    }
    Ok(())
}

/// Writes report.html and qc.csv (`issues` sorted and deduplicated) and notes the QC
/// row count in `outputs`.
pub(crate) fn write_report(
    t: &TableInputs,
    stats: &CohortStats,
    issues: &[QcIssue],
    overlays: &[OverlayLink],
    outputs: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), RunError> {
    let p = t.pipeline;
    let report = report_html(&ReportData {
        title: format!("Plumbline report: {}", p.name),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline_name: p.name.clone(),
        pipeline_sha256: p.sha256.clone(),
        input: t.input.clone(),
        files: t.files,
        images: t.images,
        landmark_files: t.landmark_files,
        timepoints: stats.timepoints.clone(),
        baseline: stats.baseline,
        readings: t.measured,
        summary: &stats.summary,
        qc: issues,
        overlays,
        strata: &stats.strata,
    });
    write_atomic(t.out, "report.html", report.as_bytes())?;
    write_atomic(t.out, "qc.csv", &qc_csv(issues))?;
    outputs.insert("qc_rows".into(), json!(issues.len()));
    Ok(())
}

/// Parses `K/N` (0-based K < N). Without `--shard`, Slurm array jobs give the shard:
/// K = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN (0 when unset), N =
/// SLURM_ARRAY_TASK_COUNT.
pub fn parse_shard(
    arg: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Shard>, String> {
    let parse = |what: &str, v: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{what} `{v}` is not a whole number"))
    };
    let (k, n, source) = match arg {
        Some(a) => {
            let (k, n) = a
                .split_once('/')
                .ok_or_else(|| format!("--shard `{a}`: write K/N, e.g. 0/4 (K counts from 0)"))?;
            (parse("--shard K", k)?, parse("--shard N", n)?, "--shard")
        }
        None => match (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT")) {
            (Some(id), Some(count)) => {
                let min = env("SLURM_ARRAY_TASK_MIN")
                    .map_or(Ok(0), |m| parse("SLURM_ARRAY_TASK_MIN", &m))?;
                let id = parse("SLURM_ARRAY_TASK_ID", &id)?;
                (
                    id.checked_sub(min)
                        .ok_or("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?,
                    parse("SLURM_ARRAY_TASK_COUNT", &count)?,
                    "SLURM_ARRAY_TASK_ID",
                )
            }
            _ => return Ok(None),
        },
    };
    if n == 0 || k >= n {
        return Err(format!("shard {k}/{n}: K must be 0..N-1 and N at least 1"));
    }
    Ok(Some(Shard { k, n, source }))
}

/// The shard (0-based) a patient belongs to (defined in ingest, where the scan also uses
/// it to skip other shards' files).
pub use plumbline_ingest::cohort::shard_of;

/// The files a shard adds for `plumbline merge`: its readings in full, its clinical rows,
/// its overlay list and `shard.json` (shard number, pipeline text, input counts).
fn write_shard_files(
    t: &TableInputs,
    k: usize,
    n: usize,
    input: &Path,
    counts: &plumbline_ingest::scan::ScanCounts,
    overlays: &[OverlayLink],
) -> Result<(), RunError> {
    let out = t.out;
    write_atomic(
        out,
        "shard_readings.csv",
        &plumbline_export::shard::readings_csv(t.measured),
    )?;
    let mut w = csv_writer();
    w.write_record(&t.clinical.headers).expect("memory");
    for r in &t.clinical.rows {
        w.write_record(&r.fields).expect("memory");
    }
    write_atomic(out, "shard_clinical.csv", &w.into_inner().expect("memory"))?;
    let mut w = csv_writer();
    w.write_record(["patient_id", "timepoint", "observer", "view", "href"])
        .expect("memory");
    for o in overlays {
        w.write_record([&o.patient_id, &o.timepoint, &o.observer, &o.view, &o.href])
            .expect("memory");
    }
    write_atomic(out, "shard_overlays.csv", &w.into_inner().expect("memory"))?;
    let meta = json!({
        "format": 1,
        "shard": k,
        "shards": n,
        "pipeline_source": t.pipeline.source,
        "pipeline_text": t.pipeline.text,
        "input": input.display().to_string(),
        "files": counts.files,
        "images": counts.images,
        "landmark_files": counts.srs + counts.landmark_files,
    });
    let text = serde_json::to_string_pretty(&meta).expect("json") + "\n";
    write_atomic(out, "shard.json", text.as_bytes())?;
    Ok(())
}

fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(Vec::new())
}
