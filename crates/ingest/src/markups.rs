//! Landmarks that arrive outside DICOM SR (`landmarks.md` section 2, last paragraph): a
//! 3D Slicer Markups JSON file or a CSV. Both yield the same [`LandmarkDoc`] as an SR.
//!
//! Both readers never fail: every problem is a [`QcIssue`] in the returned document
//! (`bad_landmark_file`, or `unnamed_point` for a name that is not a landmark), naming the
//! file and the line (CSV) or the markup and control point (JSON). Names go through the
//! pipeline's [`Vocabulary`] (synonyms first, then canonical names verbatim).
//! Coordinates are pixels with the SR convention: (0,0) is the outer top-left corner of
//! the image, so the top-left pixel's centre is (0.5, 0.5); a tool that writes 0-based
//! pixel-centre indices must add 0.5. Points are not checked against the image here
//! (bounds, duplicates and views are checked when points are joined with images).
//!
//! # Landmark CSV
//!
//! UTF-8 (a byte-order mark is accepted), comma-separated, a header row and one point per
//! row. Header names are trimmed, matched case-insensitively, in any order:
//!
//! | column | also accepted | value |
//! |---|---|---|
//! | `sop_instance_uid` | `image_uid` | SOP Instance UID of the radiograph |
//! | `landmark` | `name` | landmark name (`landmarks.md` section 1) or vocabulary synonym |
//! | `column` | `col` | column in pixels (a finite number) |
//! | `row` | | row in pixels |
//! | `observer` (optional) | | the reader, as a DICOM person name (`Reader^One`); empty when absent |
//!
//! ```text
//! sop_instance_uid,landmark,column,row,observer
//! 1.2.826.0.1.3680043.8.498.1,C7_centroid,812.5,410,Reader^One
//! 1.2.826.0.1.3680043.8.498.1,S1_sup_post,905,3120.5,Reader^One
//! ```
//!
//! A header without one of the four required columns gives one issue and no points.
//! A row with a wrong field count, an empty UID, an unknown name or a bad number gives an
//! issue per problem and is skipped; rows whose cells are all empty are skipped silently;
//! other columns are ignored with a warning.
//!
//! # 3D Slicer Markups JSON (`*.mrk.json`)
//!
//! **As Slicer writes them**: control points in patient millimetres, `coordinateSystem`
//! `LPS` (Slicer's default since 4.11; also when absent, or `"1"`) or `RAS` (x and y
//! negated; also `"0"`), `coordinateUnits` `mm` (or `um`, scaled), no image reference.
//! The image is the one the landmark map (`--landmark-map`, [`read_landmark_map`]) names
//! for the file, else the SOP Instance UID the file name starts with
//! (`2.25.1234_lateral.mrk.json`); the map can name the reader too. A markup tied to no
//! image is refused with one issue saying how to tie it. Positions stay in LPS mm
//! ([`crate::records::Position::Lps`]) until the point meets its image, whose [`crate::ItkGeometry`] (the
//! origin, spacing and axes ITK's GDCM reader, and so Slicer's DICOM import, gives it)
//! turns them into pixels; a point more than 0.5 mm off the image plane is not used. An
//! unknown `coordinateSystem` is refused rather than guessed (Slicer itself clamps it to
//! RAS). Fixtures checked against SimpleITK: `fixtures/interop/slicer`.
//!
//! **Pixel positions** (Plumbline's own extension, kept for files made by other tools):
//! given by two markup-level members (the markups schema, v1.0.0 to v1.0.4, allows extra
//! members on a markup and a coded unit in `coordinateUnits`, so such a file still
//! validates, though Slicer drops the extra member the next time it saves):
//!
//! - `"coordinateUnits": ["{pixels}", "UCUM", "pixels"]` (the DICOM code for pixels;
//!   the strings `"pixel"`, `"pixels"` and `"{pixels}"` are accepted too): each control
//!   point's `position` is `[column, row, 0]` (a third value other than 0 is ignored with
//!   a warning; `[column, row]` is accepted);
//! - `"plumbline": {"sop_instance_uid": "<image UID>", "observer": "<optional PN>"}`:
//!   the radiograph the points lie on, and the reader.
//!
//! `coordinateSystem` is ignored for pixel positions. A pixel markup without the
//! `plumbline` member gives one issue saying what to add, and none of its points is read.
//! Only point lists are read: `type` `Fiducial` (Slicer's name for a point list), or
//! `PointList`/`Point list`, or absent. A control point's `label` is its landmark name;
//! a `positionStatus` other than `defined` (`undefined`, `preview`) skips the point with
//! a warning (absent means `defined`, the schema default). Several markups may sit in one
//! file, one per image or per reader:
//!
//! ```json
//! {
//!   "@schema": "https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#",
//!   "markups": [
//!     {
//!       "type": "Fiducial",
//!       "name": "lateral",
//!       "coordinateUnits": ["{pixels}", "UCUM", "pixels"],
//!       "plumbline": { "sop_instance_uid": "1.2.826.0.1.3680043.8.498.1", "observer": "Reader^One" },
//!       "controlPoints": [
//!         { "id": "1", "label": "C7_centroid", "position": [812.5, 410.0, 0.0], "positionStatus": "defined" },
//!         { "id": "2", "label": "S1_sup_post", "position": [905.0, 3120.5, 0.0], "positionStatus": "defined" }
//!       ]
//!     }
//!   ]
//! }
//! ```

use std::path::Path;

use plumbline_geometry::Landmark;
use serde_json::Value;

use crate::clinical::{LineCounter, csv_reader, csv_text, separator_hint};
use crate::qc::{QcIssue, Severity, codes};
use crate::records::{LandmarkDoc, Position};
use crate::vocab::Vocabulary;

/// What to add to a markup so that Plumbline can read it.
const MARKUP_FIX: &str = "add `\"coordinateUnits\": [\"{pixels}\", \"UCUM\", \"pixels\"]` with positions [column, row, 0] in image pixels, and `\"plumbline\": {\"sop_instance_uid\": \"<SOP Instance UID of the radiograph>\", \"observer\": \"<optional reader>\"}` to the markup (see the plumbline_ingest::markups documentation)";

/// A new empty document for `path`.
fn new_doc(path: &Path) -> LandmarkDoc {
    LandmarkDoc {
        path: path.to_path_buf(),
        ..LandmarkDoc::default()
    }
}

fn issue(
    path: &Path,
    severity: Severity,
    code: &'static str,
    image_uid: &str,
    message: String,
) -> QcIssue {
    QcIssue::file(path, severity, code, message).with_ids(image_uid, "")
}

