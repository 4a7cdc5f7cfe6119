//! The study-design sections of the report, between the key-metric plots and the patient
//! table: recovery by pre-op type and by plane with the paired |SVA| and |C7PL-CSVL|
//! tests within the imbalanced, the SRS-Schwab modifier shares, abnormal wedging, and the
//! strata of the clinical table.
//!
//! Every number is read from the `cohort_summary.csv` rows of
//! [`plumbline_export::analyses`]; the strata box plots use the primary readings of the
//! patients in each group, the values those rows rest on. A section appears only when its
//! rows rest on at least one patient at a timepoint that has readings.

use std::cell::RefCell;
use std::fmt::Write as _;

use plotters::prelude::*;
use plumbline_export::analyses::Strata;
use plumbline_geometry::{ImbalanceType, Metric};

use super::{
    BoxStats, Chart, Ctx, SummaryRow, box_stats, change_decimals, clean_svg, draw_chart_sized, esc,
    fnum, metric_label, metric_title, p_html, pct, proportion, type_color, y_range, zero_line,
};

/// One study-design section: its anchor, its link text in the navigation, its heading
/// (without the number) and its content.
pub(super) struct Section {
    pub(super) id: &'static str,
    pub(super) nav: &'static str,
    pub(super) title: &'static str,
    pub(super) body: String,
}

/// The study-design sections that have data, in page order.
pub(super) fn sections(c: &Ctx) -> Vec<Section> {
    [recovery(c), schwab(c), wedging(c), strata(c)]
        .into_iter()
        .flatten()
        .collect()
}

/// Size of the small charts (recovery, Schwab).
const SMALL: (u32, u32) = (420, 280);

/// The pre-op types of `recovery_by_type`: statistic, label, type (for the colour).
const TYPES: [(&str, &str, ImbalanceType); 3] = [
    ("sagittal", "Sagittal", ImbalanceType::Sagittal),
    ("coronal", "Coronal", ImbalanceType::Coronal),
    ("biplanar", "Biplanar", ImbalanceType::Biplanar),
];

/// The planes of `recovery_by_plane`: statistic, label, type (for the colour).
const PLANES: [(&str, &str, ImbalanceType); 2] = [
    ("sagittal", "Sagittal plane", ImbalanceType::Sagittal),
    ("coronal", "Coronal plane", ImbalanceType::Coronal),
];

/// The SRS-Schwab modifiers: statistic prefix, label, anchor suffix.
const MODIFIERS: [(&str, &str, &str); 3] = [
    ("schwab_pi_ll", "PI-LL", "pi_ll"),
    ("schwab_pt", "PT", "pt"),
    ("schwab_sva", "SVA", "sva"),
];

/// The SRS-Schwab grades: statistic suffix, CSS class of the legend swatch, bar colour.
const GRADES: [(&str, &str, RGBColor); 3] = [
    ("0", "g-0", RGBColor(0x7f, 0xb0, 0x8a)),
    ("+", "g-p", RGBColor(0xe0, 0xa1, 0x3a)),
    ("++", "g-pp", RGBColor(0xb0, 0x3a, 0x2e)),
];

/// Group colours of the strata box plots, in group order (cycled).
const GROUP_COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x5f, 0x8b),
    RGBColor(0xd9, 0x82, 0x2b),
    RGBColor(0x2e, 0x8b, 0x57),
    RGBColor(0x8e, 0x44, 0xad),
    RGBColor(0xc0, 0x39, 0x2b),
    RGBColor(0x7f, 0x8c, 0x8d),
    RGBColor(0xb7, 0x95, 0x0b),
    RGBColor(0x16, 0xa0, 0x85),
];

/// More groups than this: the strata get their table but no box plot.
const MAX_PLOTTED_GROUPS: usize = 8;

fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Whether a row of `section` rests on at least one patient at one of the timepoints.
fn has_data(c: &Ctx, section: &str, tps: &[usize]) -> bool {
    let names: Vec<&str> = tps.iter().map(|&t| c.tp(t)).collect();
    c.data
        .summary
        .iter()
        .any(|r| r.section == section && r.n > 0 && names.contains(&r.timepoint.as_str()))
}

/// A share row as `k/n` with its percentage and Wilson interval, as HTML.
fn share_html(r: Option<&SummaryRow>) -> String {
    match r.map(proportion) {
        Some((k, n, Some(v), ci)) if n > 0 && v.is_finite() => {
            let ci = ci.map_or(String::new(), |(lo, hi)| {
                format!(
                    " <span class=\"small\">({}–{})</span>",
                    fnum(lo * 100.0, 1),
                    pct(hi)
                )
            });
            format!("{k}/{n} <b>{}</b>{ci}", pct(v))
        }
        Some((_, 0, _, _)) => "<span class=\"small\">0/0</span>".into(),
        _ => "–".into(),
    }
}

