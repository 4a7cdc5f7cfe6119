//! Pipeline files (`pipelines/*.toml`, `pipeline-io.md` input 3): timepoint windows,
//! classification thresholds, metric options, vocabulary synonyms, SR reader limits and
//! which outputs to write.
//!
//! Every section is optional and takes the defaults of `pipeline-io.md` and
//! `landmarks.md` section 6 when absent; only `name` is required. Unknown keys are
//! errors (a misspelt key must never silently fall back to a default), and every bad
//! value is reported with the pipeline file and the key path, such as
//! `timepoints[2].to_day`. `pipelines/default.toml` documents every key.
//!
//! ```
//! use plumbline::pipeline::Pipeline;
//! let p = Pipeline::from_toml("name = \"minimal\"\n", "inline").unwrap();
//! assert_eq!(p.windows, plumbline_ingest::default_windows());
//! assert_eq!(p.baseline, "preop");
//! let err = Pipeline::from_toml("name = \"x\"\n[classification]\nsagittal_sva_mm = -1\n", "bad.toml")
//!     .unwrap_err()
//!     .to_string();
//! assert!(err.contains("bad.toml") && err.contains("classification.sagittal_sva_mm"));
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use plumbline_export::analyses::StrataSpec;
use plumbline_geometry::{
    Landmark, Level, Metric, MetricOptions, SchwabLimits, SchwabThresholds, Segment, Thresholds,
};
use plumbline_ingest::Vocabulary;
use plumbline_ingest::group::{Pick, Window};
use plumbline_ingest::sr::DEFAULT_DEPTH_CAP;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The pipeline file embedded in the binary and used when no --pipeline is given.
pub const DEFAULT_TOML: &str = include_str!("../../../pipelines/default.toml");

/// The source name of [`DEFAULT_TOML`] in messages and `run.json`.
pub const EMBEDDED_SOURCE: &str = "embedded default";

/// Largest accepted `sr.depth_cap`.
pub const MAX_DEPTH_CAP: usize = 10_000;

/// Longest accepted timepoint name (a DICOM LO value, as ClinicalTrialTimePointID is).
pub const MAX_TIMEPOINT_NAME: usize = 64;

/// A validated pipeline file.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    /// Short name of the pipeline (for `run.json` and logs).
    pub name: String,
    /// Free-text description (may be empty).
    pub description: String,
    /// Timepoints in window order, which is chronological (ascending `from`) and never
    /// overlapping; output rows and columns follow this order.
    pub windows: Vec<Window>,
    /// Name of the baseline timepoint for `{metric}_change_{timepoint}` and paired tests
    /// (default "preop"); always one of `windows`.
    pub baseline: String,
    /// Whether the timepoints count days from surgery (`anchor = "surgery"`, the
    /// default) or the design has no surgery (`anchor = "none"`): then the clinical table
    /// needs only `patient_id`.
    pub anchored: bool,
    /// Classification thresholds (imbalance, SRS-Schwab, abnormal wedging).
    pub thresholds: Thresholds,
    /// The per-segment metrics written (`[metrics] segments`); `None`: all six segments.
    pub segments: Option<Vec<Segment>>,
    /// `[[strata]]`: clinical columns whose groups are compared.
    pub strata: Vec<StrataSpec>,
    /// Metric options (TK levels).
    pub metric_options: MetricOptions,
    /// The landmark vocabulary: the `99SPINE` codes plus the file's synonyms.
    pub vocab: Vocabulary,
    /// Cap on SR content-tree depth.
    pub depth_cap: usize,
    /// Largest change of one reader's pelvic incidence between two timepoints of a
    /// patient that is still plausible (`[plausibility] pi_tolerance_deg`, default 6).
    pub pi_tolerance_deg: f64,
    /// Which optional outputs to write (`qc.csv` and `run.json` are always written).
    pub outputs: Outputs,
    /// SHA-256 of the file's bytes (hex), for run.json.
    pub sha256: String,
    /// The file's text as read (shard outputs carry it so that `plumbline merge` uses the
    /// very same pipeline).
    pub text: String,
    /// Where it came from: a path, or "embedded default".
    pub source: String,
}

/// Which optional output files a run writes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outputs {
    /// `measurements.csv`.
    pub measurements: bool,
    /// `patients.csv`.
    pub patients: bool,
    /// `cohort_summary.csv`.
    pub cohort_summary: bool,
    /// Overlay images of the landmarks and lines.
    pub overlays: bool,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            measurements: true,
            patients: true,
            cohort_summary: true,
            overlays: false,
        }
    }
}

