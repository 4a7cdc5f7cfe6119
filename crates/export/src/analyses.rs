//! The study-design analyses of `cohort_summary.csv` beyond prevalence and the paired
//! tests (`pipeline-io.md`): recovery by pre-op imbalance type and by plane, the paired
//! tests of |SVA| and |C7PL-CSVL| within the patients imbalanced in that plane, the
//! SRS-Schwab grade shares, abnormal wedging, and strata of the clinical table compared
//! with between-group tests.
//!
//! Every analysis reads the primary reading of each patient and timepoint
//! ([`crate::tables::primary_readings`]).

use std::collections::BTreeMap;

use plumbline_geometry::{ImbalanceType, Metric, SchwabGrade, SchwabModifier};
use plumbline_ingest::clinical::ClinicalTable;

use crate::stats;
use crate::tables::{MeasuredReading, SummaryRow, median};

/// One `[[strata]]` of a pipeline: compare the patients grouped by a clinical column.
#[derive(Clone, Debug, PartialEq)]
pub struct StrataSpec {
    /// The clinical table's column (matched ignoring case).
    pub column: String,
    /// Bin edges for a numeric column, ascending: groups `<e1`, `[e1, e2)`, ..., `>=ek`.
    /// `None`: every distinct value is a group.
    pub edges: Option<Vec<f64>>,
    /// The metrics compared.
    pub metrics: Vec<Metric>,
}

/// The patients' group labels of one stratum, and the group order.
#[derive(Clone, Debug, PartialEq)]
pub struct Strata {
    /// The column as the pipeline names it.
    pub column: String,
    /// Group labels in order (bins in edge order, values sorted).
    pub groups: Vec<String>,
    /// Each patient's group; patients with an empty or unreadable cell are in none.
    pub of_patient: BTreeMap<String, String>,
    /// The metrics compared.
    pub metrics: Vec<Metric>,
}

fn bin_label(edges: &[f64], i: usize) -> String {
    let f = |v: f64| format!("{v}");
    match i {
        0 => format!("<{}", f(edges[0])),
        i if i == edges.len() => format!(">={}", f(edges[i - 1])),
        i => format!("[{}, {})", f(edges[i - 1]), f(edges[i])),
    }
}

/// Groups the clinical table's patients by `spec`. Cells are trimmed; an empty cell, or
/// a cell that is not a number when the spec has edges, puts the patient in no group.
///
/// ```
/// use plumbline_export::analyses::{StrataSpec, strata};
/// use plumbline_ingest::clinical::{ClinicalRow, ClinicalTable};
/// let row = |id: &str, levels: &str| ClinicalRow {
///     line: 2, patient_id: id.into(), surgery_day: None, herniation_level: None,
///     herniation_side: None, fields: vec![id.into(), levels.into()],
/// };
/// let table = ClinicalTable {
///     path: "clinical.csv".into(),
///     headers: vec!["patient_id".into(), "fused_levels".into()],
///     rows: vec![row("A", "1"), row("B", "3"), row("C", "2"), row("D", "")],
/// };
/// let spec = StrataSpec { column: "fused_levels".into(), edges: Some(vec![2.0, 3.0]), metrics: vec![] };
/// let s = strata(&spec, &table).unwrap();
/// assert_eq!(s.groups, ["<2", "[2, 3)", ">=3"]);
/// assert_eq!(s.of_patient["B"], ">=3");
/// assert!(!s.of_patient.contains_key("D"));
/// ```
pub fn strata(spec: &StrataSpec, clinical: &ClinicalTable) -> Option<Strata> {
    let col = clinical
        .headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case(spec.column.trim()))?;
    let mut of_patient = BTreeMap::new();
    for r in &clinical.rows {
        let cell = r.fields.get(col).map(|c| c.trim()).unwrap_or("");
        if cell.is_empty() {
            continue;
        }
        let label = match &spec.edges {
            None => cell.to_string(),
            Some(edges) => {
                let Ok(v) = cell.parse::<f64>() else { continue };
                if !v.is_finite() {
                    continue;
                }
                bin_label(edges, edges.iter().take_while(|e| v >= **e).count())
            }
        };
        of_patient.insert(r.patient_id.clone(), label);
    }
    let groups = match &spec.edges {
        Some(edges) => (0..=edges.len()).map(|i| bin_label(edges, i)).collect(),
        None => {
            let mut g: Vec<String> = of_patient.values().cloned().collect();
            g.sort();
            g.dedup();
            g
        }
    };
    Some(Strata {
        column: spec.column.clone(),
        groups,
        of_patient,
        metrics: spec.metrics.clone(),
    })
}

