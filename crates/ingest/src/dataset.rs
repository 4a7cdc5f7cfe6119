//! The one-pass reader: a DICOM file read once, as a stream of elements, keeping only
//! the attributes the scan uses.
//!
//! [`read_file`] walks the file with the structure check of [`crate::precheck`] (its
//! limits are enforced in the same pass: nesting depth, value sizes, lengths past the end
//! of the file, binary lengths that are not a multiple of the value size) and keeps, in a
//! [`Sparse`] data set, only the elements listed in [`KEPT`] and the sequences in
//! [`KEPT_SEQUENCES`], at any depth inside kept sequences. Everything else is skipped
//! without being loaded; the walk ends at the first top-level element at or after Pixel
//! Data, so an image is read to the end of its header only. A landmark SR of 180
//! measurement groups keeps a few thousand small items instead of dicom-rs's full object.
//!
//! Kept values are not decoded while reading: their bytes go to one buffer per file (the
//! nodes share it), and a value is decoded when asked for; a single ASCII text value is
//! handed out as a slice of that buffer, never copied. Values are decoded as dicom-rs
//! 0.10 decodes them with its default (`Preserved`) value strategy: text split at `\`
//! and decoded with the Specific Character Set in force (AE, AS and CS with the default
//! repertoire), binary numbers in the data set's byte order,
//! an empty value as `PrimitiveValue::Empty`. So the scan's code reads a [`Sparse`] and
//! dicom-rs's `InMemDicomObject` through the same [`Attributes`] trait and gets the same
//! answers; `tests/stream_reader.rs` checks that on every SR and image of the fixtures, the
//! interop files and a generated cohort.
//!
//! Where it differs from dicom-rs: a text value the scan does not keep is never decoded,
//! so a file whose only undecodable text lies in an attribute the scan ignores is read
//! (dicom-rs refuses the whole file).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fs::File;
use std::path::Path;
use std::rc::Rc;

use dicom_core::value::{C, PrimitiveValue};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::{DefaultCharacterSetCodec, SpecificCharacterSet, TextCodec};
use dicom_object::InMemDicomObject;

use crate::precheck::{Flow, Limits, PrecheckError, Prefetched, Problem, Visitor, walk};

/// Read access to the attributes of a data set, the same for dicom-rs's in-memory
/// object and for a [`Sparse`] one.
pub trait Attributes: Sized {
    /// The value of a non-sequence element, when present (decoded as dicom-rs does).
    fn value(&self, tag: Tag) -> Option<Cow<'_, PrimitiveValue>>;
    /// The value as text (`PrimitiveValue::to_str`), when present and not a sequence.
    fn text(&self, tag: Tag) -> Option<Cow<'_, str>> {
        Some(match self.value(tag)? {
            Cow::Borrowed(p) => p.to_str(),
            Cow::Owned(p) => Cow::Owned(p.to_str().into_owned()),
        })
    }
    /// The items of a sequence element; `None` when absent or not a sequence.
    fn items(&self, tag: Tag) -> Option<&[Self]>;
    /// The VR of an element, when present.
    fn vr(&self, tag: Tag) -> Option<VR>;
}

impl Attributes for InMemDicomObject {
    fn value(&self, tag: Tag) -> Option<Cow<'_, PrimitiveValue>> {
        self.get(tag)?.value().primitive().map(Cow::Borrowed)
    }

    fn items(&self, tag: Tag) -> Option<&[InMemDicomObject]> {
        self.get(tag)?.items()
    }

    fn vr(&self, tag: Tag) -> Option<VR> {
        self.get(tag).map(|e| e.vr())
    }
}

