//! QC overlays: every landmark (dot and short label), the endplate lines, and per view the
//! construction lines of the metrics, drawn on the windowed, downsampled radiograph, with
//! a legend box of the reading's metrics and imbalance class.
//!
//! Colours: landmarks yellow, endplates cyan, plumb lines and the vertical references
//! magenta, pelvic lines orange, Cobb end-plates green, text black on white.

use image::{Rgb, RgbImage};
use plumbline_geometry::{
    ByLandmark, Corner, Endplate, Landmark, Level, Metric, Metrics, Side, ViewKind,
};

use crate::decode::DisplayImage;

/// Landmark dot colour.
pub const DOT: Rgb<u8> = Rgb([255, 212, 0]);
const ENDPLATE: Rgb<u8> = Rgb([0, 220, 255]);
const PLUMB: Rgb<u8> = Rgb([255, 0, 200]);
const PELVIS: Rgb<u8> = Rgb([255, 140, 0]);
const COBB: Rgb<u8> = Rgb([60, 230, 60]);
const TEXT: Rgb<u8> = Rgb([0, 0, 0]);
const BOX: Rgb<u8> = Rgb([255, 255, 255]);
/// Rings around the landmarks of a failed plausibility check.
const FLAG: Rgb<u8> = Rgb([255, 0, 0]);
/// Radius of those rings, in output pixels.
const FLAG_RADIUS: i64 = 9;

/// Radius of a landmark dot in output pixels.
pub const DOT_RADIUS: i64 = 3;

/// What to draw for one view of one reading.
pub struct OverlaySpec<'a> {
    /// Lateral or AP.
    pub kind: ViewKind,
    /// Landmarks in source pixels (column, row).
    pub pixels: &'a ByLandmark<(f64, f64)>,
    /// The reading's metrics (both views).
    pub metrics: &'a Metrics,
    /// Legend lines above the metrics: patient, timepoint, reader, class.
    pub legend: Vec<String>,
    /// Landmarks of failed plausibility checks (`landmarks.md` section 7): ringed in red.
    pub flagged: &'a [Landmark],
}

/// Draws the overlay on a copy of `display` and returns it.
pub fn draw_overlay(display: &DisplayImage, spec: &OverlaySpec) -> RgbImage {
    let mut img = RgbImage::from_fn(display.image.width(), display.image.height(), |x, y| {
        let g = display.image.get_pixel(x, y)[0];
        Rgb([g, g, g])
    });
    let pts = Points::new(spec, display.scale);
    // Endplates of every level.
    for l in Level::thoracolumbar().chain([Level::S1]) {
        for e in [Endplate::Sup, Endplate::Inf] {
            if let Some((a, b)) = pts.endplate(l, e) {
                line(&mut img, a, b, ENDPLATE, 1);
            }
        }
    }
    let notes = match spec.kind {
        ViewKind::Lateral => draw_lateral(&mut img, &pts, spec.metrics),
        ViewKind::Ap => draw_ap(&mut img, &pts, spec.metrics),
    };
    // Labels, then the legend, then the dots: nothing hides a landmark.
    let s = display.scale;
    for (lm, &(c, r)) in spec.pixels {
        text(&mut img, (c * s + 5.0, r * s - 4.0), &short_label(*lm), 1);
    }
    let mut legend = spec.legend.clone();
    legend.extend(notes);
    legend_box(&mut img, &legend);
    for &(c, r) in spec.pixels.values() {
        disc(&mut img, (c * s, r * s), DOT_RADIUS, DOT);
    }
    for lm in spec.flagged {
        if let Some(p) = pts.at(*lm) {
            ring(&mut img, p, FLAG_RADIUS, FLAG);
        }
    }
    img
}

/// The landmarks of one view in output pixels, and the points the construction lines
/// start from.
struct Points<'a> {
    pixels: &'a ByLandmark<(f64, f64)>,
    scale: f64,
    /// The corners an endplate line joins: (negative side, positive side), e.g. posterior
    /// and anterior on a lateral view.
    corners: (Corner, Corner),
    c7: Option<(f64, f64)>,
    /// The S1 superior endplate: (negative corner, positive corner).
    s1: Option<((f64, f64), (f64, f64))>,
    s1_mid: Option<(f64, f64)>,
    /// The mean of the femoral heads marked.
    head_mid: Option<(f64, f64)>,
}