pub(crate) type Primary<'a> = BTreeMap<(&'a str, usize), &'a MeasuredReading>;

/// One series a stratum compares: its name (`pt_deg` or `pt_deg_change`), timepoint,
/// and a patient's value.
type Series<'a> = (String, String, Box<dyn Fn(&str) -> Option<f64> + 'a>);

/// `recovery_by_type` and `recovery_by_plane` rows.
///
/// - `recovery_by_type`, statistic `sagittal` | `coronal` | `biplanar` (the pre-op type):
///   balanced share at each later timepoint among the patients of that pre-op type whose
///   type is known then;
/// - `recovery_by_plane`, statistic `sagittal` | `coronal`: balanced-in-that-plane share
///   at each later timepoint among the patients imbalanced in that plane at baseline
///   (biplanar cases count in both planes) whose plane is known then.
pub fn recovery(primary: &Primary, timepoints: &[String], baseline: usize) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    let base: BTreeMap<&str, &MeasuredReading> = primary
        .iter()
        .filter(|((_, t), _)| *t == baseline)
        .map(|(&(p, _), r)| (p, *r))
        .collect();
    let later = || {
        timepoints
            .iter()
            .enumerate()
            .filter(move |(t, _)| *t != baseline)
    };
    for (name, kind) in [
        ("sagittal", ImbalanceType::Sagittal),
        ("coronal", ImbalanceType::Coronal),
        ("biplanar", ImbalanceType::Biplanar),
    ] {
        for (t, tp) in later() {
            let (mut k, mut n) = (0, 0);
            for (pid, b) in &base {
                if b.class.kind != Some(kind) {
                    continue;
                }
                if let Some(now) = primary.get(&(pid, t)).and_then(|r| r.class.kind) {
                    n += 1;
                    k += usize::from(now == ImbalanceType::Balanced);
                }
            }
            out.push(SummaryRow::proportion("recovery_by_type", name, tp, k, n));
        }
    }
    type Plane = fn(&MeasuredReading) -> Option<bool>;
    let planes: [(&str, Plane); 2] = [
        ("sagittal", |r| r.class.sagittal),
        ("coronal", |r| r.class.coronal),
    ];
    for (name, plane) in planes {
        for (t, tp) in later() {
            let (mut k, mut n) = (0, 0);
            for (pid, b) in &base {
                if plane(b) != Some(true) {
                    continue;
                }
                if let Some(now) = primary.get(&(pid, t)).and_then(|r| plane(r)) {
                    n += 1;
                    k += usize::from(!now);
                }
            }
            out.push(SummaryRow::proportion("recovery_by_plane", name, tp, k, n));
        }
    }
    out
}

/// The values at `baseline` and at `t`, in patient order, of the patients whose baseline
/// reading passes `keep` and whose `value` is known at both timepoints.
pub(crate) fn baseline_pairs(
    primary: &Primary,
    baseline: usize,
    t: usize,
    keep: impl Fn(&MeasuredReading) -> bool,
    value: impl Fn(&MeasuredReading) -> Option<f64>,
) -> (Vec<f64>, Vec<f64>) {
    // A patient's readings are next to each other in `primary` (keyed by patient, then
    // timepoint): each patient's pair is found in its run, without a look-up by an owned
    // key per patient (which made this grow faster than the cohort).
    let entries: Vec<(&(&str, usize), &&MeasuredReading)> = primary.iter().collect();
    entries
        .chunk_by(|a, b| a.0.0 == b.0.0)
        .filter_map(|run| {
            let at = |tp: usize| run.iter().find(|e| e.0.1 == tp).map(|e| *e.1);
            let b = at(baseline).filter(|b| keep(b))?;
            Some((value(b)?, value(at(t)?)?))
        })
        .unzip()
}

