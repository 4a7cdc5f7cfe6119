//! Radiograph pixels for the QC overlays: decode frame 0 of a DICOM image, apply the
//! Modality LUT and the VOI transform, invert MONOCHROME1, and shrink the result by area
//! averaging to an 8-bit picture of bounded height.
//!
//! # Pipeline (what [`load_display`] does)
//!
//! 1. **Decode** frame 0. Native (uncompressed) pixel data is read in place from the parsed
//!    object, without a copy. Encapsulated pixel data is decoded by `dicom-pixeldata` 0.10
//!    (`PixelDecoder::decode_pixel_data_frame(0)`: JPEG baseline/extended 8-bit and
//!    lossless, JPEG-LS with the `jpeg-ls` cargo feature, JPEG 2000), except two cases it
//!    cannot do, decoded here:
//!    * RLE Lossless (module `rle`): its decoder refuses frames of 16 MB or more that are
//!      compressed better than 32:1 ("Could not allocate frame"), which flat synthetic
//!      images (the cohort's 7000 x 3000 RLE files, ~0.7 MB) are;
//!    * 12-bit lossy JPEG (module `jpeg12`, process 4, 1.2.840.10008.1.2.4.51): `jpeg-decoder`
//!      0.3 has no 12-bit DCT ("unsupported JPEG feature: SamplePrecision(12)").
//!
//!    Only greyscale images are accepted (SamplesPerPixel 1, MONOCHROME1/2, BitsAllocated
//!    8 or 16). (`dicom-pixeldata` still refuses JPEG 2000 frames of 16 MB or more compressed
//!    better than 64:1; real radiographs are far from that.)
//! 2. **Stored value.** Native samples are shifted by `HighBit + 1 - BitsStored` and masked
//!    to BitsStored bits (unused high bits may hold overlay or garbage), then sign-extended
//!    if PixelRepresentation is 1. Decoder output is already a number, so it is clamped to
//!    the BitsStored range instead of masked.
//! 3. **Modality LUT** (PS3.3 C.11.1): the first item of a Modality LUT Sequence if there
//!    is one (input below/above the table maps to the first/last entry), else
//!    `RescaleSlope * v + RescaleIntercept` (1 and 0 when absent; also looked up in the
//!    Pixel Value Transformation functional group). Computed in `f64`, kept as `f32`.
//! 4. **VOI**, implemented here (the arithmetic of `dicom-pixeldata`'s `VoiLutOption` is not
//!    used: it only applies to its own conversions and silently min-max normalises), output
//!    range 0..=255, in this order of precedence:
//!    * `"window"`: the first WindowCenter/WindowWidth pair (root, else the Frame VOI LUT
//!      functional group) with VOILUTFunction `LINEAR` (default; PS3.3 C.11.2.1.2.1, needs
//!      width >= 1), `LINEAR_EXACT` (C.11.2.1.3.2, width > 0) or `SIGMOID` (C.11.2.1.3.1,
//!      width > 0). An unknown function name is treated as LINEAR; a window whose width is
//!      invalid for its function is ignored (next rule).
//!    * `"voi_lut"`: the first item of the VOI LUT Sequence: the modality value, rounded,
//!      indexes the table (clamped to its ends); an entry `e` becomes
//!      `255 * e / (2^n - 1)` with `n` the descriptor's bit depth (or `/ max entry` when a
//!      table holds values above `2^n - 1`, a known descriptor error).
//!    * `"percentile"`: a linear ramp from the 1st to the 99th percentile of the frame's
//!      modality values (`lo` -> 0, `hi` -> 255, clamped). The k-th percentile is the
//!      smallest value whose cumulative count reaches `ceil(k/100 * N)`. Pixels equal to
//!      PixelPaddingValue (or inside the PixelPaddingRangeLimit range) are left out of the
//!      count when the image declares them. If `hi <= lo` the min and max are used instead.
//! 5. **MONOCHROME1** is inverted after the VOI step (`255 - y`), so bone is bright.
//! 6. **Resize** by area averaging (see [`area_resize`]) to at most `max_rows` rows, with
//!    the same scale on both axes: output pixel `(r, c)` is the mean of the source area
//!    `[r/scale, (r+1)/scale) x [c/scale, (c+1)/scale)`, fractional coverage weighted, so a
//!    source point `(x, y)` lies at `(x * scale, y * scale)` in the output on both axes, in
//!    continuous coordinates with `(0, 0)` at the top-left corner of the first pixel (the
//!    DICOM SCOORD convention: the first pixel's centre is `(0.5, 0.5)`).
//!    Output columns are `round(cols * scale)`; a last column that reaches past the source
//!    edge averages only the part that exists. The windowed values are averaged as `f32`
//!    and rounded once at the end.
//!
//! Steps 3-5 are folded into one table per image (stored value -> display value, at most
//! 65536 entries), and step 6 reads the source rows through that table: the only
//! full-size buffers are the parsed object's pixel data (plus the decoder's output for
//! compressed files); the resize keeps one `f32` buffer of `out_rows x cols`. Everything is
//! single-threaded; callers parallelise over images.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_core::header::HasLength;
use dicom_core::value::DicomValueType;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_pixeldata::PixelDecoder;

/// A radiograph ready for drawing: 8-bit grey, at most `max_rows` tall, with the factor
/// that maps source pixel coordinates to these pixels.
pub struct DisplayImage {
    pub image: image::GrayImage,
    /// output pixels per source pixel (<= 1), same on both axes
    pub scale: f64,
    pub source_rows: u32,
    pub source_cols: u32,
    /// how the grey levels were windowed: "window" (WindowCenter/Width), "voi_lut",
    /// "percentile" (1-99 % of the pixels)
    pub window_source: &'static str,
}

impl std::fmt::Debug for DisplayImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisplayImage")
            .field("size", &(self.image.width(), self.image.height()))
            .field("scale", &self.scale)
            .field("source_rows", &self.source_rows)
            .field("source_cols", &self.source_cols)
            .field("window_source", &self.window_source)
            .finish()
    }
}

/// Why a file's pixels could not be turned into a picture. Every message starts with the
/// file's path.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not readable as a DICOM file (I/O error, not DICOM, truncated, unknown encoding).
    #[error("{}: cannot read as DICOM: {message}", path.display())]
    Read { path: PathBuf, message: String },
    /// The object has no Pixel Data (7FE0,0010), e.g. an SR document.
    #[error("{}: no pixel data (7FE0,0010) in this object", path.display())]
    NoPixelData { path: PathBuf },
    /// The pixel data is in a transfer syntax this build cannot decode.
    #[error("{}: unsupported transfer syntax {uid} ({name}): this build has no decoder for it", path.display())]
    UnsupportedTransferSyntax {
        path: PathBuf,
        uid: String,
        name: &'static str,
    },
    /// The transfer syntax has a decoder behind a cargo feature this build was made without
    /// (JPEG-LS: `jpeg-ls`, which builds the C++ CharLS library).
    #[error(
        "{}: the {name} ({uid}) pixel data needs the `{feature}` feature, which this build of plumbline \
         was made without; rebuild with `cargo build --release -p plumbline --features {feature}` \
         (needs cmake and a C++ compiler, Debian: apt-get install cmake g++)",
        path.display()
    )]
    CodecUnavailable {
        path: PathBuf,
        uid: String,
        name: &'static str,
        feature: &'static str,
    },
    /// The codec failed, or gave a frame of the wrong size.
    #[error("{}: cannot decode the {name} ({uid}) pixel data: {message}", path.display())]
    Decode {
        path: PathBuf,
        uid: String,
        name: &'static str,
        message: String,
    },
    /// A valid image this module does not handle (colour, 32-bit samples, float pixels...).
    #[error("{}: unsupported image: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    /// An attribute needed for decoding or the LUTs is missing or malformed.
    #[error("{}: {attribute}: {what}", path.display())]
    BadAttribute {
        path: PathBuf,
        attribute: &'static str,
        what: String,
    },
}

