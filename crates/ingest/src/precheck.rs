//! A structural check of a DICOM file's raw bytes, run before dicom-rs parses it.
//!
//! dicom-rs (0.10) is a trusting parser. It builds nested sequences by recursion (about
//! 10 KiB of stack per sequence-and-item level in a debug build, 1.3 KiB in release, so a
//! deep enough file overflows any stack and aborts the whole process), and it allocates
//! each value's declared length before reading it (a length of 4 GB in a 1 KB file is a
//! 4 GB allocation, zero-filled). One such file must not end an overnight batch.
//!
//! [`precheck_file`] walks the file the way dicom-rs's tokenizer
//! (`dicom_parser::dataset::DataSetReader`, with the options the scan uses) would, but
//! iteratively and reading element headers only: values are seeked over, never loaded.
//! It follows the file meta group (explicit VR little endian, for as long as its group
//! length says, as dicom-rs does), then the data set in the file's transfer syntax
//! (implicit VR little endian with the standard dictionary's VRs, explicit VR little or
//! big endian, the encapsulated syntaxes), through sequences and items of defined length
//! (by end offsets, checked when reached) and undefined length (by delimiters), up to the
//! first top-level element at or after (7FE0,0010) Pixel Data, where the scan's parse
//! stops. It rejects the file, naming the element and its byte offset, when:
//!
//! - sequences and items nest deeper than [`Limits::max_nesting`];
//! - there are more than [`Limits::max_items`] items or [`Limits::max_elements`]
//!   elements (dicom-rs holds an item in ~1.3 KB, an element in ~100 bytes);
//! - a value (or a fragment of nested encapsulated pixel data) is longer than
//!   [`Limits::max_value_len`], or runs past the end of the file;
//! - the multi-valued string elements hold more than [`Limits::max_text_values`]
//!   `\`-separated values in all (each is one string, ~24 bytes even when empty, once
//!   loaded; these are the only values the check reads, through its small buffer);
//! - a binary numeric value's length is not a multiple of its value size (dicom-rs would
//!   read on from the wrong offset, where the fuzzer found 1 GB lengths; see
//!   [`Problem::BadValueLength`]);
//! - the file ends inside a header, sequence or item, or the structure is one dicom-rs
//!   cannot read (an item that overruns its sequence, something other than an item in a
//!   sequence).
//!
//! It mirrors dicom-rs where dicom-rs is lenient, so that it never throws away a file
//! dicom-rs reads: an element of undefined length other than Pixel Data is a sequence,
//! whatever its VR (so its nesting is counted); a delimiter closes a sequence or item
//! before its defined end; a stray item delimiter at the top level is skipped; one to
//! three bytes after the last element are ignored. Transfer syntaxes dicom-rs does not
//! parse (unknown UIDs, deflated ones without its `deflate` feature) are let through:
//! dicom-rs refuses them before reading the data set.
//!
//! Memory: a buffered reader's 8 KiB and one 40-byte frame per open sequence or item
//! (bounded by the nesting limit); nothing depends on a declared length.

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::{StandardDataDictionary, uids};
use dicom_encoding::transfer_syntax::{Codec, Endianness, TransferSyntaxIndex};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

/// What the check allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of sequences and items together (a sequence inside an item inside
    /// a sequence is 3).
    pub max_nesting: usize,
    /// Most sequence items (data sets) in the parsed part of the file.
    pub max_items: u64,
    /// Most data elements (and pixel data fragments) in the parsed part of the file.
    pub max_elements: u64,
    /// Longest value (bytes) of an element dicom-rs would load.
    pub max_value_len: u64,
    /// Most `\`-separated values over all multi-valued string elements.
    pub max_text_values: u64,
}

/// Nesting levels never allowed, whatever the SR depth cap: at ~10 KiB of dicom-rs stack
/// per sequence-plus-item pair in a debug build, 20,000 levels stay far below the scan's
/// 512 MiB thread stacks ([`crate::scan::SCAN_STACK_BYTES`]).
pub const MAX_NESTING: usize = 20_000;

/// Default of [`Limits::max_items`]: 250,000 sequence items. dicom-rs holds an item with
/// elements in about 1.3 KB (a B-tree node), so at most ~330 MB; a landmark SR has about
/// ten items per point, a few thousand in all.
pub const DEFAULT_MAX_ITEMS: u64 = 250_000;

/// Default of [`Limits::max_elements`]: 2 million data elements, about 100 bytes each in
/// dicom-rs when packed into items (~200 MB at most).
pub const DEFAULT_MAX_ELEMENTS: u64 = 2_000_000;

/// Default of [`Limits::max_value_len`]: 256 MiB. The scan stops before Pixel Data, so
/// this applies to everything else (private blobs, encapsulated documents).
pub const DEFAULT_MAX_VALUE_LEN: u64 = 256 << 20;

/// Default of [`Limits::max_text_values`]: 2 million strings (~50-100 MB once loaded).
pub const DEFAULT_MAX_TEXT_VALUES: u64 = 2_000_000;

impl Limits {
    /// The limits for reading SRs with content-tree depth cap `depth_cap`
    /// ([`crate::sr::read_sr`]).
    ///
    /// A content item at level `d` sits at nesting `2d` (each level is a ContentSequence
    /// and an item in it), and its own code and reference sequences (an item each) add
    /// 2, so a tree of depth `D` needs `2D + 2` (a few more with nested code sequences).
    /// `4 * depth_cap + 16` lets trees up to about twice the cap through, so that the SR
    /// reader reads the part above the cap and reports the rest (`sr_too_deep`); deeper
    /// files are rejected here. Never more than [`MAX_NESTING`].
    pub fn for_depth_cap(depth_cap: usize) -> Limits {
        Limits {
            max_nesting: depth_cap
                .saturating_mul(4)
                .saturating_add(16)
                .min(MAX_NESTING),
            ..Limits::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nesting: 4 * crate::sr::DEFAULT_DEPTH_CAP + 16,
            max_items: DEFAULT_MAX_ITEMS,
            max_elements: DEFAULT_MAX_ELEMENTS,
            max_value_len: DEFAULT_MAX_VALUE_LEN,
            max_text_values: DEFAULT_MAX_TEXT_VALUES,
        }
    }
}

