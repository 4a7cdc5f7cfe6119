//! Overlays of synthetic images: every landmark's dot lies at its scaled pixel.

use std::path::PathBuf;

use plumbline_geometry::{MetricOptions, Metrics};
use plumbline_ingest::clinical::read_clinical;
use plumbline_ingest::{ScanOptions, default_windows, group, scan};
use plumbline_render::decode::load_display;
use plumbline_render::overlay::{DOT, OverlaySpec, draw_overlay};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// Long (over 80 lines): one drawn overlay, every landmark's dot checked at its scaled position.
#[test]
fn landmark_dots_are_at_the_scaled_coordinates() {
    let cohort = root().join("fixtures/cohort-small");
    let s = scan(
        &cohort.join("dicom/P0005"),
        &ScanOptions::default(),
        &|_| {},
    )
    .unwrap();
    let (clinical, _) = read_clinical(&cohort.join("clinical.csv")).unwrap();
    let g = group(&s, Some(&clinical), &default_windows());
    // 4 timepoints, three of them also read by a second reader.
    assert_eq!(g.readings.len(), 4 + 3);
    let mut checked = 0;
    for r in &g.readings {
        let m = Metrics::compute(
            r.lateral.as_ref().map(|v| &v.landmarks),
            r.ap.as_ref().map(|v| &v.landmarks),
            &MetricOptions::default(),
        );
        for v in [&r.lateral, &r.ap].into_iter().flatten() {
            // Full size (scale 1) and downsampled to 150 rows (scale < 0.5).
            for max_rows in [1600, 150] {
                let d = load_display(&v.path, max_rows).unwrap();
                assert!(d.image.height() <= max_rows);
                let img = draw_overlay(
                    &d,
                    &OverlaySpec {
                        kind: v.landmarks.kind(),
                        pixels: &v.pixels,
                        metrics: &m,
                        legend: vec![r.patient_id.clone()],
                        flagged: &[],
                    },
                );
                assert_eq!((img.width(), img.height()), d.image.dimensions());
                for (lm, &(c, row)) in &v.pixels {
                    let (x, y) = ((c * d.scale).floor() as u32, (row * d.scale).floor() as u32);
                    assert_eq!(
                        *img.get_pixel(x, y),
                        DOT,
                        "{lm} at {x},{y} (scale {})",
                        d.scale
                    );
                    checked += 1;
                }
                // A flagged landmark gets a red ring 9 px out (drawn last, on top).
                let (first, &(c, row)) = v.pixels.iter().next().unwrap();
                let ringed = draw_overlay(
                    &d,
                    &OverlaySpec {
                        kind: v.landmarks.kind(),
                        pixels: &v.pixels,
                        metrics: &m,
                        legend: vec![],
                        flagged: &[*first],
                    },
                );
                let (x, y) = ((c * d.scale).floor() as i64, (row * d.scale).floor() as i64);
                let mut red = 0;
                for (dx, dy) in [(8, 0), (-8, 0), (0, 8), (0, -8)] {
                    let (px, py) = (x + dx, y + dy);
                    if px >= 0
                        && py >= 0
                        && px < i64::from(img.width())
                        && py < i64::from(img.height())
                    {
                        assert_eq!(
                            ringed.get_pixel(px as u32, py as u32).0,
                            [255, 0, 0],
                            "{first}"
                        );
                        red += 1;
                    }
                }
                assert!(red >= 2, "{first} at {x},{y}");
                assert_eq!(*ringed.get_pixel(x as u32, y as u32), DOT, "the dot stays");
                // The rest of the picture is the radiograph: most pixels stay grey.
                let grey = img
                    .pixels()
                    .filter(|p| p[0] == p[1] && p[1] == p[2])
                    .count();
                assert!(grey as f64 > 0.5 * f64::from(img.width() * img.height()));
            }
        }
    }
    assert!(checked > 1000, "{checked}");
}