/// A share as plain text for a tooltip: `2/3 balanced (66.7%; 95% CI 20.8–93.9%)`, the
/// word after `k/n` left out when `what` is empty.
fn share_text(k: usize, n: usize, what: &str, v: f64, ci: Option<(f64, f64)>) -> String {
    let ci = ci.map_or(String::new(), |(lo, hi)| {
        format!("; 95% CI {}–{}", fnum(lo * 100.0, 1), pct(hi))
    });
    let sep = if what.is_empty() { "" } else { " " };
    format!("{k}/{n}{sep}{what} ({}{ci})", pct(v))
}

/// An invisible hit area with a tooltip (`<title>`), in the SVG's pixel coordinates.
fn tip_circle((x, y): (i32, i32), r: i32, text: &str) -> String {
    format!(
        "<circle cx=\"{x}\" cy=\"{y}\" r=\"{r}\" fill=\"#000\" fill-opacity=\"0\"><title>{}</title></circle>\n",
        esc(text)
    )
}

/// An invisible rectangle between two pixel corners with a tooltip.
fn tip_rect(a: (i32, i32), b: (i32, i32), text: &str) -> String {
    let (x, y) = (a.0.min(b.0), a.1.min(b.1));
    let (w, h) = ((a.0 - b.0).abs().max(1), (a.1 - b.1).abs().max(1));
    format!(
        "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#000\" fill-opacity=\"0\"><title>{}</title></rect>\n",
        esc(text)
    )
}

/// Adds the tooltip hit areas (already escaped) on top of a cleaned chart.
fn with_tips(svg: String, tips: &[String]) -> String {
    match svg.rfind("</svg>") {
        Some(i) if !tips.is_empty() => format!(
            "{}<g class=\"tips\">\n{}</g>\n{}",
            &svg[..i],
            tips.concat(),
            &svg[i..]
        ),
        _ => svg,
    }
}

/// The message shown instead of a chart that plotters could not draw.
fn chart_failed(what: &str, e: &str) -> String {
    format!(
        "<p class=\"note\">The {} could not be drawn: {}</p>",
        esc(what),
        esc(e)
    )
}

/// One line of a share chart.
struct ShareSeries {
    stat: &'static str,
    label: &'static str,
    color: RGBColor,
}

/// One point of a share chart, in percent.
struct SharePoint {
    xi: usize,
    x: f64,
    v: f64,
    lo: f64,
    hi: f64,
    tip: String,
}

/// A line chart of the shares of `section` across `tps`, one line per series, with the
/// Wilson intervals as error bars and a tooltip per point. `None` when no point has data.
fn share_chart(
    c: &Ctx,
    section: &str,
    series: &[ShareSeries],
    tps: &[usize],
    what: &str,
    label: &str,
) -> Option<String> {
    let points = share_points(c, section, series, tps, what);
    if points.iter().all(Vec::is_empty) {
        return None;
    }
    let labels: Vec<String> = tps.iter().map(|&t| c.tp(t).to_string()).collect();
    let tips = RefCell::new(Vec::new());
    let svg = draw_chart_sized(
        &labels,
        (-3.0, 103.0),
        &format!("% {what}"),
        SMALL,
        &|chart: &mut Chart| {
            tips.borrow_mut().clear();
            for (s, pts) in series.iter().zip(&points) {
                share_line(chart, s.color, pts)?;
                for p in pts {
                    tips.borrow_mut()
                        .push(tip_circle(chart.backend_coord(&(p.x, p.v)), 8, &p.tip));
                }
            }
            Ok(())
        },
    );
    Some(match svg {
        Ok(svg) => with_tips(clean_svg(&svg, label), &tips.borrow()),
        Err(e) => chart_failed(label, &e),
    })
}

/// The points of each series with data: the series spread a little sideways around each
/// timepoint so their error bars do not overlap.
fn share_points(
    c: &Ctx,
    section: &str,
    series: &[ShareSeries],
    tps: &[usize],
    what: &str,
) -> Vec<Vec<SharePoint>> {
    let spread = (series.len() as f64 - 1.0) / 2.0;
    series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            tps.iter()
                .enumerate()
                .filter_map(|(xi, &t)| {
                    let r = c.summary.get(section, s.stat, c.tp(t))?;
                    let (k, n, v, ci) = proportion(r);
                    let v = v.filter(|v| v.is_finite() && n > 0)?;
                    let (lo, hi) = ci
                        .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
                        .unwrap_or((v, v));
                    Some(SharePoint {
                        xi,
                        x: xi as f64 + (i as f64 - spread) * 0.09,
                        v: v * 100.0,
                        lo: lo * 100.0,
                        hi: hi * 100.0,
                        tip: format!(
                            "{} at {}: {}",
                            s.label,
                            c.tp(t),
                            share_text(k, n, what, v, ci)
                        ),
                    })
                })
                .collect()
        })
        .collect()
}