/// Decodes frame 0 of `path`, applies the Modality LUT (RescaleSlope/Intercept, or a
/// Modality LUT Sequence), then the VOI transform: WindowCenter/Width (first pair; DICOM
/// PS3.3 C.11.2.1.2 linear function; VOILUTFunction LINEAR_EXACT and SIGMOID honoured),
/// else a VOI LUT Sequence, else a 1-99 percentile window of the image; inverts
/// MONOCHROME1 so bone is bright; then downsamples to at most `max_rows` rows by area
/// averaging keeping the aspect ratio (scale = min(1, max_rows / rows)). A `max_rows` of 0
/// is taken as 1. See the module documentation for the exact rules.
pub fn load_display(path: &Path, max_rows: u32) -> Result<DisplayImage, DecodeError> {
    let max_rows = max_rows.max(1);
    with_frame(path, |frame| {
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
    })
}

/// The same before windowing: frame 0 as f32 after the Modality LUT, row-major (for tests
/// and codec comparisons). Returns `(rows, cols, values)`.
pub fn decode_modality(path: &Path) -> Result<(u32, u32, Vec<f32>), DecodeError> {
    with_frame(path, |frame| {
        let lut = modality_lut(frame)?;
        let h = &frame.header;
        let mut out = vec![0f32; h.rows * h.cols];
        for (r, row) in out.chunks_exact_mut(h.cols).enumerate() {
            frame.samples.map_row(r, h.cols, h.index, &lut, row);
        }
        Ok((h.rows as u32, h.cols as u32, out))
    })
}

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

// ------------------------------------------------------------------------------ resizing

/// One output pixel's share of one source pixel along an axis.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tap {
    src: usize,
    dst: usize,
    w: f32,
}

