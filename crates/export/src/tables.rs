//! The output tables of `pipeline-io.md`: `measurements.csv`, `patients.csv`,
//! `cohort_summary.csv`, `qc.csv`, built in memory as CSV bytes (deterministic, sorted)
//! and written atomically by [`crate::write_atomic`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use plumbline_geometry::{
    Classification, HerniationSide, ImbalanceType, Metric, Metrics, OrientationSource,
    SagittalDirection, SchwabModifier, Segment, ShiftRelation, Thresholds, classify,
    sagittal_direction, shift_relation,
};
use plumbline_ingest::clinical::{ClinicalTable, iso};
use plumbline_ingest::{QcIssue, SpacingSource};

use crate::analyses::Primary;
use crate::stats;

/// One reading with its metrics: a row of `measurements.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredReading {
    /// PatientID.
    pub patient_id: String,
    /// Timepoint name.
    pub timepoint: String,
    /// Index of the timepoint in the pipeline's window order.
    pub timepoint_index: usize,
    /// Study date, when known (cell `YYYY-MM-DD`, or empty).
    pub study_date: Option<NaiveDate>,
    /// Reader (Person Observer Name as stored; empty when none).
    pub observer: String,
    /// StudyInstanceUID of the study read.
    pub study_uid: String,
    /// The metrics.
    pub metrics: Metrics,
    /// Classification by the pipeline's thresholds.
    pub class: Classification,
    /// Spacing source of each view (cell: `pixel_spacing`, or
    /// `lateral=pixel_spacing ap=imager_pixel_spacing`).
    pub spacing_source: PerView<SpacingSource>,
    /// Orientation source of each view (cell: `header`, or `lateral=inferred ap=header`).
    pub orientation_source: PerView<OrientationSource>,
    /// The plausibility checks (`landmarks.md` section 7) this reading failed, sorted;
    /// `None` until [`crate::plausibility::assess`] has looked at it.
    pub plausibility: Option<Vec<plumbline_geometry::Check>>,
}

impl MeasuredReading {
    /// Classifies `metrics` by `thresholds` and fills a row.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        patient_id: String,
        timepoint: String,
        timepoint_index: usize,
        study_date: Option<NaiveDate>,
        observer: String,
        study_uid: String,
        metrics: Metrics,
        thresholds: &Thresholds,
        spacing_source: PerView<SpacingSource>,
        orientation_source: PerView<OrientationSource>,
    ) -> MeasuredReading {
        let class = classify(&metrics, thresholds);
        MeasuredReading {
            patient_id,
            timepoint,
            timepoint_index,
            study_date,
            observer,
            study_uid,
            metrics,
            class,
            spacing_source,
            orientation_source,
            plausibility: None,
        }
    }

    /// The `plausibility` cell: `ok`, the failed checks `;`-joined, or empty when the
    /// reading was not assessed.
    pub fn plausibility_text(&self) -> String {
        match &self.plausibility {
            None => String::new(),
            Some(v) if v.is_empty() => "ok".to_string(),
            Some(v) => v.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(";"),
        }
    }
}

/// A grouped reading carried with its measurement: what the measure stage hands on to
/// the plausibility check, the tables and the overlays (no pairing by position).
#[derive(Clone, Debug)]
pub struct Measured {
    /// The reading: identity, and the views with their landmarks and files.
    pub reading: plumbline_ingest::Reading,
    /// Its row of `measurements.csv`.
    pub row: MeasuredReading,
    /// The plausibility checks its lateral view failed (`landmarks.md` section 7).
    pub lateral_implausible: Vec<plumbline_geometry::Implausible>,
    /// The same for its AP view.
    pub ap_implausible: Vec<plumbline_geometry::Implausible>,
}

impl Measured {
    /// Carries `m`, the measurement of `reading` ([`plumbline_geometry::measure`]), with
    /// the reading, and fills its table row (plausibility not yet assessed: see
    /// [`crate::plausibility::assess`]).
    pub fn new(reading: plumbline_ingest::Reading, m: plumbline_geometry::Measurement) -> Measured {
        let lat = reading.lateral.as_ref();
        let ap = reading.ap.as_ref();
        let row = MeasuredReading {
            patient_id: reading.patient_id.clone(),
            timepoint: reading.timepoint.clone(),
            timepoint_index: reading.timepoint_index,
            study_date: reading.study_date,
            observer: reading.observer.clone(),
            study_uid: reading.study_uid.clone(),
            metrics: m.metrics,
            class: m.class,
            spacing_source: PerView {
                lateral: lat.map(|v| v.spacing_source),
                ap: ap.map(|v| v.spacing_source),
            },
            orientation_source: PerView {
                lateral: lat.map(|v| v.landmarks.orientation()),
                ap: ap.map(|v| v.landmarks.orientation()),
            },
            plausibility: None,
        };
        Measured {
            reading,
            row,
            lateral_implausible: m.lateral_implausible,
            ap_implausible: m.ap_implausible,
        }
    }
}