/// Elements kept (outside [`KEPT_SEQUENCES`]): the identity and geometry of an image, and
/// what the SR reader reads of a content item, a code and an image reference.
pub const KEPT: [Tag; 33] = [
    tags::SOP_CLASS_UID,
    tags::SOP_INSTANCE_UID,
    tags::STUDY_DATE,
    tags::MODALITY,
    tags::REFERENCED_SOP_CLASS_UID,
    tags::REFERENCED_SOP_INSTANCE_UID,
    tags::PATIENT_ID,
    tags::CLINICAL_TRIAL_TIME_POINT_ID,
    tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR,
    tags::IMAGER_PIXEL_SPACING,
    tags::VIEW_POSITION,
    tags::STUDY_INSTANCE_UID,
    tags::PATIENT_ORIENTATION,
    tags::IMAGE_POSITION_PATIENT,
    tags::IMAGE_ORIENTATION_PATIENT,
    tags::SAMPLES_PER_PIXEL,
    tags::NUMBER_OF_FRAMES,
    tags::ROWS,
    tags::COLUMNS,
    tags::PIXEL_SPACING,
    tags::BITS_ALLOCATED,
    tags::CODE_VALUE,
    tags::CODING_SCHEME_DESIGNATOR,
    tags::CODE_MEANING,
    tags::LONG_CODE_VALUE,
    tags::URN_CODE_VALUE,
    tags::REFERENCED_FRAME_NUMBER,
    tags::RELATIONSHIP_TYPE,
    tags::VALUE_TYPE,
    tags::PERSON_NAME,
    tags::TEXT_VALUE,
    tags::GRAPHIC_DATA,
    tags::GRAPHIC_TYPE,
];

/// Sequences kept, with their items: the SR content tree, its codes and image references,
/// and the evidence lists.
pub const KEPT_SEQUENCES: [Tag; 7] = [
    tags::CONTENT_SEQUENCE,
    tags::CONCEPT_NAME_CODE_SEQUENCE,
    tags::CONCEPT_CODE_SEQUENCE,
    tags::REFERENCED_SOP_SEQUENCE,
    tags::REFERENCED_SERIES_SEQUENCE,
    tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
    tags::PERTINENT_OTHER_EVIDENCE_SEQUENCE,
];

/// Whether an element is kept: listed in [`KEPT`] or [`KEPT_SEQUENCES`] (whatever its
/// VR turns out to be, so that a "sequence" stored as text is seen as such).
fn kept(tag: Tag) -> bool {
    // Called for every element of every file: the lists as a match on the group first
    // (the compiler turns it into a few comparisons), checked against the lists by a test.
    match tag.0 {
        0x0008 => matches!(
            tag.1,
            0x0016
                | 0x0018
                | 0x0020
                | 0x0060
                | 0x0100
                | 0x0102
                | 0x0104
                | 0x0119
                | 0x0120
                | 0x1115
                | 0x1150
                | 0x1155
                | 0x1160
                | 0x1199
        ),
        0x0010 => tag.1 == 0x0020,
        0x0012 => tag.1 == 0x0050,
        0x0018 => matches!(tag.1, 0x1114 | 0x1164 | 0x5101),
        0x0020 => matches!(tag.1, 0x000D | 0x0020 | 0x0032 | 0x0037),
        0x0028 => matches!(tag.1, 0x0002 | 0x0008 | 0x0010 | 0x0011 | 0x0030 | 0x0100),
        0x0040 => matches!(
            tag.1,
            0xA010 | 0xA040 | 0xA043 | 0xA123 | 0xA160 | 0xA168 | 0xA375 | 0xA385 | 0xA730
        ),
        0x0070 => matches!(tag.1, 0x0022 | 0x0023),
        _ => false,
    }
}

/// The kept values' bytes of one file, shared by its nodes; set when the walk ends.
type Arena = Rc<OnceCell<Box<[u8]>>>;

/// Where a kept value's bytes are in the arena, and how to decode them.
#[derive(Clone, Debug)]
struct Raw {
    start: usize,
    len: usize,
    charset: SpecificCharacterSet,
    big_endian: bool,
    /// ASCII text that `to_str` gives as it is, but for trailing padding (one value, or
    /// a VR that is never split, and no ISO 2022 escape).
    plain: bool,
}

/// A kept element's content.
#[derive(Clone, Debug)]
enum Kept {
    Value(Raw),
    Items(Vec<Sparse>),
}

