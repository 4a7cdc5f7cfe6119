//! `--pseudonymize KEYFILE` and `--shift-dates`: every patient identifier in every output
//! becomes the first 16 hex digits of HMAC-SHA256(key, PatientID); with `--shift-dates`
//! every date of a patient moves by a keyed offset of -182..=182 days, the same for all of
//! that patient's dates, so intervals (days from surgery) are kept.
//!
//! The key is the key file's bytes, with trailing ASCII whitespace (a final newline)
//! removed; it must hold at least 16 bytes. Identifiers inside QC paths and messages are
//! replaced wherever the exact PatientID string occurs (longest IDs first), so a folder
//! named after the patient does not leak it. PatientName and birth date are never read,
//! so no output can hold them, with or without this option.

use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::QcIssue;
use chrono::NaiveDate;

use crate::clinical::{
    ClinicalTable, date_of_days, days_of, iso_date, parse_dicom_date, parse_iso_date,
};
use crate::cohort::Cohort;

/// The pseudonymisation key and options.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: Vec<u8>,
    shift_dates: bool,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("Pseudonymizer")
            .field("shift_dates", &self.shift_dates)
            .finish_non_exhaustive()
    }
}

/// The key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Unreadable.
    #[error("cannot read the pseudonymisation key file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Too short to be a secret.
    #[error("the pseudonymisation key file {} holds {len} bytes; use at least 16 random bytes (e.g. `head -c 32 /dev/urandom | base64 > key.txt`)", path.display())]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its usable length.
        len: usize,
    },
}

impl Pseudonymizer {
    /// Reads the key file.
    pub fn from_key_file(path: &Path, shift_dates: bool) -> Result<Pseudonymizer, KeyError> {
        let mut key = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        while key.last().is_some_and(|b| b.is_ascii_whitespace()) {
            key.pop();
        }
        if key.len() < 16 {
            return Err(KeyError::TooShort {
                path: path.to_path_buf(),
                len: key.len(),
            });
        }
        Ok(Pseudonymizer { key, shift_dates })
    }

    fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC takes any key length");
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    /// The pseudonym of a PatientID: the first 16 hex digits of HMAC-SHA256(key, id).
    pub fn id(&self, patient_id: &str) -> String {
        self.mac(patient_id.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The patient's date offset in days (0 without `--shift-dates`): keyed, in -182..=182.
    pub fn date_offset(&self, patient_id: &str) -> i64 {
        if !self.shift_dates {
            return 0;
        }
        let h = self.mac(format!("date-shift\0{patient_id}").as_bytes());
        let v = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
        (v % 365) as i64 - 182
    }

    fn shift_iso(&self, patient_id: &str, date: &str) -> String {
        match parse_iso_date(date) {
            Some(d) if self.shift_dates => iso_date(d + self.date_offset(patient_id)),
            _ => date.to_string(),
        }
    }

    /// Shifts every `YYYYMMDD` or `YYYY-MM-DD` date in `s` (folder names such as
    /// `20210530_preop`, messages) by the patient's offset.
    fn shift_dates_in(&self, patient_id: &str, s: &str) -> String {
        if !self.shift_dates {
            return s.to_string();
        }
        let b = s.as_bytes();
        let mut out = String::with_capacity(s.len());
        let mut i = 0;
        while i < b.len() {
            let digits = |from: usize, n: usize| {
                b.len() >= from + n && b[from..from + n].iter().all(u8::is_ascii_digit)
            };
            let boundary = |at: usize| at >= b.len() || !b[at].is_ascii_digit();
            let start_ok = i == 0 || !b[i - 1].is_ascii_digit();
            if start_ok
                && digits(i, 8)
                && boundary(i + 8)
                && let Some(d) = parse_dicom_date(&s[i..i + 8])
            {
                out.push_str(&iso_date(d + self.date_offset(patient_id)).replace('-', ""));
                i += 8;
                continue;
            }
            if start_ok
                && digits(i, 4)
                && b.get(i + 4) == Some(&b'-')
                && digits(i + 5, 2)
                && b.get(i + 7) == Some(&b'-')
                && digits(i + 8, 2)
                && boundary(i + 10)
                && let Some(d) = parse_iso_date(&s[i..i + 10])
            {
                out.push_str(&iso_date(d + self.date_offset(patient_id)));
                i += 10;
                continue;
            }
            let ch = s[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    /// The pseudonym of every PatientID in `ids`, longest IDs first (so that an ID that
    /// contains another is replaced whole).
    pub fn id_map<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> IdMap {
        let mut ids: Vec<&str> = ids.into_iter().filter(|p| !p.is_empty()).collect();
        ids.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        ids.dedup();
        IdMap {
            pairs: ids.iter().map(|p| (p.to_string(), self.id(p))).collect(),
        }
    }

    /// The pseudonymisation stage: a cohort with real PatientIDs and dates in, the same
    /// cohort with pseudonyms (and, with `--shift-dates`, shifted dates) out, so that no
    /// later stage holds a real identifier. The readings are sorted again by (pseudonym,
    /// timepoint, reader), the clinical rows by pseudonym; QC issues and each view's
    /// `path` have every ID and date replaced. (Where to read an image is
    /// `Grouped::image_files`, which stays with the input and never enters a cohort.)
    pub fn pseudonymise(&self, mut cohort: Cohort) -> Cohort {
        let map = self.id_map(
            cohort
                .clinical
                .rows
                .iter()
                .map(|r| r.patient_id.as_str())
                .chain(cohort.readings.iter().map(|r| r.patient_id.as_str()))
                .chain(cohort.issues.iter().map(|i| i.patient_id.as_str())),
        );
        self.apply_issues(&map, &mut cohort.issues);
        for r in cohort.readings.iter_mut() {
            let real = std::mem::take(&mut r.patient_id);
            if let Some(d) = r.study_date.as_mut() {
                *d = self.shift_date(&real, *d);
            }
            for v in [r.lateral.as_mut(), r.ap.as_mut()].into_iter().flatten() {
                let path = v.path.to_string_lossy();
                v.path = PathBuf::from(map.scrub(&self.shift_dates_in(&real, &path)));
            }
            r.patient_id = self.id(&real);
        }
        cohort.readings.sort_by(|a, b| {
            (&a.patient_id, a.timepoint_index, &a.observer).cmp(&(
                &b.patient_id,
                b.timepoint_index,
                &b.observer,
            ))
        });
        self.apply_clinical(&mut cohort.clinical);
        cohort
    }

    /// A date moved by the patient's offset (kept when the move leaves chrono's range).
    fn shift_date(&self, patient_id: &str, date: NaiveDate) -> NaiveDate {
        date_of_days(days_of(date) + self.date_offset(patient_id)).unwrap_or(date)
    }

    /// Pseudonymises the clinical table in place, re-sorted by pseudonym.
    fn apply_clinical(&self, clinical: &mut ClinicalTable) {
        let col = |name: &str| {
            clinical
                .headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
        };
        let (pid_col, date_col) = (col("patient_id"), col("surgery_date"));
        for r in clinical.rows.iter_mut() {
            let real = r.patient_id.clone();
            if let Some(c) = date_col {
                r.fields[c] = self.shift_iso(&real, &r.fields[c]);
            }
            if let Some(d) = r.surgery_day.as_mut() {
                *d += self.date_offset(&real);
            }
            r.patient_id = self.id(&real);
            if let Some(c) = pid_col {
                r.fields[c] = r.patient_id.clone();
            }
        }
        clinical
            .rows
            .sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
    }

    /// Pseudonymises QC issues (still carrying real PatientIDs): the patient column, and
    /// every ID of `map` and (with `--shift-dates`) every date inside paths and messages.
    fn apply_issues(&self, map: &IdMap, issues: &mut [QcIssue]) {
        for i in issues.iter_mut() {
            let real = i.patient_id.clone();
            let path = i.path.to_string_lossy().to_string();
            let (path, message) = if real.is_empty() {
                (path, i.message.clone())
            } else {
                (
                    self.shift_dates_in(&real, &path),
                    self.shift_dates_in(&real, &i.message),
                )
            };
            if !real.is_empty() {
                i.patient_id = self.id(&real);
            }
            i.path = PathBuf::from(map.scrub(&path));
            i.message = map.scrub(&message);
        }
    }
}

/// Real PatientIDs and their pseudonyms.
#[derive(Clone, Debug, Default)]
pub struct IdMap {
    pairs: Vec<(String, String)>,
}

impl IdMap {
    /// Replaces every real ID in `s` by its pseudonym.
    pub fn scrub(&self, s: &str) -> String {
        let mut s = s.to_string();
        for (real, pseudo) in &self.pairs {
            if s.contains(real.as_str()) {
                s = s.replace(real.as_str(), pseudo);
            }
        }
        s
    }
}