/// A source (of spacing or orientation) with its table name: [`PerView`]'s cells.
pub trait SourceName: Copy + PartialEq + Sized {
    /// The name in the tables.
    fn name(self) -> &'static str;
    /// The value of a name (`None` for an unknown name).
    fn from_name(name: &str) -> Option<Self>;
}

impl SourceName for SpacingSource {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn from_name(name: &str) -> Option<Self> {
        SpacingSource::from_name(name)
    }
}

impl SourceName for OrientationSource {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn from_name(name: &str) -> Option<Self> {
        OrientationSource::from_name(name)
    }
}

/// A value of each view of a reading: where its spacing or its orientation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PerView<T> {
    /// The lateral view's, when the reading has one.
    pub lateral: Option<T>,
    /// The AP view's, when the reading has one.
    pub ap: Option<T>,
}

impl<T: SourceName> PerView<T> {
    /// The same value for both views.
    pub fn both(v: T) -> PerView<T> {
        PerView {
            lateral: Some(v),
            ap: Some(v),
        }
    }

    /// The table cell: one name when the views agree or only one exists, else
    /// `lateral=a ap=b`; empty without views.
    ///
    /// ```
    /// use plumbline_export::tables::PerView;
    /// use plumbline_geometry::OrientationSource::{Header, Inferred};
    /// let v = PerView { lateral: Some(Inferred), ap: Some(Header) };
    /// assert_eq!(v.cell(), "lateral=inferred ap=header");
    /// assert_eq!(PerView::parse(&v.cell()), Some(v));
    /// assert_eq!(PerView { lateral: None, ap: Some(Header) }.cell(), "header");
    /// ```
    pub fn cell(&self) -> String {
        match (self.lateral, self.ap) {
            (Some(l), Some(a)) if l == a => l.name().to_string(),
            (Some(l), Some(a)) => format!("lateral={} ap={}", l.name(), a.name()),
            (Some(v), None) | (None, Some(v)) => v.name().to_string(),
            (None, None) => String::new(),
        }
    }

    /// A cell back (`plumbline merge` reads the shards' rows): a single name is taken as
    /// both views' (it gives the same cell again). `None` for text that is not a cell.
    pub fn parse(cell: &str) -> Option<PerView<T>> {
        if cell.is_empty() {
            return Some(PerView {
                lateral: None,
                ap: None,
            });
        }
        if let Some(rest) = cell.strip_prefix("lateral=") {
            let (l, a) = rest.split_once(" ap=")?;
            return Some(PerView {
                lateral: Some(T::from_name(l)?),
                ap: Some(T::from_name(a)?),
            });
        }
        T::from_name(cell).map(PerView::both)
    }
}

/// A number as written in every table: the shortest text that reads back to the same
/// f64, with at least 4 decimals (`25` is written `25.0000`).
///
/// ```
/// use plumbline_export::tables::num;
/// assert_eq!(num(25.0), "25.0000");
/// assert_eq!(num(13.240519915187205), "13.240519915187205");
/// assert_eq!(num(-0.5), "-0.5000");
/// ```
pub fn num(v: f64) -> String {
    let mut s = String::new();
    push_num(&mut s, v);
    s
}

/// [`num`], appended to `out` (the tables write hundreds of thousands of cells: one
/// buffer for all of them, not a `String` each).
fn push_num(out: &mut String, v: f64) {
    use std::fmt::Write;
    let start = out.len();
    let _ = write!(out, "{v}");
    let short = &out[start..];
    let decimals = short.split_once('.').map_or(0, |(_, d)| d.len());
    if short.contains('e') || decimals >= 4 {
        return;
    }
    // Below 1e9 a double is within 1.2e-7 of its shortest text, which has at most three
    // decimals here: rounding it to four decimals (`{v:.4}`) gives that text padded with
    // zeros, so padding saves a second formatting (a test checks both agree). Larger
    // values, and NaN and infinities, are formatted again.
    if !v.is_finite() || v.abs() >= 1e9 {
        out.truncate(start);
        let _ = write!(out, "{v:.4}");
        return;
    }
    if decimals == 0 {
        out.push('.');
    }
    out.extend(std::iter::repeat_n('0', 4 - decimals));
}