/// Why a file failed the check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Problem {
    /// Nested deeper than [`Limits::max_nesting`].
    TooDeep,
    /// More than [`Limits::max_items`] sequence items.
    TooManyItems,
    /// More than [`Limits::max_elements`] data elements.
    TooManyElements,
    /// A value longer than [`Limits::max_value_len`].
    ValueTooLong,
    /// More than [`Limits::max_text_values`] text values.
    TooManyTextValues,
    /// A value runs past the end of the file, or the file ends inside a header, a sequence
    /// or an item.
    Truncated,
    /// A structure dicom-rs cannot read (an item that overruns its sequence, something
    /// other than an item inside a sequence, an odd delimiter).
    Malformed,
    /// A binary numeric value (US, UL, FL, FD, AT, ...) whose length is not a multiple of
    /// its values' size: dicom-rs loses its place in the file after it and goes on
    /// reading headers from the wrong offset (it may even report success, with garbage).
    BadValueLength,
    /// The file could not be read.
    Io,
}

impl Problem {
    /// Whether the file is rejected for a resource limit (a crafted or pathological file,
    /// QC `hostile_structure`) rather than for being truncated or corrupt (`broken_file`).
    pub fn is_limit(self) -> bool {
        matches!(
            self,
            Problem::TooDeep
                | Problem::TooManyItems
                | Problem::TooManyElements
                | Problem::ValueTooLong
                | Problem::TooManyTextValues
        )
    }
}

/// A failed check: what, where (byte offset from the start of the file), and a message
/// for a person that names both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrecheckError {
    /// The kind of problem.
    pub problem: Problem,
    /// Byte offset (from the start of the file, preamble included) of the element, item or
    /// header concerned.
    pub offset: u64,
    /// The declared length concerned, when there is one (for [`Problem::Truncated`] and
    /// [`Problem::ValueTooLong`]).
    pub declared_len: Option<u64>,
    /// What is wrong, with the offset.
    pub message: String,
}

impl fmt::Display for PrecheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PrecheckError {}

/// Checks the file at `path` (with or without the 128-byte preamble: `DICM` at byte 128
/// or at byte 0, as the scan decides).
pub fn precheck_file(path: &Path, limits: &Limits) -> Result<(), PrecheckError> {
    let io = |e: std::io::Error| PrecheckError {
        problem: Problem::Io,
        offset: 0,
        declared_len: None,
        message: format!("cannot read the file: {e}"),
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    precheck_reader(file, len, limits)
}

/// Checks a DICOM file read from `source`, `len` bytes long.
pub fn precheck_reader<R: Read + Seek>(
    source: R,
    len: u64,
    limits: &Limits,
) -> Result<(), PrecheckError> {
    walk(BufReader::new(source), len, limits, &mut NoVisit)
}

/// Walks a DICOM file read from `source` (`len` bytes long) with the checks of this
/// module, telling `visit` what it meets; values are read only when `visit` wants them.
/// Stops at the first top-level element at or after Pixel Data, when `visit` says so, or
/// at the first problem.
pub(crate) fn walk<R: Input, V: Visitor>(
    source: R,
    len: u64,
    limits: &Limits,
    visit: &mut V,
) -> Result<(), PrecheckError> {
    let mut w = Walker {
        src: Src {
            r: source,
            pos: 0,
            len,
        },
        limits,
        big_endian: false,
        explicit: true,
        stack: Vec::new(),
        items: 0,
        elements: 0,
        text_values: 0,
        visit,
        buf: Vec::new(),
        stopped: false,
    };
    w.run()
}

/// Whether the walk goes on after a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Read on.
    Continue,
    /// Stop here: the rest of the file is not wanted (it is not checked either).
    Stop,
}

/// What a [`walk`] tells its caller, in file order. Sequences and items of encapsulated
/// pixel data are not reported.
pub(crate) trait Visitor {
    /// The file meta group's transfer syntax (trimmed) and media storage SOP class.
    fn meta(&mut self, _transfer_syntax: &str, _media_sop_class: &str) {}
    /// Whether the value of the element `tag` (VR `vr`, not a sequence) at nesting
    /// `depth` (0 top level) is wanted; when it is, [`Visitor::value`] gets it.
    fn wants(&mut self, _tag: Tag, _vr: VR, _depth: usize) -> bool {
        false
    }
    /// The value of an element [`Visitor::wants`] asked for; `big_endian` is the data
    /// set's byte order.
    fn value(
        &mut self,
        _tag: Tag,
        _vr: VR,
        _bytes: &[u8],
        _big_endian: bool,
    ) -> Result<Flow, String> {
        Ok(Flow::Continue)
    }
    /// A sequence (an SQ, or any element of undefined length) opens.
    fn sequence(&mut self, _tag: Tag, _vr: VR) {}
    /// An item of the innermost sequence opens.
    fn item(&mut self) {}
    /// The innermost sequence (`seq`) or item closes.
    fn close(&mut self, _seq: bool) {}
    /// The header of the first top-level element at or after Pixel Data: its tag, VR,
    /// declared length, and the offset where its value starts. The walk ends there.
    fn end(&mut self, _tag: Tag, _vr: VR, _len: u32, _value_at: u64) {}
    /// A top-level element header (before [`Visitor::wants`]), so that a caller can stop
    /// once it is past the attributes it needs.
    fn top_level(&mut self, _tag: Tag) -> Flow {
        Flow::Continue
    }
}

/// The visitor of the plain check: wants nothing.
struct NoVisit;

impl Visitor for NoVisit {}

/// Checks a whole DICOM file held in memory.
pub fn precheck_bytes(bytes: &[u8], limits: &Limits) -> Result<(), PrecheckError> {
    precheck_reader(std::io::Cursor::new(bytes), bytes.len() as u64, limits)
}

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_DELIMITER: Tag = Tag(0xFFFE, 0xE00D);
const SEQUENCE_DELIMITER: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const GROUP_LENGTH: Tag = Tag(0x0002, 0x0000);
const TRANSFER_SYNTAX: Tag = Tag(0x0002, 0x0010);
const MEDIA_STORAGE_SOP_CLASS: Tag = Tag(0x0002, 0x0002);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// VRs with a 2-byte length in explicit VR (PS3.5 table 7.1-2), as dicom-rs's decoders
/// list them; every other VR, unknown ones included (read as UN), has a 4-byte length.
fn short_length(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS
            | AT
            | CS
            | DA
            | DS
            | DT
            | FL
            | FD
            | IS
            | LO
            | LT
            | PN
            | SH
            | SL
            | SS
            | ST
            | TM
            | UI
            | UL
            | US
    )
}

/// The size of one value of a binary numeric VR (1 for the others). dicom-rs 0.10 reads
/// `len / size` whole values but counts `len` bytes as read, so a length that is not a
/// multiple leaves it reading the next headers from the wrong offset (in the middle of
/// the value), where anything, a 1 GB length say, may be found.
fn value_size(vr: VR) -> u32 {
    use VR::*;
    match vr {
        US | SS | OW => 2,
        AT | FL | OF | UL | OL | SL => 4,
        FD | OD | SV | UV | OV => 8,
        _ => 1,
    }
}

