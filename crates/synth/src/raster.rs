//! A tiny deterministic rasteriser for synthetic radiographs.
//!
//! Coordinates are continuous pixel coordinates `(column, row)`: pixel `(c, r)` covers
//! `[c, c+1) x [r, r+1)` and has its centre at `(c + 0.5, r + 0.5)`, matching the landmark
//! convention of the data contract (section 2). A shape covers a pixel when it contains the
//! pixel's centre. Everything is clipped to the canvas; no input makes these functions panic.

/// Largest value a 12-bit sample can hold.
pub const MAX_12BIT: u16 = 4095;

/// A single-channel 16-bit image holding 12-bit values, stored row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    /// Number of rows (image height).
    pub rows: u32,
    /// Number of columns (image width).
    pub cols: u32,
    /// `rows * cols` samples, row-major (`data[r * cols + c]`).
    pub data: Vec<u16>,
}

impl Canvas {
    /// A canvas of `rows x cols` pixels filled with `background` (clamped to 12 bits).
    pub fn new(rows: u32, cols: u32, background: u16) -> Self {
        let n = rows as usize * cols as usize;
        Canvas {
            rows,
            cols,
            data: vec![background.min(MAX_12BIT); n],
        }
    }

    /// The sample at column `c`, row `r`, or `None` outside the canvas.
    pub fn get(&self, c: u32, r: u32) -> Option<u16> {
        if c < self.cols && r < self.rows {
            Some(self.data[r as usize * self.cols as usize + c as usize])
        } else {
            None
        }
    }

    /// Largest sample value (0 for an empty canvas).
    pub fn max_value(&self) -> u16 {
        self.data.iter().copied().max().unwrap_or(0)
    }

    /// Set the pixels of row `r` whose column lies in `[c0, c1)` (already clipped).
    fn fill_span(&mut self, r: usize, c0: usize, c1: usize, value: u16) {
        let base = r * self.cols as usize;
        self.data[base + c0..base + c1].fill(value);
    }

    /// Row range `[r0, r1)` whose pixel centres lie in `[y_min, y_max]`, clipped to the canvas.
    fn row_range(&self, y_min: f64, y_max: f64) -> (usize, usize) {
        let r0 = clamp_index((y_min - 0.5).ceil(), self.rows);
        let r1 = clamp_index((y_max - 0.5).floor() + 1.0, self.rows);
        (r0, r1.max(r0))
    }

    /// Fill the polygon `pts` (vertices as `(column, row)`, implicitly closed) with `value`
    /// (clamped to 12 bits), using the even-odd rule on pixel centres.
    ///
    /// A pixel is filled when its centre lies inside; centres exactly on a left or top edge
    /// count as inside, those on a right or bottom edge as outside, so two polygons sharing
    /// an edge never both cover a pixel. Non-finite vertices make the call a no-op.
    pub fn fill_polygon(&mut self, pts: &[(f64, f64)], value: u16) {
        let value = value.min(MAX_12BIT);
        if pts.len() < 3 || pts.iter().any(|&(x, y)| !x.is_finite() || !y.is_finite()) {
            return;
        }
        let y_min = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let y_max = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let (r0, r1) = self.row_range(y_min, y_max);
        let mut xs: Vec<f64> = Vec::with_capacity(pts.len());
        for r in r0..r1 {
            let y = r as f64 + 0.5;
            xs.clear();
            for i in 0..pts.len() {
                let (x0, y0) = pts[i];
                let (x1, y1) = pts[(i + 1) % pts.len()];
                // Half-open rule: an edge covers y0 <= y < y1 (or the reverse).
                if (y0 <= y && y < y1) || (y1 <= y && y < y0) {
                    let t = (y - y0) / (y1 - y0);
                    xs.push(x0 * (1.0 - t) + x1 * t);
                }
            }
            xs.sort_by(f64::total_cmp);
            for pair in xs.chunks_exact(2) {
                // Columns whose centre c + 0.5 lies in [xa, xb).
                let c0 = clamp_index((pair[0] - 0.5).ceil(), self.cols);
                let c1 = clamp_index((pair[1] - 0.5).ceil(), self.cols);
                if c1 > c0 {
                    self.fill_span(r, c0, c1, value);
                }
            }
        }
    }

    /// Fill the disc of the given `centre` (`(column, row)`) and `radius` with `value`
    /// (clamped to 12 bits); pixels whose centre lies within `radius` (inclusive) are set.
    /// A negative or non-finite radius or centre makes the call a no-op.
    pub fn fill_disc(&mut self, centre: (f64, f64), radius: f64, value: u16) {
        let value = value.min(MAX_12BIT);
        let (cx, cy) = centre;
        if !(cx.is_finite() && cy.is_finite() && radius.is_finite()) || radius < 0.0 {
            return;
        }
        let (r0, r1) = self.row_range(cy - radius, cy + radius);
        for r in r0..r1 {
            let dy = r as f64 + 0.5 - cy;
            let h2 = radius * radius - dy * dy;
            if h2 < 0.0 {
                continue;
            }
            let half = h2.sqrt();
            let c0 = clamp_index((cx - half - 0.5).ceil(), self.cols);
            let c1 = clamp_index((cx + half - 0.5).floor() + 1.0, self.cols);
            if c1 > c0 {
                self.fill_span(r, c0, c1, value);
            }
        }
    }
}

