//! What a shard writes besides the tables, so that `plumbline merge` can rebuild exactly
//! the tables of a single run: every reading in full (including the values the tables do
//! not show: the study, |C7PL-CSVL| and the Cobb end vertebrae), and QC issues read back
//! from `qc.csv`.

use std::path::PathBuf;

use plumbline_geometry::{Check, Level, Metric, Metrics, Thresholds};
use plumbline_ingest::clinical::{date_of_days, iso, parse_iso_date};
use plumbline_ingest::qc::{QcIssue, Severity, codes};

use crate::tables::{MeasuredReading, PerView, num};

const FIXED: [&str; 12] = [
    "patient_id",
    "timepoint",
    "timepoint_index",
    "study_date",
    "observer",
    "study_uid",
    "spacing_source",
    "orientation_source",
    "c7pl_csvl_magnitude_mm",
    "cobb_upper",
    "cobb_lower",
    "plausibility",
];

/// `shard_readings.csv`: one row per reading, every field needed to rebuild it.
pub fn readings_csv(rows: &[MeasuredReading]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = FIXED.map(String::from).to_vec();
    header.extend(Metric::all().into_iter().map(Metric::name));
    w.write_record(&header).expect("memory");
    for r in rows {
        let mut v = vec![
            r.patient_id.clone(),
            r.timepoint.clone(),
            r.timepoint_index.to_string(),
            r.study_date.map(iso).unwrap_or_default(),
            r.observer.clone(),
            r.study_uid.clone(),
            r.spacing_source.cell(),
            r.orientation_source.cell(),
            r.metrics
                .c7pl_csvl_magnitude_mm
                .map(num)
                .unwrap_or_default(),
            r.metrics
                .cobb_levels
                .map(|c| c.0.to_string())
                .unwrap_or_default(),
            r.metrics
                .cobb_levels
                .map(|c| c.1.to_string())
                .unwrap_or_default(),
            r.plausibility_text(),
        ];
        v.extend(
            r.metrics
                .iter()
                .map(|(_, x)| x.map(num).unwrap_or_default()),
        );
        w.write_record(&v).expect("memory");
    }
    w.into_inner().expect("memory")
}

fn parse_f64(s: &str, what: &str, line: usize) -> Result<Option<f64>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("line {line}: {what} `{s}` is not a number"))
}

/// Reads `shard_readings.csv` back; `thresholds` re-derive the classification.
pub fn parse_readings_csv(
    bytes: &[u8],
    thresholds: &Thresholds,
) -> Result<Vec<MeasuredReading>, String> {
    let mut r = csv::Reader::from_reader(bytes);
    let header: Vec<String> = r
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(String::from)
        .collect();
    let metrics = Metric::all();
    if header.len() != FIXED.len() + metrics.len() || header[..FIXED.len()] != FIXED {
        return Err("not a shard_readings.csv of this version of Plumbline".into());
    }
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("line {line}: {e}"))?;
        let level = |s: &str| -> Result<Option<Level>, String> {
            if s.is_empty() {
                Ok(None)
            } else {
                Level::parse(s)
                    .map(Some)
                    .ok_or_else(|| format!("line {line}: `{s}` is not a level"))
            }
        };
        let cobb = match (level(&rec[9])?, level(&rec[10])?) {
            (Some(u), Some(l)) => Some((u, l)),
            _ => None,
        };
        let mut values = Vec::new();
        for (j, m) in metrics.iter().enumerate() {
            if let Some(v) = parse_f64(&rec[FIXED.len() + j], &m.name(), line)? {
                values.push((*m, v));
            }
        }
        let m = Metrics::from_parts(values, cobb, parse_f64(&rec[8], "magnitude", line)?);
        let mut reading = MeasuredReading::new(
            rec[0].to_string(),
            rec[1].to_string(),
            rec[2]
                .parse()
                .map_err(|_| format!("line {line}: bad timepoint index"))?,
            match &rec[3] {
                "" => None,
                d => Some(
                    parse_iso_date(d)
                        .and_then(date_of_days)
                        .ok_or_else(|| format!("line {line}: `{d}` is not a YYYY-MM-DD date"))?,
                ),
            },
            rec[4].to_string(),
            rec[5].to_string(),
            m,
            thresholds,
            PerView::parse(&rec[6])
                .ok_or_else(|| format!("line {line}: `{}` is not a spacing source", &rec[6]))?,
            PerView::parse(&rec[7]).ok_or_else(|| {
                format!("line {line}: `{}` is not an orientation source", &rec[7])
            })?,
        );
        reading.plausibility = parse_plausibility(&rec[11], line)?;
        out.push(reading);
    }
    Ok(out)
}

/// The `plausibility` cell back: empty (not assessed), `ok`, or check names `;`-joined.
fn parse_plausibility(s: &str, line: usize) -> Result<Option<Vec<Check>>, String> {
    match s {
        "" => Ok(None),
        "ok" => Ok(Some(Vec::new())),
        _ => s
            .split(';')
            .map(|name| {
                Check::from_name(name)
                    .ok_or_else(|| format!("line {line}: `{name}` is not a plausibility check"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
    }
}

/// The QC code constant with this name, so that merged issues sort and print exactly
/// like the originals; an unknown code (from a newer Plumbline) is kept as text.
fn code(name: &str) -> &'static str {
    codes::known(name).unwrap_or_else(|| Box::leak(name.to_string().into_boxed_str()))
}

/// Reads `qc.csv` back into issues.
pub fn parse_qc_csv(bytes: &[u8]) -> Result<Vec<QcIssue>, String> {
    let mut r = csv::Reader::from_reader(bytes);
    let mut out = Vec::new();
    for (i, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| format!("qc.csv line {}: {e}", i + 2))?;
        if rec.len() != 6 {
            return Err(format!("qc.csv line {}: expected 6 fields", i + 2));
        }
        let severity = match &rec[3] {
            "error" => Severity::Error,
            "warning" => Severity::Warning,
            "info" => Severity::Info,
            other => return Err(format!("qc.csv line {}: severity `{other}`", i + 2)),
        };
        out.push(QcIssue {
            path: PathBuf::from(&rec[0]),
            sop_instance_uid: rec[1].to_string(),
            patient_id: rec[2].to_string(),
            severity,
            code: code(&rec[4]),
            message: rec[5].to_string(),
        });
    }
    Ok(out)
}
