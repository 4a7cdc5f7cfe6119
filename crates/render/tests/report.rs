//! The HTML report of the committed 8-patient cohort: built from the real pipeline pieces,
//! checked for external references and key numbers, and rendered in headless Chromium by
//! `tests/report_chromium.rs`.

use std::path::{Path, PathBuf};

use plumbline_export::tables::{MeasuredReading, SummaryRow, summary_rows};
use plumbline_geometry::{Metric, MetricOptions, Thresholds};
use plumbline_ingest::clinical::read_clinical;
use plumbline_ingest::{QcIssue, ScanOptions, default_windows, group, scan};
use plumbline_render::report::{OverlayLink, ReportData, report_html};

struct Cohort {
    input: PathBuf,
    files: usize,
    images: usize,
    landmark_files: usize,
    timepoints: Vec<String>,
    readings: Vec<MeasuredReading>,
    summary: Vec<SummaryRow>,
    qc: Vec<QcIssue>,
}

/// The assembly of `plumbline run` (crates/cli/src/run.rs) with the default pipeline.
fn cohort() -> Cohort {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cohort-small");
    let input = root.join("dicom");
    let (clinical, clinical_issues) = read_clinical(&root.join("clinical.csv")).unwrap();
    let scanned = scan(&input, &ScanOptions::default(), &|_| {}).unwrap();
    let windows = default_windows();
    let grouped = group(&scanned, Some(&clinical), &windows);
    let (thresholds, options) = (Thresholds::default(), MetricOptions::default());
    let readings: Vec<MeasuredReading> = grouped
        .readings
        .iter()
        .map(|r| MeasuredReading::measure(r, &options, &thresholds))
        .collect();
    let timepoints: Vec<String> = windows.iter().map(|w| w.name.clone()).collect();
    let summary = summary_rows(&readings, &clinical, &timepoints, 0, &Metric::all(), &[]);
    let mut qc: Vec<QcIssue> = clinical_issues;
    qc.extend(scanned.issues.iter().cloned());
    qc.extend(grouped.issues.iter().cloned());
    qc.sort();
    qc.dedup();
    Cohort {
        input,
        files: scanned.counts.files,
        images: scanned.counts.images,
        landmark_files: scanned.counts.srs + scanned.counts.landmark_files,
        timepoints,
        readings,
        summary,
        qc,
    }
}

fn data<'a>(c: &'a Cohort, overlays: &'a [OverlayLink]) -> ReportData<'a> {
    ReportData {
        title: "Plumbline report: cohort-small".into(),
        tool_version: "0.1.0".into(),
        pipeline_name: "default".into(),
        pipeline_sha256: "5e1eab292c426076fc3a50c148d2e8bf2f55e10946d33ef1f633a15b0de8c2f6".into(),
        input: c.input.display().to_string(),
        files: c.files,
        images: c.images,
        landmark_files: c.landmark_files,
        timepoints: c.timepoints.clone(),
        baseline: 0,
        readings: &c.readings,
        summary: &c.summary,
        qc: &c.qc,
        overlays,
        strata: &[],
    }
}

/// One overlay link per view of each reading, as the CLI lays them out.
fn overlay_links(c: &Cohort) -> Vec<OverlayLink> {
    let mut out = Vec::new();
    for r in &c.readings {
        for view in ["lateral", "ap"] {
            out.push(OverlayLink {
                patient_id: r.patient_id.clone(),
                timepoint: r.timepoint.clone(),
                observer: r.observer.clone(),
                view: view.into(),
                href: format!(
                    "overlays/{}/{}_{}_{view}.png",
                    r.patient_id, r.timepoint, r.observer
                ),
            });
        }
    }
    out
}

/// The values of every `attr="..."` in the HTML.
fn attr_values<'h>(html: &'h str, attr: &str) -> Vec<&'h str> {
    let pat = format!("{attr}=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&pat) {
        let after = &rest[i + pat.len()..];
        let end = after.find('"').expect("closed attribute");
        out.push(&after[..end]);
        rest = &after[end..];
    }
    out
}

/// Fails on anything that could make the page load or link outside itself.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "http://",
        "https://",
        "<script",
        "@import",
        "@font-face",
        "<link",
        "<img",
        "<iframe",
        "<object",
        "<embed",
        "javascript:",
    ] {
        assert!(!lower.contains(bad), "report contains {bad:?}");
    }
    for attr in ["href", "src", "xlink:href", "srcset", "action", "poster"] {
        for v in attr_values(&lower, attr) {
            assert!(
                !v.contains("//") && !v.contains(':'),
                "{attr}={v:?} is not a relative link"
            );
        }
    }
    for (i, _) in lower.match_indices("url(") {
        let arg = &lower[i + 4..];
        let arg = &arg[..arg.find(')').unwrap_or(arg.len())];
        assert!(
            !arg.contains("//") && !arg.contains(':'),
            "url({arg}) points outside"
        );
    }
}

