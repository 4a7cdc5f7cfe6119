//! The overlay stage: for every view of every measured reading, its radiograph decoded
//! and downsampled ([`crate::decode::load_display`]), the overlay drawn
//! ([`crate::overlay::draw_overlay`]) and written as
//! `overlays/{patient}/{timepoint}_{reader}_{view}.png` through
//! [`plumbline_export::write_atomic`]. A view that cannot be drawn becomes a QC warning
//! (`codec_unavailable` or `overlay_failed`) and the batch goes on. The image's pixels
//! come through the run's [`Source`] ([`Source::with_pixels`]): a folder's file as it
//! is, a DICOMweb image fetched into a temporary file for the drawing.

use std::path::Path;

use plumbline_export::Durability;
use plumbline_export::plausibility::flagged_landmarks;
use plumbline_export::tables::Measured;
use plumbline_ingest::qc::codes;
use plumbline_ingest::source::Source;
use plumbline_ingest::{ImageFiles, QcIssue, Severity, View};
use rayon::prelude::*;

use crate::decode::{DecodeError, load_display};
use crate::overlay::{OverlaySpec, draw_overlay, file_safe};
use crate::report::OverlayLink;

/// Height limit of overlay images.
pub const OVERLAY_MAX_ROWS: u32 = 1600;

/// Renders every view of `measured` into `out/overlays/` in parallel (each worker holds
/// one image at a time, read through `source`), calling `done` after each view. Returns the links of the
/// overlays written, in reading order (lateral before AP), and a QC warning for each view
/// that could not be drawn.
pub fn write_overlays(
    out: &Path,
    measured: &[Measured],
    files: &ImageFiles,
    source: &dyn Source,
    done: &(dyn Fn() + Sync),
) -> (Vec<OverlayLink>, Vec<QcIssue>) {
    let jobs: Vec<(&Measured, bool)> = views(measured).collect();
    let results: Vec<Result<OverlayLink, QcIssue>> = jobs
        .par_iter()
        .map(|(m, lateral)| {
            let r = write_overlay(out, m, *lateral, files, source);
            done();
            r
        })
        .collect();
    let (mut links, mut issues) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(link) => links.push(link),
            Err(issue) => issues.push(issue),
        }
    }
    (links, issues)
}

/// The number of views [`write_overlays`] draws for `measured`.
pub fn overlay_count(measured: &[Measured]) -> usize {
    views(measured).count()
}

/// Every view of `measured` in reading order, lateral before AP: (reading, is lateral).
fn views(measured: &[Measured]) -> impl Iterator<Item = (&Measured, bool)> {
    measured.iter().flat_map(|m| {
        let r = &m.reading;
        [(r.lateral.is_some(), true), (r.ap.is_some(), false)]
            .into_iter()
            .filter(|(has, _)| *has)
            .map(move |(_, lateral)| (m, lateral))
    })
}

/// Renders one view (`lateral` true: the lateral view) of `m`, its image read from
/// `files` through `source`, to `out/overlays/{patient}/{timepoint}_{reader}_{view}.png`.
pub fn write_overlay(
    out: &Path,
    m: &Measured,
    lateral: bool,
    files: &ImageFiles,
    source: &dyn Source,
) -> Result<OverlayLink, QcIssue> {
    let (v, view) = if lateral {
        (m.reading.lateral.as_ref(), "lateral")
    } else {
        (m.reading.ap.as_ref(), "ap")
    };
    let v: &View = v.expect("write_overlays asks only for views the reading has");
    let row = &m.row;
    // The file is read where it is (`files`); QC names it as outputs do (`v.path`:
    // pseudonymised when asked), in the message too.
    let file = files.get(&v.image_uid).unwrap_or(&v.path);
    let (path, shown) = (file.display().to_string(), v.path.display().to_string());
    let fail_as = |code: &'static str, msg: String| {
        QcIssue::file(&v.path, Severity::Warning, code, msg.replace(&path, &shown))
            .with_ids(&v.image_uid, &m.reading.patient_id)
    };
    let local = source.with_pixels(file).map_err(|e| {
        fail_as(
            codes::OVERLAY_FAILED,
            format!("no overlay: the image's pixel data cannot be fetched: {e}"),
        )
    })?;
    let display = load_display(local.path(), OVERLAY_MAX_ROWS).map_err(|e| {
        let code = match e {
            DecodeError::CodecUnavailable { .. } => codes::CODEC_UNAVAILABLE,
            _ => codes::OVERLAY_FAILED,
        };
        let fetched_as = local.path().display().to_string();
        fail_as(code, format!("no overlay: {e}").replace(&fetched_as, &path))
    })?;
    let flagged = flagged_landmarks(m, lateral);
    let spec = OverlaySpec {
        kind: v.landmarks.kind(),
        pixels: &v.pixels,
        metrics: &row.metrics,
        legend: legend(m, view, !flagged.is_empty()),
        flagged: &flagged,
    };
    let img = draw_overlay(&display, &spec);
    let rel = format!(
        "overlays/{}/{}_{}_{}.png",
        file_safe(&row.patient_id),
        file_safe(&row.timepoint),
        file_safe(&row.observer),
        view
    );
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| fail_as(codes::OVERLAY_FAILED, format!("cannot encode {rel}: {e}")))?;
    plumbline_export::write_atomic_as(out, &rel, &png, Durability::Cached)
        .map_err(|e| fail_as(codes::OVERLAY_FAILED, e.to_string()))?;
    Ok(OverlayLink {
        patient_id: row.patient_id.clone(),
        timepoint: row.timepoint.clone(),
        observer: row.observer.clone(),
        view: view.to_string(),
        href: rel,
    })
}

/// The legend's first lines: patient, timepoint and reader; view and class; the failed
/// plausibility checks when landmarks are ringed.
fn legend(m: &Measured, view: &str, flagged: bool) -> Vec<String> {
    let row = &m.row;
    let class = row.class.kind.map_or("unclassified", |k| k.as_str());
    let observer = if row.observer.is_empty() {
        "-"
    } else {
        &row.observer
    };
    let mut legend = vec![
        format!("{}  {}  {}", row.patient_id, row.timepoint, observer),
        format!("{view} view, {class}"),
    ];
    if flagged {
        legend.push(format!(
            "implausible (red rings): {}",
            row.plausibility_text()
        ));
    }
    legend
}
