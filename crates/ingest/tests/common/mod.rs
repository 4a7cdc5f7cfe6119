//! Byte-level DICOM writing for the robustness tests: files are assembled from raw
//! element bytes (no dicom-rs object), so that structures dicom-rs could not build or
//! write (10,000-deep trees, lying lengths) can be made cheaply and iteratively.

#![allow(dead_code)]

use std::path::PathBuf;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fresh, empty folder in the system temp folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-ingest-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The undefined length (sequences and items closed by a delimiter).
pub const UNDEFINED: u32 = 0xFFFF_FFFF;
/// Explicit VR Little Endian.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
/// Implicit VR Little Endian.
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Big Endian (retired).
pub const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";
/// Comprehensive SR Storage.
pub const COMPREHENSIVE_SR: &str = "1.2.840.10008.5.1.4.1.1.88.33";

fn short_length(vr: &[u8; 2]) -> bool {
    matches!(
        vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    )
}

/// An explicit VR little endian element header with the given length.
pub fn header(group: u16, elem: u16, vr: &[u8; 2], len: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(12);
    b.extend_from_slice(&group.to_le_bytes());
    b.extend_from_slice(&elem.to_le_bytes());
    b.extend_from_slice(vr);
    if short_length(vr) {
        b.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&len.to_le_bytes());
    }
    b
}

/// An explicit VR little endian element, its value padded to even length (UIDs with a NUL,
/// text with a space).
pub fn el(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
    }
    let mut b = header(group, elem, vr, v.len() as u32);
    b.extend_from_slice(&v);
    b
}

/// An implicit VR little endian element (no padding).
pub fn el_implicit(group: u16, elem: u16, value: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&group.to_le_bytes());
    b.extend_from_slice(&elem.to_le_bytes());
    b.extend_from_slice(&(value.len() as u32).to_le_bytes());
    b.extend_from_slice(value);
    b
}

/// An item or delimiter header (little endian).
pub fn item_tag(elem: u16, len: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(8);
    b.extend_from_slice(&0xFFFEu16.to_le_bytes());
    b.extend_from_slice(&elem.to_le_bytes());
    b.extend_from_slice(&len.to_le_bytes());
    b
}

/// An item header of length `len`.
pub fn item(len: u32) -> Vec<u8> {
    item_tag(0xE000, len)
}

/// An item delimiter.
pub fn item_end() -> Vec<u8> {
    item_tag(0xE00D, 0)
}

/// A sequence delimiter.
pub fn seq_end() -> Vec<u8> {
    item_tag(0xE0DD, 0)
}

/// Preamble, `DICM` and a file meta group (explicit VR little endian) for the given
/// transfer syntax, SOP class and instance.
pub fn meta(ts: &str, sop_class: &str, sop_uid: &str) -> Vec<u8> {
    let mut group = Vec::new();
    group.extend(el(0x0002, 0x0001, b"OB", &[0, 1]));
    group.extend(el(0x0002, 0x0002, b"UI", sop_class.as_bytes()));
    group.extend(el(0x0002, 0x0003, b"UI", sop_uid.as_bytes()));
    group.extend(el(0x0002, 0x0010, b"UI", ts.as_bytes()));
    group.extend(el(0x0002, 0x0012, b"UI", b"2.25.1"));
    let mut b = vec![0u8; 128];
    b.extend_from_slice(b"DICM");
    b.extend(el(
        0x0002,
        0x0000,
        b"UL",
        &(group.len() as u32).to_le_bytes(),
    ));
    b.extend(group);
    b
}

/// A code sequence item's elements: CodeValue, CodingSchemeDesignator, CodeMeaning.
fn code(value: &str, scheme: &str, meaning: &str) -> Vec<u8> {
    let mut b = el(0x0008, 0x0100, b"SH", value.as_bytes());
    b.extend(el(0x0008, 0x0102, b"SH", scheme.as_bytes()));
    b.extend(el(0x0008, 0x0104, b"LO", meaning.as_bytes()));
    b
}

/// A one-item sequence of defined lengths holding `content`.
fn seq1(group: u16, elem: u16, content: &[u8]) -> Vec<u8> {
    let mut b = header(group, elem, b"SQ", content.len() as u32 + 8);
    b.extend(item(content.len() as u32));
    b.extend_from_slice(content);
    b
}

/// RelationshipType, ValueType and ConceptNameCodeSequence of a content item.
fn content_head(rel: &str, value_type: &str, name: (&str, &str, &str)) -> Vec<u8> {
    let mut b = el(0x0040, 0xA010, b"CS", rel.as_bytes());
    b.extend(el(0x0040, 0xA040, b"CS", value_type.as_bytes()));
    b.extend(seq1(0x0040, 0xA043, &code(name.0, name.1, name.2)));
    b
}

