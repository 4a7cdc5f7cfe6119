//! The Modality LUT and the VOI transform (window, VOI LUT, percentile ramp).

use dicom_core::value::{PrimitiveValue, Value};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::DecodeError;
use super::frame::Frame;
use super::header::{IndexMap, find, first_f64, first_item};

/// A LUT of a Modality or VOI LUT Sequence item.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Lut {
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
pub(super) fn modality_lut(frame: &Frame<'_>) -> Result<Vec<f32>, DecodeError> {
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

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum VoiFunction {
    Linear,
    LinearExact,
    Sigmoid,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Voi {
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
    pub(super) fn apply(&self, x: f64) -> f64 {
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
pub(super) fn choose_voi(
    frame: &Frame<'_>,
    modality: &[f32],
) -> Result<(Voi, &'static str), DecodeError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
