//! Walks a folder and decides, per file and from its content, what it is: a radiograph
//! (header read, pixel data never loaded), a landmark SR, a landmark JSON/CSV, another
//! DICOM object, not DICOM, or broken. Files are read in parallel (rayon); results are
//! in path order, so the outcome never depends on thread timing.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_object::OpenFileOptions;
use dicom_object::file::ReadPreamble;
use plumbline_geometry::Spacing;
use rayon::prelude::*;

use crate::dataset::Attributes;
use crate::precheck::{Opened, with_buffer};
use crate::qc::{QcIssue, Severity, codes};
use crate::records::{ImageRecord, ItkGeometry, LandmarkDoc, Orientation, SpacingSource};
use crate::sr::{DEFAULT_DEPTH_CAP, is_landmark_sr_class, read_sr};
use crate::{Vocabulary, markups, precheck};

/// SOP classes read as projection radiographs: CR, DX (for presentation and for
/// processing), and secondary capture (single- and multi-frame), the form of many
/// stitched whole-spine composites.
pub const IMAGE_CLASSES: [&str; 7] = [
    uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PRESENTATION,
    uids::DIGITAL_X_RAY_IMAGE_STORAGE_FOR_PROCESSING,
    uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_BYTE_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_GRAYSCALE_WORD_SECONDARY_CAPTURE_IMAGE_STORAGE,
    uids::MULTI_FRAME_TRUE_COLOR_SECONDARY_CAPTURE_IMAGE_STORAGE,
];

/// Native (uncompressed) transfer syntaxes, whose pixel data length is known from the header.
// Explicit VR Big Endian is retired (hence deprecated in `uids`), but files in it are
// still read.
#[allow(deprecated)]
const NATIVE_TS: [&str; 3] = [
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::EXPLICIT_VR_BIG_ENDIAN,
];

/// How much of an uncompressed image file the truncation check reads: enough for any
/// ordinary header (64 KiB), so that the scan stays a header read; a longer header only
/// skips the check.
pub const PIXEL_HEADER_WINDOW: u64 = 64 << 10;

/// Stack size of the scan's threads (see [`scan`]).
pub const SCAN_STACK_BYTES: usize = 512 << 20;

/// How to scan.
#[derive(Clone, Debug)]
pub struct ScanOptions {
    /// Landmark names and synonyms.
    pub vocab: Vocabulary,
    /// Cap on SR content-tree depth.
    pub depth_cap: usize,
    /// The image (and reader) of each Slicer markups file in patient mm, by file name
    /// (`--landmark-map`).
    pub landmark_map: markups::LandmarkMap,
    /// Only shard `k` of `n` of the patients ([`crate::cohort::shard_of`]): a DICOM file
    /// of another shard's patient is read up to its PatientID only and comes back as
    /// [`FileOutcome::Foreign`]. A file without PatientID is read in full (grouping
    /// decides where it belongs).
    pub shard: Option<(usize, usize)>,
}

impl ScanOptions {
    /// How many bytes the first read of a file takes ([`precheck::Opened::open_first`]):
    /// 8 KiB for a shard, which stops at the PatientID of most files, else 64 KiB (an
    /// image's whole header).
    pub fn first_read(&self) -> usize {
        if self.shard.is_some() {
            precheck::Prefetched::SHARD_FIRST
        } else {
            precheck::Prefetched::FIRST
        }
    }
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            vocab: Vocabulary::default(),
            depth_cap: DEFAULT_DEPTH_CAP,
            landmark_map: markups::LandmarkMap::new(),
            shard: None,
        }
    }
}

impl ScanOptions {
    /// Every setting that changes what [`scan_file`] reads from a file, as (name, value in
    /// a canonical text form). A work record of scanned files may be reused only by a scan
    /// whose fingerprint is the same: a new synonym names points that were unnamed, a new
    /// depth cap reads deeper. A field added to `ScanOptions` must be added here (the
    /// destructuring below does not compile until it is).
    ///
    /// ```
    /// use plumbline_ingest::ScanOptions;
    /// let a = ScanOptions::default();
    /// let mut b = ScanOptions::default();
    /// b.vocab.add_text("Sacral plateau, posterior", "S1_sup_post".parse().unwrap());
    /// let changed: Vec<&str> = a.fingerprint().iter().zip(b.fingerprint().iter())
    ///     .filter(|(x, y)| x != y).map(|(x, _)| x.0).collect();
    /// assert_eq!(changed, ["pipeline vocabulary"]);
    /// ```
    pub fn fingerprint(&self) -> Vec<(&'static str, String)> {
        let ScanOptions {
            vocab,
            depth_cap,
            landmark_map,
            // Not part of what a file gives: a file of another shard is never recorded.
            shard: _,
        } = self;
        vec![
            ("pipeline vocabulary", vocab.canonical_text()),
            (
                "landmark map",
                landmark_map
                    .iter()
                    .map(|(f, (u, o))| format!("{f}\t{u}\t{o}\n"))
                    .collect(),
            ),
            ("SR depth cap", depth_cap.to_string()),
            (
                "structure limits",
                format!("{:?}", precheck::Limits::for_depth_cap(*depth_cap)),
            ),
        ]
    }
}

