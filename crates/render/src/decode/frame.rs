//! Frame 0's samples: native pixel data read in place, encapsulated pixel data decoded by
//! the codec its transfer syntax calls for.

use std::borrow::Cow;
use std::path::Path;

use dicom_core::header::HasLength;
use dicom_core::value::DicomValueType;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::header::{Header, IndexMap, read_header, text};
use super::{DecodeError, jpeg12, rle};

/// Frame 0's samples, borrowed from the object (native) or from the decoder's output.
pub(super) enum Samples<'a> {
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
    pub(super) fn map_row<T: Copy>(
        &self,
        r: usize,
        cols: usize,
        ix: IndexMap,
        lut: &[T],
        out: &mut [T],
    ) {
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
    pub(super) fn histogram(&self, n: usize, ix: IndexMap) -> Vec<u64> {
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

/// Frame 0 as the LUT stages read it.
pub(super) struct Frame<'a> {
    pub(super) path: &'a Path,
    pub(super) obj: &'a DefaultDicomObject,
    pub(super) header: Header,
    pub(super) samples: Samples<'a>,
}

/// Opens `path`, finds frame 0's samples (decoding them if encapsulated) and runs `f`.
pub(super) fn with_frame<R>(
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
    match pixel.value() {
        Value::Primitive(p) => {
            let samples = native_samples(path, p, &header, bits_allocated)?;
            f(&Frame {
                path,
                obj: &obj,
                header,
                samples,
            })
        }
        Value::PixelSequence(seq) => {
            let codec = Encapsulated::new(path, &obj, seq.fragments(), &header, bits_allocated)?;
            let (data, order) = codec.decode()?;
            let samples = codec.samples(&data, order)?;
            // decoder output is a number: clamped to the BitsStored range, not masked
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
        Value::Sequence(_) => Err(bad_pixel_data(path, "is a sequence of items".into())),
    }
}

fn bad_pixel_data(path: &Path, what: String) -> DecodeError {
    DecodeError::BadAttribute {
        path: path.to_path_buf(),
        attribute: "PixelData (7FE0,0010)",
        what,
    }
}

/// Frame 0 of native pixel data, borrowed in place.
fn native_samples<'a>(
    path: &Path,
    p: &'a PrimitiveValue,
    header: &Header,
    bits_allocated: u16,
) -> Result<Samples<'a>, DecodeError> {
    let n = header.rows * header.cols;
    match (bits_allocated, p) {
        (8, PrimitiveValue::U8(v)) if v.len() >= n => Ok(Samples::U8(&v[..n])),
        (16, PrimitiveValue::U16(v)) if v.len() >= n => Ok(Samples::U16(&v[..n])),
        (16, PrimitiveValue::U8(v)) if v.len() >= 2 * n => Ok(Samples::U16Le(&v[..2 * n])),
        (_, PrimitiveValue::U8(_) | PrimitiveValue::U16(_)) => {
            let have = p.calculate_byte_len();
            Err(bad_pixel_data(
                path,
                format!(
                    "{have} bytes, frame 0 needs {} ({} x {} x {bits_allocated} bits)",
                    n * usize::from(bits_allocated / 8),
                    header.rows,
                    header.cols
                ),
            ))
        }
        _ => Err(bad_pixel_data(
            path,
            format!("unexpected value type {:?}", p.value_type()),
        )),
    }
}

/// Who decodes an encapsulated frame, chosen by transfer syntax UID (and, for JPEG, by
/// the precision in the frame header).
enum Codec<'a> {
    /// RLE Lossless: dicom-pixeldata's decoder, or this crate's when that one's size
    /// guard refuses the frame (module `rle`).
    Rle(Cow<'a, [u8]>),
    /// JPEG with 9 to 12-bit samples, process 2/4 (module `jpeg12`): `jpeg-decoder` has no
    /// 12-bit DCT.
    Jpeg12(Cow<'a, [u8]>),
    /// Every other transfer syntax the registry can decode: `dicom-pixeldata`.
    Library,
}

/// Byte order of 16-bit decoder output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    Native,
    Little,
}

/// Encapsulated pixel data and its transfer syntax.
struct Encapsulated<'a> {
    path: &'a Path,
    obj: &'a DefaultDicomObject,
    fragments: &'a [Vec<u8>],
    header: &'a Header,
    bits_allocated: u16,
    uid: String,
    name: &'static str,
}

impl<'a> Encapsulated<'a> {
    /// Refuses a transfer syntax whose decoder this build lacks (a cargo feature).
    fn new(
        path: &'a Path,
        obj: &'a DefaultDicomObject,
        fragments: &'a [Vec<u8>],
        header: &'a Header,
        bits_allocated: u16,
    ) -> Result<Self, DecodeError> {
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
        Ok(Encapsulated {
            path,
            obj,
            fragments,
            header,
            bits_allocated,
            uid,
            name,
        })
    }

    fn error(&self, message: String) -> DecodeError {
        DecodeError::Decode {
            path: self.path.to_path_buf(),
            uid: self.uid.clone(),
            name: self.name,
            message,
        }
    }

