//! Area-averaging resize (see [`area_resize`]).

/// Area-averaging resize of a row-major f32 image to (out_rows, out_cols): each output
/// pixel is the mean of the source area it covers (source pixels per output pixel:
/// `rows / out_rows` down, `cols / out_cols` across), partly covered source pixels weighted
/// by the covered fraction. Works for enlarging too (each output pixel then takes the
/// value of the source pixel(s) under it). Separable (rows, then columns) and O(pixels);
/// an empty source or output gives an empty or zero result.
///
/// # Panics
/// If `src.len() != rows * cols`.
pub fn area_resize(src: &[f32], rows: u32, cols: u32, out_rows: u32, out_cols: u32) -> Vec<f32> {
    let (rows, cols) = (rows as usize, cols as usize);
    let (out_rows, out_cols) = (out_rows as usize, out_cols as usize);
    assert_eq!(
        src.len(),
        rows * cols,
        "area_resize: src is not rows x cols"
    );
    if (rows, cols) == (out_rows, out_cols) {
        return src.to_vec();
    }
    if rows == 0 || cols == 0 || out_rows == 0 || out_cols == 0 {
        return vec![0.0; out_rows * out_cols];
    }
    let step = (rows as f64 / out_rows as f64, cols as f64 / out_cols as f64);
    resize_rows_with((rows, cols), (out_rows, out_cols), step, |r, row| {
        row.copy_from_slice(&src[r * cols..(r + 1) * cols]);
    })
}

/// One output pixel's share of one source pixel along an axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Tap {
    src: usize,
    dst: usize,
    w: f32,
}

/// Area-averaging taps of one axis: output `k` covers source `[k*step, (k+1)*step)`
/// clipped to `[0, n_in)`; each source pixel it overlaps gets weight
/// `overlap / covered length`, so the weights of every output sum to 1. Sorted by `dst`
/// and, because the intervals move forward, with `src` non-decreasing too. At most
/// `n_in + n_out` taps.
pub(super) fn axis_taps(n_in: usize, n_out: usize, step: f64) -> Vec<Tap> {
    let mut taps = Vec::with_capacity(n_in + n_out);
    let end = n_in as f64;
    for k in 0..n_out {
        let mut a = k as f64 * step;
        let mut b = ((k + 1) as f64 * step).min(end);
        if b - a < 1e-9 {
            // an output past the source edge (only from rounding): repeat the last pixel
            a = (end - 1.0).max(0.0);
            b = end;
        }
        let len = b - a;
        let first = a.floor() as usize;
        let last = (b.ceil() as usize).min(n_in);
        for s in first..last {
            let overlap = (b.min((s + 1) as f64) - a.max(s as f64)).max(0.0);
            if overlap > 1e-9 {
                taps.push(Tap {
                    src: s,
                    dst: k,
                    w: (overlap / len) as f32,
                });
            }
        }
    }
    taps
}

/// The separable area resize, reading source row `r` through `fill_row(r, buffer)`. Rows
/// are requested in increasing order, each at most once. `step` = source pixels per output
/// pixel (down, across). Keeps one `out_rows x cols` intermediate.
pub(super) fn resize_rows_with(
    (rows, cols): (usize, usize),
    (out_rows, out_cols): (usize, usize),
    (step_r, step_c): (f64, f64),
    mut fill_row: impl FnMut(usize, &mut [f32]),
) -> Vec<f32> {
    let vtaps = axis_taps(rows, out_rows, step_r);
    let htaps = axis_taps(cols, out_cols, step_c);
    let mut mid = vec![0f32; out_rows * cols];
    let mut row = vec![0f32; cols];
    let mut loaded = usize::MAX;
    for t in &vtaps {
        if t.src != loaded {
            fill_row(t.src, &mut row);
            loaded = t.src;
        }
        let acc = &mut mid[t.dst * cols..(t.dst + 1) * cols];
        for (a, &v) in acc.iter_mut().zip(&row) {
            *a += t.w * v;
        }
    }
    drop(row);
    let mut out = vec![0f32; out_rows * out_cols];
    for (m, o) in mid.chunks_exact(cols).zip(out.chunks_exact_mut(out_cols)) {
        for t in &htaps {
            o[t.dst] += t.w * m[t.src];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_weights_sum_to_one_and_cover_the_source() {
        for (n_in, n_out) in [(10, 3), (3, 2), (1955, 800), (7, 7), (4, 9), (1, 5), (5, 1)] {
            let taps = axis_taps(n_in, n_out, n_in as f64 / n_out as f64);
            let mut sum = vec![0f64; n_out];
            let mut cover = vec![0f64; n_in];
            for t in &taps {
                sum[t.dst] += f64::from(t.w);
                cover[t.src] += f64::from(t.w) * n_in as f64 / n_out as f64;
            }
            assert!(
                sum.iter().all(|s| (s - 1.0).abs() < 1e-5),
                "{n_in}->{n_out}"
            );
            assert!(
                cover.iter().all(|c| (c - 1.0).abs() < 1e-4),
                "{n_in}->{n_out}"
            );
            assert!(taps.windows(2).all(|w| w[0].src <= w[1].src));
            assert!(taps.len() <= n_in + n_out);
        }
        // 3 -> 2: output 0 = (1 * s0 + 0.5 * s1) / 1.5
        let t = axis_taps(3, 2, 1.5);
        let w: Vec<_> = t.iter().map(|t| (t.src, t.dst, t.w)).collect();
        assert_eq!(w.len(), 4);
        assert!((w[0].2 - 2.0 / 3.0).abs() < 1e-6 && (w[1].2 - 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn taps_with_a_step_that_overshoots_the_edge() {
        // 136 columns at scale 100/320: 43 outputs of 3.2 source columns, the last one
        // covers only [134.4, 136)
        let t = axis_taps(136, 43, 3.2);
        let last: Vec<_> = t.iter().filter(|t| t.dst == 42).collect();
        assert_eq!(
            last.iter().map(|t| t.src).collect::<Vec<_>>(),
            vec![134, 135]
        );
        let (w0, w1) = (last[0].w, last[1].w);
        assert!((w0 - 0.6 / 1.6).abs() < 1e-6 && (w1 - 1.0 / 1.6).abs() < 1e-6);
        // and an output entirely past the edge repeats the last pixel
        let t = axis_taps(4, 3, 2.0);
        assert_eq!(
            t.last().unwrap(),
            &Tap {
                src: 3,
                dst: 2,
                w: 1.0
            }
        );
    }

    #[test]
    fn resize_reads_each_source_row_once_in_order() {
        let mut seen = Vec::new();
        let out = resize_rows_with((7, 2), (3, 1), (7.0 / 3.0, 2.0), |r, row| {
            seen.push(r);
            row.fill(r as f32);
        });
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        // output 0 covers rows [0, 2.33): (0 + 1 + 0.33*2) / 2.33
        let want0 = (0.0 + 1.0 + 2.0 / 3.0) / (7.0 / 3.0);
        assert!((f64::from(out[0]) - want0).abs() < 1e-5, "{out:?}");
    }
}
