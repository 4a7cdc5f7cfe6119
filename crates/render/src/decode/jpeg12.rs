//! A decoder for the one JPEG flavour radiographs use that `dicom-pixeldata` 0.10 cannot
//! read: DCT-based sequential Huffman JPEG with 12-bit samples (ITU T.81 process 4,
//! transfer syntax `JPEG_EXTENDED12_BIT`; `jpeg-decoder` 0.3 stops at
//! "unsupported JPEG feature: SamplePrecision(12)"). Greyscale only (one component),
//! baseline/extended sequential (SOF0/SOF1), Huffman tables, restart intervals. The
//! inverse DCT is the textbook floating-point one, rounded to the nearest integer, so
//! samples may differ by 1 from libjpeg's integer IDCT.

/// Zig-zag position -> natural (row-major) position in the 8x8 block.
const ZIGZAG: [usize; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
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
    if data.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err("no JPEG SOI marker".into());
    }
    let mut tables = Tables::new();
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
        let len = be16(data, p)?;
        let seg = data.get(p + 2..p + len).ok_or("truncated JPEG segment")?;
        match m {
            0xDB => tables.dqt(seg)?,
            0xC4 => tables.dht(seg)?,
            0xC0 | 0xC1 => tables.sof(seg)?,
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(format!("JPEG process SOF{} is not handled", m - 0xC0));
            }
            0xDD => tables.restart_interval = be16(data, p + 2)?,
            0xDA => {
                let scan = tables.scan(seg, rows, cols)?;
                return scan.decode(&mut Bits::new(data, p + len));
            }
            0xD9 => return Err("no scan in the JPEG stream".into()),
            _ => {} // APPn, COM, DNL...: skipped
        }
        p += len;
    }
}

/// The big-endian 16-bit value at `data[p..p + 2]`.
fn be16(data: &[u8], p: usize) -> Result<usize, String> {
    data.get(p..p + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| "truncated JPEG header".to_string())
}

/// The frame header: precision, rows, columns, the component's id and its quantisation
/// table.
#[derive(Clone, Copy)]
struct FrameHeader {
    precision: u8,
    rows: usize,
    cols: usize,
    component: u8,
    tq: usize,
}

/// What the marker segments before the scan define.
struct Tables {
    qt: [[f32; 64]; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    frame: Option<FrameHeader>,
    restart_interval: usize,
}

impl Tables {
    fn new() -> Tables {
        Tables {
            qt: [[0f32; 64]; 4],
            dc: Default::default(),
            ac: Default::default(),
            frame: None,
            restart_interval: 0,
        }
    }

    /// DQT: one or more quantisation tables, 8 or 16-bit entries.
    fn dqt(&mut self, seg: &[u8]) -> Result<(), String> {
        let mut s = seg;
        while let [pq_tq, rest @ ..] = s {
            let (pq, tq) = (pq_tq >> 4, usize::from(pq_tq & 15));
            let n = if pq == 0 { 64 } else { 128 };
            let t = rest.get(..n).ok_or("truncated DQT")?;
            for k in 0..64 {
                self.qt[tq & 3][k] = if pq == 0 {
                    f32::from(t[k])
                } else {
                    f32::from(u16::from_be_bytes([t[2 * k], t[2 * k + 1]]))
                };
            }
            s = &rest[n..];
        }
        Ok(())
    }

    /// DHT: one or more Huffman tables.
    fn dht(&mut self, seg: &[u8]) -> Result<(), String> {
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
                self.dc[th] = Some(h);
            } else {
                self.ac[th] = Some(h);
            }
            s = &rest[16 + n..];
        }
        Ok(())
    }

    /// SOF0/SOF1 of one component.
    fn sof(&mut self, seg: &[u8]) -> Result<(), String> {
        if seg.len() < 9 || seg[5] != 1 {
            return Err("only one-component (greyscale) JPEG is handled".into());
        }
        self.frame = Some(FrameHeader {
            precision: seg[0],
            rows: usize::from(u16::from_be_bytes([seg[1], seg[2]])),
            cols: usize::from(u16::from_be_bytes([seg[3], seg[4]])),
            component: seg[6],
            tq: usize::from(seg[8] & 3),
        });
        Ok(())
    }

    /// The scan of the one component (SOS segment `seg`), checked against the frame
    /// header and the DICOM size.
    fn scan(&self, seg: &[u8], rows: usize, cols: usize) -> Result<Scan<'_>, String> {
        let f = self.frame.ok_or("scan before frame header")?;
        if (f.rows, f.cols) != (rows, cols) {
            return Err(format!(
                "JPEG frame is {} x {}, the DICOM header says {cols} x {rows}",
                f.cols, f.rows
            ));
        }
        if seg.first() != Some(&1) || seg.get(1) != Some(&f.component) {
            return Err("scan does not hold the one component".into());
        }
        let (td, ta) = (usize::from(seg[2] >> 4 & 3), usize::from(seg[2] & 3));
        Ok(Scan {
            dc: self.dc[td].as_ref().ok_or("missing DC Huffman table")?,
            ac: self.ac[ta].as_ref().ok_or("missing AC Huffman table")?,
            q: &self.qt[f.tq],
            precision: f.precision,
            rows,
            cols,
            restart_interval: self.restart_interval,
        })
    }
}

