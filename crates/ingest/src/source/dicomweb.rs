//! A DICOMweb server (PS3.18) as a [`Source`]: the studies of the clinical table's
//! patients, found by QIDO-RS, and their instances, read through a cache folder.
//!
//! [`DicomWeb::discover`] asks, for each patient, `studies?PatientID=..&StudyDate=..`
//! (over the span of the pipeline's windows, [`study_date_span`];
//! [`Client::search_studies`]), then the series of each study
//! and the instances of each series. Every answer is checked against what was asked
//! (Orthanc 1.10.1 answers an unknown key with every study); what does not match is
//! dropped with a `dicomweb_bad_answer` QC warning, and a search that fails after its
//! retries is a `dicomweb_failed` QC error naming the patient, study or series; the batch
//! goes on. Credentials refused (HTTP 401/403) or a base URL without QIDO-RS stop the run
//! with an error that says what to check.
//!
//! Each instance becomes one entry, a file in the cache folder named by its SOP Instance
//! UID (an instance UID names immutable content, so a file once fetched is never fetched
//! again, by a rerun or a resumed run):
//!
//! - a structured report (SOP Class `1.2.840.10008.5.1.4.1.1.88.*`) is retrieved whole by
//!   WADO-RS when the scan opens it (the SR `metadata` answer is about 5x bigger and 35x
//!   slower on Orthanc 1.10.1), and read by the same reader as a file in a folder;
//! - any other instance (an image) is written at discovery as a header-only Part 10 file
//!   from its series' WADO-RS `metadata` (pixel data, and any bulk data given by
//!   BulkDataURI, left out); its pixels are fetched only by [`Source::with_pixels`], for
//!   the overlay stage, one at a time, into a temporary file removed after the drawing.
//!
//! Files are written to a temporary name and renamed, so a run killed mid-write leaves no
//! half file behind. Requests in flight are bounded by the run's threads (one per thread).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use chrono::NaiveDate;
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use rayon::prelude::*;
use serde_json::{Value, json};

use super::{LocalFile, Source};
use crate::dicomweb::{Checked, Client, DicomWebError, Instance, Rejected};
use crate::qc::codes;
use crate::scan::ScanError;
use crate::{QcIssue, Severity};

/// The UID prefix of every structured report SOP class (PS3.4 B.5).
const SR_CLASS_PREFIX: &str = "1.2.840.10008.5.1.4.1.1.88.";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Plumbline's implementation class UID, in the meta group of the header files it writes.
const IMPLEMENTATION_CLASS_UID: &str = "2.25.150148393101238372858412212520381052741";

/// What to search for one patient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatientQuery {
    /// PatientID (0010,0020).
    pub patient_id: String,
    /// StudyDate ranges, inclusive, one request each ([`study_date_span`] gives one);
    /// every study of the patient when empty.
    pub date_ranges: Vec<(NaiveDate, NaiveDate)>,
}

/// The StudyDate range to search for a patient operated on `surgery_day` (days since
/// 1970-01-01, [`crate::clinical::date_of_days`]) under the pipeline's `windows`: from
/// the first day of the earliest window to the last day of the latest (a window whose
/// `to` is not inside ends the day before). `None` (every study of the patient) when a
/// window is not anchored to surgery or the patient has no surgery date: then every
/// study may belong to a timepoint.
///
/// One range, not one per window: one QIDO-RS request per patient (Orthanc 1.10.1's
/// DICOMweb plugin spends about 60 ms per study it answers, per request, and answers a
/// list of ranges with nothing), and a study between two windows is found and listed in
/// QC as outside every window, as it is in a folder run. A study outside the span is
/// not found, even when it carries a `ClinicalTrialTimePointID` that would have
/// selected it in a folder run.
///
/// ```
/// use chrono::NaiveDate;
/// use plumbline_ingest::group::{Pick, Window};
/// use plumbline_ingest::source::dicomweb::study_date_span;
/// let w = |from, to, to_inclusive| Window {
///     name: String::new(), from, to, to_inclusive, pick: Pick::Latest, anchored: true,
/// };
/// let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
/// // Surgery on 2021-06-03: preop [-180, 0), postop [0, 30], m3 [60, 120].
/// let surgery = (day(2021, 6, 3) - day(1970, 1, 1)).num_days();
/// let windows = [w(60, 120, true), w(-180, 0, false), w(0, 30, true)];
/// assert_eq!(
///     study_date_span(Some(surgery), &windows),
///     Some((day(2020, 12, 5), day(2021, 10, 1)))
/// );
/// // m3 ending before day 120: the span ends a day earlier.
/// let windows = [w(-180, 0, false), w(60, 120, false)];
/// assert_eq!(
///     study_date_span(Some(surgery), &windows),
///     Some((day(2020, 12, 5), day(2021, 9, 30)))
/// );
/// assert_eq!(study_date_span(None, &windows), None);
/// ```
pub fn study_date_span(
    surgery_day: Option<i64>,
    windows: &[crate::group::Window],
) -> Option<(NaiveDate, NaiveDate)> {
    let surgery = surgery_day?;
    if windows.iter().any(|w| !w.anchored) {
        return None;
    }
    let first = windows.iter().map(|w| w.from).min()?;
    let last = windows
        .iter()
        .map(|w| w.to - i64::from(!w.to_inclusive))
        .max()?;
    if first > last {
        return None;
    }
    Some((
        crate::clinical::date_of_days(surgery + first)?,
        crate::clinical::date_of_days(surgery + last)?,
    ))
}

