//! The display pipeline of one frame: Modality LUT, VOI and MONOCHROME1 folded into one
//! table, then the rows read through it, at full size or area-resized.

use super::frame::Frame;
use super::resize::resize_rows_with;
use super::voi::{choose_voi, modality_lut};
use super::{DecodeError, DisplayImage};

/// [`super::load_display`] on an opened frame.
pub(super) fn display(frame: &Frame<'_>, max_rows: u32) -> Result<DisplayImage, DecodeError> {
    let max_rows = max_rows.max(1);
    let modality = modality_lut(frame)?;
    let (voi, window_source) = choose_voi(frame, &modality)?;
    let mono1 = frame.header.monochrome1;
    let display: Vec<f32> = modality
        .iter()
        .map(|&x| {
            let y = voi.apply(f64::from(x)) as f32;
            if mono1 { 255.0 - y } else { y }
        })
        .collect();
    let h = &frame.header;
    let (rows, cols) = (h.rows, h.cols);
    let (image, scale) = if rows as u32 <= max_rows {
        let lut8: Vec<u8> = display.iter().map(|&v| to_u8(v)).collect();
        let mut buf = vec![0u8; rows * cols];
        for (r, out) in buf.chunks_exact_mut(cols).enumerate() {
            frame.samples.map_row(r, cols, h.index, &lut8, out);
        }
        (gray_image(cols, rows, buf), 1.0)
    } else {
        let scale = f64::from(max_rows) / rows as f64;
        let out_rows = max_rows as usize;
        let out_cols = ((cols as f64 * scale).round() as usize).max(1);
        let step = 1.0 / scale;
        let resized = resize_rows_with(
            (rows, cols),
            (out_rows, out_cols),
            (step, step),
            |r, row| frame.samples.map_row(r, cols, h.index, &display, row),
        );
        let buf = resized.into_iter().map(to_u8).collect();
        (gray_image(out_cols, out_rows, buf), scale)
    };
    Ok(DisplayImage {
        image,
        scale,
        source_rows: rows as u32,
        source_cols: cols as u32,
        window_source,
    })
}

/// [`super::decode_modality`] on an opened frame.
pub(super) fn modality(frame: &Frame<'_>) -> Result<(u32, u32, Vec<f32>), DecodeError> {
    let lut = modality_lut(frame)?;
    let h = &frame.header;
    let mut out = vec![0f32; h.rows * h.cols];
    for (r, row) in out.chunks_exact_mut(h.cols).enumerate() {
        frame.samples.map_row(r, h.cols, h.index, &lut, row);
    }
    Ok((h.rows as u32, h.cols as u32, out))
}

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}

fn gray_image(width: usize, height: usize, buf: Vec<u8>) -> image::GrayImage {
    image::GrayImage::from_raw(width as u32, height as u32, buf).expect("buffer is width x height")
}
