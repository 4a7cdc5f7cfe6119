//! A small synchronous DICOMweb (PS3.18) client: QIDO-RS searches for studies and series,
//! WADO-RS metadata and instance retrieval, STOW-RS storage.
//!
//! HTTP goes through [`ureq`] 3, one blocking request at a time per call, which fits the
//! rayon design: each worker thread makes its own requests through the one shared
//! [`Client`] (the connection pool is shared). HTTPS uses rustls with the `ring` crypto
//! provider and Mozilla's root certificates compiled in: the build needs the Rust
//! toolchain and a C compiler only (no cmake, no OpenSSL, no system library).
//!
//! What the client survives (as seen on Orthanc 1.10.1 with its DICOMweb plugin):
//!
//! - **An unknown query key returns every study with HTTP 200**: queries are built only
//!   from standard keys, and every answer is checked against what was asked (PatientID,
//!   StudyDate within the asked range, StudyInstanceUID of a study's series). An answer
//!   that does not match is dropped and reported in [`Checked::rejected`]. The check also
//!   catches a PatientID holding a QIDO wildcard (`*`, `?`) or a backslash, which a server
//!   reads as a pattern or a list.
//! - **A list of date ranges returns nothing, without an error**: one query per range,
//!   the union taken (deduplicated by StudyInstanceUID).
//! - **Results come unsorted**: studies and series are sorted by UID.
//! - **Keep-alive closes after 1 s**: the agent drops pooled connections idle for longer
//!   than 0.5 s, ureq probes a pooled connection before reusing it, and a network error is
//!   retried anyway.
//! - **Multipart parts may lack Content-Length** (other servers): a multipart/related
//!   answer is split on its boundary alone ([`parse_dicom_multipart`]).
//!
//! Network errors, HTTP 5xx and 429 are retried [`RetryPolicy::attempts`] times in all,
//! with a doubling back-off, then the call fails naming the URL and what happened. HTTP
//! 401/403 are not retried. Credentials ([`Auth`]) go in the `Authorization` header only:
//! never in a URL, an error message or `Debug` output (a base URL holding `user@` is
//! refused).

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The media type of a QIDO-RS answer and of WADO-RS metadata.
pub const DICOM_JSON: &str = "application/dicom+json";
/// What a WADO-RS retrieve asks for: DICOM instances in their stored transfer syntax.
pub const MULTIPART_DICOM_ANY_TS: &str =
    "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

/// Credentials for the server, read from an auth file.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP Basic: `user:password`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A bearer token: `Bearer TOKEN`.
    Bearer(String),
}

/// Why an auth file's text is not usable. The messages never quote the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Nothing but white space.
    #[error("the auth file is empty: it must hold `user:password` or `Bearer TOKEN`")]
    Empty,
    /// Something else than one `user:password` or `Bearer TOKEN` line.
    #[error("the auth file is not `user:password` or `Bearer TOKEN` on one line: {0}")]
    Malformed(&'static str),
}

impl Auth {
    /// Parses an auth file's text: one line (surrounding white space and a final line
    /// break ignored), either `Bearer TOKEN` (the word case-insensitive) or
    /// `user:password` (split at the first colon; the password may hold colons).
    pub fn parse(text: &str) -> Result<Auth, AuthError> {
        let line = text.trim();
        if line.is_empty() {
            return Err(AuthError::Empty);
        }
        if line.contains(['\n', '\r']) {
            return Err(AuthError::Malformed("it has more than one line"));
        }
        if line.chars().any(|c| c.is_control()) {
            return Err(AuthError::Malformed("it holds a control character"));
        }
        let mut words = line.splitn(2, char::is_whitespace);
        let first = words.next().unwrap_or_default();
        if first.eq_ignore_ascii_case("bearer") {
            let token = words.next().unwrap_or_default().trim();
            if token.is_empty() {
                return Err(AuthError::Malformed("`Bearer` is not followed by a token"));
            }
            if token.contains(char::is_whitespace) {
                return Err(AuthError::Malformed("the token holds white space"));
            }
            return Ok(Auth::Bearer(token.to_string()));
        }
        let Some((user, password)) = line.split_once(':') else {
            return Err(AuthError::Malformed(
                "no colon between user and password, and no `Bearer` word",
            ));
        };
        if user.is_empty() {
            return Err(AuthError::Malformed(
                "the user name before the colon is empty",
            ));
        }
        if password.is_empty() {
            return Err(AuthError::Malformed(
                "the password after the colon is empty",
            ));
        }
        Ok(Auth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    /// Reads and parses an auth file ([`Auth::parse`]).
    pub fn from_file(path: &Path) -> Result<Auth, DicomWebError> {
        let text = std::fs::read_to_string(path).map_err(|source| DicomWebError::AuthFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Auth::parse(&text)?)
    }

    /// The value of the `Authorization` header: `Basic BASE64(user:password)` or
    /// `Bearer TOKEN`.
    pub fn header_value(&self) -> String {
        use base64::Engine;
        match self {
            Auth::Basic { user, password } => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
            Auth::Bearer(token) => format!("Bearer {token}"),
        }
    }
}

impl fmt::Debug for Auth {
    /// The kind of credentials only: neither user, password nor token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { .. } => f.write_str("Auth::Basic(<redacted>)"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer(<redacted>)"),
        }
    }
}