/// Why a pipeline file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read.
    #[error("cannot read pipeline file {}: {source}", path.display())]
    Read {
        /// The path given.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key, a missing key or a value of the
    /// wrong type.
    #[error("pipeline file `{source_name}`: {message}")]
    Parse {
        /// The path, or "embedded default".
        source_name: String,
        /// What went wrong: the key path when known, then toml's message with line,
        /// column and the offending line.
        message: String,
    },
    /// A value is well-typed but not acceptable.
    #[error("pipeline file `{source_name}`: `{key}`: {message}")]
    Invalid {
        /// The path, or "embedded default".
        source_name: String,
        /// The key path, such as `timepoints[2].to_day`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
}

// ---------------------------------------------------------------------------------------
// The file as written (serde), before validation.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: String,
    #[serde(default)]
    description: String,
    baseline: Option<String>,
    #[serde(default)]
    anchor: RawAnchor,
    timepoints: Option<Vec<RawTimepoint>>,
    #[serde(default)]
    classification: RawClassification,
    #[serde(default)]
    strata: Vec<RawStrata>,
    #[serde(default)]
    metrics: RawMetrics,
    #[serde(default)]
    sr: RawSr,
    #[serde(default)]
    plausibility: RawPlausibility,
    #[serde(default)]
    synonyms: Vec<RawSynonym>,
    #[serde(default)]
    outputs: RawOutputs,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimepoint {
    name: String,
    from_day: Option<i64>,
    to_day: Option<i64>,
    to_inclusive: Option<bool>,
    pick: Option<RawPick>,
}

#[derive(Deserialize, Clone, Copy, Default, PartialEq)]
#[serde(rename_all = "lowercase")]
enum RawAnchor {
    #[default]
    Surgery,
    None,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrata {
    column: String,
    edges: Option<Vec<f64>>,
    metrics: Option<Vec<String>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawPick {
    Latest,
    Earliest,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawClassification {
    sagittal_sva_mm: f64,
    coronal_c7pl_csvl_mm: f64,
    wedge_abnormal_pct: f64,
    schwab: RawSchwab,
}

impl Default for RawClassification {
    fn default() -> Self {
        let t = Thresholds::default();
        RawClassification {
            sagittal_sva_mm: t.sagittal_sva_mm,
            coronal_c7pl_csvl_mm: t.coronal_c7pl_csvl_mm,
            wedge_abnormal_pct: t.wedge_abnormal_pct,
            schwab: RawSchwab::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSchwab {
    pi_ll_deg: [f64; 2],
    pt_deg: [f64; 2],
    sva_mm: [f64; 2],
}

impl Default for RawSchwab {
    fn default() -> Self {
        let t = SchwabThresholds::default();
        let pair = |l: SchwabLimits| [l.plus, l.plus_plus];
        RawSchwab {
            pi_ll_deg: pair(t.pi_ll_deg),
            pt_deg: pair(t.pt_deg),
            sva_mm: pair(t.sva_mm),
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawMetrics {
    tk_upper: String,
    tk_lower: String,
    segments: Option<Vec<String>>,
}

impl Default for RawMetrics {
    fn default() -> Self {
        let m = MetricOptions::default();
        RawMetrics {
            tk_upper: m.tk_upper.to_string(),
            tk_lower: m.tk_lower.to_string(),
            segments: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawSr {
    depth_cap: i64,
}

impl Default for RawSr {
    fn default() -> Self {
        RawSr {
            depth_cap: DEFAULT_DEPTH_CAP as i64,
        }
    }
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawPlausibility {
    pi_tolerance_deg: f64,
}

/// Default of `[plausibility] pi_tolerance_deg` (landmarks.md section 7).
pub const DEFAULT_PI_TOLERANCE_DEG: f64 = 6.0;

impl Default for RawPlausibility {
    fn default() -> Self {
        RawPlausibility {
            pi_tolerance_deg: DEFAULT_PI_TOLERANCE_DEG,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSynonym {
    landmark: String,
    text: Option<String>,
    scheme: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawOutputs {
    measurements: bool,
    patients: bool,
    cohort_summary: bool,
    overlays: bool,
}

impl Default for RawOutputs {
    fn default() -> Self {
        let o = Outputs::default();
        RawOutputs {
            measurements: o.measurements,
            patients: o.patients,
            cohort_summary: o.cohort_summary,
            overlays: o.overlays,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Validation: from the file as written to a [`Pipeline`], or the first bad key.

impl RawPipeline {
    /// The pipeline of this file, whose text is `text` and whose name in messages is
    /// `source`; or the first bad value, checked in the order of the fields of
    /// [`Pipeline`].
    fn validate(self, text: &str, source: &str) -> Result<Pipeline, KeyError> {
        if self.name.trim().is_empty() {
            return Err(("name".into(), "must not be empty".into()));
        }
        let anchored = self.anchor == RawAnchor::Surgery;
        let windows = timepoints_from(self.timepoints.as_deref(), anchored)?;
        let baseline = baseline_from(self.baseline, anchored, &windows)?;
        let thresholds = thresholds_from(&self.classification)?;
        let segments = match &self.metrics.segments {
            None => None,
            Some(names) => Some(segments_from(names)?),
        };
        let strata = strata_from(&self.strata)?;
        let metric_options = metric_options_from(&self.metrics)?;
        let depth_cap = depth_cap_from(self.sr.depth_cap)?;
        let vocab = vocabulary_from(&self.synonyms)?;
        let pi_tolerance_deg = positive(
            "plausibility.pi_tolerance_deg",
            self.plausibility.pi_tolerance_deg,
            "degrees",
        )?;
        let o = &self.outputs;
        Ok(Pipeline {
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            windows,
            baseline,
            anchored,
            thresholds,
            segments,
            strata,
            metric_options,
            vocab,
            depth_cap,
            pi_tolerance_deg,
            outputs: Outputs {
                measurements: o.measurements,
                patients: o.patients,
                cohort_summary: o.cohort_summary,
                overlays: o.overlays,
            },
            sha256: sha256_hex(text.as_bytes()),
            text: text.to_string(),
            source: source.to_string(),
        })
    }
}

/// The timepoint windows: those of `[[timepoints]]`, else the defaults of the design
/// (`anchored`: days from surgery; else one `baseline`).
fn timepoints_from(tps: Option<&[RawTimepoint]>, anchored: bool) -> Result<Vec<Window>, KeyError> {
    match (tps, anchored) {
        (None, true) => Ok(plumbline_ingest::default_windows()),
        (None, false) => Ok(vec![Window::unanchored("baseline", Pick::Latest)]),
        (Some(tps), true) => windows_from(tps),
        (Some(tps), false) => unanchored_windows(tps),
    }
}

/// `baseline`, by default "preop" (anchored) or the first timepoint; it must name one of
/// `windows`.
fn baseline_from(
    baseline: Option<String>,
    anchored: bool,
    windows: &[Window],
) -> Result<String, KeyError> {
    let baseline = baseline.unwrap_or_else(|| {
        if anchored {
            "preop".to_string()
        } else {
            windows[0].name.clone()
        }
    });
    if !windows.iter().any(|w| w.name == baseline) {
        return Err((
            "baseline".into(),
            format!(
                "`{baseline}` is not a timepoint of this pipeline; expected one of {}",
                list(windows.iter().map(|w| w.name.as_str()))
            ),
        ));
    }
    Ok(baseline)
}

/// `[classification]`: every threshold positive, the SRS-Schwab limits ordered.
fn thresholds_from(c: &RawClassification) -> Result<Thresholds, KeyError> {
    Ok(Thresholds {
        sagittal_sva_mm: positive("classification.sagittal_sva_mm", c.sagittal_sva_mm, "mm")?,
        coronal_c7pl_csvl_mm: positive(
            "classification.coronal_c7pl_csvl_mm",
            c.coronal_c7pl_csvl_mm,
            "mm",
        )?,
        wedge_abnormal_pct: positive(
            "classification.wedge_abnormal_pct",
            c.wedge_abnormal_pct,
            "%",
        )?,
        schwab: schwab_from(&c.schwab)?,
    })
}

/// `[metrics] tk_upper` and `tk_lower`: two levels, the upper above the lower.
fn metric_options_from(m: &RawMetrics) -> Result<MetricOptions, KeyError> {
    let tk_upper = parse_tk_level("metrics.tk_upper", &m.tk_upper)?;
    let tk_lower = parse_tk_level("metrics.tk_lower", &m.tk_lower)?;
    if tk_upper >= tk_lower {
        return Err((
            "metrics.tk_lower".into(),
            format!(
                "`{tk_lower}` must lie below `metrics.tk_upper` (`{tk_upper}`), e.g. tk_upper = \"T4\", tk_lower = \"T12\""
            ),
        ));
    }
    Ok(MetricOptions { tk_upper, tk_lower })
}

/// `[sr] depth_cap`: 1 to [`MAX_DEPTH_CAP`].
fn depth_cap_from(depth_cap: i64) -> Result<usize, KeyError> {
    match usize::try_from(depth_cap) {
        Ok(d) if (1..=MAX_DEPTH_CAP).contains(&d) => Ok(d),
        _ => Err((
            "sr.depth_cap".into(),
            format!(
                "{depth_cap} is out of range; expected 1 to {MAX_DEPTH_CAP} (default {DEFAULT_DEPTH_CAP})"
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------

impl Pipeline {
    /// How this pipeline reads files: its vocabulary and SR depth cap (what the work
    /// record's header fingerprints).
    pub fn scan_options(&self) -> plumbline_ingest::ScanOptions {
        plumbline_ingest::ScanOptions {
            vocab: self.vocab.clone(),
            depth_cap: self.depth_cap,
            landmark_map: Default::default(),
            shard: None,
        }
    }

    /// Parses and validates a pipeline from its text; `source` names it in errors and
    /// in [`Pipeline::source`]. The hash is of `text`'s bytes.
    pub fn from_toml(text: &str, source: &str) -> Result<Pipeline, PipelineError> {
        // A UTF-8 byte-order mark (some Windows editors write one) is not TOML; skip it.
        let body = text.strip_prefix('\u{feff}').unwrap_or(text);
        let raw: RawPipeline = toml::from_str(body).map_err(|e| parse_error(body, source, &e))?;
        raw.validate(text, source)
            .map_err(|(key, message)| PipelineError::Invalid {
                source_name: source.to_string(),
                key,
                message,
            })
    }

    /// Reads, parses and validates a pipeline file; [`Pipeline::source`] is the path.
    pub fn load(path: &Path) -> Result<Pipeline, PipelineError> {
        let bytes = std::fs::read(path).map_err(|source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let source = path.display().to_string();
        let text = String::from_utf8(bytes).map_err(|e| PipelineError::Parse {
            source_name: source.clone(),
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Pipeline::from_toml(&text, &source)
    }

    /// The pipeline of [`DEFAULT_TOML`], with source "embedded default".
    pub fn embedded_default() -> Pipeline {
        Pipeline::from_toml(DEFAULT_TOML, EMBEDDED_SOURCE)
            .expect("the embedded pipelines/default.toml is valid (checked by a unit test)")
    }

    /// The baseline's index in [`Pipeline::windows`].
    pub fn baseline_index(&self) -> usize {
        self.windows
            .iter()
            .position(|w| w.name == self.baseline)
            .expect("validated: the baseline is a timepoint")
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        write!(s, "{b:02x}").expect("writing to a String");
    }
    s
}

type KeyError = (String, String);

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn positive(key: &str, v: f64, unit: &str) -> Result<f64, KeyError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err((
            key.to_string(),
            format!("{v} is not a threshold; expected a finite number of {unit} greater than 0"),
        ))
    }
}

/// T1..T12 or L1..L5, exactly as written in landmark names.
fn parse_tk_level(key: &str, v: &str) -> Result<Level, KeyError> {
    let level = match format!("{}_centroid", v.trim()).parse::<Landmark>() {
        Ok(Landmark::Centroid(l)) if Level::thoracolumbar().any(|x| x == l) => Some(l),
        _ => None,
    };
    level.ok_or_else(|| {
        (
            key.to_string(),
            format!("`{v}` is not a level; expected one of T1..T12, L1..L5 (case-sensitive)"),
        )
    })
}

fn valid_timepoint_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_TIMEPOINT_NAME {
        return Err(format!(
            "`{name}` is longer than {MAX_TIMEPOINT_NAME} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "`{name}` may hold only ASCII letters, digits, `_` and `-` (it becomes part of column names)"
        ));
    }
    if name.to_ascii_lowercase().starts_with("change_") {
        return Err(format!(
            "`{name}` would make `{{metric}}_{name}` columns ambiguous with `{{metric}}_change_{{timepoint}}`; choose another name"
        ));
    }
    Ok(())
}

/// The closed integer day range of a window.
fn day_range(w: &Window) -> (i64, i64) {
    (w.from, if w.to_inclusive { w.to } else { w.to - 1 })
}

fn describe(w: &Window) -> String {
    format!(
        "[{}, {}{}",
        w.from,
        w.to,
        if w.to_inclusive { "]" } else { ")" }
    )
}

fn schwab_from(r: &RawSchwab) -> Result<SchwabThresholds, KeyError> {
    let limits = |key: &str, [plus, plus_plus]: [f64; 2]| {
        let key = format!("classification.schwab.{key}");
        if !(plus.is_finite() && plus_plus.is_finite() && plus < plus_plus) {
            return Err((
                key,
                format!(
                    "[{plus}, {plus_plus}] is not two finite limits, lower first; expected e.g. [10.0, 20.0] (grade + from the first, ++ above the second)"
                ),
            ));
        }
        Ok(SchwabLimits { plus, plus_plus })
    };
    Ok(SchwabThresholds {
        pi_ll_deg: limits("pi_ll_deg", r.pi_ll_deg)?,
        pt_deg: limits("pt_deg", r.pt_deg)?,
        sva_mm: limits("sva_mm", r.sva_mm)?,
    })
}

fn segments_from(names: &[String]) -> Result<Vec<Segment>, KeyError> {
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let g = Segment::parse(n).ok_or_else(|| {
            (
                format!("metrics.segments[{i}]"),
                format!(
                    "`{n}` is not a motion segment; expected one of {}",
                    list(
                        Segment::all()
                            .iter()
                            .map(|g| g.name())
                            .collect::<Vec<_>>()
                            .iter()
                            .map(String::as_str)
                    )
                ),
            )
        })?;
        if !out.contains(&g) {
            out.push(g);
        }
    }
    out.sort();
    Ok(out)
}

/// The metrics a stratum compares when its `metrics` key is left out.
pub const DEFAULT_STRATA_METRICS: [&str; 5] =
    ["sva_mm", "c7pl_csvl_mm", "ll_deg", "pt_deg", "pi_ll_deg"];

fn strata_from(raw: &[RawStrata]) -> Result<Vec<StrataSpec>, KeyError> {
    let mut out: Vec<StrataSpec> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let key = |k: &str| format!("strata[{i}].{k}");
        let column = r.column.trim().to_string();
        if column.is_empty() {
            return Err((
                key("column"),
                "must name a column of the clinical table".into(),
            ));
        }
        if out.iter().any(|s| s.column.eq_ignore_ascii_case(&column)) {
            return Err((key("column"), format!("`{column}` is already a stratum")));
        }
        if let Some(e) = &r.edges
            && (e.is_empty()
                || e.iter().any(|v| !v.is_finite())
                || e.windows(2).any(|w| w[0] >= w[1]))
        {
            return Err((
                key("edges"),
                "must be finite numbers in strictly ascending order, e.g. [2, 3] for the groups <2, [2, 3) and >=3".into(),
            ));
        }
        let names: Vec<String> = match &r.metrics {
            Some(m) => m.clone(),
            None => DEFAULT_STRATA_METRICS.map(String::from).to_vec(),
        };
        let mut metrics = Vec::new();
        for (j, n) in names.iter().enumerate() {
            let m = Metric::from_name(n.trim()).ok_or_else(|| {
                (
                    format!("strata[{i}].metrics[{j}]"),
                    format!("`{n}` is not a metric column of measurements.csv (e.g. `pt_deg`, `l4_l5_disc_height_index`)"),
                )
            })?;
            metrics.push(m);
        }
        out.push(StrataSpec {
            column,
            edges: r.edges.clone(),
            metrics,
        });
    }
    Ok(out)
}

/// `timepoints[i].name` is a valid name not used by an earlier timepoint.
fn new_timepoint_name(i: usize, name: &str, earlier: &[Window]) -> Result<(), KeyError> {
    let key = format!("timepoints[{i}].name");
    valid_timepoint_name(name).map_err(|m| (key.clone(), m))?;
    match earlier.iter().find(|w| w.name.eq_ignore_ascii_case(name)) {
        Some(prev) => Err((
            key,
            format!(
                "`{name}` is already the name of another timepoint (`{}`; names match ClinicalTrialTimePointID case-insensitively)",
                prev.name
            ),
        )),
        None => Ok(()),
    }
}

impl From<RawPick> for Pick {
    fn from(p: RawPick) -> Pick {
        match p {
            RawPick::Latest => Pick::Latest,
            RawPick::Earliest => Pick::Earliest,
        }
    }
}

/// Timepoints of a design without surgery: a name and optionally `pick` (default
/// `latest`), no days.
fn unanchored_windows(tps: &[RawTimepoint]) -> Result<Vec<Window>, KeyError> {
    if tps.is_empty() {
        return Err((
            "timepoints".into(),
            "must list at least one timepoint (or be left out for a single `baseline`)".into(),
        ));
    }
    let mut out: Vec<Window> = Vec::new();
    for (i, tp) in tps.iter().enumerate() {
        let key = |k: &str| format!("timepoints[{i}].{k}");
        new_timepoint_name(i, &tp.name, &out)?;
        for (k, set) in [
            ("from_day", tp.from_day.is_some()),
            ("to_day", tp.to_day.is_some()),
            ("to_inclusive", tp.to_inclusive.is_some()),
        ] {
            if set {
                return Err((key(k), "a design with anchor = \"none\" has no surgery to count days from; name the timepoint (matched against ClinicalTrialTimePointID) and leave out the days".into()));
            }
        }
        out.push(Window::unanchored(
            &tp.name,
            tp.pick.unwrap_or(RawPick::Latest).into(),
        ));
    }
    Ok(out)
}

fn windows_from(tps: &[RawTimepoint]) -> Result<Vec<Window>, KeyError> {
    if tps.is_empty() {
        return Err((
            "timepoints".into(),
            "must list at least one timepoint (or be left out for the defaults)".into(),
        ));
    }
    let mut out: Vec<Window> = Vec::with_capacity(tps.len());
    for (i, tp) in tps.iter().enumerate() {
        let key = |k: &str| format!("timepoints[{i}].{k}");
        new_timepoint_name(i, &tp.name, &out)?;
        let required = |k: &str| {
            (
                key(k),
                "missing; every timepoint of a design anchored on surgery needs from_day, to_day, to_inclusive and pick (or set anchor = \"none\" for a design without surgery)".to_string(),
            )
        };
        let w = Window {
            name: tp.name.clone(),
            from: tp.from_day.ok_or_else(|| required("from_day"))?,
            to: tp.to_day.ok_or_else(|| required("to_day"))?,
            to_inclusive: tp.to_inclusive.ok_or_else(|| required("to_inclusive"))?,
            pick: tp.pick.ok_or_else(|| required("pick"))?.into(),
            anchored: true,
        };
        if !(w.from < w.to || (w.from == w.to && w.to_inclusive)) {
            return Err((
                key("to_day"),
                format!(
                    "the window {} of `{}` is empty; to_day must be greater than from_day ({}), or equal to it with to_inclusive = true",
                    describe(&w),
                    w.name,
                    w.from
                ),
            ));
        }
        if let Some(prev) = out.last() {
            let (_, prev_last) = day_range(prev);
            let (first, _) = day_range(&w);
            if first <= prev_last {
                let msg = if w.from < prev.from {
                    format!(
                        "timepoints must be listed in chronological order; `{}` {} starts before the previous timepoint `{}` {}",
                        w.name,
                        describe(&w),
                        prev.name,
                        describe(prev)
                    )
                } else {
                    format!(
                        "the window of `{}` {} overlaps the window of `{}` {}; a study's timepoint would be ambiguous",
                        w.name,
                        describe(&w),
                        prev.name,
                        describe(prev)
                    )
                };
                return Err((key("from_day"), msg));
            }
        }
        out.push(w);
    }
    Ok(out)
}

/// The landmark vocabulary: the `99SPINE` codes plus `[[synonyms]]`, each a `text` or a
/// (`scheme`, `value`) code.
fn vocabulary_from(synonyms: &[RawSynonym]) -> Result<Vocabulary, KeyError> {
    let mut table = SynonymTable::default();
    for (i, s) in synonyms.iter().enumerate() {
        let key = |k: &str| synonym_key(i, k);
        let lm: Landmark = s
            .landmark
            .parse()
            .map_err(|e| (key("landmark"), format!("{e}")))?;
        match (&s.text, &s.scheme, &s.value) {
            (Some(text), None, None) => table.add_text(i, lm, text)?,
            (None, Some(scheme), Some(value)) => table.add_code(i, lm, scheme, value)?,
            (None, Some(_), None) => {
                return Err((
                    key("value"),
                    "`scheme` needs a `value` (the code value)".into(),
                ));
            }
            (None, None, Some(_)) => {
                return Err((
                    key("scheme"),
                    "`value` needs a `scheme` (the coding scheme designator)".into(),
                ));
            }
            (None, None, None) => {
                return Err((
                    key("text"),
                    format!("synonym for `{lm}` needs either `text`, or `scheme` and `value`"),
                ));
            }
            (Some(_), _, _) => {
                return Err((
                    key("text"),
                    "give either `text`, or `scheme` and `value`, not both (one entry per synonym)"
                        .into(),
                ));
            }
        }
    }
    Ok(table.vocab)
}

/// The key path of field `k` of `synonyms[i]`.
fn synonym_key(i: usize, k: &str) -> String {
    format!("synonyms[{i}].{k}")
}

/// The vocabulary being built from `[[synonyms]]`, with the landmark of each synonym
/// and the index of the entry that set it, to catch conflicts.
#[derive(Default)]
struct SynonymTable {
    vocab: Vocabulary,
    texts: BTreeMap<String, (Landmark, usize)>,
    codes: BTreeMap<(String, String), (Landmark, usize)>,
}

impl SynonymTable {
    /// Adds entry `i`, text `text` for `lm`: not empty, not another landmark's canonical
    /// name, not already another landmark's synonym.
    fn add_text(&mut self, i: usize, lm: Landmark, text: &str) -> Result<(), KeyError> {
        let text = nonempty_synonym(i, "text", text)?;
        if let Ok(canon) = text.parse::<Landmark>()
            && canon != lm
        {
            return Err((
                synonym_key(i, "text"),
                format!(
                    "`{text}` is the canonical name of another landmark and cannot be remapped to `{lm}`"
                ),
            ));
        }
        if let Some(&(other, j)) = self.texts.get(&text)
            && other != lm
        {
            return Err(synonym_conflict(
                i,
                "text",
                format!("text `{text}`"),
                other,
                j,
            ));
        }
        self.texts.insert(text.clone(), (lm, i));
        self.vocab.add_text(&text, lm);
        Ok(())
    }

    /// Adds entry `i`, code (`scheme`, `value`) for `lm`: both not empty, not another
    /// landmark's `99SPINE` code, not already another landmark's synonym.
    fn add_code(
        &mut self,
        i: usize,
        lm: Landmark,
        scheme: &str,
        value: &str,
    ) -> Result<(), KeyError> {
        let scheme = nonempty_synonym(i, "scheme", scheme)?;
        let value = nonempty_synonym(i, "value", value)?;
        if scheme == plumbline_ingest::vocab::SCHEME
            && let Ok(canon) = value.parse::<Landmark>()
            && canon != lm
        {
            return Err((
                synonym_key(i, "value"),
                format!(
                    "({scheme}, {value}) is the canonical code of another landmark and cannot be remapped to `{lm}`"
                ),
            ));
        }
        let k = (scheme.clone(), value.clone());
        if let Some(&(other, j)) = self.codes.get(&k)
            && other != lm
        {
            return Err(synonym_conflict(
                i,
                "value",
                format!("code ({scheme}, {value})"),
                other,
                j,
            ));
        }
        self.codes.insert(k, (lm, i));
        self.vocab.add_code(&scheme, &value, lm);
        Ok(())
    }
}

/// Field `k` of `synonyms[i]`, trimmed; empty is an error.
fn nonempty_synonym(i: usize, k: &str, v: &str) -> Result<String, KeyError> {
    if v.trim().is_empty() {
        Err((synonym_key(i, k), "must not be empty".to_string()))
    } else {
        Ok(v.trim().to_string())
    }
}

/// Field `k` of `synonyms[i]` maps `what` to a landmark that `synonyms[j]` mapped it to
/// `other` already.
fn synonym_conflict(i: usize, k: &str, what: String, other: Landmark, j: usize) -> KeyError {
    (
        synonym_key(i, k),
        format!(
            "{what} is already mapped to `{other}` by synonyms[{j}]; one synonym cannot name two landmarks"
        ),
    )
}

/// A toml error as a [`PipelineError::Parse`], with the key path when the error's
/// position lies on a key or a value (or, for a missing key, on the table's header).
fn parse_error(text: &str, source: &str, e: &toml::de::Error) -> PipelineError {
    let rendered = e.to_string();
    let rendered = rendered.trim_end();
    // A missing key is reported at its table (the header of a `[table]` or
    // `[[array]]` item), never at the first key inside it.
    let tables_only = e.message().starts_with("missing field");
    let message = match e
        .span()
        .and_then(|s| key_path_at(text, s.start, tables_only))
    {
        Some(path) => format!("at `{path}`: {rendered}"),
        None => rendered.to_string(),
    };
    PipelineError::Parse {
        source_name: source.to_string(),
        message,
    }
}

/// The key path (`timepoints[2].to_day`) of the key, value or table header at byte `pos`;
/// with `tables_only`, of the table only.
fn key_path_at(text: &str, pos: usize, tables_only: bool) -> Option<String> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut finder = KeyFinder {
        pos,
        tables_only,
        path: String::new(),
    };
    finder.table(doc.get_ref()).then_some(finder.path)
}

struct KeyFinder {
    pos: usize,
    tables_only: bool,
    path: String,
}

impl KeyFinder {
    fn table(&mut self, t: &toml::de::DeTable<'_>) -> bool {
        for (k, v) in t.iter() {
            let len = self.path.len();
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(k.get_ref());
            if (!self.tables_only && k.span().contains(&self.pos)) || self.value(v) {
                return true;
            }
            self.path.truncate(len);
        }
        false
    }

    fn value(&mut self, v: &toml::Spanned<toml::de::DeValue<'_>>) -> bool {
        let here = v.span().contains(&self.pos);
        match v.get_ref() {
            toml::de::DeValue::Table(t) => self.table(t) || here,
            toml::de::DeValue::Array(a) => {
                for (i, item) in a.iter().enumerate() {
                    let len = self.path.len();
                    self.path.push_str(&format!("[{i}]"));
                    if self.value(item) {
                        return true;
                    }
                    self.path.truncate(len);
                }
                !self.tables_only && here
            }
            _ => !self.tables_only && here,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plumbline_ingest::default_windows;

    const WANG_TOML: &str = include_str!("../../../pipelines/wang2022-discectomy.toml");

    /// A valid file with every section, for the bad cases to modify.
    const FULL: &str = r#"
name = "t"
baseline = "preop"

[[timepoints]]
name = "preop"
from_day = -180
to_day = 0
to_inclusive = false
pick = "latest"

[[timepoints]]
name = "postop"
from_day = 0
to_day = 30
to_inclusive = true
pick = "earliest"

[[timepoints]]
name = "m3"
from_day = 60
to_day = 120
to_inclusive = true
pick = "earliest"

[classification]
sagittal_sva_mm = 40.0
coronal_c7pl_csvl_mm = 20.0

[metrics]
tk_upper = "T4"
tk_lower = "T12"

[sr]
depth_cap = 64

[plausibility]
pi_tolerance_deg = 4.5

[[synonyms]]
landmark = "S1_sup_post"
text = "Sacral plateau, posterior"

[[synonyms]]
landmark = "C7_centroid"
scheme = "99MYLAB"
value = "C7C"

[outputs]
overlays = true
"#;

    fn err(text: &str) -> String {
        match Pipeline::from_toml(text, "cases/bad.toml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    /// The error names the source and the key path, and says the given words.
    #[track_caller]
    fn assert_bad(text: &str, key: &str, words: &[&str]) {
        let e = err(text);
        assert!(e.contains("cases/bad.toml"), "no source name in: {e}");
        assert!(e.contains(&format!("`{key}`")), "no key `{key}` in: {e}");
        for w in words {
            assert!(e.contains(w), "no `{w}` in: {e}");
        }
    }

    #[test]
    fn embedded_default_is_the_spec_defaults() {
        let p = Pipeline::embedded_default();
        assert_eq!(p.name, "default");
        assert_eq!(p.windows, default_windows());
        assert_eq!(p.baseline, "preop");
        assert_eq!(p.thresholds, Thresholds::default());
        assert_eq!(p.thresholds.sagittal_sva_mm, 40.0);
        assert_eq!(p.thresholds.coronal_c7pl_csvl_mm, 20.0);
        assert_eq!(p.metric_options, MetricOptions::default());
        assert_eq!(p.vocab, Vocabulary::default());
        assert_eq!(p.depth_cap, DEFAULT_DEPTH_CAP);
        assert_eq!(p.outputs, Outputs::default());
        assert_eq!(
            p.outputs,
            Outputs {
                measurements: true,
                patients: true,
                cohort_summary: true,
                overlays: false
            }
        );
        assert_eq!(p.source, "embedded default");
        assert_eq!(p.sha256, sha256_hex(DEFAULT_TOML.as_bytes()));
        assert_eq!(p.baseline_index(), 0);
    }

    #[test]
    fn a_file_with_only_a_name_takes_every_default() {
        let p = Pipeline::from_toml("name = \"minimal\"\n", "m.toml").unwrap();
        let d = Pipeline::embedded_default();
        assert_eq!(p.windows, d.windows);
        assert_eq!(p.baseline, d.baseline);
        assert_eq!(p.thresholds, d.thresholds);
        assert_eq!(p.metric_options, d.metric_options);
        assert_eq!(p.vocab, d.vocab);
        assert_eq!(p.depth_cap, d.depth_cap);
        assert_eq!(p.outputs, d.outputs);
        assert_eq!(p.description, "");
        assert_eq!(p.source, "m.toml");
    }

    #[test]
    fn wang2022_parses_with_four_default_windows() {
        let p = Pipeline::from_toml(WANG_TOML, "pipelines/wang2022-discectomy.toml").unwrap();
        assert_eq!(p.name, "wang2022-discectomy");
        assert!(p.description.contains("10.2147/JPR.S341317"));
        assert_eq!(p.windows, default_windows()[..4].to_vec());
        assert_eq!(p.baseline, "preop");
        assert_eq!(p.thresholds, Thresholds::default());
        assert_eq!(p.metric_options, MetricOptions::default());
        assert_eq!(p.depth_cap, DEFAULT_DEPTH_CAP);
        assert_eq!(p.outputs, Outputs::default());
    }

    #[test]
    fn load_reads_the_shipped_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
        for f in [
            "default.toml",
            "wang2022-discectomy.toml",
            "l4-wedging-survey.toml",
            "srs-schwab.toml",
            "disc-space-loss.toml",
            "fusion-hip.toml",
        ] {
            let path = dir.join(f);
            let p = Pipeline::load(&path).unwrap();
            assert_eq!(p.source, path.display().to_string());
            assert_eq!(p.sha256, sha256_hex(&std::fs::read(&path).unwrap()));
        }
        let p = Pipeline::load(&dir.join("default.toml")).unwrap();
        assert_eq!(
            Pipeline {
                source: "embedded default".into(),
                ..p
            },
            Pipeline::embedded_default()
        );
    }

    #[test]
    fn load_reports_a_missing_file_with_its_path() {
        let e = Pipeline::load(Path::new("/nonexistent/plumbline/p.toml")).unwrap_err();
        assert!(matches!(e, PipelineError::Read { .. }));
        assert!(e.to_string().contains("/nonexistent/plumbline/p.toml"));
    }

    #[test]
    fn full_file_parses_every_section() {
        let p = Pipeline::from_toml(FULL, "full.toml").unwrap();
        assert_eq!(
            p.windows
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>(),
            ["preop", "postop", "m3"]
        );
        assert!(p.outputs.overlays && p.outputs.measurements);
        assert_eq!(p.pi_tolerance_deg, 4.5);
        let s1p: Landmark = "S1_sup_post".parse().unwrap();
        let c7: Landmark = "C7_centroid".parse().unwrap();
        assert_eq!(p.vocab.text(" Sacral plateau, posterior "), Some(s1p));
        assert_eq!(p.vocab.code("99MYLAB", "C7C"), Some(c7));
        assert_eq!(p.vocab.code("99SPINE", "C7_centroid"), Some(c7));
    }

    #[test]
    fn custom_values_are_taken() {
        let text = r#"
name = " custom "
description = "d"
baseline = "pre"
[[timepoints]]
name = "pre"
from_day = -30
to_day = -1
to_inclusive = true
pick = "earliest"
[[timepoints]]
name = "day0"
from_day = 0
to_day = 0
to_inclusive = true
pick = "latest"
[classification]
sagittal_sva_mm = 50
[metrics]
tk_upper = "T5"
tk_lower = "L1"
[sr]
depth_cap = 10000
[outputs]
patients = false
"#;
        let p = Pipeline::from_toml(text, "c.toml").unwrap();
        assert_eq!(p.name, "custom");
        assert_eq!(p.baseline, "pre");
        assert_eq!(
            p.windows[1],
            Window {
                name: "day0".into(),
                from: 0,
                to: 0,
                to_inclusive: true,
                pick: Pick::Latest,
                anchored: true,
            }
        );
        assert_eq!(p.windows[0].pick, Pick::Earliest);
        // An integer threshold is accepted; the other keeps its default.
        assert_eq!(p.thresholds.sagittal_sva_mm, 50.0);
        assert_eq!(p.thresholds.coronal_c7pl_csvl_mm, 20.0);
        assert_eq!(p.metric_options.tk_upper, Level::T(5));
        assert_eq!(p.metric_options.tk_lower, Level::L(1));
        assert_eq!(p.depth_cap, 10000);
        assert!(!p.outputs.patients && p.outputs.measurements && !p.outputs.overlays);
    }

    #[test]
    fn sha256_of_known_strings() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let p = Pipeline::from_toml("name = \"x\"\n", "x").unwrap();
        assert_eq!(p.sha256, sha256_hex(b"name = \"x\"\n"));
        assert_eq!(p.sha256.len(), 64);
    }

    #[test]
    fn a_byte_order_mark_is_skipped_but_hashed() {
        let text = "\u{feff}name = \"x\"\n";
        let p = Pipeline::from_toml(text, "bom.toml").unwrap();
        assert_eq!(p.name, "x");
        assert_eq!(p.sha256, sha256_hex(text.as_bytes()));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        assert_bad(
            "name = \"x\"\nthreshold = 3\n",
            "threshold",
            &["line 2", "unknown field"],
        );
        assert_bad(
            "name = \"x\"\n[classification]\nsagittal_sva_mm = 40\nsva_mm = 30\n",
            "classification.sva_mm",
            &["line 4", "unknown field", "coronal_c7pl_csvl_mm"],
        );
        assert_bad(
            &FULL.replace("pick = \"latest\"", "pick = \"latest\"\npik = 1"),
            "timepoints[0].pik",
            &["unknown field"],
        );
        assert_bad(
            &format!("{FULL}\n[plots]\nx = 1\n"),
            "plots",
            &["unknown field"],
        );
        assert_bad(
            &FULL.replace("value = \"C7C\"", "value = \"C7C\"\nmeaning = \"m\""),
            "synonyms[1].meaning",
            &["unknown field"],
        );
        assert_bad(
            &FULL.replace("overlays = true", "overlay = true"),
            "outputs.overlay",
            &["unknown field"],
        );
        assert_bad(
            &FULL.replace("depth_cap = 64", "depth = 64"),
            "sr.depth",
            &["unknown field"],
        );
    }

    #[test]
    fn wrong_types_are_errors_naming_the_key() {
        assert_bad(
            &FULL.replace("sagittal_sva_mm = 40.0", "sagittal_sva_mm = \"40 mm\""),
            "classification.sagittal_sva_mm",
            &["invalid type", "line"],
        );
        assert_bad(
            &FULL.replace("to_day = 120", "to_day = 120.5"),
            "timepoints[2].to_day",
            &["invalid type"],
        );
        assert_bad(
            &FULL.replace("overlays = true", "overlays = \"yes\""),
            "outputs.overlays",
            &["invalid type"],
        );
        assert_bad(
            &FULL.replace("pick = \"latest\"", "pick = \"last\""),
            "timepoints[0].pick",
            &["`latest` or `earliest`"],
        );
        assert_bad(
            "name = \"x\"\ntimepoints = 3\n",
            "timepoints",
            &["invalid type"],
        );
        assert_bad("name = 3\n", "name", &["invalid type"]);
    }

    #[test]
    fn missing_keys_are_errors_naming_the_key() {
        let e = err("description = \"no name\"\n");
        assert!(
            e.contains("cases/bad.toml") && e.contains("missing field `name`"),
            "{e}"
        );
        assert_bad(
            &FULL.replace(
                "to_inclusive = true\npick = \"earliest\"\n\n[[timepoints]]\nname = \"m3\"",
                "pick = \"earliest\"\n\n[[timepoints]]\nname = \"m3\"",
            ),
            "timepoints[1].to_inclusive",
            &["missing", "from_day, to_day, to_inclusive and pick"],
        );
        assert_bad(
            &FULL.replace("text = \"Sacral plateau, posterior\"\n", ""),
            "synonyms[0].text",
            &["either `text`"],
        );
        assert_bad(
            &FULL.replace("value = \"C7C\"\n", ""),
            "synonyms[1].value",
            &["needs a `value`"],
        );
    }

    #[test]
    fn bad_thresholds_are_errors() {
        for v in ["-40", "0", "0.0", "nan", "inf", "-inf"] {
            assert_bad(
                &FULL.replace("sagittal_sva_mm = 40.0", &format!("sagittal_sva_mm = {v}")),
                "classification.sagittal_sva_mm",
                &["greater than 0"],
            );
        }
        assert_bad(
            &FULL.replace("coronal_c7pl_csvl_mm = 20.0", "coronal_c7pl_csvl_mm = -20"),
            "classification.coronal_c7pl_csvl_mm",
            &["-20"],
        );
    }

    #[test]
    fn bad_windows_are_errors() {
        // Overlap: m3 starts inside postop.
        assert_bad(
            &FULL.replace("from_day = 60", "from_day = 30"),
            "timepoints[2].from_day",
            &["overlaps", "`postop`", "ambiguous"],
        );
        // Touching half-open windows do not overlap: [0, 60) then [60, 120].
        let ok = FULL.replace(
            "to_day = 30\nto_inclusive = true",
            "to_day = 60\nto_inclusive = false",
        );
        Pipeline::from_toml(&ok, "ok").unwrap();
        // ...but closed ones do.
        let bad = FULL.replace(
            "to_day = 30\nto_inclusive = true",
            "to_day = 60\nto_inclusive = true",
        );
        assert_bad(&bad, "timepoints[2].from_day", &["overlaps"]);
        // Out of order.
        assert_bad(
            &FULL.replace("from_day = 60", "from_day = -200"),
            "timepoints[2].from_day",
            &["chronological"],
        );
        // Empty windows.
        assert_bad(
            &FULL.replace("to_day = 120", "to_day = 50"),
            "timepoints[2].to_day",
            &["empty"],
        );
        assert_bad(
            &FULL.replace(
                "to_day = 0\nto_inclusive = false",
                "to_day = -180\nto_inclusive = false",
            ),
            "timepoints[0].to_day",
            &["empty"],
        );
        // Names.
        assert_bad(
            &FULL.replace("name = \"m3\"", "name = \"POSTOP\""),
            "timepoints[2].name",
            &["already"],
        );
        assert_bad(
            &FULL.replace("name = \"m3\"", "name = \"3 months\""),
            "timepoints[2].name",
            &["letters"],
        );
        assert_bad(
            &FULL.replace("name = \"m3\"", "name = \"\""),
            "timepoints[2].name",
            &["empty"],
        );
        assert_bad(
            &FULL.replace("name = \"m3\"", "name = \"change_m3\""),
            "timepoints[2].name",
            &["ambiguous"],
        );
        let long = "x".repeat(65);
        assert_bad(
            &FULL.replace("name = \"m3\"", &format!("name = \"{long}\"")),
            "timepoints[2].name",
            &["64"],
        );
        // None at all.
        assert_bad(
            "name = \"x\"\ntimepoints = []\n",
            "timepoints",
            &["at least one"],
        );
    }

    #[test]
    fn baseline_must_be_a_timepoint() {
        assert_bad(
            &FULL.replace("baseline = \"preop\"", "baseline = \"pre\""),
            "baseline",
            &["`pre`", "`preop`, `postop`, `m3`"],
        );
        // The default baseline "preop" is checked too when the timepoints lack it.
        let no_preop = "name = \"x\"\n[[timepoints]]\nname = \"a\"\nfrom_day = 0\nto_day = 1\nto_inclusive = true\npick = \"earliest\"\n";
        assert_bad(no_preop, "baseline", &["`preop`"]);
        let p = Pipeline::from_toml(
            &FULL.replace("baseline = \"preop\"", "baseline = \"postop\""),
            "ok",
        )
        .unwrap();
        assert_eq!(p.baseline_index(), 1);
    }

    #[test]
    fn bad_tk_levels_are_errors() {
        for v in ["T13", "t4", "C7", "S1", "L6", "T04", "4", ""] {
            assert_bad(
                &FULL.replace("tk_upper = \"T4\"", &format!("tk_upper = \"{v}\"")),
                "metrics.tk_upper",
                &["T1..T12, L1..L5"],
            );
        }
        assert_bad(
            &FULL.replace("tk_lower = \"T12\"", "tk_lower = \"T4\""),
            "metrics.tk_lower",
            &["below"],
        );
        assert_bad(
            &FULL.replace("tk_lower = \"T12\"", "tk_lower = \"T2\""),
            "metrics.tk_lower",
            &["below"],
        );
        assert_bad(
            &FULL.replace("tk_lower = \"T12\"", "tk_lower = 12"),
            "metrics.tk_lower",
            &["invalid type"],
        );
    }

    #[test]
    fn pi_tolerance_defaults_to_6_and_must_be_positive() {
        assert_eq!(Pipeline::embedded_default().pi_tolerance_deg, 6.0);
        assert_eq!(
            Pipeline::from_toml("name = \"x\"", "x.toml")
                .unwrap()
                .pi_tolerance_deg,
            DEFAULT_PI_TOLERANCE_DEG
        );
        for v in ["0.0", "-1.0", "nan", "inf"] {
            assert_bad(
                &FULL.replace("pi_tolerance_deg = 4.5", &format!("pi_tolerance_deg = {v}")),
                "plausibility.pi_tolerance_deg",
                &["degrees greater than 0"],
            );
        }
    }

    #[test]
    fn bad_depth_caps_are_errors() {
        for v in ["0", "-1", "10001"] {
            assert_bad(
                &FULL.replace("depth_cap = 64", &format!("depth_cap = {v}")),
                "sr.depth_cap",
                &["1 to 10000"],
            );
        }
    }

    #[test]
    fn bad_synonyms_are_errors() {
        assert_bad(
            &FULL.replace("landmark = \"S1_sup_post\"", "landmark = \"S1_inf_post\""),
            "synonyms[0].landmark",
            &["S1_inf_post", "not a landmark name"],
        );
        assert_bad(
            &FULL.replace("landmark = \"C7_centroid\"", "landmark = \"c7_centroid\""),
            "synonyms[1].landmark",
            &["not a landmark name"],
        );
        assert_bad(
            &FULL.replace("text = \"Sacral plateau, posterior\"", "text = \"  \""),
            "synonyms[0].text",
            &["empty"],
        );
        assert_bad(
            &FULL.replace(
                "text = \"Sacral plateau, posterior\"",
                "text = \"x\"\nscheme = \"S\"\nvalue = \"v\"",
            ),
            "synonyms[0].text",
            &["not both"],
        );
        // Remapping a canonical name or a 99SPINE code.
        assert_bad(
            &FULL.replace(
                "text = \"Sacral plateau, posterior\"",
                "text = \"S1_sup_ant\"",
            ),
            "synonyms[0].text",
            &["canonical"],
        );
        assert_bad(
            &FULL.replace(
                "scheme = \"99MYLAB\"\nvalue = \"C7C\"",
                "scheme = \"99SPINE\"\nvalue = \"T1_centroid\"",
            ),
            "synonyms[1].value",
            &["canonical"],
        );
        // One synonym, two landmarks.
        let twice = format!(
            "{FULL}\n[[synonyms]]\nlandmark = \"S1_sup_ant\"\ntext = \"Sacral plateau, posterior\"\n"
        );
        assert_bad(&twice, "synonyms[2].text", &["synonyms[0]", "S1_sup_post"]);
        let twice = format!(
            "{FULL}\n[[synonyms]]\nlandmark = \"T1_centroid\"\nscheme = \" 99MYLAB\"\nvalue = \"C7C \"\n"
        );
        assert_bad(&twice, "synonyms[2].value", &["synonyms[1]"]);
        // The same mapping twice is harmless.
        let same = format!(
            "{FULL}\n[[synonyms]]\nlandmark = \"S1_sup_post\"\ntext = \"Sacral plateau, posterior\"\n"
        );
        Pipeline::from_toml(&same, "ok").unwrap();
    }

    #[test]
    fn syntax_errors_name_the_source_and_line() {
        let e = err("name = \"x\"\n[classification\n");
        assert!(e.contains("cases/bad.toml") && e.contains("line 2"), "{e}");
        let e = err("name = \"x\"\nname = \"y\"\n");
        assert!(e.contains("cases/bad.toml") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn empty_name_is_an_error() {
        assert_bad("name = \" \"\n", "name", &["empty"]);
    }

    #[test]
    fn study_design_pipelines_say_what_they_compare() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines");
        let load = |f: &str| Pipeline::load(&dir.join(f)).unwrap();
        let names = |p: &Pipeline| p.windows.iter().map(|w| w.name.clone()).collect::<Vec<_>>();
        let survey = load("l4-wedging-survey.toml");
        assert!(!survey.anchored);
        assert_eq!(
            survey.windows,
            [Window::unanchored("baseline", Pick::Latest)]
        );
        assert_eq!(survey.thresholds.wedge_abnormal_pct, 8.3);
        assert_eq!(survey.segments.as_ref().unwrap().len(), 5);
        assert_eq!(survey.strata[0].column, "sex");
        let schwab = load("srs-schwab.toml");
        assert_eq!(names(&schwab), ["preop", "postop", "m6"]);
        assert_eq!(schwab.thresholds.schwab, SchwabThresholds::default());
        let disc = load("disc-space-loss.toml");
        assert_eq!(names(&disc), ["preop", "w6", "w52", "w104"]);
        assert_eq!(
            disc.segments
                .as_ref()
                .unwrap()
                .iter()
                .map(|g| g.name())
                .collect::<Vec<_>>(),
            ["l3_l4", "l4_l5", "l5_s1"]
        );
        assert_eq!(disc.strata[0].edges, Some(vec![2.0, 3.0]));
        let hip = load("fusion-hip.toml");
        assert_eq!(
            hip.strata
                .iter()
                .map(|s| s.column.as_str())
                .collect::<Vec<_>>(),
            ["hip_pain", "fusion_to_sacrum"]
        );
        assert_eq!(hip.strata[0].metrics.len(), 3);
        let wang = load("wang2022-discectomy.toml");
        assert_eq!(wang.strata.len(), 2);
        // Without a `metrics` key a stratum compares the five key metrics.
        let p = Pipeline::from_toml("name = \"s\"\n[[strata]]\ncolumn = \"sex\"\n", "s").unwrap();
        assert_eq!(
            p.strata[0]
                .metrics
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>(),
            DEFAULT_STRATA_METRICS
        );
    }

    #[test]
    fn designs_without_surgery() {
        let p = Pipeline::from_toml("name = \"x\"\nanchor = \"none\"\n", "x").unwrap();
        assert_eq!(p.windows, [Window::unanchored("baseline", Pick::Latest)]);
        assert_eq!(p.baseline, "baseline");
        let two = "name = \"x\"\nanchor = \"none\"\n[[timepoints]]\nname = \"v1\"\n[[timepoints]]\nname = \"v2\"\npick = \"earliest\"\n";
        let p = Pipeline::from_toml(two, "x").unwrap();
        assert_eq!(
            p.windows,
            [
                Window::unanchored("v1", Pick::Latest),
                Window::unanchored("v2", Pick::Earliest)
            ]
        );
        assert_eq!(p.baseline, "v1");
        assert_bad(
            "name = \"x\"\nanchor = \"none\"\n[[timepoints]]\nname = \"v1\"\nfrom_day = 0\n",
            "timepoints[0].from_day",
            &["no surgery"],
        );
        assert_bad(
            "name = \"x\"\n[[timepoints]]\nname = \"v1\"\npick = \"latest\"\n",
            "timepoints[0].from_day",
            &["anchor = \"none\""],
        );
        assert!(err("name = \"x\"\nanchor = \"visit\"\n").contains("anchor"));
    }

    #[test]
    fn new_classification_and_metric_keys_are_checked() {
        let p = Pipeline::from_toml(
            "name = \"x\"\n[classification]\nwedge_abnormal_pct = 10\n[classification.schwab]\nsva_mm = [50, 100]\n[metrics]\nsegments = [\"L5-S1\", \"l4_l5\", \"l4_l5\"]\n",
            "x",
        )
        .unwrap();
        assert_eq!(p.thresholds.wedge_abnormal_pct, 10.0);
        assert_eq!(p.thresholds.schwab.sva_mm.plus, 50.0);
        assert_eq!(
            p.thresholds.schwab.pt_deg,
            SchwabThresholds::default().pt_deg
        );
        let seg: Vec<String> = p.segments.unwrap().iter().map(|g| g.name()).collect();
        assert_eq!(seg, ["l4_l5", "l5_s1"]);
        assert_bad(
            "name = \"x\"\n[classification.schwab]\npt_deg = [30, 20]\n",
            "classification.schwab.pt_deg",
            &["lower first"],
        );
        assert_bad(
            "name = \"x\"\n[classification]\nwedge_abnormal_pct = 0\n",
            "classification.wedge_abnormal_pct",
            &[],
        );
        assert_bad(
            "name = \"x\"\n[metrics]\nsegments = [\"l4_s1\"]\n",
            "metrics.segments[0]",
            &["l4_l5", "l5_s1"],
        );
        assert_bad(
            "name = \"x\"\n[[strata]]\ncolumn = \"age\"\nedges = [60, 40]\n",
            "strata[0].edges",
            &["ascending"],
        );
        assert_bad(
            "name = \"x\"\n[[strata]]\ncolumn = \"age\"\nmetrics = [\"sva\"]\n",
            "strata[0].metrics[0]",
            &["`sva`"],
        );
        assert_bad(
            "name = \"x\"\n[[strata]]\ncolumn = \"Sex\"\n[[strata]]\ncolumn = \"sex\"\n",
            "strata[1].column",
            &["already"],
        );
    }
}