/// A JSON value for a message, cut to a readable length.
fn show(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Reads a 3D Slicer Markups JSON file (`*.mrk.json`).
///
/// See the [module documentation](self) for the accepted format.
///
/// ```
/// use plumbline_ingest::{Vocabulary, markups::read_slicer_markups};
/// let path = std::env::temp_dir().join(format!("doc-{}.mrk.json", std::process::id()));
/// std::fs::write(&path, r#"{
///   "@schema": "https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#",
///   "markups": [{
///     "type": "Fiducial",
///     "coordinateUnits": ["{pixels}", "UCUM", "pixels"],
///     "plumbline": { "sop_instance_uid": "1.2.3.4", "observer": "Reader^One" },
///     "controlPoints": [
///       { "id": "1", "label": "C7_centroid", "position": [812.5, 410.0, 0.0], "positionStatus": "defined" }
///     ]
///   }]
/// }"#).unwrap();
/// let doc = read_slicer_markups(&path, &Vocabulary::default());
/// assert!(doc.issues.is_empty());
/// let p = &doc.points[0];
/// assert_eq!((doc.image_uid(p), p.pixel()), ("1.2.3.4", Some((812.5, 410.0))));
/// assert_eq!(p.landmark.to_string(), "C7_centroid");
/// assert_eq!(doc.observer(p), "Reader^One");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn read_slicer_markups(path: &Path, vocab: &Vocabulary) -> LandmarkDoc {
    read_slicer_markups_with(path, vocab, &LandmarkMap::default())
}

/// Which image (and reader) a Slicer markups file in patient mm belongs to, by file name:
/// the rows of `--landmark-map` (`file,sop_instance_uid[,observer]`).
pub type LandmarkMap = std::collections::BTreeMap<String, (String, String)>;

/// Reads a landmark map CSV (`file,sop_instance_uid[,observer]`; `file` is the markups
/// file's name, without folders). Errors name the file and line.
pub fn read_landmark_map(path: &Path) -> Result<LandmarkMap, String> {
    let file = path.display();
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| format!("cannot read the landmark map {file}: {e}"))?;
    let header: Vec<String> = r
        .headers()
        .map_err(|e| format!("{file}: {e}"))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let col = |n: &str| header.iter().position(|h| h == n);
    let (Some(cf), Some(cu)) = (col("file"), col("sop_instance_uid")) else {
        return Err(format!(
            "{file}: the landmark map needs the columns file,sop_instance_uid[,observer]; found {}",
            header.join(",")
        ));
    };
    let co = col("observer");
    let mut map = LandmarkMap::new();
    for (i, rec) in r.records().enumerate() {
        let line = i + 2;
        let rec = rec.map_err(|e| format!("{file}, line {line}: {e}"))?;
        let get = |c: usize| rec.get(c).unwrap_or("").to_string();
        let (name, uid) = (get(cf), get(cu));
        if name.is_empty() || uid.is_empty() {
            return Err(format!(
                "{file}, line {line}: both `file` and `sop_instance_uid` are needed"
            ));
        }
        let observer = co.map(get).unwrap_or_default();
        if map.insert(name.clone(), (uid, observer)).is_some() {
            return Err(format!("{file}, line {line}: `{name}` is mapped twice"));
        }
    }
    Ok(map)
}

/// The SOP Instance UID a file name starts with (`2.25.123..._lps.mrk.json`): the longest
/// prefix of digits and dots, when it holds a dot and is not just a number.
fn uid_prefix(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let end = name
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(name.len());
    let uid = name[..end].trim_end_matches('.');
    (uid.contains('.') && uid.len() >= 3 && !uid.starts_with('.') && !uid.contains(".."))
        .then(|| uid.to_string())
}

/// [`read_slicer_markups`] with a landmark map for markups in patient mm.
pub fn read_slicer_markups_with(path: &Path, vocab: &Vocabulary, map: &LandmarkMap) -> LandmarkDoc {
    let mut doc = new_doc(path);
    let file = path.display().to_string();
    let err = |message: String| issue(path, Severity::Error, codes::BAD_LANDMARK_FILE, "", message);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            doc.issues.push(err(format!("cannot read {file}: {e}")));
            return doc;
        }
    };
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let root: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            doc.issues.push(err(format!(
                "{file} is not valid JSON ({e}); a 3D Slicer Markups file (*.mrk.json) was expected; no point read"
            )));
            return doc;
        }
    };
    let Some(markups) = root.get("markups").and_then(Value::as_array) else {
        doc.issues.push(err(format!(
            "{file} has no `markups` array at the top level, so it is not a 3D Slicer Markups file; no point read"
        )));
        return doc;
    };
    let schema = root.get("@schema").and_then(Value::as_str).unwrap_or("");
    if !schema.contains("markups-schema") {
        doc.issues.push(issue(
            path,
            Severity::Warning,
            codes::BAD_LANDMARK_FILE,
            "",
            format!(
                "{file} does not name a Slicer markups schema in `@schema` (found `{schema}`); read as one anyway"
            ),
        ));
    }
    if markups.is_empty() {
        doc.issues.push(issue(
            path,
            Severity::Warning,
            codes::BAD_LANDMARK_FILE,
            "",
            format!("{file} has an empty `markups` array: no point"),
        ));
    }
    let tie = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| map.get(n).cloned())
        .or_else(|| uid_prefix(path).map(|u| (u, String::new())));
    for (mi, markup) in markups.iter().enumerate() {
        read_markup(path, &file, mi, markup, vocab, tie.as_ref(), &mut doc);
    }
    doc
}

/// Whether `coordinateUnits` says pixels.
fn is_pixel_units(units: Option<&Value>) -> bool {
    let code = match units {
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).unwrap_or(""),
        _ => return false,
    };
    matches!(
        code.trim().to_ascii_lowercase().as_str(),
        "pixel" | "pixels" | "{pixel}" | "{pixels}"
    )
}