/// How often a failed request is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests made in all for one call (at least 1 is made whatever this says).
    pub attempts: u32,
    /// The wait before the second request; each later wait is twice the one before.
    pub first_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, waiting 0.25, 0.5 and 1 s between them.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(250),
        }
    }
}

/// Why a multipart/related answer could not be split into DICOM instances.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// The answer's Content-Type is not multipart/related.
    #[error("the answer is not multipart/related (Content-Type: {0})")]
    NotMultipart(String),
    /// The Content-Type has no `boundary` parameter.
    #[error("the multipart Content-Type has no boundary parameter")]
    MissingBoundary,
    /// The body holds no opening `--boundary` line.
    #[error("the multipart body holds no opening boundary line")]
    NoOpeningBoundary,
    /// The body ends before the closing `--boundary--`.
    #[error("the multipart body is truncated: it ends before its closing boundary")]
    Truncated,
    /// A part's header line is not `Name: value`.
    #[error("part {part}: a header line is not `Name: value`")]
    BadPartHeader {
        /// The part's 0-based index.
        part: usize,
    },
    /// A part is not `application/dicom`.
    #[error("part {part}: Content-Type {content_type} where application/dicom was asked")]
    NotDicomType {
        /// The part's 0-based index.
        part: usize,
        /// Its Content-Type (`(none)` when it has none).
        content_type: String,
    },
    /// A part's bytes do not start with the 128-byte preamble and `DICM`.
    #[error("part {part}: its {len} bytes do not start with the DICOM preamble and DICM")]
    NotDicomBytes {
        /// The part's 0-based index.
        part: usize,
        /// Its length in bytes.
        len: usize,
    },
}

/// What went wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum DicomWebError {
    /// The base URL is not usable (the message does not repeat it, in case it held
    /// credentials).
    #[error("invalid DICOMweb base URL: {0}")]
    BaseUrl(&'static str),
    /// The auth file's text is not usable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The auth file cannot be read.
    #[error("cannot read the auth file {}: {source}", path.display())]
    AuthFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A date range whose start is after its end.
    #[error("invalid date range {from} to {to}: the start is after the end")]
    DateRange {
        /// The start.
        from: NaiveDate,
        /// The end.
        to: NaiveDate,
    },
    /// HTTP 401 or 403.
    #[error("the server refused the credentials (HTTP {status}) for {url}: check --auth-file")]
    Refused {
        /// 401 or 403.
        status: u16,
        /// The URL asked.
        url: String,
    },
    /// HTTP 404 for a named resource.
    #[error("{what} not found (HTTP 404) at {url}")]
    NotFound {
        /// What was asked for (`series X of study Y`).
        what: String,
        /// The URL asked.
        url: String,
    },
    /// Another HTTP status that is not retried (or not expected).
    #[error("HTTP {status} from {url}: {message}")]
    Status {
        /// The status.
        status: u16,
        /// The URL asked.
        url: String,
        /// The start of the answer's body, when it is text.
        message: String,
    },
    /// Network errors, 5xx or 429 on every attempt.
    #[error("{url}: gave up after {attempts} attempt(s); the last: {last}")]
    GaveUp {
        /// The URL asked.
        url: String,
        /// How many requests were made.
        attempts: u32,
        /// What happened to the last one.
        last: String,
    },
    /// A request that cannot be made at all (not retried).
    #[error("{url}: {message}")]
    Request {
        /// The URL.
        url: String,
        /// What ureq said.
        message: String,
    },
    /// A 2xx answer whose body is not what the endpoint promises.
    #[error("{url}: {reason}")]
    BadAnswer {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A multipart/related answer that cannot be split into DICOM instances.
    #[error("{url}: {source}")]
    Multipart {
        /// The URL asked.
        url: String,
        /// What is wrong with it.
        source: MultipartError,
    },
}

/// A study found by QIDO-RS.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Study {
    /// StudyInstanceUID (0020,000D).
    pub study_uid: String,
    /// PatientID (0010,0020) as answered.
    pub patient_id: String,
    /// StudyDate (0008,0020), when answered and valid.
    pub study_date: Option<NaiveDate>,
}

