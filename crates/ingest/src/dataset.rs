//! The one-pass reader: a DICOM file read once, as a stream of elements, keeping only
//! the attributes the scan uses.
//!
//! [`read_file`] walks the file with the structure check of [`crate::precheck`] (its
//! limits are enforced in the same pass: nesting depth, value sizes, lengths past the end
//! of the file, binary lengths that are not a multiple of the value size) and keeps, in a
//! [`Store`], only the elements listed in [`KEPT`] and the sequences in
//! [`KEPT_SEQUENCES`], at any depth inside kept sequences. Everything else is skipped
//! without being loaded; the walk ends at the first top-level element at or after Pixel
//! Data, so an image is read to the end of its header only. A landmark SR of 180
//! measurement groups keeps a few thousand small items instead of dicom-rs's full object.
//!
//! The store is flat: the kept elements of every data set in one list (16 bytes each), the
//! items of every sequence in another, the values' bytes in one buffer, so a file costs a
//! few allocations however many items it has. It is read through [`Node`]s
//! (`store.tree().root()`).
//!
//! Kept values are not decoded while reading: their bytes go to the store's buffer, and a
//! value is decoded when asked for; a single ASCII text value is
//! handed out as a slice of that buffer, never copied. Values are decoded as dicom-rs
//! 0.10 decodes them with its default (`Preserved`) value strategy: text split at `\`
//! and decoded with the Specific Character Set in force (AE, AS and CS with the default
//! repertoire), binary numbers in the data set's byte order,
//! an empty value as `PrimitiveValue::Empty`. So the scan's code reads a [`Node`] and
//! dicom-rs's `InMemDicomObject` through the same [`Attributes`] trait and gets the same
//! answers; `tests/stream_reader.rs` checks that on every SR and image of the fixtures, the
//! interop files and a generated cohort.
//!
//! Where it differs from dicom-rs: a text value the scan does not keep is never decoded,
//! so a file whose only undecodable text lies in an attribute the scan ignores is read
//! (dicom-rs refuses the whole file).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::path::Path;

use dicom_core::value::{C, PrimitiveValue};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_encoding::text::{DefaultCharacterSetCodec, SpecificCharacterSet, TextCodec};
use dicom_object::InMemDicomObject;

use crate::precheck::{
    Flow, Limits, Opened, PrecheckError, Prefetched, Problem, Visitor, walk, with_buffer,
};

/// Read access to the attributes of a data set, the same for dicom-rs's in-memory
/// object and for a [`Node`] of a [`Store`].
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

/// A kept element: its tag and VR, and where its value is ([`Store::bytes`]) or, for a
/// sequence, where its items are ([`Store::items`]). 16 bytes.
#[derive(Clone, Copy, Debug)]
struct Elem {
    tag: Tag,
    vr: VR,
    /// [`SEQUENCE`], [`BIG_ENDIAN`], [`PLAIN`].
    flags: u8,
    /// Index of the Specific Character Set in force ([`Store::charsets`]).
    charset: u16,
    /// A value: its first byte in [`Store::bytes`]. A sequence: its first item in
    /// [`Store::items`].
    start: u32,
    /// A value: its length. A sequence: its number of items.
    len: u32,
}

/// [`Elem::flags`]: a sequence (else a value).
const SEQUENCE: u8 = 1;
/// [`Elem::flags`]: a value in big-endian byte order.
const BIG_ENDIAN: u8 = 2;
/// [`Elem::flags`]: ASCII text that `to_str` gives as it is, but for trailing padding
/// (one value, or a VR that is never split, and no ISO 2022 escape), kept in
/// [`Store::text`].
const PLAIN: u8 = 4;

/// A data set (the root, or an item): its elements, `elems[start..start + len]`.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    start: u32,
    len: u32,
}

