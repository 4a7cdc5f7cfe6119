//! The HTML report of the committed 8-patient cohort: built from the real pipeline pieces,
//! checked for external references and key numbers, and rendered in headless Chromium by
//! `tests/report_chromium.rs`.

use std::path::{Path, PathBuf};

use plumbline_export::analyses::{Strata, StrataSpec, strata};
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
    strata: Vec<Strata>,
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
        .into_iter()
        .map(|r| {
            let m = plumbline_geometry::measure(
                r.lateral.as_ref().map(|v| &v.landmarks),
                r.ap.as_ref().map(|v| &v.landmarks),
                &options,
                &thresholds,
            );
            plumbline_export::tables::Measured::new(r, m).row
        })
        .collect();
    let timepoints: Vec<String> = windows.iter().map(|w| w.name.clone()).collect();
    // Two strata of the clinical table: sex (two groups: Welch and Mann-Whitney) and age in
    // three bins (ANOVA and Kruskal-Wallis).
    let specs = [
        StrataSpec {
            column: "sex".into(),
            edges: None,
            metrics: vec![Metric::SvaMm, Metric::LlDeg],
        },
        StrataSpec {
            column: "age_years".into(),
            edges: Some(vec![35.0, 45.0]),
            metrics: vec![Metric::PtDeg],
        },
    ];
    let strata: Vec<Strata> = specs
        .iter()
        .map(|s| strata(s, &clinical).unwrap())
        .collect();
    let summary = summary_rows(
        &readings,
        &clinical,
        &timepoints,
        0,
        &Metric::all(),
        &strata,
    );
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
        strata,
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
        strata: &c.strata,
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

// Long (over 80 lines): one report, its sections checked in the order they appear.
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
    // Study-design sections of the cohort (one biplanar patient at preop, balanced after).
    for id in ["recovery-types", "schwab", "wedging", "strata"] {
        assert!(html.contains(&format!("<section id=\"{id}\">")), "no {id}");
        assert!(
            html.contains(&format!("<a href=\"#{id}\">")),
            "no nav link to {id}"
        );
    }
    assert!(html.contains("<h2>5. Recovery by pre-op imbalance type</h2>"));
    assert!(html.contains("<h2>9. Patients</h2>"));
    assert!(
        html.contains(
            "<title>Biplanar at postop: 1/1 balanced (100.0%; 95% CI 20.7–100.0%)</title>"
        )
    );
    assert!(html.contains("<title>PI-LL 0 at preop: 6/8 (75.0%; 95% CI 40.9–92.9%)</title>"));
    for fig in [
        "plot-strata-0-sva_mm",
        "plot-strata-0-ll_deg",
        "plot-strata-1-pt_deg",
    ] {
        assert!(
            html.contains(&format!("<figure id=\"{fig}\" class=\"fig-m\">\n<svg ")),
            "no {fig}"
        );
    }
    assert!(
        html.contains(
            "preop: Welch p 0.94, Mann-Whitney p 0.64 <span class=\"small\">(n=8)</span>"
        )
    );
    assert!(html.contains("preop: ANOVA p 0.23, Kruskal-Wallis p 0.22"));
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

// ---------------------------------------------------------------------------------------
// The study-design sections (recovery by type and plane, paired |SVA| and |C7PL-CSVL|,
// SRS-Schwab, wedging, strata) from hand-made rows and readings.

mod designs {
    use std::collections::BTreeMap;

    use plumbline_export::analyses::{Strata, StrataSpec, strata};
    use plumbline_export::stats::wilson;
    use plumbline_export::tables::{MeasuredReading, PerView, SummaryRow, summary_rows};
    use plumbline_geometry::OrientationSource;
    use plumbline_geometry::{Metric, Metrics, Thresholds};
    use plumbline_ingest::SpacingSource;
    use plumbline_ingest::clinical::{ClinicalRow, ClinicalTable};
    use plumbline_render::report::{ReportData, report_html};

    use super::assert_self_contained;