/// A series found by QIDO-RS.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    /// SeriesInstanceUID (0020,000E).
    pub series_uid: String,
    /// Modality (0008,0060), when answered.
    pub modality: Option<String>,
}

/// An instance found by QIDO-RS.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instance {
    /// SOPInstanceUID (0008,0018).
    pub sop_instance_uid: String,
    /// SOPClassUID (0008,0016), empty when the answer has none.
    pub sop_class_uid: String,
}

/// An answer of a search that does not match what was asked, and was dropped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rejected {
    /// The UID of the study or series answered (empty when it had none).
    pub uid: String,
    /// Why it was dropped (PatientID, StudyDate or StudyInstanceUID that differ).
    pub reason: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.uid, self.reason)
    }
}

/// The answers of a search that match what was asked, sorted by UID, and those dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked<T> {
    /// The matching answers, sorted by UID, without duplicates.
    pub kept: Vec<T>,
    /// The answers dropped, sorted by UID, each with its reason (one per answer: a
    /// study answered by two queries may appear twice).
    pub rejected: Vec<Rejected>,
}

/// One instance that a STOW-RS request did not store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StowFailure {
    /// Its SOP Instance UID (0008,1155) as the server named it (or as read from the
    /// instance's file meta when the server named none); empty when unknown.
    pub sop_instance_uid: String,
    /// FailureReason (0008,1197), when given.
    pub reason: Option<u16>,
}

/// What a STOW-RS request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StowOutcome {
    /// The HTTP status (200, 202 or 409).
    pub status: u16,
    /// SOP Instance UIDs of ReferencedSOPSequence (0008,1199): the instances stored.
    pub stored: Vec<String>,
    /// The instances not stored (FailedSOPSequence (0008,1198), or every instance on a
    /// 409 that names none).
    pub failed: Vec<StowFailure>,
}

