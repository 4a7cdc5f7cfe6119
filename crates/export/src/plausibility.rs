//! The plausibility stage (`landmarks.md` section 7): the checks every view failed
//! ([`plumbline_geometry::measure`] made them), and each reader's pelvic incidence
//! compared across the patient's timepoints. Fills
//! [`MeasuredReading::plausibility`](crate::tables::MeasuredReading::plausibility) and
//! returns one QC warning per failed check, naming the landmarks and values; the metrics
//! are kept.

use std::collections::BTreeMap;

use plumbline_geometry::{Check, Landmark, Metric, ViewKind};
use plumbline_ingest::View;
use plumbline_ingest::qc::{QcIssue, Severity, codes};

use crate::tables::Measured;

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

/// The landmarks of one view of `m` (`lateral` true: its lateral view) to mark on its
/// overlay: those of the view's failed checks, and on a lateral view of a reading whose PI
/// jumped, the PI landmarks.
pub fn flagged_landmarks(m: &Measured, lateral: bool) -> Vec<Landmark> {
    let (view, failed) = if lateral {
        (m.reading.lateral.as_ref(), &m.lateral_implausible)
    } else {
        (m.reading.ap.as_ref(), &m.ap_implausible)
    };
    let mut out: Vec<Landmark> = failed.iter().flat_map(|f| f.landmarks.clone()).collect();
    let pi_jump = m
        .row
        .plausibility
        .as_ref()
        .is_some_and(|p| p.contains(&Check::PiJump));
    if let Some(view) = view
        && pi_jump
        && view.landmarks.kind() == ViewKind::Lateral
    {
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

/// Fills each reading's plausibility from the checks its views failed and from its
/// reader's pelvic incidence across the patient's timepoints (tolerance
/// `pi_tolerance_deg`); returns the QC warnings.
pub fn assess(measured: &mut [Measured], pi_tolerance_deg: f64) -> Vec<QcIssue> {
    let mut issues = Vec::new();
    for m in measured.iter_mut() {
        let r = &m.reading;
        let mut failed = Vec::new();
        for (name, view, found) in [
            ("lateral", &r.lateral, &m.lateral_implausible),
            ("AP", &r.ap, &m.ap_implausible),
        ] {
            let Some(view) = view else { continue };
            for f in found {
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
        m.row.plausibility = Some(failed);
    }
    issues.extend(pi_jumps(measured, pi_tolerance_deg));
    for m in measured.iter_mut() {
        if let Some(p) = &mut m.row.plausibility {
            p.sort();
            p.dedup();
        }
    }
    issues
}

/// PI across one reader's timepoints of one patient: marks both readings of a jump and
/// returns one warning per jump, on the later reading's lateral view.
fn pi_jumps(measured: &mut [Measured], pi_tolerance_deg: f64) -> Vec<QcIssue> {
    let mut issues = Vec::new();
    let mut by_reader: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, m) in measured.iter().enumerate() {
        let key = (m.reading.patient_id.clone(), m.reading.observer.clone());
        by_reader.entry(key).or_default().push(i);
    }
    for idx in by_reader.values() {
        let pis: Vec<(usize, f64)> = idx
            .iter()
            .filter_map(|&i| measured[i].row.metrics.get(Metric::PiDeg).map(|pi| (i, pi)))
            .collect();
        for (a, pa) in &pis {
            for (b, pb) in pis.iter().filter(|(b, _)| b > a) {
                let d = pb - pa;
                if d.abs() <= pi_tolerance_deg {
                    continue;
                }
                for i in [*a, *b] {
                    let p = measured[i].row.plausibility.get_or_insert_with(Vec::new);
                    p.push(Check::PiJump);
                }
                let (ra, rb) = (&measured[*a].reading, &measured[*b].reading);
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
    issues
}
