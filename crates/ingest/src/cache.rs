//! The scan cache, or work record, of a run: an append-only journal of scanned files in the output folder
//! (`.plumbline/scan-journal.jsonl`), one JSON line per file with its key (path, size,
//! modification time, SHA-256 of its first 4 KiB) and everything the scan learnt from it
//! (a landmark document's points packed into one string, `records::packed_points`: the
//! record of 600 generated patients is 15 MB instead of 44 MB as JSON objects).
//!
//! A run killed at any moment and started again with the same command reuses every file
//! already in the journal and reads only the rest; a later run on a grown or changed tree
//! reads only new or changed files. `--fresh` ignores and restarts the journal.
//!
//! The record's first line is a header: the work record format, the plumbline version and
//! a SHA-256 of each setting that changes what the scan reads from a file
//! ([`ScanOptions::fingerprint`]: the pipeline's vocabulary, the SR depth cap, the
//! structure limits) and of the landmarks' numbering (the points' packed form stores
//! ordinals). A record whose header differs from the current run's (or that has
//! none) is set aside, renamed `scan-journal.discarded-N.jsonl` beside it, never deleted,
//! and the run reads every file; [`ScanCache::discarded`] says why, for the closing line and
//! `run.json`.
//!
//! Why a JSON-lines journal rather than SQLite or redb: the only operations are "append
//! one finished file" and "load all at start", which an append-only file does with no
//! dependency and no compile cost.
//!
//! The scan's threads do not wait for each other to record: each thread serialises its
//! lines into its own buffer, which goes to the file with one `write` call, under a lock
//! held only for that call, once it holds 256 KiB of whole lines or its oldest line is
//! 200 ms old; the rest are written when the cache is dropped. A kill loses at most the
//! last fraction of a second of each thread's lines (those files are read again on
//! resume) and leaves at worst a torn last line, which the loader skips.
//!
//! A testing aid, not for users: with the environment variable [`HOLD_ENV`] set to a
//! number n, each file's line is written as soon as the file is scanned (no batching), and
//! once this run has written n lines every scan thread that records another file writes
//! its line and then waits forever. The run then stays alive, mid-scan, with between n and
//! n + threads - 1 new lines in its record, until it is killed: `crates/cli/tests/resume.rs`
//! kills runs there with SIGKILL, at a known point instead of a guessed moment.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::precheck::{Opened, with_buffer};
use crate::qc::QcIssue;
use crate::scan::{FileOutcome, ScanOptions, scan_opened, scan_unopened};

/// Lower-case hex SHA-256 of `bytes`.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// ScanCache file name inside the output folder.
pub const JOURNAL: &str = ".plumbline/scan-journal.jsonl";

/// The environment variable that holds a run once it has recorded that many files (a
/// testing aid; see the module documentation).
pub const HOLD_ENV: &str = "PLUMBLINE_TEST_HOLD_AFTER_RECORDED";

/// Version of the record's line format (the header's `plumbline_work_record`).
/// 6: a document's points packed into one string (`records::packed_points`).
const FORMAT: u32 = 6;

/// A file's identity for reuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileKey {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i128,
    /// SHA-256 (hex) of the first 4 KiB.
    pub head: String,
}

impl FileKey {
    /// The key of a file [`Opened::open`] opened; `None` when its modification time
    /// cannot be read.
    pub fn of_opened(o: &Opened<'_>) -> Option<FileKey> {
        let mtime_ns = o
            .meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        Some(FileKey {
            size: o.len,
            mtime_ns,
            head: sha256_hex(&o.head()[..o.head().len().min(4096)]),
        })
    }

    /// Reads a file's key; `None` when it cannot be stat'ed or read.
    pub fn of(path: &Path) -> Option<FileKey> {
        let meta = std::fs::metadata(path).ok()?;
        let mtime_ns = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let mut head = Vec::with_capacity(4096);
        File::open(path)
            .ok()?
            .take(4096)
            .read_to_end(&mut head)
            .ok()?;
        Some(FileKey {
            size: meta.len(),
            mtime_ns,
            head: sha256_hex(&head),
        })
    }
}

/// The record's first line: what the entries below it were read with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    plumbline_work_record: u32,
    /// The plumbline version that read the files.
    version: String,
    /// Setting name -> SHA-256 of its canonical text ([`ScanOptions::fingerprint`]).
    settings: BTreeMap<String, String>,
}