/// A DICOMweb server and how to talk to it. Shared by reference between threads.
pub struct Client {
    base: String,
    auth: Option<Auth>,
    retry: RetryPolicy,
    agent: ureq::Agent,
    received: Arc<AtomicU64>,
    /// Set when a call gave up (the server is down or failing); cleared by an answer.
    /// While set, a call makes one attempt only, so that a batch whose server went away
    /// does not wait out every retry of every remaining instance.
    down: AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("auth", &self.auth)
            .field("retry", &self.retry)
            .field("received", &self.received.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A 2xx-or-not answer, its body read.
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

enum Attempt {
    Done(Answer),
    /// Worth trying again: what happened.
    Transient(String),
    Fatal(DicomWebError),
}

impl Client {
    /// A client of the server at `base_url` (`http://host:port/dicom-web`; a trailing
    /// slash is dropped). Only `http://` and `https://` URLs without user info, query or
    /// fragment are accepted.
    pub fn new(
        base_url: &str,
        auth: Option<Auth>,
        retry: RetryPolicy,
    ) -> Result<Client, DicomWebError> {
        let base = base_url.trim();
        let lower = base.to_ascii_lowercase();
        let rest = if lower.starts_with("http://") {
            &base["http://".len()..]
        } else if lower.starts_with("https://") {
            &base["https://".len()..]
        } else {
            return Err(DicomWebError::BaseUrl(
                "it must start with http:// or https://",
            ));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(DicomWebError::BaseUrl("it names no host"));
        }
        if authority.contains('@') {
            return Err(DicomWebError::BaseUrl(
                "it holds user info (`user@`): give credentials with --auth-file instead",
            ));
        }
        if base.contains(['?', '#']) {
            return Err(DicomWebError::BaseUrl(
                "it holds a query or fragment (`?`, `#`)",
            ));
        }
        if base.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DicomWebError::BaseUrl("it holds white space"));
        }
        let base = base.trim_end_matches('/').to_string();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Orthanc closes an idle keep-alive connection after 1 s.
            .max_idle_age(Duration::from_millis(500))
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(300)))
            .user_agent(concat!("plumbline/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            base,
            auth,
            retry,
            agent: ureq::Agent::new_with_config(config),
            received: Arc::new(AtomicU64::new(0)),
            down: AtomicBool::new(false),
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Bytes of answer bodies received so far (failed attempts included), counted as
    /// they arrive.
    pub fn bytes_received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The counter behind [`Client::bytes_received`], for a progress bar's thread.
    pub fn byte_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.received)
    }

    /// QIDO-RS: the studies of `patient_id` whose StudyDate lies in one of `date_ranges`
    /// (inclusive; every study of the patient when there are none). One query per range
    /// (Orthanc 1.10.1 answers a list of ranges with nothing), the union kept; an answer
    /// whose PatientID is not `patient_id` or whose StudyDate is missing or outside the
    /// range asked is rejected.
    pub fn search_studies(
        &self,
        patient_id: &str,
        date_ranges: &[(NaiveDate, NaiveDate)],
    ) -> Result<Checked<Study>, DicomWebError> {
        for &(from, to) in date_ranges {
            if from > to {
                return Err(DicomWebError::DateRange { from, to });
            }
        }
        let ranges: Vec<Option<(NaiveDate, NaiveDate)>> = if date_ranges.is_empty() {
            vec![None]
        } else {
            date_ranges.iter().copied().map(Some).collect()
        };
        let mut kept: Vec<Study> = Vec::new();
        let mut rejected = Vec::new();
        for range in ranges {
            let mut url = format!("{}/studies?PatientID={}", self.base, encode(patient_id));
            if let Some((from, to)) = range {
                url.push_str(&format!(
                    "&StudyDate={}-{}",
                    from.format("%Y%m%d"),
                    to.format("%Y%m%d")
                ));
            }
            url.push_str("&includefield=00080020&includefield=00100020&includefield=0020000D");
            for item in self.get_json_array(&url, None)? {
                let study = Study {
                    study_uid: string_of(&item, "0020000D").unwrap_or_default(),
                    patient_id: string_of(&item, "00100020").unwrap_or_default(),
                    study_date: string_of(&item, "00080020").and_then(|d| parse_da(&d)),
                };
                let raw_date = string_of(&item, "00080020");
                let reason = if study.study_uid.is_empty() {
                    Some("the answer has no StudyInstanceUID".to_string())
                } else if study.patient_id != patient_id {
                    Some(format!(
                        "PatientID {:?} answered where {:?} was asked",
                        study.patient_id, patient_id
                    ))
                } else if let Some((from, to)) = range {
                    match study.study_date {
                        Some(d) if d >= from && d <= to => None,
                        Some(d) => Some(format!(
                            "StudyDate {} answered outside the range asked, {} to {}",
                            d.format("%Y%m%d"),
                            from.format("%Y%m%d"),
                            to.format("%Y%m%d")
                        )),
                        None => Some(format!(
                            "StudyDate {:?} answered where a date in {} to {} was asked",
                            raw_date.unwrap_or_default(),
                            from.format("%Y%m%d"),
                            to.format("%Y%m%d")
                        )),
                    }
                } else {
                    None
                };
                match reason {
                    Some(reason) => rejected.push(Rejected {
                        uid: study.study_uid,
                        reason,
                    }),
                    None => kept.push(study),
                }
            }
        }
        kept.sort();
        kept.dedup_by(|a, b| a.study_uid == b.study_uid);
        rejected.sort();
        Ok(Checked { kept, rejected })
    }

    /// QIDO-RS: the series of a study; an answer naming another StudyInstanceUID is
    /// rejected (one naming none is kept: the URL scoped it).
    pub fn series(&self, study_uid: &str) -> Result<Checked<Series>, DicomWebError> {
        let url = format!(
            "{}/studies/{}/series?includefield=0020000D&includefield=00080060",
            self.base,
            encode(study_uid)
        );
        self.scoped_search(
            &url,
            &format!("study {study_uid}"),
            ("0020000E", "SeriesInstanceUID"),
            ("0020000D", "StudyInstanceUID", study_uid),
            |series_uid, item| Series {
                series_uid,
                modality: string_of(item, "00080060"),
            },
        )
    }

    /// QIDO-RS: the instances of a series; an answer naming another SeriesInstanceUID
    /// is rejected (one naming none is kept: the URL scoped it).
    pub fn instances(
        &self,
        study_uid: &str,
        series_uid: &str,
    ) -> Result<Checked<Instance>, DicomWebError> {
        let url = format!(
            "{}/studies/{}/series/{}/instances?includefield=0020000E&includefield=00080016&includefield=00080018",
            self.base,
            encode(study_uid),
            encode(series_uid)
        );
        self.scoped_search(
            &url,
            &format!("series {series_uid} of study {study_uid}"),
            ("00080018", "SOPInstanceUID"),
            ("0020000E", "SeriesInstanceUID", series_uid),
            |sop_instance_uid, item| Instance {
                sop_instance_uid,
                sop_class_uid: string_of(item, "00080016").unwrap_or_default(),
            },
        )
    }

    /// A QIDO-RS search below one parent (`what`, a study or a series): each answer must
    /// carry its own UID (`own`: tag and name) and, if it names its parent (`parent`: tag,
    /// name, the UID asked), the parent asked; `make` builds the kept value from its UID
    /// and the answer. Kept values sorted, one per UID (the first, in sort order).
    fn scoped_search<T: Ord>(
        &self,
        url: &str,
        what: &str,
        (own_tag, own_name): (&str, &str),
        (parent_tag, parent_name, parent_uid): (&str, &str, &str),
        make: impl Fn(String, &Value) -> T,
    ) -> Result<Checked<T>, DicomWebError> {
        let mut kept: Vec<(String, T)> = Vec::new();
        let mut rejected = Vec::new();
        for item in self.get_json_array(url, Some(what))? {
            let uid = string_of(&item, own_tag).unwrap_or_default();
            let answered_parent = string_of(&item, parent_tag);
            if uid.is_empty() {
                rejected.push(Rejected {
                    uid,
                    reason: format!("the answer has no {own_name}"),
                });
            } else if let Some(other) = answered_parent.filter(|p| p != parent_uid) {
                rejected.push(Rejected {
                    uid,
                    reason: format!("{parent_name} {other} answered where {parent_uid} was asked"),
                });
            } else {
                let value = make(uid.clone(), &item);
                kept.push((uid, value));
            }
        }
        kept.sort();
        kept.dedup_by(|a, b| a.0 == b.0);
        rejected.sort();
        Ok(Checked {
            kept: kept.into_iter().map(|(_, v)| v).collect(),
            rejected,
        })
    }

    /// WADO-RS metadata: each instance's header as DICOM JSON (bulk data such as pixel
    /// data left out or given as a BulkDataURI).
    pub fn metadata(&self, study_uid: &str, series_uid: &str) -> Result<Vec<Value>, DicomWebError> {
        let url = format!(
            "{}/studies/{}/series/{}/metadata",
            self.base,
            encode(study_uid),
            encode(series_uid)
        );
        let what = format!("series {series_uid} of study {study_uid}");
        self.get_json_array(&url, Some(&what))
    }

    /// WADO-RS: every instance of a series, as Part 10 files in their stored transfer
    /// syntax. The whole answer is held in memory: meant for SR series.
    pub fn retrieve_instances(
        &self,
        study_uid: &str,
        series_uid: &str,
    ) -> Result<Vec<Vec<u8>>, DicomWebError> {
        let url = format!(
            "{}/studies/{}/series/{}",
            self.base,
            encode(study_uid),
            encode(series_uid)
        );
        let what = format!("series {series_uid} of study {study_uid}");
        self.get_multipart(&url, &what)
    }

    /// WADO-RS: one instance, as a Part 10 file in its stored transfer syntax.
    pub fn retrieve_instance(
        &self,
        study_uid: &str,
        series_uid: &str,
        sop_instance_uid: &str,
    ) -> Result<Vec<u8>, DicomWebError> {
        let url = format!(
            "{}/studies/{}/series/{}/instances/{}",
            self.base,
            encode(study_uid),
            encode(series_uid),
            encode(sop_instance_uid)
        );
        let what =
            format!("instance {sop_instance_uid} of series {series_uid} of study {study_uid}");
        let mut parts = self.get_multipart(&url, &what)?;
        if parts.len() != 1 {
            return Err(DicomWebError::BadAnswer {
                url,
                reason: format!("{} instances answered where one was asked", parts.len()),
            });
        }
        let bytes = parts.remove(0);
        match sop_instance_uid_of(&bytes) {
            Some(uid) if uid == sop_instance_uid => Ok(bytes),
            other => Err(DicomWebError::BadAnswer {
                url,
                reason: format!(
                    "instance {} answered where {sop_instance_uid} was asked",
                    other.unwrap_or_else(|| "(no SOP Instance UID)".into())
                ),
            }),
        }
    }

    /// STOW-RS: stores Part 10 files in the study `study_uid`
    /// (`POST {base}/studies/{study_uid}`). HTTP 200, 202 and 409 give an outcome whose
    /// [`StowOutcome::failed`] names each instance not stored; other statuses are errors.
    pub fn stow(
        &self,
        study_uid: &str,
        instances: &[Vec<u8>],
    ) -> Result<StowOutcome, DicomWebError> {
        let url = format!("{}/studies/{}", self.base, encode(study_uid));
        let boundary = stow_boundary(instances);
        let mut body = Vec::with_capacity(instances.iter().map(|i| i.len() + 100).sum());
        for instance in instances {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(instance);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type =
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
        let answer = self.request(&url, DICOM_JSON, Some((&content_type, &body)))?;
        match answer.status {
            200 | 202 | 409 => {}
            404 => {
                return Err(DicomWebError::NotFound {
                    what: format!("the STOW-RS service for study {study_uid}"),
                    url,
                });
            }
            status => return Err(status_error(status, &url, &answer.body)),
        }
        let json: Value = if answer.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match serde_json::from_slice(&answer.body) {
                Ok(v) => v,
                Err(_) if answer.status == 409 => Value::Null,
                Err(e) => {
                    return Err(DicomWebError::BadAnswer {
                        url,
                        reason: format!("the STOW-RS answer is not JSON: {e}"),
                    });
                }
            }
        };
        // A JSON answer is one data set, or (some servers) an array holding one.
        let json = match json {
            Value::Array(mut items) if items.len() == 1 => items.remove(0),
            other => other,
        };
        let uids_in = |seq: &str, tag: &str| -> Vec<(String, Option<u16>)> {
            let items = json
                .get(seq)
                .and_then(|e| e.get("Value"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            items
                .iter()
                .map(|item| {
                    let reason = item
                        .get(tag)
                        .and_then(|e| e.get("Value"))
                        .and_then(|v| v.get(0))
                        .and_then(Value::as_u64)
                        .and_then(|r| u16::try_from(r).ok());
                    (string_of(item, "00081155").unwrap_or_default(), reason)
                })
                .collect()
        };
        let stored = uids_in("00081199", "00081197")
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        let mut failed: Vec<StowFailure> = uids_in("00081198", "00081197")
            .into_iter()
            .map(|(sop_instance_uid, reason)| StowFailure {
                sop_instance_uid,
                reason,
            })
            .collect();
        if answer.status == 409 && failed.is_empty() {
            failed = instances
                .iter()
                .map(|bytes| StowFailure {
                    sop_instance_uid: sop_instance_uid_of(bytes).unwrap_or_default(),
                    reason: None,
                })
                .collect();
        }
        Ok(StowOutcome {
            status: answer.status,
            stored,
            failed,
        })
    }

    /// GET `url` as DICOM JSON: a JSON array (an empty body or 204 is an empty array).
    /// `what` names the resource for a 404 (without one a 404 is a plain status error).
    fn get_json_array(&self, url: &str, what: Option<&str>) -> Result<Vec<Value>, DicomWebError> {
        let answer = self.request(url, DICOM_JSON, None)?;
        self.expect_success(&answer, url, what)?;
        if answer.status == 204 || answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Vec::new());
        }
        match serde_json::from_slice(&answer.body) {
            Ok(Value::Array(items)) => Ok(items),
            Ok(_) => Err(DicomWebError::BadAnswer {
                url: url.to_string(),
                reason: "the DICOM JSON answer is not an array".to_string(),
            }),
            Err(e) => Err(DicomWebError::BadAnswer {
                url: url.to_string(),
                reason: format!("the answer is not JSON: {e}"),
            }),
        }
    }

    fn get_multipart(&self, url: &str, what: &str) -> Result<Vec<Vec<u8>>, DicomWebError> {
        let answer = self.request(url, MULTIPART_DICOM_ANY_TS, None)?;
        self.expect_success(&answer, url, Some(what))?;
        parse_dicom_multipart(&answer.content_type, &answer.body).map_err(|source| {
            DicomWebError::Multipart {
                url: url.to_string(),
                source,
            }
        })
    }

    fn expect_success(
        &self,
        answer: &Answer,
        url: &str,
        what: Option<&str>,
    ) -> Result<(), DicomWebError> {
        match (answer.status, what) {
            (200..=299, _) => Ok(()),
            (404, Some(what)) => Err(DicomWebError::NotFound {
                what: what.to_string(),
                url: url.to_string(),
            }),
            (status, _) => Err(status_error(status, url, &answer.body)),
        }
    }

    /// One call: GET (no body) or POST, retried on network errors, 5xx and 429 (once
    /// a call has given up, later calls try once until the server answers again). Any
    /// other status is returned, except 401/403 which are [`DicomWebError::Refused`].
    fn request(
        &self,
        url: &str,
        accept: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer, DicomWebError> {
        let attempts = if self.down.load(Ordering::Relaxed) {
            1
        } else {
            self.retry.attempts.max(1)
        };
        let mut backoff = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                std::thread::sleep(backoff);
                backoff = backoff.saturating_mul(2);
            }
            match self.attempt(url, accept, body) {
                Attempt::Done(answer) => {
                    self.down.store(false, Ordering::Relaxed);
                    return Ok(answer);
                }
                Attempt::Fatal(e) => return Err(e),
                Attempt::Transient(what) => last = what,
            }
        }
        self.down.store(true, Ordering::Relaxed);
        Err(DicomWebError::GaveUp {
            url: url.to_string(),
            attempts,
            last,
        })
    }

    fn attempt(&self, url: &str, accept: &str, body: Option<(&str, &[u8])>) -> Attempt {
        let auth = self.auth.as_ref().map(Auth::header_value);
        let sent = match body {
            None => {
                let mut req = self.agent.get(url).header("Accept", accept);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            Some((content_type, bytes)) => {
                let mut req = self
                    .agent
                    .post(url)
                    .header("Accept", accept)
                    .header("Content-Type", content_type);
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.send(bytes)
            }
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return match e {
                    ureq::Error::Io(_)
                    | ureq::Error::Timeout(_)
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::HostNotFound
                    | ureq::Error::Protocol(_) => Attempt::Transient(e.to_string()),
                    other => Attempt::Fatal(DicomWebError::Request {
                        url: url.to_string(),
                        message: other.to_string(),
                    }),
                };
            }
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if status == 401 || status == 403 {
            return Attempt::Fatal(DicomWebError::Refused {
                status,
                url: url.to_string(),
            });
        }
        let mut reader = response.into_body().into_reader();
        let mut data = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    data.extend_from_slice(&chunk[..n]);
                    self.received.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Attempt::Transient(format!("reading the answer: {e}")),
            }
        }
        if status == 429 || (500..=599).contains(&status) {
            return Attempt::Transient(format!("HTTP {status}{}", excerpt(&data)));
        }
        Attempt::Done(Answer {
            status,
            content_type,
            body: data,
        })
    }
}

