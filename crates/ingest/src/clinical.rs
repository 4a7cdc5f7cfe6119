//! The clinical table (`pipeline-io.md`, inputs, item 2) and the calendar arithmetic used
//! for every date in Plumbline.
//!
//! The table is a UTF-8 CSV (a leading byte-order mark is accepted) with a header row
//! naming at least `patient_id`, `surgery_date`, `herniation_level` and
//! `herniation_side`, in any order. Header names are trimmed and matched
//! case-insensitively (`Patient_ID` is `patient_id`); they are kept as written (trimmed)
//! in [`ClinicalTable::headers`]. Every other column is carried through untouched.
//!
//! Values, after trimming spaces:
//! - `patient_id`: not empty; compared exactly (case-sensitive, like DICOM PatientID).
//! - `surgery_date`: `YYYY-MM-DD`, a real calendar date.
//! - `herniation_level`: two levels of `C7, T1..T12, L1..L5, S1`, upper first, joined by
//!   `-` (`L4-L5`, `L5-S1`, `T12-L1`; non-adjacent pairs such as `L4-S1` are accepted,
//!   letters in any case, spaces around `-` allowed). [`ClinicalRow::herniation_level`]
//!   holds the canonical spelling (`L4-L5`); [`ClinicalRow::fields`] the text as written.
//! - `herniation_side`: `left`, `right` or `central`, in any case.
//!
//! A study design without surgery (a cross-sectional survey; the pipeline's
//! `anchor = "none"`) reads the table with [`read_clinical_for`]`(path, false)`: then
//! only `patient_id` is required, and `surgery_date`, `herniation_level` and
//! `herniation_side` may be absent or empty (a value that is present must still be
//! valid).
//!
//! A bad row becomes one [`QcIssue`] (`bad_clinical_row`, error) per bad cell and is
//! skipped; a row whose cells are all empty is skipped silently; a repeated `patient_id`
//! is reported and the first row kept. Only problems that make the whole table unusable
//! (unreadable, not UTF-8, no header, a required column missing or named twice) are a
//! [`ClinicalError`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use plumbline_geometry::{HerniationSide, Level};

use crate::qc::{QcIssue, Severity, codes};

/// The four columns every clinical table must have.
pub const REQUIRED_COLUMNS: [&str; 4] = [
    "patient_id",
    "surgery_date",
    "herniation_level",
    "herniation_side",
];

/// Days in one 400-year cycle of the Gregorian calendar, after which it repeats exactly.
///
/// chrono's [`NaiveDate`] spans about ±262,000 years; the date functions below fold any
/// day count or year into one cycle, let chrono do the calendar there, and add the cycles
/// back, so that they work for every day count as the hand-written arithmetic they
/// replace did.
const DAYS_PER_400_YEARS: i64 = 146_097;

/// Days since 1970-01-01 (proleptic Gregorian) of a civil date; used for all date arithmetic.
///
/// `m` is expected in 1..=12 and `d` in 1..=31; the result for other values is
/// arithmetic, not validated (use [`parse_iso_date`] or [`parse_dicom_date`] on text):
/// month 0 is December of the year before, month 13 January of the year after, day 0 the
/// last day of the month before, and so on.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let months = y * 12 + i64::from(m) - 1;
    let (y, month0) = (months.div_euclid(12), months.rem_euclid(12));
    let (cycles, year_in_cycle) = (y.div_euclid(400), y.rem_euclid(400));
    // Both are small by construction (0..400, 1..=12): a valid first of a month.
    let first = NaiveDate::from_ymd_opt(year_in_cycle as i32, month0 as u32 + 1, 1)
        .expect("the first of a month in years 0..400 is a date");
    i64::from(first.to_epoch_days()) + cycles * DAYS_PER_400_YEARS + i64::from(d) - 1
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let (cycles, rest) = (
        days.div_euclid(DAYS_PER_400_YEARS),
        days.rem_euclid(DAYS_PER_400_YEARS),
    );
    // `rest` is in 0..146_097: a date in 1970..2370.
    let date = NaiveDate::from_epoch_days(rest as i32).expect("days 0..146_097 are dates");
    (
        i64::from(date.year()) + 400 * cycles,
        date.month(),
        date.day(),
    )
}

/// Parses exactly `n` ASCII digits (no sign, no spaces).
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days of a date written as year, month and day digits; `None` unless all three are
/// plain digits and name a real calendar date.
fn checked_days(y: &str, m: &str, d: &str) -> Option<i64> {
    // Four digits at most (the callers cut them), so the year fits chrono's range.
    let year = i32::try_from(digits(y)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, digits(m)?, digits(d)?)?;
    Some(i64::from(date.to_epoch_days()))
}

/// "YYYY-MM-DD" -> days; None unless a real calendar date (2023-02-29 is None).
///
/// Exactly four, two and two digits; no surrounding spaces (callers trim).
pub fn parse_iso_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    checked_days(&s[0..4], &s[5..7], &s[8..10])
}

