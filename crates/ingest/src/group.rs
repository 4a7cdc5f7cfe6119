//! Joins landmark points to their images, decides each image's view and each study's
//! timepoint, and groups the result into patient -> timepoint -> observer -> {lateral,
//! AP} landmark sets in mm.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use plumbline_geometry::{ByLandmark, Landmark, OrientationSource, ViewKind, ViewLandmarks};
use rayon::prelude::*;

use crate::clinical::ClinicalTable;
use crate::qc::{QcIssue, Severity, codes};
use crate::records::{ImageRecord, LandmarkDoc, Orientation, Position, RawPoint, SpacingSource};
use crate::scan::ScanResult;

/// Which study a timepoint takes when several fall into its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The latest study (pre-op: the one closest to surgery).
    Latest,
    /// The earliest study.
    Earliest,
}

/// A timepoint window in days relative to surgery: `from <= offset < to` when
/// `to_inclusive` is false, `from <= offset <= to` otherwise.
///
/// An unanchored window (`anchored == false`, a design without surgery) has no days: a
/// study is placed in it by its ClinicalTrialTimePointID, or, when the design has that
/// single timepoint, every study of the patient falls in it and `pick` chooses (the
/// latest study, by default).
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Timepoint name (`preop`, `postop`, `m3`, ...); also the ClinicalTrialTimePointID
    /// value that selects it directly.
    pub name: String,
    /// First day (inclusive).
    pub from: i64,
    /// Last day.
    pub to: i64,
    /// Whether `to` itself is inside.
    pub to_inclusive: bool,
    /// Which study wins when several fall inside.
    pub pick: Pick,
    /// Whether the days count from the patient's surgery date; `false` for a design
    /// without surgery, where `from` and `to` are not used.
    pub anchored: bool,
}

impl Window {
    fn contains(&self, d: i64) -> bool {
        !self.anchored || (d >= self.from && (d < self.to || (self.to_inclusive && d == self.to)))
    }

    /// A window of a design without surgery: every study date, the `pick` one chosen.
    pub fn unanchored(name: &str, pick: Pick) -> Window {
        Window {
            name: name.to_string(),
            from: i64::MIN,
            to: i64::MAX,
            to_inclusive: true,
            pick,
            anchored: false,
        }
    }
}

/// The default windows of `pipeline-io.md`: preop = latest study in [-180, 0); postop =
/// earliest in [0, 30]; m3 = [60, 120]; m6 = [150, 240]; m12 = [300, 450]. The contract
/// names the study to pick only for preop and postop; for the later windows Plumbline
/// takes the earliest study and lists the others in QC.
pub fn default_windows() -> Vec<Window> {
    let w = |name: &str, from, to, to_inclusive, pick| Window {
        name: name.to_string(),
        from,
        to,
        to_inclusive,
        pick,
        anchored: true,
    };
    vec![
        w("preop", -180, 0, false, Pick::Latest),
        w("postop", 0, 30, true, Pick::Earliest),
        w("m3", 60, 120, true, Pick::Earliest),
        w("m6", 150, 240, true, Pick::Earliest),
        w("m12", 300, 450, true, Pick::Earliest),
    ]
}

/// One view of one reading: the image, how its frame was set up, the landmarks in mm.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// The image's SOP Instance UID.
    pub image_uid: String,
    /// The image file as outputs (QC) name it: its path, or after pseudonymisation that
    /// path with every PatientID and (with `--shift-dates`) date replaced. Where to read
    /// the image is [`Grouped::image_files`], which stays on the input side.
    pub path: PathBuf,
    /// Where the mm scale came from.
    pub spacing_source: SpacingSource,
    /// The landmarks in mm (orientation source inside).
    pub landmarks: ViewLandmarks,
    /// The same landmarks in source pixels (column, row), for drawing overlays.
    pub pixels: ByLandmark<(f64, f64)>,
    /// The SOP Instance UIDs of the landmark SRs its points came from, sorted, each once
    /// (empty for points from Slicer markups or a landmark CSV, which have none): the
    /// results SR references them.
    pub landmark_srs: Vec<String>,
}

/// All landmarks of one reader at one timepoint of one patient.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// PatientID.
    pub patient_id: String,
    /// Timepoint name.
    pub timepoint: String,
    /// Index of the timepoint in the window order (for sorting).
    pub timepoint_index: usize,
    /// StudyInstanceUID of the study read.
    pub study_uid: String,
    /// StudyDate, when known.
    pub study_date: Option<chrono::NaiveDate>,
    /// The reader (Person Observer Name as stored; empty when none was given).
    pub observer: String,
    /// The lateral view.
    pub lateral: Option<View>,
    /// The AP view.
    pub ap: Option<View>,
}