    /// The bytes of frame 0: its one fragment, the first of a multi-frame object (one
    /// fragment per frame), else every fragment joined.
    fn frame0(&self) -> Cow<'a, [u8]> {
        let frames = text(self.obj, tags::NUMBER_OF_FRAMES)
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(1);
        match self.fragments {
            [one] => Cow::Borrowed(one.as_slice()),
            [first, ..] if frames > 1 => Cow::Borrowed(first.as_slice()),
            frags => Cow::Owned(frags.concat()),
        }
    }

    fn codec(&self) -> Codec<'a> {
        match self.uid.as_str() {
            uids::RLE_LOSSLESS => Codec::Rle(self.frame0()),
            uids::JPEG_BASELINE8_BIT | uids::JPEG_EXTENDED12_BIT if self.bits_allocated == 16 => {
                let stream = self.frame0();
                match jpeg12::frame_precision(&stream) {
                    Some((9..=12, true)) => Codec::Jpeg12(stream),
                    _ => Codec::Library,
                }
            }
            _ => Codec::Library,
        }
    }

    /// Frame 0 decoded, with the byte order of its 16-bit samples.
    fn decode(&self) -> Result<(Vec<u8>, Order), DecodeError> {
        let (rows, cols) = (self.header.rows, self.header.cols);
        match self.codec() {
            Codec::Rle(data) => {
                // Rows and Columns were read as u16
                let (r, c) = (rows as u16, cols as u16);
                rle::decode(&data, r, c, usize::from(self.bits_allocated / 8))
                    .map(|(d, _)| (d, Order::Little))
                    .map_err(|m| self.error(format!("RLE: {m}")))
            }
            Codec::Jpeg12(stream) => jpeg12::decode(&stream, rows, cols)
                .map(|d| (d, Order::Native))
                .map_err(|m| self.error(format!("12-bit JPEG: {m}"))),
            Codec::Library => self.library().map(|d| (d, Order::Native)),
        }
    }

    /// `dicom-pixeldata`'s decoder of the transfer syntax, if the registry has one.
    fn library(&self) -> Result<Vec<u8>, DecodeError> {
        match TransferSyntaxRegistry.get(&self.uid) {
            Some(ts) if ts.can_decode_all() => {}
            _ => {
                return Err(DecodeError::UnsupportedTransferSyntax {
                    path: self.path.to_path_buf(),
                    uid: self.uid.clone(),
                    name: self.name,
                });
            }
        }
        self.obj
            .decode_pixel_data_frame(0)
            .map(|d| d.into_data())
            .map_err(|e| self.error(error_chain(&e)))
    }

    /// The samples of frame 0 in the decoder's output.
    fn samples<'d>(&self, data: &'d [u8], order: Order) -> Result<Samples<'d>, DecodeError> {
        let want = self.header.rows * self.header.cols * usize::from(self.bits_allocated / 8);
        if data.len() < want {
            return Err(self.error(format!(
                "the decoder gave {} bytes, frame 0 needs {want}",
                data.len()
            )));
        }
        Ok(match (self.bits_allocated, order) {
            (8, _) => Samples::U8(&data[..want]),
            (_, Order::Native) => Samples::U16Ne(&data[..want]),
            (_, Order::Little) => Samples::U16Le(&data[..want]),
        })
    }
}

/// The cargo feature that brings the decoder of transfer syntax `uid`, when this build was
/// made without it; `None` when the build has the decoder (or no feature brings one).
pub fn missing_codec_feature(uid: &str) -> Option<&'static str> {
    match uid {
        uids::JPEGLS_LOSSLESS | uids::JPEGLS_NEAR_LOSSLESS if !cfg!(feature = "jpeg-ls") => {
            Some("jpeg-ls")
        }
        _ => None,
    }
}

/// An error and its sources, deduplicated, joined by ": ".
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
        uids::IMPLICIT_VR_LITTLE_ENDIAN => "Implicit VR Little Endian",
        uids::EXPLICIT_VR_LITTLE_ENDIAN => "Explicit VR Little Endian",
        uids::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN => "Deflated Explicit VR Little Endian",
        // retired, still met in old archives
        #[allow(deprecated)]
        uids::EXPLICIT_VR_BIG_ENDIAN => "Explicit VR Big Endian",
        uids::JPEG_BASELINE8_BIT => "JPEG Baseline (Process 1)",
        uids::JPEG_EXTENDED12_BIT => "JPEG Extended (Process 2 & 4)",
        uids::JPEG_LOSSLESS => "JPEG Lossless (Process 14)",
        uids::JPEG_LOSSLESS_SV1 => "JPEG Lossless SV1 (Process 14, Selection Value 1)",
        uids::JPEGLS_LOSSLESS => "JPEG-LS Lossless",
        uids::JPEGLS_NEAR_LOSSLESS => "JPEG-LS Near-Lossless",
        uids::JPEG2000_LOSSLESS => "JPEG 2000 Lossless",
        uids::JPEG2000 => "JPEG 2000",
        uids::JPEG2000MC_LOSSLESS => "JPEG 2000 Part 2 Multi-component Lossless",
        uids::JPEG2000MC => "JPEG 2000 Part 2 Multi-component",
        uids::MPEG2MPML | uids::MPEG2MPHL => "MPEG2",
        uids::MPEG4HP41 | uids::MPEG4HP41BD => "MPEG-4 AVC/H.264",
        uids::JPEGXL_LOSSLESS => "JPEG XL Lossless",
        uids::JPEGXLJPEG_RECOMPRESSION => "JPEG XL JPEG Recompression",
        uids::JPEGXL => "JPEG XL",
        uids::HTJ2K_LOSSLESS => "High-Throughput JPEG 2000 Lossless",
        uids::HTJ2K_LOSSLESS_RPCL => "High-Throughput JPEG 2000 with RPCL Lossless",
        uids::HTJ2K => "High-Throughput JPEG 2000",
        uids::RLE_LOSSLESS => "RLE Lossless",
        _ => "unknown transfer syntax",
    }
}