/// DICOM DA "YYYYMMDD" (spaces/NUL trimmed) -> days; None unless a real date.
///
/// The retired ACR-NEMA form `YYYY.MM.DD` and date ranges are not accepted.
pub fn parse_dicom_date(s: &str) -> Option<i64> {
    let s = s.trim_matches(|c: char| c == ' ' || c == '\0');
    if s.len() != 8 || !s.is_ascii() {
        return None;
    }
    checked_days(&s[0..4], &s[4..6], &s[6..8])
}

/// The date of a DICOM DA value (see [`parse_dicom_date`]): what the scan keeps of a
/// StudyDate.
pub fn dicom_date(s: &str) -> Option<NaiveDate> {
    date_of_days(parse_dicom_date(s)?)
}

/// The date `days` after 1970-01-01 (`None` outside chrono's range, about 262,000 years).
pub fn date_of_days(days: i64) -> Option<NaiveDate> {
    NaiveDate::from_epoch_days(i32::try_from(days).ok()?)
}

/// Days since 1970-01-01 of a date (the day numbers of [`days_from_civil`]).
pub fn days_of(date: NaiveDate) -> i64 {
    i64::from(date.to_epoch_days())
}

/// A date as `YYYY-MM-DD` (the tables' form; [`iso_date`] of its day number).
pub fn iso(date: NaiveDate) -> String {
    iso_date(days_of(date))
}

/// A date as DICOM DA `YYYYMMDD`.
pub fn dicom_da(date: NaiveDate) -> String {
    iso(date).replace('-', "")
}

/// days -> "YYYY-MM-DD".
///
/// Round-trips with [`parse_iso_date`] for years 0000..=9999. Other years are written
/// with at least four characters, sign included (`-001-12-31`, `10000-01-01`), which
/// [`parse_iso_date`] refuses.
pub fn iso_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One valid row of the clinical table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClinicalRow {
    /// 1-based line of the file where the row starts.
    pub line: u64,
    /// PatientID, trimmed.
    pub patient_id: String,
    /// Surgery date, as days since 1970-01-01 (see [`days_from_civil`]); always present
    /// when the table was read for a design anchored on surgery.
    pub surgery_day: Option<i64>,
    /// Herniation level in canonical spelling, e.g. `L4-L5` (present when anchored on
    /// surgery).
    pub herniation_level: Option<String>,
    /// Herniation side (present when anchored on surgery).
    pub herniation_side: Option<HerniationSide>,
    /// Every column of the row as written (including the four above), in header order.
    pub fields: Vec<String>,
}

/// The clinical table: its header and its valid rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClinicalTable {
    /// The file read.
    pub path: PathBuf,
    /// Column names as written (trimmed, BOM removed), in file order.
    pub headers: Vec<String>,
    /// Valid rows, sorted by `patient_id` (unique).
    pub rows: Vec<ClinicalRow>,
}

/// Why the clinical table cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ClinicalError {
    /// The file could not be read.
    #[error(
        "cannot read the clinical table {path}: {source}; check the path given for the clinical CSV"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error(
        "the clinical table {path} is not UTF-8 text (first invalid byte on line {line}); save it as \"CSV UTF-8\""
    )]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line holding the first invalid byte.
        line: u64,
    },
    /// The file has no header row.
    #[error(
        "the clinical table {path} is empty; it needs a header row `patient_id,surgery_date,herniation_level,herniation_side` and one row per patient"
    )]
    NoHeader {
        /// The file.
        path: PathBuf,
    },
    /// The header row could not be parsed as CSV.
    #[error("cannot parse the header row of the clinical table {path}: {source}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The CSV error.
        source: csv::Error,
    },
    /// Required columns are missing from the header row.
    #[error(
        "the clinical table {path} has no column {}; its header row must name {} (in any order, extra columns allowed); found {}{hint}",
        quoted(missing),
        quoted(required),
        quoted(found)
    )]
    MissingColumns {
        /// The file.
        path: PathBuf,
        /// The columns this design requires.
        required: Vec<String>,
        /// The required columns not found.
        missing: Vec<String>,
        /// The header names found.
        found: Vec<String>,
        /// A hint on the cause (wrong separator), or empty.
        hint: String,
    },
    /// A column name appears twice (case-insensitively) in the header row.
    #[error(
        "the clinical table {path} names column `{name}` twice (columns {first} and {second}); rename or remove one"
    )]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The name, as first written.
        name: String,
        /// 1-based column number of the first occurrence.
        first: usize,
        /// 1-based column number of the second.
        second: usize,
    },
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "nothing".to_string();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text of a CSV file: bytes to `str`, UTF-8 BOM removed. On invalid UTF-8, the 1-based
/// line of the first bad byte.
pub(crate) fn csv_text(bytes: &[u8]) -> Result<&str, u64> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.strip_prefix('\u{feff}').unwrap_or(s)),
        Err(e) => {
            let before = &bytes[..e.valid_up_to()];
            Err(before.iter().filter(|&&b| b == b'\n').count() as u64 + 1)
        }
    }
}