/// The outcome of grouping.
#[derive(Clone, Debug, Default)]
pub struct Grouped {
    /// Readings sorted by patient, timepoint (window order), observer.
    pub readings: Vec<Reading>,
    /// Problems found while joining and grouping.
    pub issues: Vec<QcIssue>,
    /// The file of every image used, by SOP Instance UID (of duplicates, the copy kept):
    /// where the overlay stage reads the pixels; and of every landmark SR, where the
    /// results SR stage reads its header. It is not part of the [`crate::Cohort`],
    /// so pseudonymisation never needs to touch it and no later record holds the real
    /// paths, which name patients and dates.
    pub image_files: ImageFiles,
}

/// Image files, and the files of the landmark SRs that views use, by SOP Instance UID
/// ([`Grouped::image_files`]).
pub type ImageFiles = BTreeMap<String, PathBuf>;

/// A header attribute as a QC message shows it: "ViewPosition is `LL`", or "ViewPosition
/// is empty or absent".
fn attribute_is(name: &str, value: Option<String>) -> String {
    match value {
        Some(v) => format!("{name} is `{v}`"),
        None => format!("{name} is empty or absent"),
    }
}

/// "PatientOrientation is `A\F`", or "PatientOrientation is empty or absent" (which
/// includes a single value: the attribute has two).
fn orientation_is(im: &ImageRecord) -> String {
    attribute_is(
        "PatientOrientation",
        im.orientation.as_ref().map(Orientation::text),
    )
}

fn is_lateral_position(vp: &str) -> Option<ViewKind> {
    match vp.trim().to_ascii_uppercase().as_str() {
        "LL" | "RL" | "LLD" | "RLD" | "LAT" | "LATERAL" => Some(ViewKind::Lateral),
        "AP" | "PA" => Some(ViewKind::Ap),
        _ => None,
    }
}

/// The images the grouping uses, by SOP Instance UID: records borrowed from the scan,
/// not copied.
type Images<'s> = BTreeMap<&'s str, &'s ImageRecord>;

/// Keeps one record per SOP Instance UID: the first by (has spacing, path); the others
/// are listed in QC.
fn dedupe_images<'s>(images: &'s [ImageRecord], issues: &mut Vec<QcIssue>) -> Images<'s> {
    let mut by_uid: BTreeMap<&str, Vec<&ImageRecord>> = BTreeMap::new();
    for im in images {
        by_uid.entry(&im.sop_instance_uid).or_default().push(im);
    }
    let mut out = BTreeMap::new();
    for (uid, mut v) in by_uid {
        v.sort_by_key(|im| (im.spacing.is_none(), im.path.clone()));
        let keep = v[0];
        for other in &v[1..] {
            issues.push(
                QcIssue::file(
                    &other.path,
                    Severity::Warning,
                    codes::DUPLICATE_SOP_INSTANCE,
                    format!(
                        "the same SOP Instance UID is also in {}; that copy is used, this one is not",
                        keep.path.display()
                    ),
                )
                .with_ids(uid, &other.patient_id),
            );
        }
        out.insert(uid, keep);
    }
    out
}

/// One landmark point joined to its image, in pixels (40 bytes), while its image's views
/// are built.
struct Joined {
    /// The rank of its reader in sorted order ([`DocsByImage::observers`] turns it back
    /// into the string): sorting by it sorts by the string.
    observer: u32,
    landmark: Landmark,
    /// Position among its image's points in document order, the sort's last key.
    seq: u32,
    /// Column and row in pixels.
    at: (f64, f64),
    /// The document it came from: an index into [`ScanResult::docs`].
    doc: u32,
}

/// What the join needs to work one image at a time: the documents that place points on
/// each image, and the ranks that stand for images and readers.
struct DocsByImage<'s> {
    /// (image rank, document index), sorted and each once: each image's documents, in
    /// document order.
    refs: Vec<(u32, u32)>,
    /// Each document's images (their record and rank, when in the input) and readers'
    /// ranks, by the document's own indices.
    ranks: Vec<DocRanks<'s>>,
    /// Images by rank (the order of their SOP Instance UIDs).
    images: Vec<&'s ImageRecord>,
    /// Readers by rank.
    observers: Vec<&'s str>,
}