/// 95% t interval of a mean (n >= 2 and SD > 0).
fn mean_ci(xs: &[f64]) -> Option<(f64, f64)> {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let d = stats::describe(xs)?;
    let sd = d.sd.filter(|s| *s > 0.0)?;
    let t = StudentsT::new(0.0, 1.0, (d.n - 1) as f64)
        .ok()?
        .inverse_cdf(0.975);
    let half = t * sd / (d.n as f64).sqrt();
    Some((d.mean - half, d.mean + half))
}

/// Median (sorts in place); `None` when empty.
pub(crate) fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

fn csv_bytes(header: Vec<String>, rows: Vec<Vec<String>>) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&header).expect("writing to memory");
    for r in rows {
        w.write_record(&r).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}

/// The values of one column of a table, typed: what `measurements.csv` and
/// `patients.csv` write as text and the Parquet files as typed, nullable columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Text; an empty string is a missing value.
    Text(Vec<String>),
    /// Numbers (written by [`num`]); `None` is missing.
    Number(Vec<Option<f64>>),
    /// Flags (`true` / `false`); `None` is missing.
    Flag(Vec<Option<bool>>),
}

impl Values {
    /// Number of cells.
    pub fn len(&self) -> usize {
        match self {
            Values::Text(v) => v.len(),
            Values::Number(v) => v.len(),
            Values::Flag(v) => v.len(),
        }
    }

    /// Whether the column has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cell `i` as written in the CSV (empty when missing).
    pub fn csv_cell(&self, i: usize) -> String {
        let mut s = String::new();
        self.push_csv_cell(i, &mut s);
        s
    }

    /// [`Values::csv_cell`], appended to `out`.
    fn push_csv_cell(&self, i: usize, out: &mut String) {
        match self {
            Values::Text(v) => out.push_str(&v[i]),
            Values::Number(v) => {
                if let Some(x) = v[i] {
                    push_num(out, x);
                }
            }
            Values::Flag(v) => {
                if let Some(b) = v[i] {
                    out.push_str(if b { "true" } else { "false" });
                }
            }
        }
    }
}

/// One named column of a [`Table`].
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Header.
    pub name: String,
    /// Cells, one per row.
    pub values: Values,
}

impl Column {
    fn text(name: impl Into<String>, values: impl IntoIterator<Item = String>) -> Column {
        Column {
            name: name.into(),
            values: Values::Text(values.into_iter().collect()),
        }
    }

    fn number(name: impl Into<String>, values: impl IntoIterator<Item = Option<f64>>) -> Column {
        Column {
            name: name.into(),
            values: Values::Number(values.into_iter().collect()),
        }
    }

    fn flag(name: impl Into<String>, values: impl IntoIterator<Item = Option<bool>>) -> Column {
        Column {
            name: name.into(),
            values: Values::Flag(values.into_iter().collect()),
        }
    }
}

/// A table by columns: the one source of the column lists, cells and row order of
/// `measurements.csv` and `patients.csv` (see [`Table::csv`]) and of their Parquet
/// forms ([`crate::parquet`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Columns in output order; every one has [`Table::rows`] cells.
    pub columns: Vec<Column>,
    /// Number of rows.
    pub rows: usize,
}

impl Table {
    fn new(columns: Vec<Column>, rows: usize) -> Table {
        debug_assert!(columns.iter().all(|c| c.values.len() == rows));
        Table { columns, rows }
    }

    /// The table as CSV: the header, then one record per row ([`Table::write_csv`] into
    /// memory).
    pub fn csv(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_csv(&mut out).expect("writing to memory");
        out
    }

    /// Writes the table as CSV to `w`: the header, then one record per row. The cells go
    /// to the writer one by one through one reused buffer, not a `String` each, and the
    /// CSV to `w` in 64 KiB pieces, so a table of any size is never all in memory as text.
    pub fn write_csv(&self, w: impl std::io::Write) -> std::io::Result<()> {
        let mut w = csv::WriterBuilder::new()
            .buffer_capacity(64 << 10)
            .from_writer(w);
        w.write_record(self.columns.iter().map(|c| &c.name))?;
        let mut cell = String::new();
        for i in 0..self.rows {
            for c in &self.columns {
                cell.clear();
                c.values.push_csv_cell(i, &mut cell);
                w.write_field(&cell)?;
            }
            w.write_record(None::<&[u8]>)?;
        }
        w.flush()
    }
}

