//! The cohort report: one self-contained HTML file (`report.html`) with the tables of a
//! Wang-2022-style study and inline SVG plots.
//!
//! The file has inline CSS and inline SVG only: no `<script>`, no external URL of any
//! kind (no `http(s):`, no `//host`, no `@import`, no web fonts; the system font stack),
//! so it opens the same from a USB stick, an e-mail attachment or an air-gapped PACS
//! workstation. Links go only to the overlay PNGs beside it (relative paths) and to
//! anchors inside the page. Every text taken from the data is HTML-escaped, and the
//! output depends on the inputs only (no clock, no randomness), so the same run gives a
//! byte-identical report.
//!
//! Every statistic shown is read from the `cohort_summary.csv` rows
//! ([`SummaryRow`]); the plots and the patient table use each patient's primary reading
//! ([`primary_readings`]), the same readings the statistics rest on.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plumbline_export::analyses::Strata;
use plumbline_export::tables::{MeasuredReading, SummaryRow, primary_readings};
use plumbline_geometry::{Check, ImbalanceType, Metric};
use plumbline_ingest::{QcIssue, Severity};

mod designs;

/// Where an overlay PNG of one view lies, relative to the report (`out/`), e.g.
/// `overlays/P0001/preop_Reader^Alpha_lateral.png`. The report percent-encodes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OverlayLink {
    /// PatientID.
    pub patient_id: String,
    /// Timepoint name.
    pub timepoint: String,
    /// Reader (empty when none).
    pub observer: String,
    /// View, e.g. `lateral` or `ap`.
    pub view: String,
    /// Path of the PNG relative to the report, `/`-separated.
    pub href: String,
}

/// Everything the report shows.
#[derive(Clone, Debug)]
pub struct ReportData<'a> {
    /// Page title, e.g. `Plumbline report: wang2022-discectomy`.
    pub title: String,
    /// Plumbline's version.
    pub tool_version: String,
    /// Pipeline name.
    pub pipeline_name: String,
    /// SHA-256 of the pipeline file.
    pub pipeline_sha256: String,
    /// Input folder as given.
    pub input: String,
    /// Files scanned.
    pub files: usize,
    /// Radiographs found.
    pub images: usize,
    /// Landmark files (SRs, markups, CSVs) found.
    pub landmark_files: usize,
    /// Timepoint names in window order.
    pub timepoints: Vec<String>,
    /// Index of the baseline in `timepoints`.
    pub baseline: usize,
    /// Every reading (rows of `measurements.csv`).
    pub readings: &'a [MeasuredReading],
    /// The cohort statistics (rows of `cohort_summary.csv`).
    pub summary: &'a [SummaryRow],
    /// QC problems.
    pub qc: &'a [QcIssue],
    /// Overlay PNGs; empty when overlays were not rendered.
    pub overlays: &'a [OverlayLink],
    /// The pipeline's `[[strata]]` as grouped from the clinical table (the same strata
    /// whose `strata` rows are in `summary`): group membership for the strata box plots.
    /// Empty when the pipeline has none.
    pub strata: &'a [Strata],
}

/// The metrics plotted and shown in the patient table.
pub const KEY_METRICS: [Metric; 5] = [
    Metric::SvaMm,
    Metric::C7plCsvlMm,
    Metric::LlDeg,
    Metric::PtDeg,
    Metric::PiLlDeg,
];

const PLOT_W: u32 = 540;
const PLOT_H: u32 = 330;