/// A CSV reader over text: header row first, rows of any length (checked by callers).
pub(crate) fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes())
}

/// 1-based line numbers of CSV records, from their byte offsets.
///
/// `csv::Position::line` is one short for files with CRLF line ends (a record's position
/// is taken before the `\n` of the previous terminator is consumed), so lines are counted
/// here from byte offsets, skipping the line ends and empty lines before a record.
/// Offsets must not decrease between calls (records are read in order).
pub(crate) struct LineCounter<'a> {
    text: &'a [u8],
    byte: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    /// A counter over the text given to the CSV reader.
    pub(crate) fn new(text: &'a str) -> LineCounter<'a> {
        LineCounter {
            text: text.as_bytes(),
            byte: 0,
            line: 1,
        }
    }

    /// The line where the record (or error) at `pos` starts; 0 when unknown.
    pub(crate) fn line(&mut self, pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else { return 0 };
        let len = self.text.len();
        let mut b = usize::try_from(pos.byte()).unwrap_or(len).min(len);
        while b < len && matches!(self.text[b], b'\r' | b'\n') {
            b += 1;
        }
        if b < self.byte {
            (self.byte, self.line) = (0, 1);
        }
        self.line += self.text[self.byte..b]
            .iter()
            .filter(|&&c| c == b'\n')
            .count() as u64;
        self.byte = b;
        self.line
    }
}

/// A hint when a header row of one field looks separated by something else than `,`.
pub(crate) fn separator_hint(headers: &[String]) -> String {
    if headers.len() == 1 {
        for (sep, name) in [(';', "semicolons"), ('\t', "tabs")] {
            if headers[0].contains(sep) {
                return format!(
                    " (the header seems separated by {name}; Plumbline reads comma-separated files)"
                );
            }
        }
    }
    String::new()
}

/// The levels a herniation level may name, head to pelvis.
fn levels() -> Vec<Level> {
    std::iter::once(Level::C7)
        .chain(Level::thoracolumbar())
        .chain(std::iter::once(Level::S1))
        .collect()
}

/// `L4-L5` (any case, spaces around `-`) -> canonical `L4-L5`; None unless two known
/// levels, upper first.
fn parse_level(s: &str) -> Option<String> {
    let (upper, lower) = s.split_once('-')?;
    let all = levels();
    let find = |p: &str| {
        let p = p.trim();
        all.iter()
            .position(|l| l.to_string().eq_ignore_ascii_case(p))
    };
    let (a, b) = (find(upper)?, find(lower)?);
    (a < b).then(|| format!("{}-{}", all[a], all[b]))
}

fn parse_side(s: &str) -> Option<HerniationSide> {
    match s.to_ascii_lowercase().as_str() {
        "left" => Some(HerniationSide::Left),
        "right" => Some(HerniationSide::Right),
        "central" => Some(HerniationSide::Central),
        _ => None,
    }
}

/// Reads the clinical table of a design anchored on surgery: its valid rows, and a QC
/// issue for each bad or repeated row. The same as [`read_clinical_for`]`(path, true)`.
pub fn read_clinical(path: &Path) -> Result<(ClinicalTable, Vec<QcIssue>), ClinicalError> {
    read_clinical_for(path, true)
}