/// VRs dicom-rs loads as a list of strings split at `\`.
fn multi_text(vr: VR) -> bool {
    use VR::*;
    matches!(
        vr,
        AE | AS | PN | SH | LO | UC | UI | IS | DS | DA | TM | DT | CS
    )
}

/// Every VR by its two letters, for [`vr_from_bytes`].
const VR_NAMES: [([u8; 2], VR); 34] = {
    use VR::*;
    [
        (*b"AE", AE),
        (*b"AS", AS),
        (*b"AT", AT),
        (*b"CS", CS),
        (*b"DA", DA),
        (*b"DS", DS),
        (*b"DT", DT),
        (*b"FL", FL),
        (*b"FD", FD),
        (*b"IS", IS),
        (*b"LO", LO),
        (*b"LT", LT),
        (*b"OB", OB),
        (*b"OD", OD),
        (*b"OF", OF),
        (*b"OL", OL),
        (*b"OV", OV),
        (*b"OW", OW),
        (*b"PN", PN),
        (*b"SH", SH),
        (*b"SL", SL),
        (*b"SQ", SQ),
        (*b"SS", SS),
        (*b"ST", ST),
        (*b"SV", SV),
        (*b"TM", TM),
        (*b"UC", UC),
        (*b"UI", UI),
        (*b"UL", UL),
        (*b"UN", UN),
        (*b"UR", UR),
        (*b"US", US),
        (*b"UT", UT),
        (*b"UV", UV),
    ]
};

/// [`VR_NAMES`] as a table indexed by the two letters (26 x 26 entries): one load per
/// element header instead of a string match.
const VR_TABLE: [Option<VR>; 26 * 26] = {
    let mut t = [None; 26 * 26];
    let mut i = 0;
    while i < VR_NAMES.len() {
        let (n, vr) = VR_NAMES[i];
        t[(n[0] - b'A') as usize * 26 + (n[1] - b'A') as usize] = Some(vr);
        i += 1;
    }
    t
};

/// `VR::from_binary` without going through text: the VR named by two bytes, if any.
#[inline(always)]
fn vr_from_bytes(b: [u8; 2]) -> Option<VR> {
    let (x, y) = (b[0].wrapping_sub(b'A'), b[1].wrapping_sub(b'A'));
    if x < 26 && y < 26 {
        VR_TABLE[usize::from(x) * 26 + usize::from(y)]
    } else {
        None
    }
}

fn tag_str(t: Tag) -> String {
    format!("({:04X},{:04X})", t.0, t.1)
}

/// A buffered input the walk reads from: a `BufReader` over any reader, or
/// [`Prefetched`], the stream reader's buffer over a file.
pub(crate) trait Input: BufRead {
    /// The bytes buffered at the current position (possibly none), without reading.
    fn buffered(&self) -> &[u8];
    /// Moves `n` bytes forward, within the buffer when it can.
    fn skip_ahead(&mut self, n: i64) -> std::io::Result<()>;
    /// Moves to byte `pos` of the input.
    fn seek_to(&mut self, pos: u64) -> std::io::Result<()>;
}

impl<R: Read + Seek> Input for BufReader<R> {
    fn buffered(&self) -> &[u8] {
        self.buffer()
    }

    fn skip_ahead(&mut self, n: i64) -> std::io::Result<()> {
        self.seek_relative(n)
    }

    fn seek_to(&mut self, pos: u64) -> std::io::Result<()> {
        self.seek(std::io::SeekFrom::Start(pos)).map(|_| ())
    }
}

/// Runs `f` with this thread's read buffer, reused file after file (taken out while `f`
/// runs, so a nested call gets a new, empty one).
pub(crate) fn with_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    thread_local! {
        static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUFFER.with(|b| {
        let mut buf = b.take();
        let r = f(&mut buf);
        b.replace(buf);
        r
    })
}

/// A file opened once for the scan: its handle and metadata, and its first
/// 64 KiB (`Prefetched::FIRST`; all of it when shorter) in `head`. The work record's key,
/// the magic number and the reader all come from this one open and one read.
pub struct Opened<'b> {
    file: File,
    /// The file's metadata (length, modification time).
    pub meta: std::fs::Metadata,
    /// The file's length in bytes.
    pub len: u64,
    /// The thread's read buffer; its first `filled` bytes are the file's first bytes.
    buf: &'b mut Vec<u8>,
    filled: usize,
}

impl<'b> Opened<'b> {
    /// Opens `path` and reads its first 64 KiB (`Prefetched::FIRST`) into `buf`.
    pub fn open(path: &Path, buf: &'b mut Vec<u8>) -> std::io::Result<Opened<'b>> {
        Opened::open_first(path, buf, Prefetched::FIRST)
    }

    /// [`Opened::open`] reading only the first `first` bytes (at least 4 KiB, the work
    /// record's key): a shard reads 8 KiB ([`crate::ScanOptions::first_read`]), as it
    /// stops at the PatientID of most files; the reader then reads on up to 64 KiB.
    pub fn open_first(
        path: &Path,
        buf: &'b mut Vec<u8>,
        first: usize,
    ) -> std::io::Result<Opened<'b>> {
        let mut file = File::open(path)?;
        let meta = file.metadata()?;
        let len = meta.len();
        let want = len.min(first.max(4096) as u64) as usize;
        let filled = read_exactly(&mut file, buf, want)?;
        Ok(Opened {
            file,
            meta,
            len,
            buf,
            filled,
        })
    }

    /// The file's first bytes, as the first read took them (all of it when shorter).
    pub fn head(&self) -> &[u8] {
        &self.buf[..self.filled]
    }
}