/// Joins points to images and groups them. `clinical` gives surgery dates for the
/// date windows; without it only ClinicalTrialTimePointID assigns timepoints.
pub fn group(scan: &ScanResult, clinical: Option<&ClinicalTable>, windows: &[Window]) -> Grouped {
    let mut issues = Vec::new();
    let images = dedupe_images(&scan.images, &mut issues);

    // 1. Which documents place points on which image.
    let by_image = docs_by_image(scan, &images, &mut issues);

    // 2. Join each image's points (sorted by reader, landmark, document order) and build
    // its views in mm, one (image, reader) each; an image per task, so that the work of
    // one task does not grow with the cohort; results in (image, reader) order.
    let built: Vec<_> = by_image
        .refs
        .par_chunk_by(|a, b| a.0 == b.0)
        .map(|refs| {
            let im = by_image.images[refs[0].0 as usize];
            let mut found = Vec::new();
            let points = join_image(scan, &by_image, refs, &mut found);
            let views: Vec<_> = points
                .chunk_by(|a, b| a.observer == b.observer)
                .map(|pair| {
                    let observer = by_image.observers[pair[0].observer as usize];
                    let v = build_view(im, observer, (pair, &scan.docs), &mut found);
                    (observer, v)
                })
                .collect();
            (im, views, found)
        })
        .collect();
    let mut views: Vec<(&ImageRecord, &str, ViewKind, View)> = Vec::new(); // (image, observer, kind, view)
    for (im, built_views, mut found) in built {
        issues.append(&mut found);
        for (observer, v) in built_views {
            if let Some((kind, view)) = v {
                views.push((im, observer, kind, view));
            }
        }
    }

    // 3. Timepoints per (patient, study).
    let study_tp = assign_timepoints(&images, clinical, windows, &mut issues);

    // 4. Readings.
    let readings = readings(views, &study_tp, windows, &mut issues);
    issues.sort();
    issues.dedup();
    Grouped {
        readings: readings.into_values().collect(),
        issues,
        image_files: source_files(&images, scan),
    }
}

/// Where each image, and each landmark SR that has a SOP Instance UID, is read (of SRs
/// sharing a UID, the first in scan order).
fn source_files(images: &Images<'_>, scan: &ScanResult) -> ImageFiles {
    let mut files: ImageFiles = images
        .iter()
        .map(|(uid, im)| (uid.to_string(), im.path.clone()))
        .collect();
    for doc in scan.docs.iter().filter(|d| !d.sop_instance_uid.is_empty()) {
        files
            .entry(doc.sop_instance_uid.clone())
            .or_insert_with(|| doc.path.clone());
    }
    files
}

/// Finds the images each document places points on, and the ranks of images (by UID) and
/// readers; a QC issue for each image that landmarks reference but the input tree lacks.
/// A few bytes a document: the points themselves are joined image by image
/// ([`join_image`]).
fn docs_by_image<'s>(
    scan: &'s ScanResult,
    images: &Images<'s>,
    issues: &mut Vec<QcIssue>,
) -> DocsByImage<'s> {
    let mut missing: BTreeSet<(PathBuf, String)> = BTreeSet::new();
    // Each image's record and rank, found with one lookup.
    let image_at: HashMap<&str, (&ImageRecord, u32)> = images
        .iter()
        .enumerate()
        .map(|(i, (k, im))| (*k, (*im, i as u32)))
        .collect();
    let observers: BTreeSet<&str> = scan
        .docs
        .iter()
        .flat_map(|d| d.observers.iter().map(String::as_str))
        .collect();
    let observers: Vec<&str> = observers.into_iter().collect();
    let observer_rank: HashMap<&str, u32> = observers
        .iter()
        .enumerate()
        .map(|(i, o)| (*o, i as u32))
        .collect();
    let mut refs = Vec::new();
    let mut ranks = Vec::with_capacity(scan.docs.len());
    for (d, doc) in scan.docs.iter().enumerate() {
        issues.extend(doc.issues.iter().cloned());
        let doc_ranks = DocRanks {
            images: doc
                .images
                .iter()
                .map(|u| image_at.get(u.as_str()).copied())
                .collect(),
            observers: doc
                .observers
                .iter()
                .map(|o| observer_rank[o.as_str()])
                .collect(),
        };
        // A document's image list holds the images its points are on, each once
        // (`LandmarkDoc::images`: interned as each point is added).
        for (i, at) in doc_ranks.images.iter().enumerate() {
            match at {
                Some((_, rank)) => refs.push((*rank, d as u32)),
                None => {
                    missing.insert((doc.path.clone(), doc.images[i].clone()));
                }
            }
        }
        ranks.push(doc_ranks);
    }
    refs.sort_unstable();
    refs.dedup();
    for (path, uid) in missing {
        let doc = scan.docs.iter().find(|d| d.path == path);
        issues.push(
            QcIssue::file(
                &path,
                Severity::Error,
                codes::IMAGE_NOT_FOUND,
                format!("landmarks reference image {uid}, which is not in the input tree; those landmarks are not used"),
            )
            .with_ids(
                doc.map_or("", |d| d.sop_instance_uid.as_str()),
                doc.map_or("", |d| d.patient_id.as_str()),
            ),
        );
    }
    DocsByImage {
        refs,
        ranks,
        images: images.values().copied().collect(),
        observers,
    }
}