impl<'a> Points<'a> {
    fn new(spec: &OverlaySpec<'a>, scale: f64) -> Self {
        let corners = match spec.kind {
            ViewKind::Lateral => (Corner::Post, Corner::Ant),
            ViewKind::Ap => (Corner::Right, Corner::Left),
        };
        let mut p = Points {
            pixels: spec.pixels,
            scale,
            corners,
            c7: None,
            s1: None,
            s1_mid: None,
            head_mid: None,
        };
        p.c7 = p.at(Landmark::Centroid(Level::C7));
        p.s1 = p.endplate(Level::S1, Endplate::Sup);
        p.s1_mid = p.s1.map(|(a, b)| ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0));
        let heads: Vec<(f64, f64)> = [Side::Left, Side::Right]
            .into_iter()
            .filter_map(|sd| p.at(Landmark::FemoralHead(sd)))
            .collect();
        p.head_mid = (!heads.is_empty()).then(|| {
            let n = heads.len() as f64;
            (
                heads.iter().map(|p| p.0).sum::<f64>() / n,
                heads.iter().map(|p| p.1).sum::<f64>() / n,
            )
        });
        p
    }

    /// A landmark in output pixels.
    fn at(&self, lm: Landmark) -> Option<(f64, f64)> {
        let s = self.scale;
        self.pixels.get(&lm).map(|&(c, r)| (c * s, r * s))
    }

    /// An endplate's two corners (negative side first), when both are marked.
    fn endplate(&self, l: Level, e: Endplate) -> Option<((f64, f64), (f64, f64))> {
        let (neg, pos) = self.corners;
        Some((
            self.at(Landmark::Corner(l, e, neg))?,
            self.at(Landmark::Corner(l, e, pos))?,
        ))
    }
}

/// The lateral construction lines: C7 plumb line and the S1 vertical (SVA), the S1
/// endplate and the femoral-head line (PT, PI), the L1 endplate (LL). Returns the
/// legend lines of the lateral metrics.
fn draw_lateral(img: &mut RgbImage, pts: &Points, metrics: &Metrics) -> Vec<String> {
    let h = f64::from(img.height());
    let (c7, s1) = (pts.c7, pts.s1);
    // C7 plumb line and the vertical through the S1 posterior corner: SVA.
    if let Some(c) = c7 {
        line(img, c, (c.0, h), PLUMB, 2);
    }
    if let Some((post, _)) = s1 {
        line(img, (post.0, post.1 - 40.0), (post.0, h), PLUMB, 1);
    }
    if let (Some(c), Some((post, _)), Some(v)) = (c7, s1, metrics.get(Metric::SvaMm)) {
        let y = post.1 - 12.0;
        line(img, (c.0, y), (post.0, y), PLUMB, 1);
        text(
            img,
            ((c.0 + post.0) / 2.0 - 20.0, y - 20.0),
            &format!("SVA {v:.1}"),
            1,
        );
    }
    // S1 endplate extended; head midpoint -> S1 midpoint (PT, PI).
    if let Some((a, b)) = s1 {
        extended_line(img, a, b, 0.5, PELVIS);
    }
    if let (Some(hm), Some(m)) = (pts.head_mid, pts.s1_mid) {
        line(img, hm, m, PELVIS, 2);
        line(img, hm, (hm.0, hm.1 - (hm.1 - m.1).abs() - 20.0), PELVIS, 1);
    }
    // L1 superior endplate (LL) extended.
    if let Some((a, b)) = pts.endplate(Level::L(1), Endplate::Sup) {
        extended_line(img, a, b, 0.5, COBB);
    }
    [
        Metric::SvaMm,
        Metric::PtDeg,
        Metric::PiDeg,
        Metric::SsDeg,
        Metric::LlDeg,
        Metric::TkDeg,
        Metric::PiLlDeg,
        Metric::TpaDeg,
    ]
    .into_iter()
    .map(|m| metric_line(metrics, m))
    .collect()
}

/// The AP construction lines: CSVL and the C7 plumb line (C7PL-CSVL), the Cobb end
/// plates, the femoral-head line. Returns the legend lines of the AP metrics.
fn draw_ap(img: &mut RgbImage, pts: &Points, metrics: &Metrics) -> Vec<String> {
    let h = f64::from(img.height());
    let (c7, s1_mid) = (pts.c7, pts.s1_mid);
    // CSVL through the S1 midpoint; C7 plumb line; their distance.
    if let Some(m) = s1_mid {
        line(img, (m.0, 0.0), (m.0, h), PLUMB, 1);
    }
    if let Some(c) = c7 {
        line(img, c, (c.0, h), PLUMB, 2);
    }
    if let (Some(c), Some(m), Some(v)) = (c7, s1_mid, metrics.get(Metric::C7plCsvlMm)) {
        let y = c.1 + 30.0;
        line(img, (c.0, y), (m.0, y), PLUMB, 1);
        text(
            img,
            (c.0.min(m.0), y + 6.0),
            &format!("C7PL-CSVL {v:.1}"),
            1,
        );
    }
    // Cobb end vertebrae: their end plates extended, and the angle.
    if let Some((u, l)) = metrics.cobb_levels {
        for (lv, e) in [(u, Endplate::Sup), (l, Endplate::Inf)] {
            if let Some((a, b)) = pts.endplate(lv, e) {
                extended_line(img, a, b, 1.5, COBB);
            }
        }
        if let (Some((a, _)), Some(v)) =
            (pts.endplate(u, Endplate::Sup), metrics.get(Metric::CobbDeg))
        {
            text(
                img,
                (a.0 - 70.0, a.1 - 14.0),
                &format!("Cobb {v:.1} {u}-{l}"),
                1,
            );
        }
    }
    if let (Some(a), Some(b)) = (
        pts.at(Landmark::FemoralHead(Side::Right)),
        pts.at(Landmark::FemoralHead(Side::Left)),
    ) {
        line(img, a, b, PELVIS, 1);
    }
    [
        Metric::C7plCsvlMm,
        Metric::CobbDeg,
        Metric::PelvicObliquityDeg,
    ]
    .into_iter()
    .map(|m| metric_line(metrics, m))
    .collect()
}