/// Reads one markup (`markups[mi]`) into `doc`.
fn read_markup(
    path: &Path,
    file: &str,
    mi: usize,
    markup: &Value,
    vocab: &Vocabulary,
    tie: Option<&(String, String)>,
    doc: &mut LandmarkDoc,
) {
    let mut where_ = format!("{file}, markups[{mi}]");
    let Some(m) = markup.as_object() else {
        doc.issues.push(issue(
            path,
            Severity::Error,
            codes::BAD_LANDMARK_FILE,
            "",
            format!("{where_} is `{}`, not an object; skipped", show(markup)),
        ));
        return;
    };
    if let Some(name) = m
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        where_ = format!("{where_} (`{name}`)");
    }
    let points = m.get("controlPoints");
    let n_points = points.and_then(Value::as_array).map_or(0, Vec::len);
    let refused = |uid: &str, what: String| {
        issue(
            path,
            Severity::Error,
            codes::BAD_LANDMARK_FILE,
            uid,
            format!("{where_}{what}; its {n_points} control point(s) were not read"),
        )
    };
    let (mm_scale, ras) = match markup_frame(m) {
        Ok(frame) => frame,
        Err(what) => {
            doc.issues.push(refused("", what));
            return;
        }
    };
    let (uid, observer, problems) = image_reference(m, mm_scale.is_some(), tie);
    if !problems.is_empty() {
        let fix = if mm_scale.is_some() {
            String::new()
        } else {
            format!("; {MARKUP_FIX}")
        };
        doc.issues
            .push(refused(&uid, format!(": {}{fix}", problems.join("; "))));
        return;
    }
    let Some(list) = control_point_list(path, &where_, &uid, points, doc) else {
        return;
    };
    let mk = Markup {
        path,
        where_: &where_,
        uid: &uid,
        observer: &observer,
        mm_scale,
        ras,
    };
    for (ci, cp) in list.iter().enumerate() {
        mk.read_control_point(ci, cp, vocab, doc);
    }
}

/// The units and axes of a markup: the scale of its positions to mm (`None` for pixel
/// positions), and whether they are RAS (x and y negated to LPS). `Err` with what
/// refuses the whole markup, to follow its place in the message.
fn markup_frame(m: &serde_json::Map<String, Value>) -> Result<(Option<f64>, bool), String> {
    let kind = match m.get("type") {
        None => Some("Fiducial".to_string()),
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => None,
    };
    let is_point_list = kind.as_deref().is_some_and(|t| {
        let t: String = t.chars().filter(|c| !c.is_whitespace()).collect();
        t.eq_ignore_ascii_case("fiducial") || t.eq_ignore_ascii_case("pointlist")
    });
    if !is_point_list {
        let shown = m.get("type").map_or_else(String::new, show);
        return Err(format!(
            " has type {shown}; only point lists (`Fiducial`) carry landmarks"
        ));
    }

    // The units: pixels (with the `plumbline` image reference), or patient mm as Slicer
    // writes them (tied to an image by the landmark map or the file name).
    let units = m.get("coordinateUnits");
    let mm_scale = match units {
        _ if is_pixel_units(units) => None,
        None => Some(1.0),
        Some(Value::String(u)) if u == "mm" => Some(1.0),
        Some(Value::String(u)) if u == "um" => Some(0.001),
        Some(u) => {
            return Err(format!(
                ": `coordinateUnits` is {}, neither mm, um nor pixels",
                show(u)
            ));
        }
    };
    // LPS stays, RAS negates x and y (Slicer: "0" is RAS, "1" LPS; absent means LPS).
    let ras = match m.get("coordinateSystem") {
        None => false,
        Some(Value::String(c)) if c == "LPS" || c == "1" => false,
        Some(Value::String(c)) if c == "RAS" || c == "0" => true,
        Some(c) if mm_scale.is_some() => {
            return Err(format!(
                ": `coordinateSystem` is {}, neither LPS nor RAS",
                show(c)
            ));
        }
        Some(_) => false,
    };
    Ok((mm_scale, ras))
}

/// The image (SOP Instance UID) and reader of a markup's points, from its `plumbline`
/// member, else (for a markup in patient mm, `mm`) from `tie`, the landmark map's row or
/// the file name; with the problems that leave its points unread.
fn image_reference(
    m: &serde_json::Map<String, Value>,
    mm: bool,
    tie: Option<&(String, String)>,
) -> (String, String, Vec<String>) {
    let mut problems = Vec::new();
    let reference = m.get("plumbline");
    let uid = reference
        .and_then(|r| r.get("sop_instance_uid"))
        .and_then(Value::as_str)
        .map(str::trim)
        .or_else(|| {
            // Slicer's own files have no `plumbline` member: the map or the file name.
            (reference.is_none() && mm)
                .then(|| tie.map(|t| t.0.as_str()))
                .flatten()
        })
        .unwrap_or("");
    match reference {
        None if mm && uid.is_empty() => problems.push(
            "it is in patient mm and nothing ties it to an image: name the file after the \
             image's SOP Instance UID (`<uid>_lateral.mrk.json`) or list it in a \
             `--landmark-map` table (file,sop_instance_uid[,observer])"
                .to_string(),
        ),
        None if mm => {}
        None => problems.push("it has no `plumbline` image reference".to_string()),
        Some(r) if !r.is_object() => problems.push(format!(
            "its `plumbline` member is `{}`, not an object",
            show(r)
        )),
        Some(_) if uid.is_empty() => {
            problems.push("its `plumbline` object has no `sop_instance_uid` string".to_string())
        }
        Some(_) => {}
    }
    let observer = match reference.and_then(|r| r.get("observer")) {
        None if reference.is_none() => tie.map(|t| t.1.clone()).unwrap_or_default(),
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(other) => {
            problems.push(format!(
                "its `plumbline.observer` is `{}`, not a string",
                show(other)
            ));
            String::new()
        }
    };
    (uid.to_string(), observer, problems)
}

/// The `controlPoints` of a markup at `where_`, when there are some; else `None` and an
/// issue.
fn control_point_list<'v>(
    path: &Path,
    where_: &str,
    uid: &str,
    points: Option<&'v Value>,
    doc: &mut LandmarkDoc,
) -> Option<&'v Vec<Value>> {
    match points {
        Some(Value::Array(a)) if !a.is_empty() => Some(a),
        None | Some(Value::Array(_)) | Some(Value::Null) => {
            doc.issues.push(issue(
                path,
                Severity::Warning,
                codes::BAD_LANDMARK_FILE,
                uid,
                format!("{where_} has no control points"),
            ));
            None
        }
        Some(other) => {
            doc.issues.push(issue(
                path,
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                uid,
                format!(
                    "{where_}: `controlPoints` is `{}`, not an array; nothing read",
                    show(other)
                ),
            ));
            None
        }
    }
}

