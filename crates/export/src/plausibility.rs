//! The plausibility stage (`landmarks.md` section 7): every view of every reading through
//! [`plumbline_geometry::check_view`], and each reader's pelvic incidence compared across
//! the patient's timepoints ([`plumbline_geometry::pi_jumps`]). Fills
//! [`MeasuredReading::plausibility`] and returns one QC warning per failed check, naming
//! the landmarks and values; the metrics are kept.

use std::collections::BTreeMap;

use plumbline_geometry::{Check, Landmark, Metric, ViewKind, check_view};
use plumbline_ingest::qc::{QcIssue, Severity, codes};
use plumbline_ingest::{Reading, View};

use crate::tables::MeasuredReading;

/// The landmarks pelvic incidence is measured from.
const PI_LANDMARKS: &str = "S1_sup_ant, S1_sup_post, FH_left, FH_right";

fn reader(observer: &str) -> String {
    if observer.is_empty() {
        "the unnamed reader".to_string()
    } else {
        format!("reader `{observer}`")
    }
}

fn issue(view: &View, patient_id: &str, message: String) -> QcIssue {
    QcIssue::file(
        &view.path,
        Severity::Warning,
        codes::IMPLAUSIBLE_LANDMARKS,
        message,
    )
    .with_ids(&view.image_uid, patient_id)
}

/// The landmarks of `view` to mark on its overlay: those of its failed checks, and on a
/// lateral view of a reading whose PI jumped, the PI landmarks. (Recomputed from the view:
/// the checks are a few comparisons, and this keeps [`MeasuredReading`] plain data.)
pub fn flagged_landmarks(view: &View, m: &MeasuredReading) -> Vec<Landmark> {
    let mut out: Vec<Landmark> = check_view(&view.landmarks)
        .into_iter()
        .flat_map(|f| f.landmarks)
        .collect();
    let pi_jump = m
        .plausibility
        .as_ref()
        .is_some_and(|p| p.contains(&Check::PiJump));
    if pi_jump && view.landmarks.kind() == ViewKind::Lateral {
        out.extend(
            PI_LANDMARKS
                .split(", ")
                .filter_map(|n| n.parse::<Landmark>().ok())
                .filter(|lm| view.landmarks.get(*lm).is_some()),
        );
    }
    out.sort();
    out.dedup();
    out
}

/// Assesses `measured[i]`, the measurement of `readings[i]`, with PI tolerance
/// `pi_tolerance_deg`; returns the QC warnings.
pub fn assess(
    readings: &[Reading],
    measured: &mut [MeasuredReading],
    pi_tolerance_deg: f64,
) -> Vec<QcIssue> {
    assert_eq!(
        readings.len(),
        measured.len(),
        "one measurement per reading"
    );
    let mut issues = Vec::new();
    for (r, m) in readings.iter().zip(measured.iter_mut()) {
        let mut failed = Vec::new();
        for (name, view) in [("lateral", &r.lateral), ("AP", &r.ap)] {
            let Some(view) = view else { continue };
            for f in check_view(&view.landmarks) {
                issues.push(issue(
                    view,
                    &r.patient_id,
                    format!(
                        "{} ({name} view, {}, {}): {}",
                        f.check,
                        r.timepoint,
                        reader(&r.observer),
                        f.message
                    ),
                ));
                failed.push(f.check);
            }
        }
        m.plausibility = Some(failed);
    }
    // PI across one reader's timepoints of one patient.
    let mut by_reader: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, r) in readings.iter().enumerate() {
        by_reader
            .entry((&r.patient_id, &r.observer))
            .or_default()
            .push(i);
    }
    for idx in by_reader.values() {
        let pis: Vec<(usize, f64)> = idx
            .iter()
            .filter_map(|&i| measured[i].metrics.get(Metric::PiDeg).map(|pi| (i, pi)))
            .collect();
        for (a, pa) in &pis {
            for (b, pb) in pis.iter().filter(|(b, _)| b > a) {
                let d = pb - pa;
                if d.abs() <= pi_tolerance_deg {
                    continue;
                }
                let (ra, rb) = (&readings[*a], &readings[*b]);
                for i in [*a, *b] {
                    let p = measured[i].plausibility.get_or_insert_with(Vec::new);
                    p.push(Check::PiJump);
                }
                if let Some(view) = rb.lateral.as_ref() {
                    issues.push(issue(
                        view,
                        &rb.patient_id,
                        format!(
                            "{} ({}): pelvic incidence is {pa:.1} deg at {} and {pb:.1} deg at {} \
                             ({d:+.1} deg, tolerance {pi_tolerance_deg} deg); PI is a fixed shape \
                             of the adult pelvis, so {PI_LANDMARKS} are misplaced in one of the two",
                            Check::PiJump,
                            reader(&rb.observer),
                            ra.timepoint,
                            rb.timepoint
                        ),
                    ));
                }
            }
        }
    }
    for m in measured.iter_mut() {
        if let Some(p) = &mut m.plausibility {
            p.sort();
            p.dedup();
        }
    }
    issues
}