/// What a DICOMweb source found and fetched, for `run.json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DicomWebStats {
    /// Patients searched.
    pub patients: usize,
    /// Studies found (answers that matched the query).
    pub studies: usize,
    /// Series found.
    pub series: usize,
    /// Instances found.
    pub instances: usize,
    /// Instances fetched in this run (SRs retrieved, image headers written).
    pub fetched: usize,
    /// Instances found in the cache from an earlier run.
    pub reused: usize,
    /// Bytes of answers received.
    pub bytes: u64,
}

/// Where an entry's instance lives on the server.
#[derive(Clone, Debug)]
struct Locator {
    study: String,
    series: String,
    sop: String,
    sr: bool,
}

/// A DICOMweb server as a source of files ([`Source`]); see the module documentation.
#[derive(Debug)]
pub struct DicomWeb {
    client: Client,
    cache: PathBuf,
    entries: Vec<PathBuf>,
    issues: Vec<QcIssue>,
    locators: HashMap<PathBuf, Locator>,
    stats: DicomWebStats,
    fetched: AtomicUsize,
    reused: AtomicUsize,
    temporary: AtomicU64,
    one_image: Mutex<()>,
}

/// What one patient's search gave.
#[derive(Default)]
struct Found {
    studies: usize,
    series: usize,
    instances: Vec<(PathBuf, Locator)>,
    fetched: usize,
    reused: usize,
    issues: Vec<QcIssue>,
}

impl DicomWeb {
    /// Searches the server for every patient of `queries` (in parallel, one request per
    /// thread) and writes the image headers not yet in `cache` (a folder Plumbline owns,
    /// created when missing). `on_patient` is called after each patient with the number
    /// of studies found for it, from any thread.
    ///
    /// An error only when the server refuses the credentials, has no QIDO-RS service at
    /// the URL given, or cannot be reached for the first patient's search; every other
    /// failure is a QC issue of the source.
    pub fn discover(
        client: Client,
        cache: &Path,
        queries: &[PatientQuery],
        on_patient: &(dyn Fn(usize) + Sync),
    ) -> Result<DicomWeb, DicomWebError> {
        std::fs::create_dir_all(cache).map_err(|e| DicomWebError::Request {
            url: cache.display().to_string(),
            message: format!("cannot create the DICOMweb cache folder: {e}"),
        })?;
        // The first patient alone: refused credentials stop the run after one request,
        // not one per patient.
        let mut found = Vec::with_capacity(queries.len());
        if let Some(first) = queries.first() {
            let f = search_patient(&client, cache, first, true)?;
            on_patient(f.studies);
            found.push(f);
        }
        let rest: Vec<Result<Found, DicomWebError>> = queries
            .get(1..)
            .unwrap_or_default()
            .par_iter()
            .with_max_len(1)
            .map(|q| {
                let f = search_patient(&client, cache, q, false);
                on_patient(f.as_ref().map_or(0, |f| f.studies));
                f
            })
            .collect();
        for f in rest {
            found.push(f?);
        }
        let mut stats = DicomWebStats {
            patients: queries.len(),
            ..DicomWebStats::default()
        };
        let mut locators = HashMap::new();
        let mut issues = Vec::new();
        let (mut fetched, mut reused) = (0, 0);
        for f in found {
            stats.studies += f.studies;
            stats.series += f.series;
            fetched += f.fetched;
            reused += f.reused;
            issues.extend(f.issues);
            for (path, locator) in f.instances {
                locators.entry(path).or_insert(locator);
            }
        }
        stats.instances = locators.len();
        let mut entries: Vec<PathBuf> = locators.keys().cloned().collect();
        entries.sort();
        Ok(DicomWeb {
            client,
            cache: cache.to_path_buf(),
            entries,
            issues,
            locators,
            stats,
            fetched: AtomicUsize::new(fetched),
            reused: AtomicUsize::new(reused),
            temporary: AtomicU64::new(0),
            one_image: Mutex::new(()),
        })
    }