const CSS: &str = r#"
:root{--fg:#1d2329;--muted:#5b6670;--line:#d5dbe1;--bg:#ffffff;--head:#f2f5f8;--accent:#1f5f8b;
--bal:#7d8791;--sag:#d9822b;--cor:#2b7bd9;--bip:#c0392b;--unk:#a7aeb5}
*{box-sizing:border-box}
html{background:var(--bg);color:var(--fg)}
body{margin:0 auto;max-width:1200px;padding:20px 28px 40px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif;font-variant-numeric:tabular-nums}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--accent);color:var(--accent)}
h3{font-size:15px;margin:22px 0 6px}
h4{font-size:14px;margin:16px 0 4px}
p{margin:6px 0}
.sub{color:var(--muted);margin:0 0 10px}
.note{color:var(--muted);font-size:12.5px}
nav{margin:10px 0 0;font-size:13px}
nav a{margin-right:14px}
a{color:var(--accent)}
.findings{background:#f4f8fb;border:1px solid #cfe0ec;border-left:5px solid var(--accent);padding:10px 16px;margin:16px 0 0}
.findings ul{margin:4px 0;padding-left:20px}
table{border-collapse:collapse;margin:8px 0 4px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:var(--head);font-weight:600}
td.n,th.n{text-align:right;white-space:nowrap}
tr.grp td{background:#fafbfc;font-weight:600;color:var(--accent)}
tr.grp .small{font-weight:400}
table.imb{width:100%;max-width:780px}
td.ind{padding-left:22px}
.kv th{background:var(--head);font-weight:600;width:260px}
.small{font-size:11.5px;color:var(--muted)}
.sig{font-weight:700}
.wide{overflow-x:auto}
.plots{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid var(--line);padding:6px;background:#fff}
figcaption{font-size:12px;color:var(--muted);padding:2px 4px 0}
figure.fig-s{max-width:434px}figure.fig-m{max-width:554px}
svg{display:block;max-width:100%;height:auto}
.legend{font-size:12.5px;margin:4px 0 0}
.sw{display:inline-block;width:14px;height:4px;vertical-align:middle;margin:0 4px 0 12px;border-radius:2px}
.badge{display:inline-block;padding:0 6px;border-radius:9px;font-size:11.5px;font-weight:600;color:#fff;white-space:nowrap}
.t-balanced{background:var(--bal)}.t-sagittal{background:var(--sag)}.t-coronal{background:var(--cor)}
.t-biplanar{background:var(--bip)}.t-unknown{background:var(--unk)}.t-none{background:none;color:var(--muted);font-weight:400}
.sw.t-mean{background:#111}
.sw.box{width:12px;height:10px;border-radius:1px}
.g-0{background:#7fb08a}.g-p{background:#e0a13a}.g-pp{background:#b03a2e}
.seq{white-space:nowrap}
.pt td{padding:3px 8px}
.pt .l{height:20px;line-height:20px;white-space:nowrap}
.pt tbody tr:nth-child(even) td{background:#f8fafb}
.pt td.n .l{text-align:right}
footer{margin-top:36px;padding-top:8px;border-top:1px solid var(--line);color:var(--muted);font-size:12px}
footer code{word-break:break-all}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}figure,tr{break-inside:avoid}}
"#;

/// HTML-escapes text for element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes a relative path for `href`: every byte but unreserved characters and
/// `/` is encoded, so `:` cannot start a scheme; a leading `/` gets `.` before it, so the
/// result can never be a network-path (`//host`) reference.
fn href_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 8);
    if path.starts_with('/') {
        out.push('.');
    }
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// A value with `d` decimals; `-0.0` is written `0.0`.
fn fnum(v: f64, d: usize) -> String {
    let s = format!("{v:.d$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A p value: `<0.001`, else 3 decimals below 0.1 and 2 above.
fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        "&lt;0.001".into()
    } else if p < 0.1 {
        format!("{p:.3}")
    } else {
        format!("{p:.2}")
    }
}

fn pct(share: f64) -> String {
    format!("{}%", fnum(share * 100.0, 1))
}

/// Display name and unit of a metric column.
fn metric_label(m: Metric) -> (String, &'static str) {
    let name = match m {
        Metric::SvaMm => "SVA".to_string(),
        Metric::SsDeg => "SS".into(),
        Metric::PtDeg => "PT".into(),
        Metric::PiDeg => "PI".into(),
        Metric::LlDeg => "LL (L1-S1)".into(),
        Metric::L4S1LordosisDeg => "L4-S1 lordosis".into(),
        Metric::TkDeg => "TK".into(),
        Metric::PiLlDeg => "PI-LL".into(),
        Metric::TpaDeg => "TPA".into(),
        Metric::WedgeAngleDeg(n) => format!("L{n} wedge angle"),
        Metric::WedgeIndexPct(n) => format!("L{n} wedge index"),
        Metric::C7plCsvlMm => "C7PL-CSVL".into(),
        Metric::CobbDeg => "Cobb".into(),
        Metric::PelvicObliquityDeg => "Pelvic obliquity".into(),
        Metric::AntHeightMm(n) => format!("L{n} anterior height"),
        Metric::PostHeightMm(n) => format!("L{n} posterior height"),
        Metric::DiscAngleDeg(g) => format!("{} disc angle", segment_label(g)),
        Metric::SegmentalLordosisDeg(g) => format!("{} segmental lordosis", segment_label(g)),
        Metric::DiscHeightAntMm(g) => format!("{} anterior disc height", segment_label(g)),
        Metric::DiscHeightPostMm(g) => format!("{} posterior disc height", segment_label(g)),
        Metric::DiscHeightIndex(g) => format!("{} disc height index", segment_label(g)),
        Metric::SlipPct(g) => format!("{} slip", segment_label(g)),
    };
    let unit = match m.unit() {
        "deg" => "°",
        "1" => "ratio",
        u => u,
    };
    (name, unit)
}

/// `L4-L5` for the segment `l4_l5`.
fn segment_label(g: plumbline_geometry::Segment) -> String {
    format!("{}-{}", g.upper(), g.lower())
}

fn metric_title(m: Metric) -> String {
    let (n, u) = metric_label(m);
    format!("{n} ({u})")
}

fn type_name(t: Option<ImbalanceType>) -> &'static str {
    t.map_or("unknown", ImbalanceType::as_str)
}

fn badge(t: Option<ImbalanceType>) -> String {
    let name = type_name(t);
    let text = if t.is_none() {
        "not classifiable"
    } else {
        name
    };
    format!(r#"<span class="badge t-{name}">{text}</span>"#)
}

/// The summary rows by (section, statistic, timepoint).
struct Summary<'a> {
    rows: BTreeMap<(&'a str, &'a str, &'a str), &'a SummaryRow>,
}

impl<'a> Summary<'a> {
    fn new(rows: &'a [SummaryRow]) -> Self {
        Summary {
            rows: rows
                .iter()
                .map(|r| ((r.section, r.statistic.as_str(), r.timepoint.as_str()), r))
                .collect(),
        }
    }

    fn get(&self, section: &str, statistic: &str, timepoint: &str) -> Option<&'a SummaryRow> {
        self.rows.get(&(section, statistic, timepoint)).copied()
    }
}

/// A proportion row as (k, n, share, ci).
fn proportion(r: &SummaryRow) -> (usize, usize, Option<f64>, Option<(f64, f64)>) {
    let k = r.k.unwrap_or(0); // every row shown as a proportion is one (`SummaryRow::k`)
    (k, r.n, r.value, r.ci_low.zip(r.ci_high))
}

/// Cells `n/N | % | 95% CI` of a proportion row.
fn proportion_cells(r: Option<&SummaryRow>) -> String {
    match r.map(proportion) {
        Some((k, n, Some(v), ci)) => {
            let ci = ci.map_or("–".into(), |(lo, hi)| {
                format!("{}–{}", fnum(lo * 100.0, 1), pct(hi))
            });
            format!(
                r#"<td class="n">{k}/{n}</td><td class="n">{}</td><td class="n">{ci}</td>"#,
                pct(v)
            )
        }
        Some((_, n, None, _)) => {
            format!(r#"<td class="n">0/{n}</td><td class="n">–</td><td class="n">–</td>"#)
        }
        None => r#"<td class="n">–</td><td class="n">–</td><td class="n">–</td>"#.into(),
    }
}

/// `k/N (x%)` for the findings box.
fn proportion_text(r: Option<&SummaryRow>) -> Option<String> {
    let (k, n, v, _) = proportion(r?);
    Some(format!("{k}/{n} ({})", pct(v?)))
}

/// Everything derived once from the data.
struct Ctx<'a> {
    data: &'a ReportData<'a>,
    summary: Summary<'a>,
    primary: BTreeMap<(&'a str, usize), &'a MeasuredReading>,
    /// Timepoint indices with at least one reading (the baseline always), window order.
    active: Vec<usize>,
    baseline: usize,
    patients: Vec<String>,
}

impl<'a> Ctx<'a> {
    fn tp(&self, t: usize) -> &str {
        self.data.timepoints.get(t).map_or("?", String::as_str)
    }

    fn value(&self, pid: &str, t: usize, m: Metric) -> Option<f64> {
        self.primary.get(&(pid, t)).and_then(|r| r.metrics.get(m))
    }

    fn later(&self) -> Vec<usize> {
        self.active
            .iter()
            .copied()
            .filter(|&t| t != self.baseline)
            .collect()
    }
}

/// The report as one self-contained HTML document.
pub fn report_html(data: &ReportData) -> String {
    let baseline = data.baseline.min(data.timepoints.len().saturating_sub(1));
    let with_readings: BTreeSet<usize> = data.readings.iter().map(|r| r.timepoint_index).collect();
    let active: Vec<usize> = (0..data.timepoints.len())
        .filter(|t| *t == baseline || with_readings.contains(t))
        .collect();
    let patients: Vec<String> = data
        .readings
        .iter()
        .map(|r| r.patient_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let ctx = Ctx {
        data,
        summary: Summary::new(data.summary),
        primary: primary_readings(data.readings),
        active,
        baseline,
        patients,
    };

    let mut h = String::with_capacity(256 * 1024);
    let title = esc(&data.title);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"Plumbline {}\">\n<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&data.tool_version)
    );
    // The study-design sections with data come after the plots (section 4), numbered on.
    let designs = designs::sections(&ctx);
    let design_links: String = designs
        .iter()
        .map(|d| format!("<a href=\"#{}\">{}</a>", d.id, d.nav))
        .collect();
    let _ = write!(
        h,
        "<header>\n<h1>{title}</h1>\n<p class=\"sub\">Spinal alignment from radiograph landmarks: \
         imbalance before surgery, its types and shift directions, and recovery after surgery, \
         in the form of Wang et al. 2022 (J Pain Res, doi 10.2147/JPR.S341317).</p>\n\
         <nav><a href=\"#findings\">Key findings</a><a href=\"#cohort\">Cohort</a>\
         <a href=\"#imbalance\">Imbalance</a><a href=\"#metrics\">Metrics</a>\
         <a href=\"#plots\">Plots</a>{design_links}<a href=\"#patients\">Patients</a>\
         <a href=\"#agreement\">Agreement</a><a href=\"#plausibility\">Plausibility</a></nav>\n</header>\n"
    );
    findings(&mut h, &ctx);
    cohort(&mut h, &ctx);
    imbalance(&mut h, &ctx);
    metric_tables(&mut h, &ctx);
    plots(&mut h, &ctx);
    let mut number = 5;
    for d in &designs {
        let _ = write!(
            h,
            "<section id=\"{}\">\n<h2>{number}. {}</h2>\n{}</section>\n",
            d.id, d.title, d.body
        );
        number += 1;
    }
    patient_table(&mut h, &ctx, number);
    agreement(&mut h, &ctx, number + 1);
    plausibility(&mut h, &ctx, number + 2);
    let _ = write!(
        h,
        "<footer>\n<p>Plumbline {} &middot; pipeline <b>{}</b> &middot; SHA-256 <code>{}</code></p>\n\
         <p>Input: <code>{}</code>. Statistics as in <code>cohort_summary.csv</code>; each \
         patient is represented by the reading of the reader whose name sorts first (the unnamed \
         reader last). This page is self-contained: it loads nothing and runs no script.</p>\n\
         </footer>\n</body>\n</html>\n",
        esc(&data.tool_version),
        esc(&data.pipeline_name),
        esc(&data.pipeline_sha256),
        esc(&data.input),
    );
    h
}

fn findings(h: &mut String, c: &Ctx) {
    let base = c.tp(c.baseline);
    let s = &c.summary;
    let mut items = Vec::new();
    if let Some(r) = s.get("prevalence", "imbalance", base) {
        let (k, n, v, ci) = proportion(r);
        match v {
            Some(v) => {
                let ci = ci.map_or(String::new(), |(lo, hi)| {
                    format!("; 95% CI {}–{}", fnum(lo * 100.0, 1), pct(hi))
                });
                items.push(format!(
                    "Spinal imbalance at {}: <b>{k}/{n}</b> patients (<b>{}</b>{ci}).",
                    esc(base),
                    pct(v)
                ));
            }
            None => items.push(format!(
                "No patient could be classified at {} (no SVA and C7PL-CSVL).",
                esc(base)
            )),
        }
    }
    let types: Vec<String> = ["sagittal", "coronal", "biplanar"]
        .iter()
        .filter_map(|t| Some(format!("{t} {}", proportion_text(s.get("type", t, base))?)))
        .collect();
    if !types.is_empty() {
        items.push(format!("Types among the imbalanced: {}.", types.join(", ")));
    }
    if let Some(a) = proportion_text(s.get("coronal_shift", "away", base)) {
        items.push(format!(
            "Coronal shift away from the herniated side: {a} of coronal shifts."
        ));
    }
    if let Some(f) = proportion_text(s.get("sagittal_shift", "forward", base)) {
        items.push(format!("Sagittal shift forward: {f} of sagittal shifts."));
    }
    let rec: Vec<String> = c
        .later()
        .iter()
        .filter_map(|&t| {
            let name = c.tp(t);
            Some(format!(
                "{} {}",
                esc(name),
                proportion_text(s.get("recovery", "balanced", name))?
            ))
        })
        .collect();
    if !rec.is_empty() {
        items.push(format!(
            "Balanced again after surgery (of those imbalanced at {}): {}.",
            esc(base),
            rec.join(", ")
        ));
    }
    h.push_str("<section id=\"findings\" class=\"findings\">\n<b>Key findings</b>\n<ul>\n");
    if items.is_empty() {
        h.push_str("<li>No statistics: no patient had a reading.</li>\n");
    }
    for i in items {
        let _ = writeln!(h, "<li>{i}</li>");
    }
    h.push_str("</ul>\n</section>\n");
}

fn cohort(h: &mut String, c: &Ctx) {
    h.push_str("<section id=\"cohort\">\n<h2>1. Cohort</h2>\n<table class=\"kv\">\n");
    for (k, v) in cohort_rows(c) {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    h.push_str("</table>\n</section>\n");
}

/// The rows of the cohort table: label and value, both HTML.
fn cohort_rows(c: &Ctx) -> Vec<(&'static str, String)> {
    let d = c.data;
    let studies: BTreeSet<&str> = d.readings.iter().map(|r| r.study_uid.as_str()).collect();
    let mut per_tp = Vec::new();
    for (t, name) in d.timepoints.iter().enumerate() {
        let n = c.primary.keys().filter(|(_, tt)| *tt == t).count();
        per_tp.push(format!("{} {n}", esc(name)));
    }
    let sev = |s: Severity| d.qc.iter().filter(|i| i.severity == s).count();
    vec![
        ("Input folder", format!("<code>{}</code>", esc(&d.input))),
        (
            "Files scanned",
            format!(
                "{} <span class=\"small\">({} radiographs, {} landmark files)</span>",
                d.files, d.images, d.landmark_files
            ),
        ),
        ("Patients with a reading", c.patients.len().to_string()),
        ("Studies read", studies.len().to_string()),
        ("Readers", readers_text(d)),
        (
            "Readings <span class=\"small\">(patient × timepoint × reader)</span>",
            d.readings.len().to_string(),
        ),
        ("Patients per timepoint", per_tp.join(" &middot; ")),
        (
            "QC problems",
            format!(
                "{} <span class=\"small\">({} errors, {} warnings, {} info; details in qc.csv)</span>",
                d.qc.len(),
                sev(Severity::Error),
                sev(Severity::Warning),
                sev(Severity::Info)
            ),
        ),
        ("Most frequent QC codes", top_qc_codes(d)),
    ]
}

/// The number of named readers with the first 8 names, and a note when some readings
/// have no reader name.
fn readers_text(d: &ReportData) -> String {
    let readers: BTreeSet<&str> = d
        .readings
        .iter()
        .map(|r| r.observer.as_str())
        .filter(|o| !o.is_empty())
        .collect();
    let unnamed = d.readings.iter().any(|r| r.observer.is_empty());
    let reader_names: Vec<String> = readers.iter().take(8).map(|r| esc(r)).collect();
    let mut reader_text = format!("{}", readers.len());
    if !readers.is_empty() {
        let more = if readers.len() > 8 { ", …" } else { "" };
        let _ = write!(
            reader_text,
            " <span class=\"small\">({}{more})</span>",
            reader_names.join(", ")
        );
    }
    if unnamed {
        reader_text.push_str(" <span class=\"small\">+ readings without a reader name</span>");
    }
    reader_text
}

/// The 6 most frequent QC codes with their counts (ties by code), or `none`.
fn top_qc_codes(d: &ReportData) -> String {
    let mut codes: BTreeMap<&str, usize> = BTreeMap::new();
    for i in d.qc {
        *codes.entry(i.code).or_default() += 1;
    }
    let mut codes: Vec<(&str, usize)> = codes.into_iter().collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = codes
        .iter()
        .take(6)
        .map(|(code, n)| format!("<code>{}</code> {n}", esc(code)))
        .collect();
    if top.is_empty() {
        "none".into()
    } else {
        top.join(" &middot; ")
    }
}

fn imbalance(h: &mut String, c: &Ctx) {
    h.push_str("<section id=\"imbalance\">\n<h2>2. Spinal imbalance</h2>\n");
    let _ = writeln!(
        h,
        "<p class=\"note\">Sagittal imbalance: |SVA| above the pipeline's threshold; coronal: \
         |C7PL-CSVL| above its threshold; biplanar: both. Shares with 95% Wilson intervals; \
         N is the number of patients the share rests on.</p>"
    );
    h.push_str(
        "<table class=\"imb\">\n<thead><tr><th>Finding</th><th class=\"n\">n/N</th><th class=\"n\">%</th>\
         <th class=\"n\">95% CI</th></tr></thead>\n<tbody>\n",
    );
    imbalance_rows(h, c);
    h.push_str("</tbody>\n</table>\n");
    omitted_note(h, c);
    h.push_str("</section>\n");
}

/// A group heading row of the imbalance table.
fn imbalance_group(h: &mut String, text: &str) {
    let _ = writeln!(h, "<tr class=\"grp\"><td colspan=\"4\">{text}</td></tr>");
}

/// A share row of the imbalance table.
fn imbalance_row(h: &mut String, label: &str, r: Option<&SummaryRow>) {
    let _ = writeln!(
        h,
        "<tr><td class=\"ind\">{label}</td>{}</tr>",
        proportion_cells(r)
    );
}

/// The rows of the imbalance table: prevalence, type, shifts, recovery.
fn imbalance_rows(h: &mut String, c: &Ctx) {
    let base = c.tp(c.baseline);
    let b = esc(base);
    let s = &c.summary;
    imbalance_group(
        h,
        &format!("Prevalence at {b} (patients whose type is known)"),
    );
    imbalance_row(
        h,
        "Spinal imbalance",
        s.get("prevalence", "imbalance", base),
    );
    imbalance_group(h, "Type (among the imbalanced)");
    for (t, label) in [
        ("sagittal", "Sagittal"),
        ("coronal", "Coronal"),
        ("biplanar", "Biplanar"),
    ] {
        imbalance_row(
            h,
            &format!("<span class=\"badge t-{t}\">{label}</span>"),
            s.get("type", t, base),
        );
    }
    imbalance_group(
        h,
        "Coronal shift of C7 vs herniated side <span class=\"small\">(coronal and biplanar \
         cases with a left or right herniation and a signed C7PL-CSVL: an AP view without \
         left/right orientation gives none)</span>",
    );
    imbalance_row(
        h,
        "Away from the herniated side",
        s.get("coronal_shift", "away", base),
    );
    imbalance_row(
        h,
        "Toward the herniated side",
        s.get("coronal_shift", "toward", base),
    );
    imbalance_group(h, "Sagittal shift (sagittal and biplanar)");
    imbalance_row(
        h,
        "Forward (SVA &gt; 0)",
        s.get("sagittal_shift", "forward", base),
    );
    imbalance_row(
        h,
        "Backward (SVA &lt; 0)",
        s.get("sagittal_shift", "backward", base),
    );
    imbalance_group(
        h,
        &format!("Recovery: balanced after surgery (among the imbalanced at {b})"),
    );
    for t in c.later() {
        let name = c.tp(t);
        imbalance_row(
            h,
            &format!("At {}", esc(name)),
            s.get("recovery", "balanced", name),
        );
    }
}

fn omitted_note(h: &mut String, c: &Ctx) {
    let omitted: Vec<String> = (0..c.data.timepoints.len())
        .filter(|t| !c.active.contains(t))
        .map(|t| esc(c.tp(t)))
        .collect();
    if !omitted.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">No readings at {}: left out of the tables and plots.</p>",
            omitted.join(", ")
        );
    }
}

/// Metrics with at least one value in the primary readings.
fn metrics_with_values(c: &Ctx) -> Vec<Metric> {
    Metric::all()
        .into_iter()
        .filter(|&m| c.primary.values().any(|r| r.metrics.get(m).is_some()))
        .collect()
}

fn metric_tables(h: &mut String, c: &Ctx) {
    let metrics = metrics_with_values(c);
    h.push_str("<section id=\"metrics\">\n<h2>3. Alignment metrics by timepoint</h2>\n");
    if metrics.is_empty() {
        h.push_str("<p>No metric could be computed.</p>\n</section>\n");
        return;
    }
    mean_sd_table(h, c, &metrics);
    let later = c.later();
    if later.is_empty() {
        h.push_str("<p class=\"note\">No timepoint after the baseline: no paired comparison.</p>\n</section>\n");
        return;
    }
    change_table(h, c, &metrics, &later);
    h.push_str("</section>\n");
}

/// The table of mean ± SD (n) per metric and timepoint.
fn mean_sd_table(h: &mut String, c: &Ctx, metrics: &[Metric]) {
    let s = &c.summary;
    h.push_str("<h3>Mean ± SD <span class=\"small\">(patients)</span></h3>\n<div class=\"wide\"><table>\n<thead><tr><th>Metric</th>");
    for &t in &c.active {
        let _ = write!(h, "<th class=\"n\">{}</th>", esc(c.tp(t)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for &m in metrics {
        let name = m.name();
        let _ = write!(h, "<tr><td>{}</td>", esc(&metric_title(m)));
        for &t in &c.active {
            let tp = c.tp(t);
            let mean = s.get("descriptive", &format!("{name}_mean"), tp);
            let sd = s.get("descriptive", &format!("{name}_sd"), tp);
            let cell = match mean.and_then(|r| r.value.map(|v| (v, r.n))) {
                Some((v, n)) => {
                    let sd = sd
                        .and_then(|r| r.value)
                        .map_or(String::new(), |x| format!(" ± {}", fnum(x, 1)));
                    format!("{}{sd} <span class=\"small\">({n})</span>", fnum(v, 1))
                }
                None => "–".into(),
            };
            let _ = write!(h, "<td class=\"n\">{cell}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// The table of the paired change from the baseline per metric and later timepoint.
fn change_table(h: &mut String, c: &Ctx, metrics: &[Metric], later: &[usize]) {
    let base = esc(c.tp(c.baseline));
    let _ = write!(
        h,
        "<h3>Change from {base} (paired)</h3>\n<p class=\"note\">Each cell: mean change \
         (later minus {base}) with its 95% CI and the paired t-test p; below, the median change \
         and the Wilcoxon signed-rank p; in brackets the number of pairs. p &lt; 0.05 in bold.</p>\n\
         <div class=\"wide\"><table>\n<thead><tr><th>Metric</th>"
    );
    for &t in later {
        let _ = write!(h, "<th>{} vs {base}</th>", esc(c.tp(t)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for &m in metrics {
        let _ = write!(h, "<tr><td>{}</td>", esc(&metric_title(m)));
        for &t in later {
            let _ = write!(h, "<td>{}</td>", change_cell(c, &m.name(), c.tp(t)));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// One cell of the change table: the mean change with its CI, t-test p and n, and below
/// the median change with the Wilcoxon p.
fn change_cell(c: &Ctx, name: &str, tp: &str) -> String {
    let s = &c.summary;
    let ch = s.get("paired", &format!("{name}_change"), tp);
    let wil = s.get("paired", &format!("{name}_wilcoxon"), tp);
    match ch.and_then(|r| r.value.map(|v| (v, r))) {
        Some((v, r)) => {
            let dec = change_decimals(r);
            let ci = r.ci_low.zip(r.ci_high).map_or(String::new(), |(lo, hi)| {
                format!(" [{}, {}]", fnum(lo, dec), fnum(hi, dec))
            });
            let med = wil
                .and_then(|w| w.value)
                .map_or("–".into(), |x| fnum(x, dec));
            format!(
                "<span class=\"seq\">{}{ci}; {}</span> <span class=\"small\">({})</span><br>\
                 <span class=\"small\">median {med}; {}</span>",
                fnum(v, dec),
                p_html("p", r.p_value),
                r.n,
                p_html("Wilcoxon p", wil.and_then(|w| w.p_value)),
            )
        }
        None => "–".into(),
    }
}

/// A p value after its label (none when `label` is empty), bold below 0.05.
fn p_html(label: &str, p: Option<f64>) -> String {
    let sep = if label.is_empty() { "" } else { " " };
    match p {
        Some(p) if p < 0.05 => format!("<span class=\"sig\">{label}{sep}{}</span>", fmt_p(p)),
        Some(p) => format!("{label}{sep}{}", fmt_p(p)),
        None => format!("{label}{sep}–"),
    }
}

/// Decimals for a mean change: enough that its 95% CI does not read `[0.0, 0.0]`
/// (1 when the half-width is at least 1, up to 3).
fn change_decimals(r: &SummaryRow) -> usize {
    let half = r
        .ci_low
        .zip(r.ci_high)
        .map_or(1.0, |(lo, hi)| (hi - lo).abs() / 2.0);
    if half >= 1.0 {
        1
    } else if half >= 0.1 {
        2
    } else {
        3
    }
}

fn type_color(t: Option<ImbalanceType>) -> RGBColor {
    match t {
        Some(ImbalanceType::Balanced) => RGBColor(0x7d, 0x87, 0x91),
        Some(ImbalanceType::Sagittal) => RGBColor(0xd9, 0x82, 0x2b),
        Some(ImbalanceType::Coronal) => RGBColor(0x2b, 0x7b, 0xd9),
        Some(ImbalanceType::Biplanar) => RGBColor(0xc0, 0x39, 0x2b),
        None => RGBColor(0xa7, 0xae, 0xb5),
    }
}

/// Removes the one absolute URL plotters writes (the SVG namespace, which inline SVG in
/// HTML does not need) and labels the figure for screen readers.
fn clean_svg(svg: &str, label: &str) -> String {
    let svg = svg.replacen(
        " xmlns=\"http://www.w3.org/2000/svg\"",
        &format!(" role=\"img\" aria-label=\"{}\"", esc(label)),
        1,
    );
    // Whatever plotters might add in a later version, nothing may point outside the page.
    if svg.contains("://") || svg.contains("href") || svg.contains("url(") {
        return format!(
            "<p class=\"note\">Plot of {} left out: the plotting library emitted an external reference.</p>",
            esc(label)
        );
    }
    svg
}

/// Y range over values with a margin; includes 0 when `zero` (signed metrics).
fn y_range(vals: impl Iterator<Item = f64>, zero: bool) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return None;
    }
    if zero {
        lo = lo.min(0.0);
        hi = hi.max(0.0);
    }
    let pad = ((hi - lo) * 0.08).max(1.0);
    Some((lo - pad, hi + pad))
}

/// The x axis of the plots: timepoint `i` at `x = i`, from -0.5 to `n - 0.5`, with a tick
/// at each timepoint and nowhere else.
struct TimepointAxis(usize);

impl Ranged for TimepointAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let f = (value + 0.5) / self.0.max(1) as f64;
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            (0..self.0).map(|i| i as f64).collect()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        -0.5..self.0 as f64 - 0.5
    }
}

type Chart<'b, 'c> = ChartContext<'c, SVGBackend<'b>, Cartesian2d<TimepointAxis, RangedCoordf64>>;

/// Draws a chart with one x position per label into a string.
fn draw_chart(
    labels: &[String],
    y: (f64, f64),
    y_desc: &str,
    body: &dyn Fn(&mut Chart) -> Result<(), String>,
) -> Result<String, String> {
    draw_chart_sized(labels, y, y_desc, (PLOT_W, PLOT_H), body)
}

/// [`draw_chart`] of `size` pixels.
fn draw_chart_sized(
    labels: &[String],
    y: (f64, f64),
    y_desc: &str,
    size: (u32, u32),
    body: &dyn Fn(&mut Chart) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(12)
            .margin_right(16)
            .margin_left(6)
            .margin_bottom(6)
            .x_label_area_size(34)
            .y_label_area_size(58)
            .build_cartesian_2d(TimepointAxis(labels.len()), y.0..y.1)
            .map_err(|e| e.to_string())?;
        let fmt_x = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_max_light_lines(1)
            .light_line_style(RGBColor(0xf3, 0xf5, 0xf7))
            .bold_line_style(RGBColor(0xe3, 0xe7, 0xeb))
            .axis_style(RGBColor(0x88, 0x90, 0x98))
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&|v: &f64| fnum(*v, 0))
            .y_labels(7)
            .y_desc(y_desc)
            .label_style(
                ("sans-serif", 15)
                    .into_font()
                    .color(&RGBColor(0x33, 0x3a, 0x40)),
            )
            .axis_desc_style(("sans-serif", 15))
            .draw()
            .map_err(|e| e.to_string())?;
        body(&mut chart)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Quartiles by linear interpolation (R type 7), Tukey whiskers, outliers.
struct BoxStats {
    q1: f64,
    median: f64,
    q3: f64,
    whisker_lo: f64,
    whisker_hi: f64,
    outliers: Vec<f64>,
    mean: f64,
}

fn box_stats(vals: &[f64]) -> Option<BoxStats> {
    if vals.is_empty() {
        return None;
    }
    let mut s = vals.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let r = p * (s.len() - 1) as f64;
        let (i, f) = (r.floor() as usize, r - r.floor());
        if i + 1 < s.len() {
            s[i] + (s[i + 1] - s[i]) * f
        } else {
            s[i]
        }
    };
    let (q1, median, q3) = (q(0.25), q(0.5), q(0.75));
    let iqr = q3 - q1;
    let (flo, fhi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
    let inside: Vec<f64> = s
        .iter()
        .copied()
        .filter(|v| *v >= flo && *v <= fhi)
        .collect();
    Some(BoxStats {
        q1,
        median,
        q3,
        whisker_lo: inside.first().copied().unwrap_or(q1),
        whisker_hi: inside.last().copied().unwrap_or(q3),
        outliers: s.iter().copied().filter(|v| *v < flo || *v > fhi).collect(),
        mean: s.iter().sum::<f64>() / s.len() as f64,
    })
}

/// One patient's line: the type at baseline and the (x, value) points.
type PatientLine = (Option<ImbalanceType>, Vec<(f64, f64)>);

/// The paired-line plot and the box plot of one metric.
fn metric_plots(c: &Ctx, m: Metric) -> Option<(String, String)> {
    let tps = &c.active;
    let mut lines = patient_lines(c, m);
    let zero = matches!(m, Metric::SvaMm | Metric::C7plCsvlMm | Metric::PiLlDeg);
    let y = y_range(lines.iter().flat_map(|(_, p)| p.iter().map(|v| v.1)), zero)?;
    // Balanced and unknown first, so the imbalanced lie on top.
    lines.sort_by_key(|(k, _)| match k {
        Some(ImbalanceType::Balanced) => 0,
        None => 1,
        _ => 2,
    });
    let per_tp: Vec<Vec<f64>> = tps
        .iter()
        .map(|&t| c.patients.iter().filter_map(|p| c.value(p, t, m)).collect())
        .collect();
    let labels: Vec<String> = tps.iter().map(|&t| c.tp(t).to_string()).collect();
    let box_labels: Vec<String> = labels
        .iter()
        .zip(&per_tp)
        .map(|(l, v)| format!("{l} (n={})", v.len()))
        .collect();
    let title = metric_title(m);
    let many = c.patients.len() > 60;

    let paired = draw_chart(&labels, y, &title, &|chart| {
        if zero {
            zero_line(chart, labels.len())?;
        }
        for (kind, pts) in &lines {
            patient_line(chart, *kind, pts, many)?;
        }
        mean_line(chart, &per_tp)
    });
    let boxes = draw_chart(&box_labels, y, &title, &|chart| {
        if zero {
            zero_line(chart, box_labels.len())?;
        }
        for (x, vals) in per_tp.iter().enumerate() {
            if let Some(b) = box_stats(vals) {
                box_plot(chart, x as f64, &b)?;
            }
        }
        Ok(())
    });
    let fail = |what: &str, e: String| {
        format!(
            "<p class=\"note\">The {what} of {} could not be drawn: {}</p>",
            esc(&title),
            esc(&e)
        )
    };
    let paired = paired.map_or_else(
        |e| fail("paired plot", e),
        |s| clean_svg(&s, &format!("{title}: one line per patient")),
    );
    let boxes = boxes.map_or_else(
        |e| fail("box plot", e),
        |s| clean_svg(&s, &format!("{title}: box plot by timepoint")),
    );
    Some((paired, boxes))
}

/// Per patient: the type at baseline and the (x, value) points of `m` over the active
/// timepoints.
fn patient_lines(c: &Ctx, m: Metric) -> Vec<PatientLine> {
    c.patients
        .iter()
        .map(|pid| {
            let kind = c
                .primary
                .get(&(pid.as_str(), c.baseline))
                .and_then(|r| r.class.kind);
            let pts = c
                .active
                .iter()
                .enumerate()
                .filter_map(|(x, &t)| Some((x as f64, c.value(pid, t, m)?)))
                .collect();
            (kind, pts)
        })
        .collect()
}

/// The horizontal line at 0 across `n` timepoints (signed metrics).
fn zero_line(chart: &mut Chart, n: usize) -> Result<(), String> {
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(-0.5, 0.0), (n as f64 - 0.5, 0.0)],
            RGBColor(0x55, 0x5d, 0x66).stroke_width(1),
        )))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// One patient's line and points, coloured by the type at baseline; fainter and thinner
/// when balanced or unknown and when there are `many` patients.
fn patient_line(
    chart: &mut Chart,
    kind: Option<ImbalanceType>,
    pts: &[(f64, f64)],
    many: bool,
) -> Result<(), String> {
    let balanced = matches!(kind, Some(ImbalanceType::Balanced) | None);
    let alpha = match (balanced, many) {
        (true, true) => 0.18,
        (true, false) => 0.55,
        (false, true) => 0.7,
        (false, false) => 0.9,
    };
    let color = type_color(kind).mix(alpha);
    let width = if balanced || many { 1 } else { 2 };
    chart
        .draw_series(LineSeries::new(
            pts.iter().copied(),
            color.stroke_width(width),
        ))
        .map_err(|e| e.to_string())?;
    if !many || !balanced {
        chart
            .draw_series(
                pts.iter()
                    .map(|p| Circle::new(*p, if many { 2 } else { 2 + width }, color.filled())),
            )
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The black line of the means per timepoint (timepoints without values skipped).
fn mean_line(chart: &mut Chart, per_tp: &[Vec<f64>]) -> Result<(), String> {
    let means: Vec<(f64, f64)> = per_tp
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(x, v)| (x as f64, v.iter().sum::<f64>() / v.len() as f64))
        .collect();
    chart
        .draw_series(LineSeries::new(
            means.iter().copied(),
            BLACK.stroke_width(3),
        ))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(means.iter().map(|p| Circle::new(*p, 5, BLACK.filled())))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// One box of the key-metric box plot at `x`: box, median, whiskers with caps, outliers
/// and the mean as a cross.
fn box_plot(chart: &mut Chart, x: f64, b: &BoxStats) -> Result<(), String> {
    let edge = RGBColor(0x1f, 0x5f, 0x8b);
    let (hw, cap) = (0.22, 0.1);
    let mut shapes: Vec<PathElement<(f64, f64)>> = vec![
        PathElement::new(vec![(x, b.whisker_lo), (x, b.q1)], edge.stroke_width(1)),
        PathElement::new(vec![(x, b.q3), (x, b.whisker_hi)], edge.stroke_width(1)),
        PathElement::new(
            vec![(x - cap, b.whisker_lo), (x + cap, b.whisker_lo)],
            edge.stroke_width(1),
        ),
        PathElement::new(
            vec![(x - cap, b.whisker_hi), (x + cap, b.whisker_hi)],
            edge.stroke_width(1),
        ),
    ];
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x - hw, b.q1), (x + hw, b.q3)],
            RGBColor(0xcf, 0xe0, 0xee).filled(),
        )))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x - hw, b.q1), (x + hw, b.q3)],
            edge.stroke_width(1),
        )))
        .map_err(|e| e.to_string())?;
    shapes.push(PathElement::new(
        vec![(x - hw, b.median), (x + hw, b.median)],
        edge.stroke_width(3),
    ));
    chart.draw_series(shapes).map_err(|e| e.to_string())?;
    chart
        .draw_series(
            b.outliers
                .iter()
                .map(|v| Circle::new((x, *v), 3, edge.stroke_width(1))),
        )
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(std::iter::once(Cross::new(
            (x, b.mean),
            4,
            BLACK.stroke_width(2),
        )))
        .map_err(|e| e.to_string())?;
    Ok(())
}

fn plots(h: &mut String, c: &Ctx) {
    h.push_str("<section id=\"plots\">\n<h2>4. Key metrics: patients and distributions</h2>\n");
    h.push_str(
        "<p class=\"legend\">Left: one line per patient (primary reading), coloured by the \
         type at baseline:<span class=\"sw t-balanced\"></span>balanced\
         <span class=\"sw t-sagittal\"></span>sagittal<span class=\"sw t-coronal\"></span>coronal\
         <span class=\"sw t-biplanar\"></span>biplanar<span class=\"sw t-unknown\"></span>not \
         classifiable<span class=\"sw t-mean\"></span>mean. Right: box plots (median, \
         quartiles, whiskers to the furthest value within 1.5 IQR, circles beyond, × the \
         mean).</p>\n",
    );
    for m in KEY_METRICS {
        let name = m.name();
        let _ = writeln!(h, "<h3 id=\"metric-{name}\">{}</h3>", esc(&metric_title(m)));
        match metric_plots(c, m) {
            Some((paired, boxes)) => {
                let _ = write!(
                    h,
                    "<div class=\"plots\">\n<figure id=\"plot-{name}-paired\">\n{paired}<figcaption>{} per patient across timepoints</figcaption></figure>\n\
                     <figure id=\"plot-{name}-box\">\n{boxes}<figcaption>{} by timepoint</figcaption></figure>\n</div>\n",
                    esc(&metric_label(m).0),
                    esc(&metric_label(m).0),
                );
            }
            None => {
                h.push_str("<p class=\"note\">No values.</p>\n");
            }
        }
    }
    h.push_str("</section>\n");
}

fn patient_table(h: &mut String, c: &Ctx, number: usize) {
    let d = c.data;
    let _ = writeln!(h, "<section id=\"patients\">\n<h2>{number}. Patients</h2>");
    // Overlays by (patient, timepoint name).
    let mut overlays: OverlaysByVisit = BTreeMap::new();
    for o in d.overlays {
        overlays
            .entry((o.patient_id.as_str(), o.timepoint.as_str()))
            .or_default()
            .push(o);
    }
    let with_overlays = !d.overlays.is_empty();
    let _ = writeln!(
        h,
        "<p class=\"note\">One row per patient, one line per timepoint ({} is the baseline): \
         the imbalance type and the key metrics of the patient's primary reading (– where not \
         computable).{}</p>",
        esc(c.tp(c.baseline)),
        if with_overlays {
            " The last column links the QC overlay of each view (landmarks and construction lines \
             drawn on the radiograph), per reader."
        } else {
            " <b>Overlays were not rendered</b> for this run, so there are no image links."
        }
    );
    h.push_str(
        "<div class=\"wide\"><table class=\"pt\">\n<thead><tr><th>Patient</th>\
         <th>Timepoint</th><th>Type</th>",
    );
    for m in KEY_METRICS {
        let _ = write!(h, "<th class=\"n\">{}</th>", esc(&metric_title(m)));
    }
    if with_overlays {
        h.push_str("<th>Overlays</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for pid in &c.patients {
        patient_row(h, c, pid, with_overlays.then_some(&overlays));
    }
    h.push_str("</tbody>\n</table></div>\n</section>\n");
}

/// Overlay links by (patient, timepoint name).
type OverlaysByVisit<'a> = BTreeMap<(&'a str, &'a str), Vec<&'a OverlayLink>>;

/// One patient's row: one line per active timepoint in every cell; the overlay cell only
/// when overlays were rendered.
fn patient_row(h: &mut String, c: &Ctx, pid: &str, overlays: Option<&OverlaysByVisit>) {
    let lines = |v: Vec<String>| -> String {
        v.into_iter()
            .map(|x| format!("<div class=\"l\">{x}</div>"))
            .collect()
    };
    let _ = write!(
        h,
        "<tr id=\"patient-{}\"><td><b>{}</b></td>",
        href_encode(pid),
        esc(pid)
    );
    let tps = &c.active;
    let _ = write!(
        h,
        "<td>{}</td>",
        lines(tps.iter().map(|&t| esc(c.tp(t))).collect())
    );
    let types = tps
        .iter()
        .map(|&t| match c.primary.get(&(pid, t)) {
            Some(r) => badge(r.class.kind),
            None => "<span class=\"badge t-none\">no reading</span>".into(),
        })
        .collect();
    let _ = write!(h, "<td>{}</td>", lines(types));
    for m in KEY_METRICS {
        let vals = tps
            .iter()
            .map(|&t| c.value(pid, t, m).map_or("–".into(), |v| fnum(v, 1)))
            .collect();
        let _ = write!(h, "<td class=\"n\">{}</td>", lines(vals));
    }
    if let Some(overlays) = overlays {
        let cells = tps
            .iter()
            .map(|&t| overlay_line(overlays.get(&(pid, c.tp(t))), c.tp(t)))
            .collect();
        let _ = write!(h, "<td>{}</td>", lines(cells));
    }
    h.push_str("</tr>\n");
}

/// The overlay links of one patient and timepoint: `lat · AP reader`, per reader.
fn overlay_line(links: Option<&Vec<&OverlayLink>>, timepoint: &str) -> String {
    let Some(links) = links else {
        return "<span class=\"small\">–</span>".into();
    };
    let observers: BTreeSet<&str> = links.iter().map(|o| o.observer.as_str()).collect();
    let mut groups = Vec::new();
    for obs in observers {
        let who = if obs.is_empty() {
            "no reader name"
        } else {
            obs
        };
        let mut parts = Vec::new();
        for o in links.iter().filter(|o| o.observer == obs) {
            let text = match o.view.to_ascii_lowercase().as_str() {
                "lateral" => "lat".to_string(),
                "ap" => "AP".to_string(),
                v => esc(v),
            };
            parts.push(format!(
                "<a href=\"{}\" title=\"{} {} overlay, {}\">{text}</a>",
                href_encode(&o.href),
                esc(timepoint),
                esc(&o.view),
                esc(who)
            ));
        }
        groups.push(format!(
            "{} <span class=\"small\">{}</span>",
            parts.join(" &middot; "),
            esc(if obs.is_empty() { "" } else { obs })
        ));
    }
    groups.join(" &ensp; ")
}

/// The last section: every reading that failed a plausibility check (landmarks.md section 7),
/// with its checks, the QC messages that give the landmarks and values, and its overlays.
fn plausibility(h: &mut String, c: &Ctx, number: usize) {
    let d = c.data;
    let _ = writeln!(
        h,
        "<section id=\"plausibility\">\n<h2>{number}. Plausibility of the landmark sets</h2>"
    );
    let bad: Vec<&MeasuredReading> = d
        .readings
        .iter()
        .filter(|r| r.plausibility.as_ref().is_some_and(|p| !p.is_empty()))
        .collect();
    let assessed = d
        .readings
        .iter()
        .filter(|r| r.plausibility.is_some())
        .count();
    let _ = writeln!(
        h,
        "<p class=\"note\">Each landmark set is checked for gross errors (vertebrae in \
         head-to-foot order, superior corners above inferior ones, anterior/left corners on \
         their side, femoral heads below S1, one reader's pelvic incidence stable across \
         timepoints). The metrics of a reading that fails are still computed; its overlay rings \
         the landmarks at fault in red. {} of {assessed} readings failed a check.</p>",
        bad.len()
    );
    if bad.is_empty() {
        h.push_str("</section>\n");
        return;
    }
    h.push_str(
        "<table>\n<tr><th>Patient</th><th>Timepoint</th><th>Reader</th><th>Failed checks</th>\
         <th>Why</th><th>Overlays</th></tr>\n",
    );
    for r in bad {
        plausibility_row(h, d, r);
    }
    h.push_str("</table>\n</section>\n");
}

/// The row of one reading that failed a plausibility check.
fn plausibility_row(h: &mut String, d: &ReportData, r: &MeasuredReading) {
    let links: Vec<&OverlayLink> = d
        .overlays
        .iter()
        .filter(|o| {
            o.patient_id == r.patient_id && o.timepoint == r.timepoint && o.observer == r.observer
        })
        .collect();
    let _ = writeln!(
        h,
        "<tr><td><a href=\"#patient-{}\">{}</a></td><td>{}</td><td>{}</td><td><code>{}</code></td>\
         <td class=\"small\">{}</td><td>{}</td></tr>",
        esc(&r.patient_id),
        esc(&r.patient_id),
        esc(&r.timepoint),
        esc(if r.observer.is_empty() {
            "–"
        } else {
            &r.observer
        }),
        esc(&r.plausibility_text()),
        plausibility_why(d, r).join("<br>"),
        if links.is_empty() {
            "<span class=\"small\">–</span>".to_string()
        } else {
            overlay_line(Some(&links), &r.timepoint)
        }
    );
}

/// The QC messages (escaped) of the failed checks of one reading.
fn plausibility_why(d: &ReportData, r: &MeasuredReading) -> Vec<String> {
    let who = if r.observer.is_empty() {
        "the unnamed reader".to_string()
    } else {
        format!("reader `{}`", r.observer)
    };
    // The messages of crates/export/src/plausibility.rs: a view's check names
    // "(lateral view, preop, reader `X`)", a PI jump "(reader `X`)" and
    // "... deg at preop and ... deg at m3 (...".
    let view = format!(" view, {}, {who}): ", r.timepoint);
    let pi = format!("{} ({who}): ", Check::PiJump);
    let at = |end: &str| format!(" deg at {}{end}", r.timepoint);
    d.qc.iter()
        .filter(|i| {
            i.code == plumbline_ingest::qc::codes::IMPLAUSIBLE_LANDMARKS
                && i.patient_id == r.patient_id
                && (i.message.contains(&view)
                    || (i.message.starts_with(&pi)
                        && (i.message.contains(&at(" ")) || i.message.contains(&at(" (")))))
        })
        .map(|i| esc(&i.message))
        .collect()
}

fn agreement(h: &mut String, c: &Ctx, number: usize) {
    let _ = writeln!(
        h,
        "<section id=\"agreement\">\n<h2>{number}. Inter-observer agreement</h2>"
    );
    let rows: Vec<&SummaryRow> = c
        .data
        .summary
        .iter()
        .filter(|r| r.section == "agreement")
        .collect();
    if rows.is_empty() {
        h.push_str(
            "<p class=\"note\">No study was read by two readers: no agreement statistics.</p>\n</section>\n",
        );
        return;
    }
    h.push_str(
        "<p class=\"note\">Studies read by two readers (the first two by name), all \
         timepoints: ICC(2,1) (two-way random, absolute agreement, single rater) and the \
         Bland-Altman bias (first minus second reader) with its 95% limits of agreement.</p>\n\
         <table>\n<thead><tr><th>Metric</th><th class=\"n\">Pairs</th><th class=\"n\">ICC(2,1)</th>\
         <th class=\"n\">Bias</th><th class=\"n\">95% limits of agreement</th></tr></thead>\n<tbody>\n",
    );
    let by_stat: BTreeMap<&str, &SummaryRow> =
        rows.iter().map(|r| (r.statistic.as_str(), *r)).collect();
    for m in Metric::all() {
        let name = m.name();
        let icc = by_stat.get(format!("{name}_icc21").as_str()).copied();
        let ba = by_stat
            .get(format!("{name}_bland_altman").as_str())
            .copied();
        if icc.is_none() && ba.is_none() {
            continue;
        }
        let n = icc.or(ba).map_or(0, |r| r.n);
        if n == 0 {
            continue;
        }
        let icc_text = icc.and_then(|r| r.value).map_or("–".into(), |v| fnum(v, 3));
        let (bias, loa) = match ba {
            Some(r) => (
                r.value.map_or("–".into(), |v| fnum(v, 2)),
                r.ci_low.zip(r.ci_high).map_or("–".into(), |(lo, hi)| {
                    format!("{} to {}", fnum(lo, 2), fnum(hi, 2))
                }),
            ),
            None => ("–".into(), "–".into()),
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{n}</td><td class=\"n\">{icc_text}</td>\
             <td class=\"n\">{bias}</td><td class=\"n\">{loa}</td></tr>",
            esc(&metric_title(m))
        );
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_encodes() {
        assert_eq!(esc("<a&\"b'>"), "&lt;a&amp;&quot;b&#39;&gt;");
        assert_eq!(
            href_encode("overlays/P0001/preop_Reader^Alpha_lateral.png"),
            "overlays/P0001/preop_Reader%5EAlpha_lateral.png"
        );
        assert_eq!(href_encode("http://x/y"), "http%3A//x/y");
        assert_eq!(href_encode("//host/a"), ".//host/a");
        assert_eq!(href_encode("a b/é\"<"), "a%20b/%C3%A9%22%3C");
    }

    #[test]
    fn numbers() {
        assert_eq!(fnum(-0.04, 1), "0.0");
        assert_eq!(fnum(-1.25, 1), "-1.2");
        assert_eq!(fnum(12.5, 1), "12.5");
        assert_eq!(fmt_p(0.0004), "&lt;0.001");
        assert_eq!(fmt_p(0.0123), "0.012");
        assert_eq!(fmt_p(0.8047), "0.80");
        assert_eq!(pct(0.125), "12.5%");
    }

    #[test]
    fn empty_run_gives_a_page() {
        let d = ReportData {
            title: "t".into(),
            tool_version: "0".into(),
            pipeline_name: "p".into(),
            pipeline_sha256: "0".into(),
            input: "in".into(),
            files: 0,
            images: 0,
            landmark_files: 0,
            timepoints: Vec::new(),
            baseline: 3,
            readings: &[],
            summary: &[],
            qc: &[],
            overlays: &[],
            strata: &[],
        };
        let html = report_html(&d);
        assert!(html.contains("No metric could be computed."));
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn tukey_box() {
        let b = box_stats(&[1.0, 2.0, 3.0, 4.0, 100.0]).unwrap();
        assert_eq!((b.q1, b.median, b.q3), (2.0, 3.0, 4.0));
        assert_eq!((b.whisker_lo, b.whisker_hi), (1.0, 4.0));
        assert_eq!(b.outliers, vec![100.0]);
    }
}