/// The readings, by (patient, timepoint index, observer): each view goes to the reading
/// of its study's timepoint; a second view of the same kind is listed in QC.
fn readings<'s>(
    views: Vec<(&'s ImageRecord, &'s str, ViewKind, View)>,
    study_tp: &BTreeMap<(&str, &str), usize>,
    windows: &[Window],
    issues: &mut Vec<QcIssue>,
) -> BTreeMap<(&'s str, usize, &'s str), Reading> {
    let mut readings: BTreeMap<(&str, usize, &str), Reading> = BTreeMap::new();
    for (im, observer, kind, view) in views {
        let Some(&tp) = study_tp.get(&(im.patient_id.as_str(), im.study_instance_uid.as_str()))
        else {
            continue; // the study's QC issue was written by assign_timepoints
        };
        let r = readings
            .entry((&im.patient_id, tp, observer))
            .or_insert_with(|| Reading {
                patient_id: im.patient_id.clone(),
                timepoint: windows[tp].name.clone(),
                timepoint_index: tp,
                study_uid: im.study_instance_uid.clone(),
                study_date: im.study_date,
                observer: observer.to_string(),
                lateral: None,
                ap: None,
            });
        let slot = match kind {
            ViewKind::Lateral => &mut r.lateral,
            ViewKind::Ap => &mut r.ap,
        };
        match slot {
            None => *slot = Some(view),
            Some(kept) => issues.push(
                QcIssue::file(
                    &im.path,
                    Severity::Warning,
                    codes::DUPLICATE_VIEW,
                    format!(
                        "a second {kind} image for reader `{observer}` at {}; {} is used, this one is not",
                        windows[tp].name,
                        kept.path.display()
                    ),
                )
                .with_ids(&im.sop_instance_uid, &im.patient_id),
            ),
        }
    }
    readings
}

/// Farthest a Slicer markups point may lie from its image's plane (Slicer places points on
/// the slice at z = 0 of a one-slice volume; half the 1 mm slice thickness ITK gives it).
const MAX_OFF_PLANE_MM: f64 = 0.5;

/// A document's images (their record and rank, when in the input) and readers' ranks, by
/// the document's own indices.
struct DocRanks<'i> {
    images: Vec<Option<(&'i ImageRecord, u32)>>,
    observers: Vec<u32>,
}

/// The points of one image, joined (`refs`: the image's (rank, document) pairs, in
/// document order), sorted by (reader, landmark) and in document order within a
/// landmark; a point that is off the image's plane, outside it or on a frame it lacks is
/// a QC issue and not joined.
fn join_image(
    scan: &ScanResult,
    by_image: &DocsByImage<'_>,
    refs: &[(u32, u32)],
    issues: &mut Vec<QcIssue>,
) -> Vec<Joined> {
    let mut joined = Vec::new();
    for &(rank, d) in refs {
        let doc = &scan.docs[d as usize];
        let ranks = &by_image.ranks[d as usize];
        for p in &doc.points {
            let Some((im, image_rank)) = ranks.images[p.image as usize] else {
                continue;
            };
            if image_rank != rank {
                continue;
            }
            if let Some(at) = place(doc, p, im, issues) {
                joined.push(Joined {
                    observer: ranks.observers[p.observer as usize],
                    landmark: p.landmark,
                    seq: joined.len() as u32,
                    at,
                    doc: d,
                });
            }
        }
    }
    // Placements of one landmark stay in document order (`seq`, unique, so the order
    // is the same whatever the sort).
    joined.sort_unstable_by_key(|j| (j.observer, j.landmark, j.seq));
    joined
}

