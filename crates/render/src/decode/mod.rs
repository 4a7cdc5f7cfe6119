//! Radiograph pixels for the QC overlays: decode frame 0 of a DICOM image, apply the
//! Modality LUT and the VOI transform, invert MONOCHROME1, and shrink the result by area
//! averaging to an 8-bit picture of bounded height.
//!
//! # Pipeline (what [`load_display`] does)
//!
//! 1. **Decode** frame 0 (module `frame`). Native (uncompressed) pixel data is read in
//!    place from the parsed object, without a copy. For encapsulated pixel data the codec
//!    is chosen by transfer syntax UID: a UID the transfer syntax registry has no decoder
//!    for is refused (`UnsupportedTransferSyntax`, or `CodecUnavailable` when a cargo
//!    feature brings it); the rest is decoded by `dicom-pixeldata` 0.10
//!    (`PixelDecoder::decode_pixel_data_frame(0)`: JPEG baseline/extended 8-bit and
//!    lossless, JPEG-LS with the `jpeg-ls` cargo feature, JPEG 2000), except:
//!    * RLE Lossless (module `rle`): checked here first, then decoded by dicom-pixeldata's
//!      RLE decoder, or here when that decoder's size guard refuses the frame (16 MiB or
//!      more compressed better than 32:1, which flat synthetic images are: the cohort's
//!      7000 x 3000 RLE files, ~0.7 MB) or a segment runs past the frame; never into more
//!      than the declared frame size;
//!    * 12-bit lossy JPEG (module `jpeg12`, process 4, `JPEG_EXTENDED12_BIT`):
//!      `jpeg-decoder` 0.3 has no 12-bit DCT ("unsupported JPEG feature:
//!      SamplePrecision(12)").
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
//!
//! # Modules
//!
//! `header` (the pixel matrix attributes), `frame` (frame 0's samples, the codec choice),
//! `rle` and `jpeg12` (the decoders of this crate), `voi` (Modality LUT and VOI),
//! `resize` (area averaging), `display` (steps 3-6 put together).

use std::path::{Path, PathBuf};

mod display;
mod frame;
mod header;
mod jpeg12;
mod resize;
mod rle;
mod voi;

pub use frame::missing_codec_feature;
pub use resize::area_resize;

/// A radiograph ready for drawing: 8-bit grey, at most `max_rows` tall, with the factor
/// that maps source pixel coordinates to these pixels.
pub struct DisplayImage {
    /// The windowed, downsampled picture.
    pub image: image::GrayImage,
    /// output pixels per source pixel (<= 1), same on both axes
    pub scale: f64,
    /// Rows of the source frame.
    pub source_rows: u32,
    /// Columns of the source frame.
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
    Read {
        /// The file.
        path: PathBuf,
        /// The reader's error and its causes.
        message: String,
    },
    /// The object has no Pixel Data (7FE0,0010), e.g. an SR document.
    #[error("{}: no pixel data (7FE0,0010) in this object", path.display())]
    NoPixelData {
        /// The file.
        path: PathBuf,
    },
    /// The pixel data is in a transfer syntax this build cannot decode.
    #[error("{}: unsupported transfer syntax {uid} ({name}): this build has no decoder for it", path.display())]
    UnsupportedTransferSyntax {
        /// The file.
        path: PathBuf,
        /// Transfer syntax UID.
        uid: String,
        /// Its name, `unknown transfer syntax` when unknown.
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
        /// The file.
        path: PathBuf,
        /// Transfer syntax UID.
        uid: String,
        /// Its name.
        name: &'static str,
        /// The cargo feature that brings the decoder.
        feature: &'static str,
    },
    /// The codec failed, or gave a frame of the wrong size.
    #[error("{}: cannot decode the {name} ({uid}) pixel data: {message}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Transfer syntax UID.
        uid: String,
        /// Its name.
        name: &'static str,
        /// What the codec said.
        message: String,
    },
    /// A valid image this module does not handle (colour, 32-bit samples, float pixels...).
    #[error("{}: unsupported image: {what}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is not handled.
        what: String,
    },
    /// An attribute needed for decoding or the LUTs is missing or malformed.
    #[error("{}: {attribute}: {what}", path.display())]
    BadAttribute {
        /// The file.
        path: PathBuf,
        /// The attribute's name and tag, e.g. `BitsStored (0028,0101)`.
        attribute: &'static str,
        /// What is wrong with it.
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
    frame::with_frame(path, |frame| display::display(frame, max_rows))
}

/// The same before windowing: frame 0 as f32 after the Modality LUT, row-major (for tests
/// and codec comparisons). Returns `(rows, cols, values)`.
pub fn decode_modality(path: &Path) -> Result<(u32, u32, Vec<f32>), DecodeError> {
    frame::with_frame(path, display::modality)
}