/// A data set holding only the kept elements (see the module documentation).
#[derive(Clone, Debug)]
pub struct Sparse {
    arena: Arena,
    elements: Vec<(Tag, VR, Kept)>,
}

impl Sparse {
    fn new(arena: &Arena, capacity: usize) -> Sparse {
        Sparse {
            arena: Rc::clone(arena),
            elements: Vec::with_capacity(capacity),
        }
    }

    /// Puts an element, replacing one with the same tag (as dicom-rs does).
    fn put(&mut self, tag: Tag, vr: VR, value: Kept) {
        match self.elements.iter_mut().find(|e| e.0 == tag) {
            Some(e) => *e = (tag, vr, value),
            None => self.elements.push((tag, vr, value)),
        }
    }

    fn get(&self, tag: Tag) -> Option<&(Tag, VR, Kept)> {
        self.elements.iter().find(|e| e.0 == tag)
    }

    /// The bytes of a kept value.
    fn bytes(&self, raw: &Raw) -> &[u8] {
        let arena = self.arena.get().map_or(&[][..], |a| &a[..]);
        arena
            .get(raw.start..raw.start + raw.len)
            .unwrap_or_default()
    }

    fn raw(&self, tag: Tag) -> Option<(VR, &Raw)> {
        match self.get(tag)? {
            (_, vr, Kept::Value(raw)) => Some((*vr, raw)),
            _ => None,
        }
    }
}

impl Attributes for Sparse {
    fn value(&self, tag: Tag) -> Option<Cow<'_, PrimitiveValue>> {
        let (vr, raw) = self.raw(tag)?;
        // Checked while reading, so this cannot fail; an empty value if it did.
        let v = decode(vr, self.bytes(raw), raw.big_endian, &raw.charset)
            .unwrap_or(PrimitiveValue::Empty);
        Some(Cow::Owned(v))
    }

    fn text(&self, tag: Tag) -> Option<Cow<'_, str>> {
        let (vr, raw) = self.raw(tag)?;
        if raw.plain {
            let s = std::str::from_utf8(self.bytes(raw)).unwrap_or_default();
            return Some(Cow::Borrowed(s.trim_end_matches([' ', '\0'])));
        }
        let v = decode(vr, self.bytes(raw), raw.big_endian, &raw.charset).ok()?;
        Some(Cow::Owned(v.to_str().into_owned()))
    }

    fn items(&self, tag: Tag) -> Option<&[Sparse]> {
        match &self.get(tag)?.2 {
            Kept::Items(i) => Some(i),
            Kept::Value(_) => None,
        }
    }

    fn vr(&self, tag: Tag) -> Option<VR> {
        self.get(tag).map(|e| e.1)
    }
}

/// What [`read_file`] found.
#[derive(Clone, Debug)]
pub struct Header {
    /// Transfer syntax UID of the file meta group (trimmed); empty when none was read.
    pub transfer_syntax: String,
    /// Media Storage SOP Class UID of the file meta group (trimmed).
    pub media_sop_class: String,
    /// The kept elements of the data set.
    pub root: Sparse,
    /// The top-level Pixel Data element, when the walk reached it: its declared length and
    /// the offset where its value starts.
    pub pixel_data: Option<(u32, u64)>,
    /// The file's length in bytes.
    pub file_len: u64,
    /// The walk stopped at PatientID because `keep` refused the patient (the rest of the
    /// file was not read).
    pub foreign: bool,
}

/// A string attribute as the scan reads it: `to_str`, trimmed of spaces and NULs; `None`
/// when absent or empty.
pub fn text_of<A: Attributes>(a: &A, tag: Tag) -> Option<String> {
    let v = a.text(tag)?;
    let v = v.trim_matches(|c: char| c == ' ' || c == '\0');
    (!v.is_empty()).then(|| v.to_string())
}

/// A file [`read_file`] refused: why, and its PatientID when the walk got that far (so
/// that the QC issue goes to that patient's shard, the one that reads the file in full).
#[derive(Clone, Debug)]
pub struct Refused {
    /// What is wrong and where.
    pub error: PrecheckError,
    /// The top-level PatientID (trimmed), empty when not reached or absent.
    pub patient_id: String,
}