/// Point `p` of `doc` in pixels of its image `im`; `None`, with a QC issue, when it is
/// off the image's plane, outside the image or on a frame the image lacks.
fn place(
    doc: &LandmarkDoc,
    p: &RawPoint,
    im: &ImageRecord,
    issues: &mut Vec<QcIssue>,
) -> Option<(f64, f64)> {
    let uid = doc.image_uid(p);
    // A Slicer markups position in patient mm: back to pixels through the geometry
    // ITK gives the image; a point off the image plane was not placed on it.
    let (col, row) = match p.at {
        Position::Pixel32([c, r]) => (f64::from(c), f64::from(r)),
        Position::Pixel([c, r]) => (c, r),
        Position::Lps(lps) => {
            let (c, r, off) = im.itk.to_pixel(lps);
            if off.abs() > MAX_OFF_PLANE_MM {
                issues.push(
                    QcIssue::file(
                        &doc.path,
                        Severity::Error,
                        codes::BAD_LANDMARK_FILE,
                        format!(
                            "{} at LPS ({:.3}, {:.3}, {:.3}) mm lies {off:.3} mm off the plane of image {} \
                             (more than {MAX_OFF_PLANE_MM} mm), so it was not placed on that image; not used",
                            p.landmark, lps[0], lps[1], lps[2], uid
                        ),
                    )
                    .with_ids(&doc.sop_instance_uid, &im.patient_id),
                );
                return None;
            }
            (c, r)
        }
    };
    let (w, h) = (f64::from(im.cols), f64::from(im.rows));
    if !(0.0..=w).contains(&col) || !(0.0..=h).contains(&row) {
        issues.push(
            QcIssue::file(
                &doc.path,
                Severity::Error,
                codes::POINT_OUT_OF_BOUNDS,
                format!(
                    "{} at column {}, row {} lies outside image {} ({} x {} pixels); not used",
                    p.landmark, col, row, uid, im.cols, im.rows
                ),
            )
            .with_ids(&doc.sop_instance_uid, &im.patient_id),
        );
        return None;
    }
    if p.frame.is_some_and(|f| f > im.number_of_frames) {
        issues.push(
            QcIssue::file(
                &doc.path,
                Severity::Error,
                codes::BAD_CONTENT_ITEM,
                format!(
                    "{} references frame {} of image {}, which has {} frame(s); not used",
                    p.landmark,
                    p.frame.unwrap_or(0),
                    uid,
                    im.number_of_frames
                ),
            )
            .with_ids(&doc.sop_instance_uid, &im.patient_id),
        );
        return None;
    }
    Some((col, row))
}

/// A QC issue about image `im`.
fn image_issue(
    im: &ImageRecord,
    severity: Severity,
    code: &'static str,
    message: String,
) -> QcIssue {
    QcIssue::file(&im.path, severity, code, message).with_ids(&im.sop_instance_uid, &im.patient_id)
}

/// Decides the view, drops ambiguous and wrong-view landmarks, converts to mm. `lms`: the
/// points of one (image, reader), sorted by landmark, and the documents they index.
fn build_view(
    im: &ImageRecord,
    observer: &str,
    (lms, docs): (&[Joined], &[LandmarkDoc]),
    issues: &mut Vec<QcIssue>,
) -> Option<(ViewKind, View)> {
    let who = if observer.is_empty() {
        "no named reader".to_string()
    } else {
        format!("reader `{observer}`")
    };
    let mut unique = unique_landmarks(im, &who, (lms, docs), issues);
    let kind = view_kind(im, &who, &unique, issues)?;
    unique.retain(|lm, _| {
        let wrong = matches!(lm, Landmark::Corner(_, _, c) if c.is_lateral() != (kind == ViewKind::Lateral));
        if wrong {
            issues.push(image_issue(
                im,
                Severity::Error,
                codes::WRONG_VIEW_LANDMARK,
                format!("{lm} ({who}) belongs on the other view, this image is {kind}; not used"),
            ));
        }
        !wrong
    });
    let (spacing, source) = im.spacing?; // no spacing: reported by the scan
    let (column, row) = im
        .orientation
        .as_ref()
        .map_or((None, None), |o| (o.column, o.row));
    // Deduplicated before anything is owned: a view has one point per landmark but
    // usually one SR, and a vector of one string per point kept its capacity (about
    // 3 KiB a view, 20 MB of peak memory on 600 patients).
    let mut uids: Vec<&str> = Vec::new();
    for j in lms {
        let u = docs[j.doc as usize].sop_instance_uid.as_str();
        if !u.is_empty() && !uids.contains(&u) {
            uids.push(u);
        }
    }
    uids.sort_unstable();
    let landmark_srs: Vec<String> = uids.into_iter().map(String::from).collect();
    let landmarks = ViewLandmarks::from_pixels(
        kind,
        unique.iter().map(|(k, p)| (*k, *p)),
        spacing,
        column,
        row,
    )
    .ok()?;
    let pixels = unique;
    if let Some(message) = orientation_problem(im, kind, landmarks.orientation(), &who) {
        issues.push(image_issue(
            im,
            Severity::Warning,
            codes::NO_ORIENTATION,
            message,
        ));
    }
    Some((
        kind,
        View {
            image_uid: im.sop_instance_uid.clone(),
            path: im.path.clone(),
            spacing_source: source,
            landmarks,
            pixels,
            landmark_srs,
        },
    ))
}

