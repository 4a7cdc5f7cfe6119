//! The work record of a run: an append-only journal of scanned files in the output folder
//! (`.plumbline/scan-journal.jsonl`), one JSON line per file with its key (path, size,
//! modification time, SHA-256 of its first 4 KiB) and everything the scan learnt from it.
//!
//! A run killed at any moment and started again with the same command reuses every file
//! already in the journal and reads only the rest; a later run on a grown or changed tree
//! reads only new or changed files. `--fresh` ignores and restarts the journal.
//!
//! Why a JSON-lines journal rather than SQLite or redb: the only operations are "append
//! one finished file" and "load all at start", which an append-only file does with no
//! dependency and no compile cost; a line is written with one `write` call, so a kill
//! leaves at worst a torn last line, which the loader skips (that file is read again).
//! Lines reach the operating system at once, so a killed process loses nothing; a power
//! cut may lose the last lines, which are then simply read again.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use plumbline_geometry::Spacing;
use plumbline_ingest::qc::{QcIssue, Severity, codes};
use plumbline_ingest::scan::FileOutcome;
use plumbline_ingest::{ImageRecord, LandmarkDoc, RawPoint, SpacingSource};
use serde_json::{Value, json};

/// Journal file name inside the output folder.
pub const JOURNAL: &str = ".plumbline/scan-journal.jsonl";

/// A file's identity for reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileKey {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i128,
    /// SHA-256 (hex) of the first 4 KiB.
    pub head: String,
}

impl FileKey {
    /// Reads a file's key; `None` when it cannot be stat'ed or read.
    pub fn of(path: &Path) -> Option<FileKey> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let mut head = Vec::with_capacity(4096);
        File::open(path)
            .ok()?
            .take(4096)
            .read_to_end(&mut head)
            .ok()?;
        Some(FileKey {
            size: meta.len(),
            mtime_ns,
            head: crate::pipeline::sha256_hex(&head),
        })
    }
}

/// The journal: entries loaded at start, and the open file new entries are appended to.
pub struct Journal {
    entries: HashMap<PathBuf, (FileKey, FileOutcome, Vec<QcIssue>)>,
    file: Mutex<File>,
}