/// One scan to decode: its Huffman and quantisation tables, the sample precision, the
/// frame size and the restart interval (0: none).
struct Scan<'a> {
    dc: &'a Huffman,
    ac: &'a Huffman,
    q: &'a [f32; 64],
    precision: u8,
    rows: usize,
    cols: usize,
    restart_interval: usize,
}

impl Scan<'_> {
    /// Every 8x8 block in raster order: entropy decoding, dequantisation, inverse DCT,
    /// level shift, clamping to the precision; the parts of edge blocks outside the
    /// frame are dropped.
    fn decode(&self, bits: &mut Bits<'_>) -> Result<Vec<u8>, String> {
        let c = cos_table();
        let level = (1i32 << (self.precision - 1)) as f32;
        let max = ((1i32 << self.precision) - 1) as f32;
        let (rows, cols) = (self.rows, self.cols);
        let (bw, bh) = (cols.div_ceil(8), rows.div_ceil(8));
        let mut out = vec![0u8; rows * cols * 2];
        let mut pred = 0i32;
        let mut coef = [0f32; 64];
        for b in 0..bw * bh {
            if self.restart_interval > 0 && b > 0 && b % self.restart_interval == 0 {
                bits.restart();
                pred = 0;
            }
            self.block(bits, &mut pred, &mut coef)?;
            if bits.overran() {
                return Err(format!(
                    "the entropy-coded data ends early (block {b} of {})",
                    bw * bh
                ));
            }
            let tmp = idct_rows(&c, &coef);
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

    /// The dequantised coefficients of the next block (natural order) into `coef`; `pred`
    /// is the DC predictor.
    fn block(
        &self,
        bits: &mut Bits<'_>,
        pred: &mut i32,
        coef: &mut [f32; 64],
    ) -> Result<(), String> {
        let q = self.q;
        coef.fill(0.0);
        let t = bits.decode(self.dc)?;
        if t > 16 {
            return Err("bad DC magnitude category".into());
        }
        *pred += bits.receive_extend(t);
        coef[0] = *pred as f32 * q[0];
        let mut k = 1;
        while k < 64 {
            let rs = bits.decode(self.ac)?;
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
        Ok(())
    }
}

/// The IDCT basis: `c[x][u] = C(u) cos((2x+1) u pi / 16) / 2`.
fn cos_table() -> [[f32; 8]; 8] {
    let mut c = [[0f32; 8]; 8];
    for (x, cx) in c.iter_mut().enumerate() {
        for (u, v) in cx.iter_mut().enumerate() {
            let cu = if u == 0 {
                std::f64::consts::FRAC_1_SQRT_2
            } else {
                1.0
            };
            *v = (cu * ((2 * x + 1) as f64 * u as f64 * std::f64::consts::PI / 16.0).cos() / 2.0)
                as f32;
        }
    }
    c
}

/// The first pass of the separable IDCT: rows of coefficients (v) for every output row
/// `y`; the columns (u) are summed when the samples are written.
fn idct_rows(c: &[[f32; 8]; 8], coef: &[f32; 64]) -> [f32; 64] {
    let mut tmp = [0f32; 64];
    for y in 0..8 {
        for u in 0..8 {
            let mut s = 0f32;
            for v in 0..8 {
                s += c[y][v] * coef[v * 8 + u];
            }
            tmp[y * 8 + u] = s;
        }
    }
    tmp
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(frame_precision(&stream), Some((12, true)));
        let out = decode(&stream, 13, 20).unwrap();
        assert_eq!(out.len(), 13 * 20 * 2);
        for r in 0..13 {
            for c in 0..20 {
                let i = 2 * (r * 20 + c);
                let v = u16::from_ne_bytes([out[i], out[i + 1]]);
                assert_eq!(i32::from(v), values[r / 8 * 3 + c / 8], "({r}, {c})");
            }
        }
        // the entropy-coded data cut short (its last 4 bytes and EOI)
        let err = decode(&stream[..stream.len() - 6], 13, 20).unwrap_err();
        assert!(err.contains("ends early"), "{err}");
        let err = decode(&stream[..stream.len() / 2], 13, 20).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
        let err = decode(&stream, 14, 20).unwrap_err();
        assert!(err.contains("20 x 13"), "{err}");
    }
}