/// One markup whose points are being read: what they share.
struct Markup<'a> {
    path: &'a Path,
    /// The markup's place, for messages (`file, markups[0] (`lateral`)`).
    where_: &'a str,
    /// The image the points lie on.
    uid: &'a str,
    /// The reader.
    observer: &'a str,
    /// The scale of positions to mm; `None` for pixel positions.
    mm_scale: Option<f64>,
    /// Positions in RAS (x and y negated to LPS).
    ras: bool,
}

impl Markup<'_> {
    /// An issue about this markup's points.
    fn issue(&self, severity: Severity, code: &'static str, message: String) -> QcIssue {
        issue(self.path, severity, code, self.uid, message)
    }

    /// Reads control point `ci` into `doc`: a point, or issues.
    fn read_control_point(&self, ci: usize, cp: &Value, vocab: &Vocabulary, doc: &mut LandmarkDoc) {
        let mut at = format!("{}, controlPoints[{ci}]", self.where_);
        let Some(cp) = cp.as_object() else {
            doc.issues.push(self.issue(
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                format!("{at} is `{}`, not an object; skipped", show(cp)),
            ));
            return;
        };
        let label = cp.get("label").and_then(Value::as_str).unwrap_or("");
        at = format!("{at} (label `{label}`)");
        match cp.get("positionStatus") {
            None => {}
            Some(Value::String(s)) if s == "defined" => {}
            Some(status) => {
                doc.issues.push(self.issue(
                    Severity::Warning,
                    codes::BAD_LANDMARK_FILE,
                    format!(
                        "{at}: positionStatus is {}, so the point was not placed; only `defined` points are read; skipped",
                        show(status)
                    ),
                ));
                return;
            }
        }
        let landmark = vocab.text(label);
        if landmark.is_none() {
            doc.issues.push(self.issue(
                Severity::Error,
                codes::UNNAMED_POINT,
                format!(
                    "{at}: the label is not a landmark name (landmarks.md section 1, e.g. `L1_sup_ant`) nor a synonym in the pipeline's vocabulary; point skipped (rename it or add a synonym)"
                ),
            ));
        }
        let Some(xyz) = self.position(cp.get("position"), &at, doc) else {
            return;
        };
        let Some(landmark) = landmark else { return };
        let at = self.point(&xyz, &at, doc);
        doc.push_point(landmark, self.uid, self.observer, None, at);
    }

    /// A control point's `position`: two or three finite numbers; else `None` and an
    /// issue.
    fn position(&self, pos: Option<&Value>, at: &str, doc: &mut LandmarkDoc) -> Option<Vec<f64>> {
        let xyz: Option<Vec<f64>> = pos.and_then(Value::as_array).and_then(|a| {
            (a.len() == 2 || a.len() == 3)
                .then(|| a.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>())
                .flatten()
                .filter(|v| v.iter().all(|x| x.is_finite()))
        });
        if xyz.is_none() {
            let shown = pos.map_or_else(|| "missing".to_string(), |p| format!("`{}`", show(p)));
            doc.issues.push(self.issue(
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                format!("{at}: position is {shown}; expected [column, row, 0] in pixels (finite numbers); point skipped"),
            ));
        }
        xyz
    }

    /// The point at position `xyz`: in LPS mm for a markup in patient mm (placed on its
    /// image when joined, by `ItkGeometry::to_pixel`), else in pixels (a third value other
    /// than 0 is ignored, with a warning).
    fn point(&self, xyz: &[f64], at: &str, doc: &mut LandmarkDoc) -> Position {
        if let Some(scale) = self.mm_scale {
            let sign = if self.ras { -1.0 } else { 1.0 };
            let z = xyz.get(2).copied().unwrap_or(0.0);
            return Position::Lps([sign * xyz[0] * scale, sign * xyz[1] * scale, z * scale]);
        }
        if xyz.get(2).is_some_and(|&z| z != 0.0) {
            doc.issues.push(self.issue(
                Severity::Warning,
                codes::BAD_LANDMARK_FILE,
                format!("{at}: position has third value {}, not 0; ignored (pixel positions are [column, row, 0])", xyz[2]),
            ));
        }
        Position::Pixel([xyz[0], xyz[1]])
    }
}

/// The columns of a landmark CSV: canonical name, accepted names, required.
const CSV_COLUMNS: [(&str, &[&str], bool); 5] = [
    ("sop_instance_uid", &["sop_instance_uid", "image_uid"], true),
    ("landmark", &["landmark", "name"], true),
    ("column", &["column", "col"], true),
    ("row", &["row"], true),
    ("observer", &["observer"], false),
];

/// Reads a landmark CSV: header `sop_instance_uid,landmark,column,row[,observer]` (also accept the spec's spelling `image_uid,name,col,row[,observer]`).
///
/// See the [module documentation](self) for the accepted format.
pub fn read_landmark_csv(path: &Path, vocab: &Vocabulary) -> LandmarkDoc {
    let mut doc = new_doc(path);
    let file = path.display().to_string();
    let err = |message: String| issue(path, Severity::Error, codes::BAD_LANDMARK_FILE, "", message);
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            doc.issues.push(err(format!("cannot read {file}: {e}")));
            return doc;
        }
    };
    let text = match csv_text(&bytes) {
        Ok(t) => t,
        Err(line) => {
            doc.issues.push(err(format!(
                "{file} is not UTF-8 text (first invalid byte on line {line}); save it as \"CSV UTF-8\"; no point read"
            )));
            return doc;
        }
    };
    if text.trim().is_empty() {
        doc.issues
            .push(err(format!("{file} is empty; {CSV_EXPECTED}")));
        return doc;
    }
    let mut reader = csv_reader(text);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.trim().to_string()).collect(),
        Err(e) => {
            doc.issues.push(err(format!(
                "{file}: cannot parse the header row ({e}); no point read"
            )));
            return doc;
        }
    };
    let Some(columns) = csv_columns(path, &file, &headers, &mut doc) else {
        return doc;
    };
    let rows = CsvRows {
        path,
        file: &file,
        headers: &headers,
        columns,
    };
    let mut lines = LineCounter::new(text);
    for result in reader.records() {
        match result {
            Ok(record) => {
                let line = lines.line(record.position());
                rows.row(&record, line, vocab, &mut doc);
            }
            Err(e) => {
                let line = lines.line(e.position());
                doc.issues.push(err(format!(
                    "{file}, line {line}: not readable as CSV ({e}); row skipped"
                )));
            }
        }
    }
    doc
}

/// What a landmark CSV's header must hold, for messages.
const CSV_EXPECTED: &str = "a landmark CSV needs the header `sop_instance_uid,landmark,column,row` (or `image_uid,name,col,row`), optionally `observer`";