/// The columns of `measurements.csv` for readings already sorted by (patient, timepoint
/// index, observer): identity, every metric, the imbalance flags and type, the sources.
///
/// `metrics` are the metric columns, in [`Metric::all`] order: all of them, or those a
/// pipeline's `[metrics] segments` keeps (see [`metric_columns`]).
pub fn measurements_table(rows: &[MeasuredReading], metrics: &[Metric]) -> Table {
    let text =
        |name: &str, f: fn(&MeasuredReading) -> String| Column::text(name, rows.iter().map(f));
    let mut columns = vec![
        text("patient_id", |r| r.patient_id.clone()),
        text("timepoint", |r| r.timepoint.clone()),
        text("study_date", |r| r.study_date.map(iso).unwrap_or_default()),
        text("observer", |r| r.observer.clone()),
    ];
    columns.extend(
        metrics
            .iter()
            .map(|&m| Column::number(m.name(), rows.iter().map(|r| r.metrics.get(m)))),
    );
    columns.push(Column::flag(
        "sagittal_imbalance",
        rows.iter().map(|r| r.class.sagittal),
    ));
    columns.push(Column::flag(
        "coronal_imbalance",
        rows.iter().map(|r| r.class.coronal),
    ));
    columns.push(text("imbalance_type", |r| {
        r.class
            .kind
            .map(|k| k.as_str().to_string())
            .unwrap_or_default()
    }));
    columns.push(text("spacing_source", |r| r.spacing_source.cell()));
    columns.push(text("orientation_source", |r| r.orientation_source.cell()));
    for k in SchwabModifier::ALL {
        columns.push(Column::text(
            k.name(),
            rows.iter().map(|r| {
                r.class
                    .schwab
                    .get(k)
                    .map(|g| g.as_str().to_string())
                    .unwrap_or_default()
            }),
        ));
    }
    for n in 1..=5 {
        columns.push(Column::flag(
            format!("l{n}_wedge_abnormal"),
            rows.iter().map(|r| r.class.wedge_abnormal[n - 1]),
        ));
    }
    columns.push(text("plausibility", MeasuredReading::plausibility_text));
    Table::new(columns, rows.len())
}

/// `measurements.csv` for readings already sorted by (patient, timepoint index, observer).
pub fn measurements_csv(rows: &[MeasuredReading], metrics: &[Metric]) -> Vec<u8> {
    measurements_table(rows, metrics).csv()
}

/// The metric columns a run writes: every metric of [`Metric::all`], in that order,
/// except the per-segment metrics of segments not in `segments` (when given).
///
/// ```
/// use plumbline_export::tables::metric_columns;
/// use plumbline_geometry::{Metric, Segment};
/// assert_eq!(metric_columns(None), Metric::all());
/// let some = metric_columns(Some(&[Segment::parse("l4_l5").unwrap()]));
/// assert_eq!(some.len(), 32 + 6);
/// assert_eq!(some[32].name(), "l4_l5_disc_angle_deg");
/// ```
pub fn metric_columns(segments: Option<&[Segment]>) -> Vec<Metric> {
    Metric::all()
        .into_iter()
        .filter(|m| match (m.segment(), segments) {
            (Some(g), Some(keep)) => keep.contains(&g),
            _ => true,
        })
        .collect()
}

/// The reading that stands for a patient at a timepoint in `patients.csv` and the cohort
/// statistics: the alphabetically first named reader's, else the unnamed one. Other
/// readers' readings appear in `measurements.csv` and the agreement statistics.
pub fn primary_readings(rows: &[MeasuredReading]) -> BTreeMap<(&str, usize), &MeasuredReading> {
    let mut out: BTreeMap<(&str, usize), &MeasuredReading> = BTreeMap::new();
    for r in rows {
        let key = (r.patient_id.as_str(), r.timepoint_index);
        let better = |old: &MeasuredReading| {
            (r.observer.is_empty(), &r.observer) < (old.observer.is_empty(), &old.observer)
        };
        match out.get(&key) {
            Some(old) if !better(old) => {}
            _ => {
                out.insert(key, r);
            }
        }
    }
    out
}