    /// What was found and fetched so far.
    pub fn stats(&self) -> DicomWebStats {
        DicomWebStats {
            fetched: self.fetched.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            bytes: self.client.bytes_received(),
            ..self.stats
        }
    }

    /// The client, for STOW-RS and the byte counter.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn locator(&self, path: &Path) -> std::io::Result<&Locator> {
        self.locators.get(path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} is not an instance of this DICOMweb source",
                    path.display()
                ),
            )
        })
    }
}

impl Source for DicomWeb {
    /// The base URL (it never holds credentials: [`Client::new`] refuses user info).
    fn name(&self) -> String {
        self.client.base_url().to_string()
    }

    fn list(&self) -> Result<(Vec<PathBuf>, Vec<QcIssue>), ScanError> {
        Ok((self.entries.clone(), self.issues.clone()))
    }

    /// The cached file; an SR not cached yet is retrieved first.
    fn open(&self, entry: &Path) -> std::io::Result<PathBuf> {
        let at = self.locator(entry)?;
        if entry.is_file() {
            if at.sr {
                // Image headers were counted at discovery.
                self.reused.fetch_add(1, Ordering::Relaxed);
            }
            return Ok(entry.to_path_buf());
        }
        let bytes = self
            .client
            .retrieve_instance(&at.study, &at.series, &at.sop)
            .map_err(std::io::Error::other)?;
        write_atomically(entry, &bytes)?;
        self.fetched.fetch_add(1, Ordering::Relaxed);
        Ok(entry.to_path_buf())
    }

    /// A cached file's length; an SR not fetched yet counts as big (it is fetched and
    /// read first, so that no thread is left alone with one at the end).
    fn size_hint(&self, entry: &Path) -> u64 {
        match std::fs::metadata(entry) {
            Ok(m) => m.len(),
            Err(_) if self.locators.get(entry).is_some_and(|l| l.sr) => 1 << 20,
            Err(_) => 0,
        }
    }

    /// The whole instance, retrieved by WADO-RS into a temporary file of the cache
    /// folder (one retrieve at a time; the file is removed when dropped).
    fn with_pixels(&self, file: &Path) -> std::io::Result<LocalFile> {
        let at = self.locator(file)?;
        if at.sr {
            return Ok(LocalFile::Kept(file.to_path_buf()));
        }
        let dir = self.cache.join("pixels");
        std::fs::create_dir_all(&dir)?;
        let n = self.temporary.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}.{n}.dcm", at.sop));
        let _one = self
            .one_image
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bytes = self
            .client
            .retrieve_instance(&at.study, &at.series, &at.sop)
            .map_err(std::io::Error::other)?;
        std::fs::write(&path, &bytes)?;
        Ok(LocalFile::Temporary(path))
    }
}

/// One patient's studies, series and instances; image headers written. For the `first`
/// patient, a server that cannot be reached is an error (nothing would be found).
fn search_patient(
    client: &Client,
    cache: &Path,
    q: &PatientQuery,
    first: bool,
) -> Result<Found, DicomWebError> {
    let mut found = Found::default();
    let pid = q.patient_id.as_str();
    // A 404 or 405 for the study search: no QIDO-RS service at the base URL; the first
    // patient's search not answered: no server there.
    let stops = |e: &DicomWebError| {
        is_fatal(e)
            || matches!(
                e,
                DicomWebError::Status {
                    status: 404 | 405,
                    ..
                }
            )
            || (first
                && matches!(
                    e,
                    DicomWebError::GaveUp { .. } | DicomWebError::Request { .. }
                ))
    };
    let studies = client.search_studies(pid, &q.date_ranges);
    let Some(studies) = or_qc(studies, stops, &mut found.issues, pid, || {
        format!("the studies of patient {pid}")
    })?
    else {
        return Ok(found);
    };
    found
        .issues
        .extend(rejected(pid, "study", &studies.rejected));
    found.studies = studies.kept.len();
    for study in &studies.kept {
        let st = study.study_uid.as_str();
        let Some(series) = or_qc(client.series(st), is_fatal, &mut found.issues, pid, || {
            format!("the series of study {st}")
        })?
        else {
            continue;
        };
        found
            .issues
            .extend(rejected(pid, "series", &series.rejected));
        found.series += series.kept.len();
        for se in &series.kept {
            let se = se.series_uid.as_str();
            let instances = client.instances(st, se);
            let Some(instances) = or_qc(instances, is_fatal, &mut found.issues, pid, || {
                format!("the instances of series {se} of study {st}")
            })?
            else {
                continue;
            };
            add_series(client, cache, pid, st, se, instances, &mut found)?;
        }
    }
    Ok(found)
}