/// One series of a share chart: lines between neighbouring timepoints, error bars, dots.
fn share_line(chart: &mut Chart, color: RGBColor, pts: &[SharePoint]) -> Result<(), String> {
    // Lines join neighbouring timepoints only: a timepoint without data breaks
    // the line.
    let joins = pts.windows(2).filter(|w| w[1].xi == w[0].xi + 1).map(|w| {
        PathElement::new(
            vec![(w[0].x, w[0].v), (w[1].x, w[1].v)],
            color.stroke_width(2),
        )
    });
    chart.draw_series(joins).map_err(|e| e.to_string())?;
    let cap = 0.035;
    let bars = pts.iter().flat_map(|p| {
        [
            PathElement::new(vec![(p.x, p.lo), (p.x, p.hi)], color.stroke_width(1)),
            PathElement::new(
                vec![(p.x - cap, p.lo), (p.x + cap, p.lo)],
                color.stroke_width(1),
            ),
            PathElement::new(
                vec![(p.x - cap, p.hi), (p.x + cap, p.hi)],
                color.stroke_width(1),
            ),
        ]
    });
    chart.draw_series(bars).map_err(|e| e.to_string())?;
    chart
        .draw_series(
            pts.iter()
                .map(|p| Circle::new((p.x, p.v), 4, color.filled())),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Swatches of the imbalance types for a chart legend.
fn type_legend(items: &[(&str, &str, ImbalanceType)]) -> String {
    let mut h = String::from("<p class=\"legend\">");
    for (_, label, t) in items {
        let _ = write!(h, "<span class=\"sw t-{}\"></span>{label}", t.as_str());
    }
    h.push_str(" &middot; error bars: 95% Wilson interval; hover a point for k/n.</p>\n");
    h
}

/// Section: recovery by pre-op type and by plane, and the paired |SVA| and |C7PL-CSVL|
/// within the imbalanced.
fn recovery(c: &Ctx) -> Option<Section> {
    let later = c.later();
    let by_type = has_data(c, "recovery_by_type", &later);
    let by_plane = has_data(c, "recovery_by_plane", &later);
    let paired = has_data(c, "paired_imbalanced", &later);
    if !(by_type || by_plane || paired) {
        return None;
    }
    let base = esc(c.tp(c.baseline));
    let mut h = String::new();
    if by_type || by_plane {
        let _ = writeln!(
            h,
            "<p class=\"note\">Share balanced at each timepoint after {base}, by the imbalance \
             at {base}. By type: among the patients of that type at {base}, balanced in both \
             planes; n = those whose type is known at the later timepoint. By plane: among the \
             patients imbalanced in that plane at {base} (biplanar cases count in both planes), \
             balanced in that plane; n = those whose plane is known then.</p>"
        );
        h.push_str(&type_legend(&TYPES));
        recovery_charts(&mut h, c, (by_type, by_plane), &later);
        recovery_table(&mut h, c, &later);
    }
    if paired {
        paired_imbalanced(&mut h, c, &later);
    }
    Some(Section {
        id: "recovery-types",
        nav: "Recovery by type",
        title: "Recovery by pre-op imbalance type",
        body: h,
    })
}

/// The share charts of recovery by type and by plane (each when it has data).
fn recovery_charts(h: &mut String, c: &Ctx, (by_type, by_plane): (bool, bool), later: &[usize]) {
    let base = esc(c.tp(c.baseline));
    h.push_str("<div class=\"plots\">\n");
    let charts = [
        (
            by_type,
            "recovery_by_type",
            "type",
            &TYPES[..],
            "Recovery by pre-op type",
            format!("Balanced after surgery by type at {base}"),
        ),
        (
            by_plane,
            "recovery_by_plane",
            "plane",
            &PLANES[..],
            "Recovery by plane",
            format!("Balanced in the plane imbalanced at {base}"),
        ),
    ];
    for (present, section, id, items, label, caption) in charts {
        if !present {
            continue;
        }
        let series: Vec<ShareSeries> = items
            .iter()
            .map(|(stat, label, t)| ShareSeries {
                stat,
                label,
                color: type_color(Some(*t)),
            })
            .collect();
        if let Some(svg) = share_chart(c, section, &series, later, "balanced", label) {
            let _ = write!(
                h,
                "<figure id=\"plot-recovery-{id}\" class=\"fig-s\">\n{svg}<figcaption>{caption}; n per point in \
                 its tooltip and in the table below</figcaption></figure>\n"
            );
        }
    }
    h.push_str("</div>\n");
}

/// The recovery shares as a table: by type, then by plane, per later timepoint.
fn recovery_table(h: &mut String, c: &Ctx, later: &[usize]) {
    let base = esc(c.tp(c.baseline));
    h.push_str(
        "<div class=\"wide\"><table id=\"table-recovery\">\n<thead><tr><th>Balanced again \
         <span class=\"small\">(k/n, %, 95% CI)</span></th>",
    );
    for &t in later {
        let _ = write!(h, "<th class=\"n\">{}</th>", esc(c.tp(t)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    let blocks = [
        (
            "recovery_by_type",
            format!("By type at {base} (balanced in both planes)"),
            &TYPES[..],
        ),
        (
            "recovery_by_plane",
            format!("By plane imbalanced at {base} (balanced in that plane)"),
            &PLANES[..],
        ),
    ];
    for (section, head, items) in blocks {
        let _ = writeln!(
            h,
            "<tr class=\"grp\"><td colspan=\"{}\">{head}</td></tr>",
            later.len() + 1
        );
        for (stat, label, t) in items {
            let _ = write!(
                h,
                "<tr><td class=\"ind\"><span class=\"badge t-{}\">{label}</span></td>",
                t.as_str()
            );
            for &tt in later {
                let _ = write!(
                    h,
                    "<td class=\"n\">{}</td>",
                    share_html(c.summary.get(section, stat, c.tp(tt)))
                );
            }
            h.push_str("</tr>\n");
        }
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// The `paired_imbalanced` table: mean change with CI and t p, median change with the
/// Wilcoxon p, n pairs, for |SVA| and |C7PL-CSVL| in the patients imbalanced in that plane.
fn paired_imbalanced(h: &mut String, c: &Ctx, later: &[usize]) {
    let base = esc(c.tp(c.baseline));
    let _ = write!(
        h,
        "<h3>|SVA| and |C7PL-CSVL| within the imbalanced</h3>\n<p class=\"note\">Change of the \
         magnitude (later minus {base}) in the patients imbalanced in that plane at {base}: \
         |SVA| in the sagittally imbalanced, |C7PL-CSVL| in the coronally imbalanced (biplanar \
         cases in both). n = patients with the value at both timepoints. p &lt; 0.05 in bold.</p>\n\
         <div class=\"wide\"><table id=\"table-paired-imbalanced\">\n<thead><tr><th>Measure</th>\
         <th>Timepoint</th><th class=\"n\">n</th><th class=\"n\">Mean change</th>\
         <th class=\"n\">95% CI</th><th class=\"n\">Paired t p</th><th class=\"n\">Median change</th>\
         <th class=\"n\">Wilcoxon p</th></tr></thead>\n<tbody>\n"
    );
    let measures = [
        (
            "abs_sva_mm",
            "|SVA| (mm) <span class=\"small\">sagittally imbalanced</span>",
        ),
        (
            "abs_c7pl_csvl_mm",
            "|C7PL-CSVL| (mm) <span class=\"small\">coronally imbalanced</span>",
        ),
    ];
    for (name, label) in measures {
        for &t in later {
            let tp = c.tp(t);
            let ch = c
                .summary
                .get("paired_imbalanced", &format!("{name}_change"), tp);
            let wil = c
                .summary
                .get("paired_imbalanced", &format!("{name}_wilcoxon"), tp);
            let n = ch.or(wil).map_or(0, |r| r.n);
            let dec = ch.map_or(1, change_decimals);
            let val = |r: Option<&SummaryRow>| {
                r.and_then(|r| r.value)
                    .filter(|v| v.is_finite())
                    .map_or("–".into(), |v| fnum(v, dec))
            };
            let ci = ch
                .and_then(|r| r.ci_low.zip(r.ci_high))
                .map_or("–".into(), |(lo, hi)| {
                    format!("{} to {}", fnum(lo, dec), fnum(hi, dec))
                });
            let _ = writeln!(
                h,
                "<tr><td>{label}</td><td>{}</td><td class=\"n\">{n}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{ci}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td></tr>",
                esc(tp),
                val(ch),
                p_html("", ch.and_then(|r| r.p_value)),
                val(wil),
                p_html("", wil.and_then(|r| r.p_value)),
            );
        }
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// Section: the SRS-Schwab modifier grade shares, one stacked-bar chart per modifier and
/// one table of the counts.
fn schwab(c: &Ctx) -> Option<Section> {
    let tps = &c.active;
    if !has_data(c, "schwab", tps) {
        return None;
    }
    let mut h = String::new();
    h.push_str(
        "<p class=\"note\">SRS-Schwab sagittal modifiers (Schwab et al., Spine 2012) graded \
         0, + or ++ by the pipeline's limits (<code>classification.schwab</code>; by default \
         PI-LL 10/20°, PT 20/30°, SVA 40/95 mm). Each bar: the patients whose grade is known at \
         that timepoint (n under the bar), split by grade; hover a segment for k/n and the 95% \
         Wilson interval.</p>\n<p class=\"legend\">",
    );
    for (g, class, _) in GRADES {
        let _ = write!(h, "<span class=\"sw box {class}\"></span>{}", esc(g));
    }
    h.push_str("</p>\n<div class=\"plots\">\n");
    for (stat, label, id) in MODIFIERS {
        schwab_figure(&mut h, c, (stat, label, id), tps);
    }
    h.push_str("</div>\n");
    schwab_table(&mut h, c, tps);
    Some(Section {
        id: "schwab",
        nav: "Schwab",
        title: "SRS-Schwab sagittal modifiers",
        body: h,
    })
}

/// The stacked-bar figure of one modifier (statistic prefix, label, anchor suffix); none
/// when no timepoint has a known grade.
fn schwab_figure(h: &mut String, c: &Ctx, (stat, label, id): (&str, &str, &str), tps: &[usize]) {
    let n_at = |t: usize| {
        GRADES
            .iter()
            .find_map(|(g, _, _)| c.summary.get("schwab", &format!("{stat}={g}"), c.tp(t)))
            .map_or(0, |r| r.n)
    };
    if tps.iter().all(|&t| n_at(t) == 0) {
        return;
    }
    let labels: Vec<String> = tps
        .iter()
        .map(|&t| format!("{} (n={})", c.tp(t), n_at(t)))
        .collect();
    let tips = RefCell::new(Vec::new());
    let title = format!("SRS-Schwab {label} modifier");
    let svg = draw_chart_sized(
        &labels,
        (0.0, 100.0),
        "% of patients",
        SMALL,
        &|chart: &mut Chart| {
            tips.borrow_mut().clear();
            for (xi, &t) in tps.iter().enumerate() {
                schwab_bar(chart, c, (stat, label), (xi, t), &mut tips.borrow_mut())?;
            }
            Ok(())
        },
    );
    let svg = match svg {
        Ok(svg) => with_tips(clean_svg(&svg, &title), &tips.borrow()),
        Err(e) => chart_failed(&title, &e),
    };
    let _ = write!(
        h,
        "<figure id=\"plot-schwab-{id}\" class=\"fig-s\">\n{svg}<figcaption>{label} modifier: share of 0 / + / ++ \
         by timepoint; n = patients with a known {label} grade</figcaption></figure>\n"
    );
}

/// One stacked bar of a modifier at timepoint `t` (drawn at `xi`), one segment per grade
/// with patients, each with its tooltip.
fn schwab_bar(
    chart: &mut Chart,
    c: &Ctx,
    (stat, label): (&str, &str),
    (xi, t): (usize, usize),
    tips: &mut Vec<String>,
) -> Result<(), String> {
    let x = xi as f64;
    let hw = 0.3;
    let mut bottom = 0.0;
    for (g, _, color) in GRADES {
        let Some(r) = c.summary.get("schwab", &format!("{stat}={g}"), c.tp(t)) else {
            continue;
        };
        let (k, n, v, ci) = proportion(r);
        let Some(v) = v.filter(|v| v.is_finite() && n > 0 && k > 0) else {
            continue;
        };
        let top = (bottom + v * 100.0).min(100.0);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - hw, bottom), (x + hw, top)],
                color.filled(),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - hw, bottom), (x + hw, top)],
                WHITE.stroke_width(1),
            )))
            .map_err(|e| e.to_string())?;
        tips.push(tip_rect(
            chart.backend_coord(&(x - hw, top)),
            chart.backend_coord(&(x + hw, bottom)),
            &format!(
                "{label} {g} at {}: {}",
                c.tp(t),
                share_text(k, n, "", v, ci)
            ),
        ));
        bottom = top;
    }
    Ok(())
}

/// The counts of every modifier and grade per timepoint.
fn schwab_table(h: &mut String, c: &Ctx, tps: &[usize]) {
    h.push_str(
        "<div class=\"wide\"><table id=\"table-schwab\">\n<thead><tr><th>Modifier / grade \
         <span class=\"small\">(k/n, %, 95% CI)</span></th>",
    );
    for &t in tps {
        let _ = write!(h, "<th class=\"n\">{}</th>", esc(c.tp(t)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (stat, label, _) in MODIFIERS {
        let _ = writeln!(
            h,
            "<tr class=\"grp\"><td colspan=\"{}\">{label}</td></tr>",
            tps.len() + 1
        );
        for (g, class, _) in GRADES {
            let _ = write!(
                h,
                "<tr><td class=\"ind\"><span class=\"sw box {class}\"></span>{}</td>",
                esc(g)
            );
            for &t in tps {
                let _ = write!(
                    h,
                    "<td class=\"n\">{}</td>",
                    share_html(c.summary.get("schwab", &format!("{stat}={g}"), c.tp(t)))
                );
            }
            h.push_str("</tr>\n");
        }
    }
    h.push_str("</tbody>\n</table></div>\n");
}

/// Section: the shares of abnormal wedging per lumbar level and timepoint.
fn wedging(c: &Ctx) -> Option<Section> {
    let tps = &c.active;
    if !has_data(c, "wedging", tps) {
        return None;
    }
    let mut h = String::new();
    h.push_str(
        "<p class=\"note\">Abnormal vertebral wedging: the wedge index (anterior minus \
         posterior body height over the anterior height) above the pipeline's cut-off \
         (<code>classification.wedge_abnormal_pct</code>, 8.3% by default). Each cell: k \
         abnormal of the n patients whose index at that level is known, the share and its 95% \
         Wilson interval.</p>\n<div class=\"wide\"><table id=\"table-wedging\">\n<thead><tr>\
         <th>Level</th>",
    );
    for &t in tps {
        let _ = write!(h, "<th class=\"n\">{}</th>", esc(c.tp(t)));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for n in 1..=5 {
        let _ = write!(h, "<tr><td>L{n}</td>");
        for &t in tps {
            let _ = write!(
                h,
                "<td class=\"n\">{}</td>",
                share_html(
                    c.summary
                        .get("wedging", &format!("l{n}_wedge_abnormal"), c.tp(t))
                )
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
    Some(Section {
        id: "wedging",
        nav: "Wedging",
        title: "Abnormal vertebral wedging",
        body: h,
    })
}

/// The between-group tests of one stratum, metric (or `{metric}_change`) and timepoint:
/// Welch and Mann-Whitney for two groups, ANOVA and Kruskal-Wallis for more, with the
/// number of patients tested. `short`: abbreviated names on two lines (for a table cell).
fn tests_text(c: &Ctx, column: &str, name: &str, tp: &str, short: bool) -> Option<String> {
    let pairs = if short {
        [
            [("welch", "Welch p"), ("mann_whitney", "MWU p")],
            [("anova", "ANOVA p"), ("kruskal", "KW p")],
        ]
    } else {
        [
            [("welch", "Welch p"), ("mann_whitney", "Mann-Whitney p")],
            [("anova", "ANOVA p"), ("kruskal", "Kruskal-Wallis p")],
        ]
    };
    for pair in pairs {
        let rows: Vec<(Option<&SummaryRow>, &str)> = pair
            .iter()
            .map(|(t, l)| {
                (
                    c.summary.get("strata", &format!("{column}:{name}_{t}"), tp),
                    *l,
                )
            })
            .collect();
        if rows.iter().all(|(r, _)| r.is_none()) {
            continue;
        }
        let n = rows.iter().find_map(|(r, _)| *r).map_or(0, |r| r.n);
        let ps: Vec<String> = rows
            .iter()
            .map(|(r, l)| p_html(l, r.and_then(|r| r.p_value)))
            .collect();
        return Some(format!(
            "{} <span class=\"small\">(n={n})</span>",
            ps.join(if short { "<br>" } else { ", " })
        ));
    }
    None
}

fn signed(m: Metric) -> bool {
    matches!(m, Metric::SvaMm | Metric::C7plCsvlMm | Metric::PiLlDeg)
}

/// Section: each stratum's groups compared per metric: box plots per timepoint and group,
/// the between-group tests, and the group means and SDs of the values and of the change.
fn strata(c: &Ctx) -> Option<Section> {
    let strata = c.data.strata;
    let any_rows = c
        .data
        .summary
        .iter()
        .any(|r| r.section == "strata" && r.n > 0);
    if strata.is_empty() || !any_rows {
        return None;
    }
    let tps = &c.active;
    let later = c.later();
    let base = esc(c.tp(c.baseline));
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<p class=\"note\">Patients grouped by a column of the clinical table (the pipeline's \
         <code>[[strata]]</code>) and compared at each timepoint and in the change from {base}: \
         Welch's t and Mann-Whitney U for two groups, one-way ANOVA and Kruskal-Wallis for \
         more; n = patients with a value in the compared groups. Box plots as in section 4 \
         (median, quartiles, whiskers to 1.5 IQR, × the mean). Tables: mean ± SD (n patients) \
         per group at each timepoint and of the change from {base}, and the tests (MWU: \
         Mann-Whitney U, KW: Kruskal-Wallis). p &lt; 0.05 in bold.</p>"
    );
    for (si, s) in strata.iter().enumerate() {
        let column = esc(&s.column);
        let _ = writeln!(h, "<h3 id=\"strata-{si}\">By {column}</h3>");
        h.push_str("<p class=\"legend\">Groups (patients with a reading):");
        for (gi, g) in s.groups.iter().enumerate() {
            let with_reading = members(s, g)
                .filter(|p| c.patients.iter().any(|q| q == p))
                .count();
            let _ = write!(
                h,
                "<span class=\"sw box\" style=\"background:{}\"></span>{} ({with_reading})",
                hex(GROUP_COLORS[gi % GROUP_COLORS.len()]),
                esc(g)
            );
        }
        h.push_str("</p>\n");
        if s.groups.is_empty() || s.metrics.is_empty() {
            h.push_str("<p class=\"note\">No group or no metric to compare.</p>\n");
            continue;
        }
        for &m in &s.metrics {
            strata_metric(&mut h, c, si, s, m, tps, &later);
        }
    }
    Some(Section {
        id: "strata",
        nav: "Strata",
        title: "Strata: groups of the clinical table",
        body: h,
    })
}

/// The patients of group `g`, sorted.
fn members<'s>(s: &'s Strata, g: &'s str) -> impl Iterator<Item = &'s str> + 's {
    s.of_patient
        .iter()
        .filter(move |(_, pg)| pg.as_str() == g)
        .map(|(p, _)| p.as_str())
}

/// One stratum and metric: the box plot with the tests in its caption, and the table.
fn strata_metric(
    h: &mut String,
    c: &Ctx,
    si: usize,
    s: &Strata,
    m: Metric,
    tps: &[usize],
    later: &[usize],
) {
    let name = m.name();
    let column = &s.column;
    let _ = writeln!(
        h,
        "<h4 id=\"strata-{si}-{name}\">{} by {}</h4>",
        esc(&metric_title(m)),
        esc(column)
    );
    let values = strata_values(c, s, m, tps);
    let caption_tests = strata_caption_tests(c, s, &name, tps);
    let ng = s.groups.len();
    let y = y_range(values.iter().flatten().flatten().copied(), signed(m));
    match y {
        None => h.push_str("<p class=\"note\">No values.</p>\n"),
        Some(_) if ng > MAX_PLOTTED_GROUPS => {
            let _ = writeln!(
                h,
                "<p class=\"note\">{ng} groups: too many to plot side by side; see the table.{caption_tests}</p>"
            );
        }
        Some(y) => {
            let svg = strata_plot(c, s, m, tps, &values, y);
            let _ = write!(
                h,
                "<div class=\"plots\">\n<figure id=\"plot-strata-{si}-{name}\" class=\"fig-m\">\n{svg}<figcaption>{} \
                 by {} group at each timepoint, one box per group in legend order.{caption_tests}\
                 </figcaption></figure>\n</div>\n",
                esc(&metric_label(m).0),
                esc(column),
            );
        }
    }
    strata_table(h, c, si, s, m, tps, later);
}

/// The finite values of `m` per timepoint and group.
fn strata_values(c: &Ctx, s: &Strata, m: Metric, tps: &[usize]) -> Vec<Vec<Vec<f64>>> {
    tps.iter()
        .map(|&t| {
            s.groups
                .iter()
                .map(|g| {
                    members(s, g)
                        .filter_map(|p| c.value(p, t, m))
                        .filter(|v| v.is_finite())
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// The between-group tests of metric `name` at every timepoint, for a caption (with a
/// leading space), or why there are none.
fn strata_caption_tests(c: &Ctx, s: &Strata, name: &str, tps: &[usize]) -> String {
    let tests: Vec<String> = tps
        .iter()
        .filter_map(|&t| {
            let tp = c.tp(t);
            Some(format!(
                "{}: {}",
                esc(tp),
                tests_text(c, &s.column, name, tp, false)?
            ))
        })
        .collect();
    if tests.is_empty() {
        if s.groups.len() < 2 {
            " One group: no between-group test.".to_string()
        } else {
            String::new()
        }
    } else {
        format!(" Between-group tests: {}.", tests.join("; "))
    }
}

/// The box plot of one stratum and metric: per timepoint one box per group, side by side,
/// each with a tooltip; the chart-failed note if plotters fails.
fn strata_plot(
    c: &Ctx,
    s: &Strata,
    m: Metric,
    tps: &[usize],
    values: &[Vec<Vec<f64>>],
    y: (f64, f64),
) -> String {
    let label = format!("{} by {}", metric_title(m), s.column);
    let labels: Vec<String> = tps.iter().map(|&t| c.tp(t).to_string()).collect();
    let tips = RefCell::new(Vec::new());
    let svg = draw_chart_sized(
        &labels,
        y,
        &metric_title(m),
        (super::PLOT_W, super::PLOT_H),
        &|chart: &mut Chart| {
            tips.borrow_mut().clear();
            if signed(m) {
                zero_line(chart, labels.len())?;
            }
            let slot = 0.8 / s.groups.len() as f64;
            for (xi, per_group) in values.iter().enumerate() {
                for (gi, vals) in per_group.iter().enumerate() {
                    let Some(b) = box_stats(vals) else { continue };
                    let x = xi as f64 - 0.4 + slot * (gi as f64 + 0.5);
                    let (hw, cap) = (slot * 0.36, slot * 0.18);
                    group_box(
                        chart,
                        (x, hw, cap),
                        GROUP_COLORS[gi % GROUP_COLORS.len()],
                        &b,
                    )?;
                    tips.borrow_mut().push(tip_rect(
                        chart.backend_coord(&(x - hw, b.whisker_hi)),
                        chart.backend_coord(&(x + hw, b.whisker_lo)),
                        &format!(
                            "{} at {}: n={}, median {}, quartiles {} to {}, mean {}",
                            s.groups[gi],
                            labels[xi],
                            vals.len(),
                            fnum(b.median, 1),
                            fnum(b.q1, 1),
                            fnum(b.q3, 1),
                            fnum(b.mean, 1)
                        ),
                    ));
                }
            }
            Ok(())
        },
    );
    match svg {
        Ok(svg) => with_tips(clean_svg(&svg, &label), &tips.borrow()),
        Err(e) => chart_failed(&label, &e),
    }
}

/// One group's box at `x` (half-width `hw`, whisker caps of half-width `cap`) in the
/// group's colour: box, whiskers, median, outliers and the mean as a cross.
fn group_box(
    chart: &mut Chart,
    (x, hw, cap): (f64, f64, f64),
    color: RGBColor,
    b: &BoxStats,
) -> Result<(), String> {
    let edge = color.stroke_width(1);
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x - hw, b.q1), (x + hw, b.q3)],
            color.mix(0.25).filled(),
        )))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series([
            PathElement::new(vec![(x, b.whisker_lo), (x, b.q1)], edge),
            PathElement::new(vec![(x, b.q3), (x, b.whisker_hi)], edge),
            PathElement::new(vec![(x - cap, b.whisker_lo), (x + cap, b.whisker_lo)], edge),
            PathElement::new(vec![(x - cap, b.whisker_hi), (x + cap, b.whisker_hi)], edge),
            PathElement::new(
                vec![(x - hw, b.median), (x + hw, b.median)],
                color.stroke_width(3),
            ),
        ])
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(x - hw, b.q1), (x + hw, b.q3)],
            edge,
        )))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(b.outliers.iter().map(|v| Circle::new((x, *v), 3, edge)))
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

/// The table of one stratum and metric: group rows with mean ± SD (n) per timepoint and
/// of the change per later timepoint, and a row of the tests.
fn strata_table(
    h: &mut String,
    c: &Ctx,
    si: usize,
    s: &Strata,
    m: Metric,
    tps: &[usize],
    later: &[usize],
) {
    let name = m.name();
    let change = format!("{name}_change");
    let base = esc(c.tp(c.baseline));
    let cols: Vec<(String, &str, String)> = tps
        .iter()
        .map(|&t| (name.clone(), c.tp(t), esc(c.tp(t))))
        .chain(later.iter().map(|&t| {
            (
                change.clone(),
                c.tp(t),
                format!("Δ {} − {base}", esc(c.tp(t))),
            )
        }))
        .collect();
    let _ = write!(
        h,
        "<div class=\"wide\"><table id=\"table-strata-{si}-{name}\">\n<thead><tr><th>{}</th>",
        esc(&s.column)
    );
    for (_, _, head) in &cols {
        let _ = write!(h, "<th class=\"n\">{head}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for g in &s.groups {
        let _ = write!(h, "<tr><td>{}</td>", esc(g));
        for (stat, tp, _) in &cols {
            let key = |what: &str| format!("{}={g}:{stat}_{what}", s.column);
            let mean = c.summary.get("strata", &key("mean"), tp);
            let sd = c.summary.get("strata", &key("sd"), tp);
            let cell = match mean.and_then(|r| r.value.filter(|v| v.is_finite()).map(|v| (v, r.n)))
            {
                Some((v, n)) => {
                    let sd = sd
                        .and_then(|r| r.value)
                        .filter(|v| v.is_finite())
                        .map_or(String::new(), |x| format!(" ± {}", fnum(x, 1)));
                    format!("{}{sd} <span class=\"small\">({n})</span>", fnum(v, 1))
                }
                None => "–".into(),
            };
            let _ = write!(h, "<td class=\"n\">{cell}</td>");
        }
        h.push_str("</tr>\n");
    }
    if s.groups.len() >= 2 {
        h.push_str("<tr><td class=\"small\">Between groups</td>");
        for (stat, tp, _) in &cols {
            let _ = write!(
                h,
                "<td class=\"n small\">{}</td>",
                tests_text(c, &s.column, stat, tp, true).unwrap_or_else(|| "–".into())
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooltips_go_inside_the_svg_escaped() {
        let tips = [tip_circle((3, 4), 8, "a<b & \"c\"")];
        let svg = with_tips("<svg x>\n<rect/>\n</svg>\n".into(), &tips);
        assert_eq!(
            svg,
            "<svg x>\n<rect/>\n<g class=\"tips\">\n<circle cx=\"3\" cy=\"4\" r=\"8\" fill=\"#000\" \
             fill-opacity=\"0\"><title>a&lt;b &amp; &quot;c&quot;</title></circle>\n</g>\n</svg>\n"
        );
        // A plot left out (no SVG) stays as it is.
        assert_eq!(with_tips("<p>x</p>".into(), &tips), "<p>x</p>");
        assert!(
            tip_rect((10, 50), (2, 20), "t")
                .starts_with("<rect x=\"2\" y=\"20\" width=\"8\" height=\"30\"")
        );
    }

    #[test]
    fn share_cells() {
        let row = |n, v: Option<f64>| SummaryRow {
            section: "wedging",
            statistic: "l1_wedge_abnormal".into(),
            timepoint: "preop".into(),
            n,
            k: v.map(|v| (v * n as f64).round() as usize),
            value: v,
            ci_low: v.map(|_| 0.1),
            ci_high: v.map(|_| 0.6),
            p_value: None,
        };
        assert_eq!(
            share_html(Some(&row(4, Some(0.25)))),
            "1/4 <b>25.0%</b> <span class=\"small\">(10.0–60.0%)</span>"
        );
        assert_eq!(
            share_html(Some(&row(0, None))),
            "<span class=\"small\">0/0</span>"
        );
        assert_eq!(share_html(Some(&row(4, Some(f64::NAN)))), "–");
        assert_eq!(share_html(None), "–");
        assert_eq!(
            share_text(2, 3, "balanced", 2.0 / 3.0, None),
            "2/3 balanced (66.7%)"
        );
        assert_eq!(p_html("", Some(0.01)), "<span class=\"sig\">0.010</span>");
        assert_eq!(p_html("Welch p", None), "Welch p –");
    }
}