/// What one file turned out to be.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
// One per file, a few hundred bytes each (8781 files: ~4 MB); boxing the image record
// would cost an allocation per image for no measurable gain.
#[allow(clippy::large_enum_variant)]
pub enum FileOutcome {
    /// A radiograph's header.
    Image(ImageRecord),
    /// A landmark SR, Slicer Markups JSON or landmark CSV.
    Landmarks(LandmarkDoc),
    /// Another DICOM object (listed in QC, ignored).
    OtherDicom,
    /// Not DICOM (listed in QC, ignored).
    NotDicom,
    /// Could not be read (listed in QC as an error).
    Broken,
    /// A DICOM file of a patient of another shard, read only up to its PatientID
    /// ([`scan_file_keeping`]): what its SOP class says it is. Never recorded in the work
    /// record.
    Foreign(Foreign),
}

/// What a file of another shard's patient is, by its SOP class (for the counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Foreign {
    /// A radiograph.
    Image,
    /// A landmark SR.
    LandmarkSr,
    /// Another DICOM object.
    Other,
}

/// Counts of what a scan found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanCounts {
    /// Files seen.
    pub files: usize,
    /// Radiographs.
    pub images: usize,
    /// Landmark SRs.
    pub srs: usize,
    /// Landmark JSON/CSV files.
    pub landmark_files: usize,
    /// Other DICOM objects.
    pub other_dicom: usize,
    /// Non-DICOM files.
    pub not_dicom: usize,
    /// Unreadable files.
    pub broken: usize,
}

/// Everything a scan found, in path order.
#[derive(Clone, Debug, Default)]
pub struct ScanResult {
    /// Radiograph headers.
    pub images: Vec<ImageRecord>,
    /// Landmark documents.
    pub docs: Vec<LandmarkDoc>,
    /// Problems (the documents' own problems stay in their `issues`).
    pub issues: Vec<QcIssue>,
    /// Counts.
    pub counts: ScanCounts,
}

/// The input folder itself could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the input folder {}: {source}; check the --input path and its permissions", path.display())]
pub struct ScanError {
    /// The folder.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Lists every file below `root` (any depth, symbolic links to files followed, links to
/// folders not, so a loop cannot trap the walk), sorted. Unreadable sub-folders become
/// QC issues.
pub fn list_files(root: &Path) -> Result<(Vec<PathBuf>, Vec<QcIssue>), ScanError> {
    let mut issues = Vec::new();
    let meta = std::fs::metadata(root).map_err(|source| ScanError {
        path: root.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok((vec![root.to_path_buf()], issues));
    }
    let entries = std::fs::read_dir(root).map_err(|source| ScanError {
        path: root.to_path_buf(),
        source,
    })?;
    let (mut files, dirs) = sort_entries(entries);
    // The folders below the top one are listed in parallel (a patient folder each, in a
    // cohort): reading directories was a twentieth of a run's time, on one thread.
    let (below, mut found) = list_all_below(&dirs, 1);
    files.extend(below);
    issues.append(&mut found);
    files.par_sort_unstable();
    Ok((files, issues))
}

/// Every file below each of `dirs` (at `depth` below the top folder), listed in
/// parallel ([`list_below`]), in the order of `dirs`.
fn list_all_below(dirs: &[PathBuf], depth: usize) -> (Vec<PathBuf>, Vec<QcIssue>) {
    let below: Vec<(Vec<PathBuf>, Vec<QcIssue>)> =
        dirs.par_iter().map(|d| list_below(d, depth)).collect();
    let (mut files, mut issues) = (Vec::new(), Vec::new());
    for (f, mut i) in below {
        files.extend(f);
        issues.append(&mut i);
    }
    (files, issues)
}

/// The entries of one folder: its files (and symbolic links to files), and its
/// sub-folders (symbolic links to folders are not followed).
fn sort_entries(entries: std::fs::ReadDir) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => dirs.push(path),
            Ok(t) if t.is_file() => files.push(path),
            Ok(t) if t.is_symlink() && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) => {
                files.push(path)
            }
            _ => {}
        }
    }
    (files, dirs)
}

/// Every file below `dir` (at `depth` below the top folder); a folder that cannot be
/// read is a QC issue. The first levels are listed in parallel, deeper ones on this
/// thread with a stack of folders (no recursion, however deep the tree).
fn list_below(dir: &Path, depth: usize) -> (Vec<PathBuf>, Vec<QcIssue>) {
    let unreadable = |dir: &Path, e: std::io::Error| {
        QcIssue::file(
            dir,
            Severity::Error,
            codes::BROKEN_FILE,
            format!("cannot read folder: {e}; files below it were not scanned"),
        )
    };
    if depth < 3 {
        let (mut files, dirs) = match std::fs::read_dir(dir) {
            Ok(entries) => sort_entries(entries),
            Err(e) => return (Vec::new(), vec![unreadable(dir, e)]),
        };
        let (below, issues) = list_all_below(&dirs, depth + 1);
        files.extend(below);
        return (files, issues);
    }
    let (mut files, mut issues) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                let (f, dirs) = sort_entries(entries);
                files.extend(f);
                stack.extend(dirs);
            }
            Err(e) => issues.push(unreadable(&dir, e)),
        }
    }
    (files, issues)
}