/// Reads the next `want` bytes of `file` into `buf[..want]`; returns how many it read
/// (fewer when the file ends first: it shrank since its length was read). The buffer is
/// the thread's, reused file after file: it only grows, so its bytes are zeroed once, when
/// first used (zeroing 64 KiB for every file cost 2% of the scan's instructions).
fn read_exactly(file: &mut File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    if buf.len() < want {
        buf.resize(want, 0);
    }
    let mut n = 0;
    while n < want {
        // Up to `want`, not to the end of the buffer: the buffer keeps the size of the
        // biggest read of the thread so far, and reading into all of it copied whole
        // images (pixel data and all) and, in a shard, whole files of other shards.
        match file.read(&mut buf[n..want]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A file read through one reusable buffer: reads up to [`Prefetched::FIRST`] bytes
/// (an image's whole header, in practice), then up to [`Prefetched::NEXT`] at a time; a
/// skip past the buffer seeks the file. The buffer is the caller's, so that one thread
/// reads file after file without allocating.
pub(crate) struct Prefetched<'b> {
    file: File,
    buf: &'b mut Vec<u8>,
    /// File offset of `buf[0]`.
    start: u64,
    /// Read position in `buf`.
    at: usize,
    /// End of the file's bytes in `buf` (the rest is an earlier file's).
    end: usize,
    /// The file's length when opened.
    len: u64,
}

impl<'b> Prefetched<'b> {
    /// Bytes of the first read (or, after a shorter first read, up to where a read goes
    /// next): an image's whole header, in practice.
    pub const FIRST: usize = 64 << 10;
    /// Bytes of the first read of a shard's scan: past the PatientID of a file written
    /// the usual way (identity first), so that a file of another shard costs one small
    /// read. (The measurement that chose it, 7.12 -> 5.22 s for `--shard 0/4` of 5000
    /// generated patients, was taken while `read_exactly` still read to the end of the
    /// buffer; 4 KiB was no faster after that fix either: BENCHMARKS.md.)
    pub const SHARD_FIRST: usize = 8 << 10;
    /// Most bytes of a later read.
    pub(crate) const NEXT: usize = 1 << 20;

    /// Reads an opened file from its start, beginning with the bytes already read.
    pub(crate) fn primed(opened: Opened<'b>) -> Prefetched<'b> {
        Prefetched {
            file: opened.file,
            buf: opened.buf,
            end: opened.filled,
            start: 0,
            at: 0,
            len: opened.len,
        }
    }
}

impl Read for Prefetched<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.at += n;
        Ok(n)
    }
}

impl BufRead for Prefetched<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.at == self.end {
            self.start += self.end as u64;
            self.at = 0;
            // After a short first read (a shard's), on to where the usual first read
            // ends, so that an image's header is still read in two reads, not 1 MiB.
            let want = if self.start < Self::FIRST as u64 {
                Self::FIRST - self.start as usize
            } else {
                Self::NEXT
            };
            // Up to the length the file had when opened: one read of what is left (a file
            // that grew since is read as it was; one that shrank ends early).
            let left = self.len.saturating_sub(self.start);
            self.end = read_exactly(&mut self.file, self.buf, left.min(want as u64) as usize)?;
        }
        Ok(&self.buf[self.at..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.end);
    }
}

impl Input for Prefetched<'_> {
    fn buffered(&self) -> &[u8] {
        &self.buf[self.at..self.end]
    }

    fn skip_ahead(&mut self, n: i64) -> std::io::Result<()> {
        let here = self.start + self.at as u64;
        let to = here
            .checked_add_signed(n)
            .ok_or(std::io::ErrorKind::InvalidInput)?;
        self.seek_to(to)
    }

    fn seek_to(&mut self, pos: u64) -> std::io::Result<()> {
        let end = self.start + self.end as u64;
        if (self.start..=end).contains(&pos) {
            self.at = (pos - self.start) as usize;
            return Ok(());
        }
        self.file.seek(std::io::SeekFrom::Start(pos))?;
        self.start = pos;
        self.end = 0;
        self.at = 0;
        Ok(())
    }
}

/// An explicit VR element header at the start of `b` (12 bytes or more), in big-endian
/// byte order with `BE`: (tag, VR, length, header size).
#[inline(always)]
fn explicit_header<const BE: bool>(b: &[u8]) -> (Tag, VR, u32, usize) {
    let u16_at = |i: usize| {
        let x = [b[i], b[i + 1]];
        if BE {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        }
    };
    let u32_at = |i: usize| {
        let x = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if BE {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        }
    };
    let tag = Tag(u16_at(0), u16_at(2));
    if tag.0 == 0xFFFE {
        return (tag, VR::UN, u32_at(4), 8);
    }
    let vr = vr_from_bytes([b[4], b[5]]).unwrap_or(VR::UN);
    if short_length(vr) {
        (tag, vr, u32::from(u16_at(6)), 8)
    } else {
        (tag, vr, u32_at(8), 12)
    }
}

/// The file, with its position tracked.
struct Src<R> {
    r: R,
    pos: u64,
    len: u64,
}

impl<R: Input> Src<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Reads up to `buf.len()` bytes; fewer only at the end of the file.
    #[inline(always)]
    fn read_up_to(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Fast path: all of it is in the read buffer (an item header, a small value).
        if let Some(b) = self.r.buffered().get(..buf.len()) {
            buf.copy_from_slice(b);
            self.r.consume(buf.len());
            self.pos += buf.len() as u64;
            return Ok(buf.len());
        }
        self.read_up_to_slow(buf)
    }

    #[inline(never)]
    fn read_up_to_slow(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.r.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.pos += n as u64;
        Ok(n)
    }

    /// Moves `n` bytes forward (the caller has checked that they exist).
    fn skip(&mut self, n: u64) -> std::io::Result<()> {
        if n > 0 {
            let step = i64::try_from(n).map_err(std::io::Error::other)?;
            self.r.skip_ahead(step)?;
            self.pos += n;
        }
        Ok(())
    }

    /// Reads `n` bytes through the buffer, counting the bytes equal to `b`; stops early
    /// (returning what was counted) once `stop_above` is exceeded.
    fn count_byte(&mut self, mut n: u64, b: u8, stop_above: u64) -> std::io::Result<u64> {
        let mut count = 0;
        while n > 0 {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let k = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            count += buf[..k].iter().filter(|&&c| c == b).count() as u64;
            self.r.consume(k);
            self.pos += k as u64;
            n -= k as u64;
            if count > stop_above {
                break;
            }
        }
        Ok(count)
    }
}

/// One open sequence or item.
#[derive(Clone, Copy, Debug)]
struct Frame {
    /// A sequence (else an item).
    seq: bool,
    /// Inside encapsulated pixel data (fragments, not data sets).
    pixel: bool,
    /// Where it starts (its header), for messages.
    start: u64,
    /// Where its value ends, for a defined length; `None` when delimited.
    end: Option<u64>,
    /// A sequence: an item of it has been opened (the first fragment of encapsulated
    /// pixel data is the offset table).
    seen_item: bool,
}

/// An element header as dicom-rs decodes it.
#[derive(Clone, Copy, Debug)]
struct Header {
    tag: Tag,
    vr: VR,
    len: u32,
    /// Offset of the header's first byte.
    at: u64,
}