/// The columns of `patients.csv`: the clinical columns, then `{metric}_{timepoint}` for
/// each metric and timepoint, then `{metric}_change_{timepoint}` (timepoint minus
/// baseline) for each metric and non-baseline timepoint. One row per patient of the
/// clinical table, plus a row (clinical cells empty but `patient_id`) for each patient
/// with readings who is not in it, sorted by patient.
pub fn patients_table(
    rows: &[MeasuredReading],
    clinical: &ClinicalTable,
    timepoints: &[String],
    baseline: usize,
    metrics: &[Metric],
) -> Table {
    let primary = primary_readings(rows);
    let pid_col = clinical
        .headers
        .iter()
        .position(|h| h.trim().eq_ignore_ascii_case("patient_id"));
    let later: Vec<usize> = (0..timepoints.len()).filter(|&t| t != baseline).collect();
    let mut patients: BTreeMap<String, Vec<String>> = clinical
        .rows
        .iter()
        .map(|r| (r.patient_id.clone(), r.fields.clone()))
        .collect();
    for r in rows {
        patients.entry(r.patient_id.clone()).or_insert_with(|| {
            let mut f = vec![String::new(); clinical.headers.len()];
            if let Some(c) = pid_col {
                f[c] = r.patient_id.clone();
            }
            f
        });
    }
    // Each patient's primary reading per timepoint, in row order: looked up once, not
    // once per cell (a key of an owned String per cell was most of this table's time).
    let readings: Vec<Vec<Option<&MeasuredReading>>> = patients
        .keys()
        .map(|pid| {
            (0..timepoints.len())
                .map(|t| primary.get(&(pid.as_str(), t)).copied())
                .collect()
        })
        .collect();
    let value = |row: usize, m: Metric, t: usize| readings[row][t].and_then(|r| r.metrics.get(m));
    let rows_n = patients.len();
    let mut columns: Vec<Column> = clinical
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Column::text(
                h.clone(),
                patients
                    .values()
                    .map(|f| f.get(i).cloned().unwrap_or_default()),
            )
        })
        .collect();
    for &m in metrics {
        for (t, name) in timepoints.iter().enumerate() {
            columns.push(Column::number(
                format!("{}_{name}", m.name()),
                (0..rows_n).map(|row| value(row, m, t)),
            ));
        }
    }
    for &m in metrics {
        for &t in &later {
            columns.push(Column::number(
                format!("{}_change_{}", m.name(), timepoints[t]),
                (0..rows_n).map(|row| {
                    value(row, m, t)
                        .zip(value(row, m, baseline))
                        .map(|(a, b)| a - b)
                }),
            ));
        }
    }
    Table::new(columns, patients.len())
}

/// `patients.csv`: see [`patients_table`].
pub fn patients_csv(
    rows: &[MeasuredReading],
    clinical: &ClinicalTable,
    timepoints: &[String],
    baseline: usize,
    metrics: &[Metric],
) -> Vec<u8> {
    patients_table(rows, clinical, timepoints, baseline, metrics).csv()
}

/// One row of `cohort_summary.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryRow {
    /// Section: `prevalence`, `type`, `coronal_shift`, `sagittal_shift`, `recovery`,
    /// `descriptive`, `paired`, `agreement`.
    pub section: &'static str,
    /// What is measured.
    pub statistic: String,
    /// Timepoint (or `all`).
    pub timepoint: String,
    /// Number of patients (or pairs) it rests on.
    pub n: usize,
    /// For a proportion (a share of `n` with a Wilson interval): how many of the `n`;
    /// `None` for other statistics. (Not a column of `cohort_summary.csv`: the report
    /// shows it as `k/n`.)
    pub k: Option<usize>,
    /// The value.
    pub value: Option<f64>,
    /// Lower 95% bound.
    pub ci_low: Option<f64>,
    /// Upper 95% bound.
    pub ci_high: Option<f64>,
    /// p value.
    pub p_value: Option<f64>,
}

impl SummaryRow {
    pub(crate) fn new(
        section: &'static str,
        statistic: impl Into<String>,
        timepoint: &str,
        n: usize,
    ) -> Self {
        SummaryRow {
            section,
            statistic: statistic.into(),
            timepoint: timepoint.to_string(),
            n,
            k: None,
            value: None,
            ci_low: None,
            ci_high: None,
            p_value: None,
        }
    }

    pub(crate) fn proportion(
        section: &'static str,
        statistic: &str,
        timepoint: &str,
        k: usize,
        n: usize,
    ) -> Self {
        let mut r = SummaryRow::new(section, statistic, timepoint, n);
        r.k = Some(k);
        if let Some(p) = stats::wilson(k, n) {
            r.value = Some(p.p);
            r.ci_low = Some(p.lo);
            r.ci_high = Some(p.hi);
        }
        r
    }
}