/// Scans every file below `root` in parallel. `on_file` is called once per file read,
/// with what it was (for progress bars), from any thread.
pub fn scan(
    root: &Path,
    opts: &ScanOptions,
    on_file: &(dyn Fn(&FileOutcome) + Sync),
) -> Result<ScanResult, ScanError> {
    scan_with(&crate::source::Folder::new(root), opts, &scan_file, on_file)
}

/// Reads one file: [`scan_file`], or a caching wrapper around it.
pub type FileReader<'a> = dyn Fn(&Path, &ScanOptions) -> (FileOutcome, Vec<QcIssue>) + Sync + 'a;

/// [`scan`] with the per-file reader given: the batch job passes one that reuses what
/// its work record already knows of a file and records what it reads.
pub fn scan_with(
    source: &dyn crate::source::Source,
    opts: &ScanOptions,
    read: &FileReader<'_>,
    on_file: &(dyn Fn(&FileOutcome) + Sync),
) -> Result<ScanResult, ScanError> {
    let (files, mut issues) = source.list()?;
    // dicom-rs parses nested sequences recursively, about 10 KiB of stack per sequence
    // and item level in a debug build: a 200-deep SR overflows rayon's default stack and
    // would abort the whole batch. The structure check (`precheck`) refuses files nested
    // deeper than 4 * depth_cap + 16 levels (at most `precheck::MAX_NESTING`, 20,000,
    // about 100 MiB of stack in a debug build), so dicom-rs never recurses further; the
    // scan runs on its own pool (same thread count as the caller's) with stacks large
    // enough for that; the memory is only reserved, not touched.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(rayon::current_num_threads())
        .stack_size(SCAN_STACK_BYTES)
        .build();
    // The work is split by bytes, not by file count: files are handed out biggest first,
    // one at a time (rayon steals them as threads free up), so the threads finish
    // together; the results are put back in path order.
    let work = || -> Vec<(FileOutcome, Vec<QcIssue>)> {
        let sizes: Vec<u64> = files.par_iter().map(|p| source.size_hint(p)).collect();
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
        let mut done: Vec<(usize, (FileOutcome, Vec<QcIssue>))> = order
            .par_iter()
            .with_max_len(1)
            .map(|&i| {
                let p = &files[i];
                let r = match source.open(p) {
                    Ok(local) => read(&local, opts),
                    Err(e) => broken(p, codes::BROKEN_FILE, format!("cannot open: {e}")),
                };
                on_file(&r.0);
                (i, r)
            })
            .collect();
        done.sort_unstable_by_key(|d| d.0);
        done.into_iter().map(|d| d.1).collect()
    };
    let outcomes = match pool {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    };
    let mut result = ScanResult::default();
    result.counts.files = files.len();
    for (outcome, mut file_issues) in outcomes {
        issues.append(&mut file_issues);
        match outcome {
            FileOutcome::Image(r) => {
                result.counts.images += 1;
                result.images.push(r);
            }
            FileOutcome::Landmarks(d) => {
                if d.sop_instance_uid.is_empty() {
                    result.counts.landmark_files += 1;
                } else {
                    result.counts.srs += 1;
                }
                result.docs.push(d);
            }
            FileOutcome::OtherDicom => result.counts.other_dicom += 1,
            FileOutcome::NotDicom => result.counts.not_dicom += 1,
            FileOutcome::Broken => result.counts.broken += 1,
            FileOutcome::Foreign(Foreign::Image) => result.counts.images += 1,
            FileOutcome::Foreign(Foreign::LandmarkSr) => result.counts.srs += 1,
            FileOutcome::Foreign(Foreign::Other) => result.counts.other_dicom += 1,
        }
    }
    result.issues = issues;
    Ok(result)
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(suffix))
}

/// What the first bytes of a file say.
enum Magic {
    /// "DICM" at offset 128.
    Preamble,
    /// "DICM" at offset 0 (file meta without the 128-byte preamble).
    NoPreamble,
    /// Anything else.
    Other,
}

fn magic(path: &Path) -> std::io::Result<Magic> {
    let mut head = Vec::with_capacity(132);
    File::open(path)?.take(132).read_to_end(&mut head)?;
    Ok(magic_of(&head))
}

/// What the first bytes of a file, `head`, say.
fn magic_of(head: &[u8]) -> Magic {
    if head.len() >= 132 && &head[128..132] == b"DICM" {
        Magic::Preamble
    } else if head.starts_with(b"DICM") {
        Magic::NoPreamble
    } else {
        Magic::Other
    }
}

/// A file that cannot be used: `Broken` with one error.
fn broken(path: &Path, code: &'static str, message: String) -> (FileOutcome, Vec<QcIssue>) {
    (
        FileOutcome::Broken,
        vec![QcIssue::file(path, Severity::Error, code, message)],
    )
}

/// Reads one file; returns what it is and the problems found. With
/// [`ScanOptions::shard`], a DICOM file of another shard's patient is read only up to its
/// PatientID ([`FileOutcome::Foreign`]).
pub fn scan_file(path: &Path, opts: &ScanOptions) -> (FileOutcome, Vec<QcIssue>) {
    with_buffer(
        |buf| match Opened::open_first(path, buf, opts.first_read()) {
            Ok(opened) => scan_opened(path, opts, opened),
            Err(e) => scan_unopened(path, opts, &e),
        },
    )
}