struct Walker<'l, 'v, R, V> {
    src: Src<R>,
    limits: &'l Limits,
    big_endian: bool,
    explicit: bool,
    stack: Vec<Frame>,
    items: u64,
    elements: u64,
    text_values: u64,
    visit: &'v mut V,
    /// The value being handed to the visitor.
    buf: Vec<u8>,
    /// The visitor said stop.
    stopped: bool,
}

impl<R: Input, V: Visitor> Walker<'_, '_, R, V> {
    /// Pops the innermost frame, telling the visitor (unless it is pixel data's).
    fn pop(&mut self) -> Option<Frame> {
        let top = self.stack.pop()?;
        if !top.pixel {
            self.visit.close(top.seq);
        }
        Some(top)
    }

    fn err(&self, problem: Problem, offset: u64, message: String) -> PrecheckError {
        PrecheckError {
            problem,
            offset,
            declared_len: None,
            message,
        }
    }

    fn io(&self, e: std::io::Error) -> PrecheckError {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            return self.err(
                Problem::Truncated,
                self.src.pos,
                format!(
                    "the file ends at byte {} in the middle of a value (truncated)",
                    self.src.pos
                ),
            );
        }
        self.err(
            Problem::Io,
            self.src.pos,
            format!("cannot read the file at byte {}: {e}", self.src.pos),
        )
    }

    fn u16(&self, b: [u8; 2]) -> u16 {
        if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn read_u16(&mut self, at: u64) -> Result<u16, PrecheckError> {
        let b = self.header_bytes::<2>(at)?;
        Ok(self.u16(b))
    }

    fn read_u32(&mut self, at: u64) -> Result<u32, PrecheckError> {
        let b = self.header_bytes::<4>(at)?;
        Ok(self.u32(b))
    }

    /// Reads exactly `N` bytes of a header that started at `at`.
    fn header_bytes<const N: usize>(&mut self, at: u64) -> Result<[u8; N], PrecheckError> {
        let mut b = [0u8; N];
        let n = self.src.read_up_to(&mut b).map_err(|e| self.io(e))?;
        if n < N {
            return Err(self.err(
                Problem::Truncated,
                at,
                format!(
                    "the file ends at byte {} inside the element header that starts at byte {at} (truncated)",
                    self.src.len
                ),
            ));
        }
        Ok(b)
    }

    /// Decodes the element header at the start of the read buffer, when the buffer holds
    /// 12 bytes or more: (tag, VR, length, header size). Same result as the slow path.
    #[inline(always)]
    fn header_in_buffer(&mut self) -> Option<(Tag, VR, u32, usize)> {
        let b = self.src.r.buffered();
        if !self.explicit || b.len() < 12 {
            return None;
        }
        // The byte order chosen once per header, not once per field.
        Some(if self.big_endian {
            explicit_header::<true>(b)
        } else {
            explicit_header::<false>(b)
        })
    }

    /// Decodes an element header. `None` at the end of the file (fewer than 4 bytes left
    /// for the tag, which dicom-rs takes as the end of the data set).
    #[inline(always)]
    fn element_header(&mut self) -> Result<Option<Header>, PrecheckError> {
        // Fast path: the whole header is in the read buffer. Inlined, and the header
        // returned in registers: the large `Result` of the slow path, returned through
        // memory for every element, cost a quarter of the walk.
        match self.buffered_header() {
            Some(h) => Ok(Some(h)),
            None => self.element_header_slow(),
        }
    }

    /// [`Walker::element_header`] when the whole header is in the read buffer.
    #[inline(always)]
    fn buffered_header(&mut self) -> Option<Header> {
        let at = self.src.pos;
        let (tag, vr, len, size) = self.header_in_buffer()?;
        self.src.r.consume(size);
        self.src.pos += size as u64;
        Some(Header { tag, vr, len, at })
    }

    /// [`Walker::element_header`] reading through the input.
    #[inline(never)]
    fn element_header_slow(&mut self) -> Result<Option<Header>, PrecheckError> {
        let at = self.src.pos;
        let mut t = [0u8; 4];
        let n = self.src.read_up_to(&mut t).map_err(|e| self.io(e))?;
        if n < 4 {
            return Ok(None);
        }
        let tag = Tag(self.u16([t[0], t[1]]), self.u16([t[2], t[3]]));
        let (vr, len) = if self.explicit {
            if tag.0 == 0xFFFE {
                (VR::UN, self.read_u32(at)?)
            } else {
                let v = self.header_bytes::<2>(at)?;
                let vr = vr_from_bytes(v).unwrap_or(VR::UN);
                if short_length(vr) {
                    (vr, u32::from(self.read_u16(at)?))
                } else {
                    let b = self.header_bytes::<6>(at)?;
                    (vr, self.u32([b[2], b[3], b[4], b[5]]))
                }
            }
        } else {
            let len = self.read_u32(at)?;
            let vr = if tag == PIXEL_DATA || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) {
                VR::OW
            } else {
                StandardDataDictionary
                    .by_tag(tag)
                    .map(|e| e.vr().relaxed())
                    .unwrap_or(VR::UN)
            };
            (vr, len)
        };
        Ok(Some(Header { tag, vr, len, at }))
    }

    /// Checks that `len` bytes from here fit in the file and the value limit.
    #[inline(always)]
    fn check_value(&self, h: &Header, what: &str) -> Result<(), PrecheckError> {
        let len = u64::from(h.len);
        if len > self.src.remaining() || len > self.limits.max_value_len {
            return Err(self.value_error(h, what));
        }
        Ok(())
    }

    /// The error of [`Walker::check_value`] (kept out of the walk's hot path).
    #[cold]
    #[inline(never)]
    fn value_error(&self, h: &Header, what: &str) -> PrecheckError {
        let len = u64::from(h.len);
        if len > self.src.remaining() {
            return PrecheckError {
                problem: Problem::Truncated,
                offset: h.at,
                declared_len: Some(len),
                message: format!(
                    "{what} {} at byte {} declares a length of {len} bytes, but only {} bytes remain in the file ({} bytes): truncated or corrupt",
                    tag_str(h.tag),
                    h.at,
                    self.src.remaining(),
                    self.src.len
                ),
            };
        }
        PrecheckError {
            problem: Problem::ValueTooLong,
            offset: h.at,
            declared_len: Some(len),
            message: format!(
                "{what} {} at byte {} has a {len}-byte value, more than the {} bytes the scan loads for one value",
                tag_str(h.tag),
                h.at,
                self.limits.max_value_len
            ),
        }
    }

    fn count(&mut self, at: u64) -> Result<(), PrecheckError> {
        self.elements += 1;
        if self.elements > self.limits.max_elements {
            return Err(self.err(
                Problem::TooManyElements,
                at,
                format!(
                    "more than {} data elements (the last counted at byte {at}), a limit that bounds the memory used to load it",
                    self.limits.max_elements
                ),
            ));
        }
        Ok(())
    }

    fn count_item(&mut self, at: u64) -> Result<(), PrecheckError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(self.err(
                Problem::TooManyItems,
                at,
                format!(
                    "more than {} sequence items (the last at byte {at}), a limit that bounds the memory used to load it (about 1 KB per item)",
                    self.limits.max_items
                ),
            ));
        }
        Ok(())
    }

    fn push(&mut self, frame: Frame) -> Result<(), PrecheckError> {
        if self.stack.len() >= self.limits.max_nesting {
            let what = if frame.seq { "a sequence" } else { "an item" };
            return Err(self.err(
                Problem::TooDeep,
                frame.start,
                format!(
                    "{what} at byte {} is nested {} levels deep (sequences and items), more than the limit of {} (enough for an SR content tree about {} levels deep; parsing deeper nesting could exhaust the stack)",
                    frame.start,
                    self.stack.len() + 1,
                    self.limits.max_nesting,
                    self.limits.max_nesting.saturating_sub(2) / 2
                ),
            ));
        }
        self.stack.push(frame);
        Ok(())
    }

    fn run(&mut self) -> Result<(), PrecheckError> {
        // Preamble and magic, as the scan decides: "DICM" at 128, else at 0.
        let mut head = [0u8; 132];
        let n = self.src.read_up_to(&mut head).map_err(|e| self.io(e))?;
        let start = if n >= 132 && &head[128..132] == b"DICM" {
            132
        } else if n >= 4 && &head[..4] == b"DICM" {
            4
        } else {
            return Err(self.err(
                Problem::Malformed,
                0,
                "no \"DICM\" at byte 128 or 0: not a DICOM file".to_string(),
            ));
        };
        self.src.r.seek_to(start).map_err(|e| self.io(e))?;
        self.src.pos = start;
        let Some(ts) = self.meta()? else {
            return Ok(());
        };
        let ts = ts.as_str();
        let Some(syntax) = TransferSyntaxRegistry.get(ts) else {
            // dicom-rs refuses an unknown transfer syntax before reading the data set.
            return Ok(());
        };
        if matches!(syntax.codec(), Codec::Dataset(_)) {
            // Deflated data sets: dicom-rs as built here (no `deflate` feature) refuses
            // them before reading; the check cannot look inside without inflating.
            return Ok(());
        }
        self.big_endian = matches!(syntax.endianness(), Endianness::Big);
        self.explicit = syntax.uid() != uids::IMPLICIT_VR_LITTLE_ENDIAN;
        self.data_set()
    }

    /// Walks the file meta group as dicom-rs reads it (its elements until the group
    /// length given by (0002,0000) is used up). Returns the transfer syntax UID, trimmed;
    /// `None` when dicom-rs would stop at the meta group on its own, without allocating
    /// (wrong first element, no transfer syntax, an undefined length).
    fn meta(&mut self) -> Result<Option<TsUid>, PrecheckError> {
        let Some(h) = self.element_header()? else {
            return Ok(None);
        };
        if h.tag != GROUP_LENGTH || h.len != 4 {
            // dicom-rs: "unexpected tag" / "unexpected length", before any allocation.
            return Ok(None);
        }
        let group_length = self.read_u32(h.at)?;
        let mut read: u32 = 0;
        let mut ts = None;
        let mut sop_class: Option<TsUid> = None;
        while read < group_length {
            let Some(h) = self.element_header()? else {
                return Err(self.err(
                    Problem::Truncated,
                    self.src.pos,
                    format!(
                        "the file ends at byte {} inside the file meta group (its group length says {group_length} bytes)",
                        self.src.len
                    ),
                ));
            };
            if h.len == UNDEFINED {
                // dicom-rs: "undefined value length", before any allocation.
                return Ok(None);
            }
            let header_len = (self.src.pos - h.at) as u32;
            self.count(h.at)?;
            self.check_value(&h, "file meta element")?;
            if h.tag == TRANSFER_SYNTAX {
                ts = Some(self.ts_uid(h.len)?);
            } else if h.tag == MEDIA_STORAGE_SOP_CLASS {
                sop_class = Some(self.ts_uid(h.len)?);
            } else {
                self.src.skip(u64::from(h.len)).map_err(|e| self.io(e))?;
            }
            read = read.saturating_add(header_len).saturating_add(h.len);
        }
        if let Some(ts) = &ts {
            let class = sop_class.as_ref().map_or("", TsUid::as_str);
            self.visit.meta(ts.as_str(), class);
        }
        Ok(ts)
    }

    /// Reads a transfer syntax UID value of `len` bytes (already checked to fit) into a
    /// fixed buffer, trimming trailing NULs and spaces as dicom-rs does. A UID longer
    /// than 64 characters is no known transfer syntax; it is returned empty.
    fn ts_uid(&mut self, len: u32) -> Result<TsUid, PrecheckError> {
        let mut uid = TsUid {
            bytes: [0; 64],
            len: 0,
        };
        let mut long = false;
        let mut left = u64::from(len);
        let mut i = 0usize;
        let mut b = [0u8; 64];
        while left > 0 {
            let k = (left.min(64)) as usize;
            let n = self.src.read_up_to(&mut b[..k]).map_err(|e| self.io(e))?;
            if n < k {
                return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            for &c in &b[..k] {
                if !(c == 0 || c.is_ascii_whitespace()) {
                    if i < 64 {
                        uid.len = i + 1;
                    } else {
                        long = true;
                    }
                }
                if i < 64 {
                    uid.bytes[i] = c;
                }
                i += 1;
            }
            left -= k as u64;
        }
        if long {
            uid.len = 0;
        }
        Ok(uid)
    }

    /// Closes the sequences and items of defined length that end here (as dicom-rs
    /// checks after each value and delimiter); an overrun is an error.
    #[inline(always)]
    fn close_defined(&mut self, in_seq: &mut bool) -> Result<(), PrecheckError> {
        // Read in place: copying the frame out, for every element, stalled on the copy.
        while let Some(end) = self.stack.last().and_then(|t| t.end) {
            if self.src.pos < end {
                break;
            }
            let top = self.stack.last().copied().expect("a frame");
            if self.src.pos > end {
                let what = if top.seq { "sequence" } else { "item" };
                return Err(self.err(
                    Problem::Malformed,
                    top.start,
                    format!(
                        "the {what} at byte {} should end at byte {end} by its length, but its content runs to byte {}: corrupt",
                        top.start, self.src.pos
                    ),
                ));
            }
            self.pop();
            // After a sequence: back among its parent's elements. After an item: among
            // its sequence's items.
            *in_seq = !top.seq;
        }
        Ok(())
    }

    /// Walks the data set, up to the first top-level element at or after Pixel Data.
    fn data_set(&mut self) -> Result<(), PrecheckError> {
        // `in_seq`: expecting an item header (inside a sequence), else an element header
        // (top level or inside an item).
        let mut in_seq = false;
        while !self.stopped {
            self.close_defined(&mut in_seq)?;
            if in_seq {
                self.item_header(&mut in_seq)?;
                continue;
            }
            if let Some(top) = self.stack.last()
                && top.pixel
                && !top.seq
            {
                // A pixel data fragment: its whole (defined) length is its value.
                let end = top.end.unwrap_or(self.src.pos);
                self.src.skip(end - self.src.pos).map_err(|e| self.io(e))?;
                continue;
            }
            let h = match self.buffered_header() {
                Some(h) => h,
                None => match self.element_header_slow()? {
                    Some(h) => h,
                    None => {
                        return match self.stack.last() {
                            Some(top) => Err(self.ends_inside(top)),
                            None => Ok(()),
                        };
                    }
                },
            };
            if h.vr != VR::SQ && h.tag == ITEM_DELIMITER {
                if self.stack.is_empty() {
                    // dicom-rs ignores a stray item delimiter at the top level (and does
                    // not skip a value after it).
                    continue;
                }
                self.pop();
                in_seq = true;
                continue;
            }
            // The scan reads up to, not including, the first top-level element at or
            // after Pixel Data.
            if self.stack.is_empty() && h.tag >= PIXEL_DATA {
                self.visit.end(h.tag, h.vr, h.len, self.src.pos);
                return Ok(());
            }
            if self.stack.is_empty() && self.visit.top_level(h.tag) == Flow::Stop {
                return Ok(());
            }
            self.count(h.at)?;
            if h.vr == VR::SQ || h.len == UNDEFINED {
                self.open_sequence(&h)?;
                in_seq = true;
                continue;
            }
            self.value(&h)?;
        }
        Ok(())
    }

    /// The error for a file that ends inside the sequence or item `top`.
    fn ends_inside(&self, top: &Frame) -> PrecheckError {
        let what = if top.seq { "sequence" } else { "item" };
        self.err(
            Problem::Truncated,
            self.src.pos,
            format!(
                "the file ends at byte {} inside the {what} that starts at byte {} (truncated)",
                self.src.len, top.start
            ),
        )
    }

    /// Opens the sequence whose header is `h` (an SQ, or any element of undefined length:
    /// encapsulated pixel data when it is Pixel Data).
    fn open_sequence(&mut self, h: &Header) -> Result<(), PrecheckError> {
        let pixel = h.vr != VR::SQ && h.tag == PIXEL_DATA && h.len == UNDEFINED;
        // A sequence's length is not allocated, and a delimiter may close it before its
        // end (dicom-rs honours both): its end is only checked when reached, and running
        // out of file inside it is caught as it happens.
        let end = (h.len != UNDEFINED).then(|| self.src.pos + u64::from(h.len));
        self.push(Frame {
            seq: true,
            pixel,
            start: h.at,
            end,
            seen_item: false,
        })?;
        if !pixel {
            self.visit.sequence(h.tag, h.vr);
        }
        Ok(())
    }

    /// Checks and passes the value of the element whose header is `h` (not a sequence):
    /// its length, and the number of text values it holds.
    fn value(&mut self, h: &Header) -> Result<(), PrecheckError> {
        self.check_value(h, "element")?;
        let size = value_size(h.vr);
        if !h.len.is_multiple_of(size) {
            return Err(self.err(
                Problem::BadValueLength,
                h.at,
                format!(
                    "element {} at byte {} has VR {} and a length of {} bytes, not a multiple of its {size}-byte values: corrupt (a parser reading whole values loses its place in the file here)",
                    tag_str(h.tag),
                    h.at,
                    h.vr.to_string(),
                    h.len
                ),
            ));
        }
        if self.visit.wants(h.tag, h.vr, self.stack.len()) {
            return self.hand_over(h);
        }
        if !(multi_text(h.vr) && h.len > 0) {
            return self.src.skip(u64::from(h.len)).map_err(|e| self.io(e));
        }
        let budget =
            self.limits.max_text_values - self.text_values.min(self.limits.max_text_values);
        let seps = self
            .src
            .count_byte(u64::from(h.len), b'\\', budget)
            .map_err(|e| self.io(e))?;
        self.add_text_values(h, seps + 1)
    }

    /// Counts `n` more text values, those of element `h`, against the limit.
    #[inline(always)]
    fn add_text_values(&mut self, h: &Header, n: u64) -> Result<(), PrecheckError> {
        self.text_values += n;
        if self.text_values > self.limits.max_text_values {
            return Err(self.too_many_text_values(h));
        }
        Ok(())
    }

    /// The error of [`Walker::add_text_values`].
    #[cold]
    #[inline(never)]
    fn too_many_text_values(&self, h: &Header) -> PrecheckError {
        self.err(
            Problem::TooManyTextValues,
            h.at,
            format!(
                "more than {} text values (separated by `\\`) in multi-valued string elements, the last in {} at byte {}, a limit that bounds the memory used to load them",
                self.limits.max_text_values,
                tag_str(h.tag),
                h.at
            ),
        )
    }

    /// Reads the value of `h` (checked to fit) and hands it to the visitor, counting its
    /// text values as [`Walker::value`] does.
    fn hand_over(&mut self, h: &Header) -> Result<(), PrecheckError> {
        let n = h.len as usize;
        let multi = multi_text(h.vr) && n > 0;
        let flow = if self.src.r.buffered().len() >= n {
            // The whole value is in the read buffer: handed over from there, not copied.
            let b = &self.src.r.buffered()[..n];
            if multi {
                let values = b.iter().filter(|&&c| c == b'\\').count() as u64 + 1;
                self.add_text_values(h, values)?;
            }
            let b = &self.src.r.buffered()[..n];
            let flow = self.visit.value(h.tag, h.vr, b, self.big_endian);
            self.src.r.consume(n);
            self.src.pos += n as u64;
            flow
        } else {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            buf.resize(n, 0);
            let got = self.src.read_up_to(&mut buf).map_err(|e| self.io(e))?;
            if got < n {
                return Err(self.io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if multi {
                let values = buf.iter().filter(|&&c| c == b'\\').count() as u64 + 1;
                self.add_text_values(h, values)?;
            }
            let flow = self.visit.value(h.tag, h.vr, &buf, self.big_endian);
            self.buf = buf;
            flow
        };
        match flow {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => self.stopped = true,
            Err(why) => {
                return Err(self.err(
                    Problem::Malformed,
                    h.at,
                    format!("element {} at byte {}: {why}", tag_str(h.tag), h.at),
                ));
            }
        }
        Ok(())
    }

    /// Inside a sequence: an item, an item delimiter (an error there) or the sequence
    /// delimiter.
    fn item_header(&mut self, in_seq: &mut bool) -> Result<(), PrecheckError> {
        let at = self.src.pos;
        let top = self.stack.last().copied();
        let start = top.map_or(0, |t| t.start);
        let mut b = [0u8; 8];
        let n = self.src.read_up_to(&mut b).map_err(|e| self.io(e))?;
        if n < 8 {
            return Err(self.err(
                Problem::Truncated,
                at,
                format!(
                    "the file ends at byte {} inside the sequence that starts at byte {start} (truncated)",
                    self.src.len
                ),
            ));
        }
        let tag = Tag(self.u16([b[0], b[1]]), self.u16([b[2], b[3]]));
        let len = self.u32([b[4], b[5], b[6], b[7]]);
        match tag {
            ITEM => {
                self.open_item(at, len, top)?;
                *in_seq = false;
            }
            SEQUENCE_DELIMITER => {
                self.pop();
                *in_seq = false;
            }
            ITEM_DELIMITER => {
                return Err(self.err(
                    Problem::Malformed,
                    at,
                    format!(
                        "item delimiter at byte {at} where an item or the end of the sequence that starts at byte {start} is expected: corrupt"
                    ),
                ));
            }
            other => {
                return Err(self.err(
                    Problem::Malformed,
                    at,
                    format!(
                        "{} at byte {at} inside the sequence that starts at byte {start}, where an item (FFFE,E000) or a sequence delimiter (FFFE,E0DD) is expected: corrupt",
                        tag_str(other)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Opens the item whose header, at `at`, declares `len`, in the sequence `top`: a data
    /// set, or a fragment of encapsulated pixel data.
    fn open_item(&mut self, at: u64, len: u32, top: Option<Frame>) -> Result<(), PrecheckError> {
        let pixel = top.is_some_and(|t| t.pixel);
        if pixel {
            self.count(at)?;
        } else {
            self.count_item(at)?;
        }
        let end = match (len, pixel) {
            (UNDEFINED, false) => None,
            (UNDEFINED, true) => {
                return Err(self.err(
                    Problem::Malformed,
                    at,
                    format!("pixel data fragment at byte {at} has an undefined length: corrupt"),
                ));
            }
            // Only a fragment's length is allocated; an item's, like a sequence's, is
            // checked when reached.
            (_, true) => Some(self.fragment_end(at, u64::from(len), top)?),
            (_, false) => Some(self.src.pos + u64::from(len)),
        };
        if let Some(t) = self.stack.last_mut() {
            t.seen_item = true;
        }
        self.push(Frame {
            seq: false,
            pixel,
            start: at,
            end,
            seen_item: false,
        })?;
        if !pixel {
            self.visit.item();
        }
        Ok(())
    }

    /// Where the pixel data fragment at `at`, `l` bytes long, ends, after checking that
    /// it fits in the file and the value limit (and, for the basic offset table, the first
    /// fragment of the sequence `top`, that it holds whole 32-bit offsets).
    fn fragment_end(&self, at: u64, l: u64, top: Option<Frame>) -> Result<u64, PrecheckError> {
        if l > self.src.remaining() {
            return Err(PrecheckError {
                problem: Problem::Truncated,
                offset: at,
                declared_len: Some(l),
                message: format!(
                    "pixel data fragment at byte {at} declares a length of {l} bytes, but only {} bytes remain in the file ({} bytes): truncated or corrupt",
                    self.src.remaining(),
                    self.src.len
                ),
            });
        }
        if !top.is_some_and(|t| t.seen_item) && !l.is_multiple_of(4) {
            // dicom-rs reads the offset table as whole 32-bit offsets and then fails on
            // the leftover bytes.
            return Err(self.err(
                Problem::Malformed,
                at,
                format!("the basic offset table at byte {at} has {l} bytes, not a multiple of 4: corrupt"),
            ));
        }
        if l > self.limits.max_value_len {
            return Err(PrecheckError {
                problem: Problem::ValueTooLong,
                offset: at,
                declared_len: Some(l),
                message: format!(
                    "pixel data fragment at byte {at} has {l} bytes, more than the {} bytes the scan loads for one value",
                    self.limits.max_value_len
                ),
            });
        }
        Ok(self.src.pos + l)
    }
}

/// A transfer syntax UID held without allocating.
struct TsUid {
    bytes: [u8; 64],
    len: usize,
}

impl TsUid {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first read takes what it is asked, even when the thread's buffer has grown
    /// bigger on an earlier file (it read into the whole buffer, copying all of a big
    /// image, pixel data included, or all of a file of another shard).
    #[test]
    fn the_first_read_takes_what_it_asks_whatever_the_buffer() {
        let big = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/interop/cr/RG1_UNCR.dcm");
        let len = std::fs::metadata(&big).unwrap().len();
        assert!(len > 4 << 20, "{len}");
        let mut buf = Vec::new();
        let o = Opened::open_first(&big, &mut buf, 2 << 20).unwrap();
        assert_eq!(o.head().len(), 2 << 20);
        drop(o);
        for first in [4096, Prefetched::SHARD_FIRST, Prefetched::FIRST] {
            let o = Opened::open_first(&big, &mut buf, first).unwrap();
            assert_eq!(o.head().len(), first);
            // A later read goes on up to the 64 KiB mark, then 1 MiB at a time.
            let mut p = Prefetched::primed(o);
            p.consume(first);
            let next = p.fill_buf().unwrap().len();
            let expect = if first < Prefetched::FIRST {
                Prefetched::FIRST - first
            } else {
                Prefetched::NEXT
            };
            assert_eq!(next, expect, "after a first read of {first}");
        }
    }

    #[test]
    fn vr_from_bytes_is_dicom_rs_from_binary_on_every_pair() {
        for x in 0..=u16::MAX {
            let b = x.to_be_bytes();
            assert_eq!(vr_from_bytes(b), VR::from_binary(b), "{b:?}");
        }
    }
}