/// The landmarks placed once on image `im` by `who`; those placed more than once are
/// ambiguous and listed in QC.
fn unique_landmarks(
    im: &ImageRecord,
    who: &str,
    (lms, docs): (&[Joined], &[LandmarkDoc]),
    issues: &mut Vec<QcIssue>,
) -> ByLandmark<(f64, f64)> {
    let mut unique = ByLandmark::with_capacity(lms.len());
    // Sorted by landmark, so each landmark's placements are one run.
    for placed in lms.chunk_by(|a, b| a.landmark == b.landmark) {
        let lm = placed[0].landmark;
        if placed.len() > 1 {
            let from: BTreeSet<String> = placed
                .iter()
                .map(|p| docs[p.doc as usize].path.display().to_string())
                .collect();
            issues.push(image_issue(
                im,
                Severity::Error,
                codes::DUPLICATE_LANDMARK,
                format!(
                    "{lm} is placed {} times on this image by {who} (in {}); ambiguous, none is used",
                    placed.len(),
                    from.into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
            continue;
        }
        unique.insert(lm, placed[0].at);
    }
    unique
}

/// The view of image `im` for `who`: the kind most of its corners belong to, else
/// ViewPosition; `None` (and an issue) when neither tells. A ViewPosition that disagrees
/// with the corners is listed in QC.
fn view_kind(
    im: &ImageRecord,
    who: &str,
    unique: &ByLandmark<(f64, f64)>,
    issues: &mut Vec<QcIssue>,
) -> Option<ViewKind> {
    let count = |lateral: bool| {
        unique
            .keys()
            .filter(|k| matches!(k, Landmark::Corner(_, _, c) if c.is_lateral() == lateral))
            .count()
    };
    let (n_lat, n_ap) = (count(true), count(false));
    let header = im.view_position.as_deref().and_then(is_lateral_position);
    let kind = match (n_lat, n_ap) {
        (0, 0) => header,
        (l, a) if l > a => Some(ViewKind::Lateral),
        (l, a) if a > l => Some(ViewKind::Ap),
        _ => header,
    };
    let Some(kind) = kind else {
        issues.push(image_issue(
            im,
            Severity::Error,
            codes::VIEW_UNKNOWN,
            format!(
                "cannot tell whether this image is lateral or AP for {who}: its landmarks have no anterior/posterior or left/right corners (or as many of each) and {}; its landmarks are not used",
                attribute_is("ViewPosition", im.view_position.clone())
            ),
        ));
        return None;
    };
    if let Some(h) = header
        && h != kind
    {
        issues.push(image_issue(
            im,
            Severity::Warning,
            codes::VIEW_CONFLICT,
            format!(
                "ViewPosition `{}` says {h} but the landmarks of {who} are {kind} corners; the landmarks win",
                im.view_position.as_deref().unwrap_or("")
            ),
        ));
    }
    Some(kind)
}

/// The `no_orientation` message of a view whose orientation was not read from the
/// header, or `None`.
fn orientation_problem(
    im: &ImageRecord,
    kind: ViewKind,
    orientation: OrientationSource,
    who: &str,
) -> Option<String> {
    match orientation {
        OrientationSource::Header => None,
        OrientationSource::Inferred => Some(format!(
            "{} and gives no anterior/posterior column direction; anterior inferred from the S1 corners ({who})",
            orientation_is(im)
        )),
        OrientationSource::Unknown => Some(match kind {
            ViewKind::Ap => format!(
                "{} and gives no left/right column direction: signed coronal metrics (C7PL-CSVL, pelvic obliquity) are missing, magnitudes are kept ({who})",
                orientation_is(im)
            ),
            ViewKind::Lateral => format!(
                "{} and gives no anterior/posterior direction, and no corner pair tells it: sagittal metrics are missing ({who})",
                orientation_is(im)
            ),
        }),
    }
}

/// Assigns each (patient, study) a timepoint index into `windows`.
fn assign_timepoints<'s>(
    images: &Images<'s>,
    clinical: Option<&ClinicalTable>,
    windows: &[Window],
    issues: &mut Vec<QcIssue>,
) -> BTreeMap<(&'s str, &'s str), usize> {
    let timeline = Timeline::new(clinical, windows);
    let mut out = BTreeMap::new();
    let mut by_window: BTreeMap<(&str, usize), Vec<(i64, &ImageRecord)>> = BTreeMap::new();
    let mut patients_seen: BTreeSet<&str> = BTreeSet::new();
    for ((pid, suid), im) in study_images(images) {
        patients_seen.insert(pid);
        match timeline.place(pid, suid, im, issues) {
            Some(Placement::Named(t)) => {
                out.insert((pid, suid), t);
            }
            Some(Placement::Dated(t, day)) => {
                by_window.entry((pid, t)).or_default().push((day, im))
            }
            None => {}
        }
    }
    // The (patient, window) pairs a study's timepoint ID fills. `pick_study` below adds
    // only studies of the pair it is given, so this set stays what the loop would see.
    let named: BTreeSet<(&str, usize)> = out.iter().map(|(&(p, _), &t)| (p, t)).collect();
    for ((pid, t), v) in by_window {
        // Studies with a timepoint ID for this window take precedence.
        if named.contains(&(pid, t)) {
            for (_, im) in &v {
                issues.push(
                    QcIssue::file(&im.path, Severity::Warning, codes::AMBIGUOUS_TIMEPOINT, format!("study {} falls in the {} window, which a study with ClinicalTrialTimePointID `{}` already fills; not used", im.study_instance_uid, windows[t].name, windows[t].name))
                        .with_ids(&im.sop_instance_uid, pid),
                );
            }
            continue;
        }
        pick_study(pid, t, v, windows, &mut out, issues);
    }
    if let Some(c) = clinical {
        clinical_without_images(c, &patients_seen, issues);
    }
    out
}

/// One image for each (patient, study): the first in path order that carries a
/// ClinicalTrialTimePointID, else the first.
fn study_images<'s>(images: &Images<'s>) -> BTreeMap<(&'s str, &'s str), &'s ImageRecord> {
    let mut by_path: Vec<&ImageRecord> = images.values().copied().collect();
    by_path.sort_by(|a, b| a.path.cmp(&b.path));
    let mut studies: BTreeMap<(&str, &str), &ImageRecord> = BTreeMap::new();
    for im in by_path {
        let e = studies
            .entry((&im.patient_id, &im.study_instance_uid))
            .or_insert(im);
        if e.timepoint_id.is_none() && im.timepoint_id.is_some() {
            *e = im;
        }
    }
    studies
}