/// A circle outline 2 px wide.
fn ring(img: &mut RgbImage, (x, y): (f64, f64), r: i64, c: Rgb<u8>) {
    let (cx, cy) = (x.floor() as i64, y.floor() as i64);
    for dy in -r..=r {
        for dx in -r..=r {
            let d2 = dx * dx + dy * dy;
            if d2 <= r * r && d2 > (r - 2) * (r - 2) {
                put(img, cx + dx, cy + dy, c);
            }
        }
    }
}

fn metric_line(m: &Metrics, k: Metric) -> String {
    match m.get(k) {
        Some(v) => format!("{} {v:.1}", k.name()),
        None => format!("{} -", k.name()),
    }
}

/// A short label: `L3` for a centroid, `L3sa` for the superior anterior corner, `FHl`.
pub fn short_label(lm: Landmark) -> String {
    match lm {
        Landmark::Centroid(l) => l.to_string(),
        Landmark::Corner(l, e, c) => {
            let e = match e {
                Endplate::Sup => 's',
                Endplate::Inf => 'i',
            };
            let c = match c {
                Corner::Ant => 'a',
                Corner::Post => 'p',
                Corner::Left => 'l',
                Corner::Right => 'r',
            };
            format!("{l}{e}{c}")
        }
        Landmark::FemoralHead(Side::Left) => "FHl".into(),
        Landmark::FemoralHead(Side::Right) => "FHr".into(),
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// A filled disc centred on the pixel that contains `(x, y)`.
fn disc(img: &mut RgbImage, (x, y): (f64, f64), r: i64, c: Rgb<u8>) {
    let (cx, cy) = (x.floor() as i64, y.floor() as i64);
    for dy in -r..=r {
        for dx in -r..=r {
            if dx * dx + dy * dy <= r * r {
                put(img, cx + dx, cy + dy, c);
            }
        }
    }
}

/// The segment a-b extended by `factor` times its length beyond both ends, 2 px thick.
fn extended_line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), factor: f64, c: Rgb<u8>) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    line(
        img,
        (a.0 - dx * factor, a.1 - dy * factor),
        (b.0 + dx * factor, b.1 + dy * factor),
        c,
        2,
    );
}

/// A line of the given thickness (DDA, clipped per pixel).
fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), c: Rgb<u8>, thickness: i64) {
    if !(a.0.is_finite() && a.1.is_finite() && b.0.is_finite() && b.1.is_finite()) {
        return;
    }
    let steps = (b.0 - a.0)
        .abs()
        .max((b.1 - a.1).abs())
        .ceil()
        .clamp(1.0, 20_000.0) as i64;
    let half = thickness / 2;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        for dy in -half..=(thickness - 1 - half) {
            for dx in -half..=(thickness - 1 - half) {
                put(img, x.floor() as i64 + dx, y.floor() as i64 + dy, c);
            }
        }
    }
}

/// Text in the 8x8 bitmap font on a white background strip, `scale` times enlarged.
fn text(img: &mut RgbImage, (x, y): (f64, f64), s: &str, scale: i64) {
    let (x0, y0) = (x.round() as i64, y.round() as i64);
    let w = 8 * scale * s.chars().count() as i64;
    for yy in y0 - 1..y0 + 8 * scale + 1 {
        for xx in x0 - 1..x0 + w + 1 {
            put(img, xx, yy, BOX);
        }
    }
    for (i, ch) in s.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    for sy in 0..scale {
                        for sx in 0..scale {
                            put(
                                img,
                                x0 + (i as i64 * 8 + col) * scale + sx,
                                y0 + row as i64 * scale + sy,
                                TEXT,
                            );
                        }
                    }
                }
            }
        }
    }
}

fn legend_box(img: &mut RgbImage, lines: &[String]) {
    let scale = if img.height() >= 800 { 2 } else { 1 };
    let lh = 10 * scale;
    let w = lines
        .iter()
        .map(|l| l.chars().count() as i64)
        .max()
        .unwrap_or(0)
        * 8
        * scale
        + 8;
    let hgt = lines.len() as i64 * lh + 8;
    for y in 0..hgt {
        for x in 0..w {
            put(img, x, y, BOX);
        }
    }
    for (i, l) in lines.iter().enumerate() {
        text(img, (4.0, 4.0 + (i as i64 * lh) as f64), l, scale);
    }
}

pub use plumbline_export::file_safe;