/// Clamp a (possibly huge or negative) whole-number float into `[0, n]` as an index.
fn clamp_index(v: f64, n: u32) -> usize {
    if v.is_nan() || v <= 0.0 {
        0
    } else if v >= n as f64 {
        n as usize
    } else {
        v as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(c: &Canvas, v: u16) -> usize {
        c.data.iter().filter(|&&x| x == v).count()
    }

    #[test]
    fn new_canvas_is_filled_and_clamped() {
        let c = Canvas::new(3, 4, 5000);
        assert_eq!(c.data.len(), 12);
        assert!(c.data.iter().all(|&v| v == MAX_12BIT));
        assert_eq!(c.get(3, 2), Some(MAX_12BIT));
        assert_eq!(c.get(4, 0), None);
    }

    #[test]
    fn axis_aligned_square_covers_exact_pixels() {
        let mut c = Canvas::new(10, 10, 0);
        // Square [2,5) x [3,7): columns 2..5, rows 3..7.
        c.fill_polygon(&[(2.0, 3.0), (5.0, 3.0), (5.0, 7.0), (2.0, 7.0)], 100);
        assert_eq!(count(&c, 100), 3 * 4);
        for r in 0..10 {
            for col in 0..10 {
                let inside = (2..5).contains(&col) && (3..7).contains(&r);
                assert_eq!(c.get(col, r) == Some(100), inside, "pixel ({col},{r})");
            }
        }
    }

    #[test]
    fn shared_edge_is_not_double_covered() {
        let mut a = Canvas::new(20, 20, 0);
        let mut b = Canvas::new(20, 20, 0);
        let left = [(1.3, 2.2), (9.7, 1.1), (10.2, 15.6), (2.0, 17.9)];
        let right = [(9.7, 1.1), (18.4, 3.3), (17.0, 18.8), (10.2, 15.6)];
        a.fill_polygon(&left, 1);
        b.fill_polygon(&right, 1);
        let overlap = a
            .data
            .iter()
            .zip(&b.data)
            .filter(|(x, y)| **x == 1 && **y == 1)
            .count();
        assert_eq!(overlap, 0);
    }

    #[test]
    fn rotated_quad_area_is_close() {
        let mut c = Canvas::new(200, 200, 0);
        let (cx, cy, hw, hh, th) = (100.0f64, 90.0f64, 40.0f64, 25.0f64, 0.3f64);
        let (s, co) = th.sin_cos();
        let pts: Vec<(f64, f64)> = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
            .iter()
            .map(|&(x, y)| (cx + x * co - y * s, cy + x * s + y * co))
            .collect();
        c.fill_polygon(&pts, 7);
        let area = count(&c, 7) as f64;
        let expect = 4.0 * hw * hh;
        assert!((area - expect).abs() / expect < 0.02, "{area} vs {expect}");
    }

    #[test]
    fn even_odd_self_intersecting_star_leaves_centre_empty() {
        let mut c = Canvas::new(101, 101, 0);
        let pts: Vec<(f64, f64)> = (0..5)
            .map(|k| {
                let a = std::f64::consts::PI * (0.5 + 0.8 * k as f64);
                (50.5 + 45.0 * a.cos(), 50.5 - 45.0 * a.sin())
            })
            .collect();
        c.fill_polygon(&pts, 9);
        assert_eq!(
            c.get(50, 50),
            Some(0),
            "pentagram centre is outside (even-odd)"
        );
        assert!(count(&c, 9) > 1000);
    }

    #[test]
    fn polygon_partly_or_wholly_outside_is_clipped() {
        let mut c = Canvas::new(8, 8, 0);
        c.fill_polygon(
            &[(-100.0, -50.0), (4.0, -50.0), (4.0, 1e12), (-100.0, 1e12)],
            3,
        );
        assert_eq!(count(&c, 3), 4 * 8);
        let mut d = Canvas::new(8, 8, 0);
        d.fill_polygon(&[(20.0, 20.0), (30.0, 20.0), (30.0, 30.0)], 3);
        d.fill_polygon(&[(-1e300, -1e300), (1e300, -1e300), (1e300, 1e300)], 4);
        d.fill_polygon(&[(f64::NAN, 1.0), (2.0, 2.0), (3.0, 1.0)], 5);
        d.fill_polygon(&[(1.0, 1.0), (2.0, 2.0)], 5);
        assert_eq!(count(&d, 3), 0);
        assert_eq!(count(&d, 5), 0);
        assert!(count(&d, 4) > 0);
        let mut e = Canvas::new(0, 0, 0);
        e.fill_polygon(&[(0.0, 0.0), (5.0, 0.0), (5.0, 5.0)], 1);
        e.fill_disc((0.0, 0.0), 5.0, 1);
        assert!(e.data.is_empty());
    }

    #[test]
    fn disc_covers_centres_within_radius() {
        let mut c = Canvas::new(50, 60, 0);
        let (cx, cy, rad) = (30.2, 20.7, 9.5);
        c.fill_disc((cx, cy), rad, 4000);
        for r in 0..50u32 {
            for col in 0..60u32 {
                let dx = col as f64 + 0.5 - cx;
                let dy = r as f64 + 0.5 - cy;
                let inside = dx * dx + dy * dy <= rad * rad;
                assert_eq!(c.get(col, r) == Some(4000), inside, "pixel ({col},{r})");
            }
        }
    }

    #[test]
    fn disc_is_clipped_and_value_clamped() {
        let mut c = Canvas::new(10, 10, 0);
        c.fill_disc((-3.0, 5.0), 5.0, 60000);
        assert!(c.data.iter().all(|&v| v == 0 || v == MAX_12BIT));
        assert!(count(&c, MAX_12BIT) > 0);
        c.fill_disc((5.0, 5.0), -1.0, 1);
        c.fill_disc((5.0, 5.0), f64::INFINITY, 1);
        assert_eq!(count(&c, 1), 0);
        c.fill_disc((5.0, 5.0), 1e200, 2);
        assert_eq!(count(&c, 2), 100);
    }
}