/// Chooses, among the studies `v` (study day, image) of patient `pid` that fall in
/// window `t`, the one its pick names; the others are listed in QC.
fn pick_study<'s>(
    pid: &'s str,
    t: usize,
    mut v: Vec<(i64, &'s ImageRecord)>,
    windows: &[Window],
    out: &mut BTreeMap<(&'s str, &'s str), usize>,
    issues: &mut Vec<QcIssue>,
) {
    v.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.study_instance_uid.cmp(&b.1.study_instance_uid))
    });
    let chosen = match windows[t].pick {
        Pick::Earliest => 0,
        Pick::Latest => v.len() - 1,
    };
    for (i, (_, im)) in v.iter().enumerate() {
        if i == chosen {
            out.insert((pid, im.study_instance_uid.as_str()), t);
        } else {
            issues.push(
                QcIssue::file(
                    &im.path,
                    Severity::Warning,
                    codes::AMBIGUOUS_TIMEPOINT,
                    format!(
                        "study {} also falls in the {} window; the {} study {} is used",
                        im.study_instance_uid,
                        windows[t].name,
                        if windows[t].pick == Pick::Earliest {
                            "earliest"
                        } else {
                            "latest"
                        },
                        v[chosen].1.study_instance_uid
                    ),
                )
                .with_ids(&im.sop_instance_uid, pid),
            );
        }
    }
}

/// A warning for each row of the clinical table whose patient has no images.
fn clinical_without_images(
    c: &ClinicalTable,
    patients_seen: &BTreeSet<&str>,
    issues: &mut Vec<QcIssue>,
) {
    for r in &c.rows {
        if !patients_seen.contains(r.patient_id.as_str()) {
            issues.push(
                QcIssue::file(
                    &c.path,
                    Severity::Warning,
                    codes::CLINICAL_WITHOUT_IMAGES,
                    format!(
                        "line {}: patient {} has no images in the input tree",
                        r.line, r.patient_id
                    ),
                )
                .with_ids("", &r.patient_id),
            );
        }
    }
}