/// Builds the cohort statistics (see [`SummaryRow::section`]) from the primary readings.
///
/// - prevalence: imbalanced share at baseline among patients whose type is known, with
///   a 95% Wilson interval;
/// - type: sagittal / coronal / biplanar shares among the imbalanced;
/// - coronal_shift: C7 away from (`away`) or toward the herniated side, among coronal
///   and biplanar cases with a left/right herniation and a signed C7PL-CSVL;
/// - sagittal_shift: `forward` / `backward` among sagittal and biplanar cases;
/// - recovery: balanced share at each later timepoint among the baseline-imbalanced
///   whose type is known then;
/// - descriptive: `{metric}_mean` (with the 95% t interval of the mean) and
///   `{metric}_sd` per timepoint;
/// - paired: `{metric}_change` (mean of later minus baseline, 95% CI, paired t p) and
///   `{metric}_wilcoxon` (median change, Wilcoxon signed-rank p) per later timepoint;
/// - agreement: where one study has two readers, `{metric}_icc21` (ICC(2,1)) and
///   `{metric}_bland_altman` (bias with the limits of agreement as the interval), over
///   all timepoints;
/// - after `recovery`: `recovery_by_type`, `recovery_by_plane`, `paired_imbalanced`,
///   `schwab`, `wedging`, and at the end one block of `strata` rows per stratum (see
///   [`crate::analyses`]).
///
/// `metrics` are the metrics of the descriptive, paired and agreement rows (see
/// [`metric_columns`]).
pub fn summary_rows(
    rows: &[MeasuredReading],
    clinical: &ClinicalTable,
    timepoints: &[String],
    baseline: usize,
    metrics: &[Metric],
    strata: &[crate::analyses::Strata],
) -> Vec<SummaryRow> {
    let primary = primary_readings(rows);
    let mut out = Vec::new();
    let imbalanced = baseline_rows(
        &primary,
        clinical,
        &timepoints[baseline],
        baseline,
        &mut out,
    );
    out.extend(recovery_rows(&primary, &imbalanced, timepoints, baseline));
    out.extend(crate::analyses::rows(&primary, timepoints, baseline));
    let columns = MetricColumns::new(&primary, timepoints.len(), baseline, metrics);
    for (i, &m) in metrics.iter().enumerate() {
        out.extend(metric_rows(&columns, (i, m), timepoints, baseline));
    }
    out.extend(agreement_rows(rows, metrics));
    for s in strata {
        out.extend(crate::analyses::strata_rows(
            s, &primary, timepoints, baseline,
        ));
    }
    out
}

/// Baseline classification: the `prevalence`, `type`, `coronal_shift` and
/// `sagittal_shift` rows, appended to `out`; returns the baseline-imbalanced patients.
fn baseline_rows<'a>(
    primary: &Primary<'a>,
    clinical: &ClinicalTable,
    base_name: &str,
    baseline: usize,
    out: &mut Vec<SummaryRow>,
) -> BTreeSet<&'a str> {
    let side: BTreeMap<&str, HerniationSide> = clinical
        .rows
        .iter()
        .filter_map(|r| Some((r.patient_id.as_str(), r.herniation_side?)))
        .collect();
    let known: Vec<&MeasuredReading> = primary
        .iter()
        .filter(|((_, t), r)| *t == baseline && r.class.kind.is_some())
        .map(|(_, r)| *r)
        .collect();
    let imbalanced: Vec<&MeasuredReading> = known
        .iter()
        .filter(|r| r.class.kind != Some(ImbalanceType::Balanced))
        .copied()
        .collect();
    let share = |section, name: &str, k, n| SummaryRow::proportion(section, name, base_name, k, n);
    out.push(share(
        "prevalence",
        "imbalance",
        imbalanced.len(),
        known.len(),
    ));
    for (name, kind) in [
        ("sagittal", ImbalanceType::Sagittal),
        ("coronal", ImbalanceType::Coronal),
        ("biplanar", ImbalanceType::Biplanar),
    ] {
        let k = imbalanced
            .iter()
            .filter(|r| r.class.kind == Some(kind))
            .count();
        out.push(share("type", name, k, imbalanced.len()));
    }
    let coronal: Vec<ShiftRelation> = imbalanced
        .iter()
        .filter(|r| r.class.coronal == Some(true))
        .filter_map(|r| {
            let s = *side.get(r.patient_id.as_str())?;
            shift_relation(r.metrics.get(Metric::C7plCsvlMm)?, s)
        })
        .collect();
    for (name, rel) in [
        ("away", ShiftRelation::Opposite),
        ("toward", ShiftRelation::Same),
    ] {
        let k = coronal.iter().filter(|&&x| x == rel).count();
        out.push(share("coronal_shift", name, k, coronal.len()));
    }
    let sagittal: Vec<SagittalDirection> = imbalanced
        .iter()
        .filter(|r| r.class.sagittal == Some(true))
        .filter_map(|r| sagittal_direction(r.metrics.get(Metric::SvaMm)?))
        .collect();
    for (name, dir) in [
        ("forward", SagittalDirection::Forward),
        ("backward", SagittalDirection::Backward),
    ] {
        let k = sagittal.iter().filter(|&&x| x == dir).count();
        out.push(share("sagittal_shift", name, k, sagittal.len()));
    }
    imbalanced.iter().map(|r| r.patient_id.as_str()).collect()
}