/// [`scan_file`] on a file [`Opened::open`] opened (the work record opens a file once
/// for its key and for the scan).
pub fn scan_opened(
    path: &Path,
    opts: &ScanOptions,
    opened: Opened<'_>,
) -> (FileOutcome, Vec<QcIssue>) {
    match opts.shard {
        None => scan_opened_keeping(path, opts, None, opened),
        Some((k, n)) => {
            let ours = |pid: &str| pid.is_empty() || crate::cohort::shard_of(pid, n) == k;
            scan_opened_keeping(path, opts, Some(&ours), opened)
        }
    }
}

/// [`scan_file`] of a file that could not be opened or read (`e`): broken, unless it is
/// a Slicer markups file, whose reader says what is wrong with it.
pub fn scan_unopened(
    path: &Path,
    opts: &ScanOptions,
    e: &std::io::Error,
) -> (FileOutcome, Vec<QcIssue>) {
    if has_suffix(path, ".mrk.json") {
        let d = markups::read_slicer_markups_with(path, &opts.vocab, &opts.landmark_map);
        return (FileOutcome::Landmarks(d), Vec::new());
    }
    broken(
        path,
        codes::BROKEN_FILE,
        format!("cannot read the file: {e}"),
    )
}

/// [`scan_file`], reading a DICOM file once with the stream reader
/// ([`crate::dataset::read_file`]); with `keep`, a DICOM file whose PatientID `keep`
/// refuses is read only up to PatientID and comes back as [`FileOutcome::Foreign`].
pub fn scan_file_keeping(
    path: &Path,
    opts: &ScanOptions,
    keep: Option<&dyn Fn(&str) -> bool>,
) -> (FileOutcome, Vec<QcIssue>) {
    with_buffer(|buf| match Opened::open(path, buf) {
        Ok(opened) => scan_opened_keeping(path, opts, keep, opened),
        Err(e) => scan_unopened(path, opts, &e),
    })
}

fn scan_opened_keeping(
    path: &Path,
    opts: &ScanOptions,
    keep: Option<&dyn Fn(&str) -> bool>,
    opened: Opened<'_>,
) -> (FileOutcome, Vec<QcIssue>) {
    if let Err(r) = dicom_magic(path, opts, Some(opened.head())) {
        return *r;
    }
    let limits = precheck::Limits::for_depth_cap(opts.depth_cap);
    let h = match crate::dataset::read_opened(opened, &limits, keep) {
        Ok(h) => h,
        Err(r) => {
            let (outcome, issues) = refused(path, &r.error);
            let issues = issues
                .into_iter()
                .map(|i| i.with_ids("", &r.patient_id))
                .collect();
            return (outcome, issues);
        }
    };
    if let Some(why) = unreadable_syntax(&h.transfer_syntax) {
        return broken(
            path,
            codes::BROKEN_FILE,
            format!("not readable as DICOM (truncated or corrupt?): {why}"),
        );
    }
    let r = classify_read(path, opts, &h);
    // Its buffers serve the thread's next file.
    h.store.recycle();
    r
}

/// What a file the stream reader read (`h`) is.
fn classify_read(
    path: &Path,
    opts: &ScanOptions,
    h: &crate::dataset::Header,
) -> (FileOutcome, Vec<QcIssue>) {
    let tree = h.store.tree();
    let root = tree.root();
    let file = Parsed {
        root: &root,
        media_sop_class: &h.media_sop_class,
        transfer_syntax: &h.transfer_syntax,
        pixel_data: PixelData::Known {
            header: h.pixel_data,
            file_len: h.file_len,
        },
    };
    if h.foreign {
        let class = file.sop_class();
        let kind = if is_landmark_sr_class(&class) {
            Foreign::LandmarkSr
        } else if IMAGE_CLASSES.contains(&class.as_str()) {
            Foreign::Image
        } else {
            Foreign::Other
        };
        return (FileOutcome::Foreign(kind), Vec::new());
    }
    classify(path, &file, opts)
}

/// [`scan_file`] the way it was done before the stream reader, kept as the reference the
/// tests compare it with: the structure check ([`precheck::precheck_file`]), then
/// dicom-rs's full in-memory object (`OpenFileOptions::read_until(PIXEL_DATA)`), then the
/// same classification.
pub fn scan_file_reference(path: &Path, opts: &ScanOptions) -> (FileOutcome, Vec<QcIssue>) {
    let preamble = match dicom_magic(path, opts, None) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if let Err(e) = precheck::precheck_file(path, &precheck::Limits::for_depth_cap(opts.depth_cap))
    {
        return refused(path, &e);
    }
    let obj = match OpenFileOptions::new()
        .read_preamble(preamble)
        .read_until(tags::PIXEL_DATA)
        .open_file(path)
    {
        Ok(o) => o,
        Err(e) => {
            return broken(
                path,
                codes::BROKEN_FILE,
                format!("not readable as DICOM (truncated or corrupt?): {e}"),
            );
        }
    };
    let meta = obj.meta();
    let file = Parsed {
        root: &*obj,
        media_sop_class: meta.media_storage_sop_class_uid().trim_end_matches('\0'),
        transfer_syntax: meta.transfer_syntax().trim_end_matches('\0'),
        pixel_data: PixelData::Search(path),
    };
    classify(path, &file, opts)
}