/// `r`'s value; a failure for which `stops` holds as the error that ends discovery; any
/// other failure as a `dicomweb_failed` QC error about `what` in `issues`, and `None`.
fn or_qc<T>(
    r: Result<T, DicomWebError>,
    stops: impl Fn(&DicomWebError) -> bool,
    issues: &mut Vec<QcIssue>,
    pid: &str,
    what: impl FnOnce() -> String,
) -> Result<Option<T>, DicomWebError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if stops(&e) => Err(e),
        Err(e) => {
            issues.push(failed(pid, what(), &e));
            Ok(None)
        }
    }
}

/// The instances of one series as entries; the image headers not cached yet fetched by
/// one WADO-RS metadata request and written.
fn add_series(
    client: &Client,
    cache: &Path,
    pid: &str,
    study: &str,
    series: &str,
    instances: Checked<Instance>,
    found: &mut Found,
) -> Result<(), DicomWebError> {
    found
        .issues
        .extend(rejected(pid, "instance", &instances.rejected));
    let mut missing_headers = BTreeSet::new();
    for i in instances.kept {
        if !is_uid(&i.sop_instance_uid) {
            found.issues.push(bad_answer(
                pid,
                &i.sop_instance_uid,
                format!(
                    "series {series} of study {study} lists an instance whose UID {:?} is not a DICOM UID; it was left out",
                    i.sop_instance_uid
                ),
            ));
            continue;
        }
        let path = cache.join(format!("{}.dcm", i.sop_instance_uid));
        let sr = i.sop_class_uid.starts_with(SR_CLASS_PREFIX);
        if !sr {
            if path.is_file() {
                found.reused += 1;
            } else {
                missing_headers.insert(i.sop_instance_uid.clone());
            }
        }
        found.instances.push((
            path,
            Locator {
                study: study.to_string(),
                series: series.to_string(),
                sop: i.sop_instance_uid,
                sr,
            },
        ));
    }
    if missing_headers.is_empty() {
        return Ok(());
    }
    // The image headers not written (the metadata not read, an instance missing from
    // it or unusable) leave their entries out: those instances are missing from the run,
    // as their QC issue says.
    let mut not_written = missing_headers.clone();
    let items = or_qc(
        client.metadata(study, series),
        is_fatal,
        &mut found.issues,
        pid,
        || format!("the image headers (metadata) of series {series} of study {study}"),
    )?;
    if items.is_none() {
        // The failure's QC issue covers every missing header of the series.
        missing_headers.clear();
    }
    for item in items.iter().flatten() {
        let Some(sop) = crate::dicomweb::string_of(item, "00080018") else {
            continue;
        };
        if !missing_headers.remove(&sop) {
            continue;
        }
        let path = cache.join(format!("{sop}.dcm"));
        match header_file(item).and_then(|bytes| {
            write_atomically(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }) {
            Ok(()) => {
                found.fetched += 1;
                not_written.remove(&sop);
            }
            Err(why) => found.issues.push(bad_answer(
                pid,
                &sop,
                format!("the metadata of instance {sop} of series {series} of study {study} cannot be used: {why}"),
            )),
        }
    }
    for sop in missing_headers {
        found.issues.push(bad_answer(
            pid,
            &sop,
            format!("the metadata of series {series} of study {study} lacks instance {sop}, which its search listed; the instance was left out"),
        ));
    }
    found
        .instances
        .retain(|(_, l)| l.sr || !not_written.contains(&l.sop));
    Ok(())
}

/// Errors after which no request can succeed: refused credentials, a bad base URL.
fn is_fatal(e: &DicomWebError) -> bool {
    matches!(
        e,
        DicomWebError::Refused { .. } | DicomWebError::BaseUrl(_) | DicomWebError::Auth(_)
    )
}

fn failed(pid: &str, what: String, e: &DicomWebError) -> QcIssue {
    QcIssue::file(
        Path::new(""),
        Severity::Error,
        codes::DICOMWEB_FAILED,
        format!("{what} could not be read from the DICOMweb server ({e}); they are missing from this run: run again once the server answers (what was fetched is kept)"),
    )
    .with_ids("", pid)
}

fn bad_answer(pid: &str, uid: &str, message: String) -> QcIssue {
    QcIssue::file(
        Path::new(""),
        Severity::Warning,
        codes::DICOMWEB_BAD_ANSWER,
        message,
    )
    .with_ids(uid, pid)
}

/// How many dropped answers of one search are listed one by one in QC; the rest are
/// counted in one more line (a server that ignores the query answers every study it
/// holds, which would otherwise put the whole archive into each patient's QC).
pub const REJECTED_LISTED: usize = 10;

/// The QC warnings of the answers of one search that were dropped: the first
/// [`REJECTED_LISTED`] one by one, then one line counting the rest.
fn rejected(pid: &str, what: &str, rejected: &[Rejected]) -> Vec<QcIssue> {
    let mut issues: Vec<QcIssue> = rejected
        .iter()
        .take(REJECTED_LISTED)
        .map(|r| {
            bad_answer(
                pid,
                &r.uid,
                format!(
                    "the DICOMweb server answered a {what} that does not match the search for patient {pid} ({}); it was dropped",
                    r.reason
                ),
            )
        })
        .collect();
    if rejected.len() > REJECTED_LISTED {
        issues.push(bad_answer(
            pid,
            "",
            format!(
                "the DICOMweb server answered {} more of them ({what}) that do not match the search for patient {pid}; all were dropped (does the server ignore the query?)",
                rejected.len() - REJECTED_LISTED
            ),
        ));
    }
    issues
}

/// Whether `uid` is a DICOM UID (digits and dots, at most 64 characters): only such
/// names become file names in the cache.
fn is_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.')
        && !uid.contains("..")
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.part", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A header-only Part 10 file (explicit VR little endian) from one instance of a WADO-RS
/// metadata answer (DICOM JSON, PS3.18 F.2): pixel data, elements given by BulkDataURI
/// and UN elements are left out; the text is UTF-8 (`ISO_IR 192`), as JSON is.
pub fn header_file(item: &Value) -> Result<Vec<u8>, String> {
    let Some(map) = item.as_object() else {
        return Err("the metadata of an instance is not a JSON object".into());
    };
    let mut kept = serde_json::Map::new();
    for (tag, element) in map {
        let tag_upper = tag.to_ascii_uppercase();
        let drop = tag_upper.starts_with("0002")
            || tag_upper == "7FE00010"
            || element.get("BulkDataURI").is_some()
            || element.get("vr").and_then(Value::as_str) == Some("UN");
        if !drop {
            kept.insert(tag_upper, element.clone());
        }
    }
    kept.insert(
        "00080005".into(),
        json!({"vr": "CS", "Value": ["ISO_IR 192"]}),
    );
    let object: InMemDicomObject = match dicom_json::from_value(Value::Object(kept.clone())) {
        Ok(o) => o,
        // One element dicom-json cannot read (a value of the wrong JSON type, say) is
        // left out rather than losing the image.
        Err(_) => {
            kept.retain(|tag, element| {
                let one = serde_json::Map::from_iter([(tag.clone(), element.clone())]);
                dicom_json::from_value::<InMemDicomObject>(Value::Object(one)).is_ok()
            });
            dicom_json::from_value(Value::Object(kept)).map_err(|e| e.to_string())?
        }
    };
    let text = |tag| {
        object
            .element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .filter(|s| !s.is_empty())
    };
    let sop_class = text(tags::SOP_CLASS_UID).ok_or("it has no SOPClassUID")?;
    let sop_instance = text(tags::SOP_INSTANCE_UID).ok_or("it has no SOPInstanceUID")?;
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class)
        .media_storage_sop_instance_uid(sop_instance)
        .transfer_syntax(EXPLICIT_VR_LE)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .build()
        .map_err(|e| format!("cannot build the file meta: {e}"))?;
    let mut bytes = Vec::new();
    object
        .with_exact_meta(meta)
        .write_all(&mut bytes)
        .map_err(|e| format!("cannot encode: {e}"))?;
    Ok(bytes)
}