/// The journal cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the work record {}: {source}; check that the output folder is writable", path.display())]
pub struct JournalError {
    /// The journal path.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

impl Journal {
    /// Opens (creating) the journal in `out`; with `fresh`, starts it empty.
    pub fn open(out: &Path, fresh: bool) -> Result<Journal, JournalError> {
        let path = out.join(JOURNAL);
        let err = |source| JournalError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(err)?;
        let mut entries = HashMap::new();
        if fresh {
            File::create(&path).map_err(err)?;
        } else if let Ok(f) = File::open(&path) {
            for line in BufReader::new(f).split(b'\n').map_while(Result::ok) {
                if let Some((p, k, o, i)) = serde_json::from_slice::<Value>(&line)
                    .ok()
                    .as_ref()
                    .and_then(decode_entry)
                {
                    entries.insert(p, (k, o, i));
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(err)?;
        Ok(Journal {
            entries,
            file: Mutex::new(file),
        })
    }

    /// The recorded outcome of `path` if its key still matches.
    pub fn reuse(&self, path: &Path, key: &FileKey) -> Option<(FileOutcome, Vec<QcIssue>)> {
        let (k, o, i) = self.entries.get(path)?;
        (k == key).then(|| (o.clone(), i.clone()))
    }

    /// Appends one scanned file (one `write` of one line).
    pub fn record(&self, path: &Path, key: &FileKey, outcome: &FileOutcome, issues: &[QcIssue]) {
        let mut line = serde_json::to_vec(&encode_entry(path, key, outcome, issues)).expect("json");
        line.push(b'\n');
        if let Ok(mut f) = self.file.lock() {
            // A failed append only costs a re-read next time.
            let _ = f.write_all(&line);
        }
    }
}

fn p(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn issue_json(i: &QcIssue) -> Value {
    json!([
        p(&i.path),
        i.sop_instance_uid,
        i.patient_id,
        i.severity.as_str(),
        i.code,
        i.message
    ])
}

fn issue_from(v: &Value) -> Option<QcIssue> {
    let a = v.as_array()?;
    let s = |k: usize| a.get(k)?.as_str().map(String::from);
    let code = s(4)?;
    Some(QcIssue {
        path: PathBuf::from(s(0)?),
        sop_instance_uid: s(1)?,
        patient_id: s(2)?,
        severity: match s(3)?.as_str() {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            _ => return None,
        },
        code: codes::ALL.iter().find(|c| **c == code).copied()?,
        message: s(5)?,
    })
}

fn source_str(s: SpacingSource) -> &'static str {
    s.as_str()
}

fn source_from(s: &str) -> Option<SpacingSource> {
    [
        SpacingSource::PixelSpacing,
        SpacingSource::ImagerMagnified,
        SpacingSource::Imager,
    ]
    .into_iter()
    .find(|x| x.as_str() == s)
}

fn image_json(r: &ImageRecord) -> Value {
    json!({
        "path": p(&r.path), "class": r.sop_class_uid, "uid": r.sop_instance_uid, "ts": r.transfer_syntax,
        "patient": r.patient_id, "study": r.study_instance_uid, "date": r.study_date, "tp": r.timepoint_id,
        "modality": r.modality, "view": r.view_position, "rows": r.rows, "cols": r.cols,
        "spacing": r.spacing.map(|(s, src)| json!([s.row, s.col, source_str(src)])),
        "orientation": r.orientation.as_ref().map(|(a, b)| json!([a, b])),
        "frames": r.number_of_frames,
    })
}

fn image_from(v: &Value) -> Option<ImageRecord> {
    let s = |k: &str| v.get(k)?.as_str().map(String::from);
    let opt = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let spacing = match v.get("spacing")? {
        Value::Null => None,
        x => {
            let a = x.as_array()?;
            Some((
                Spacing {
                    row: a.first()?.as_f64()?,
                    col: a.get(1)?.as_f64()?,
                },
                source_from(a.get(2)?.as_str()?)?,
            ))
        }
    };
    let orientation = match v.get("orientation")? {
        Value::Null => None,
        x => {
            let a = x.as_array()?;
            Some((
                a.first()?.as_str()?.to_string(),
                a.get(1)?.as_str()?.to_string(),
            ))
        }
    };
    Some(ImageRecord {
        path: PathBuf::from(s("path")?),
        sop_class_uid: s("class")?,
        sop_instance_uid: s("uid")?,
        transfer_syntax: s("ts")?,
        patient_id: s("patient")?,
        study_instance_uid: s("study")?,
        study_date: opt("date"),
        timepoint_id: opt("tp"),
        modality: s("modality")?,
        view_position: opt("view"),
        rows: v.get("rows")?.as_u64()? as u32,
        cols: v.get("cols")?.as_u64()? as u32,
        spacing,
        orientation,
        number_of_frames: v.get("frames")?.as_u64()? as u32,
    })
}

fn doc_json(d: &LandmarkDoc) -> Value {
    json!({
        "path": p(&d.path), "uid": d.sop_instance_uid, "patient": d.patient_id, "study": d.study_instance_uid,
        "evidence": d.evidence,
        "points": d.points.iter().map(|x| json!([p(&x.source), x.source_uid, x.landmark.to_string(), x.image_uid, x.frame, x.col, x.row, x.observer])).collect::<Vec<_>>(),
        "issues": d.issues.iter().map(issue_json).collect::<Vec<_>>(),
    })
}

fn doc_from(v: &Value) -> Option<LandmarkDoc> {
    let s = |k: &str| v.get(k)?.as_str().map(String::from);
    let mut points = Vec::new();
    for x in v.get("points")?.as_array()? {
        let a = x.as_array()?;
        let t = |k: usize| a.get(k)?.as_str().map(String::from);
        points.push(RawPoint {
            source: PathBuf::from(t(0)?),
            source_uid: t(1)?,
            landmark: t(2)?.parse().ok()?,
            image_uid: t(3)?,
            frame: a.get(4)?.as_u64().map(|f| f as u32),
            col: a.get(5)?.as_f64()?,
            row: a.get(6)?.as_f64()?,
            observer: t(7)?,
        });
    }
    Some(LandmarkDoc {
        path: PathBuf::from(s("path")?),
        sop_instance_uid: s("uid")?,
        patient_id: s("patient")?,
        study_instance_uid: s("study")?,
        evidence: v
            .get("evidence")?
            .as_array()?
            .iter()
            .map(|e| e.as_str().map(String::from))
            .collect::<Option<_>>()?,
        points,
        issues: v
            .get("issues")?
            .as_array()?
            .iter()
            .map(issue_from)
            .collect::<Option<_>>()?,
    })
}

fn encode_entry(path: &Path, key: &FileKey, outcome: &FileOutcome, issues: &[QcIssue]) -> Value {
    let (kind, body) = match outcome {
        FileOutcome::Image(r) => ("image", image_json(r)),
        FileOutcome::Landmarks(d) => ("landmarks", doc_json(d)),
        FileOutcome::OtherDicom => ("other", Value::Null),
        FileOutcome::NotDicom => ("not_dicom", Value::Null),
        FileOutcome::Broken => ("broken", Value::Null),
    };
    json!({
        "path": p(path), "size": key.size, "mtime_ns": key.mtime_ns.to_string(), "head": key.head,
        "kind": kind, "body": body, "issues": issues.iter().map(issue_json).collect::<Vec<_>>(),
    })
}

type Entry = (PathBuf, FileKey, FileOutcome, Vec<QcIssue>);

fn decode_entry(v: &Value) -> Option<Entry> {
    let key = FileKey {
        size: v.get("size")?.as_u64()?,
        mtime_ns: v.get("mtime_ns")?.as_str()?.parse().ok()?,
        head: v.get("head")?.as_str()?.to_string(),
    };
    let body = v.get("body")?;
    let outcome = match v.get("kind")?.as_str()? {
        "image" => FileOutcome::Image(image_from(body)?),
        "landmarks" => FileOutcome::Landmarks(doc_from(body)?),
        "other" => FileOutcome::OtherDicom,
        "not_dicom" => FileOutcome::NotDicom,
        "broken" => FileOutcome::Broken,
        _ => return None,
    };
    let issues = v
        .get("issues")?
        .as_array()?
        .iter()
        .map(issue_from)
        .collect::<Option<_>>()?;
    Some((
        PathBuf::from(v.get("path")?.as_str()?),
        key,
        outcome,
        issues,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_ingest::ScanOptions;
    use plumbline_ingest::scan::{list_files, scan_file};

    #[test]
    fn every_outcome_of_the_fixtures_round_trips_exactly() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let (files, _) = list_files(&root).unwrap();
        let mut n = 0;
        for f in files
            .iter()
            .filter(|f| !f.to_string_lossy().contains("/codecs/"))
            .take(400)
        {
            let (o, i) = scan_file(f, &ScanOptions::default());
            let key = FileKey::of(f).unwrap();
            let line = serde_json::to_vec(&encode_entry(f, &key, &o, &i)).unwrap();
            let back = decode_entry(&serde_json::from_slice(&line).unwrap()).unwrap();
            assert_eq!(back, (f.clone(), key, o, i), "{}", f.display());
            n += 1;
        }
        assert!(n > 150);
    }
}