/// Why the stream reader read no data set for this transfer syntax (as dicom-rs refuses
/// it before reading one), or `None` when it read one.
fn unreadable_syntax(ts: &str) -> Option<String> {
    use dicom_encoding::transfer_syntax::{Codec, TransferSyntaxIndex};
    if ts.is_empty() {
        return Some("the file meta group has no usable transfer syntax (0002,0010)".into());
    }
    match dicom_transfer_syntax_registry::TransferSyntaxRegistry.get(ts) {
        None => Some(format!("transfer syntax {ts} is unknown")),
        Some(s) if matches!(s.codec(), Codec::Dataset(_)) => {
            Some(format!("transfer syntax {ts} (deflated) is not supported"))
        }
        Some(_) => None,
    }
}

/// The QC outcome of a file the structure check refused.
fn refused(path: &Path, e: &precheck::PrecheckError) -> (FileOutcome, Vec<QcIssue>) {
    let (code, what) = if e.problem.is_limit() {
        (
            codes::HOSTILE_STRUCTURE,
            "exceeds a limit of the structure check run before parsing",
        )
    } else {
        (codes::BROKEN_FILE, "not readable as DICOM")
    };
    broken(
        path,
        code,
        format!("{what}: {e}; the file was not parsed and is not used"),
    )
}

/// The front of [`scan_file`]: a Slicer markups file, a landmark CSV or a non-DICOM file
/// is read or reported here (`Err` with its outcome); a DICOM file gives its preamble
/// (`Ok`).
fn dicom_magic(
    path: &Path,
    opts: &ScanOptions,
    head: Option<&[u8]>,
) -> Result<ReadPreamble, Box<(FileOutcome, Vec<QcIssue>)>> {
    if has_suffix(path, ".mrk.json") {
        let d = markups::read_slicer_markups_with(path, &opts.vocab, &opts.landmark_map);
        return Err(Box::new((FileOutcome::Landmarks(d), Vec::new())));
    }
    match head.map_or_else(|| magic(path), |h| Ok(magic_of(h))) {
        Ok(Magic::Preamble) => Ok(ReadPreamble::Always),
        Ok(Magic::NoPreamble) => Ok(ReadPreamble::Never),
        Ok(Magic::Other) => {
            if has_suffix(path, ".csv") && looks_like_landmark_csv(path) {
                let d = markups::read_landmark_csv(path, &opts.vocab);
                return Err(Box::new((FileOutcome::Landmarks(d), Vec::new())));
            }
            let dcm_named = has_suffix(path, ".dcm") || has_suffix(path, ".dicom");
            let (sev, msg) = if dcm_named {
                (
                    Severity::Warning,
                    "named like a DICOM file but has no DICOM file header (no \"DICM\" at byte 128 or 0); ignored".to_string(),
                )
            } else {
                (
                    Severity::Info,
                    "not a DICOM file (no \"DICM\" at byte 128 or 0) and not a landmark file; ignored".to_string(),
                )
            };
            Err(Box::new((
                FileOutcome::NotDicom,
                vec![QcIssue::file(path, sev, codes::NOT_DICOM, msg)],
            )))
        }
        Err(e) => Err(Box::new(broken(
            path,
            codes::BROKEN_FILE,
            format!("cannot read the file: {e}"),
        ))),
    }
}

/// Where an image's pixel data ends, as a reader learnt it.
enum PixelData<'p> {
    /// The stream reader saw the top-level Pixel Data header (its declared length and
    /// where its value starts), or not (`None`); the file's length.
    Known {
        header: Option<(u32, u64)>,
        file_len: u64,
    },
    /// The reference path: look for the header in the file's first bytes.
    Search(&'p Path),
}

/// What classification reads of a DICOM file, from either reader.
struct Parsed<'a, A> {
    root: &'a A,
    media_sop_class: &'a str,
    transfer_syntax: &'a str,
    pixel_data: PixelData<'a>,
}

impl<A: Attributes> Parsed<'_, A> {
    /// SOP Class UID, else the file meta group's Media Storage SOP Class UID.
    fn sop_class(&self) -> String {
        text(self.root, tags::SOP_CLASS_UID).unwrap_or_else(|| self.media_sop_class.to_string())
    }
}

fn looks_like_landmark_csv(path: &Path) -> bool {
    let mut head = Vec::new();
    if File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .is_err()
    {
        return false;
    }
    let text = String::from_utf8_lossy(&head);
    let first = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_start_matches('\u{feff}');
    let cols: Vec<String> = first
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    cols.iter()
        .any(|c| c == "sop_instance_uid" || c == "image_uid")
}