/// Reads the clinical table; `surgery` says whether the design is anchored on surgery
/// (all of [`REQUIRED_COLUMNS`] required and filled) or not (only `patient_id`).
pub fn read_clinical_for(
    path: &Path,
    surgery: bool,
) -> Result<(ClinicalTable, Vec<QcIssue>), ClinicalError> {
    let required: &[&str] = if surgery {
        &REQUIRED_COLUMNS
    } else {
        &REQUIRED_COLUMNS[..1]
    };
    let bytes = std::fs::read(path).map_err(|source| ClinicalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = csv_text(&bytes).map_err(|line| ClinicalError::NotUtf8 {
        path: path.to_path_buf(),
        line,
    })?;
    if text.trim().is_empty() {
        return Err(ClinicalError::NoHeader {
            path: path.to_path_buf(),
        });
    }
    let mut reader = csv_reader(text);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|source| ClinicalError::Csv {
            path: path.to_path_buf(),
            source,
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let columns = ClinicalColumns::find(path, &headers, required)?;

    let mut rows = RowReader {
        path,
        headers: &headers,
        columns,
        surgery,
        by_id: BTreeMap::new(),
        issues: Vec::new(),
    };
    let mut lines = LineCounter::new(text);
    for result in reader.records() {
        match result {
            Ok(record) => {
                let line = lines.line(record.position());
                rows.row(&record, line);
            }
            Err(e) => {
                let line = lines.line(e.position());
                let file = path.display();
                let issue = rows.issue(
                    "",
                    format!("{file}, line {line}: not readable as CSV ({e}); row skipped"),
                );
                rows.issues.push(issue);
            }
        }
    }
    let RowReader { by_id, issues, .. } = rows;
    let table = ClinicalTable {
        path: path.to_path_buf(),
        headers,
        rows: by_id.into_values().collect(),
    };
    Ok((table, issues))
}

/// Where the clinical columns are in the header row (0-based).
struct ClinicalColumns {
    id: usize,
    date: Option<usize>,
    level: Option<usize>,
    side: Option<usize>,
}

impl ClinicalColumns {
    /// Finds the columns, case-insensitively; an error when a name appears twice or a
    /// `required` column is missing.
    fn find(
        path: &Path,
        headers: &[String],
        required: &[&str],
    ) -> Result<ClinicalColumns, ClinicalError> {
        // Duplicate names (case-insensitive; empty names, e.g. from trailing commas, are
        // allowed).
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, h) in headers.iter().enumerate() {
            if h.is_empty() {
                continue;
            }
            if let Some(&first) = seen.get(&h.to_ascii_lowercase()) {
                return Err(ClinicalError::DuplicateColumn {
                    path: path.to_path_buf(),
                    name: headers[first].clone(),
                    first: first + 1,
                    second: i + 1,
                });
            }
            seen.insert(h.to_ascii_lowercase(), i);
        }
        let missing: Vec<String> = required
            .iter()
            .filter(|c| !seen.contains_key(**c))
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ClinicalError::MissingColumns {
                path: path.to_path_buf(),
                required: required.iter().map(|c| c.to_string()).collect(),
                missing,
                hint: separator_hint(headers),
                found: headers.to_vec(),
            });
        }
        let col = |name: &str| seen.get(name).copied();
        Ok(ClinicalColumns {
            id: col("patient_id").expect("required above"),
            date: col("surgery_date"),
            level: col("herniation_level"),
            side: col("herniation_side"),
        })
    }
}

/// The surgery day, herniation level and side of a row (each `None` when its column is
/// absent, or its cell empty in a design without surgery).
type RowValues = (Option<i64>, Option<String>, Option<HerniationSide>);

/// The rows of one clinical table, as they are read.
struct RowReader<'a> {
    path: &'a Path,
    headers: &'a [String],
    columns: ClinicalColumns,
    /// Whether the design is anchored on surgery.
    surgery: bool,
    /// The valid rows so far.
    by_id: BTreeMap<String, ClinicalRow>,
    issues: Vec<QcIssue>,
}

