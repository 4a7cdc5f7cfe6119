//! `plumbline merge SHARD_DIR... --out DIR`: combines the outputs of `plumbline run
//! --shard K/N` into exactly the tables of a single run (the readings, clinical rows and
//! QC problems of each patient live in exactly one shard; problems of no patient in
//! shard 0), and copies the shards' overlays.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plumbline_export::shard::{parse_qc_csv, parse_readings_csv};
use plumbline_export::tables::MeasuredReading;
use plumbline_ingest::QcIssue;
use plumbline_ingest::clinical::{ClinicalTable, read_clinical_for};
use plumbline_render::report::OverlayLink;
use serde_json::json;

use crate::pipeline::Pipeline;
use crate::run::{RunError, TableInputs, cohort_statistics, write_report, write_tables};

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// A shard folder lacks a file or holds a bad one.
    #[error("{}: {reason}; give plumbline merge the --out folders of `plumbline run --shard K/N`", path.display())]
    Shard {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The shards do not form one complete run.
    #[error("the shards do not form one run: {0}")]
    Set(String),
    /// Writing failed.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// One shard folder and what its `shard.json` says.
struct Shard {
    /// The folder (a `--out` of `plumbline run --shard K/N`).
    dir: PathBuf,
    /// K.
    k: usize,
    /// N.
    n: usize,
    /// The whole `shard.json`.
    meta: serde_json::Value,
}

/// A shard file's bytes; a missing or unreadable one is a [`MergeError::Shard`].
fn read(path: &Path) -> Result<Vec<u8>, MergeError> {
    std::fs::read(path).map_err(|e| MergeError::Shard {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// A [`MergeError::Shard`] for `path`.
fn bad(path: &Path, reason: impl Into<String>) -> MergeError {
    MergeError::Shard {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Merges shard folders into `out`, with `parquet` also `measurements.parquet` and
/// `patients.parquet`. Returns the number of readings.
pub fn merge(shard_dirs: &[PathBuf], out: &Path, parquet: bool) -> Result<usize, MergeError> {
    let mut shards = shard_dirs
        .iter()
        .map(|dir| read_shard(dir))
        .collect::<Result<Vec<_>, _>>()?;
    check_one_run(&shards)?;
    shards.sort_by_key(|s| s.k);
    std::fs::create_dir_all(out).map_err(|source| RunError::Output {
        path: out.to_path_buf(),
        source,
    })?;
    let first = &shards[0];
    let pipeline = shard_pipeline(first)?;
    let merged = gather(&shards, &pipeline, out)?;
    let mut outputs = serde_json::Map::new();
    let tables = TableInputs {
        out,
        pipeline: &pipeline,
        input: first.meta["input"].as_str().unwrap_or_default().to_string(),
        files: first.count("files"),
        images: first.count("images"),
        landmark_files: first.count("landmark_files"),
        measured: &merged.measured,
        clinical: &merged.clinical,
        parquet,
    };
    let stats = cohort_statistics(&pipeline, &merged.measured, &merged.clinical);
    write_tables(&tables, &stats, &mut outputs)?;
    write_report(
        &tables,
        &stats,
        &merged.issues,
        &merged.overlays,
        &mut outputs,
    )?;
    write_run_json(out, &shards, &pipeline, &merged, outputs)?;
    Ok(merged.measured.len())
}

/// Reads a shard folder's `shard.json`: which shard of how many it is, and the rest of
/// what its run noted.
fn read_shard(dir: &Path) -> Result<Shard, MergeError> {
    let path = dir.join("shard.json");
    let meta: serde_json::Value =
        serde_json::from_slice(&read(&path)?).map_err(|e| bad(&path, e.to_string()))?;
    let num = |k: &str| {
        meta[k]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| bad(&path, format!("no `{k}`")))
    };
    Ok(Shard {
        dir: dir.to_path_buf(),
        k: num("shard")?,
        n: num("shards")?,
        meta,
    })
}

impl Shard {
    /// A count its run noted in `shard.json` (0 when absent).
    fn count(&self, key: &str) -> usize {
        self.meta[key].as_u64().unwrap_or(0) as usize
    }
}

/// The shards (in the order given) are shards 0..N of one N, each once, all of the same
/// pipeline text.
fn check_one_run(shards: &[Shard]) -> Result<(), MergeError> {
    let n = shards
        .first()
        .ok_or_else(|| MergeError::Set("no shard folder given".into()))?
        .n;
    let mut seen = vec![None; n];
    for s in shards {
        if s.n != n {
            return Err(MergeError::Set(format!(
                "{} is shard {} of {}, others are of {n}",
                s.dir.display(),
                s.k,
                s.n
            )));
        }
        if s.k >= n {
            return Err(MergeError::Set(format!(
                "{} says shard {} of {n}",
                s.dir.display(),
                s.k
            )));
        }
        if let Some(prev) = seen[s.k].replace(s.dir.clone()) {
            return Err(MergeError::Set(format!(
                "shard {} given twice: {} and {}",
                s.k,
                prev.display(),
                s.dir.display()
            )));
        }
        if s.meta["pipeline_text"] != shards[0].meta["pipeline_text"] {
            return Err(MergeError::Set(format!(
                "{} ran another pipeline than {}",
                s.dir.display(),
                shards[0].dir.display()
            )));
        }
    }
    if let Some(k) = seen.iter().position(Option::is_none) {
        return Err(MergeError::Set(format!("shard {k} of {n} is missing")));
    }
    Ok(())
}

/// The pipeline the shards ran, from the text `shard.json` carries.
fn shard_pipeline(shard: &Shard) -> Result<Pipeline, MergeError> {
    let text = shard.meta["pipeline_text"].as_str().unwrap_or_default();
    let source = shard.meta["pipeline_source"].as_str().unwrap_or_default();
    Pipeline::from_toml(text, source).map_err(|e| bad(&shard.dir.join("shard.json"), e.to_string()))
}

/// Every shard's rows together, sorted as a single run sorts them.
struct Merged {
    /// By (patient, timepoint index, observer).
    measured: Vec<MeasuredReading>,
    /// Sorted and deduplicated.
    issues: Vec<QcIssue>,
    /// Rows by patient.
    clinical: ClinicalTable,
    /// In shard order.
    overlays: Vec<OverlayLink>,
}

/// Reads the tables of `shards` (in shard order) and copies their overlays into `out`.
fn gather(shards: &[Shard], pipeline: &Pipeline, out: &Path) -> Result<Merged, MergeError> {
    let mut measured: Vec<MeasuredReading> = Vec::new();
    let mut issues: Vec<QcIssue> = Vec::new();
    let mut clinical: Option<ClinicalTable> = None;
    let mut overlays: Vec<OverlayLink> = Vec::new();
    for s in shards {
        let p = s.dir.join("shard_readings.csv");
        measured
            .extend(parse_readings_csv(&read(&p)?, &pipeline.thresholds).map_err(|e| bad(&p, e))?);
        let p = s.dir.join("qc.csv");
        issues.extend(parse_qc_csv(&read(&p)?).map_err(|e| bad(&p, e))?);
        let p = s.dir.join("shard_clinical.csv");
        // Its problems were reported by the shard runs already.
        let (table, _) =
            read_clinical_for(&p, pipeline.anchored).map_err(|e| bad(&p, e.to_string()))?;
        match &mut clinical {
            None => clinical = Some(table),
            Some(c) => c.rows.extend(table.rows),
        }
        overlays.extend(copy_overlays(s, out)?);
    }
    let mut clinical = clinical.ok_or_else(|| MergeError::Set("no clinical rows".into()))?;
    clinical
        .rows
        .sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
    measured.sort_by(|a, b| {
        (&a.patient_id, a.timepoint_index, &a.observer).cmp(&(
            &b.patient_id,
            b.timepoint_index,
            &b.observer,
        ))
    });
    issues.sort();
    issues.dedup();
    Ok(Merged {
        measured,
        issues,
        clinical,
        overlays,
    })
}

/// Reads a shard's `shard_overlays.csv` and copies each overlay it lists into `out`.
fn copy_overlays(s: &Shard, out: &Path) -> Result<Vec<OverlayLink>, MergeError> {
    let p = s.dir.join("shard_overlays.csv");
    let bytes = read(&p)?;
    let mut r = csv::Reader::from_reader(bytes.as_slice());
    let mut overlays = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| bad(&p, e.to_string()))?;
        if rec.len() != 5 {
            return Err(bad(&p, "expected 5 columns"));
        }
        let link = OverlayLink {
            patient_id: rec[0].to_string(),
            timepoint: rec[1].to_string(),
            observer: rec[2].to_string(),
            view: rec[3].to_string(),
            href: rec[4].to_string(),
        };
        copy_overlay(&s.dir, out, &link.href)?;
        overlays.push(link);
    }
    Ok(overlays)
}

/// Writes the merged `run.json`: the shards merged, the pipeline, the first shard's input
/// counts, the `outputs` written and the totals.
fn write_run_json(
    out: &Path,
    shards: &[Shard],
    pipeline: &Pipeline,
    merged: &Merged,
    outputs: serde_json::Map<String, serde_json::Value>,
) -> Result<(), MergeError> {
    let first = &shards[0];
    let patients: std::collections::BTreeSet<&str> = merged
        .measured
        .iter()
        .map(|r| r.patient_id.as_str())
        .collect();
    let by_sev: BTreeMap<&str, usize> = merged.issues.iter().fold(BTreeMap::new(), |mut m, i| {
        *m.entry(i.severity.as_str()).or_insert(0) += 1;
        m
    });
    let run_json = json!({
        "tool": "plumbline",
        "version": env!("CARGO_PKG_VERSION"),
        "merged_from": shards.iter().map(|s| s.dir.display().to_string()).collect::<Vec<_>>(),
        "pipeline": { "name": pipeline.name, "source": pipeline.source, "sha256": pipeline.sha256 },
        "input": { "folder": first.meta["input"], "files": first.count("files"), "images": first.count("images"), "landmark_files": first.count("landmark_files") },
        "outputs": outputs,
        "patients": patients.len(),
        "readings": merged.measured.len(),
        "qc": by_sev,
    });
    let text = serde_json::to_string_pretty(&run_json).expect("json") + "\n";
    plumbline_export::write_atomic(out, "run.json", text.as_bytes()).map_err(RunError::from)?;
    Ok(())
}

/// Copies one overlay PNG of a shard into the merged output (same relative path).
fn copy_overlay(shard: &Path, out: &Path, href: &str) -> Result<(), MergeError> {
    if href.split('/').any(|c| c == ".." || c.is_empty()) || href.starts_with('/') {
        return Err(bad(
            &shard.join("shard_overlays.csv"),
            format!("bad overlay path `{href}`"),
        ));
    }
    let (from, to) = (shard.join(href), out.join(href));
    if let Some(d) = to.parent() {
        std::fs::create_dir_all(d).map_err(|e| bad(d, e.to_string()))?;
    }
    std::fs::copy(&from, &to).map_err(|e| bad(&from, e.to_string()))?;
    Ok(())
}