#[test]
fn report_of_the_committed_cohort() {
    let c = cohort();
    assert_eq!(c.readings.len(), 44, "the committed cohort has 44 readings");
    let overlays = overlay_links(&c);
    let html = report_html(&data(&c, &overlays));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_self_contained(&html);

    // Cohort table.
    assert!(html.contains("<tr><th>Patients with a reading</th><td>8</td></tr>"));
    assert!(html.contains("<tr><th>Files scanned</th><td>122 "));
    assert!(
        html.contains("<code>no_orientation</code> 17"),
        "top QC code"
    );
    // Imbalance table, Wang 2022 layout: prevalence 1/8 = 12.5%, Wilson 2.2-47.1%.
    assert!(
        html.contains(
            r#"<td class="n">1/8</td><td class="n">12.5%</td><td class="n">2.2–47.1%</td>"#
        ),
        "prevalence row"
    );
    assert!(html.contains("<b>1/8</b> patients (<b>12.5%</b>"));
    for t in ["sagittal", "coronal", "biplanar"] {
        assert!(html.contains(&format!("<span class=\"badge t-{t}\">")));
    }
    assert!(html.contains("Away from the herniated side"));
    assert!(html.contains("Forward (SVA &gt; 0)"));
    for t in ["postop", "m3", "m6"] {
        assert!(html.contains(&format!("<td class=\"ind\">At {t}</td>")));
    }
    // m12 has no readings: left out, and said so.
    assert!(html.contains("No readings at m12"));
    assert!(!html.contains("<td class=\"ind\">At m12</td>"));
    // Descriptive and paired tables: SVA at preop 10.4 ± 32.0 (8); change at postop.
    assert!(html.contains("10.4 ± 32.0 <span class=\"small\">(8)</span>"));
    assert!(html.contains("-3.5 [-35.8, 28.8]; p 0.80"));
    assert!(html.contains("Wilcoxon p 0.95"));
    // One paired-line plot and one box plot per key metric, inline SVG.
    for m in ["sva_mm", "c7pl_csvl_mm", "ll_deg", "pt_deg", "pi_ll_deg"] {
        for kind in ["paired", "box"] {
            let id = format!("<figure id=\"plot-{m}-{kind}\">\n<svg ");
            assert!(html.contains(&id), "no {kind} plot of {m}");
        }
    }
    assert!(html.matches("<svg ").count() >= 10);
    assert!(html.contains("<text"), "plots have axis labels");
    // Patient table: one row per patient, with overlay links.
    for p in 1..=8 {
        assert!(html.contains(&format!("<tr id=\"patient-P000{p}\">")));
    }
    assert!(html.contains("href=\"overlays/P0001/preop_Reader%5EAlpha_lateral.png\""));
    assert!(!html.contains("Overlays were not rendered"));
    // Footer.
    assert!(html.contains("5e1eab292c426076fc3a50c148d2e8bf2f55e10946d33ef1f633a15b0de8c2f6"));
    // Deterministic.
    assert_eq!(html, report_html(&data(&c, &overlays)));
}

#[test]
fn without_overlays_the_patient_table_says_so() {
    let c = cohort();
    let html = report_html(&data(&c, &[]));
    assert_self_contained(&html);
    assert!(html.contains("Overlays were not rendered"));
    assert!(!html.contains("overlays/"));
}

#[test]
fn text_from_the_data_is_escaped() {
    let mut c = cohort();
    let evil_pid = "P<b>&\"1'";
    let evil_obs = "Dr <script>alert(1)</script> & \"Co\"";
    for r in c.readings.iter_mut().filter(|r| r.patient_id == "P0001") {
        r.patient_id = evil_pid.into();
        r.observer = evil_obs.into();
    }
    c.input = PathBuf::from("/data/<archive>&\"x\"");
    c.timepoints[1] = "post<op>".into();
    let overlays = vec![OverlayLink {
        patient_id: evil_pid.into(),
        timepoint: "preop".into(),
        observer: evil_obs.into(),
        view: "lateral".into(),
        href: format!("overlays/{evil_pid}/preop_{evil_obs}_lateral.png"),
    }];
    let mut d = data(&c, &overlays);
    d.title = "Report <i>&</i>".into();
    d.pipeline_name = "p\"<x>".into();
    let html = report_html(&d);
    assert_self_contained(&html);
    for raw in [evil_pid, evil_obs, "<archive>", "post<op>", "<i>", "p\"<x>"] {
        assert!(!html.contains(raw), "{raw:?} is not escaped");
    }
    assert!(html.contains("P&lt;b&gt;&amp;&quot;1&#39;"));
    assert!(html.contains("&lt;archive&gt;&amp;&quot;x&quot;"));
    assert!(html.contains("Report &lt;i&gt;&amp;&lt;/i&gt;"));
    assert!(html.contains(
        "href=\"overlays/P%3Cb%3E%26%221%27/preop_Dr%20%3Cscript%3Ealert%281%29%3C/script%3E%20%26%20%22Co%22_lateral.png\""
    ));
}