impl Header {
    fn current(scan: &ScanOptions) -> Header {
        Header {
            plumbline_work_record: FORMAT,
            version: env!("CARGO_PKG_VERSION").to_string(),
            settings: scan
                .fingerprint()
                .into_iter()
                .chain([("landmark ordinals", landmark_ordinals())])
                .map(|(name, value)| (name.to_string(), sha256_hex(value.as_bytes())))
                .collect(),
        }
    }

    /// Why a record with header `old` cannot serve a run with this header; `None` when it can.
    fn mismatch(&self, old: &Header) -> Option<String> {
        if old.plumbline_work_record != self.plumbline_work_record {
            return Some(format!(
                "work record format {} -> {}",
                old.plumbline_work_record, self.plumbline_work_record
            ));
        }
        let mut why = Vec::new();
        if old.version != self.version {
            why.push(format!("plumbline {} -> {}", old.version, self.version));
        }
        for (name, hash) in &self.settings {
            match old.settings.get(name) {
                Some(h) if h == hash => {}
                Some(_) => why.push(format!("{name} changed")),
                None => why.push(format!("{name} not recorded")),
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// The landmark names in the order of their ordinals, one per line: a point's landmark
/// is recorded as its ordinal (`records::packed_points`), so a build whose landmarks
/// number differently must not reuse the record.
fn landmark_ordinals() -> String {
    (0..=u16::from(u8::MAX))
        .filter_map(plumbline_geometry::Landmark::from_ordinal)
        .map(|l| format!("{} {l}\n", l.ordinal().unwrap_or(u16::MAX)))
        .collect()
}

/// One line of the record after the header, as written (borrowed) ...
#[derive(Serialize)]
struct EntryRef<'a> {
    path: &'a Path,
    key: &'a FileKey,
    outcome: &'a FileOutcome,
    issues: &'a [QcIssue],
}

/// ... and as read back.
#[derive(Deserialize)]
struct Entry {
    path: PathBuf,
    key: FileKey,
    outcome: FileOutcome,
    issues: Vec<QcIssue>,
}

/// A recorded outcome until a run takes it.
type Reusable = Mutex<Option<(FileOutcome, Vec<QcIssue>)>>;

/// The journal: entries loaded at start, and the open file new entries are appended to.
pub struct ScanCache {
    /// Each recorded file's key and outcome; the outcome is moved out when reused (a run
    /// asks for each path once), so a rerun holds each file's records once, not twice.
    entries: HashMap<PathBuf, (FileKey, Reusable)>,
    file: Mutex<File>,
    /// Whole lines not yet written, one buffer per thread of the pool that scans (by
    /// rayon's thread index; the last one for any other thread), with when its first
    /// line came.
    pending: Vec<Mutex<(Vec<u8>, Instant)>>,
    discarded: Option<String>,
    read: AtomicUsize,
    reused: AtomicUsize,
    /// [`HOLD_ENV`]'s number, when set: lines are written one by one and a thread that
    /// has written the line that makes this many (or a later one) waits forever.
    hold: Option<usize>,
    /// Lines this run has written, counted only with `hold`.
    written: AtomicUsize,
}

/// The journal cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the work record {}: {source}; check that the output folder is writable", path.display())]
pub struct CacheError {
    /// The journal path.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

impl ScanCache {
    /// Opens the journal in `out` for a scan with options `scan`. An existing record is
    /// reused when its header matches this run's, set aside (renamed beside it) when it
    /// does not, and ignored with `fresh`; a new record starts with this run's header.
    pub fn open(out: &Path, fresh: bool, scan: &ScanOptions) -> Result<ScanCache, CacheError> {
        let path = out.join(JOURNAL);
        let err = |source| CacheError {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(err)?;
        let header = Header::current(scan);
        let mut entries = HashMap::new();
        let mut discarded = None;
        let mut reuse = false;
        if !fresh && let Ok(f) = File::open(&path) {
            let mut lines = BufReader::new(f).split(b'\n').map_while(Result::ok);
            match lines.next() {
                None => {} // created by a run killed before its header was written
                Some(first) => match serde_json::from_slice::<Header>(&first) {
                    Ok(old) => match header.mismatch(&old) {
                        None => {
                            reuse = true;
                            for line in lines {
                                if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                                    entries.insert(
                                        e.path,
                                        (e.key, Mutex::new(Some((e.outcome, e.issues)))),
                                    );
                                }
                            }
                        }
                        Some(why) => discarded = Some(why),
                    },
                    Err(_) => {
                        discarded = Some(
                            "work record without a settings header (an older plumbline)".into(),
                        )
                    }
                },
            }
            if discarded.is_some() {
                set_aside(&path).map_err(err)?;
            }
        }
        let file = if reuse {
            OpenOptions::new().append(true).open(&path)
        } else {
            let mut line = serde_json::to_vec(&header).expect("a header serialises");
            line.push(b'\n');
            File::create(&path).and_then(|mut f| f.write_all(&line).map(|()| f))
        }
        .map_err(err)?;
        Ok(ScanCache {
            entries,
            file: Mutex::new(file),
            pending: (0..=rayon::current_num_threads())
                .map(|_| Mutex::new((Vec::new(), Instant::now())))
                .collect(),
            discarded,
            read: AtomicUsize::new(0),
            reused: AtomicUsize::new(0),
            hold: std::env::var(HOLD_ENV)
                .ok()
                .and_then(|n| n.trim().parse().ok()),
            written: AtomicUsize::new(0),
        })
    }

    /// Scans one file through the cache: its recorded outcome when its key still
    /// matches, else [`crate::scan::scan_file`], recorded for the next run. (The reader
    /// [`crate::scan::scan_with`] takes.)
    pub fn scan_file(&self, path: &Path, opts: &ScanOptions) -> (FileOutcome, Vec<QcIssue>) {
        // One open and one first read give the key and start the scan.
        with_buffer(|buf| {
            let opened = Opened::open_first(path, buf, opts.first_read());
            let key = opened.as_ref().ok().and_then(FileKey::of_opened);
            if let Some(k) = &key
                && let Some(hit) = self.reuse(path, k)
            {
                self.reused.fetch_add(1, Ordering::Relaxed);
                return hit;
            }
            let r = match opened {
                Ok(o) => scan_opened(path, opts, o),
                Err(e) => scan_unopened(path, opts, &e),
            };
            self.after_scan(path, key, r)
        })
    }

    /// Counts and records a file just scanned (not one of another shard: that one was
    /// not read in full); returns its outcome.
    fn after_scan(
        &self,
        path: &Path,
        key: Option<FileKey>,
        r: (FileOutcome, Vec<QcIssue>),
    ) -> (FileOutcome, Vec<QcIssue>) {
        self.read.fetch_add(1, Ordering::Relaxed);
        // A file of another shard was not read in full: nothing to record.
        if let Some(k) = key
            && !matches!(r.0, FileOutcome::Foreign(_))
        {
            self.record(path, &k, &r.0, &r.1);
        }
        r
    }

    /// Files read so far, and files whose recorded outcome was reused.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.read.load(Ordering::Relaxed),
            self.reused.load(Ordering::Relaxed),
        )
    }

    /// Why the record an earlier run left was set aside (`None` when it was reused, or
    /// there was none, or `--fresh` ignored it).
    pub fn discarded(&self) -> Option<&str> {
        self.discarded.as_deref()
    }

    /// The recorded outcome of `path` if its key still matches, moved out of the cache:
    /// a second call for the same path finds nothing and the file is read again.
    pub fn reuse(&self, path: &Path, key: &FileKey) -> Option<(FileOutcome, Vec<QcIssue>)> {
        let (k, recorded) = self.entries.get(path)?;
        if k != key {
            return None;
        }
        recorded.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Appends one scanned file (one `write` of one line). A file whose line cannot be
    /// written (a path that is not UTF-8, a full disk) is simply read again next time.
    pub fn record(&self, path: &Path, key: &FileKey, outcome: &FileOutcome, issues: &[QcIssue]) {
        let entry = EntryRef {
            path,
            key,
            outcome,
            issues,
        };
        let Ok(mut line) = serde_json::to_vec(&entry) else {
            return;
        };
        line.push(b'\n');
        if let Some(n) = self.hold {
            self.write_out(&mut line);
            if self.written.fetch_add(1, Ordering::SeqCst) + 1 >= n {
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            return;
        }
        let last = self.pending.len() - 1;
        let slot = rayon::current_thread_index().map_or(last, |i| i.min(last));
        let Ok(mut pending) = self.pending[slot].lock() else {
            return;
        };
        let (buf, since) = &mut *pending;
        if buf.is_empty() {
            *since = Instant::now();
        }
        buf.extend_from_slice(&line);
        if buf.len() >= BATCH || since.elapsed() >= BATCH_AGE {
            self.write_out(buf);
        }
    }

    /// Appends whole lines to the journal (one `write` call) and empties `buf`.
    fn write_out(&self, buf: &mut Vec<u8>) {
        if let Ok(mut f) = self.file.lock() {
            let _ = f.write_all(buf);
        }
        buf.clear();
    }
}

/// How many bytes of lines a thread gathers before writing them.
const BATCH: usize = 256 << 10;

/// How long a thread's oldest unwritten line may wait.
const BATCH_AGE: Duration = Duration::from_millis(200);

impl Drop for ScanCache {
    /// Writes the lines still buffered.
    fn drop(&mut self) {
        for slot in &self.pending {
            if let Ok(mut pending) = slot.lock()
                && !pending.0.is_empty()
            {
                let mut lines = std::mem::take(&mut pending.0);
                self.write_out(&mut lines);
            }
        }
    }
}

/// Renames the record to the first free `scan-journal.discarded-N.jsonl` beside it.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let dir = path.parent().expect("has a parent");
    let mut n = 1;
    loop {
        let to = dir.join(format!("scan-journal.discarded-{n}.jsonl"));
        if !to.exists() {
            std::fs::rename(path, &to)?;
            return Ok(to);
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanOptions;
    use crate::scan::list_files;
    use crate::scan::scan_file;

    #[test]
    fn every_outcome_of_the_fixtures_round_trips_exactly() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let (files, _) = list_files(&root).unwrap();
        // The first 400 files (not the large codec files), and every kind of landmark
        // file: OHIF SRs, and Slicer markups in mm (points without pixels yet).
        let wanted = |f: &&PathBuf| {
            let s = f.to_string_lossy();
            !s.contains("/codecs/") && !s.contains("node_modules")
        };
        let special = files.iter().filter(|f| {
            let s = f.to_string_lossy();
            s.contains("/interop/slicer/") || s.contains("/interop/ohif/sr/")
        });
        let mut n = 0;
        let mut mm_points = 0;
        for f in files.iter().filter(wanted).take(400).chain(special) {
            let (o, i) = scan_file(f, &ScanOptions::default());
            let key = FileKey::of(f).unwrap();
            let line = serde_json::to_vec(&EntryRef {
                path: f,
                key: &key,
                outcome: &o,
                issues: &i,
            })
            .unwrap();
            let back: Entry = serde_json::from_slice(&line).unwrap();
            // Written again, the entry is the same bytes (this holds with NaN too).
            let again = serde_json::to_vec(&EntryRef {
                path: &back.path,
                key: &back.key,
                outcome: &back.outcome,
                issues: &back.issues,
            })
            .unwrap();
            assert_eq!(again, line, "{}", f.display());
            let nan = match &o {
                FileOutcome::Landmarks(d) => d.points.iter().filter(|p| p.lps().is_some()).count(),
                _ => 0,
            };
            mm_points += nan;
            if nan == 0 {
                assert_eq!(
                    (back.path, back.key, back.outcome, back.issues),
                    (f.clone(), key, o, i),
                    "{}",
                    f.display()
                );
            }
            n += 1;
        }
        assert!(n > 150);
        assert!(mm_points >= 900, "{mm_points} Slicer points in mm");
    }

    #[test]
    fn a_recorded_outcome_is_reused_once_and_only_with_its_key() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cohort-small");
        let (files, _) = list_files(&root.join("dicom")).unwrap();
        let f = &files[0];
        let out =
            std::env::temp_dir().join(format!("plumbline-cache-reuse-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        let opts = ScanOptions::default();
        let first = ScanCache::open(&out, false, &opts).unwrap();
        let scanned = first.scan_file(f, &opts);
        assert_eq!(first.counts(), (1, 0));
        drop(first);
        let cache = ScanCache::open(&out, false, &opts).unwrap();
        let key = FileKey::of(f).unwrap();
        let mut other = key.clone();
        other.size += 1;
        assert!(
            cache.reuse(f, &other).is_none(),
            "a changed key is not reused"
        );
        assert_eq!(cache.reuse(f, &key), Some(scanned));
        // Moved out, not cloned: a second ask for the same path finds nothing.
        assert!(cache.reuse(f, &key).is_none());
        std::fs::remove_dir_all(&out).unwrap();
    }
}