/// Reads `path` once (see the module documentation). `keep` is asked about the PatientID
/// (empty when absent) as soon as it is known; when it says no, the walk stops there and
/// [`Header::foreign`] is set.
///
/// ```
/// use dicom_dictionary_std::tags;
/// use plumbline_ingest::dataset::{Attributes, read_file, text_of};
/// use plumbline_ingest::precheck::Limits;
///
/// let sr = concat!(env!("CARGO_MANIFEST_DIR"),
///     "/../../fixtures/cohort-small/dicom/P0001/20210530_preop/SR_alpha_lat.dcm");
/// let h = read_file(sr.as_ref(), &Limits::default(), None).unwrap();
/// assert_eq!(text_of(&h.root, tags::PATIENT_ID).as_deref(), Some("P0001"));
/// let content = h.root.items(tags::CONTENT_SEQUENCE).unwrap();
/// assert!(!content.is_empty());
///
/// // A shard that does not hold P0001 stops at the PatientID.
/// let h = read_file(sr.as_ref(), &Limits::default(), Some(&|pid: &str| pid != "P0001")).unwrap();
/// assert!(h.foreign && h.root.items(tags::CONTENT_SEQUENCE).is_none());
/// ```
pub fn read_file(
    path: &Path,
    limits: &Limits,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<Header, Refused> {
    let io = |e: std::io::Error| PrecheckError {
        problem: Problem::Io,
        offset: 0,
        declared_len: None,
        message: format!("cannot read the file: {e}"),
    };
    let refused = |error| Refused {
        error,
        patient_id: String::new(),
    };
    let file = File::open(path).map_err(io).map_err(refused)?;
    let len = file.metadata().map_err(io).map_err(refused)?.len();
    let arena: Arena = Rc::new(OnceCell::new());
    let mut c = Collector {
        header: Header {
            transfer_syntax: String::new(),
            media_sop_class: String::new(),
            root: Sparse::new(&arena, 16),
            pixel_data: None,
            file_len: len,
            foreign: false,
        },
        arena,
        bytes: Vec::new(),
        open: Vec::new(),
        charset: SpecificCharacterSet::default(),
        keep,
        patient_id: String::new(),
        asked: keep.is_none(),
    };
    // One read buffer per thread, reused file after file.
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let walked = BUFFER.with(|b| {
        let mut buf = b.take();
        let r = walk(Prefetched::new(file, &mut buf), len, limits, &mut c);
        b.replace(buf);
        r
    });
    if let Err(error) = walked {
        return Err(Refused {
            error,
            patient_id: c.patient_id,
        });
    }
    let _ = c.arena.set(std::mem::take(&mut c.bytes).into_boxed_slice());
    Ok(c.header)
}

/// An open sequence or item of the walk.
enum Open {
    /// A sequence; its items are collected when it is kept.
    Sequence {
        tag: Tag,
        vr: VR,
        items: Option<Vec<Sparse>>,
    },
    /// An item; its elements are collected when its sequence is kept.
    Item(Option<Sparse>),
}

struct Collector<'k> {
    header: Header,
    arena: Arena,
    /// The kept values' bytes so far (the arena's content once the walk ends).
    bytes: Vec<u8>,
    open: Vec<Open>,
    charset: SpecificCharacterSet,
    keep: Option<&'k dyn Fn(&str) -> bool>,
    /// The top-level PatientID, as `text_of` reads it.
    patient_id: String,
    /// `keep` has been asked (or there is none).
    asked: bool,
}

impl Collector<'_> {
    /// The data set elements go to now, when it is kept.
    fn target(&mut self) -> Option<&mut Sparse> {
        match self.open.last_mut() {
            None => Some(&mut self.header.root),
            Some(Open::Item(node)) => node.as_mut(),
            Some(Open::Sequence { .. }) => None,
        }
    }

    /// Asks `keep` about the patient; `Stop` when it refuses.
    fn ask(&mut self) -> Flow {
        if self.asked {
            return Flow::Continue;
        }
        self.asked = true;
        match self.keep {
            Some(keep) if !keep(&self.patient_id) => {
                self.header.foreign = true;
                Flow::Stop
            }
            _ => Flow::Continue,
        }
    }
}