/// Where the columns of a landmark CSV are (0-based).
struct CsvColumns {
    uid: usize,
    name: usize,
    col: usize,
    row: usize,
    observer: Option<usize>,
}

/// Finds the [`CSV_COLUMNS`] in a landmark CSV's header row; other columns are listed in
/// QC as ignored. `None`, and an issue, when a required column is missing or given twice.
fn csv_columns(
    path: &Path,
    file: &str,
    headers: &[String],
    doc: &mut LandmarkDoc,
) -> Option<CsvColumns> {
    let err = |message: String| issue(path, Severity::Error, codes::BAD_LANDMARK_FILE, "", message);
    let mut index: [Option<usize>; 5] = [None; 5];
    let mut missing = Vec::new();
    for (k, (canonical, names, required)) in CSV_COLUMNS.iter().enumerate() {
        let found: Vec<usize> = (0..headers.len())
            .filter(|&i| names.iter().any(|n| headers[i].eq_ignore_ascii_case(n)))
            .collect();
        match found[..] {
            [] if *required => missing.push(format!("`{canonical}`")),
            [] => {}
            [i] => index[k] = Some(i),
            [a, b, ..] => {
                doc.issues.push(err(format!(
                    "{file}: columns `{}` and `{}` both give `{canonical}`; keep one; no point read",
                    headers[a], headers[b]
                )));
                return None;
            }
        }
    }
    if !missing.is_empty() {
        let found = headers
            .iter()
            .map(|h| format!("`{h}`"))
            .collect::<Vec<_>>()
            .join(", ");
        doc.issues.push(err(format!(
            "{file}: the header row has no column {}; {CSV_EXPECTED}; found {found}{}; no point read",
            missing.join(", "),
            separator_hint(headers)
        )));
        return None;
    }
    for (i, h) in headers.iter().enumerate() {
        if !index.contains(&Some(i)) {
            doc.issues.push(issue(
                path,
                Severity::Warning,
                codes::BAD_LANDMARK_FILE,
                "",
                format!("{file}: column `{h}` is not a landmark CSV column; ignored"),
            ));
        }
    }
    // Every required column was found above.
    let [Some(uid), Some(name), Some(col), Some(row), observer] = index else {
        return None;
    };
    Some(CsvColumns {
        uid,
        name,
        col,
        row,
        observer,
    })
}

/// The rows of one landmark CSV, as they are read.
struct CsvRows<'a> {
    path: &'a Path,
    file: &'a str,
    headers: &'a [String],
    columns: CsvColumns,
}