/// An error for an unexpected HTTP status.
fn status_error(status: u16, url: &str, body: &[u8]) -> DicomWebError {
    DicomWebError::Status {
        status,
        url: url.to_string(),
        message: excerpt(body).trim_start_matches(": ").to_string(),
    }
}

/// `: ` and the start of a text body (200 characters, one line), or nothing.
fn excerpt(body: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(&body[..body.len().min(400)]) else {
        return String::new();
    };
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {line}")
    }
}

/// Percent-encodes a query value or path segment: every byte of its UTF-8 form but the
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`) as `%XX`.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first value of a DICOM JSON attribute (keyed by its 8-digit tag) as text: a
/// string, a number, or a person name's `Alphabetic` form; trailing spaces dropped.
pub(crate) fn string_of(item: &Value, tag: &str) -> Option<String> {
    let first = item.get(tag)?.get("Value")?.get(0)?;
    let text = match first {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(o) => o.get("Alphabetic")?.as_str()?.to_string(),
        _ => return None,
    };
    Some(text.trim_end_matches([' ', '\0']).to_string())
}

/// A DA value `YYYYMMDD` (anything else, such as a range or an old `YYYY.MM.DD`, is none).
fn parse_da(text: &str) -> Option<NaiveDate> {
    let t = text.trim();
    if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDate::parse_from_str(t, "%Y%m%d").ok()
}

/// The SOP Instance UID of a Part 10 file's meta group (MediaStorageSOPInstanceUID).
fn sop_instance_uid_of(bytes: &[u8]) -> Option<String> {
    if !is_part10(bytes) {
        return None;
    }
    let meta = dicom_object::meta::FileMetaTable::from_reader(&bytes[128..]).ok()?;
    Some(
        meta.media_storage_sop_instance_uid
            .trim_end_matches(['\0', ' '])
            .to_string(),
    )
}

/// A boundary that none of `instances` holds: from a hash of their bytes, so the same
/// request is made the same way each time.
fn stow_boundary(instances: &[Vec<u8>]) -> String {
    let mut hash = Sha256::new();
    for i in instances {
        hash.update((i.len() as u64).to_le_bytes());
        hash.update(i);
    }
    let digest = hash.finalize();
    let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
    let mut n = 0u32;
    loop {
        let boundary = format!("plumbline-stow-{hex}-{n}");
        let needle = format!("--{boundary}");
        if !instances.iter().any(|i| contains(i, needle.as_bytes())) {
            return boundary;
        }
        n += 1;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle, 0).is_some()
}

/// The first position at or after `from` where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() || from > hay.len() - needle.len() {
        return None;
    }
    let first = needle[0];
    let last_start = hay.len() - needle.len();
    let mut i = from;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                let at = i + p;
                if &hay[at..at + needle.len()] == needle {
                    return Some(at);
                }
                i = at + 1;
            }
        }
    }
    None
}

/// Whether the bytes start with a 128-byte preamble and `DICM`.
fn is_part10(bytes: &[u8]) -> bool {
    bytes.len() >= 132 && &bytes[128..132] == b"DICM"
}

/// The `boundary` parameter of a Content-Type (quoted or not), when there is one.
pub fn boundary_of(content_type: &str) -> Option<String> {
    for param in split_params(content_type).into_iter().skip(1) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(quoted) => {
                let mut out = String::new();
                let mut chars = quoted.chars();
                loop {
                    match chars.next() {
                        None => return None, // no closing quote
                        Some('"') => break,
                        Some('\\') => out.push(chars.next()?),
                        Some(c) => out.push(c),
                    }
                }
                out
            }
            None => value.to_string(),
        };
        return (!value.is_empty()).then_some(value);
    }
    None
}

/// A Content-Type split at the semicolons that are not inside quotes.
fn split_params(content_type: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in content_type.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            out.push(&content_type[start..i]);
            start = i + 1;
        }
    }
    out.push(&content_type[start..]);
    out
}

/// The media type of a Content-Type (before any parameter), lower case.
fn media_type(content_type: &str) -> String {
    split_params(content_type)[0].trim().to_ascii_lowercase()
}

/// Splits a `multipart/related` answer into its parts' bodies, checking that each part
/// is `application/dicom` and a Part 10 file (preamble and `DICM`).
///
/// The boundary comes from `content_type` (quoted or not). The body is split on
/// `--boundary` lines alone: a part's Content-Length is never relied on. Lines may end in
/// CRLF or a bare LF. Anything before the first boundary line (a preamble) and after the
/// closing `--boundary--` is ignored. A body without its closing boundary is
/// [`MultipartError::Truncated`].
pub fn parse_dicom_multipart(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<Vec<u8>>, MultipartError> {
    if media_type(content_type) != "multipart/related" {
        return Err(MultipartError::NotMultipart(if content_type.is_empty() {
            "(none)".to_string()
        } else {
            content_type.to_string()
        }));
    }
    let boundary = boundary_of(content_type).ok_or(MultipartError::MissingBoundary)?;
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter: at the very start, or at the start of a line.
    let line_delimiter = [b"\n".as_slice(), delimiter].concat();
    let mut at = if body.starts_with(delimiter) {
        0
    } else {
        find(body, &line_delimiter, 0).ok_or(MultipartError::NoOpeningBoundary)? + 1
    };
    let mut parts = Vec::new();
    loop {
        // `at` is where a delimiter starts; what follows it says what comes next.
        let after = at + delimiter.len();
        if body[after..].starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the end of the delimiter line.
        let mut p = after;
        while p < body.len() && (body[p] == b' ' || body[p] == b'\t') {
            p += 1;
        }
        if body[p..].starts_with(b"\r\n") {
            p += 2;
        } else if body[p..].starts_with(b"\n") {
            p += 1;
        } else {
            // A delimiter line cut short, or the boundary string as a prefix of a longer
            // line: neither opens a part.
            return Err(MultipartError::Truncated);
        }
        // Part headers, up to an empty line.
        let index = parts.len();
        let mut part_type: Option<String> = None;
        loop {
            let Some(eol) = body[p..].iter().position(|&b| b == b'\n') else {
                return Err(MultipartError::Truncated);
            };
            let line = &body[p..p + eol];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            p += eol + 1;
            if line.is_empty() {
                break;
            }
            let text = std::str::from_utf8(line)
                .map_err(|_| MultipartError::BadPartHeader { part: index })?;
            let (name, value) = text
                .split_once(':')
                .ok_or(MultipartError::BadPartHeader { part: index })?;
            if name.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(value.trim().to_string());
            }
        }
        // The body, up to the line break before the next delimiter.
        let next = find(body, &line_delimiter, p).ok_or(MultipartError::Truncated)?;
        let end = if next > p && body[next - 1] == b'\r' {
            next - 1
        } else {
            next
        };
        let content = &body[p..end];
        match &part_type {
            Some(t) if media_type(t) == "application/dicom" => {}
            other => {
                return Err(MultipartError::NotDicomType {
                    part: index,
                    content_type: other.clone().unwrap_or_else(|| "(none)".to_string()),
                });
            }
        }
        if !is_part10(content) {
            return Err(MultipartError::NotDicomBytes {
                part: index,
                len: content.len(),
            });
        }
        parts.push(content.to_vec());
        at = next + 1;
    }
}

#[cfg(test)]
mod tests;