/// `recovery` rows: the balanced share at each later timepoint among the
/// baseline-imbalanced whose type is known then.
fn recovery_rows(
    primary: &Primary,
    imbalanced: &BTreeSet<&str>,
    timepoints: &[String],
    baseline: usize,
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for (t, name) in timepoints
        .iter()
        .enumerate()
        .filter(|(t, _)| *t != baseline)
    {
        let later: Vec<_> = primary
            .iter()
            .filter(|((p, tt), r)| *tt == t && imbalanced.contains(p) && r.class.kind.is_some())
            .collect();
        let k = later
            .iter()
            .filter(|(_, r)| r.class.kind == Some(ImbalanceType::Balanced))
            .count();
        out.push(SummaryRow::proportion(
            "recovery",
            "balanced",
            name,
            k,
            later.len(),
        ));
    }
    out
}

/// Each metric's values in the primary readings, by timepoint, in patient order, and
/// which patients were read at baseline and at each other timepoint: read from the
/// readings in one pass, not one pass per metric and timepoint (those passes over the
/// readings of 5000 patients ran out of cache and made the statistics grow faster than
/// the cohort).
struct MetricColumns {
    /// `values[t][i]`: the values of the `i`th metric at timepoint `t`, a patient each.
    values: Vec<Vec<Vec<Option<f64>>>>,
    /// `pairs[t]`: for each patient read at baseline and at `t`, in patient order, the
    /// positions of those readings in `values[baseline][i]` and `values[t][i]`.
    pairs: Vec<Vec<(usize, usize)>>,
}

impl MetricColumns {
    fn new(primary: &Primary, timepoints: usize, baseline: usize, metrics: &[Metric]) -> Self {
        let mut values = vec![vec![Vec::new(); metrics.len()]; timepoints];
        let mut counts = vec![0usize; timepoints];
        let mut pairs = vec![Vec::new(); timepoints];
        let entries: Vec<(&(&str, usize), &&MeasuredReading)> = primary.iter().collect();
        // A patient's readings are next to each other (`primary` is keyed by patient,
        // then timepoint).
        for run in entries.chunk_by(|a, b| a.0.0 == b.0.0) {
            let mut at_baseline = None;
            let mut later = Vec::new();
            for &(&(_, t), r) in run {
                let Some(column) = values.get_mut(t) else {
                    continue;
                };
                for (i, &m) in metrics.iter().enumerate() {
                    column[i].push(r.metrics.get(m));
                }
                if t == baseline {
                    at_baseline = Some(counts[t]);
                } else {
                    later.push((t, counts[t]));
                }
                counts[t] += 1;
            }
            if let Some(b) = at_baseline {
                for (t, at) in later {
                    pairs[t].push((b, at));
                }
            }
        }
        MetricColumns { values, pairs }
    }
}

/// The `descriptive` (mean with its 95% CI, SD) rows of metric `m` (the `i`th of
/// `columns`) at each timepoint, and its `paired` rows (change from baseline) at each
/// later timepoint.
fn metric_rows(
    columns: &MetricColumns,
    (i, m): (usize, Metric),
    timepoints: &[String],
    baseline: usize,
) -> Vec<SummaryRow> {
    let mut out = Vec::new();
    for (t, name) in timepoints.iter().enumerate() {
        let xs: Vec<f64> = columns.values[t][i].iter().flatten().copied().collect();
        let d = stats::describe(&xs);
        let mut mean = SummaryRow::new("descriptive", format!("{}_mean", m.name()), name, xs.len());
        let mut sd = SummaryRow::new("descriptive", format!("{}_sd", m.name()), name, xs.len());
        if let Some(d) = d {
            mean.value = Some(d.mean);
            if let Some((lo, hi)) = mean_ci(&xs) {
                mean.ci_low = Some(lo);
                mean.ci_high = Some(hi);
            }
            sd.value = d.sd;
        }
        out.push(mean);
        out.push(sd);
    }
    for (t, name) in timepoints
        .iter()
        .enumerate()
        .filter(|(t, _)| *t != baseline)
    {
        let (before, after): (Vec<f64>, Vec<f64>) = columns.pairs[t]
            .iter()
            .filter_map(|&(b, a)| Some((columns.values[baseline][i][b]?, columns.values[t][i][a]?)))
            .unzip();
        out.extend(crate::analyses::paired_rows(
            "paired",
            &m.name(),
            name,
            &before,
            &after,
        ));
    }
    out
}