impl CsvRows<'_> {
    /// Reads the record that starts on `line` into `doc`: a point, or issues.
    fn row(
        &self,
        record: &csv::StringRecord,
        line: u64,
        vocab: &Vocabulary,
        doc: &mut LandmarkDoc,
    ) {
        let (path, file, c) = (self.path, self.file, &self.columns);
        if record.iter().all(|f| f.trim().is_empty()) {
            return;
        }
        let uid = record.get(c.uid).unwrap_or("").trim();
        if record.len() != self.headers.len() {
            doc.issues.push(issue(
                path,
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                uid,
                format!(
                    "{file}, line {line}: {} fields but the header has {} columns; row skipped",
                    record.len(),
                    self.headers.len()
                ),
            ));
            return;
        }
        let Some((landmark, col, row)) = self.values(record, line, uid, vocab, doc) else {
            return;
        };
        let observer = c
            .observer
            .map_or("", |o| record.get(o).unwrap_or("").trim());
        doc.push_point(landmark, uid, observer, None, Position::Pixel([col, row]));
    }

    /// The landmark, column and row of a record with the right number of fields (its
    /// image UID is `uid`); `None` and an issue per bad cell when any is bad.
    fn values(
        &self,
        record: &csv::StringRecord,
        line: u64,
        uid: &str,
        vocab: &Vocabulary,
        doc: &mut LandmarkDoc,
    ) -> Option<(Landmark, f64, f64)> {
        let (path, file, c) = (self.path, self.file, &self.columns);
        let cell = |c: usize| record.get(c).unwrap_or("").trim();
        let mut ok = true;
        let mut bad = |code: &'static str, c: usize, expected: &str| {
            ok = false;
            doc.issues.push(issue(
                path,
                Severity::Error,
                code,
                uid,
                format!(
                    "{file}, line {line}: column `{}` is `{}`; expected {expected}; row skipped",
                    self.headers[c],
                    record.get(c).unwrap_or("")
                ),
            ));
        };
        if uid.is_empty() {
            bad(
                codes::BAD_LANDMARK_FILE,
                c.uid,
                "the SOP Instance UID of the radiograph",
            );
        }
        let landmark = vocab.text(cell(c.name));
        if landmark.is_none() {
            bad(
                codes::UNNAMED_POINT,
                c.name,
                "a landmark name (landmarks.md section 1, e.g. `L1_sup_ant`) or a synonym in the pipeline's vocabulary",
            );
        }
        let number = |c: usize| cell(c).parse::<f64>().ok().filter(|x| x.is_finite());
        let (col, row) = (number(c.col), number(c.row));
        if col.is_none() {
            bad(
                codes::BAD_LANDMARK_FILE,
                c.col,
                "a finite number of pixels, e.g. 812.5",
            );
        }
        if row.is_none() {
            bad(
                codes::BAD_LANDMARK_FILE,
                c.row,
                "a finite number of pixels, e.g. 3120.5",
            );
        }
        if !ok {
            return None;
        }
        Some((landmark?, col?, row?))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use plumbline_geometry::Landmark;

    use super::*;

    fn data(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name)
    }

    /// Writes `contents` to a fresh file in the system temp folder.
    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plumbline-markups-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    fn lm(s: &str) -> Landmark {
        s.parse().unwrap()
    }

    fn summary(doc: &LandmarkDoc) -> Vec<(String, String, f64, f64, String)> {
        doc.points
            .iter()
            .map(|p| {
                let (col, row) = p.pixel().expect("pixels");
                (
                    doc.image_uid(p).to_string(),
                    p.landmark.to_string(),
                    col,
                    row,
                    doc.observer(p).to_string(),
                )
            })
            .collect()
    }

    fn s(v: &str) -> String {
        v.to_string()
    }

    #[test]
    fn csv_with_observer() {
        let path = data("landmarks.csv");
        let doc = read_landmark_csv(&path, &Vocabulary::default());
        assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
        assert_eq!(doc.path, path);
        assert_eq!(
            summary(&doc),
            [
                (
                    s("1.2.3.10"),
                    s("C7_centroid"),
                    812.5,
                    410.0,
                    s("Reader^One")
                ),
                (
                    s("1.2.3.10"),
                    s("S1_sup_post"),
                    905.0,
                    3120.5,
                    s("Reader^One")
                ),
                (
                    s("1.2.3.11"),
                    s("FH_left"),
                    1200.25,
                    2900.0,
                    s("Reader^Two")
                ),
            ]
        );
        assert_eq!(
            (doc.path.as_path(), doc.sop_instance_uid.as_str()),
            (path.as_path(), "")
        );
        for p in &doc.points {
            assert_eq!(p.frame, None);
        }
    }

    #[test]
    fn csv_spec_header_without_observer_and_synonym() {
        let mut vocab = Vocabulary::default();
        vocab.add_text("Sacral plateau posterior", lm("S1_sup_post"));
        let doc = read_landmark_csv(&data("landmarks_spec_header.csv"), &vocab);
        assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
        assert_eq!(
            summary(&doc),
            [
                (s("1.2.3.10"), s("L1_sup_ant"), 100.0, 200.0, s("")),
                (s("1.2.3.10"), s("S1_sup_post"), 101.5, 1e3, s("")),
            ]
        );
    }

    #[test]
    fn csv_bad_rows() {
        let path = temp_file(
            "bad.csv",
            "\u{feff}Image_UID,Name,Col,Row,Observer\r\n\
             1.2.3,L1_sup_ant,10,20,A\r\n\
             1.2.3,L2_sup_ant,ten,20,A\r\n\
             1.2.3,L3_sup_ant,10,NaN,A\r\n\
             1.2.3,Sacrum,10,20,A\r\n\
             ,L4_sup_ant,10,20,A\r\n\
             1.2.3,L5_sup_ant,10\r\n\
             ,,,,\r\n\
             1.2.3,\"L5_inf_ant\",-3,1e2,\r\n",
        );
        let doc = read_landmark_csv(&path, &Vocabulary::default());
        assert_eq!(
            summary(&doc),
            [
                (s("1.2.3"), s("L1_sup_ant"), 10.0, 20.0, s("A")),
                (s("1.2.3"), s("L5_inf_ant"), -3.0, 100.0, s("")),
            ]
        );
        let file = path.display().to_string();
        let expect = [
            (codes::BAD_LANDMARK_FILE, 3, "column `Col` is `ten`"),
            (codes::BAD_LANDMARK_FILE, 4, "column `Row` is `NaN`"),
            (codes::UNNAMED_POINT, 5, "column `Name` is `Sacrum`"),
            (codes::BAD_LANDMARK_FILE, 6, "column `Image_UID` is ``"),
            (codes::BAD_LANDMARK_FILE, 7, "3 fields but the header has 5"),
        ];
        assert_eq!(doc.issues.len(), expect.len(), "{:#?}", doc.issues);
        for (i, (code, line, text)) in doc.issues.iter().zip(expect) {
            assert_eq!(
                (i.code, i.severity),
                (code, Severity::Error),
                "{}",
                i.message
            );
            assert_eq!(i.path, path);
            assert!(
                i.message.starts_with(&format!("{file}, line {line}: ")),
                "{}",
                i.message
            );
            assert!(i.message.contains(text), "{}", i.message);
        }
        assert_eq!(doc.issues[0].sop_instance_uid, "1.2.3");
    }

    #[test]
    fn csv_missing_column_gives_one_issue() {
        let path = temp_file(
            "nocol.csv",
            "sop_instance_uid,landmark,column,rows\n1.2.3,L1_sup_ant,1,2,3\n",
        );
        let doc = read_landmark_csv(&path, &Vocabulary::default());
        assert!(doc.points.is_empty());
        assert_eq!(doc.issues.len(), 1, "{:#?}", doc.issues);
        let m = &doc.issues[0].message;
        assert_eq!(doc.issues[0].code, codes::BAD_LANDMARK_FILE);
        assert!(
            m.contains("no column `row`") && m.contains(&path.display().to_string()),
            "{m}"
        );

        let path = temp_file("semi.csv", "image_uid;name;col;row\n1.2.3;L1_sup_ant;1;2\n");
        let doc = read_landmark_csv(&path, &Vocabulary::default());
        assert_eq!(doc.issues.len(), 1);
        assert!(doc.issues[0].message.contains("separated by semicolons"));
    }

    #[test]
    fn csv_file_level_problems() {
        let v = Vocabulary::default();
        let doc = read_landmark_csv(Path::new("/nonexistent/landmarks.csv"), &v);
        assert_eq!(doc.issues.len(), 1);
        assert!(doc.issues[0].message.contains("/nonexistent/landmarks.csv"));

        let doc = read_landmark_csv(&temp_file("empty.csv", ""), &v);
        assert_eq!(doc.issues.len(), 1);

        let p = temp_file("both.csv", "image_uid,sop_instance_uid,name,col,row\n");
        let doc = read_landmark_csv(&p, &v);
        assert_eq!(doc.issues.len(), 1);
        assert!(
            doc.issues[0]
                .message
                .contains("both give `sop_instance_uid`")
        );

        let p = temp_file(
            "extra.csv",
            "image_uid,name,col,row,comment\n1.2,C7_centroid,1,2,x\n",
        );
        let doc = read_landmark_csv(&p, &v);
        assert_eq!(doc.points.len(), 1);
        assert_eq!(doc.issues.len(), 1);
        assert_eq!(doc.issues[0].severity, Severity::Warning);
        assert!(doc.issues[0].message.contains("column `comment`"));

        let dir = std::env::temp_dir().join(format!("plumbline-markups-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("latin1.csv");
        std::fs::write(
            &p,
            b"image_uid,name,col,row\n1.2,C7_centroid,1,2\n1.2,\xe9,1,2\n",
        )
        .unwrap();
        let doc = read_landmark_csv(&p, &v);
        assert!(doc.points.is_empty());
        assert!(
            doc.issues[0].message.contains("line 3"),
            "{}",
            doc.issues[0].message
        );
    }

    #[test]
    fn slicer_two_markups_on_two_images() {
        let path = data("two_images.mrk.json");
        let doc = read_slicer_markups(&path, &Vocabulary::default());
        assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
        assert_eq!(doc.path, path);
        assert_eq!(
            summary(&doc),
            [
                (
                    s("1.2.826.0.1.3680043.8.498.1"),
                    s("C7_centroid"),
                    812.5,
                    410.0,
                    s("Reader^One")
                ),
                (
                    s("1.2.826.0.1.3680043.8.498.1"),
                    s("S1_sup_post"),
                    905.0,
                    3120.5,
                    s("Reader^One")
                ),
                (
                    s("1.2.826.0.1.3680043.8.498.2"),
                    s("S1_sup_left"),
                    700.0,
                    3000.0,
                    s("")
                ),
                (
                    s("1.2.826.0.1.3680043.8.498.2"),
                    s("FH_right"),
                    400.0,
                    3300.0,
                    s("")
                ),
            ]
        );
        assert_eq!(
            (doc.path.as_path(), doc.sop_instance_uid.as_str()),
            (path.as_path(), "")
        );
        for p in &doc.points {
            assert_eq!(p.frame, None);
        }
    }

    /// The JSON in the module documentation is a readable file.
    #[test]
    fn module_doc_example_reads() {
        let src = include_str!("markups.rs");
        let json: String = src
            .lines()
            .skip_while(|l| *l != "//! ```json")
            .skip(1)
            .take_while(|l| *l != "//! ```")
            .map(|l| l.trim_start_matches("//!").trim_start())
            .collect::<Vec<_>>()
            .join("\n");
        let doc = read_slicer_markups(&temp_file("doc.mrk.json", &json), &Vocabulary::default());
        assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
        assert_eq!(doc.points.len(), 2);
    }

    fn markup_json(markup: &str) -> String {
        format!(
            r#"{{"@schema": "https://raw.githubusercontent.com/slicer/slicer/main/Modules/Loadable/Markups/Resources/Schema/markups-schema-v1.0.3.json#", "markups": [{markup}]}}"#
        )
    }

    #[test]
    fn slicer_mm_files_are_tied_by_name_or_map_and_kept_in_lps() {
        let m = |system: &str, units: &str| {
            markup_json(&format!(
                r#"{{"type": "Fiducial", "coordinateSystem": "{system}", "coordinateUnits": "{units}",
                    "controlPoints": [{{"id": "1", "label": "C7_centroid", "position": [10.0, -20.5, 0.25], "positionStatus": "defined"}}]}}"#
            ))
        };
        // Named by the image UID: LPS kept, RAS x and y negated, um scaled to mm.
        for (system, units, want) in [
            ("LPS", "mm", [10.0, -20.5, 0.25]),
            ("RAS", "mm", [-10.0, 20.5, 0.25]),
            ("LPS", "um", [0.01, -0.0205, 0.00025]),
        ] {
            let p = temp_file("1.2.826.0.1.99_lateral.mrk.json", &m(system, units));
            let doc = read_slicer_markups(&p, &Vocabulary::default());
            assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
            let pt = &doc.points[0];
            assert_eq!(doc.image_uid(pt), "1.2.826.0.1.99");
            assert_eq!(doc.observer(pt), "");
            assert_eq!(pt.pixel(), None);
            let got = pt.lps().unwrap();
            for k in 0..3 {
                assert!(
                    (got[k] - want[k]).abs() < 1e-15,
                    "{system} {units}: {got:?}"
                );
            }
        }
        // Any name, through the map (which also gives the reader).
        let p = temp_file("reader.mrk.json", &m("LPS", "mm"));
        let mut map = LandmarkMap::new();
        map.insert(
            "reader.mrk.json".into(),
            ("1.2.3.4".into(), "Reader^One".into()),
        );
        let doc = read_slicer_markups_with(&p, &Vocabulary::default(), &map);
        assert!(doc.issues.is_empty(), "{:#?}", doc.issues);
        assert_eq!(
            (doc.image_uid(&doc.points[0]), doc.observer(&doc.points[0])),
            ("1.2.3.4", "Reader^One")
        );
        // An unknown coordinate system is refused, not guessed (Slicer clamps it to RAS).
        let p = temp_file("1.2.826.0.1.99_x.mrk.json", &m("XYZ", "mm"));
        let doc = read_slicer_markups(&p, &Vocabulary::default());
        assert!(doc.points.is_empty());
        assert!(
            doc.issues[0]
                .message
                .contains("`coordinateSystem` is \"XYZ\", neither LPS nor RAS"),
            "{:#?}",
            doc.issues
        );
        // UID prefixes: digits and dots, with a dot.
        assert_eq!(
            uid_prefix(Path::new("a/2.25.7_lps.mrk.json")).as_deref(),
            Some("2.25.7")
        );
        assert_eq!(
            uid_prefix(Path::new("2.25.7.mrk.json")).as_deref(),
            Some("2.25.7")
        );
        assert_eq!(uid_prefix(Path::new("12_lps.mrk.json")), None);
        assert_eq!(uid_prefix(Path::new("lateral.mrk.json")), None);
    }

    #[test]
    fn landmark_maps_are_checked() {
        let p = temp_file(
            "map.csv",
            "file,sop_instance_uid,observer\na.mrk.json,1.2.3,R^One\nb.mrk.json,1.2.4,\n",
        );
        let map = read_landmark_map(&p).unwrap();
        assert_eq!(
            map["a.mrk.json"],
            ("1.2.3".to_string(), "R^One".to_string())
        );
        assert_eq!(map["b.mrk.json"], ("1.2.4".to_string(), String::new()));
        let p = temp_file("map2.csv", "name,uid\na,1.2\n");
        let e = read_landmark_map(&p).unwrap_err();
        assert!(e.contains("file,sop_instance_uid[,observer]"), "{e}");
        let p = temp_file("map3.csv", "file,sop_instance_uid\na,1.2\na,1.3\n");
        let e = read_landmark_map(&p).unwrap_err();
        assert!(e.contains("line 3") && e.contains("mapped twice"), "{e}");
    }

    #[test]
    fn slicer_without_image_reference() {
        let p = temp_file(
            "noref.mrk.json",
            &markup_json(
                r#"{"type": "Fiducial", "name": "F", "coordinateSystem": "LPS", "coordinateUnits": "mm",
                    "controlPoints": [{"id": "1", "label": "C7_centroid", "position": [1.0, 2.0, 3.0], "positionStatus": "defined"}]},
                   {"type": "Fiducial", "coordinateUnits": "pixel", "plumbline": {"observer": "X"}, "controlPoints": []}"#,
            ),
        );
        let doc = read_slicer_markups(&p, &Vocabulary::default());
        assert!(doc.points.is_empty());
        assert_eq!(doc.issues.len(), 2, "{:#?}", doc.issues);
        let m = &doc.issues[0].message;
        assert_eq!(doc.issues[0].code, codes::BAD_LANDMARK_FILE);
        assert!(m.contains("markups[0] (`F`)"), "{m}");
        assert!(
            m.contains("in patient mm and nothing ties it to an image")
                && m.contains("--landmark-map"),
            "{m}"
        );
        assert!(m.contains("1 control point(s) were not read"), "{m}");
        let m = &doc.issues[1].message;
        assert!(
            m.contains("markups[1]: its `plumbline` object has no `sop_instance_uid`"),
            "{m}"
        );
        assert!(!m.contains("coordinateUnits` is"), "{m}");
    }

    #[test]
    fn slicer_not_json() {
        let p = temp_file("broken.mrk.json", "{\"markups\": [ {\"type\": ");
        let doc = read_slicer_markups(&p, &Vocabulary::default());
        assert!(doc.points.is_empty());
        assert_eq!(doc.issues.len(), 1);
        assert!(
            doc.issues[0].message.contains("is not valid JSON"),
            "{}",
            doc.issues[0].message
        );
        assert!(
            doc.issues[0].message.contains("line 1"),
            "{}",
            doc.issues[0].message
        );

        let p = temp_file("other.json", r#"{"hello": 1}"#);
        let doc = read_slicer_markups(&p, &Vocabulary::default());
        assert_eq!(doc.issues.len(), 1);
        assert!(doc.issues[0].message.contains("no `markups` array"));

        let doc = read_slicer_markups(Path::new("/nonexistent/x.mrk.json"), &Vocabulary::default());
        assert_eq!(doc.issues.len(), 1);
    }

    #[test]
    fn slicer_point_problems() {
        let p = temp_file(
            "points.mrk.json",
            &markup_json(
                r#"{"type": "Fiducial", "coordinateUnits": ["{pixels}", "UCUM", "pixels"],
                    "plumbline": {"sop_instance_uid": " 1.2.3 "},
                    "controlPoints": [
                      {"id": "1", "label": "C7_centroid", "position": [1.0, 2.0, 0.0], "positionStatus": "undefined"},
                      {"id": "2", "label": "C7_centroid", "position": [1.0, 2.0, 0.0], "positionStatus": "preview"},
                      {"id": "3", "label": "F-1", "position": [1.0, 2.0, 0.0]},
                      {"id": "4", "label": "T1_centroid", "position": [1.0, null, 0.0]},
                      {"id": "5", "label": "T2_centroid"},
                      {"id": "6", "label": "T3_centroid", "position": [5, 6, 7]},
                      {"id": "7", "label": "T4_centroid", "position": [8.5, 9.5]},
                      {"id": "8", "label": "T5_centroid", "position": [1, 2, 3, 4]},
                      7
                    ]}"#,
            ),
        );
        let doc = read_slicer_markups(&p, &Vocabulary::default());
        assert_eq!(
            summary(&doc),
            [
                (s("1.2.3"), s("T3_centroid"), 5.0, 6.0, s("")),
                (s("1.2.3"), s("T4_centroid"), 8.5, 9.5, s("")),
            ]
        );
        let expect = [
            (
                Severity::Warning,
                codes::BAD_LANDMARK_FILE,
                "controlPoints[0] (label `C7_centroid`): positionStatus is \"undefined\"",
            ),
            (
                Severity::Warning,
                codes::BAD_LANDMARK_FILE,
                "controlPoints[1] (label `C7_centroid`): positionStatus is \"preview\"",
            ),
            (
                Severity::Error,
                codes::UNNAMED_POINT,
                "controlPoints[2] (label `F-1`): the label is not a landmark name",
            ),
            (
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                "controlPoints[3] (label `T1_centroid`): position is `[1.0,null,0.0]`",
            ),
            (
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                "controlPoints[4] (label `T2_centroid`): position is missing",
            ),
            (
                Severity::Warning,
                codes::BAD_LANDMARK_FILE,
                "controlPoints[5] (label `T3_centroid`): position has third value 7",
            ),
            (
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                "controlPoints[7] (label `T5_centroid`): position is `[1,2,3,4]`",
            ),
            (
                Severity::Error,
                codes::BAD_LANDMARK_FILE,
                "controlPoints[8] is `7`, not an object",
            ),
        ];
        assert_eq!(doc.issues.len(), expect.len(), "{:#?}", doc.issues);
        for (i, (sev, code, text)) in doc.issues.iter().zip(expect) {
            assert_eq!((i.severity, i.code), (sev, code), "{}", i.message);
            assert!(i.message.contains(text), "{}", i.message);
            assert_eq!(i.sop_instance_uid, "1.2.3");
        }
    }

    #[test]
    fn slicer_other_markup_types() {
        let p = temp_file(
            "line.mrk.json",
            &markup_json(
                r#"{"type": "Line", "coordinateUnits": "pixels", "plumbline": {"sop_instance_uid": "1.2"},
                    "controlPoints": [{"label": "C7_centroid", "position": [1, 2, 0]}]},
                   {"coordinateUnits": "{pixels}", "plumbline": {"sop_instance_uid": "1.2"},
                    "controlPoints": [{"label": "C7_centroid", "position": [1, 2, 0]}]},
                   {"type": "Point list", "coordinateUnits": "Pixel", "plumbline": {"sop_instance_uid": "1.2"}}"#,
            ),
        );
        let doc = read_slicer_markups(&p, &Vocabulary::default());
        assert_eq!(doc.points.len(), 1);
        assert_eq!(doc.issues.len(), 2, "{:#?}", doc.issues);
        assert!(doc.issues[0].message.contains("type \"Line\""));
        assert_eq!(doc.issues[1].severity, Severity::Warning);
        assert!(
            doc.issues[1]
                .message
                .contains("markups[2] has no control points")
        );
    }

    #[test]
    fn slicer_missing_schema_is_a_warning() {
        let p = temp_file(
            "noschema.mrk.json",
            r#"{"markups": [{"type": "Fiducial", "coordinateUnits": "pixel",
                 "plumbline": {"sop_instance_uid": "1.2", "observer": "R"},
                 "controlPoints": [{"label": "FH_left", "position": [1, 2, 0]}]}]}"#,
        );
        let doc = read_slicer_markups(&p, &Vocabulary::default());
        assert_eq!(doc.points.len(), 1);
        assert_eq!(doc.issues.len(), 1);
        assert_eq!(doc.issues[0].severity, Severity::Warning);
    }
}