/// Area-averaging taps of one axis: output `k` covers source `[k*step, (k+1)*step)`
/// clipped to `[0, n_in)`; each source pixel it overlaps gets weight
/// `overlap / covered length`, so the weights of every output sum to 1. Sorted by `dst`
/// and, because the intervals move forward, with `src` non-decreasing too. At most
/// `n_in + n_out` taps.
fn axis_taps(n_in: usize, n_out: usize, step: f64) -> Vec<Tap> {
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
fn resize_rows_with(
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

fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}

fn gray_image(width: usize, height: usize, buf: Vec<u8>) -> image::GrayImage {
    image::GrayImage::from_raw(width as u32, height as u32, buf).expect("buffer is width x height")
}

// ------------------------------------------------------------------------------ decoding

/// What the LUT stages need to know about the pixel matrix.
#[derive(Clone, Copy, Debug)]
struct Header {
    rows: usize,
    cols: usize,
    monochrome1: bool,
    index: IndexMap,
}

/// Maps a raw sample to an index `0..2^bits` (the stored value, offset by `2^(bits-1)` when
/// signed), the key of every per-image table.
#[derive(Clone, Copy, Debug, PartialEq)]
struct IndexMap {
    bits: u32,
    shift: u32,
    signed: bool,
    /// decoder output: clamp to the BitsStored range instead of masking
    clamp: bool,
}

impl IndexMap {
    fn len(self) -> usize {
        1 << self.bits
    }

    #[inline(always)]
    fn index(self, raw: u16) -> usize {
        let mask = (1u32 << self.bits) - 1;
        let half = 1u32 << (self.bits - 1);
        if self.clamp {
            if self.signed {
                let v = i32::from(raw as i16);
                let h = half as i32;
                (v.clamp(-h, h - 1) + h) as usize
            } else {
                u32::from(raw).min(mask) as usize
            }
        } else {
            let v = (u32::from(raw) >> self.shift) & mask;
            if self.signed {
                (v ^ half) as usize
            } else {
                v as usize
            }
        }
    }

    /// The stored value an index stands for.
    fn value(self, index: usize) -> i32 {
        if self.signed {
            index as i32 - (1 << (self.bits - 1))
        } else {
            index as i32
        }
    }

    /// The index of a stored value, if representable.
    fn index_of(self, value: i64) -> Option<usize> {
        let off = if self.signed {
            1i64 << (self.bits - 1)
        } else {
            0
        };
        let i = value + off;
        (0..self.len() as i64).contains(&i).then_some(i as usize)
    }
}

/// Frame 0's samples, borrowed from the object (native) or from the decoder's output.
enum Samples<'a> {
    U8(&'a [u8]),
    U16(&'a [u16]),
    /// 16-bit samples as native-endian byte pairs (dicom-pixeldata's decoders)
    U16Ne(&'a [u8]),
    /// 16-bit samples as little-endian byte pairs (native pixel data read as OB)
    U16Le(&'a [u8]),
}

impl Samples<'_> {
    /// Maps the samples of row `r` through `lut` (indexed by `ix.index`) into `out`.
    #[inline]
    fn map_row<T: Copy>(&self, r: usize, cols: usize, ix: IndexMap, lut: &[T], out: &mut [T]) {
        let (a, b) = (r * cols, (r + 1) * cols);
        match self {
            Samples::U8(s) => {
                for (o, &v) in out.iter_mut().zip(&s[a..b]) {
                    *o = lut[ix.index(u16::from(v))];
                }
            }
            Samples::U16(s) => {
                for (o, &v) in out.iter_mut().zip(&s[a..b]) {
                    *o = lut[ix.index(v)];
                }
            }
            Samples::U16Ne(s) => {
                for (o, c) in out.iter_mut().zip(s[2 * a..2 * b].chunks_exact(2)) {
                    *o = lut[ix.index(u16::from_ne_bytes([c[0], c[1]]))];
                }
            }
            Samples::U16Le(s) => {
                for (o, c) in out.iter_mut().zip(s[2 * a..2 * b].chunks_exact(2)) {
                    *o = lut[ix.index(u16::from_le_bytes([c[0], c[1]]))];
                }
            }
        }
    }

    /// Count of every index over the first `n` samples.
    fn histogram(&self, n: usize, ix: IndexMap) -> Vec<u64> {
        let mut h = vec![0u64; ix.len()];
        match self {
            Samples::U8(s) => s[..n].iter().for_each(|&v| h[ix.index(u16::from(v))] += 1),
            Samples::U16(s) => s[..n].iter().for_each(|&v| h[ix.index(v)] += 1),
            Samples::U16Ne(s) => s[..2 * n]
                .chunks_exact(2)
                .for_each(|c| h[ix.index(u16::from_ne_bytes([c[0], c[1]]))] += 1),
            Samples::U16Le(s) => s[..2 * n]
                .chunks_exact(2)
                .for_each(|c| h[ix.index(u16::from_le_bytes([c[0], c[1]]))] += 1),
        }
        h
    }
}

struct Frame<'a> {
    path: &'a Path,
    obj: &'a DefaultDicomObject,
    header: Header,
    samples: Samples<'a>,
}

/// Opens `path`, finds frame 0's samples (decoding them if encapsulated) and runs `f`.
fn with_frame<R>(
    path: &Path,
    f: impl FnOnce(&Frame<'_>) -> Result<R, DecodeError>,
) -> Result<R, DecodeError> {
    let obj = dicom_object::open_file(path).map_err(|e| DecodeError::Read {
        path: path.to_path_buf(),
        message: error_chain(&e),
    })?;
    let pixel = match obj.get(tags::PIXEL_DATA) {
        Some(e) if !e.is_empty() => e,
        _ => {
            return Err(DecodeError::NoPixelData {
                path: path.to_path_buf(),
            });
        }
    };
    let (header, bits_allocated) = read_header(path, &obj)?;
    let n = header.rows * header.cols;
    let bad = |attribute, what: String| DecodeError::BadAttribute {
        path: path.to_path_buf(),
        attribute,
        what,
    };
    match pixel.value() {
        Value::Primitive(p) => {
            let samples = match (bits_allocated, p) {
                (8, PrimitiveValue::U8(v)) if v.len() >= n => Samples::U8(&v[..n]),
                (16, PrimitiveValue::U16(v)) if v.len() >= n => Samples::U16(&v[..n]),
                (16, PrimitiveValue::U8(v)) if v.len() >= 2 * n => Samples::U16Le(&v[..2 * n]),
                (_, PrimitiveValue::U8(_) | PrimitiveValue::U16(_)) => {
                    let have = p.calculate_byte_len();
                    return Err(bad(
                        "PixelData (7FE0,0010)",
                        format!(
                            "{have} bytes, frame 0 needs {} ({} x {} x {bits_allocated} bits)",
                            n * usize::from(bits_allocated / 8),
                            header.rows,
                            header.cols
                        ),
                    ));
                }
                _ => {
                    return Err(bad(
                        "PixelData (7FE0,0010)",
                        format!("unexpected value type {:?}", p.value_type()),
                    ));
                }
            };
            f(&Frame {
                path,
                obj: &obj,
                header,
                samples,
            })
        }
        Value::PixelSequence(seq) => {
            let uid = obj
                .meta()
                .transfer_syntax()
                .trim_end_matches(['\0', ' '])
                .to_string();
            let name = ts_name(&uid);
            if let Some(feature) = missing_codec_feature(&uid) {
                return Err(DecodeError::CodecUnavailable {
                    path: path.to_path_buf(),
                    uid,
                    name,
                    feature,
                });
            }
            // Decoded here rather than by dicom-pixeldata: RLE (its decoder refuses frames of
            // 16 MB or more compressed better than 32:1, which flat synthetic images are) and
            // 12-bit lossy JPEG (its JPEG decoder has no 12-bit DCT).
            let frame0 = || -> Cow<'_, [u8]> {
                let frags = seq.fragments();
                let frames = text(&obj, tags::NUMBER_OF_FRAMES)
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(1);
                match frags {
                    [one] => Cow::Borrowed(one.as_slice()),
                    [first, ..] if frames > 1 => Cow::Borrowed(first.as_slice()),
                    _ => Cow::Owned(frags.concat()),
                }
            };
            let own = match uid.as_str() {
                "1.2.840.10008.1.2.5" => Some(
                    rle::decode(&frame0(), n, usize::from(bits_allocated / 8))
                        .map_err(|m| format!("RLE: {m}")),
                ),
                "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51" if bits_allocated == 16 => {
                    let stream = frame0();
                    match jpeg12::frame_precision(&stream) {
                        Some((9..=12, true)) => Some(
                            jpeg12::decode(&stream, header.rows, header.cols)
                                .map_err(|m| format!("12-bit JPEG: {m}")),
                        ),
                        _ => None,
                    }
                }
                _ => None,
            };
            let library = match own {
                Some(Ok(data)) => Ok(data),
                Some(Err(message)) => {
                    return Err(DecodeError::Decode {
                        path: path.to_path_buf(),
                        uid,
                        name,
                        message,
                    });
                }
                None => obj.decode_pixel_data_frame(0).map(|d| d.into_data()),
            };
            let data = match library {
                Ok(d) => d,
                Err(e) => {
                    let message = error_chain(&e);
                    return Err(
                        if message.contains("Unsupported TransferSyntax")
                            || message.contains("Unknown transfer syntax")
                        {
                            DecodeError::UnsupportedTransferSyntax {
                                path: path.to_path_buf(),
                                uid,
                                name,
                            }
                        } else {
                            DecodeError::Decode {
                                path: path.to_path_buf(),
                                uid,
                                name,
                                message,
                            }
                        },
                    );
                }
            };
            let want = n * usize::from(bits_allocated / 8);
            if data.len() < want {
                return Err(DecodeError::Decode {
                    path: path.to_path_buf(),
                    uid,
                    name,
                    message: format!(
                        "the decoder gave {} bytes, frame 0 needs {want}",
                        data.len()
                    ),
                });
            }
            let samples = if bits_allocated == 8 {
                Samples::U8(&data[..want])
            } else {
                Samples::U16Ne(&data[..want])
            };
            let header = Header {
                index: IndexMap {
                    clamp: true,
                    ..header.index
                },
                ..header
            };
            f(&Frame {
                path,
                obj: &obj,
                header,
                samples,
            })
        }
        Value::Sequence(_) => Err(bad(
            "PixelData (7FE0,0010)",
            "is a sequence of items".into(),
        )),
    }
}

fn read_header(path: &Path, obj: &DefaultDicomObject) -> Result<(Header, u16), DecodeError> {
    let unsupported = |what: String| DecodeError::Unsupported {
        path: path.to_path_buf(),
        what,
    };
    let bad = |attribute: &'static str, what: String| DecodeError::BadAttribute {
        path: path.to_path_buf(),
        attribute,
        what,
    };
    let uint = |tag: Tag, name: &'static str| -> Result<Option<u16>, DecodeError> {
        match obj.get(tag) {
            None => Ok(None),
            Some(e) if e.is_empty() => Ok(None),
            Some(e) => e
                .to_int::<u16>()
                .map(Some)
                .map_err(|err| bad(name, format!("not an unsigned 16-bit integer ({err})"))),
        }
    };
    let rows = uint(tags::ROWS, "Rows (0028,0010)")?;
    let cols = uint(tags::COLUMNS, "Columns (0028,0011)")?;
    let (rows, cols) = match (rows, cols) {
        (Some(r), Some(c)) if r > 0 && c > 0 => (usize::from(r), usize::from(c)),
        (r, c) => {
            return Err(bad(
                "Rows/Columns",
                format!(
                    "missing or zero ({} x {})",
                    r.map_or("absent".to_string(), |r| r.to_string()),
                    c.map_or("absent".to_string(), |c| c.to_string())
                ),
            ));
        }
    };
    let spp = uint(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel (0028,0002)")?.unwrap_or(1);
    let pi = text(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    let monochrome1 = match (spp, pi.as_str()) {
        (1, "MONOCHROME1") => true,
        (1, "MONOCHROME2" | "") => false,
        _ => {
            return Err(unsupported(format!(
                "not greyscale (SamplesPerPixel {spp}, PhotometricInterpretation `{pi}`)"
            )));
        }
    };
    let ba = uint(tags::BITS_ALLOCATED, "BitsAllocated (0028,0100)")?
        .ok_or_else(|| bad("BitsAllocated (0028,0100)", "missing".into()))?;
    if ba != 8 && ba != 16 {
        return Err(unsupported(format!(
            "BitsAllocated {ba} (only 8 and 16 are handled)"
        )));
    }
    let bs = uint(tags::BITS_STORED, "BitsStored (0028,0101)")?.unwrap_or(ba);
    if bs == 0 || bs > ba {
        return Err(bad(
            "BitsStored (0028,0101)",
            format!("{bs} with BitsAllocated {ba}"),
        ));
    }
    let hb = uint(tags::HIGH_BIT, "HighBit (0028,0102)")?.unwrap_or(bs - 1);
    if hb + 1 < bs || hb >= ba {
        return Err(bad(
            "HighBit (0028,0102)",
            format!("{hb} with BitsStored {bs}, BitsAllocated {ba}"),
        ));
    }
    let signed = uint(
        tags::PIXEL_REPRESENTATION,
        "PixelRepresentation (0028,0103)",
    )?
    .unwrap_or(0)
        == 1;
    let index = IndexMap {
        bits: u32::from(bs),
        shift: u32::from(hb + 1 - bs),
        signed,
        clamp: false,
    };
    Ok((
        Header {
            rows,
            cols,
            monochrome1,
            index,
        },
        ba,
    ))
}

// ------------------------------------------------------------------------------ attributes

fn first_item(ds: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    ds.get(tag)?.items()?.first()
}

/// `tag` at the root, else inside `macro_seq` of the shared, else of the first per-frame
/// functional group (enhanced objects).
fn find(ds: &InMemDicomObject, tag: Tag, macro_seq: Tag) -> Option<&InMemElement> {
    ds.get(tag).filter(|e| !e.is_empty()).or_else(|| {
        [
            tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE,
            tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
        ]
        .iter()
        .find_map(|&fg| first_item(first_item(ds, fg)?, macro_seq)?.get(tag))
        .filter(|e| !e.is_empty())
    })
}

fn text(ds: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = ds.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

/// First value of a numeric (DS/FD/...) element; `Err` names what is wrong.
fn first_f64(e: &InMemElement) -> Result<f64, String> {
    let v = e.to_multi_float64().map_err(|err| err.to_string())?;
    match v.first() {
        Some(x) if x.is_finite() => Ok(*x),
        Some(x) => Err(format!("{x} is not finite")),
        None => Err("empty".into()),
    }
}

/// A LUT of a Modality or VOI LUT Sequence item.
#[derive(Clone, Debug, PartialEq)]
struct Lut {
    /// input value mapped to `data[0]`
    first: i64,
    /// bits per entry from the descriptor
    bits: u32,
    data: Vec<u16>,
}

impl Lut {
    fn lookup(&self, x: f64) -> u16 {
        let i = (x.round() as i64 - self.first).clamp(0, self.data.len() as i64 - 1);
        self.data[i as usize]
    }

    /// Reads LUT Descriptor + LUT Data. `signed_input`: the first mapped value is signed
    /// (PS3.3 C.11.1.1.1: its VR follows the input's signedness; a US value above 32767
    /// in that case is a two's complement).
    fn parse(item: &InMemDicomObject, signed_input: bool) -> Result<Lut, (&'static str, String)> {
        const DESC: &str = "LUT Descriptor (0028,3002)";
        const DATA: &str = "LUT Data (0028,3006)";
        let d = item
            .get(tags::LUT_DESCRIPTOR)
            .ok_or((DESC, "missing".to_string()))?
            .to_multi_int::<i64>()
            .map_err(|e| (DESC, e.to_string()))?;
        let [count, first, bits] = d[..] else {
            return Err((DESC, format!("has {} values, not 3", d.len())));
        };
        let count = match count {
            0 => 65536,
            c if c < 0 => c + 65536,
            c => c,
        } as usize;
        let first = if signed_input && first > 32767 {
            first - 65536
        } else {
            first
        };
        if !(1..=16).contains(&bits) {
            return Err((DESC, format!("bit depth {bits}")));
        }
        let value = item
            .get(tags::LUT_DATA)
            .ok_or((DATA, "missing".to_string()))?
            .value();
        let data: Vec<u16> = match value {
            Value::Primitive(PrimitiveValue::U16(v)) => v.to_vec(),
            // 8-bit tables may come as one byte per entry, OB/OW otherwise little-endian
            Value::Primitive(PrimitiveValue::U8(v)) if v.len() == count => {
                v.iter().map(|&b| u16::from(b)).collect()
            }
            Value::Primitive(PrimitiveValue::U8(v)) => v
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
            Value::Primitive(p) => p
                .to_multi_int::<i64>()
                .map_err(|e| (DATA, e.to_string()))?
                .into_iter()
                .map(|v| v as u16)
                .collect(),
            _ => return Err((DATA, "not a primitive value".to_string())),
        };
        if data.len() < count || data.is_empty() {
            return Err((
                DATA,
                format!("{} entries, the descriptor says {count}", data.len()),
            ));
        }
        Ok(Lut {
            first,
            bits: bits as u32,
            data: data[..count].to_vec(),
        })
    }
}

/// Index (see [`IndexMap`]) -> modality value.
fn modality_lut(frame: &Frame<'_>) -> Result<Vec<f32>, DecodeError> {
    let ix = frame.header.index;
    let obj: &InMemDicomObject = frame.obj;
    let bad = |attribute: &'static str, what: String| DecodeError::BadAttribute {
        path: frame.path.to_path_buf(),
        attribute,
        what,
    };
    if let Some(item) = first_item(obj, tags::MODALITY_LUT_SEQUENCE) {
        let lut = Lut::parse(item, ix.signed)
            .map_err(|(a, w)| bad(a, format!("{w} (in the Modality LUT Sequence)")))?;
        return Ok((0..ix.len())
            .map(|i| f32::from(lut.lookup(f64::from(ix.value(i)))))
            .collect());
    }
    let get = |tag, name, default| -> Result<f64, DecodeError> {
        match find(obj, tag, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE) {
            None => Ok(default),
            Some(e) => first_f64(e).map_err(|w| bad(name, w)),
        }
    };
    let slope = get(tags::RESCALE_SLOPE, "RescaleSlope (0028,1053)", 1.0)?;
    let intercept = get(tags::RESCALE_INTERCEPT, "RescaleIntercept (0028,1052)", 0.0)?;
    Ok((0..ix.len())
        .map(|i| (f64::from(ix.value(i)) * slope + intercept) as f32)
        .collect())
}

// ------------------------------------------------------------------------------ VOI

#[derive(Clone, Copy, Debug, PartialEq)]
enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

#[derive(Clone, Debug, PartialEq)]
enum Voi {
    Window {
        center: f64,
        width: f64,
        function: VoiFunction,
    },
    Lut {
        lut: Lut,
        /// entry value that maps to 255
        top: f64,
    },
    Ramp {
        lo: f64,
        hi: f64,
    },
}

impl Voi {
    /// Modality value -> 0..=255.
    fn apply(&self, x: f64) -> f64 {
        const Y: f64 = 255.0;
        match *self {
            Voi::Window {
                center: c,
                width: w,
                function: VoiFunction::Linear,
            } => {
                // PS3.3 C.11.2.1.2.1
                if x <= c - 0.5 - (w - 1.0) / 2.0 {
                    0.0
                } else if x > c - 0.5 + (w - 1.0) / 2.0 {
                    Y
                } else {
                    ((x - (c - 0.5)) / (w - 1.0) + 0.5) * Y
                }
            }
            Voi::Window {
                center: c,
                width: w,
                function: VoiFunction::LinearExact,
            } => {
                // PS3.3 C.11.2.1.3.2
                if x <= c - w / 2.0 {
                    0.0
                } else if x > c + w / 2.0 {
                    Y
                } else {
                    ((x - c) / w + 0.5) * Y
                }
            }
            Voi::Window {
                center: c,
                width: w,
                function: VoiFunction::Sigmoid,
            } => {
                // PS3.3 C.11.2.1.3.1
                Y / (1.0 + (-4.0 * (x - c) / w).exp())
            }
            Voi::Lut { ref lut, top } => f64::from(lut.lookup(x)) / top * Y,
            Voi::Ramp { lo, hi } => ((x - lo) / (hi - lo)).clamp(0.0, 1.0) * Y,
        }
    }
}

/// The window, else the VOI LUT, else the percentile ramp (see the module docs).
fn choose_voi(frame: &Frame<'_>, modality: &[f32]) -> Result<(Voi, &'static str), DecodeError> {
    let obj: &InMemDicomObject = frame.obj;
    let bad = |attribute: &'static str, what: String| DecodeError::BadAttribute {
        path: frame.path.to_path_buf(),
        attribute,
        what,
    };
    let wc = find(obj, tags::WINDOW_CENTER, tags::FRAME_VOILUT_SEQUENCE);
    let ww = find(obj, tags::WINDOW_WIDTH, tags::FRAME_VOILUT_SEQUENCE);
    if let (Some(wc), Some(ww)) = (wc, ww) {
        let center = first_f64(wc).map_err(|w| bad("WindowCenter (0028,1050)", w))?;
        let width = first_f64(ww).map_err(|w| bad("WindowWidth (0028,1051)", w))?;
        let function = match find(obj, tags::VOILUT_FUNCTION, tags::FRAME_VOILUT_SEQUENCE)
            .and_then(|e| e.to_str().ok())
            .as_deref()
            .map(str::trim)
        {
            Some("LINEAR_EXACT") => VoiFunction::LinearExact,
            Some("SIGMOID") => VoiFunction::Sigmoid,
            _ => VoiFunction::Linear,
        };
        let valid = match function {
            VoiFunction::Linear => width >= 1.0,
            _ => width > 0.0,
        };
        if valid {
            let voi = Voi::Window {
                center,
                width,
                function,
            };
            return Ok((voi, "window"));
        }
    }
    if let Some(item) = first_item(obj, tags::VOILUT_SEQUENCE) {
        // the VOI LUT's input is the modality output, signed if it can be negative
        let signed = modality.iter().any(|&v| v < 0.0);
        let lut = Lut::parse(item, signed)
            .map_err(|(a, w)| bad(a, format!("{w} (in the VOI LUT Sequence)")))?;
        let nominal = f64::from((1u32 << lut.bits) - 1);
        let max = f64::from(lut.data.iter().copied().max().unwrap_or(0));
        let top = nominal.max(max).max(1.0);
        return Ok((Voi::Lut { lut, top }, "voi_lut"));
    }
    let h = &frame.header;
    let mut hist = frame.samples.histogram(h.rows * h.cols, h.index);
    exclude_padding(frame.obj, h.index, &mut hist);
    let (lo, hi) = percentile_window(&hist, modality);
    Ok((Voi::Ramp { lo, hi }, "percentile"))
}

/// Zeroes the histogram bins of PixelPaddingValue .. PixelPaddingRangeLimit (stored values)
/// unless that would leave nothing.
fn exclude_padding(obj: &InMemDicomObject, ix: IndexMap, hist: &mut [u64]) {
    let value = |tag| {
        let e = obj.get(tag)?;
        let v = e.to_int::<i64>().ok()?;
        // US/SS ambiguity: a US value read for a signed image is a two's complement
        Some(if ix.signed && v > 32767 { v - 65536 } else { v })
    };
    let Some(pad) = value(tags::PIXEL_PADDING_VALUE) else {
        return;
    };
    let limit = value(tags::PIXEL_PADDING_RANGE_LIMIT).unwrap_or(pad);
    let (a, b) = (pad.min(limit), pad.max(limit));
    let lo = (a..=b).find_map(|v| ix.index_of(v));
    let hi = (a..=b).rev().find_map(|v| ix.index_of(v));
    if let (Some(lo), Some(hi)) = (lo, hi) {
        let total: u64 = hist.iter().sum();
        let padded: u64 = hist[lo..=hi].iter().sum();
        if padded < total {
            hist[lo..=hi].iter_mut().for_each(|c| *c = 0);
        }
    }
}

/// The 1st and 99th percentile of the modality values whose index histogram is `hist`;
/// the min and max if those coincide, and `hi = lo + 1` for a constant image.
fn percentile_window(hist: &[u64], modality: &[f32]) -> (f64, f64) {
    let mut pairs: Vec<(f32, u64)> = hist
        .iter()
        .zip(modality)
        .filter(|(c, _)| **c > 0)
        .map(|(&c, &v)| (v, c))
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n: u64 = pairs.iter().map(|p| p.1).sum();
    if n == 0 {
        return (0.0, 1.0);
    }
    let at_rank = |rank: u64| {
        let mut cum = 0;
        for &(v, c) in &pairs {
            cum += c;
            if cum >= rank {
                return f64::from(v);
            }
        }
        f64::from(pairs[pairs.len() - 1].0)
    };
    let rank = |p: f64| ((p * n as f64).ceil() as u64).clamp(1, n);
    let (mut lo, mut hi) = (at_rank(rank(0.01)), at_rank(rank(0.99)));
    if hi <= lo {
        lo = f64::from(pairs[0].0);
        hi = f64::from(pairs[pairs.len() - 1].0);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    (lo, hi)
}

// ------------------------------------------------------------------------------ messages

/// The cargo feature that brings the decoder of transfer syntax `uid`, when this build was
/// made without it; `None` when the build has the decoder (or no feature brings one).
pub fn missing_codec_feature(uid: &str) -> Option<&'static str> {
    match uid {
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" if !cfg!(feature = "jpeg-ls") => {
            Some("jpeg-ls")
        }
        _ => None,
    }
}