/// Paired rows (`{name}_change`: mean change with its 95% CI and the paired t p;
/// `{name}_wilcoxon`: median change and the Wilcoxon signed-rank p) of `before`/`after`.
pub(crate) fn paired_rows(
    section: &'static str,
    name: &str,
    timepoint: &str,
    before: &[f64],
    after: &[f64],
) -> [SummaryRow; 2] {
    let mut change = SummaryRow::new(section, format!("{name}_change"), timepoint, before.len());
    let mut wil = SummaryRow::new(section, format!("{name}_wilcoxon"), timepoint, before.len());
    if let Some(p) = stats::paired(before, after) {
        change.value = Some(p.mean_diff);
        change.ci_low = p.ci_lo;
        change.ci_high = p.ci_hi;
        change.p_value = p.t_p;
        let mut diffs: Vec<f64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
        wil.value = median(&mut diffs);
        wil.p_value = p.wilcoxon_p;
    }
    [change, wil]
}

/// `paired_imbalanced` rows: `abs_sva_mm_{change,wilcoxon}` over the patients
/// sagittally imbalanced at baseline, `abs_c7pl_csvl_mm_{change,wilcoxon}` over those
/// coronally imbalanced (|C7PL-CSVL| is known even where its sign is not), at each later
/// timepoint, later minus baseline.
pub fn paired_imbalanced(
    primary: &Primary,
    timepoints: &[String],
    baseline: usize,
) -> Vec<SummaryRow> {
    type Abs = fn(&MeasuredReading) -> Option<f64>;
    type Plane = fn(&MeasuredReading) -> Option<bool>;
    let measures: [(&str, Plane, Abs); 2] = [
        (
            "abs_sva_mm",
            |r| r.class.sagittal,
            |r| r.metrics.get(Metric::SvaMm).map(f64::abs),
        ),
        (
            "abs_c7pl_csvl_mm",
            |r| r.class.coronal,
            |r| r.metrics.c7pl_csvl_magnitude_mm,
        ),
    ];
    let mut out = Vec::new();
    for (name, plane, abs) in measures {
        for (t, tp) in timepoints
            .iter()
            .enumerate()
            .filter(|(t, _)| *t != baseline)
        {
            let (before, after) =
                baseline_pairs(primary, baseline, t, |b| plane(b) == Some(true), abs);
            out.extend(paired_rows("paired_imbalanced", name, tp, &before, &after));
        }
    }
    out
}

/// `schwab` rows (`schwab_pi_ll=0`, `=+`, `=++`, the same for `schwab_pt` and
/// `schwab_sva`) and `wedging` rows (`l{n}_wedge_abnormal`): shares with Wilson
/// intervals at every timepoint, among the primary readings where that grade or index
/// is known.
pub fn grades(primary: &Primary, timepoints: &[String]) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    let at = |t: usize| {
        primary
            .iter()
            .filter(move |((_, tt), _)| *tt == t)
            .map(|(_, r)| *r)
    };
    for m in SchwabModifier::ALL {
        for g in SchwabGrade::ALL {
            for (t, tp) in timepoints.iter().enumerate() {
                let known: Vec<SchwabGrade> = at(t).filter_map(|r| r.class.schwab.get(m)).collect();
                let k = known.iter().filter(|x| **x == g).count();
                let stat = format!("{}={}", m.name(), g.as_str());
                out.push(SummaryRow::proportion("schwab", &stat, tp, k, known.len()));
            }
        }
    }
    for n in 1..=5usize {
        for (t, tp) in timepoints.iter().enumerate() {
            let known: Vec<bool> = at(t)
                .filter_map(|r| r.class.wedge_abnormal[n - 1])
                .collect();
            let k = known.iter().filter(|x| **x).count();
            let stat = format!("l{n}_wedge_abnormal");
            out.push(SummaryRow::proportion("wedging", &stat, tp, k, known.len()));
        }
    }
    out
}