/// VRs whose value dicom-rs keeps as one string (`Str`), never split at `\`.
fn single_string(vr: VR) -> bool {
    matches!(vr, VR::UT | VR::ST | VR::UR | VR::LT)
}

/// VRs read as text.
fn is_text(vr: VR) -> bool {
    use VR::*;
    single_string(vr)
        || matches!(
            vr,
            AE | AS | CS | PN | SH | LO | UC | UI | IS | DS | DA | TM | DT
        )
}

/// Text as dicom-rs decodes it with `codec`.
fn decode_text(codec: &dyn TextCodec, s: &[u8]) -> Result<String, String> {
    // Every character set dicom-rs knows maps ASCII bytes to themselves, except the ISO
    // 2022 ones, which switch code elements with ESC (0x1B).
    if s.is_ascii() && !s.contains(&0x1B) {
        return Ok(std::str::from_utf8(s).unwrap_or_default().to_owned());
    }
    codec
        .decode(s)
        .map_err(|e| format!("its text cannot be decoded as {}: {e}", codec.name()))
}

/// The value of an element as dicom-rs's `read_value_preserved` builds it from its bytes
/// `b` (`be`: big endian; `charset`: the Specific Character Set in force).
fn decode(
    vr: VR,
    b: &[u8],
    be: bool,
    charset: &SpecificCharacterSet,
) -> Result<PrimitiveValue, String> {
    if b.is_empty() {
        return Ok(PrimitiveValue::Empty);
    }
    let strs = |codec: &dyn TextCodec| -> Result<PrimitiveValue, String> {
        let mut parts = C::new();
        for s in b.split(|&c| c == b'\\') {
            parts.push(decode_text(codec, s)?);
        }
        Ok(PrimitiveValue::Strs(parts))
    };
    macro_rules! nums {
        ($t:ty, $n:literal, $variant:ident) => {{
            let v: C<$t> = b
                .chunks_exact($n)
                .map(|c| {
                    let a: [u8; $n] = c.try_into().expect("chunk size");
                    if be {
                        <$t>::from_be_bytes(a)
                    } else {
                        <$t>::from_le_bytes(a)
                    }
                })
                .collect();
            PrimitiveValue::$variant(v)
        }};
    }
    use VR::*;
    Ok(match vr {
        SQ => return Err("a sequence VR where a value is expected".to_string()),
        AT => {
            let v: C<u16> = match nums!(u16, 2, U16) {
                PrimitiveValue::U16(v) => v,
                _ => C::new(),
            };
            PrimitiveValue::Tags(v.chunks_exact(2).map(|p| Tag(p[0], p[1])).collect())
        }
        AE | AS | CS => strs(&DefaultCharacterSetCodec)?,
        PN | SH | LO | UC | UI | IS | DS | DA | TM | DT => strs(charset)?,
        UT | ST | UR | LT => PrimitiveValue::Str(decode_text(charset, b)?),
        UN | OB => PrimitiveValue::U8(b.iter().copied().collect()),
        US | OW => nums!(u16, 2, U16),
        SS => nums!(i16, 2, I16),
        FD | OD => nums!(f64, 8, F64),
        FL | OF => nums!(f32, 4, F32),
        SL => nums!(i32, 4, I32),
        OL | UL => nums!(u32, 4, U32),
        SV => nums!(i64, 8, I64),
        OV | UV => nums!(u64, 8, U64),
    })
}

