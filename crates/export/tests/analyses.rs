//! The study-design rows of `cohort_summary.csv` on small cohorts computed by hand.

use plumbline_export::analyses::{StrataSpec, strata};
use plumbline_export::tables::{MeasuredReading, PerView, SummaryRow, summary_rows};
use plumbline_geometry::OrientationSource;
use plumbline_geometry::{Metric, Metrics, Thresholds};
use plumbline_ingest::SpacingSource;
use plumbline_ingest::clinical::{ClinicalRow, ClinicalTable};

const TPS: [&str; 3] = ["preop", "postop", "m6"];

/// A reading of patient `pid` at timepoint `t` with SVA, signed C7PL-CSVL and PT.
fn reading(pid: &str, t: usize, sva: f64, c7: f64, pt: f64) -> MeasuredReading {
    let m = Metrics::from_parts(
        [
            (Metric::SvaMm, sva),
            (Metric::C7plCsvlMm, c7),
            (Metric::PtDeg, pt),
            (Metric::WedgeIndexPct(4), pt / 2.0),
        ],
        None,
        Some(c7.abs()),
    );
    MeasuredReading::new(
        pid.into(),
        TPS[t].into(),
        t,
        None,
        "Reader^A".into(),
        format!("{pid}-{t}"),
        m,
        &Thresholds::default(),
        PerView::both(SpacingSource::PixelSpacing),
        PerView::both(OrientationSource::Header),
    )
}

fn clinical(rows: &[(&str, &str)]) -> ClinicalTable {
    ClinicalTable {
        path: "clinical.csv".into(),
        headers: vec!["patient_id".into(), "hip_pain".into()],
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, (id, hip))| ClinicalRow {
                line: i as u64 + 2,
                patient_id: id.to_string(),
                surgery_day: None,
                herniation_level: None,
                herniation_side: None,
                fields: vec![id.to_string(), hip.to_string()],
            })
            .collect(),
    }
}

fn find<'a>(rows: &'a [SummaryRow], section: &str, stat: &str, tp: &str) -> &'a SummaryRow {
    rows.iter()
        .find(|r| r.section == section && r.statistic == stat && r.timepoint == tp)
        .unwrap_or_else(|| panic!("no row {section} {stat} {tp}"))
}

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("value");
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

/// Five patients: A sagittal (SVA 60) -> balanced at postop; B sagittal -> still at
/// postop, balanced at m6; C coronal (C7 30 mm right) -> coronal at postop, balanced at
/// m6; D biplanar -> coronal only at postop (sagittal corrected), balanced at m6; E
/// balanced throughout.
fn cohort() -> Vec<MeasuredReading> {
    vec![
        reading("A", 0, 60.0, 5.0, 18.0),
        reading("A", 1, 10.0, 5.0, 16.0),
        reading("A", 2, 8.0, 4.0, 15.0),
        reading("B", 0, 70.0, -3.0, 26.0),
        reading("B", 1, 50.0, -3.0, 25.0),
        reading("B", 2, 20.0, -2.0, 22.0),
        reading("C", 0, 10.0, 30.0, 12.0),
        reading("C", 1, 12.0, 25.0, 12.0),
        reading("C", 2, 11.0, 10.0, 12.5),
        reading("D", 0, -55.0, -28.0, 33.0),
        reading("D", 1, -15.0, -24.0, 31.0),
        reading("D", 2, -10.0, -12.0, 29.0),
        reading("E", 0, 5.0, 2.0, 10.0),
        reading("E", 1, 6.0, 1.0, 10.0),
        reading("E", 2, 4.0, 1.0, 11.0),
    ]
}

#[test]
fn recovery_by_type_and_plane_by_hand() {
    let rows = summary_rows(
        &cohort(),
        &clinical(&[]),
        &TPS.map(String::from),
        0,
        &Metric::all(),
        &[],
    );
    let kn = |s: &str, stat: &str, tp: &str| {
        let r = find(&rows, s, stat, tp);
        (r.value.map(|v| (v * r.n as f64).round() as usize), r.n)
    };
    // Pre-op types: A, B sagittal; C coronal; D biplanar.
    assert_eq!(kn("recovery_by_type", "sagittal", "postop"), (Some(1), 2)); // A
    assert_eq!(kn("recovery_by_type", "sagittal", "m6"), (Some(2), 2));
    assert_eq!(kn("recovery_by_type", "coronal", "postop"), (Some(0), 1));
    assert_eq!(kn("recovery_by_type", "coronal", "m6"), (Some(1), 1));
    assert_eq!(kn("recovery_by_type", "biplanar", "postop"), (Some(0), 1));
    // By plane: sagittal A, B, D -> A and D corrected at postop (2 of 3).
    assert_eq!(kn("recovery_by_plane", "sagittal", "postop"), (Some(2), 3));
    // Coronal C, D: neither at postop, both at m6.
    assert_eq!(kn("recovery_by_plane", "coronal", "postop"), (Some(0), 2));
    assert_eq!(kn("recovery_by_plane", "coronal", "m6"), (Some(2), 2));
    // Wilson interval of 2/3 (z = 1.959963984540054): centre (2 + z²/2)/(3 + z²).
    let r = find(&rows, "recovery_by_plane", "sagittal", "postop");
    let z: f64 = 1.959963984540054;
    let centre = (2.0 + z * z / 2.0) / (3.0 + z * z);
    let half = z / (3.0 + z * z) * (2.0 * 1.0 / 3.0 + z * z / 4.0).sqrt();
    close(r.ci_low, centre - half);
    close(r.ci_high, centre + half);

    // |SVA| within the sagittally imbalanced (A, B, D) at postop: before 60, 70, 55;
    // after 10, 50, 15; differences -50, -20, -40: mean -36.6667, median -40.
    let c = find(&rows, "paired_imbalanced", "abs_sva_mm_change", "postop");
    assert_eq!(c.n, 3);
    close(c.value, -110.0 / 3.0);
    assert!(c.p_value.is_some());
    close(
        find(&rows, "paired_imbalanced", "abs_sva_mm_wilcoxon", "postop").value,
        -40.0,
    );
    // |C7PL-CSVL| within the coronally imbalanced (C, D) at m6: 30 -> 10, 28 -> 12.
    let c = find(&rows, "paired_imbalanced", "abs_c7pl_csvl_mm_change", "m6");
    assert_eq!(c.n, 2);
    close(c.value, -18.0);
}