/// The kept elements of one file, flat: no allocation per item or per value. Each data
/// set's elements are contiguous in `elems` and each sequence's items in `items`, so a
/// sequence's items are a slice ([`Attributes::items`] on a [`Node`]).
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// The kept values' bytes, but for [`PLAIN`] text.
    bytes: Vec<u8>,
    /// The kept [`PLAIN`] text values (checked to be ASCII once, when read).
    text: String,
    elems: Vec<Elem>,
    /// The items of the kept sequences.
    items: Vec<Span>,
    /// The root data set.
    root: Span,
    /// The character sets in force at kept values (the first is the default).
    charsets: Vec<SpecificCharacterSet>,
}

thread_local! {
    /// A store whose buffers the thread's next file reuses ([`Store::recycle`]).
    static SPARE: std::cell::RefCell<Store> = std::cell::RefCell::new(Store::default());
}

impl Store {
    /// Gives the store's buffers to the next file this thread reads: the scan reads
    /// thousands of files, and allocating and freeing their buffers again and again left
    /// the memory allocator holding more memory than the run ever used at once.
    pub fn recycle(mut self) {
        self.bytes.clear();
        self.text.clear();
        self.elems.clear();
        self.items.clear();
        self.charsets.clear();
        self.root = Span::default();
        SPARE.with(|s| *s.borrow_mut() = self);
    }

    /// An empty store, with the buffers of the last recycled one.
    fn spare() -> Store {
        SPARE.with(|s| s.take())
    }

    /// The store's data sets, for reading through [`Attributes`]: `tree.root()`.
    pub fn tree(&self) -> Tree<'_> {
        Tree {
            store: self,
            nodes: OnceCell::new(),
        }
    }
}

/// The data sets of a [`Store`], as [`Node`]s ([`Tree::root`]).
pub struct Tree<'s> {
    store: &'s Store,
    /// One node per item of [`Store::items`], in the same order; made by [`Tree::root`].
    nodes: OnceCell<Box<[Node<'s>]>>,
}

impl<'s> Tree<'s> {
    /// The root data set.
    pub fn root(&'s self) -> Node<'s> {
        self.nodes.get_or_init(|| {
            self.store
                .items
                .iter()
                .map(|&span| Node { tree: self, span })
                .collect()
        });
        Node {
            tree: self,
            span: self.store.root,
        }
    }
}

/// One data set of a [`Store`] (the root or an item), read through [`Attributes`].
#[derive(Clone, Copy)]
pub struct Node<'s> {
    tree: &'s Tree<'s>,
    span: Span,
}

impl fmt::Debug for Node<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.elems().iter().map(|e| e.tag))
            .finish()
    }
}

impl<'s> Node<'s> {
    fn elems(&self) -> &'s [Elem] {
        let (a, n) = (self.span.start as usize, self.span.len as usize);
        &self.tree.store.elems[a..a + n]
    }

    fn get(&self, tag: Tag) -> Option<&'s Elem> {
        self.elems().iter().find(|e| e.tag == tag)
    }

    /// The bytes of a kept value.
    fn bytes(&self, e: &Elem) -> &'s [u8] {
        let (a, n) = (e.start as usize, e.len as usize);
        if e.flags & PLAIN != 0 {
            &self.tree.store.text.as_bytes()[a..a + n]
        } else {
            &self.tree.store.bytes[a..a + n]
        }
    }

    /// A [`PLAIN`] text value.
    fn plain(&self, e: &Elem) -> &'s str {
        let (a, n) = (e.start as usize, e.len as usize);
        self.tree.store.text.get(a..a + n).unwrap_or_default()
    }

    fn raw(&self, tag: Tag) -> Option<&'s Elem> {
        self.get(tag).filter(|e| e.flags & SEQUENCE == 0)
    }

    fn decode(&self, e: &Elem) -> Result<PrimitiveValue, String> {
        let charset = &self.tree.store.charsets[usize::from(e.charset)];
        decode(e.vr, self.bytes(e), e.flags & BIG_ENDIAN != 0, charset)
    }
}