/// An error and its sources, deduplicated, joined by ": ".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(src) = next {
        let t = src.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        next = src.source();
    }
    s
}

/// Readable name of a transfer syntax UID (those a radiograph is likely to come in).
fn ts_name(uid: &str) -> &'static str {
    match uid {
        "1.2.840.10008.1.2" => "Implicit VR Little Endian",
        "1.2.840.10008.1.2.1" => "Explicit VR Little Endian",
        "1.2.840.10008.1.2.1.99" => "Deflated Explicit VR Little Endian",
        "1.2.840.10008.1.2.2" => "Explicit VR Big Endian",
        "1.2.840.10008.1.2.4.50" => "JPEG Baseline (Process 1)",
        "1.2.840.10008.1.2.4.51" => "JPEG Extended (Process 2 & 4)",
        "1.2.840.10008.1.2.4.57" => "JPEG Lossless (Process 14)",
        "1.2.840.10008.1.2.4.70" => "JPEG Lossless SV1 (Process 14, Selection Value 1)",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS Lossless",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS Near-Lossless",
        "1.2.840.10008.1.2.4.90" => "JPEG 2000 Lossless",
        "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.4.92" => "JPEG 2000 Part 2 Multi-component Lossless",
        "1.2.840.10008.1.2.4.93" => "JPEG 2000 Part 2 Multi-component",
        "1.2.840.10008.1.2.4.100" | "1.2.840.10008.1.2.4.101" => "MPEG2",
        "1.2.840.10008.1.2.4.102" | "1.2.840.10008.1.2.4.103" => "MPEG-4 AVC/H.264",
        "1.2.840.10008.1.2.4.110" => "JPEG XL Lossless",
        "1.2.840.10008.1.2.4.111" => "JPEG XL JPEG Recompression",
        "1.2.840.10008.1.2.4.112" => "JPEG XL",
        "1.2.840.10008.1.2.4.201" => "High-Throughput JPEG 2000 Lossless",
        "1.2.840.10008.1.2.4.202" => "High-Throughput JPEG 2000 with RPCL Lossless",
        "1.2.840.10008.1.2.4.203" => "High-Throughput JPEG 2000",
        "1.2.840.10008.1.2.5" => "RLE Lossless",
        _ => "unknown transfer syntax",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(bits: u32, shift: u32, signed: bool, clamp: bool) -> IndexMap {
        IndexMap {
            bits,
            shift,
            signed,
            clamp,
        }
    }

    #[test]
    fn index_map_masks_native_and_clamps_decoded() {
        // 12 bits stored at the bottom: the top nibble (overlay bits) is dropped
        let m = ix(12, 0, false, false);
        assert_eq!(m.index(0xF123), 0x123);
        assert_eq!(m.value(0x123), 0x123);
        // high bit 14, 12 stored: shifted down by 3
        assert_eq!(ix(12, 3, false, false).index(0x123 << 3), 0x123);
        // signed 12-bit: -1 (0xFFF) is index 2047, -2048 (0x800) index 0, 2047 index 4095
        let s = ix(12, 0, true, false);
        assert_eq!(s.index(0x0FFF), 2047);
        assert_eq!(s.index(0xFFFF), 2047, "sign-extended input");
        assert_eq!(s.index(0x0800), 0);
        assert_eq!(s.index(0x07FF), 4095);
        assert_eq!(s.value(2047), -1);
        assert_eq!(s.value(0), -2048);
        assert_eq!(s.index_of(-1), Some(2047));
        assert_eq!(s.index_of(2048), None);
        // decoder output: clamped, not wrapped
        assert_eq!(ix(12, 0, false, true).index(5000), 4095);
        assert_eq!(ix(12, 0, true, true).index((-3000i16) as u16), 0);
        assert_eq!(ix(12, 0, true, true).index((-5i16) as u16), 2043);
        assert_eq!(ix(16, 0, false, false).index(65535), 65535);
        assert_eq!(ix(16, 0, true, false).index(0x8000), 0);
    }

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
    fn linear_window_matches_ps33_c11212() {
        let v = Voi::Window {
            center: 2048.0,
            width: 4096.0,
            function: VoiFunction::Linear,
        };
        // boundaries: x <= c - 0.5 - (w-1)/2 = 0 -> 0; x > c - 0.5 + (w-1)/2 = 4095 -> 255
        assert_eq!(v.apply(0.0), 0.0);
        assert_eq!(v.apply(4095.5), 255.0);
        assert!((v.apply(4095.0) - 255.0).abs() < 1e-9);
        assert!((v.apply(2047.5) - 127.5).abs() < 1e-9);
        // width 1 is a threshold at c - 0.5
        let t = Voi::Window {
            center: 100.0,
            width: 1.0,
            function: VoiFunction::Linear,
        };
        assert_eq!(
            (t.apply(99.0), t.apply(99.5), t.apply(99.6)),
            (0.0, 0.0, 255.0)
        );
        let e = Voi::Window {
            center: 100.0,
            width: 10.0,
            function: VoiFunction::LinearExact,
        };
        assert_eq!(
            (e.apply(95.0), e.apply(100.0), e.apply(105.0)),
            (0.0, 127.5, 255.0)
        );
        assert_eq!(e.apply(105.1), 255.0);
        let s = Voi::Window {
            center: 100.0,
            width: 10.0,
            function: VoiFunction::Sigmoid,
        };
        assert!((s.apply(100.0) - 127.5).abs() < 1e-9);
        assert!((s.apply(105.0) - 255.0 / (1.0 + (-2f64).exp())).abs() < 1e-9);
    }

    #[test]
    fn percentiles_follow_the_rank_rule() {
        // values 0..=99 once each: rank ceil(1) = 1 -> 0, rank ceil(99) = 99 -> 98
        let hist = vec![1u64; 100];
        let modality: Vec<f32> = (0..100).map(|v| v as f32).collect();
        assert_eq!(percentile_window(&hist, &modality), (0.0, 98.0));
        // a decreasing modality LUT is sorted by value, not by index
        let modality: Vec<f32> = (0..100).map(|v| -(v as f32)).collect();
        assert_eq!(percentile_window(&hist, &modality), (-99.0, -1.0));
        // 99 % at one value: percentiles coincide -> min/max
        let hist = vec![1u64, 198, 0, 1];
        let m = [10.0, 20.0, 30.0, 40.0];
        assert_eq!(percentile_window(&hist, &m), (10.0, 40.0));
        // constant
        assert_eq!(percentile_window(&[0, 5, 0, 0], &m), (20.0, 21.0));
    }

    #[test]
    fn lut_lookup_clamps_to_the_ends() {
        let lut = Lut {
            first: -2,
            bits: 8,
            data: vec![10, 20, 30],
        };
        assert_eq!(lut.lookup(-100.0), 10);
        assert_eq!(lut.lookup(-1.2), 20);
        assert_eq!(lut.lookup(0.0), 30);
        assert_eq!(lut.lookup(1e9), 30);
    }

    /// A DC-only 12-bit sequential JPEG (SOF1, one component, 16-bit quantisation table
    /// of ones) with a restart interval of `restart` blocks: every 8x8 block is flat at
    /// `values[block]`.
    fn jpeg12_dc_only(rows: u16, cols: u16, values: &[i32], restart: u16) -> Vec<u8> {
        struct W {
            out: Vec<u8>,
            acc: u32,
            n: u32,
        }
        impl W {
            fn bits(&mut self, v: u32, len: u32) {
                for i in (0..len).rev() {
                    self.acc = (self.acc << 1) | ((v >> i) & 1);
                    self.n += 1;
                    if self.n == 8 {
                        let b = self.acc as u8;
                        self.out.push(b);
                        if b == 0xFF {
                            self.out.push(0); // byte stuffing
                        }
                        (self.acc, self.n) = (0, 0);
                    }
                }
            }
            fn flush(&mut self) {
                while self.n != 0 {
                    self.bits(1, 1);
                }
            }
        }
        let mut out = vec![0xFF, 0xD8];
        let mut seg = |m: u8, body: &[u8]| {
            out.extend([0xFF, m]);
            out.extend(((body.len() + 2) as u16).to_be_bytes());
            out.extend(body);
        };
        let mut dqt = vec![0x10];
        (0..64).for_each(|_| dqt.extend(1u16.to_be_bytes()));
        seg(0xDB, &dqt);
        let mut dht = vec![0x00, 0, 0, 0, 0, 16];
        dht.extend([0; 11]);
        dht.extend(0..16u8);
        seg(0xC4, &dht);
        let mut dht = vec![0x10, 1];
        dht.extend([0; 15]);
        dht.push(0x00);
        seg(0xC4, &dht);
        let [r0, r1] = rows.to_be_bytes();
        let [c0, c1] = cols.to_be_bytes();
        seg(0xC1, &[12, r0, r1, c0, c1, 1, 1, 0x11, 0]);
        seg(0xDD, &restart.to_be_bytes());
        seg(0xDA, &[1, 1, 0x00, 0, 63, 0]);
        let mut w = W { out, acc: 0, n: 0 };
        let mut pred = 0i32;
        for (b, &v) in values.iter().enumerate() {
            if b > 0 && b % usize::from(restart) == 0 {
                w.flush();
                w.out
                    .extend([0xFF, 0xD0 + ((b / usize::from(restart) - 1) % 8) as u8]);
                pred = 0;
            }
            let dc = 8 * (v - 2048);
            let diff = dc - pred;
            pred = dc;
            let s = 32 - diff.unsigned_abs().leading_zeros();
            w.bits(s, 5);
            let bits = if diff >= 0 { diff } else { diff + (1 << s) - 1 };
            w.bits(bits as u32, s);
            w.bits(0, 1); // EOB
        }
        w.flush();
        w.out.extend([0xFF, 0xD9]);
        w.out
    }

    #[test]
    fn jpeg12_decodes_restarts_stuffing_and_partial_blocks() {
        let values = [4095, 0, 2048, 1000, 4095, 17];
        let stream = jpeg12_dc_only(13, 20, &values, 2);
        assert!(
            stream.windows(2).any(|w| w == [0xFF, 0x00]),
            "has stuffed bytes"
        );
        assert!(stream.windows(2).any(|w| w == [0xFF, 0xD1]), "has RST1");
        assert_eq!(jpeg12::frame_precision(&stream), Some((12, true)));
        let out = jpeg12::decode(&stream, 13, 20).unwrap();
        assert_eq!(out.len(), 13 * 20 * 2);
        for r in 0..13 {
            for c in 0..20 {
                let i = 2 * (r * 20 + c);
                let v = u16::from_ne_bytes([out[i], out[i + 1]]);
                assert_eq!(i32::from(v), values[r / 8 * 3 + c / 8], "({r}, {c})");
            }
        }
        // the entropy-coded data cut short (its last 4 bytes and EOI)
        let err = jpeg12::decode(&stream[..stream.len() - 6], 13, 20).unwrap_err();
        assert!(err.contains("ends early"), "{err}");
        let err = jpeg12::decode(&stream[..stream.len() / 2], 13, 20).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let err = jpeg12::decode(&stream, 14, 20).unwrap_err();
        assert!(err.contains("20 x 13"), "{err}");
    }

    #[test]
    fn rle_unpacks_literal_and_replicate_runs_msb_first() {
        // 5 samples of 16 bits: 0x0102, 0x0103, 0x0104, 0x0104, 0xFF04
        let msb = [0xFDu8, 0x01, 0x80, 0x00, 0xFF]; // 4 x 0x01, no-op, literal [0xFF]
        let lsb = [0x01u8, 0x02, 0x03, 0xFE, 0x04]; // literal [2, 3], 3 x 0x04
        let mut data = vec![0u8; 64];
        data[..4].copy_from_slice(&2u32.to_le_bytes());
        data[4..8].copy_from_slice(&64u32.to_le_bytes());
        data[8..12].copy_from_slice(&(64 + msb.len() as u32).to_le_bytes());
        data.extend(msb);
        data.extend(lsb);
        let out = rle::decode(&data, 5, 2).unwrap();
        let v: Vec<u16> = out
            .chunks_exact(2)
            .map(|c| u16::from_ne_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(v, [0x0102, 0x0103, 0x0104, 0x0104, 0xFF04]);
        // 8-bit, one segment; runs longer than the frame are cut
        let mut d8 = vec![0u8; 64];
        d8[..4].copy_from_slice(&1u32.to_le_bytes());
        d8[4..8].copy_from_slice(&64u32.to_le_bytes());
        d8.extend([0x81u8, 7]); // 128 x 7
        assert_eq!(rle::decode(&d8, 3, 1).unwrap(), [7, 7, 7]);
        // errors: wrong segment count, too few samples, offsets out of range
        assert!(rle::decode(&d8, 3, 2).unwrap_err().contains("1 segments"));
        assert!(
            rle::decode(&d8, 200, 1)
                .unwrap_err()
                .contains("ends after 128 of 200")
        );
        let mut bad = d8.clone();
        bad[4..8].copy_from_slice(&10u32.to_le_bytes());
        assert!(rle::decode(&bad, 3, 1).is_err());
        assert!(rle::decode(&d8[..20], 3, 1).is_err());
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

// ------------------------------------------------------------------------------ RLE

/// DICOM RLE Lossless (PS3.5 Annex G) for one greyscale frame: a 64-byte header with the
/// segment count and offsets, then one PackBits segment per byte of the sample, most
/// significant byte first.
mod rle {
    /// Decodes one frame of `n` samples of `bytes` bytes each into native-endian samples.
    pub(super) fn decode(data: &[u8], n: usize, bytes: usize) -> Result<Vec<u8>, String> {
        let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        if data.len() < 64 {
            return Err(format!("{} bytes, shorter than the RLE header", data.len()));
        }
        let count = word(0) as usize;
        if count != bytes {
            return Err(format!(
                "{count} segments; a greyscale frame of {} bits has {bytes}",
                bytes * 8
            ));
        }
        let mut out = vec![0u8; n * bytes];
        for seg in 0..count {
            let start = word(4 + 4 * seg) as usize;
            let end = if seg + 1 < count {
                word(8 + 4 * seg) as usize
            } else {
                data.len()
            };
            if start < 64 || start > end || end > data.len() {
                return Err(format!(
                    "segment {seg} at bytes {start}..{end} of {}",
                    data.len()
                ));
            }
            // segment 0 holds the most significant byte of every sample
            let significance = bytes - 1 - seg;
            let at = if cfg!(target_endian = "little") {
                significance
            } else {
                seg
            };
            unpack(&data[start..end], &mut out, at, bytes, n)
                .map_err(|m| format!("segment {seg}: {m}"))?;
        }
        Ok(out)
    }

    /// PackBits: header h in 0..=127 copies h+1 literal bytes, -127..=-1 repeats the next
    /// byte 1-h times, -128 is skipped. Writes byte `at` of each `stride`-byte sample.
    fn unpack(
        src: &[u8],
        out: &mut [u8],
        at: usize,
        stride: usize,
        n: usize,
    ) -> Result<(), String> {
        let (mut i, mut o) = (0usize, 0usize);
        while o < n && i < src.len() {
            let h = src[i] as i8;
            i += 1;
            if h >= 0 {
                let len = h as usize + 1;
                let lit = src.get(i..i + len).ok_or_else(|| {
                    format!("literal run past the end of the segment at byte {i}")
                })?;
                let len = len.min(n - o);
                for (k, &b) in lit[..len].iter().enumerate() {
                    out[(o + k) * stride + at] = b;
                }
                i += h as usize + 1;
                o += len;
            } else if h != -128 {
                let len = ((1 - i32::from(h)) as usize).min(n - o);
                let b = *src.get(i).ok_or("replicate run without its byte")?;
                i += 1;
                for k in 0..len {
                    out[(o + k) * stride + at] = b;
                }
                o += len;
            }
        }
        if o < n {
            return Err(format!("ends after {o} of {n} samples"));
        }
        Ok(())
    }
}

// ------------------------------------------------------------------------------ 12-bit JPEG

/// A decoder for the one JPEG flavour radiographs use that `dicom-pixeldata` 0.10 cannot
/// read: DCT-based sequential Huffman JPEG with 12-bit samples (ITU T.81 process 4,
/// transfer syntax 1.2.840.10008.1.2.4.51; `jpeg-decoder` 0.3 stops at
/// "unsupported JPEG feature: SamplePrecision(12)"). Greyscale only (one component),
/// baseline/extended sequential (SOF0/SOF1), Huffman tables, restart intervals. The
/// inverse DCT is the textbook floating-point one, rounded to the nearest integer, so
/// samples may differ by 1 from libjpeg's integer IDCT.
mod jpeg12 {
    /// Zig-zag position -> natural (row-major) position in the 8x8 block.
    const ZIGZAG: [usize; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
        20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];

    /// Precision of the first SOFn of a JPEG stream and whether it is SOF0/SOF1 (sequential
    /// DCT, Huffman). `None` if no frame header is found before the first scan.
    pub(super) fn frame_precision(data: &[u8]) -> Option<(u8, bool)> {
        let mut p = 2;
        if data.get(..2)? != [0xFF, 0xD8] {
            return None;
        }
        loop {
            while *data.get(p)? != 0xFF {
                p += 1;
            }
            while *data.get(p)? == 0xFF {
                p += 1;
            }
            let m = *data.get(p)?;
            p += 1;
            match m {
                0xC0..=0xCF if m != 0xC4 && m != 0xC8 && m != 0xCC => {
                    return Some((*data.get(p + 2)?, m == 0xC0 || m == 0xC1));
                }
                0xDA | 0xD9 => return None,
                0x01 | 0xD0..=0xD7 => {}
                _ => {
                    let len = usize::from(u16::from_be_bytes([*data.get(p)?, *data.get(p + 1)?]));
                    p += len;
                }
            }
        }
    }

    #[derive(Default, Clone)]
    struct Huffman {
        /// (code length, symbol) for every 9-bit prefix whose code is at most 9 bits
        fast: Vec<(u8, u8)>,
        /// T.81 F.2.2.3: per length 1..=16
        maxcode: [i32; 17],
        valptr: [i32; 17],
        mincode: [i32; 17],
        values: Vec<u8>,
    }

    impl Huffman {
        fn new(counts: &[u8; 16], values: Vec<u8>) -> Result<Huffman, String> {
            let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
            if total != values.len() || total > 256 {
                return Err("bad Huffman table".into());
            }
            let mut h = Huffman {
                fast: vec![(0, 0); 512],
                maxcode: [-1; 17],
                values,
                ..Default::default()
            };
            let (mut code, mut k) = (0i32, 0usize);
            for len in 1..=16 {
                let n = i32::from(counts[len - 1]);
                if n > 0 {
                    h.valptr[len] = k as i32;
                    h.mincode[len] = code;
                    for _ in 0..n {
                        if len <= 9 {
                            let shift = 9 - len;
                            let base = (code as usize) << shift;
                            for e in &mut h.fast[base..base + (1 << shift)] {
                                *e = (len as u8, h.values[k]);
                            }
                        }
                        code += 1;
                        k += 1;
                    }
                    h.maxcode[len] = code - 1;
                }
                if code > (1 << len) {
                    return Err("bad Huffman table (code overflow)".into());
                }
                code <<= 1;
            }
            Ok(h)
        }
    }

    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        buf: u64,
        count: u32,
        /// zero bytes fed at a marker or the end of the data (the last ones in `buf`)
        fake: u32,
    }

    impl Bits<'_> {
        fn new(data: &[u8], pos: usize) -> Bits<'_> {
            Bits {
                data,
                pos,
                buf: 0,
                count: 0,
                fake: 0,
            }
        }

        fn fill(&mut self) {
            while self.count <= 56 {
                let byte = match (self.data.get(self.pos), self.data.get(self.pos + 1)) {
                    (Some(0xFF), Some(0x00)) if self.fake == 0 => {
                        self.pos += 2;
                        0xFF
                    }
                    // a marker or the end: feed zeros, stay in front of it
                    (Some(0xFF), _) | (None, _) => {
                        self.fake += 1;
                        0
                    }
                    (Some(&b), _) if self.fake == 0 => {
                        self.pos += 1;
                        b
                    }
                    _ => {
                        self.fake += 1;
                        0
                    }
                };
                self.buf |= u64::from(byte) << (56 - self.count);
                self.count += 8;
            }
        }

        /// True once bits that were not in the data (fed at a marker or past the end)
        /// have been consumed: the stream is truncated or corrupt.
        fn overran(&self) -> bool {
            self.count < self.fake * 8
        }

        fn peek(&mut self, n: u32) -> u32 {
            if self.count < n {
                self.fill();
            }
            (self.buf >> (64 - n)) as u32
        }

        fn skip(&mut self, n: u32) {
            self.buf <<= n;
            self.count -= n;
        }

        fn get(&mut self, n: u32) -> u32 {
            if n == 0 {
                return 0;
            }
            let v = self.peek(n);
            self.skip(n);
            v
        }

        fn decode(&mut self, h: &Huffman) -> Result<u8, String> {
            let (len, sym) = h.fast[self.peek(9) as usize];
            if len > 0 {
                self.skip(u32::from(len));
                return Ok(sym);
            }
            let mut code = self.get(9) as i32;
            for len in 10..=16 {
                code = (code << 1) | self.get(1) as i32;
                if code <= h.maxcode[len] {
                    return Ok(h.values[(h.valptr[len] + code - h.mincode[len]) as usize]);
                }
            }
            Err("invalid Huffman code".into())
        }

        /// T.81 F.2.2.1 RECEIVE + EXTEND
        fn receive_extend(&mut self, s: u8) -> i32 {
            if s == 0 {
                return 0;
            }
            let v = self.get(u32::from(s)) as i32;
            if v < 1 << (s - 1) {
                v - (1 << s) + 1
            } else {
                v
            }
        }

        /// Skips to just past the next RSTn marker and empties the bit buffer.
        fn restart(&mut self) {
            self.buf = 0;
            self.count = 0;
            self.fake = 0;
            while self.pos + 1 < self.data.len() {
                if self.data[self.pos] == 0xFF && (0xD0..=0xD7).contains(&self.data[self.pos + 1]) {
                    self.pos += 2;
                    return;
                }
                self.pos += 1;
            }
        }
    }

    /// Decodes a one-component sequential Huffman JPEG (any precision up to 12 bits) into
    /// native-endian u16 samples, `rows x cols` (the frame header's size must match).
    pub(super) fn decode(data: &[u8], rows: usize, cols: usize) -> Result<Vec<u8>, String> {
        let be16 = |p: usize| -> Result<usize, String> {
            data.get(p..p + 2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                .ok_or_else(|| "truncated JPEG header".to_string())
        };
        if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
            return Err("no JPEG SOI marker".into());
        }
        let mut qt = [[0f32; 64]; 4];
        let mut dc: [Option<Huffman>; 4] = Default::default();
        let mut ac: [Option<Huffman>; 4] = Default::default();
        let mut frame: Option<(u8, usize, usize, u8, usize)> = None; // P, Y, X, C, Tq
        let mut restart_interval = 0usize;
        let mut p = 2;
        loop {
            while data.get(p) == Some(&0xFF) && data.get(p + 1) == Some(&0xFF) {
                p += 1;
            }
            if data.get(p) != Some(&0xFF) {
                return Err(format!("expected a marker at byte {p}"));
            }
            let m = *data.get(p + 1).ok_or("truncated JPEG")?;
            p += 2;
            let len = be16(p)?;
            let seg = data.get(p + 2..p + len).ok_or("truncated JPEG segment")?;
            match m {
                0xDB => {
                    let mut s = seg;
                    while let [pq_tq, rest @ ..] = s {
                        let (pq, tq) = (pq_tq >> 4, usize::from(pq_tq & 15));
                        let n = if pq == 0 { 64 } else { 128 };
                        let t = rest.get(..n).ok_or("truncated DQT")?;
                        for k in 0..64 {
                            qt[tq & 3][k] = if pq == 0 {
                                f32::from(t[k])
                            } else {
                                f32::from(u16::from_be_bytes([t[2 * k], t[2 * k + 1]]))
                            };
                        }
                        s = &rest[n..];
                    }
                }
                0xC4 => {
                    let mut s = seg;
                    while let [tc_th, rest @ ..] = s {
                        let counts: [u8; 16] = rest
                            .get(..16)
                            .ok_or("truncated DHT")?
                            .try_into()
                            .expect("16 bytes");
                        let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                        let values = rest.get(16..16 + n).ok_or("truncated DHT")?.to_vec();
                        let h = Huffman::new(&counts, values)?;
                        let th = usize::from(tc_th & 3);
                        if tc_th >> 4 == 0 {
                            dc[th] = Some(h);
                        } else {
                            ac[th] = Some(h);
                        }
                        s = &rest[16 + n..];
                    }
                }
                0xC0 | 0xC1 => {
                    if seg.len() < 9 || seg[5] != 1 {
                        return Err("only one-component (greyscale) JPEG is handled".into());
                    }
                    let y = usize::from(u16::from_be_bytes([seg[1], seg[2]]));
                    let x = usize::from(u16::from_be_bytes([seg[3], seg[4]]));
                    frame = Some((seg[0], y, x, seg[6], usize::from(seg[8] & 3)));
                }
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(format!("JPEG process SOF{} is not handled", m - 0xC0));
                }
                0xDD => restart_interval = be16(p + 2)?,
                0xDA => {
                    let (precision, y, x, cid, tq) = frame.ok_or("scan before frame header")?;
                    if (y, x) != (rows, cols) {
                        return Err(format!(
                            "JPEG frame is {x} x {y}, the DICOM header says {cols} x {rows}"
                        ));
                    }
                    if seg.first() != Some(&1) || seg.get(1) != Some(&cid) {
                        return Err("scan does not hold the one component".into());
                    }
                    let (td, ta) = (usize::from(seg[2] >> 4 & 3), usize::from(seg[2] & 3));
                    let dct = dc[td].as_ref().ok_or("missing DC Huffman table")?;
                    let act = ac[ta].as_ref().ok_or("missing AC Huffman table")?;
                    let mut bits = Bits::new(data, p + len);
                    return decode_scan(
                        &mut bits,
                        dct,
                        act,
                        &qt[tq],
                        precision,
                        rows,
                        cols,
                        restart_interval,
                    );
                }
                0xD9 => return Err("no scan in the JPEG stream".into()),
                _ => {} // APPn, COM, DNL...: skipped
            }
            p += len;
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decode_scan(
        bits: &mut Bits<'_>,
        dct: &Huffman,
        act: &Huffman,
        q: &[f32; 64],
        precision: u8,
        rows: usize,
        cols: usize,
        restart_interval: usize,
    ) -> Result<Vec<u8>, String> {
        // cos table: c[x][u] = C(u) cos((2x+1) u pi / 16) / 2
        let mut c = [[0f32; 8]; 8];
        for (x, cx) in c.iter_mut().enumerate() {
            for (u, v) in cx.iter_mut().enumerate() {
                let cu = if u == 0 {
                    std::f64::consts::FRAC_1_SQRT_2
                } else {
                    1.0
                };
                *v = (cu * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos()
                    / 2.0) as f32;
            }
        }
        let level = (1i32 << (precision - 1)) as f32;
        let max = ((1i32 << precision) - 1) as f32;
        let (bw, bh) = (cols.div_ceil(8), rows.div_ceil(8));
        let mut out = vec![0u8; rows * cols * 2];
        let mut pred = 0i32;
        let mut coef = [0f32; 64];
        let mut tmp = [0f32; 64];
        for b in 0..bw * bh {
            if restart_interval > 0 && b > 0 && b % restart_interval == 0 {
                bits.restart();
                pred = 0;
            }
            coef.fill(0.0);
            let t = bits.decode(dct)?;
            if t > 16 {
                return Err("bad DC magnitude category".into());
            }
            pred += bits.receive_extend(t);
            coef[0] = pred as f32 * q[0];
            let mut k = 1;
            while k < 64 {
                let rs = bits.decode(act)?;
                let (r, s) = (usize::from(rs >> 4), rs & 15);
                if s == 0 {
                    if r == 15 {
                        k += 16;
                        continue;
                    }
                    break;
                }
                k += r;
                if k > 63 {
                    return Err("AC coefficient index past 63".into());
                }
                coef[ZIGZAG[k]] = bits.receive_extend(s) as f32 * q[k];
                k += 1;
            }
            if bits.overran() {
                return Err(format!(
                    "the entropy-coded data ends early (block {b} of {})",
                    bw * bh
                ));
            }
            // separable IDCT: rows of coefficients (v), then columns (u)
            for y in 0..8 {
                for u in 0..8 {
                    let mut s = 0f32;
                    for v in 0..8 {
                        s += c[y][v] * coef[v * 8 + u];
                    }
                    tmp[y * 8 + u] = s;
                }
            }
            let (by, bx) = (b / bw * 8, b % bw * 8);
            for y in 0..8.min(rows - by) {
                let t = &tmp[y * 8..y * 8 + 8];
                for (x, cx) in c.iter().enumerate().take(8.min(cols - bx)) {
                    let s: f32 = cx.iter().zip(t).map(|(a, b)| a * b).sum();
                    let v = (s + level).round().clamp(0.0, max) as u16;
                    let i = 2 * ((by + y) * cols + bx + x);
                    out[i..i + 2].copy_from_slice(&v.to_ne_bytes());
                }
            }
        }
        Ok(out)
    }
}
