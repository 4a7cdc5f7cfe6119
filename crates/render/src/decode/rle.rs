//! DICOM RLE Lossless (PS3.5 Annex G) for one greyscale frame: a 64-byte header with the
//! segment count and offsets, then one PackBits segment per byte of the sample, most
//! significant byte first.

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
fn unpack(src: &[u8], out: &mut [u8], at: usize, stride: usize, n: usize) -> Result<(), String> {
    let (mut i, mut o) = (0usize, 0usize);
    while o < n && i < src.len() {
        let h = src[i] as i8;
        i += 1;
        if h >= 0 {
            let len = h as usize + 1;
            let lit = src
                .get(i..i + len)
                .ok_or_else(|| format!("literal run past the end of the segment at byte {i}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let out = decode(&data, 5, 2).unwrap();
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
        assert_eq!(decode(&d8, 3, 1).unwrap(), [7, 7, 7]);
        // errors: wrong segment count, too few samples, offsets out of range
        assert!(decode(&d8, 3, 2).unwrap_err().contains("1 segments"));
        assert!(
            decode(&d8, 200, 1)
                .unwrap_err()
                .contains("ends after 128 of 200")
        );
        let mut bad = d8.clone();
        bad[4..8].copy_from_slice(&10u32.to_le_bytes());
        assert!(decode(&bad, 3, 1).is_err());
        assert!(decode(&d8[..20], 3, 1).is_err());
    }
}
