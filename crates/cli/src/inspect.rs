//! `plumbline inspect FILE`: what one file yields, for a user debugging it.

use std::fmt::Write as _;
use std::path::Path;

use plumbline_ingest::scan::{FileOutcome, scan_file};
use plumbline_ingest::{ImageRecord, LandmarkDoc, QcIssue};

use crate::pipeline::Pipeline;

/// Describes a file: an image's geometry, an SR's landmarks, and every QC problem; and
/// whether Plumbline could read it at all (false for a missing, unreadable, broken or
/// non-DICOM file: `plumbline inspect` then exits 1).
pub fn inspect(path: &Path, pipeline: &Pipeline) -> (String, bool) {
    let opts = pipeline.scan_options();
    let (outcome, mut issues) = scan_file(path, &opts);
    let mut s = String::new();
    let _ = writeln!(s, "{}", path.display());
    match &outcome {
        FileOutcome::Image(im) => describe_image(&mut s, im),
        FileOutcome::Landmarks(doc) => {
            describe_landmarks(&mut s, doc);
            issues.extend(doc.issues.iter().cloned());
        }
        FileOutcome::OtherDicom => {
            let _ = writeln!(s, "  another DICOM object: ignored by Plumbline");
        }
        FileOutcome::NotDicom => {
            let _ = writeln!(s, "  not DICOM: ignored by Plumbline");
        }
        FileOutcome::Broken => {
            let _ = writeln!(s, "  unreadable");
        }
        // `scan_file` reads every patient's file in full; only a shard's scan skips.
        FileOutcome::Foreign(_) => {
            let _ = writeln!(s, "  a patient of another shard: not read");
        }
    }
    let readable = !matches!(outcome, FileOutcome::Broken | FileOutcome::NotDicom);
    describe_qc(&mut s, &issues);
    (s, readable)
}

/// A radiograph's identifiers, size, pixel spacing and orientation.
fn describe_image(s: &mut String, im: &ImageRecord) {
    let _ = writeln!(
        s,
        "  radiograph: SOP class {}, modality {}",
        im.sop_class_uid, im.modality
    );
    let _ = writeln!(s, "  SOP Instance UID {}", im.sop_instance_uid);
    let _ = writeln!(
        s,
        "  patient {}  study {}  date {}",
        im.patient_id,
        im.study_instance_uid,
        im.study_date
            .map_or("-".to_string(), plumbline_ingest::clinical::dicom_da)
    );
    let _ = writeln!(
        s,
        "  ClinicalTrialTimePointID {}",
        im.timepoint_id.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        s,
        "  {} rows x {} columns, {} frame(s), transfer syntax {}",
        im.rows, im.cols, im.number_of_frames, im.transfer_syntax
    );
    match im.spacing {
        Some((sp, src)) => {
            let _ = writeln!(
                s,
                "  spacing {} mm (row) x {} mm (column), from {}",
                sp.row,
                sp.col,
                src.as_str()
            );
        }
        None => {
            let _ = writeln!(s, "  spacing: none usable (no metric can use this image)");
        }
    }
    let _ = writeln!(
        s,
        "  PatientOrientation {}  ViewPosition {}",
        im.orientation
            .as_ref()
            .map_or("-".to_string(), plumbline_ingest::Orientation::text),
        im.view_position.as_deref().unwrap_or("-")
    );
}

/// A landmark document's identifiers and every point, one per line.
fn describe_landmarks(s: &mut String, doc: &LandmarkDoc) {
    let _ = writeln!(s, "  landmark document: {} point(s)", doc.points.len());
    if !doc.sop_instance_uid.is_empty() {
        let _ = writeln!(
            s,
            "  SOP Instance UID {}  patient {}",
            doc.sop_instance_uid, doc.patient_id
        );
        let _ = writeln!(s, "  evidence: {}", doc.evidence.join(", "));
    }
    for p in &doc.points {
        // Slicer markups in mm meet their image's geometry only in a run.
        let at = match (p.lps(), p.pixel()) {
            (Some([x, y, z]), _) => format!("LPS ({x:.3}, {y:.3}, {z:.3}) mm"),
            (None, Some((col, row))) => format!("col {col:>10.3} row {row:>10.3}"),
            (None, None) => String::new(),
        };
        let observer = doc.observer(p);
        let _ = writeln!(
            s,
            "    {:<14} {at}  image {}  reader {}",
            p.landmark.to_string(),
            doc.image_uid(p),
            if observer.is_empty() { "-" } else { observer }
        );
    }
}

/// The QC problems found, or that there are none.
fn describe_qc(s: &mut String, issues: &[QcIssue]) {
    if issues.is_empty() {
        let _ = writeln!(s, "  QC: no problem");
    } else {
        let _ = writeln!(s, "  QC: {} problem(s)", issues.len());
        for i in issues {
            let _ = writeln!(s, "    {} {}: {}", i.severity.as_str(), i.code, i.message);
        }
    }
}