impl<'s> Attributes for Node<'s> {
    fn value(&self, tag: Tag) -> Option<Cow<'_, PrimitiveValue>> {
        let e = self.raw(tag)?;
        // Checked while reading, so this cannot fail; an empty value if it did.
        Some(Cow::Owned(self.decode(e).unwrap_or(PrimitiveValue::Empty)))
    }

    fn text(&self, tag: Tag) -> Option<Cow<'_, str>> {
        let e = self.raw(tag)?;
        if e.flags & PLAIN != 0 {
            return Some(Cow::Borrowed(self.plain(e).trim_end_matches([' ', '\0'])));
        }
        let v = self.decode(e).ok()?;
        Some(Cow::Owned(v.to_str().into_owned()))
    }

    fn items(&self, tag: Tag) -> Option<&[Node<'s>]> {
        let e = self.get(tag).filter(|e| e.flags & SEQUENCE != 0)?;
        let nodes = self.tree.nodes.get().map_or(&[][..], |n| &n[..]);
        let (a, n) = (e.start as usize, e.len as usize);
        nodes.get(a..a + n)
    }

    fn vr(&self, tag: Tag) -> Option<VR> {
        self.get(tag).map(|e| e.vr)
    }
}

/// What [`read_file`] found.
#[derive(Clone, Debug)]
pub struct Header {
    /// Transfer syntax UID of the file meta group (trimmed); empty when none was read.
    pub transfer_syntax: String,
    /// Media Storage SOP Class UID of the file meta group (trimmed).
    pub media_sop_class: String,
    /// The kept elements of the data set (read them through `store.tree().root()`).
    pub store: Store,
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
/// let tree = h.store.tree();
/// let root = tree.root();
/// assert_eq!(text_of(&root, tags::PATIENT_ID).as_deref(), Some("P0001"));
/// let content = root.items(tags::CONTENT_SEQUENCE).unwrap();
/// assert!(!content.is_empty());
///
/// // A shard that does not hold P0001 stops at the PatientID.
/// let h = read_file(sr.as_ref(), &Limits::default(), Some(&|pid: &str| pid != "P0001")).unwrap();
/// let tree = h.store.tree();
/// assert!(h.foreign && tree.root().items(tags::CONTENT_SEQUENCE).is_none());
/// ```
pub fn read_file(
    path: &Path,
    limits: &Limits,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<Header, Refused> {
    with_buffer(|buf| match Opened::open(path, buf) {
        Ok(opened) => read_opened(opened, limits, keep),
        Err(e) => Err(Refused {
            error: PrecheckError {
                problem: Problem::Io,
                offset: 0,
                declared_len: None,
                message: format!("cannot read the file: {e}"),
            },
            patient_id: String::new(),
        }),
    })
}

/// [`read_file`] on a file already opened, its first bytes read.
pub(crate) fn read_opened(
    opened: Opened<'_>,
    limits: &Limits,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> Result<Header, Refused> {
    let len = opened.len;
    let mut c = Collector {
        header: Header {
            transfer_syntax: String::new(),
            media_sop_class: String::new(),
            store: Store::spare(),
            pixel_data: None,
            file_len: len,
            foreign: false,
        },
        pending: Vec::new(),
        done: Vec::new(),
        open: Vec::new(),
        charset: SpecificCharacterSet::default(),
        keep,
        patient_id: String::new(),
        asked: keep.is_none(),
        loose_patient_id: None,
        text: Vec::new(),
    };
    // The text buffer comes from the spare store too.
    c.text = std::mem::take(&mut c.header.store.text).into_bytes();
    c.header
        .store
        .charsets
        .push(SpecificCharacterSet::default());
    if let Err(error) = walk(Prefetched::primed(opened), len, limits, &mut c) {
        return Err(Refused {
            error,
            patient_id: c.patient_id,
        });
    }
    Ok(c.finish())
}

/// An open sequence or item of the walk.
enum Open {
    /// A sequence; `Some(mark)` when kept: its items so far are `Collector::done[mark..]`.
    Sequence {
        tag: Tag,
        vr: VR,
        kept: Option<usize>,
    },
    /// An item; `Some(mark)` when its sequence is kept: its elements so far are
    /// `Collector::pending[mark..]`.
    Item(Option<usize>),
}

struct Collector<'k> {
    header: Header,
    /// The elements of the kept data sets open now (the root's first).
    pending: Vec<Elem>,
    /// The finished items of the kept sequences open now.
    done: Vec<Span>,
    open: Vec<Open>,
    charset: SpecificCharacterSet,
    keep: Option<&'k dyn Fn(&str) -> bool>,
    /// The top-level PatientID, as `text_of` reads it.
    patient_id: String,
    /// `keep` has been asked (or there is none).
    asked: bool,
    /// The PatientID as the SR reader trims it (any white space), when that differs.
    loose_patient_id: Option<String>,
    /// The [`PLAIN`] text values so far ([`Store::text`] once the walk ends).
    text: Vec<u8>,
}

impl Collector<'_> {
    /// Where the elements of the data set open now start in `pending`, when it is kept.
    fn target(&self) -> Option<usize> {
        match self.open.last() {
            None => Some(0),
            Some(Open::Item(mark)) => *mark,
            Some(Open::Sequence { .. }) => None,
        }
    }

    /// Puts an element in the data set open now (which starts at `mark`), replacing one
    /// with the same tag (as dicom-rs does).
    fn put(&mut self, mark: usize, e: Elem) {
        match self.pending[mark..].iter_mut().find(|p| p.tag == e.tag) {
            Some(p) => *p = e,
            None => self.pending.push(e),
        }
    }

    /// The index of the character set in force, added to the store's list when new.
    fn charset_index(&mut self) -> u16 {
        let list = &mut self.header.store.charsets;
        if let Some(i) = list.iter().rposition(|c| *c == self.charset) {
            return i as u16;
        }
        // More distinct character sets than an index holds cannot come from one file's
        // few (0008,0005) elements in practice; the last one is reused if they do.
        if list.len() > usize::from(u16::MAX) {
            return u16::MAX;
        }
        list.push(self.charset.clone());
        (list.len() - 1) as u16
    }

    /// Closes what is still open (a walk stopped early) and sets the root.
    fn finish(mut self) -> Header {
        while !self.open.is_empty() {
            self.close(false);
        }
        let store = &mut self.header.store;
        // ASCII only, so the lossy path is never taken.
        store.text = String::from_utf8(std::mem::take(&mut self.text))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        store.root = Span {
            start: store.elems.len() as u32,
            len: self.pending.len() as u32,
        };
        store.elems.append(&mut self.pending);
        self.header
    }

    /// Asks `keep` about the patient; `Stop` when it refuses.
    fn ask(&mut self) -> Flow {
        if self.asked {
            return Flow::Continue;
        }
        self.asked = true;
        match self.keep {
            Some(keep)
                if !keep(&self.patient_id)
                    && !self.loose_patient_id.as_deref().is_some_and(keep) =>
            {
                self.header.foreign = true;
                Flow::Stop
            }
            _ => Flow::Continue,
        }
    }
}

/// Whether text `b` is ASCII without an ISO 2022 escape (and, with `split`, without a
/// `\` that would make it several values), in one pass over the bytes.
#[inline(always)]
fn plain_ascii(b: &[u8], split: bool) -> bool {
    let (mut or, mut esc, mut sep) = (0u8, 0u8, 0u8);
    for &c in b {
        or |= c;
        esc |= u8::from(c == 0x1B);
        sep |= u8::from(c == b'\\');
    }
    or < 0x80 && esc == 0 && (!split || sep == 0)
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
        let text = is_text(vr);
        let plain = text && plain_ascii(b, !single_string(vr));
        if !plain && (text || vr == VR::SQ) {
            // Decoded now only to refuse what dicom-rs refuses (undecodable text; numbers
            // always decode).
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
        // `wants` asked for the character set and the kept elements only: any value
        // but the character set's is kept (`kept` is not asked again).
        debug_assert!(tag == tags::SPECIFIC_CHARACTER_SET || kept(tag));
        if tag == tags::SPECIFIC_CHARACTER_SET {
            return Ok(Flow::Continue);
        }
        let top = self.open.is_empty();
        if let Some(mark) = self.target() {
            let charset = self.charset_index();
            let store = &mut self.header.store;
            // Plain text is ASCII (checked above): its buffer becomes a `String` with one
            // check when the walk ends (`finish`), not one per value.
            let buffer = if plain {
                &mut self.text
            } else {
                &mut store.bytes
            };
            let start = buffer.len();
            buffer.extend_from_slice(b);
            let e = Elem {
                tag,
                vr,
                flags: if be { BIG_ENDIAN } else { 0 } | if plain { PLAIN } else { 0 },
                charset,
                start: start as u32,
                len: b.len() as u32,
            };
            self.put(mark, e);
        }
        if tag == tags::PATIENT_ID && top {
            let v = decode(vr, b, be, &self.charset)?;
            let v = v.to_str();
            self.patient_id = v.trim_matches(|c: char| c == ' ' || c == '\0').to_string();
            // The SR reader trims any white space (a tab, a no-break space), the image
            // reader spaces and NULs only: the file stays ours when either reading of
            // its PatientID is ours, so that a file is never skipped by the shard whose
            // patient the full read would give it (found by the `stream_reader` fuzz
            // target: a Latin-1 PatientID ending in a no-break space).
            let loose = v.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            self.loose_patient_id = (loose != self.patient_id).then(|| loose.to_string());
            return Ok(self.ask());
        }
        Ok(Flow::Continue)
    }

    fn sequence(&mut self, tag: Tag, vr: VR) {
        let kept = (kept(tag) && self.target().is_some()).then_some(self.done.len());
        self.open.push(Open::Sequence { tag, vr, kept });
    }

    fn item(&mut self) {
        let kept = matches!(self.open.last(), Some(Open::Sequence { kept: Some(_), .. }));
        let mark = kept.then_some(self.pending.len());
        self.open.push(Open::Item(mark));
    }

    fn close(&mut self, _seq: bool) {
        match self.open.pop() {
            Some(Open::Item(Some(mark))) => {
                let store = &mut self.header.store;
                self.done.push(Span {
                    start: store.elems.len() as u32,
                    len: (self.pending.len() - mark) as u32,
                });
                store.elems.extend(self.pending.drain(mark..));
            }
            Some(Open::Sequence {
                tag,
                vr,
                kept: Some(mark),
            }) => {
                let store = &mut self.header.store;
                let e = Elem {
                    tag,
                    vr,
                    flags: SEQUENCE,
                    charset: 0,
                    start: store.items.len() as u32,
                    len: (self.done.len() - mark) as u32,
                };
                store.items.extend(self.done.drain(mark..));
                if let Some(target) = self.target() {
                    self.put(target, e);
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

    /// A shard's scan reads only the first 8 KiB of a file before the walk starts (the
    /// usual first read is 64 KiB): the walk must read the same whatever the first read,
    /// on every DICOM fixture, with and without a shard that refuses the patient.
    #[test]
    fn the_first_read_size_changes_nothing() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let (files, _) = crate::scan::list_files(&root).unwrap();
        let dicom: Vec<_> = files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "dcm"))
            .collect();
        assert!(dicom.len() > 100, "{} DICOM fixtures", dicom.len());
        let limits = Limits::default();
        let refuse = |pid: &str| pid.is_empty();
        let mut srs = 0;
        for f in dicom {
            for keep in [None, Some(&refuse as &dyn Fn(&str) -> bool)] {
                let read = |first: usize| {
                    with_buffer(|buf| {
                        let o = Opened::open_first(f, buf, first).unwrap();
                        match read_opened(o, &limits, keep) {
                            Ok(h) => {
                                let tree = h.store.tree();
                                let sr = tree.root().items(tags::CONTENT_SEQUENCE).is_some();
                                (format!("{h:?}"), sr)
                            }
                            Err(r) => (format!("refused {:?} {}", r.error, r.patient_id), false),
                        }
                    })
                };
                let usual = read(Prefetched::FIRST);
                srs += usize::from(usual.1);
                for first in [4096, 4097, 5000, Prefetched::SHARD_FIRST, 65_535] {
                    assert_eq!(read(first), usual, "{} first read {first}", f.display());
                }
            }
        }
        // The SRs read in full (without the refusing shard) have their content trees.
        assert!(srs >= 40, "{srs} SRs");
    }

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