/// Inter-observer `agreement` rows: the first two readers of a study, all timepoints;
/// none when no study has two readers.
fn agreement_rows(rows: &[MeasuredReading], metrics: &[Metric]) -> Vec<SummaryRow> {
    let mut by_study: BTreeMap<(&str, &str), Vec<&MeasuredReading>> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.observer.is_empty()) {
        by_study
            .entry((r.patient_id.as_str(), r.study_uid.as_str()))
            .or_default()
            .push(r);
    }
    let pairs: Vec<(&MeasuredReading, &MeasuredReading)> = by_study
        .values()
        .filter(|v| v.len() >= 2)
        .map(|v| {
            let mut v = v.clone();
            v.sort_by(|a, b| a.observer.cmp(&b.observer));
            (v[0], v[1])
        })
        .collect();
    let mut out = Vec::new();
    if pairs.is_empty() {
        return out;
    }
    for &m in metrics {
        let (a, b): (Vec<f64>, Vec<f64>) = pairs
            .iter()
            .filter_map(|(x, y)| Some((x.metrics.get(m)?, y.metrics.get(m)?)))
            .unzip();
        let mut icc = SummaryRow::new("agreement", format!("{}_icc21", m.name()), "all", a.len());
        let ratings: Vec<Vec<f64>> = a.iter().zip(&b).map(|(x, y)| vec![*x, *y]).collect();
        icc.value = stats::icc_2_1(&ratings);
        let mut ba = SummaryRow::new(
            "agreement",
            format!("{}_bland_altman", m.name()),
            "all",
            a.len(),
        );
        if let Some(r) = stats::bland_altman(&a, &b) {
            ba.value = Some(r.bias);
            ba.ci_low = Some(r.lo);
            ba.ci_high = Some(r.hi);
        }
        out.push(icc);
        out.push(ba);
    }
    out
}

/// `cohort_summary.csv`.
pub fn summary_csv(rows: &[SummaryRow]) -> Vec<u8> {
    let header = [
        "section",
        "statistic",
        "timepoint",
        "n",
        "value",
        "ci_low",
        "ci_high",
        "p_value",
    ]
    .map(String::from)
    .to_vec();
    let body = rows
        .iter()
        .map(|r| {
            vec![
                r.section.to_string(),
                r.statistic.clone(),
                r.timepoint.clone(),
                r.n.to_string(),
                opt(r.value),
                opt(r.ci_low),
                opt(r.ci_high),
                opt(r.p_value),
            ]
        })
        .collect();
    csv_bytes(header, body)
}

/// `qc.csv`, sorted.
pub fn qc_csv(issues: &[QcIssue]) -> Vec<u8> {
    let mut issues = issues.to_vec();
    issues.sort();
    issues.dedup();
    let header = [
        "path",
        "sop_instance_uid",
        "patient_id",
        "severity",
        "code",
        "message",
    ]
    .map(String::from)
    .to_vec();
    let body = issues
        .iter()
        .map(|i| {
            vec![
                i.path.display().to_string(),
                i.sop_instance_uid.clone(),
                i.patient_id.clone(),
                i.severity.as_str().to_string(),
                i.code.to_string(),
                i.message.clone(),
            ]
        })
        .collect();
    csv_bytes(header, body)
}

#[cfg(test)]
mod num_tests {
    use super::num;

    /// `num` as it was first written: the shortest text, else four decimals.
    fn two_formats(v: f64) -> String {
        let short = format!("{v}");
        let decimals = short.split_once('.').map_or(0, |(_, d)| d.len());
        if short.contains('e') || decimals >= 4 {
            short
        } else {
            format!("{v:.4}")
        }
    }

    #[test]
    fn padding_the_shortest_text_equals_formatting_twice() {
        let mut vals = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            0.1,
            0.125,
            1.0005,
            2.675,
            999_999_999.5,
            999_999_999.999,
            1e9,
            1e9 + 0.25,
            1e15 + 0.25,
            123_456_789_012.3,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
        ];
        // Every k / 1000 for |k| up to 2,000,000, and a pseudo-random spread of others.
        vals.extend(
            (-2_000_000..=2_000_000)
                .step_by(7)
                .map(|k| f64::from(k) / 1000.0),
        );
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let scale = 10f64.powi((x % 12) as i32 - 3);
            let v = ((x >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * scale;
            vals.push(v);
            vals.push((v * 1000.0).round() / 1000.0);
        }
        for v in vals {
            assert_eq!(num(v), two_formats(v), "{v:?}");
        }
    }
}