#[test]
fn schwab_and_wedging_shares_by_hand() {
    let rows = summary_rows(
        &cohort(),
        &clinical(&[]),
        &TPS.map(String::from),
        0,
        &Metric::all(),
        &[],
    );
    // Pre-op PT 18, 26, 12, 33, 10: grade 0 (<20) x3, + (20-30) x1, ++ (>30) x1.
    let share = |stat: &str| {
        let r = find(&rows, "schwab", stat, "preop");
        (r.value.unwrap() * r.n as f64).round() as usize
    };
    assert_eq!(share("schwab_pt=0"), 3);
    assert_eq!(share("schwab_pt=+"), 1);
    assert_eq!(share("schwab_pt=++"), 1);
    // SVA 60, 70 are +, -55 (backward) and 10, 5 are 0.
    assert_eq!(share("schwab_sva=+"), 2);
    assert_eq!(share("schwab_sva=0"), 3);
    // No PI-LL: n = 0, no value.
    let r = find(&rows, "schwab", "schwab_pi_ll=0", "preop");
    assert_eq!((r.n, r.value), (0, None));
    // L4 wedge index = PT / 2: 9, 13, 6, 16.5, 5 at pre-op; above 8.3: 3 of 5.
    let r = find(&rows, "wedging", "l4_wedge_abnormal", "preop");
    assert_eq!(r.n, 5);
    close(r.value, 0.6);
    assert_eq!(find(&rows, "wedging", "l1_wedge_abnormal", "preop").n, 0);
}

#[test]
fn strata_by_hand() {
    let table = clinical(&[
        ("A", "yes"),
        ("B", "no"),
        ("C", "yes"),
        ("D", "no"),
        ("E", ""),
    ]);
    let spec = StrataSpec {
        column: "Hip_Pain".into(),
        edges: None,
        metrics: vec![Metric::PtDeg],
    };
    let s = strata(&spec, &table).unwrap();
    assert_eq!(s.groups, ["no", "yes"]);
    let rows = summary_rows(
        &cohort(),
        &table,
        &TPS.map(String::from),
        0,
        &[Metric::PtDeg],
        &[s],
    );
    // PT pre-op: yes = A 18, C 12 (mean 15, SD sqrt(18)); no = B 26, D 33 (mean 29.5).
    let r = find(&rows, "strata", "Hip_Pain=yes:pt_deg_mean", "preop");
    assert_eq!(r.n, 2);
    close(r.value, 15.0);
    close(
        find(&rows, "strata", "Hip_Pain=yes:pt_deg_sd", "preop").value,
        18f64.sqrt(),
    );
    // Change to m6: yes = -3, +0.5 (mean -1.25); no = -4, -4 (mean -4, SD 0).
    close(
        find(&rows, "strata", "Hip_Pain=yes:pt_deg_change_mean", "m6").value,
        -1.25,
    );
    close(
        find(&rows, "strata", "Hip_Pain=no:pt_deg_change_sd", "m6").value,
        0.0,
    );
    // Welch at pre-op, groups in order (no, yes): t = (29.5 - 15) / sqrt(24.5/2 + 18/2)
    // = 14.5 / sqrt(21.25) = 3.1454..., df = 21.25² / ((12.25² + 9²) / 1) = 1.9426...
    let w = find(&rows, "strata", "Hip_Pain:pt_deg_welch", "preop");
    assert_eq!(w.n, 4);
    close(w.value, 14.5 / 21.25f64.sqrt());
    let p = w.p_value.unwrap();
    assert!(p > 0.05 && p < 0.1, "{p}");
    // Mann-Whitney U of `no` (26, 33) against `yes` (18, 12): U = 4, exact p = 2 * 1/6.
    let u = find(&rows, "strata", "Hip_Pain:pt_deg_mann_whitney", "preop");
    close(u.value, 4.0);
    close(u.p_value, 1.0 / 3.0);
    // Two groups: no ANOVA rows.
    assert!(!rows.iter().any(|r| r.statistic.ends_with("_anova")));
}