/// Where the top-level Pixel Data of an uncompressed little-endian file ends, and the
/// file's length: looks in the first [`PIXEL_HEADER_WINDOW`] bytes for the element header `(7FE0,0010)` whose
/// declared length is the `need` bytes the header promises (so pixel values or an icon
/// image that happen to contain the tag bytes are not mistaken for it). `None` when not
/// found (the check is then skipped).
fn native_pixel_data_end(path: &Path, need: u64, implicit: bool) -> Option<(u64, u64)> {
    let len = std::fs::metadata(path).ok()?.len();
    let mut head = Vec::new();
    File::open(path)
        .ok()?
        .take(PIXEL_HEADER_WINDOW)
        .read_to_end(&mut head)
        .ok()?;
    let tag = [0xE0u8, 0x7F, 0x10, 0x00];
    let mut i = 0;
    while i + 12 <= head.len() {
        if head[i..i + 4] == tag {
            let (hdr, vlen) = if implicit {
                (
                    8u64,
                    u32::from_le_bytes(head[i + 4..i + 8].try_into().ok()?),
                )
            } else if matches!(&head[i + 4..i + 6], b"OW" | b"OB") {
                (
                    12u64,
                    u32::from_le_bytes(head[i + 8..i + 12].try_into().ok()?),
                )
            } else {
                i += 1;
                continue;
            };
            let vlen = u64::from(vlen);
            if vlen == need || vlen == need + 1 {
                return Some((i as u64 + hdr + vlen, len));
            }
        }
        i += 1;
    }
    None
}

/// A string attribute, trimmed of DICOM padding; `None` when absent or empty.
pub fn text<A: Attributes>(obj: &A, tag: Tag) -> Option<String> {
    crate::dataset::text_of(obj, tag)
}

fn uint<A: Attributes>(obj: &A, tag: Tag) -> Option<u32> {
    obj.value(tag)?.to_int::<u32>().ok()
}

/// Parses a two-valued DS attribute (row\column). `Ok(None)` when absent or empty;
/// `Err(why)` when present but not two positive finite numbers.
fn ds_pair<A: Attributes>(obj: &A, tag: Tag) -> Result<Option<(f64, f64)>, String> {
    let Some(raw) = text(obj, tag) else {
        return Ok(None);
    };
    let vals: Vec<Option<f64>> = raw
        .split('\\')
        .map(|s| s.trim().parse::<f64>().ok())
        .collect();
    match vals.as_slice() {
        [Some(r), Some(c)] if r.is_finite() && c.is_finite() && *r > 0.0 && *c > 0.0 => {
            Ok(Some((*r, *c)))
        }
        _ => Err(format!("`{raw}`")),
    }
}

fn ds_single<A: Attributes>(obj: &A, tag: Tag) -> Result<Option<f64>, String> {
    let Some(raw) = text(obj, tag) else {
        return Ok(None);
    };
    match raw.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(Some(v)),
        _ => Err(format!("`{raw}`")),
    }
}

