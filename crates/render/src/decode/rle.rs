//! DICOM RLE Lossless (PS3.5 Annex G) for one greyscale frame: a 64-byte header with the
//! segment count and offsets, then one PackBits segment per byte of the sample, most
//! significant byte first.
//!
//! [`decode`] first checks the frame, allocating nothing: the header (segment count,
//! offsets inside the fragment) and every segment's runs, counted, not expanded. A frame
//! whose segments end before Rows x Columns samples is refused there. A frame whose every
//! segment expands to exactly Rows x Columns samples is decoded by dicom-pixeldata's RLE
//! decoder (`RleLosslessAdapter` of `dicom-transfer-syntax-registry`, taken from the
//! transfer syntax registry). It is decoded here instead, into one buffer of exactly the
//! declared frame size (Rows x Columns x bytes per sample), when
//! * that decoder's allocation guard refuses the frame (`DecodeError::Allocate`: a frame
//!   of 16 MiB or more from a fragment less than 1/32 of its size, which flat synthetic
//!   images are), or
//! * a segment runs on past the frame (non-conformant, as pydicom also accepts): that
//!   decoder would expand the whole segment, up to 128 bytes for every 2 of the stream,
//!   whatever the declared size; here the runs past the frame are cut.
//!
//! The check also keeps frames away from that decoder (0.10) that would panic in it: it
//! reads the segment count and offsets without bounds checks, and indexes an expanded
//! segment without checking its length (a segment short of the frame).

use std::borrow::Cow;
use std::ops::Range;

use dicom_dictionary_std::uids;
use dicom_encoding::adapters::{DecodeError as CodecError, PixelDataObject, RawPixelData};
use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::frame::error_chain;

/// Length of the RLE header: the segment count and 15 segment offsets, 32 bits each.
const HEADER_LEN: usize = 64;

/// Which decoder expanded a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decoder {
    /// dicom-pixeldata's RLE decoder.
    Library,
    /// This module's, when the library's guard refused the frame or a segment runs past it.
    Own,
}

/// Decodes one greyscale frame of `rows x cols` samples of `bytes` bytes each (1 or 2)
/// into little-endian samples. `Err` says what is wrong with the stream.
pub(super) fn decode(
    data: &[u8],
    rows: u16,
    cols: u16,
    bytes: usize,
) -> Result<(Vec<u8>, Decoder), String> {
    let n = usize::from(rows) * usize::from(cols);
    let segments = check(data, n, bytes)?;
    if segments.iter().all(|s| s.expanded == Some(n)) {
        match library(data, rows, cols, bytes) {
            Some(Ok(out)) => return Ok((out, Decoder::Library)),
            // the library's allocation guard refused the frame (or could not allocate it)
            Some(Err(CodecError::Allocate { .. })) => {}
            Some(Err(e)) => return Err(format!("dicom-pixeldata: {}", error_chain(&e))),
            // a build of dicom-pixeldata without its `rle` feature
            None => {}
        }
    }
    own(data, &segments, n, bytes).map(|out| (out, Decoder::Own))
}

/// One segment: its bytes in the fragment and the number of samples dicom-pixeldata's
/// decoder would expand it to (`None`: a replicate run without its byte, which that
/// decoder refuses).
struct Segment {
    range: Range<usize>,
    expanded: Option<usize>,
}

/// Checks the header and every segment's runs against a frame of `n` samples of `bytes`
/// bytes; allocates only the list of (at most 2) segments.
fn check(data: &[u8], n: usize, bytes: usize) -> Result<Vec<Segment>, String> {
    if data.len() < HEADER_LEN {
        return Err(format!("{} bytes, shorter than the RLE header", data.len()));
    }
    let word =
        |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
    let count = word(0);
    if count != bytes {
        return Err(format!(
            "{count} segments; a greyscale frame of {} bits has {bytes}",
            bytes * 8
        ));
    }
    (0..count)
        .map(|seg| {
            let start = word(4 + 4 * seg);
            let end = if seg + 1 < count {
                word(8 + 4 * seg)
            } else {
                data.len()
            };
            if start < HEADER_LEN || start > end || end > data.len() {
                return Err(format!(
                    "segment {seg} at bytes {start}..{end} of {}",
                    data.len()
                ));
            }
            let src = &data[start..end];
            covers(src, n).map_err(|m| format!("segment {seg}: {m}"))?;
            Ok(Segment {
                range: start..end,
                expanded: expanded_len(src),
            })
        })
        .collect()
}