impl Visitor for Collector<'_> {
    fn meta(&mut self, transfer_syntax: &str, media_sop_class: &str) {
        self.header.transfer_syntax = transfer_syntax.to_string();
        self.header.media_sop_class = media_sop_class.to_string();
    }

    fn wants(&mut self, tag: Tag, _vr: VR, _depth: usize) -> bool {
        // The character set is followed everywhere, as dicom-rs follows it.
        tag == tags::SPECIFIC_CHARACTER_SET || (kept(tag) && self.target().is_some())
    }

    fn value(&mut self, tag: Tag, vr: VR, b: &[u8], be: bool) -> Result<Flow, String> {
        let plain = is_text(vr)
            && b.is_ascii()
            && !b.contains(&0x1B)
            && (single_string(vr) || !b.contains(&b'\\'));
        if !plain {
            // Decoded now only to refuse what dicom-rs refuses (undecodable text).
            let v = decode(vr, b, be, &self.charset)?;
            if tag == tags::SPECIFIC_CHARACTER_SET
                && vr == VR::CS
                && let PrimitiveValue::Strs(parts) = &v
                && let Some(cs) = parts
                    .first()
                    .and_then(|n| SpecificCharacterSet::from_code(n))
            {
                self.charset = cs;
            }
        } else if tag == tags::SPECIFIC_CHARACTER_SET
            && vr == VR::CS
            && let Some(cs) =
                SpecificCharacterSet::from_code(std::str::from_utf8(b).unwrap_or_default())
        {
            self.charset = cs;
        }
        if !kept(tag) {
            return Ok(Flow::Continue);
        }
        let raw = Raw {
            start: self.bytes.len(),
            len: b.len(),
            charset: self.charset.clone(),
            big_endian: be,
            plain,
        };
        self.bytes.extend_from_slice(b);
        let top = self.open.is_empty();
        if let Some(t) = self.target() {
            t.put(tag, vr, Kept::Value(raw));
        }
        if tag == tags::PATIENT_ID && top {
            let v = decode(vr, b, be, &self.charset)?;
            let v = v.to_str();
            self.patient_id = v.trim_matches(|c: char| c == ' ' || c == '\0').to_string();
            return Ok(self.ask());
        }
        Ok(Flow::Continue)
    }

    fn sequence(&mut self, tag: Tag, vr: VR) {
        let items = (kept(tag) && self.target().is_some()).then(Vec::new);
        self.open.push(Open::Sequence { tag, vr, items });
    }

    fn item(&mut self) {
        let kept = matches!(
            self.open.last(),
            Some(Open::Sequence { items: Some(_), .. })
        );
        // A content item keeps about six elements: room for them at once.
        let node = kept.then(|| Sparse::new(&self.arena, 6));
        self.open.push(Open::Item(node));
    }

    fn close(&mut self, _seq: bool) {
        match self.open.pop() {
            Some(Open::Item(Some(node))) => {
                if let Some(Open::Sequence {
                    items: Some(items), ..
                }) = self.open.last_mut()
                {
                    items.push(node);
                }
            }
            Some(Open::Sequence {
                tag,
                vr,
                items: Some(items),
            }) => {
                if let Some(t) = self.target() {
                    t.put(tag, vr, Kept::Items(items));
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: Tag, _vr: VR, len: u32, value_at: u64) {
        if tag == tags::PIXEL_DATA {
            self.header.pixel_data = Some((len, value_at));
        }
    }

    fn top_level(&mut self, tag: Tag) -> Flow {
        if tag > tags::PATIENT_ID {
            self.ask()
        } else {
            Flow::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_is_exactly_the_two_lists() {
        for t in KEPT.iter().chain(&KEPT_SEQUENCES) {
            assert!(kept(*t), "{t:?}");
        }
        let mut n = 0;
        for g in [
            0x0008u16, 0x0010, 0x0012, 0x0018, 0x0020, 0x0028, 0x0040, 0x0070,
        ] {
            for e in 0..=0xFFFFu16 {
                if kept(Tag(g, e)) {
                    n += 1;
                    let t = Tag(g, e);
                    assert!(KEPT.contains(&t) || KEPT_SEQUENCES.contains(&t), "{t:?}");
                }
            }
        }
        assert_eq!(n, KEPT.len() + KEPT_SEQUENCES.len());
        assert!(!kept(Tag(0x7FE0, 0x0010)));
    }
}