/// The SCOORD content item (its elements, without item header) of landmark
/// `S1_sup_post` at (10, 20) on image `image_uid`.
fn point_item(image_uid: &str) -> Vec<u8> {
    let mut sop = el(0x0008, 0x1150, b"UI", b"1.2.840.10008.5.1.4.1.1.1.1");
    sop.extend(el(0x0008, 0x1155, b"UI", image_uid.as_bytes()));
    let mut image = content_head("SELECTED FROM", "IMAGE", ("121324", "DCM", "Source Image"));
    image.extend(seq1(0x0008, 0x1199, &sop));
    let mut p = content_head(
        "CONTAINS",
        "SCOORD",
        (
            "S1_sup_post",
            "99SPINE",
            "S1 superior endplate, posterior corner",
        ),
    );
    let mut data = 10.0f32.to_le_bytes().to_vec();
    data.extend_from_slice(&20.0f32.to_le_bytes());
    p.extend(el(0x0070, 0x0022, b"FL", &data));
    p.extend(el(0x0070, 0x0023, b"CS", b"POINT"));
    p.extend(seq1(0x0040, 0xA730, &image));
    p
}

/// A Comprehensive SR whose content tree nests `depth` CONTAINER items, one inside the
/// other, with one SCOORD point on image `image_uid` at the bottom; written directly as
/// bytes, front to back (no recursion, no object tree), so any depth is cheap.
/// `defined`: sequences and items of the chain carry defined lengths (computed from the
/// depth), else undefined lengths with delimiters.
pub fn deep_sr(depth: usize, image_uid: &str, patient: &str, defined: bool) -> Vec<u8> {
    let sr_uid = format!("2.25.{}{}", 9_000_000 + depth, u8::from(defined));
    let mut b = meta(EXPLICIT_LE, COMPREHENSIVE_SR, &sr_uid);
    b.extend(el(0x0008, 0x0016, b"UI", COMPREHENSIVE_SR.as_bytes()));
    b.extend(el(0x0008, 0x0018, b"UI", sr_uid.as_bytes()));
    b.extend(el(0x0008, 0x0060, b"CS", b"SR"));
    b.extend(el(0x0010, 0x0020, b"LO", patient.as_bytes()));
    b.extend(el(0x0040, 0xA040, b"CS", b"CONTAINER"));
    b.extend(seq1(
        0x0040,
        0xA043,
        &code("126000", "DCM", "Imaging Measurement Report"),
    ));
    // Each level: ContentSequence header, item header, the container's own elements.
    let mut level = content_head(
        "CONTAINS",
        "CONTAINER",
        ("125007", "DCM", "Measurement Group"),
    );
    level.extend(el(0x0040, 0xA050, b"CS", b"SEPARATE"));
    let point = point_item(image_uid);
    if defined {
        // The point's ContentSequence value: one item. Each level outwards adds a
        // ContentSequence header (12), an item header (8) and the level's elements.
        let step = (12 + 8 + level.len()) as u64;
        let point_seq = (8 + point.len()) as u64;
        for i in 0..depth {
            let inner = point_seq + (depth - 1 - i) as u64 * step;
            let item_len = level.len() as u64 + 12 + inner;
            b.extend(header(0x0040, 0xA730, b"SQ", (item_len + 8) as u32));
            b.extend(item(item_len as u32));
            b.extend_from_slice(&level);
        }
        b.extend(header(0x0040, 0xA730, b"SQ", point_seq as u32));
        b.extend(item(point.len() as u32));
        b.extend(point);
    } else {
        for _ in 0..depth {
            b.extend(header(0x0040, 0xA730, b"SQ", UNDEFINED));
            b.extend(item(UNDEFINED));
            b.extend_from_slice(&level);
        }
        b.extend(header(0x0040, 0xA730, b"SQ", UNDEFINED));
        b.extend(item(UNDEFINED));
        b.extend(point);
        b.extend(item_end());
        b.extend(seq_end());
        for _ in 0..depth {
            b.extend(item_end());
            b.extend(seq_end());
        }
    }
    b
}

/// One element header: `(offset, tag, vr, length field offset, length field size)`.
pub type ElementHeader = (usize, (u16, u16), [u8; 2], usize, usize);

/// Offsets of the element headers of an explicit VR little endian file (meta group and
/// data set, nested ones included; pixel data fragments excluded), found by walking it.
pub fn element_headers(bytes: &[u8]) -> Vec<ElementHeader> {
    let mut out = Vec::new();
    let mut i = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        132
    } else {
        4
    };
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    while i + 8 <= bytes.len() {
        let tag = (u16_at(i), u16_at(i + 2));
        if tag.0 == 0xFFFE {
            // Item headers and delimiters: step into items, over delimiters.
            i += 8;
            continue;
        }
        let vr = [bytes[i + 4], bytes[i + 5]];
        let (len_at, len_size, hdr) = if short_length(&vr) {
            (i + 6, 2, 8)
        } else {
            (i + 8, 4, 12)
        };
        if i + hdr > bytes.len() {
            break;
        }
        let len = if len_size == 2 {
            u32::from(u16_at(len_at))
        } else {
            u32_at(len_at)
        };
        out.push((i, tag, vr, len_at, len_size));
        if tag == (0x7FE0, 0x0010) {
            break;
        }
        if &vr == b"SQ" || len == UNDEFINED {
            // Step into the sequence: its items follow.
            i += hdr;
        } else {
            i += hdr + len as usize;
        }
    }
    out
}