/// One PackBits run: header h in 0..=127 copies h+1 literal bytes, -127..=-1 repeats the
/// next byte 1-h times, -128 is a no-op.
enum Run<'a> {
    Literal(&'a [u8]),
    Replicate(u8, usize),
    NoOp,
}

/// The run whose header is at `src[i]` and the index after it; `Err` names a run cut
/// short by the end of the segment.
fn run_at(src: &[u8], i: usize) -> Result<(Run<'_>, usize), String> {
    let h = src[i] as i8;
    let i = i + 1;
    if h >= 0 {
        let len = h as usize + 1;
        let lit = src
            .get(i..i + len)
            .ok_or_else(|| format!("literal run past the end of the segment at byte {i}"))?;
        Ok((Run::Literal(lit), i + len))
    } else if h != -128 {
        let b = *src.get(i).ok_or("replicate run without its byte")?;
        Ok((Run::Replicate(b, (1 - i32::from(h)) as usize), i + 1))
    } else {
        Ok((Run::NoOp, i))
    }
}

/// Whether the runs of `src` give at least `n` samples, read as [`unpack`] reads them
/// (runs after the `n`-th sample are not looked at).
fn covers(src: &[u8], n: usize) -> Result<(), String> {
    let (mut i, mut o) = (0usize, 0usize);
    while o < n && i < src.len() {
        let (run, next) = run_at(src, i)?;
        o += match run {
            Run::Literal(lit) => lit.len(),
            Run::Replicate(_, len) => len,
            Run::NoOp => 0,
        };
        i = next;
    }
    if o < n {
        return Err(format!("ends after {} of {n} samples", o.min(n)));
    }
    Ok(())
}

/// The length dicom-pixeldata's decoder (its `PackBitsReader`) expands all of `src` to:
/// a literal run cut short by the end gives the bytes there are; `None` for a replicate
/// run without its byte.
fn expanded_len(src: &[u8]) -> Option<usize> {
    let (mut i, mut total) = (0usize, 0usize);
    while i < src.len() {
        let h = src[i] as i8;
        i += 1;
        if h >= 0 {
            let len = h as usize + 1;
            total += len.min(src.len() - i);
            i += len;
        } else if h != -128 {
            src.get(i)?;
            total += (1 - i32::from(h)) as usize;
            i += 1;
        }
    }
    Some(total)
}

/// dicom-pixeldata's RLE decoder on this one frame; `None` when the registry has no
/// decoder for RLE Lossless.
fn library(data: &[u8], rows: u16, cols: u16, bytes: usize) -> Option<Result<Vec<u8>, CodecError>> {
    let ts = TransferSyntaxRegistry.get(uids::RLE_LOSSLESS)?;
    let Codec::EncapsulatedPixelData(Some(reader), _) = ts.codec() else {
        return None;
    };
    let frame = OneFrame {
        data,
        rows,
        cols,
        bits_allocated: (bytes * 8) as u16,
    };
    let mut out = Vec::new();
    Some(reader.decode_frame(&frame, 0, &mut out).map(|()| out))
}

/// This module's decoder, on a frame [`check`] accepted: one buffer of `n * bytes`.
fn own(data: &[u8], segments: &[Segment], n: usize, bytes: usize) -> Result<Vec<u8>, String> {
    let size = n * bytes;
    let mut out = Vec::new();
    out.try_reserve_exact(size)
        .map_err(|_| format!("cannot allocate the frame ({size} bytes)"))?;
    out.resize(size, 0);
    for (seg, s) in segments.iter().enumerate() {
        // segment 0 holds the most significant byte of every sample: little-endian output
        // puts it last
        unpack(&data[s.range.clone()], &mut out, bytes - 1 - seg, bytes, n);
    }
    Ok(out)
}

/// Expands the runs of `src` into byte `at` of each `stride`-byte sample of `out`, up to
/// `n` samples (runs past them are cut). `src` has passed [`covers`].
fn unpack(src: &[u8], out: &mut [u8], at: usize, stride: usize, n: usize) {
    let (mut i, mut o) = (0usize, 0usize);
    while o < n && i < src.len() {
        let Ok((run, next)) = run_at(src, i) else {
            return;
        };
        match run {
            Run::Literal(lit) => {
                let len = lit.len().min(n - o);
                for (k, &b) in lit[..len].iter().enumerate() {
                    out[(o + k) * stride + at] = b;
                }
                o += len;
            }
            Run::Replicate(b, len) => {
                let len = len.min(n - o);
                for k in 0..len {
                    out[(o + k) * stride + at] = b;
                }
                o += len;
            }
            Run::NoOp => {}
        }
        i = next;
    }
}