/// `strata` rows of one stratum, for each metric: per group and timepoint
/// `{column}={group}:{metric}_mean` and `_sd` (n = patients with a value), per group and
/// later timepoint the same of `{metric}_change` (later minus baseline); and between the
/// groups that have values, at each timepoint and for each change, the tests:
/// `{column}:{metric}_welch` and `_mann_whitney` for two groups, `_anova` and `_kruskal`
/// for more (value = the test statistic, `p_value` = its p, n = patients in the test).
pub fn strata_rows(
    s: &Strata,
    primary: &Primary,
    timepoints: &[String],
    baseline: usize,
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    let value =
        |pid: &str, m: Metric, t: usize| primary.get(&(pid, t)).and_then(|r| r.metrics.get(m));
    for &m in &s.metrics {
        let mut series: Vec<Series> = Vec::new();
        for (t, tp) in timepoints.iter().enumerate() {
            series.push((
                m.name(),
                tp.clone(),
                Box::new(move |p: &str| value(p, m, t)),
            ));
        }
        for (t, tp) in timepoints
            .iter()
            .enumerate()
            .filter(|(t, _)| *t != baseline)
        {
            series.push((
                format!("{}_change", m.name()),
                tp.clone(),
                Box::new(move |p: &str| Some(value(p, m, t)? - value(p, m, baseline)?)),
            ));
        }
        for (name, tp, get) in &series {
            out.extend(series_rows(s, name, tp, get));
        }
    }
    out
}

/// The rows of one series (a metric, or its change from baseline, at one timepoint) of
/// stratum `s`: each group's mean and SD, then the test between the groups (Welch and
/// Mann-Whitney for two groups, ANOVA and Kruskal-Wallis for more).
fn series_rows(
    s: &Strata,
    name: &str,
    tp: &str,
    get: &dyn Fn(&str) -> Option<f64>,
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    let groups: Vec<Vec<f64>> = s
        .groups
        .iter()
        .map(|g| {
            s.of_patient
                .iter()
                .filter(|(_, pg)| *pg == g)
                .filter_map(|(p, _)| get(p))
                .collect()
        })
        .collect();
    for (g, xs) in s.groups.iter().zip(&groups) {
        let stat = |what: &str| format!("{}={g}:{name}_{what}", s.column);
        let mut mean = SummaryRow::new("strata", stat("mean"), tp, xs.len());
        let mut sd = SummaryRow::new("strata", stat("sd"), tp, xs.len());
        if let Some(d) = stats::describe(xs) {
            mean.value = Some(d.mean);
            sd.value = d.sd;
        }
        out.push(mean);
        out.push(sd);
    }
    let present: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let n: usize = present.iter().map(|g| g.len()).sum();
    let test = |what: &str, r: Option<(f64, f64)>| {
        let mut row = SummaryRow::new("strata", format!("{}:{name}_{what}", s.column), tp, n);
        if let Some((stat, p)) = r {
            row.value = Some(stat);
            row.p_value = Some(p);
        }
        row
    };
    if s.groups.len() == 2 {
        let (a, b) = (&groups[0], &groups[1]);
        out.push(test(
            "welch",
            stats::welch_t(a, b).map(|r| (r.statistic, r.p)),
        ));
        out.push(test(
            "mann_whitney",
            stats::mann_whitney_u(a, b).map(|r| (r.statistic, r.p)),
        ));
    } else if s.groups.len() > 2 {
        let gs: Vec<Vec<f64>> = present.iter().map(|g| (*g).clone()).collect();
        out.push(test(
            "anova",
            stats::anova_oneway(&gs).map(|r| (r.statistic, r.p)),
        ));
        out.push(test(
            "kruskal",
            stats::kruskal_wallis(&gs).map(|r| (r.statistic, r.p)),
        ));
    }
    out
}

/// The rows that follow `recovery` in `cohort_summary.csv`: [`recovery`],
/// [`paired_imbalanced`], [`grades`].
pub fn rows(primary: &Primary, timepoints: &[String], baseline: usize) -> Vec<SummaryRow> {
    let mut out = recovery(primary, timepoints, baseline);
    out.extend(paired_imbalanced(primary, timepoints, baseline));
    out.extend(grades(primary, timepoints));
    out
}
