//! `plumbline run`: scan -> landmarks -> metrics -> tables.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use plumbline_export::analyses::{Strata, strata};
use plumbline_export::parquet::table_parquet;
use plumbline_export::tables::{
    MeasuredReading, measurements_table, metric_columns, patients_table, qc_csv, summary_csv,
    summary_rows,
};
use plumbline_export::write_atomic;

use plumbline_ingest::clinical::{ClinicalTable, read_clinical_for};
use plumbline_ingest::qc::codes;
use plumbline_ingest::scan::{FileOutcome, scan_file, scan_with};
use plumbline_ingest::{QcIssue, ScanOptions, Severity, group};

use crate::journal::{FileKey, Journal, JournalError};
use plumbline_render::decode::{DecodeError, load_display};
use plumbline_render::overlay::{OverlaySpec, draw_overlay, file_safe};
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
    pub pseudonymize: Option<crate::privacy::Pseudonymizer>,
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
        }
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
    Journal(#[from] JournalError),
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
            | RunError::LandmarkMap(_) => 2,
            RunError::Output { .. }
            | RunError::Scan(_)
            | RunError::Write(_)
            | RunError::Journal(_) => 1,
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
pub fn run(opts: &RunOptions) -> Result<RunSummary, RunError> {
    let start = Instant::now();
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
    // Check before creating anything: the output must not lie inside the input.
    if resolved(&opts.out).starts_with(canonical(&opts.input)) {
        return Err(RunError::OutInsideInput {
            out: opts.out.clone(),
            input: opts.input.clone(),
        });
    }
    // The clinical table and the landmark map are checked before anything is created.
    let (mut clinical, clinical_issues) =
        read_clinical_for(&opts.clinical, opts.pipeline.anchored)?;
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
    let p = &opts.pipeline;

    let mp = MultiProgress::with_draw_target(if opts.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let (files, _) = plumbline_ingest::scan::list_files(&opts.input)?;
    let scan_bar = bar(&mp, files.len() as u64, "files", opts.progress);
    let srs = AtomicUsize::new(0);
    let t_scan = Instant::now();
    // The work record: files already scanned (by a killed run, or an earlier run on a
    // tree that has grown since) are reused when their key still matches.
    let scan_options = ScanOptions {
        landmark_map,
        ..p.scan_options()
    };
    let journal = Journal::open(&opts.out, opts.fresh, &scan_options)?;
    let (reused, read) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let read_file = |path: &Path, so: &ScanOptions| {
        let key = FileKey::of(path);
        if let Some(k) = &key
            && let Some(hit) = journal.reuse(path, k)
        {
            reused.fetch_add(1, Ordering::Relaxed);
            return hit;
        }
        let r = scan_file(path, so);
        read.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = key {
            journal.record(path, &k, &r.0, &r.1);
        }
        r
    };
    let scanned = scan_with(&opts.input, &scan_options, &read_file, &|o| {
        if matches!(o, FileOutcome::Landmarks(_)) {
            let n = srs.fetch_add(1, Ordering::Relaxed) + 1;
            scan_bar.set_message(format!("{n} landmark files"));
        }
        scan_bar.inc(1);
    })?;
    scan_bar.finish();
    let d_scan = t_scan.elapsed();

    let t_group = Instant::now();
    let mut grouped = group(&scanned, Some(&clinical), &p.windows);
    let in_shard = |pid: &str| match opts.shard {
        None => true,
        Some(s) if pid.is_empty() => s.k == 0,
        Some(s) => shard_of(pid, s.n) == s.k,
    };
    grouped.readings.retain(|r| in_shard(&r.patient_id));
    let d_group = t_group.elapsed();

    // Metrics: in parallel over patients, collected in reading order.
    let t_metrics = Instant::now();
    let mut patients: Vec<(&str, Vec<&plumbline_ingest::Reading>)> = Vec::new();
    for r in &grouped.readings {
        match patients.last_mut() {
            Some((pid, v)) if *pid == r.patient_id => v.push(r),
            _ => patients.push((&r.patient_id, vec![r])),
        }
    }
    let patient_bar = bar(&mp, patients.len() as u64, "patients", opts.progress);
    let mut measured: Vec<MeasuredReading> = patients
        .par_iter()
        .flat_map_iter(|(_, readings)| {
            let out: Vec<MeasuredReading> = readings
                .iter()
                .map(|r| MeasuredReading::measure(r, &p.metric_options, &p.thresholds))
                .collect();
            patient_bar.inc(1);
            out
        })
        .collect();
    patient_bar.finish();
    // Plausibility (landmarks.md section 7): per view, and PI across timepoints.
    let plausibility_issues = plumbline_export::plausibility::assess(
        &grouped.readings,
        &mut measured,
        p.pi_tolerance_deg,
    );
    let d_metrics = t_metrics.elapsed();

    // Tables.
    let t_write = Instant::now();
    let mut issues: Vec<QcIssue> = Vec::new();
    issues.extend(clinical_issues);
    issues.extend(scanned.issues.iter().cloned());
    issues.extend(grouped.issues.iter().cloned());
    issues.extend(plausibility_issues);
    issues.retain(|i| in_shard(&i.patient_id));
    clinical.rows.retain(|r| in_shard(&r.patient_id));
    issues.sort();
    issues.dedup();
    // Pseudonyms: all real IDs are collected first; tables now, QC issues (including
    // those of the overlay stage) after the overlays.
    let id_map = opts.pseudonymize.as_ref().map(|ps| {
        let map = ps.id_map(
            clinical
                .rows
                .iter()
                .map(|r| r.patient_id.as_str())
                .chain(measured.iter().map(|r| r.patient_id.as_str()))
                .chain(issues.iter().map(|i| i.patient_id.as_str())),
        );
        (ps, map)
    });
    if let Some((ps, _)) = &id_map {
        ps.apply_tables(&mut measured, &mut clinical);
    }
    let mut outputs = serde_json::Map::new();
    // QC overlays (streamed: each worker holds one image at a time) and the report.
    let mut overlay_links = Vec::new();
    let t_overlays = Instant::now();
    if p.outputs.overlays || opts.overlays {
        let jobs: Vec<(
            &str,
            &MeasuredReading,
            &plumbline_ingest::View,
            &'static str,
        )> = grouped
            .readings
            .iter()
            .zip(&measured)
            .flat_map(|(r, m)| {
                [(r.lateral.as_ref(), "lateral"), (r.ap.as_ref(), "ap")]
                    .into_iter()
                    .filter_map(move |(v, name)| Some((r.patient_id.as_str(), m, v?, name)))
            })
            .collect();
        let overlay_bar = bar(&mp, jobs.len() as u64, "overlays", opts.progress);
        let results: Vec<Result<OverlayLink, QcIssue>> = jobs
            .par_iter()
            .map(|(real_id, m, v, name)| {
                let r = render_overlay(&opts.out, real_id, m, v, name);
                overlay_bar.inc(1);
                r
            })
            .collect();
        overlay_bar.finish();
        for r in results {
            match r {
                Ok(link) => overlay_links.push(link),
                Err(issue) => issues.push(issue),
            }
        }
        issues.sort();
        outputs.insert("overlays".into(), json!(overlay_links.len()));
    }
    let d_overlays = t_overlays.elapsed();
    // Pseudonyms change the order: tables are sorted after the overlays are paired.
    measured.sort_by(|a, b| {
        (&a.patient_id, a.timepoint_index, &a.observer).cmp(&(
            &b.patient_id,
            b.timepoint_index,
            &b.observer,
        ))
    });
    if let Some((ps, map)) = &id_map {
        ps.apply_issues(map, &mut issues);
    }
    issues.sort();
    issues.dedup();
    write_tables(
        &TableInputs {
            out: &opts.out,
            pipeline: p,
            input: opts.input.display().to_string(),
            files: scanned.counts.files,
            images: scanned.counts.images,
            landmark_files: scanned.counts.srs + scanned.counts.landmark_files,
            measured: &measured,
            clinical: &clinical,
            issues: &issues,
            overlays: &overlay_links,
            parquet: opts.parquet,
        },
        &mut outputs,
    )?;
    if let Some(Shard { k, n, .. }) = opts.shard {
        write_shard_files(
            &opts.out,
            k,
            n,
            p,
            &opts.input,
            &scanned.counts,
            &measured,
            &clinical,
            &overlay_links,
        )?;
    }
    let d_write = t_write.elapsed();

    let count = |s: Severity| issues.iter().filter(|i| i.severity == s).count();
    let n_patients = patients.len();
    let run_json = json!({
        "tool": "plumbline",
        "version": env!("CARGO_PKG_VERSION"),
        "pipeline": { "name": p.name, "source": p.source, "sha256": p.sha256 },
        "input": {
            "folder": opts.input.display().to_string(),
            "clinical": opts.clinical.display().to_string(),
            "clinical_rows": clinical.rows.len(),
            "files": scanned.counts.files,
            "images": scanned.counts.images,
            "landmark_srs": scanned.counts.srs,
            "landmark_files": scanned.counts.landmark_files,
            "other_dicom": scanned.counts.other_dicom,
            "not_dicom": scanned.counts.not_dicom,
            "broken": scanned.counts.broken,
            "files_read": read.load(Ordering::Relaxed),
            "files_reused": reused.load(Ordering::Relaxed),
        },
        "record_discarded": journal.discarded(),
        "shard": opts.shard.map(|s| json!({ "k": s.k, "n": s.n, "source": s.source })),
        "outputs": outputs,
        "patients": n_patients,
        "readings": measured.len(),
        "qc": { "error": count(Severity::Error), "warning": count(Severity::Warning), "info": count(Severity::Info) },
        "threads": rayon::current_num_threads(),
        "durations_s": {
            "scan": d_scan.as_secs_f64(),
            "group": d_group.as_secs_f64(),
            "metrics": d_metrics.as_secs_f64(),
            "overlays": d_overlays.as_secs_f64(),
            "write": (d_write - d_overlays).as_secs_f64(),
            "total": start.elapsed().as_secs_f64(),
        },
    });
    let text = serde_json::to_string_pretty(&run_json).expect("json") + "\n";
    write_atomic(&opts.out, "run.json", text.as_bytes())?;
    let record_discarded = journal.discarded().map(String::from);
    if opts.pseudonymize.is_some() {
        // The work record holds real identifiers: a pseudonymised output folder keeps it
        // only while the run is unfinished (to resume after a kill).
        drop(journal);
        let dir = opts.out.join(crate::journal::JOURNAL);
        let dir = dir.parent().expect("journal in a folder");
        std::fs::remove_dir_all(dir).map_err(|source| RunError::Output {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(RunSummary {
        files: scanned.counts.files,
        patients: n_patients,
        rows: measured.len(),
        qc: (
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info),
        ),
        wall: start.elapsed(),
        record_discarded,
        shard: opts.shard,
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
    /// Sorted and deduplicated.
    pub issues: &'a [QcIssue],
    pub overlays: &'a [OverlayLink],
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

/// Writes measurements.csv, patients.csv, cohort_summary.csv (as the pipeline asks; the
/// first two also as Parquet with `t.parquet`), report.html and qc.csv, and notes their
/// row counts in `outputs`.
pub(crate) fn write_tables(
    t: &TableInputs,
    outputs: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), RunError> {
    let p = t.pipeline;
    let timepoints: Vec<String> = p.windows.iter().map(|w| w.name.clone()).collect();
    let baseline = timepoints
        .iter()
        .position(|x| *x == p.baseline)
        .unwrap_or(0);
    let metrics = metric_columns(p.segments.as_deref());
    let strata: Vec<Strata> = p
        .strata
        .iter()
        .filter_map(|s| strata(s, t.clinical))
        .collect();
    let summary = summary_rows(
        t.measured,
        t.clinical,
        &timepoints,
        baseline,
        &metrics,
        &strata,
    );
    if p.outputs.measurements {
        let table = measurements_table(t.measured, &metrics);
        write_atomic(t.out, "measurements.csv", &table.csv())?;
        if t.parquet {
            write_atomic(t.out, "measurements.parquet", &table_parquet(&table))?;
        }
        outputs.insert("measurements_rows".into(), json!(table.rows));
    }
    if p.outputs.patients {
        let table = patients_table(t.measured, t.clinical, &timepoints, baseline, &metrics);
        write_atomic(t.out, "patients.csv", &table.csv())?;
        if t.parquet {
            write_atomic(t.out, "patients.parquet", &table_parquet(&table))?;
        }
        outputs.insert("patients_rows".into(), json!(table.rows));
    }
    if p.outputs.cohort_summary {
        write_atomic(t.out, "cohort_summary.csv", &summary_csv(&summary))?;
        outputs.insert("cohort_summary_rows".into(), json!(summary.len()));
    }
    let report = report_html(&ReportData {
        title: format!("Plumbline report: {}", p.name),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        pipeline_name: p.name.clone(),
        pipeline_sha256: p.sha256.clone(),
        input: t.input.clone(),
        files: t.files,
        images: t.images,
        landmark_files: t.landmark_files,
        timepoints: timepoints.clone(),
        baseline,
        readings: t.measured,
        summary: &summary,
        qc: t.issues,
        overlays: t.overlays,
        strata: &strata,
    });
    write_atomic(t.out, "report.html", report.as_bytes())?;
    write_atomic(t.out, "qc.csv", &qc_csv(t.issues))?;
    outputs.insert("qc_rows".into(), json!(t.issues.len()));
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

/// The shard (0-based) a patient belongs to: the first 8 bytes of SHA-256(PatientID),
/// little-endian, modulo the shard count. Stable across machines and versions.
pub fn shard_of(patient_id: &str, n: usize) -> usize {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(patient_id.as_bytes());
    (u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) % n as u64) as usize
}

/// The files a shard adds for `plumbline merge`: its readings in full, its clinical rows,
/// its overlay list and `shard.json` (shard number, pipeline text, input counts).
#[allow(clippy::too_many_arguments)]
fn write_shard_files(
    out: &Path,
    k: usize,
    n: usize,
    p: &Pipeline,
    input: &Path,
    counts: &plumbline_ingest::scan::ScanCounts,
    measured: &[MeasuredReading],
    clinical: &ClinicalTable,
    overlays: &[OverlayLink],
) -> Result<(), RunError> {
    write_atomic(
        out,
        "shard_readings.csv",
        &plumbline_export::shard::readings_csv(measured),
    )?;
    let mut w = csv_writer();
    w.write_record(&clinical.headers).expect("memory");
    for r in &clinical.rows {
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
        "pipeline_source": p.source,
        "pipeline_text": p.text,
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

/// Height limit of overlay images.
pub const OVERLAY_MAX_ROWS: u32 = 1600;

/// Renders one view's overlay to `out/overlays/{patient}/{timepoint}_{reader}_{view}.png`.
fn render_overlay(
    out: &Path,
    real_patient_id: &str,
    m: &MeasuredReading,
    v: &plumbline_ingest::View,
    view: &str,
) -> Result<OverlayLink, QcIssue> {
    let fail_as = |code: &'static str, msg: String| {
        QcIssue::file(&v.path, Severity::Warning, code, msg).with_ids(&v.image_uid, real_patient_id)
    };
    let fail = |msg: String| fail_as(codes::OVERLAY_FAILED, msg);
    let display = load_display(&v.path, OVERLAY_MAX_ROWS).map_err(|e| {
        let code = match e {
            DecodeError::CodecUnavailable { .. } => codes::CODEC_UNAVAILABLE,
            _ => codes::OVERLAY_FAILED,
        };
        fail_as(code, format!("no overlay: {e}"))
    })?;
    let class = m.class.kind.map_or("unclassified", |k| k.as_str());
    let flagged = plumbline_export::plausibility::flagged_landmarks(v, m);
    let mut legend = vec![
        format!(
            "{}  {}  {}",
            m.patient_id,
            m.timepoint,
            if m.observer.is_empty() {
                "-"
            } else {
                &m.observer
            }
        ),
        format!("{view} view, {class}"),
    ];
    if !flagged.is_empty() {
        legend.push(format!(
            "implausible (red rings): {}",
            m.plausibility_text()
        ));
    }
    let spec = OverlaySpec {
        kind: v.landmarks.kind(),
        pixels: &v.pixels,
        metrics: &m.metrics,
        legend,
        flagged: &flagged,
    };
    let img = draw_overlay(&display, &spec);
    let rel = format!(
        "overlays/{}/{}_{}_{}.png",
        file_safe(&m.patient_id),
        file_safe(&m.timepoint),
        file_safe(&m.observer),
        view
    );
    let path = out.join(&rel);
    let dir = path.parent().expect("has a parent");
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = path.with_extension("png.tmp");
    img.save_with_format(&tmp, image::ImageFormat::Png)
        .and_then(|_| std::fs::rename(&tmp, &path).map_err(image::ImageError::IoError))
        .map_err(|e| fail(format!("cannot write {}: {e}", path.display())))?;
    Ok(OverlayLink {
        patient_id: m.patient_id.clone(),
        timepoint: m.timepoint.clone(),
        observer: m.observer.clone(),
        view: view.to_string(),
        href: rel,
    })
}