/// One greyscale frame as dicom-pixeldata's decoders see an object: the header values
/// this crate read (defaults applied) and the frame's bytes as the only fragment (a frame
/// split over several fragments is joined before).
struct OneFrame<'a> {
    data: &'a [u8],
    rows: u16,
    cols: u16,
    bits_allocated: u16,
}

impl PixelDataObject for OneFrame<'_> {
    fn transfer_syntax_uid(&self) -> &str {
        uids::RLE_LOSSLESS
    }

    fn rows(&self) -> Option<u16> {
        Some(self.rows)
    }

    fn cols(&self) -> Option<u16> {
        Some(self.cols)
    }

    fn samples_per_pixel(&self) -> Option<u16> {
        Some(1)
    }

    fn bits_allocated(&self) -> Option<u16> {
        Some(self.bits_allocated)
    }

    fn bits_stored(&self) -> Option<u16> {
        Some(self.bits_allocated)
    }

    fn photometric_interpretation(&self) -> Option<&str> {
        Some("MONOCHROME2")
    }

    fn number_of_frames(&self) -> Option<u32> {
        Some(1)
    }

    fn number_of_fragments(&self) -> Option<u32> {
        Some(1)
    }

    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        (fragment == 0).then_some(Cow::Borrowed(self.data))
    }

    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        None
    }

    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An RLE frame of these segments, most significant byte first.
    fn frame(segments: &[&[u8]]) -> Vec<u8> {
        let mut data = vec![0u8; HEADER_LEN];
        data[..4].copy_from_slice(&(segments.len() as u32).to_le_bytes());
        let mut at = HEADER_LEN;
        for (i, s) in segments.iter().enumerate() {
            data[4 + 4 * i..8 + 4 * i].copy_from_slice(&(at as u32).to_le_bytes());
            at += s.len();
        }
        for s in segments {
            data.extend(*s);
        }
        data
    }

    /// `n` copies of `b` as replicate runs of at most 128.
    fn replicate(b: u8, mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while n > 0 {
            let k = n.min(128);
            out.extend([(1 - k as i32) as i8 as u8, b]);
            n -= k;
        }
        out
    }

    /// `bytes` as literal runs of at most 128.
    fn literal(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in bytes.chunks(128) {
            out.push((chunk.len() - 1) as u8);
            out.extend(chunk);
        }
        out
    }

    fn u16s(out: &[u8]) -> Vec<u16> {
        out.chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn rle_unpacks_literal_and_replicate_runs_msb_first() {
        // 5 samples of 16 bits: 0x0102, 0x0103, 0x0104, 0x0104, 0xFF04
        let msb = [0xFDu8, 0x01, 0x80, 0x00, 0xFF]; // 4 x 0x01, no-op, literal [0xFF]
        let lsb = [0x01u8, 0x02, 0x03, 0xFE, 0x04]; // literal [2, 3], 3 x 0x04
        let data = frame(&[&msb, &lsb]);
        let (out, by) = decode(&data, 1, 5, 2).unwrap();
        assert_eq!(by, Decoder::Library, "a conformant frame");
        assert_eq!(u16s(&out), [0x0102, 0x0103, 0x0104, 0x0104, 0xFF04]);
        // this module's decoder gives the same bytes
        assert_eq!(own(&data, &check(&data, 5, 2).unwrap(), 5, 2).unwrap(), out);
        // 8-bit, one segment; runs longer than the frame are cut (by this module)
        let d8 = frame(&[&[0x81u8, 7]]); // 128 x 7
        assert_eq!(decode(&d8, 1, 3, 1).unwrap(), (vec![7, 7, 7], Decoder::Own));
        // errors: wrong segment count, too few samples, offsets out of range
        assert!(decode(&d8, 1, 3, 2).unwrap_err().contains("1 segments"));
        assert!(
            decode(&d8, 1, 200, 1)
                .unwrap_err()
                .contains("ends after 128 of 200")
        );
        let mut bad = d8.clone();
        bad[4..8].copy_from_slice(&10u32.to_le_bytes());
        assert!(decode(&bad, 1, 3, 1).is_err());
        assert!(decode(&d8[..20], 1, 3, 1).is_err());
        // a segment padded to an even length by a 0 byte is still conformant
        let padded = frame(&[&[0xFD, 3, 0x00]]);
        assert_eq!(
            decode(&padded, 2, 2, 1).unwrap(),
            (vec![3; 4], Decoder::Library)
        );
    }

    #[test]
    fn dicom_pixeldata_decodes_a_conformant_frame() {
        // 32 x 64, 16 bits, every sample different in both bytes
        let (rows, cols) = (32u16, 64u16);
        let value = |i: usize| (i * 7 + 3 * (i / 64)) as u16;
        let n = usize::from(rows) * usize::from(cols);
        let msb: Vec<u8> = (0..n).map(|i| (value(i) >> 8) as u8).collect();
        let lsb: Vec<u8> = (0..n).map(|i| value(i) as u8).collect();
        let data = frame(&[&literal(&msb), &literal(&lsb)]);
        let (out, by) = decode(&data, rows, cols, 2).unwrap();
        assert_eq!(by, Decoder::Library);
        assert_eq!(u16s(&out), (0..n).map(value).collect::<Vec<_>>());
        assert_eq!(own(&data, &check(&data, n, 2).unwrap(), n, 2).unwrap(), out);
    }

    #[test]
    fn frames_the_library_guard_refuses_are_decoded_here() {
        // 4096 x 4096 x 8 bits = 16 MiB from a 256 KiB fragment (64:1): dicom-pixeldata's
        // guard refuses frames of 16 MiB or more from less than 1/32 of their size
        let (rows, cols) = (4096u16, 4096u16);
        let n = usize::from(rows) * usize::from(cols);
        let data = frame(&[&replicate(9, n)]);
        assert!(data.len() < n / 32);
        assert!(matches!(
            library(&data, rows, cols, 1),
            Some(Err(CodecError::Allocate { .. }))
        ));
        let (out, by) = decode(&data, rows, cols, 1).unwrap();
        assert_eq!(by, Decoder::Own);
        assert_eq!(out.len(), n);
        assert!(out.iter().all(|&b| b == 9));
    }

    #[test]
    fn segments_running_past_the_frame_are_cut_here() {
        // 8 x 8 x 8 bits whose one segment expands to 100 times the frame: dicom-pixeldata
        // would expand all of it; this module writes the 64 samples and stops
        let data = frame(&[&replicate(5, 6400)]);
        let segments = check(&data, 64, 1).unwrap();
        assert_eq!(segments[0].expanded, Some(6400));
        assert_eq!(decode(&data, 8, 8, 1).unwrap(), (vec![5; 64], Decoder::Own));
        // one segment exact, the other running on: the frame is decoded here too
        let data = frame(&[&replicate(1, 64), &replicate(2, 65)]);
        let (out, by) = decode(&data, 8, 8, 2).unwrap();
        assert_eq!((u16s(&out), by), (vec![0x0102; 64], Decoder::Own));
    }

    #[test]
    fn malformed_frames_are_refused_by_the_check() {
        // what would make dicom-pixeldata 0.10 panic (or size a Vec by the header) is
        // refused before it is called: a huge segment count, offsets past the fragment,
        // a segment short of the frame (8 GiB declared, a few bytes given)
        let mut huge_count = frame(&[&replicate(1, 64)]);
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = decode(&huge_count, 8, 8, 1).unwrap_err();
        assert!(err.contains("4294967295 segments"), "{err}");
        let mut past = frame(&[&replicate(1, 64), &replicate(2, 64)]);
        past[8..12].copy_from_slice(&1000u32.to_le_bytes());
        let err = decode(&past, 8, 8, 2).unwrap_err();
        assert!(err.contains("segment 0 at bytes 64..1000"), "{err}");
        let short = frame(&[&replicate(1, 300), &replicate(2, 300)]);
        let err = decode(&short, 65535, 65535, 2).unwrap_err();
        assert!(
            err.contains("segment 0: ends after 300 of 4294836225"),
            "{err}"
        );
        // a replicate run without its byte, a literal run past the end of its segment
        let err = decode(&frame(&[&[0xFD]]), 2, 2, 1).unwrap_err();
        assert!(err.contains("replicate run without its byte"), "{err}");
        let err = decode(&frame(&[&[0x05, 1, 2]]), 2, 2, 1).unwrap_err();
        assert!(err.contains("literal run past the end"), "{err}");
    }
}
