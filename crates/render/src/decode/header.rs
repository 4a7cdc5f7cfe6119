//! What the LUT stages need to know about the pixel matrix (Rows, Columns, BitsStored,
//! HighBit, PixelRepresentation, PhotometricInterpretation), and the attribute look-ups
//! shared by the other stages.

use std::path::Path;

use dicom_core::Tag;
use dicom_core::header::HasLength;
use dicom_dictionary_std::tags;
use dicom_object::mem::InMemElement;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use super::DecodeError;

/// What the LUT stages need to know about the pixel matrix.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    pub(super) rows: usize,
    pub(super) cols: usize,
    pub(super) monochrome1: bool,
    pub(super) index: IndexMap,
}

/// Maps a raw sample to an index `0..2^bits` (the stored value, offset by `2^(bits-1)` when
/// signed), the key of every per-image table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct IndexMap {
    pub(super) bits: u32,
    pub(super) shift: u32,
    pub(super) signed: bool,
    /// decoder output: clamp to the BitsStored range instead of masking
    pub(super) clamp: bool,
}

impl IndexMap {
    pub(super) fn len(self) -> usize {
        1 << self.bits
    }

    #[inline(always)]
    pub(super) fn index(self, raw: u16) -> usize {
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
    pub(super) fn value(self, index: usize) -> i32 {
        if self.signed {
            index as i32 - (1 << (self.bits - 1))
        } else {
            index as i32
        }
    }

    /// The index of a stored value, if representable.
    pub(super) fn index_of(self, value: i64) -> Option<usize> {
        let off = if self.signed {
            1i64 << (self.bits - 1)
        } else {
            0
        };
        let i = value + off;
        (0..self.len() as i64).contains(&i).then_some(i as usize)
    }
}

/// Reads the attributes of the pixel matrix: the header and BitsAllocated (8 or 16).
pub(super) fn read_header(
    path: &Path,
    obj: &DefaultDicomObject,
) -> Result<(Header, u16), DecodeError> {
    let a = Attributes { path, obj };
    let (rows, cols) = a.dimensions()?;
    let monochrome1 = a.monochrome1()?;
    let (bits_allocated, index) = a.bit_layout()?;
    Ok((
        Header {
            rows,
            cols,
            monochrome1,
            index,
        },
        bits_allocated,
    ))
}

/// The object the header is read from, and its path for the errors.
struct Attributes<'a> {
    path: &'a Path,
    obj: &'a DefaultDicomObject,
}

impl Attributes<'_> {
    fn bad(&self, attribute: &'static str, what: String) -> DecodeError {
        DecodeError::BadAttribute {
            path: self.path.to_path_buf(),
            attribute,
            what,
        }
    }

    fn unsupported(&self, what: String) -> DecodeError {
        DecodeError::Unsupported {
            path: self.path.to_path_buf(),
            what,
        }
    }

    /// An unsigned 16-bit attribute; `None` when absent or empty.
    fn uint(&self, tag: Tag, name: &'static str) -> Result<Option<u16>, DecodeError> {
        match self.obj.get(tag) {
            None => Ok(None),
            Some(e) if e.is_empty() => Ok(None),
            Some(e) => e
                .to_int::<u16>()
                .map(Some)
                .map_err(|err| self.bad(name, format!("not an unsigned 16-bit integer ({err})"))),
        }
    }

    /// Rows and Columns, both present and above 0.
    fn dimensions(&self) -> Result<(usize, usize), DecodeError> {
        let rows = self.uint(tags::ROWS, "Rows (0028,0010)")?;
        let cols = self.uint(tags::COLUMNS, "Columns (0028,0011)")?;
        match (rows, cols) {
            (Some(r), Some(c)) if r > 0 && c > 0 => Ok((usize::from(r), usize::from(c))),
            (r, c) => Err(self.bad(
                "Rows/Columns",
                format!(
                    "missing or zero ({} x {})",
                    r.map_or("absent".to_string(), |r| r.to_string()),
                    c.map_or("absent".to_string(), |c| c.to_string())
                ),
            )),
        }
    }

    /// Whether the image is MONOCHROME1; refuses anything but one greyscale sample.
    fn monochrome1(&self) -> Result<bool, DecodeError> {
        let spp = self
            .uint(tags::SAMPLES_PER_PIXEL, "SamplesPerPixel (0028,0002)")?
            .unwrap_or(1);
        let pi = text(self.obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
        match (spp, pi.as_str()) {
            (1, "MONOCHROME1") => Ok(true),
            (1, "MONOCHROME2" | "") => Ok(false),
            _ => Err(self.unsupported(format!(
                "not greyscale (SamplesPerPixel {spp}, PhotometricInterpretation `{pi}`)"
            ))),
        }
    }

    /// BitsAllocated (8 or 16) and the index map of BitsStored, HighBit and
    /// PixelRepresentation (defaults: BitsAllocated, BitsStored - 1, unsigned).
    fn bit_layout(&self) -> Result<(u16, IndexMap), DecodeError> {
        let ba = self
            .uint(tags::BITS_ALLOCATED, "BitsAllocated (0028,0100)")?
            .ok_or_else(|| self.bad("BitsAllocated (0028,0100)", "missing".into()))?;
        if ba != 8 && ba != 16 {
            return Err(self.unsupported(format!("BitsAllocated {ba} (only 8 and 16 are handled)")));
        }
        let bs = self
            .uint(tags::BITS_STORED, "BitsStored (0028,0101)")?
            .unwrap_or(ba);
        if bs == 0 || bs > ba {
            return Err(self.bad(
                "BitsStored (0028,0101)",
                format!("{bs} with BitsAllocated {ba}"),
            ));
        }
        let hb = self
            .uint(tags::HIGH_BIT, "HighBit (0028,0102)")?
            .unwrap_or(bs - 1);
        if hb + 1 < bs || hb >= ba {
            return Err(self.bad(
                "HighBit (0028,0102)",
                format!("{hb} with BitsStored {bs}, BitsAllocated {ba}"),
            ));
        }
        let signed = self
            .uint(
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
        Ok((ba, index))
    }
}

// ------------------------------------------------------------------------------ attributes

pub(super) fn first_item(ds: &InMemDicomObject, tag: Tag) -> Option<&InMemDicomObject> {
    ds.get(tag)?.items()?.first()
}

/// `tag` at the root, else inside `macro_seq` of the shared, else of the first per-frame
/// functional group (enhanced objects).
pub(super) fn find(ds: &InMemDicomObject, tag: Tag, macro_seq: Tag) -> Option<&InMemElement> {
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

pub(super) fn text(ds: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = ds.get(tag)?.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

/// First value of a numeric (DS/FD/...) element; `Err` names what is wrong.
pub(super) fn first_f64(e: &InMemElement) -> Result<f64, String> {
    let v = e.to_multi_float64().map_err(|err| err.to_string())?;
    match v.first() {
        Some(x) if x.is_finite() => Ok(*x),
        Some(x) => Err(format!("{x} is not finite")),
        None => Err("empty".into()),
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
}