/// Whether GDCM takes this SOP class's spacing from ImagerPixelSpacing: CR, the DX family
/// (with mammography and intra-oral), XA and RF (`GetSpacingTagFromMediaStorage`).
fn gdcm_imager_class(sop_class: &str) -> bool {
    // CR itself, and every class below it (`...1.1.1`, DX; `...1.1.2`, mammography; ...).
    let cr_family = sop_class
        .strip_prefix(uids::COMPUTED_RADIOGRAPHY_IMAGE_STORAGE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'));
    cr_family
        || sop_class == uids::X_RAY_ANGIOGRAPHIC_IMAGE_STORAGE
        || sop_class == uids::X_RAY_RADIOFLUOROSCOPIC_IMAGE_STORAGE
}

/// [`ItkGeometry`] of an image, as ITK's GDCMImageIO reads it (see its documentation).
pub fn itk_geometry<A: Attributes>(obj: &A, sop_class: &str) -> ItkGeometry {
    let numbers = |tag: Tag| -> Vec<f64> {
        text(obj, tag)
            .map(|s| {
                s.split('\\')
                    .map(|v| v.trim().parse::<f64>().unwrap_or(f64::NAN))
                    .collect()
            })
            .unwrap_or_default()
    };
    let tag = if gdcm_imager_class(sop_class) {
        tags::IMAGER_PIXEL_SPACING
    } else {
        tags::PIXEL_SPACING
    };
    let one = |v: f64| if v == 0.0 || !v.is_finite() { 1.0 } else { v };
    let spacing = match numbers(tag).as_slice() {
        [row, col, ..] => [one(*col), one(*row)],
        [both] => [one(*both), one(*both)],
        [] => [1.0, 1.0],
    };
    let origin = match numbers(tags::IMAGE_POSITION_PATIENT).as_slice() {
        [x, y, z, ..] if x.is_finite() && y.is_finite() && z.is_finite() => [*x, *y, *z],
        _ => [0.0; 3],
    };
    let unit = |v: [f64; 3]| {
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        (n.is_finite() && n > 0.0).then(|| [v[0] / n, v[1] / n, v[2] / n])
    };
    let axes = match numbers(tags::IMAGE_ORIENTATION_PATIENT).as_slice() {
        [a, b, c, d, e, f, ..] => unit([*a, *b, *c])
            .zip(unit([*d, *e, *f]))
            .map(|(x, y)| [x, y]),
        _ => None,
    }
    .unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
    ItkGeometry {
        spacing,
        origin,
        axes,
    }
}

/// The spacing of spec section 4, with the problems met on the way.
pub fn spacing<A: Attributes>(obj: &A) -> (Option<(Spacing, SpacingSource)>, Vec<String>) {
    let mut notes = Vec::new();
    let ps = ds_pair(obj, tags::PIXEL_SPACING);
    let ips = ds_pair(obj, tags::IMAGER_PIXEL_SPACING);
    let mag = ds_single(obj, tags::ESTIMATED_RADIOGRAPHIC_MAGNIFICATION_FACTOR);
    match ps {
        Ok(Some((row, col))) => {
            return (
                Some((Spacing { row, col }, SpacingSource::PixelSpacing)),
                notes,
            );
        }
        Ok(None) => {}
        Err(v) => notes.push(format!(
            "PixelSpacing (0028,0030) is {v}, not two positive numbers"
        )),
    }
    match ips {
        Ok(Some((row, col))) => match mag {
            Ok(Some(m)) => (
                Some((
                    Spacing {
                        row: row / m,
                        col: col / m,
                    },
                    SpacingSource::ImagerMagnified,
                )),
                notes,
            ),
            other => {
                if let Err(v) = other {
                    notes.push(format!(
                        "EstimatedRadiographicMagnificationFactor (0018,1114) is {v}, not a positive number; ImagerPixelSpacing used uncorrected"
                    ));
                }
                (Some((Spacing { row, col }, SpacingSource::Imager)), notes)
            }
        },
        Ok(None) => (None, notes),
        Err(v) => {
            notes.push(format!(
                "ImagerPixelSpacing (0018,1164) is {v}, not two positive numbers"
            ));
            (None, notes)
        }
    }
}

fn classify<A: Attributes>(
    path: &Path,
    file: &Parsed<'_, A>,
    opts: &ScanOptions,
) -> (FileOutcome, Vec<QcIssue>) {
    let obj = file.root;
    let sop_class = file.sop_class();
    let patient_id = text(obj, tags::PATIENT_ID).unwrap_or_default();
    let Some(sop_uid) = text(obj, tags::SOP_INSTANCE_UID) else {
        let known = is_landmark_sr_class(&sop_class) || IMAGE_CLASSES.contains(&sop_class.as_str());
        let issue = QcIssue::file(
            path,
            if known { Severity::Error } else { Severity::Info },
            codes::MISSING_ATTRIBUTE,
            format!(
                "no SOP Instance UID (0008,0018) (SOP class {sop_class}); landmarks cannot be joined to it, so the file is not used"
            ),
        )
        .with_ids("", &patient_id);
        return (
            if known {
                FileOutcome::Broken
            } else {
                FileOutcome::OtherDicom
            },
            vec![issue],
        );
    };
    if is_landmark_sr_class(&sop_class) {
        let doc = read_sr(obj, path, &opts.vocab, opts.depth_cap);
        return (FileOutcome::Landmarks(doc), Vec::new());
    }
    if !IMAGE_CLASSES.contains(&sop_class.as_str()) {
        let modality = text(obj, tags::MODALITY).unwrap_or_default();
        return (
            FileOutcome::OtherDicom,
            vec![
                QcIssue::file(
                    path,
                    Severity::Info,
                    codes::OTHER_DICOM,
                    format!(
                        "DICOM object of SOP class {sop_class} (modality {modality}) is neither a projection radiograph nor a landmark SR; ignored"
                    ),
                )
                .with_ids(&sop_uid, &patient_id),
            ],
        );
    }
    image_record(path, file, sop_class, sop_uid, patient_id)
}

fn image_record<A: Attributes>(
    path: &Path,
    file: &Parsed<'_, A>,
    sop_class: String,
    sop_uid: String,
    patient_id: String,
) -> (FileOutcome, Vec<QcIssue>) {
    let obj = file.root;
    let issue = |sev, code, msg: String| {
        QcIssue::file(path, sev, code, msg).with_ids(&sop_uid, &patient_id)
    };
    let (Some(rows), Some(cols)) = (uint(obj, tags::ROWS), uint(obj, tags::COLUMNS)) else {
        return (
            FileOutcome::Broken,
            vec![issue(
                Severity::Error,
                codes::MISSING_ATTRIBUTE,
                "image without Rows/Columns; not used".into(),
            )],
        );
    };
    let frames = text(obj, tags::NUMBER_OF_FRAMES)
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let ts = file.transfer_syntax.to_string();
    if let Some(msg) = truncation(file, (rows, cols, frames)) {
        return (
            FileOutcome::Broken,
            vec![issue(Severity::Error, codes::BROKEN_FILE, msg)],
        );
    }
    let (spacing, notes) = spacing(obj);
    let mut issues: Vec<QcIssue> = spacing_problems(spacing.is_some(), &notes)
        .into_iter()
        .map(|(sev, code, msg)| issue(sev, code, msg))
        .collect();
    if frames > 1 {
        issues.push(issue(
            Severity::Warning,
            codes::MULTI_FRAME,
            format!("{frames} frames; landmarks are placed on the frame their SR references (frame 1 when none)"),
        ));
    }
    let study_date = text(obj, tags::STUDY_DATE).and_then(|d| crate::clinical::dicom_date(&d));
    let itk = itk_geometry(obj, &sop_class);
    let record = ImageRecord {
        path: path.to_path_buf(),
        sop_class_uid: sop_class,
        sop_instance_uid: sop_uid.clone(),
        transfer_syntax: ts,
        patient_id: patient_id.clone(),
        study_instance_uid: text(obj, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        study_date,
        timepoint_id: text(obj, tags::CLINICAL_TRIAL_TIME_POINT_ID),
        modality: text(obj, tags::MODALITY).unwrap_or_default(),
        view_position: text(obj, tags::VIEW_POSITION),
        rows,
        cols,
        spacing,
        orientation: patient_orientation(obj),
        number_of_frames: frames,
        itk,
    };
    if record.patient_id.is_empty() {
        issues.push(issue(
            Severity::Error,
            codes::MISSING_ATTRIBUTE,
            "no PatientID (0010,0020): the image cannot be matched to the clinical table".into(),
        ));
    }
    (FileOutcome::Image(record), issues)
}

/// PatientOrientation (column direction, row direction); `None` unless two values.
fn patient_orientation<A: Attributes>(obj: &A) -> Option<Orientation> {
    let s = text(obj, tags::PATIENT_ORIENTATION)?;
    let mut it = s.split('\\').map(str::trim);
    Some(Orientation::new(it.next()?, it.next()?))
}

/// Why an image with uncompressed pixel data is truncated, or `None` when it is not (or
/// cannot be told). `size` is (rows, columns, frames).
///
/// Truncation inside uncompressed pixel data is invisible to a header read: find the
/// Pixel Data element's header near the start of the file and compare its end with the
/// file's length (the pixel values themselves are not read).
fn truncation<A: Attributes>(
    file: &Parsed<'_, A>,
    (rows, cols, frames): (u32, u32, u32),
) -> Option<String> {
    let (obj, ts) = (file.root, file.transfer_syntax);
    if !NATIVE_TS.contains(&ts) {
        return None;
    }
    let bits = u64::from(uint(obj, tags::BITS_ALLOCATED).unwrap_or(16));
    let spp = u64::from(uint(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1));
    let need = u64::from(rows) * u64::from(cols) * u64::from(frames) * spp * bits.div_ceil(8);
    let implicit = ts == uids::IMPLICIT_VR_LITTLE_ENDIAN;
    let (end, len) = match file.pixel_data {
        PixelData::Search(path) => native_pixel_data_end(path, need, implicit)?,
        // The header the stream reader stopped at, when it declares the expected length
        // (the rule of the search, so that both readers agree).
        PixelData::Known {
            header: Some((vlen, value_at)),
            file_len,
        } if u64::from(vlen) == need || u64::from(vlen) == need + 1 => {
            (value_at + u64::from(vlen), file_len)
        }
        PixelData::Known { .. } => return None,
    };
    (end > len).then(|| {
        format!(
            "truncated: the pixel data ({rows} x {cols}, {need} bytes) should end at byte {end} but the file has {len} bytes; not used"
        )
    })
}

/// The QC issues (severity, code, message) of an image's spacing: the notes of
/// [`spacing`] as warnings when a spacing was found (`found`), else one error.
fn spacing_problems(found: bool, notes: &[String]) -> Vec<(Severity, &'static str, String)> {
    if found {
        return notes
            .iter()
            .map(|n| {
                (
                    Severity::Warning,
                    codes::BAD_SPACING,
                    format!("{n}; the next source of spec section 4 was used"),
                )
            })
            .collect();
    }
    let why = if notes.is_empty() {
        "no PixelSpacing or ImagerPixelSpacing".to_string()
    } else {
        notes.join("; ")
    };
    vec![(
        Severity::Error,
        codes::NO_SPACING,
        format!(
            "no usable pixel spacing ({why}): no landmark of this image is used and no metric is computed from it"
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The listing walks the first levels in parallel and deeper ones with a stack: files
    /// at every depth are found, sorted, symbolic links to files are followed and links
    /// to folders are not.
    #[test]
    fn list_files_finds_every_file_at_every_depth_sorted() {
        let root = std::env::temp_dir().join(format!("plumbline-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut want = Vec::new();
        let mut dir = root.clone();
        for depth in 0..7 {
            std::fs::create_dir_all(&dir).unwrap();
            for name in ["b.dcm", "a.dcm"] {
                let f = dir.join(name);
                std::fs::write(&f, b"x").unwrap();
                want.push(f);
            }
            // A sibling folder at each level, with one file.
            let side = dir.join(format!("side{depth}"));
            std::fs::create_dir_all(&side).unwrap();
            std::fs::write(side.join("c.dcm"), b"x").unwrap();
            want.push(side.join("c.dcm"));
            dir = dir.join(format!("d{depth}"));
        }
        // A link to a file is listed; a link to a folder (here, a loop) is not followed.
        std::os::unix::fs::symlink(root.join("a.dcm"), root.join("link.dcm")).unwrap();
        want.push(root.join("link.dcm"));
        std::os::unix::fs::symlink(&root, root.join("side0").join("loop")).unwrap();
        want.sort();
        let (files, issues) = list_files(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(files, want);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(files.len(), 7 * 3 + 1);
    }
}