/// Where a study goes in time.
enum Placement {
    /// Into this window, by its ClinicalTrialTimePointID.
    Named(usize),
    /// Into this window, by its date (the study's day, for choosing among several).
    Dated(usize, i64),
}

/// What placing studies in time needs to know of the design and the clinical table.
struct Timeline<'a> {
    windows: &'a [Window],
    /// Whether there is a clinical table at all.
    has_clinical: bool,
    /// Surgery day by patient.
    surgery: BTreeMap<&'a str, i64>,
    /// The patients of the clinical table.
    in_clinical: BTreeSet<&'a str>,
    /// A design without surgery: no window is anchored.
    unanchored: bool,
}

impl<'a> Timeline<'a> {
    fn new(clinical: Option<&'a ClinicalTable>, windows: &'a [Window]) -> Timeline<'a> {
        let surgery: BTreeMap<&str, i64> = clinical
            .map(|c| {
                c.rows
                    .iter()
                    .filter_map(|r| Some((r.patient_id.as_str(), r.surgery_day?)))
                    .collect()
            })
            .unwrap_or_default();
        // Every row of a table read for a surgery-anchored design has a surgery date, so
        // there the two sets are the same.
        let in_clinical: BTreeSet<&str> = clinical
            .map(|c| c.rows.iter().map(|r| r.patient_id.as_str()).collect())
            .unwrap_or_default();
        Timeline {
            windows,
            has_clinical: clinical.is_some(),
            surgery,
            in_clinical,
            unanchored: windows.iter().all(|w| !w.anchored),
        }
    }

    /// The timepoints of the pipeline, for messages.
    fn names(&self) -> String {
        self.windows
            .iter()
            .map(|w| w.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Places study `suid` of patient `pid`, whose image `im` stands for it; `None`, and
    /// an issue, when it cannot be placed.
    fn place(
        &self,
        pid: &str,
        suid: &str,
        im: &ImageRecord,
        issues: &mut Vec<QcIssue>,
    ) -> Option<Placement> {
        let issue = |sev, code, msg: String| {
            QcIssue::file(&im.path, sev, code, msg).with_ids(&im.sop_instance_uid, pid)
        };
        if self.has_clinical && !pid.is_empty() && !self.in_clinical.contains(pid) {
            let consequence = if self.unanchored {
                "the patient's readings are measured, but the patient is in no stratum"
            } else {
                "only studies with a ClinicalTrialTimePointID can be placed in time"
            };
            issues.push(issue(
                Severity::Warning,
                codes::PATIENT_NOT_IN_CLINICAL,
                format!("patient {pid} has images but no row in the clinical table; {consequence}"),
            ));
        }
        if let Some(id) = &im.timepoint_id {
            if let Some(t) = self
                .windows
                .iter()
                .position(|w| w.name.eq_ignore_ascii_case(id.trim()))
            {
                return Some(Placement::Named(t));
            }
            issues.push(issue(
                Severity::Warning,
                codes::OUTSIDE_WINDOWS,
                format!("ClinicalTrialTimePointID `{id}` is not a timepoint of the pipeline ({}); the study date is used instead", self.names()),
            ));
        }
        let Some(day) = im.study_date.map(crate::clinical::days_of) else {
            issues.push(issue(
                Severity::Error,
                codes::NO_STUDY_DATE,
                format!("study {suid} has neither a ClinicalTrialTimePointID nor a valid StudyDate; it cannot be placed in time"),
            ));
            return None;
        };
        let offset = if self.unanchored {
            if self.windows.len() > 1 {
                issues.push(issue(
                    Severity::Warning,
                    codes::OUTSIDE_WINDOWS,
                    format!("study {suid} has no ClinicalTrialTimePointID naming one of the pipeline's timepoints ({}); a design without surgery and with several timepoints places studies by that ID only; not used", self.names()),
                ));
                return None;
            }
            day
        } else {
            // A patient without a surgery date was reported above.
            day - self.surgery.get(pid)?
        };
        match self.windows.iter().position(|w| w.contains(offset)) {
            Some(t) => Some(Placement::Dated(t, day)),
            None => {
                issues.push(issue(
                    Severity::Warning,
                    codes::OUTSIDE_WINDOWS,
                    format!("study {suid} on day {offset:+} from surgery is outside every timepoint window; not used"),
                ));
                None
            }
        }
    }
}