    const NEW_SECTIONS: [&str; 4] = ["recovery-types", "schwab", "wedging", "strata"];

    fn tps() -> Vec<String> {
        ["preop", "postop", "m3"].map(String::from).to_vec()
    }

    /// A reading of `pid` at timepoint `t` of [`tps`] with the given metric values.
    fn reading(pid: &str, t: usize, values: &[(Metric, f64)]) -> MeasuredReading {
        MeasuredReading::new(
            pid.into(),
            tps()[t].clone(),
            t,
            None,
            "R1".into(),
            format!("1.2.{pid}.{t}"),
            Metrics::from_parts(values.iter().copied(), None, None),
            &Thresholds::default(),
            PerView::both(SpacingSource::PixelSpacing),
            PerView::both(OrientationSource::Header),
        )
    }

    /// One reading per patient and timepoint, with LL only: enough for every timepoint to
    /// count as having readings.
    fn readings() -> Vec<MeasuredReading> {
        let mut out = Vec::new();
        for p in 1..=4 {
            for t in 0..3 {
                out.push(reading(
                    &format!("P{p}"),
                    t,
                    &[(Metric::LlDeg, 40.0 + p as f64)],
                ));
            }
        }
        out
    }

    fn share(section: &'static str, stat: &str, tp: &str, k: usize, n: usize) -> SummaryRow {
        let w = wilson(k, n);
        SummaryRow {
            section,
            statistic: stat.into(),
            timepoint: tp.into(),
            n,
            k: Some(k),
            value: w.as_ref().map(|w| w.p),
            ci_low: w.as_ref().map(|w| w.lo),
            ci_high: w.as_ref().map(|w| w.hi),
            p_value: None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        section: &'static str,
        stat: &str,
        tp: &str,
        n: usize,
        value: Option<f64>,
        ci: Option<(f64, f64)>,
        p: Option<f64>,
    ) -> SummaryRow {
        SummaryRow {
            section,
            statistic: stat.into(),
            timepoint: tp.into(),
            n,
            k: None,
            value,
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
            p_value: p,
        }
    }

    fn data<'a>(
        timepoints: Vec<String>,
        readings: &'a [MeasuredReading],
        summary: &'a [SummaryRow],
        strata: &'a [Strata],
    ) -> ReportData<'a> {
        ReportData {
            title: "designs".into(),
            tool_version: "0".into(),
            pipeline_name: "p".into(),
            pipeline_sha256: "0".into(),
            input: "in".into(),
            files: 0,
            images: 0,
            landmark_files: 0,
            timepoints,
            baseline: 0,
            readings,
            summary,
            qc: &[],
            overlays: &[],
            strata,
        }
    }

    /// The text between `<figure id="{id}"` and its `</figure>`.
    fn figure<'h>(html: &'h str, id: &str) -> &'h str {
        let start = html
            .find(&format!("<figure id=\"{id}\""))
            .unwrap_or_else(|| panic!("no figure {id}"));
        let end = start + html[start..].find("</figure>").unwrap();
        &html[start..end]
    }

    /// The texts of every `<title>` in `s`.
    fn titles(s: &str) -> Vec<&str> {
        s.split("<title>")
            .skip(1)
            .map(|t| &t[..t.find("</title>").unwrap()])
            .collect()
    }

    /// The `height` of the tooltip rectangle whose title is `title`.
    fn tip_height(svg: &str, title: &str) -> f64 {
        let end = svg
            .find(&format!("><title>{title}</title>"))
            .unwrap_or_else(|| panic!("no tooltip {title:?}"));
        let rect = &svg[svg[..end].rfind("<rect ").unwrap()..end];
        let h = &rect[rect.find("height=\"").unwrap() + 8..];
        h[..h.find('"').unwrap()].parse().unwrap()
    }

    fn recovery_rows() -> Vec<SummaryRow> {
        let mut rows = Vec::new();
        // by type: sagittal 2/3 then 3/3, coronal 1/2 both times, biplanar 0/1 then 1/1.
        for (stat, post, m3) in [
            ("sagittal", (2, 3), (3, 3)),
            ("coronal", (1, 2), (1, 2)),
            ("biplanar", (0, 1), (1, 1)),
        ] {
            rows.push(share("recovery_by_type", stat, "postop", post.0, post.1));
            rows.push(share("recovery_by_type", stat, "m3", m3.0, m3.1));
        }
        for (stat, post, m3) in [("sagittal", (3, 4), (4, 4)), ("coronal", (1, 3), (2, 3))] {
            rows.push(share("recovery_by_plane", stat, "postop", post.0, post.1));
            rows.push(share("recovery_by_plane", stat, "m3", m3.0, m3.1));
        }
        for tp in ["postop", "m3"] {
            rows.push(row(
                "paired_imbalanced",
                "abs_sva_mm_change",
                tp,
                4,
                Some(-31.25),
                Some((-52.5, -10.0)),
                Some(0.0123),
            ));
            rows.push(row(
                "paired_imbalanced",
                "abs_sva_mm_wilcoxon",
                tp,
                4,
                Some(-28.0),
                None,
                Some(0.125),
            ));
        }
        rows
    }

    #[test]
    fn recovery_by_type_chart_has_three_series_with_their_shares() {
        let readings = readings();
        let summary = recovery_rows();
        let html = report_html(&data(tps(), &readings, &summary, &[]));
        assert_self_contained(&html);
        assert!(html.contains(
            "<section id=\"recovery-types\">\n<h2>5. Recovery by pre-op imbalance type</h2>"
        ));
        assert!(html.contains("<a href=\"#recovery-types\">Recovery by type</a>"));
        let fig = figure(&html, "plot-recovery-type");
        assert!(fig.contains("<svg "));
        // One line per type in the type colours, two points (postop, m3) each.
        for colour in ["#D9822B", "#2B7BD9", "#C0392B"] {
            assert!(
                fig.contains(&format!("stroke=\"{colour}\"")),
                "no {colour} series"
            );
        }
        assert_eq!(
            titles(fig),
            [
                "Sagittal at postop: 2/3 balanced (66.7%; 95% CI 20.8–93.9%)",
                "Sagittal at m3: 3/3 balanced (100.0%; 95% CI 43.9–100.0%)",
                "Coronal at postop: 1/2 balanced (50.0%; 95% CI 9.5–90.5%)",
                "Coronal at m3: 1/2 balanced (50.0%; 95% CI 9.5–90.5%)",
                "Biplanar at postop: 0/1 balanced (0.0%; 95% CI 0.0–79.3%)",
                "Biplanar at m3: 1/1 balanced (100.0%; 95% CI 20.7–100.0%)",
            ]
        );
        // The plane chart: two series; the table has both blocks.
        let plane = figure(&html, "plot-recovery-plane");
        assert_eq!(titles(plane).len(), 4);
        assert!(
            titles(plane).contains(&"Coronal plane at m3: 2/3 balanced (66.7%; 95% CI 20.8–93.9%)")
        );
        assert!(html.contains(
            "<td class=\"n\">2/3 <b>66.7%</b> <span class=\"small\">(20.8–93.9%)</span></td>"
        ));
        // Paired |SVA| within the sagittally imbalanced; |C7PL-CSVL| has no rows: dashes.
        let t = &html[html.find("<table id=\"table-paired-imbalanced\">").unwrap()..];
        let t = &t[..t.find("</table>").unwrap()];
        assert!(t.contains(
            "<td>postop</td><td class=\"n\">4</td><td class=\"n\">-31.2</td>\
             <td class=\"n\">-52.5 to -10.0</td><td class=\"n\"><span class=\"sig\">0.012</span></td>\
             <td class=\"n\">-28.0</td><td class=\"n\">0.12</td>"
        ));
        assert!(t.contains("|C7PL-CSVL| (mm)"));
        // No Schwab, wedging or strata rows: no such sections; numbering goes on.
        for id in ["schwab", "wedging", "strata"] {
            assert!(!html.contains(&format!("id=\"{id}\"")), "{id} without rows");
        }
        assert!(html.contains("<h2>6. Patients</h2>"));
        // Deterministic.
        assert_eq!(html, report_html(&data(tps(), &readings, &summary, &[])));
    }

    #[test]
    fn schwab_bars_stack_the_grade_shares() {
        let readings = readings();
        let mut summary = Vec::new();
        for (g, pre, post) in [("0", 5, 8), ("+", 2, 0), ("++", 1, 0)] {
            summary.push(share(
                "schwab",
                &format!("schwab_pi_ll={g}"),
                "preop",
                pre,
                8,
            ));
            summary.push(share(
                "schwab",
                &format!("schwab_pi_ll={g}"),
                "postop",
                post,
                8,
            ));
            summary.push(share("schwab", &format!("schwab_pi_ll={g}"), "m3", 0, 0));
        }
        // PT known nowhere: no PT chart.
        for g in ["0", "+", "++"] {
            for tp in ["preop", "postop", "m3"] {
                summary.push(share("schwab", &format!("schwab_pt={g}"), tp, 0, 0));
            }
        }
        let html = report_html(&data(tps(), &readings, &summary, &[]));
        assert_self_contained(&html);
        assert!(
            html.contains("<section id=\"schwab\">\n<h2>5. SRS-Schwab sagittal modifiers</h2>")
        );
        let fig = figure(&html, "plot-schwab-pi_ll");
        assert_eq!(
            titles(fig),
            [
                "PI-LL 0 at preop: 5/8 (62.5%; 95% CI 30.6–86.3%)",
                "PI-LL + at preop: 2/8 (25.0%; 95% CI 7.1–59.1%)",
                "PI-LL ++ at preop: 1/8 (12.5%; 95% CI 2.2–47.1%)",
                "PI-LL 0 at postop: 8/8 (100.0%; 95% CI 67.6–100.0%)",
            ]
        );
        // The segments' heights are the shares of one full bar.
        let full = tip_height(fig, "PI-LL 0 at postop: 8/8 (100.0%; 95% CI 67.6–100.0%)");
        let zero = tip_height(fig, "PI-LL 0 at preop: 5/8 (62.5%; 95% CI 30.6–86.3%)");
        let pp = tip_height(fig, "PI-LL ++ at preop: 1/8 (12.5%; 95% CI 2.2–47.1%)");
        assert!((zero / full - 0.625).abs() < 0.01, "{zero} / {full}");
        assert!((pp / full - 0.125).abs() < 0.01, "{pp} / {full}");
        assert!(fig.contains("fill=\"#7FB08A\"") && fig.contains("fill=\"#B03A2E\""));
        assert!(fig.contains("\npreop (n=8)\n") && fig.contains("\nm3 (n=0)\n"));
        assert!(!html.contains("plot-schwab-pt") && !html.contains("plot-schwab-sva"));
        // The counts table.
        assert!(html.contains(
            "<td class=\"n\">2/8 <b>25.0%</b> <span class=\"small\">(7.1–59.1%)</span></td>"
        ));
    }

    #[test]
    fn wedging_table_gives_k_of_n_per_level() {
        let readings = readings();
        let mut summary = Vec::new();
        for n in 1..=5 {
            for (tp, k) in [("preop", n - 1), ("postop", 0), ("m3", 0)] {
                summary.push(share("wedging", &format!("l{n}_wedge_abnormal"), tp, k, 4));
            }
        }
        let html = report_html(&data(tps(), &readings, &summary, &[]));
        assert!(html.contains("<section id=\"wedging\">\n<h2>5. Abnormal vertebral wedging</h2>"));
        let t = &html[html.find("<table id=\"table-wedging\">").unwrap()..];
        let t = &t[..t.find("</table>").unwrap()];
        assert!(t.contains(
            "<tr><td>L4</td><td class=\"n\">3/4 <b>75.0%</b> <span class=\"small\">(30.1–95.4%)</span></td>"
        ));
        assert_eq!(t.matches("<tr><td>L").count(), 5);
    }

    fn clinical(groups: &[(&str, &str)]) -> ClinicalTable {
        ClinicalTable {
            path: "clinical.csv".into(),
            headers: vec!["patient_id".into(), "grp<x>".into()],
            rows: groups
                .iter()
                .enumerate()
                .map(|(i, (p, g))| ClinicalRow {
                    line: i as u64 + 2,
                    patient_id: (*p).into(),
                    surgery_day: None,
                    herniation_level: None,
                    herniation_side: None,
                    fields: vec![(*p).into(), (*g).into()],
                })
                .collect(),
        }
    }

    /// p as the report prints it.
    fn p_text(p: f64) -> String {
        if p < 0.001 {
            "&lt;0.001".into()
        } else if p < 0.1 {
            format!("{p:.3}")
        } else {
            format!("{p:.2}")
        }
    }

    /// Strata of `grp<x>` from the real pipeline pieces: rows by `summary_rows`.
    fn strata_case(groups: &[(&str, &str)], ll: &BTreeMap<&str, [f64; 2]>) -> String {
        let table = clinical(groups);
        let spec = StrataSpec {
            column: "grp<x>".into(),
            edges: None,
            metrics: vec![Metric::LlDeg],
        };
        let s = vec![strata(&spec, &table).unwrap()];
        let mut readings = Vec::new();
        for (pid, v) in ll {
            for (t, x) in v.iter().enumerate() {
                readings.push(reading(pid, t, &[(Metric::LlDeg, *x)]));
            }
        }
        let tp2: Vec<String> = tps()[..2].to_vec();
        let summary = summary_rows(&readings, &table, &tp2, 0, &[Metric::LlDeg], &s);
        let html = report_html(&data(tp2.clone(), &readings, &summary, &s));
        assert_self_contained(&html);
        assert_eq!(html, report_html(&data(tp2, &readings, &summary, &s)));
        // The caption's p values are those of the rows.
        let p_of = |stat: &str, tp: &str| {
            summary
                .iter()
                .find(|r| r.section == "strata" && r.statistic == stat && r.timepoint == tp)
                .and_then(|r| r.p_value)
                .unwrap_or_else(|| panic!("no p of {stat} at {tp}"))
        };
        let two = groups
            .iter()
            .map(|g| g.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 2;
        let (a, b, la, lb) = if two {
            ("welch", "mann_whitney", "Welch p", "Mann-Whitney p")
        } else {
            ("anova", "kruskal", "ANOVA p", "Kruskal-Wallis p")
        };
        let fig = figure(&html, "plot-strata-0-ll_deg");
        for tp in ["preop", "postop"] {
            for (stat, label) in [(a, la), (b, lb)] {
                let p = p_of(&format!("grp<x>:ll_deg_{stat}"), tp);
                let text = format!("{label} {}", p_text(p));
                assert!(fig.contains(&text), "caption lacks {text:?} at {tp}: {fig}");
            }
        }
        html
    }

    #[test]
    fn strata_box_plots_print_the_tests() {
        let groups = [
            ("P1", "A&B"),
            ("P2", "A&B"),
            ("P3", "A&B"),
            ("P4", "A&B"),
            ("P5", "C"),
            ("P6", "C"),
            ("P7", "C"),
            ("P8", "C"),
        ];
        let ll: BTreeMap<&str, [f64; 2]> = [
            ("P1", [40.0, 41.0]),
            ("P2", [41.0, 43.0]),
            ("P3", [42.0, 42.0]),
            ("P4", [39.0, 40.5]),
            ("P5", [60.0, 50.0]),
            ("P6", [61.0, 52.0]),
            ("P7", [59.0, 49.0]),
            ("P8", [62.0, 50.0]),
        ]
        .into_iter()
        .collect();
        let html = strata_case(&groups, &ll);
        assert!(html.contains("<section id=\"strata\">"));
        assert!(html.contains("<h3 id=\"strata-0\">By grp&lt;x&gt;</h3>"));
        // Group names are escaped in the legend, the tooltips and the table.
        assert!(!html.contains("A&B") && !html.contains("grp<x>"));
        assert!(html.contains("A&amp;B (4)"));
        let fig = figure(&html, "plot-strata-0-ll_deg");
        let tips = titles(fig);
        assert_eq!(tips.len(), 4, "one box per group and timepoint: {tips:?}");
        assert!(
            tips.contains(&"A&amp;B at preop: n=4, median 40.5, quartiles 39.8 to 41.2, mean 40.5")
        );
        // Groups far apart: Welch p < 0.001 at preop, bold.
        assert!(fig.contains("preop: <span class=\"sig\">Welch p &lt;0.001</span>"));
        // The table: mean ± SD (n) and the change, with the tests.
        let t = &html[html.find("<table id=\"table-strata-0-ll_deg\">").unwrap()..];
        let t = &t[..t.find("</table>").unwrap()];
        assert!(t.contains(
            "<td>A&amp;B</td><td class=\"n\">40.5 ± 1.3 <span class=\"small\">(4)</span></td>"
        ));
        assert!(t.contains("<th class=\"n\">Δ postop − preop</th>"));
        assert!(t.contains("-10.2 ± 1.3 <span class=\"small\">(4)</span>"));
        assert!(t.contains("MWU p"));
    }

    #[test]
    fn three_groups_get_anova_and_kruskal_wallis() {
        let groups = [
            ("P1", "x"),
            ("P2", "x"),
            ("P3", "y"),
            ("P4", "y"),
            ("P5", "z"),
            ("P6", "z"),
        ];
        let ll: BTreeMap<&str, [f64; 2]> = [
            ("P1", [40.0, 41.0]),
            ("P2", [42.0, 43.0]),
            ("P3", [50.0, 49.0]),
            ("P4", [53.0, 51.0]),
            ("P5", [45.0, 47.0]),
            ("P6", [44.0, 46.0]),
        ]
        .into_iter()
        .collect();
        let html = strata_case(&groups, &ll);
        assert!(html.contains("KW p"));
        assert!(!html.contains("Welch p"));
    }

    #[test]
    fn without_their_rows_there_are_no_new_sections() {
        // The committed cohort without the study-design rows and without strata.
        let mut c = super::cohort();
        c.summary.retain(|r| {
            !matches!(
                r.section,
                "recovery_by_type"
                    | "recovery_by_plane"
                    | "paired_imbalanced"
                    | "schwab"
                    | "wedging"
                    | "strata"
            )
        });
        c.strata.clear();
        let html = report_html(&super::data(&c, &[]));
        for id in NEW_SECTIONS {
            assert!(!html.contains(&format!("id=\"{id}\"")), "{id} without rows");
            assert!(!html.contains(&format!("href=\"#{id}\"")), "link to {id}");
        }
        assert!(!html.contains("plot-recovery") && !html.contains("plot-schwab"));
        assert!(html.contains("<h2>5. Patients</h2>"));
        assert!(html.contains("<h2>6. Inter-observer agreement</h2>"));
        assert!(html.contains("<h2>7. Plausibility of the landmark sets</h2>"));
    }

    // Long (over 80 lines): one table of odd summaries (empty, NaN, single patient), each next to the cells it must give.
    #[test]
    fn rows_that_rest_on_no_patient_show_nothing_and_odd_inputs_do_not_panic() {
        let readings = readings();
        // Every row of every new section with n = 0 (what summary_rows writes when no value
        // is known).
        let mut summary = Vec::new();
        for tp in ["preop", "postop", "m3"] {
            for t in ["sagittal", "coronal", "biplanar"] {
                summary.push(share("recovery_by_type", t, tp, 0, 0));
            }
            summary.push(row(
                "paired_imbalanced",
                "abs_sva_mm_change",
                tp,
                0,
                None,
                None,
                None,
            ));
            summary.push(share("schwab", "schwab_sva=+", tp, 0, 0));
            summary.push(share("wedging", "l3_wedge_abnormal", tp, 0, 0));
            summary.push(row("strata", "g=a:ll_deg_mean", tp, 0, None, None, None));
        }
        let none = Strata {
            column: "g".into(),
            groups: vec!["a".into()],
            of_patient: BTreeMap::new(),
            metrics: vec![Metric::LlDeg],
        };
        let html = report_html(&data(
            tps(),
            &readings,
            &summary,
            std::slice::from_ref(&none),
        ));
        for id in NEW_SECTIONS {
            assert!(
                !html.contains(&format!("id=\"{id}\"")),
                "{id} with n = 0 only"
            );
        }

        // Rows with data but odd: NaN shares, a share without its interval, rows at a
        // timepoint that has no reading, strata rows for patients without values, one
        // group, no group, no metric, and more groups than are plotted.
        let mut summary = vec![
            row(
                "recovery_by_type",
                "sagittal",
                "postop",
                3,
                Some(f64::NAN),
                None,
                None,
            ),
            row(
                "recovery_by_type",
                "coronal",
                "m3",
                2,
                Some(0.5),
                None,
                None,
            ),
            row(
                "recovery_by_plane",
                "coronal",
                "m12",
                2,
                Some(0.5),
                None,
                None,
            ),
            row(
                "schwab",
                "schwab_pt=++",
                "preop",
                4,
                Some(f64::NAN),
                Some((f64::NAN, 1.0)),
                None,
            ),
            row("schwab", "schwab_pt=0", "postop", 4, Some(1.0), None, None),
            row("wedging", "l1_wedge_abnormal", "m3", 1, None, None, None),
            row(
                "strata",
                "g=a:ll_deg_mean",
                "preop",
                1,
                Some(f64::INFINITY),
                None,
                None,
            ),
            row(
                "strata",
                "g:ll_deg_welch",
                "preop",
                2,
                Some(1.0),
                None,
                Some(f64::NAN),
            ),
        ];
        summary.push(row(
            "paired_imbalanced",
            "abs_c7pl_csvl_mm_wilcoxon",
            "m3",
            1,
            None,
            None,
            None,
        ));
        let many: BTreeMap<String, String> = (1..=4)
            .map(|p| (format!("P{p}"), format!("g{p}")))
            .collect();
        let strata = [
            none.clone(),
            Strata {
                column: "one".into(),
                groups: vec!["only".into()],
                of_patient: (1..=4).map(|p| (format!("P{p}"), "only".into())).collect(),
                metrics: vec![Metric::LlDeg, Metric::SvaMm],
            },
            Strata {
                column: "empty".into(),
                groups: Vec::new(),
                of_patient: BTreeMap::new(),
                metrics: Vec::new(),
            },
            Strata {
                column: "many".into(),
                groups: (1..=12).map(|g| format!("g{g}")).collect(),
                of_patient: many,
                metrics: vec![Metric::LlDeg],
            },
        ];
        let html = report_html(&data(tps(), &readings, &summary, &strata));
        assert_self_contained(&html);
        assert!(html.trim_end().ends_with("</html>"));
        for id in NEW_SECTIONS {
            assert!(html.contains(&format!("<section id=\"{id}\">")), "no {id}");
        }
        assert!(!html.contains("NaN") && !html.contains("inf<") && !html.contains("inf "));
        assert!(html.contains("One group: no between-group test."));
        assert!(html.contains("12 groups: too many to plot side by side"));
        assert!(html.contains("No group or no metric to compare."));

        // No timepoint at all.
        let html = report_html(&data(Vec::new(), &[], &summary, &strata));
        assert!(html.trim_end().ends_with("</html>"));
    }
}
