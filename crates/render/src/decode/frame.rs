//! Frame 0's samples: native pixel data read in place, encapsulated pixel data decoded by
//! the codec its transfer syntax calls for.

use std::borrow::Cow;
use std::path::Path;

use dicom_core::header::HasLength;
use dicom_core::value::DicomValueType;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;

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