impl RowReader<'_> {
    /// A `bad_clinical_row` error.
    fn issue(&self, patient_id: &str, message: String) -> QcIssue {
        QcIssue::file(self.path, Severity::Error, codes::BAD_CLINICAL_ROW, message)
            .with_ids("", patient_id)
    }

    /// Takes the record that starts on `line`: a valid row, or issues.
    fn row(&mut self, record: &csv::StringRecord, line: u64) {
        let file = self.path.display();
        if record.iter().all(|f| f.trim().is_empty()) {
            return;
        }
        let c_id = self.columns.id;
        if record.len() != self.headers.len() {
            let pid = record.get(c_id).unwrap_or("").trim();
            let issue = self.issue(
                pid,
                format!(
                    "{file}, line {line}: {} fields but the header has {} columns; row skipped (quote values that contain commas, e.g. \"a, b\")",
                    record.len(),
                    self.headers.len()
                ),
            );
            self.issues.push(issue);
            return;
        }
        let patient_id = record.get(c_id).unwrap_or("").trim().to_string();
        let (surgery_day, herniation_level, herniation_side) = match self.values(record, line) {
            Ok(v) => v,
            Err(bad) => {
                let issues: Vec<QcIssue> = bad
                    .into_iter()
                    .map(|m| self.issue(&patient_id, m))
                    .collect();
                self.issues.extend(issues);
                return;
            }
        };
        if let Some(first) = self.by_id.get(&patient_id) {
            let issue = self.issue(
                &patient_id,
                format!(
                    "{file}, line {line}: column `{}` is `{patient_id}`, which already appears on line {}; the row on line {} is kept and this one skipped",
                    self.headers[c_id],
                    first.line, first.line
                ),
            );
            self.issues.push(issue);
            return;
        }
        self.by_id.insert(
            patient_id.clone(),
            ClinicalRow {
                line,
                patient_id,
                surgery_day,
                herniation_level,
                herniation_side,
                fields: record.iter().map(str::to_string).collect(),
            },
        );
    }

    /// The clinical values of a record with the right number of fields, or one message
    /// per bad cell (an empty `patient_id` included).
    fn values(&self, record: &csv::StringRecord, line: u64) -> Result<RowValues, Vec<String>> {
        let file = self.path.display();
        let ClinicalColumns {
            id: c_id,
            date: c_date,
            level: c_level,
            side: c_side,
        } = self.columns;
        let cell = |c: usize| record.get(c).unwrap_or("").trim();
        let mut bad = Vec::new();
        let mut bad_cell = |c: usize, expected: &str| {
            bad.push(format!(
                "{file}, line {line}: column `{}` is `{}`; expected {expected}; row skipped",
                self.headers[c],
                record.get(c).unwrap_or("")
            ));
        };
        if cell(c_id).is_empty() {
            bad_cell(c_id, "the patient's PatientID (0010,0020), not empty");
        }
        // A column that is absent, or an empty cell in a design without surgery, is
        // `None`; a value that does not parse is `Some(None)` and a bad cell.
        let optional = |c: Option<usize>| c.map(cell).filter(|v| self.surgery || !v.is_empty());
        let surgery_day = optional(c_date).map(parse_iso_date);
        if let (Some(None), Some(c)) = (surgery_day, c_date) {
            bad_cell(c, "a real date written YYYY-MM-DD, e.g. 2023-04-17");
        }
        let level = optional(c_level).map(parse_level);
        if let (Some(None), Some(c)) = (&level, c_level) {
            bad_cell(
                c,
                "two levels of C7, T1..T12, L1..L5, S1, upper first, joined by `-`, e.g. `L4-L5`, `L5-S1` or `T12-L1`",
            );
        }
        let side = optional(c_side).map(parse_side);
        if let (Some(None), Some(c)) = (side, c_side) {
            bad_cell(c, "`left`, `right` or `central`");
        }
        if !bad.is_empty() {
            return Err(bad);
        }
        Ok((surgery_day.flatten(), level.flatten(), side.flatten()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn study_dates_are_dates() {
        let d = dicom_date("20240229").unwrap();
        assert_eq!(d, NaiveDate::from_ymd_opt(2024, 2, 29).unwrap());
        assert_eq!(
            (iso(d), dicom_da(d)),
            ("2024-02-29".into(), "20240229".into())
        );
        assert_eq!(days_of(d), days_from_civil(2024, 2, 29));
        assert_eq!(date_of_days(days_of(d)), Some(d));
        // DICOM pads with a space or a NUL: trimmed.
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1);
        assert_eq!(dicom_date(" 19700101\0"), epoch);
        assert_eq!(dicom_date("19700101 "), epoch);
        assert_eq!(epoch.map(days_of), Some(0));
        for bad in ["20230229", "2024-02-29", "2024022", "20241301", ""] {
            assert_eq!(dicom_date(bad), None, "{bad}");
        }
        assert_eq!(date_of_days(i64::MAX), None);
    }

    use super::*;

    /// Writes `contents` to a fresh file in the system temp folder.
    fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("plumbline-clinical-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }

    const HEADER: &str = "patient_id,surgery_date,herniation_level,herniation_side,sex\n";

    #[test]
    fn leap_years() {
        assert!(parse_iso_date("2000-02-29").is_some());
        assert!(parse_iso_date("1900-02-29").is_none());
        assert!(parse_iso_date("2024-02-29").is_some());
        assert!(parse_iso_date("2023-02-29").is_none());
        assert_eq!(
            parse_iso_date("2024-03-01"),
            parse_iso_date("2024-02-29").map(|d| d + 1)
        );
        assert_eq!(parse_iso_date("1970-01-01"), Some(0));
        assert_eq!(parse_iso_date("2000-03-01"), Some(11_017));
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn iso_date_rejects_malformed() {
        for s in [
            "",
            "2023-4-17",
            "23-04-17",
            "2023/04/17",
            "2023-04-17 ",
            " 2023-04-17",
            "2023-13-01",
            "2023-00-10",
            "2023-04-00",
            "2023-04-31",
            "+023-04-17",
            "2023-+4-17",
            "20230417",
            "２０２３-04-17",
        ] {
            assert_eq!(parse_iso_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn dicom_dates() {
        assert_eq!(parse_dicom_date("20000229"), parse_iso_date("2000-02-29"));
        assert_eq!(
            parse_dicom_date(" 20240229\0"),
            parse_iso_date("2024-02-29")
        );
        assert_eq!(parse_dicom_date("20240229 "), parse_iso_date("2024-02-29"));
        for s in [
            "19000229",
            "2024.02.29",
            "2024022",
            "202402290",
            "",
            "        ",
            "2024-2-29",
            "+0240229",
        ] {
            assert_eq!(parse_dicom_date(s), None, "{s:?}");
        }
    }

    /// Month lengths written out by hand, independently of the code under test.
    fn month_len(y: i64, m: u32) -> u32 {
        match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
            2 => 28,
            _ => unreachable!("month {m}"),
        }
    }

    /// The day after `(y, m, d)`, counted by hand.
    fn next_day((y, m, d): (i64, u32, u32)) -> (i64, u32, u32) {
        match (d < month_len(y, m), m < 12) {
            (true, _) => (y, m, d + 1),
            (false, true) => (y, m + 1, 1),
            (false, false) => (y + 1, 1, 1),
        }
    }

    /// The day before `(y, m, d)`, counted by hand.
    fn previous_day((y, m, d): (i64, u32, u32)) -> (i64, u32, u32) {
        match (d > 1, m > 1) {
            (true, _) => (y, m, d - 1),
            (false, true) => (y, m - 1, month_len(y, m - 1)),
            (false, false) => (y - 1, 12, 31),
        }
    }

    #[test]
    fn round_trip_days_and_iso() {
        // Every day from 1600-01-01 to 2400-12-31, against an independent day counter.
        let start = days_from_civil(1600, 1, 1);
        let end = days_from_civil(2400, 12, 31);
        let (mut y, mut m, mut d) = (1600_i64, 1_u32, 1_u32);
        for days in start..=end {
            let s = iso_date(days);
            assert_eq!(s, format!("{y:04}-{m:02}-{d:02}"));
            assert_eq!(parse_iso_date(&s), Some(days), "{s}");
            assert_eq!(parse_dicom_date(&s.replace('-', "")), Some(days), "{s}");
            (y, m, d) = next_day((y, m, d));
        }
        assert_eq!((y, m, d), (2401, 1, 1));
        assert_eq!(iso_date(0), "1970-01-01");
        assert_eq!(iso_date(-1), "1969-12-31");
        assert_eq!(iso_date(days_from_civil(0, 1, 1)), "0000-01-01");
        assert_eq!(iso_date(days_from_civil(9999, 12, 31)), "9999-12-31");
    }

    #[test]
    fn iso_date_agrees_with_an_independent_day_counter() {
        // Days -200,000..200,000 (1422 to 2517), counted by hand from 1970-01-01 both
        // ways. (This compared with plumbline-synth's copy of the old day arithmetic
        // before the dates moved to chrono.)
        let (mut forward, mut backward) = ((1970, 1, 1), (1970, 1, 1));
        for days in 0..200_000 {
            let (y, m, d) = forward;
            assert_eq!(iso_date(days), format!("{y:04}-{m:02}-{d:02}"));
            assert_eq!(days_from_civil(y, m, d), days);
            let (y, m, d) = backward;
            assert_eq!(iso_date(-days), format!("{y:04}-{m:02}-{d:02}"));
            assert_eq!(days_from_civil(y, m, d), -days);
            (forward, backward) = (next_day(forward), previous_day(backward));
        }
    }

    #[test]
    fn dates_outside_years_0000_to_9999() {
        // Written with a sign or a fifth digit, and refused by the parsers.
        let before = days_from_civil(0, 1, 1) - 1;
        let after = days_from_civil(9999, 12, 31) + 1;
        assert_eq!(iso_date(before), "-001-12-31");
        assert_eq!(iso_date(after), "10000-01-01");
        assert_eq!(parse_iso_date(&iso_date(before)), None);
        assert_eq!(parse_iso_date(&iso_date(after)), None);
        // Far beyond chrono's range (about ±262,000 years) the calendar still repeats
        // every 400 years.
        for days in [
            i64::MIN / 4,
            -1_000_000_000_000,
            1_000_000_000_000,
            i64::MAX / 4,
        ] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{days}");
            assert_eq!(
                civil_from_days(days + DAYS_PER_400_YEARS),
                (y + 400, m, d),
                "{days}"
            );
            assert_eq!(next_day((y, m, d)), civil_from_days(days + 1), "{days}");
        }
        // Out-of-range months and days carry over, as plain arithmetic would.
        assert_eq!(days_from_civil(2024, 0, 1), days_from_civil(2023, 12, 1));
        assert_eq!(days_from_civil(2023, 13, 1), days_from_civil(2024, 1, 1));
        assert_eq!(days_from_civil(2023, 14, 1), days_from_civil(2024, 2, 1));
        assert_eq!(days_from_civil(2024, 2, 30), days_from_civil(2024, 3, 1));
        assert_eq!(days_from_civil(2024, 3, 0), days_from_civil(2024, 2, 29));
    }

    #[test]
    fn levels_and_sides() {
        assert_eq!(parse_level("L4-L5").as_deref(), Some("L4-L5"));
        assert_eq!(parse_level("l5 - s1").as_deref(), Some("L5-S1"));
        assert_eq!(parse_level("T12-L1").as_deref(), Some("T12-L1"));
        assert_eq!(parse_level("C7-T1").as_deref(), Some("C7-T1"));
        assert_eq!(parse_level("L4-S1").as_deref(), Some("L4-S1"));
        for s in [
            "L5-L4", "L4-L4", "L4", "L4/L5", "L6-S1", "L4-L5-S1", "", "S1-S2", "T13-L1", "L04-L05",
        ] {
            assert_eq!(parse_level(s), None, "{s:?}");
        }
        assert_eq!(parse_side("Left"), Some(HerniationSide::Left));
        assert_eq!(parse_side("RIGHT"), Some(HerniationSide::Right));
        assert_eq!(parse_side("central"), Some(HerniationSide::Central));
        assert_eq!(parse_side("bilateral"), None);
    }

    #[test]
    fn reads_committed_cohort_table() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cohort-small/clinical.csv");
        let (table, issues) = read_clinical(&path).unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(table.rows.len(), 8);
        assert_eq!(
            table.headers[4..],
            [
                "sex",
                "age_years",
                "hip_pain",
                "fusion_to_sacrum",
                "fused_levels"
            ]
        );
        let p1 = &table.rows[0];
        assert_eq!(p1.patient_id, "P0001");
        assert_eq!(p1.line, 2);
        assert_eq!(p1.surgery_day.map(iso_date).as_deref(), Some("2021-06-03"));
        assert_eq!(p1.herniation_side, Some(HerniationSide::Left));
        assert_eq!(
            p1.fields,
            [
                "P0001",
                "2021-06-03",
                "L4-L5",
                "left",
                "M",
                "41",
                "yes",
                "yes",
                "2"
            ]
        );
    }

    #[test]
    fn bom_crlf_any_column_order_and_case() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/clinical_bom.csv");
        let (table, issues) = read_clinical(&path).unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            table.headers,
            [
                "Patient_ID",
                "note",
                "Herniation_Side",
                "surgery_date",
                "herniation_level"
            ]
        );
        let ids: Vec<_> = table.rows.iter().map(|r| r.patient_id.as_str()).collect();
        assert_eq!(ids, ["A01", "B02"]); // sorted, not file order
        let b = &table.rows[1];
        assert_eq!(b.line, 2);
        assert_eq!(b.herniation_level.as_deref(), Some("L5-S1"));
        assert_eq!(b.herniation_side, Some(HerniationSide::Central));
        assert_eq!(
            b.fields,
            ["B02", "second, quoted", "Central", "2022-12-31", "l5-s1"]
        );
        assert_eq!(table.rows[0].line, 3);
        assert_eq!(table.rows[0].herniation_side, Some(HerniationSide::Right));
    }

    #[test]
    fn bad_rows_are_reported_and_skipped() {
        let csv = format!(
            "{HEADER}\
             P1,2023-04-17,L4-L5,left,F\n\
             ,2023-04-17,L4-L5,left,F\n\
             P3,2023-02-29,L4-L5,left,F\n\
             P4,2023-04-17,L5-L4,left,F\n\
             P5,2023-04-17,L4-L5,up,F\n\
             P6,2023-04-17,L4-L5,left\n\
             P1,2023-05-01,L3-L4,right,M\n\
             ,,,,\n\
             P9,17/04/2023,L4-L5,right,M\n"
        );
        let path = temp_file("bad_rows.csv", csv.as_bytes());
        let (table, issues) = read_clinical(&path).unwrap();
        assert_eq!(table.rows.len(), 1);
        assert_eq!(table.rows[0].patient_id, "P1");
        assert_eq!(table.rows[0].line, 2);
        let expect = [
            (3, "patient_id", "``", ""),
            (4, "surgery_date", "`2023-02-29`", "P3"),
            (5, "herniation_level", "`L5-L4`", "P4"),
            (6, "herniation_side", "`up`", "P5"),
            (7, "", "4 fields but the header has 5", "P6"),
            (8, "patient_id", "line 2", "P1"),
            (10, "surgery_date", "`17/04/2023`", "P9"),
        ];
        assert_eq!(issues.len(), expect.len(), "{issues:#?}");
        let file = path.display().to_string();
        for (issue, (line, column, value, pid)) in issues.iter().zip(expect) {
            let m = &issue.message;
            assert_eq!(issue.code, codes::BAD_CLINICAL_ROW);
            assert_eq!(issue.severity, Severity::Error);
            assert_eq!(issue.path, path);
            assert_eq!(issue.patient_id, pid, "{m}");
            assert!(m.starts_with(&format!("{file}, line {line}: ")), "{m}");
            assert!(
                m.contains(&format!("`{column}`")) || column.is_empty(),
                "{m}"
            );
            assert!(m.contains(value), "{m}");
        }
        assert!(issues[1].message.contains("YYYY-MM-DD"));
        assert!(issues[3].message.contains("`left`, `right` or `central`"));
        assert!(
            issues[5]
                .message
                .contains("line 8: column `patient_id` is `P1`, which already appears on line 2")
        );
    }

    #[test]
    fn line_numbers_with_crlf_blank_lines_and_multiline_quotes() {
        let csv = "patient_id,surgery_date,herniation_level,herniation_side,note\r\n\r\n\
                   P1,2023-01-01,L4-L5,left,\"two\r\nlines\"\r\n\r\n\r\n\
                   P2,2023-01-01,L4-L5,up,x\r\n\
                   P3,2023-01-01,L4-L5,left,x";
        let path = temp_file("lines.csv", csv.as_bytes());
        let (table, issues) = read_clinical(&path).unwrap();
        let lines: Vec<_> = table
            .rows
            .iter()
            .map(|r| (r.patient_id.as_str(), r.line))
            .collect();
        assert_eq!(lines, [("P1", 3), ("P3", 8)]);
        assert_eq!(table.rows[0].fields[4], "two\r\nlines");
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0]
                .message
                .contains(", line 7: column `herniation_side`"),
            "{}",
            issues[0].message
        );
    }

    #[test]
    fn several_bad_cells_give_several_issues() {
        let path = temp_file(
            "two_bad.csv",
            format!("{HEADER}P1,2023-04-31,L4-L5,sideways,F\n").as_bytes(),
        );
        let (table, issues) = read_clinical(&path).unwrap();
        assert!(table.rows.is_empty());
        assert_eq!(issues.len(), 2);
        assert!(issues[0].message.contains("`surgery_date`"));
        assert!(issues[1].message.contains("`herniation_side`"));
    }

    #[test]
    fn fatal_problems() {
        let missing = Path::new("/nonexistent/plumbline/clinical.csv");
        let e = read_clinical(missing).unwrap_err();
        assert!(matches!(e, ClinicalError::Read { .. }));
        assert!(
            e.to_string()
                .contains("/nonexistent/plumbline/clinical.csv")
        );

        let p = temp_file("empty.csv", b"\xef\xbb\xbf\n  \n");
        assert!(matches!(
            read_clinical(&p),
            Err(ClinicalError::NoHeader { .. })
        ));

        let p = temp_file("latin1.csv", b"patient_id,surgery_date,herniation_level,herniation_side\nP\xe9,2023-01-01,L4-L5,left\n");
        let e = read_clinical(&p).unwrap_err();
        assert!(matches!(e, ClinicalError::NotUtf8 { line: 2, .. }), "{e}");
        assert!(e.to_string().contains("line 2"));

        let p = temp_file(
            "no_side.csv",
            b"patient_id,surgery_date,herniation_level\nP1,2023-01-01,L4-L5\n",
        );
        let e = read_clinical(&p).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ClinicalError::MissingColumns { .. }));
        assert!(msg.contains("no column `herniation_side`"), "{msg}");
        assert!(msg.contains(&p.display().to_string()));

        let p = temp_file(
            "semicolons.csv",
            b"patient_id;surgery_date;herniation_level;herniation_side\n",
        );
        let msg = read_clinical(&p).unwrap_err().to_string();
        assert!(msg.contains("separated by semicolons"), "{msg}");

        let p = temp_file(
            "dup.csv",
            b"patient_id,surgery_date,herniation_level,herniation_side,Patient_ID\n",
        );
        let e = read_clinical(&p).unwrap_err();
        assert!(
            matches!(
                e,
                ClinicalError::DuplicateColumn {
                    first: 1,
                    second: 5,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn trailing_empty_columns_are_carried() {
        let p = temp_file(
            "trailing.csv",
            b"patient_id,surgery_date,herniation_level,herniation_side,,\nP1, 2023-01-01 ,L4-L5,left,,\n",
        );
        let (table, issues) = read_clinical(&p).unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(table.headers.len(), 6);
        assert_eq!(table.rows[0].fields[1], " 2023-01-01 ");
        assert_eq!(
            table.rows[0].surgery_day.map(iso_date).as_deref(),
            Some("2023-01-01")
        );
    }

    #[test]
    fn a_design_without_surgery_needs_only_patient_id() {
        let p = temp_file("survey.csv", b"patient_id,sex\nP1,F\nP2,M\n");
        let (t, issues) = read_clinical_for(&p, false).unwrap();
        assert!(issues.is_empty());
        assert_eq!(t.rows.len(), 2);
        assert_eq!(
            (t.rows[0].surgery_day, t.rows[0].herniation_side),
            (None, None)
        );
        // The same table for a design anchored on surgery: the three columns are missing.
        let msg = read_clinical(&p).unwrap_err().to_string();
        assert!(
            msg.contains("no column `surgery_date`, `herniation_level`, `herniation_side`"),
            "{msg}"
        );
        // Present columns: empty cells are allowed, bad values are still bad rows.
        let p = temp_file(
            "survey2.csv",
            b"patient_id,surgery_date,herniation_side\nP1,,\nP2,2023-02-30,left\nP3,2023-01-05,left\n",
        );
        let (t, issues) = read_clinical_for(&p, false).unwrap();
        assert_eq!(
            t.rows
                .iter()
                .map(|r| r.patient_id.as_str())
                .collect::<Vec<_>>(),
            ["P1", "P3"]
        );
        assert_eq!(t.rows[1].herniation_side, Some(HerniationSide::Left));
        assert_eq!(issues.len(), 1);
        assert!(
            issues[0].message.contains("`2023-02-30`"),
            "{}",
            issues[0].message
        );
        // Anchored on surgery, the empty cells of P1 are errors.
        let p = temp_file(
            "surgery.csv",
            b"patient_id,surgery_date,herniation_level,herniation_side\nP1,,,\n",
        );
        let (t, issues) = read_clinical(&p).unwrap();
        assert!(t.rows.is_empty());
        assert_eq!(issues.len(), 3);
    }
}
