//! `measurements.parquet` and `patients.parquet` of the committed 8-patient cohort, read
//! back with the parquet crate's own row reader and compared cell by cell with the CSVs:
//! same columns in the same order, same rows, every number bit for bit the f64 that the
//! CSV prints, nulls exactly where the CSV cell is empty, text equal, types as declared.

use std::fs::File;
use std::path::{Path, PathBuf};

use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use plumbline_export::parquet::{CREATED_BY, measurements_parquet, patients_parquet};
use plumbline_export::tables::{MeasuredReading, measurements_csv, patients_csv};
use plumbline_geometry::{Metric, MetricOptions, Thresholds};
use plumbline_ingest::clinical::{ClinicalTable, read_clinical};
use plumbline_ingest::{ScanOptions, default_windows, group, scan};

fn cohort_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/cohort-small")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plumbline-parquet-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The readings of the committed cohort as `plumbline run` builds them (default
/// pipeline), sorted by (patient, timepoint index, observer); the timepoint names.
fn readings(clinical: &ClinicalTable) -> (Vec<MeasuredReading>, Vec<String>) {
    let scanned = scan(
        &cohort_dir().join("dicom"),
        &ScanOptions::default(),
        &|_| {},
    )
    .unwrap();
    let windows = default_windows();
    let grouped = group(&scanned, Some(clinical), &windows);
    let (thresholds, options) = (Thresholds::default(), MetricOptions::default());
    let mut rows: Vec<MeasuredReading> = grouped
        .readings
        .into_iter()
        .map(|r| {
            let m = plumbline_geometry::measure(
                r.lateral.as_ref().map(|v| &v.landmarks),
                r.ap.as_ref().map(|v| &v.landmarks),
                &options,
                &thresholds,
            );
            plumbline_export::tables::Measured::new(r, m).row
        })
        .collect();
    rows.sort_by(|a, b| {
        (&a.patient_id, a.timepoint_index, &a.observer).cmp(&(
            &b.patient_id,
            b.timepoint_index,
            &b.observer,
        ))
    });
    (rows, windows.iter().map(|w| w.name.clone()).collect())
}

fn parse_csv(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|x| x.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// What a column holds, from its Parquet schema.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Text,
    Number,
    Flag,
}

/// Writes `bytes` as a file the way a run does, reads it back with the parquet crate's
/// row reader: (column names, kinds, rows of fields).
fn read_back(bytes: &[u8], name: &str) -> (Vec<String>, Vec<Kind>, Vec<Vec<Field>>) {
    let dir = temp_dir(name);
    let path = plumbline_export::write_atomic(&dir, name, bytes).unwrap();
    let reader = SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
    let meta = reader.metadata().file_metadata();
    assert_eq!(meta.created_by(), Some(CREATED_BY));
    assert!(CREATED_BY.starts_with("plumbline 0."), "{CREATED_BY}");
    assert_eq!(meta.key_value_metadata(), None, "no extra metadata");
    let schema = meta.schema_descr();
    let mut names = Vec::new();
    let mut kinds = Vec::new();
    for c in schema.columns() {
        let t = c.self_type();
        assert_eq!(t.get_basic_info().repetition(), Repetition::OPTIONAL);
        names.push(c.name().to_string());
        kinds.push(match (c.physical_type(), c.logical_type_ref()) {
            (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)) => Kind::Text,
            (PhysicalType::DOUBLE, None) => Kind::Number,
            (PhysicalType::BOOLEAN, None) => Kind::Flag,
            other => panic!("column {}: unexpected type {other:?}", c.name()),
        });
    }
    let rows: Vec<Vec<Field>> = reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| {
            let row = row.unwrap();
            let fields: Vec<(&String, &Field)> = row.get_column_iter().collect();
            assert_eq!(
                fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
                names,
                "row field names"
            );
            fields.into_iter().map(|(_, f)| f.clone()).collect()
        })
        .collect();
    assert_eq!(meta.num_rows() as usize, rows.len());
    std::fs::remove_dir_all(dir).unwrap();
    (names, kinds, rows)
}

/// Asserts that the Parquet file says exactly what the CSV says. Returns the kinds and
/// how many numbers, nulls, flags and texts were compared.
fn assert_same(csv: &[u8], parquet: &[u8], name: &str) -> (Vec<Kind>, [usize; 4]) {
    let (header, csv_rows) = parse_csv(csv);
    let (names, kinds, rows) = read_back(parquet, name);
    assert_eq!(names, header, "{name}: columns");
    assert_eq!(rows.len(), csv_rows.len(), "{name}: rows");
    let mut counts = [0usize; 4]; // numbers, nulls, flags, texts compared
    for (i, (row, cells)) in rows.iter().zip(&csv_rows).enumerate() {
        assert_eq!(row.len(), cells.len(), "{name} row {i}: cells");
        for ((field, cell), (col, kind)) in row.iter().zip(cells).zip(names.iter().zip(&kinds)) {
            let at = format!("{name} row {i} column {col}");
            if cell.is_empty() {
                assert_eq!(*field, Field::Null, "{at}: empty in the CSV");
                counts[1] += 1;
                continue;
            }
            match (kind, field) {
                (Kind::Number, Field::Double(v)) => {
                    let want: f64 = cell.parse().unwrap();
                    assert_eq!(v.to_bits(), want.to_bits(), "{at}: {v} vs {cell}");
                    counts[0] += 1;
                }
                (Kind::Flag, Field::Bool(b)) => {
                    assert_eq!(b.to_string(), *cell, "{at}");
                    counts[2] += 1;
                }
                (Kind::Text, Field::Str(s)) => {
                    assert_eq!(s, cell, "{at}");
                    counts[3] += 1;
                }
                _ => panic!("{at}: {field:?} for `{cell}` in a {kind:?} column"),
            }
        }
    }
    eprintln!("{name}: numbers, nulls, flags, texts compared: {counts:?}");
    (kinds, counts)
}

#[test]
fn measurements_parquet_equals_measurements_csv() {
    let (clinical, _) = read_clinical(&cohort_dir().join("clinical.csv")).unwrap();
    let (rows, _) = readings(&clinical);
    assert_eq!(rows.len(), 44);
    let bytes = measurements_parquet(&rows);
    let (kinds, counts) = assert_same(
        &measurements_csv(&rows, &Metric::all()),
        &bytes,
        "measurements.parquet",
    );
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
    // identity text, 68 metrics, 2 flags, type and sources, 3 Schwab grades (text),
    // 5 wedging flags, plausibility text
    let n = kinds.len();
    assert_eq!(n, 4 + 68 + 2 + 3 + 3 + 5 + 1);
    assert!(kinds[..4].iter().all(|k| *k == Kind::Text));
    assert!(kinds[4..72].iter().all(|k| *k == Kind::Number));
    assert_eq!(kinds[72..74], [Kind::Flag, Kind::Flag]);
    assert!(kinds[74..80].iter().all(|k| *k == Kind::Text));
    assert!(kinds[80..85].iter().all(|k| *k == Kind::Flag));
    assert_eq!(kinds[85], Kind::Text);
    // Deterministic: the same readings give the same bytes.
    assert_eq!(bytes, measurements_parquet(&rows.clone()));
}

#[test]
fn patients_parquet_equals_patients_csv() {
    let (clinical, _) = read_clinical(&cohort_dir().join("clinical.csv")).unwrap();
    let (rows, timepoints) = readings(&clinical);
    let csv = patients_csv(&rows, &clinical, &timepoints, 0, &Metric::all());
    let bytes = patients_parquet(&rows, &clinical, &timepoints, 0);
    let (kinds, counts) = assert_same(&csv, &bytes, "patients.parquet");
    assert!(
        counts[0] > 0 && counts[1] > 0 && counts[3] > 0,
        "{counts:?}"
    );
    let clinical_cols = clinical.headers.len();
    assert!(kinds[..clinical_cols].iter().all(|k| *k == Kind::Text));
    assert!(kinds[clinical_cols..].iter().all(|k| *k == Kind::Number));
    assert_eq!(bytes, patients_parquet(&rows, &clinical, &timepoints, 0));

    // A patient with readings who is missing from the clinical table: null clinical
    // cells but patient_id, as the CSV's empty cells; another baseline.
    let dir = temp_dir("clinical");
    let text = std::fs::read_to_string(cohort_dir().join("clinical.csv")).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("P0002,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("clinical.csv"), kept).unwrap();
    let (partial, _) = read_clinical(&dir.join("clinical.csv")).unwrap();
    assert_eq!(partial.rows.len() + 1, clinical.rows.len());
    let csv = patients_csv(&rows, &partial, &timepoints, 1, &Metric::all());
    assert!(
        String::from_utf8_lossy(&csv).contains("\nP0002,,,,,,"),
        "P0002 has empty clinical cells"
    );
    let (_, counts) = assert_same(
        &csv,
        &patients_parquet(&rows, &partial, &timepoints, 1),
        "patients-partial.parquet",
    );
    assert!(counts[1] > 0, "{counts:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn empty_tables_are_valid_files() {
    let (clinical, _) = read_clinical(&cohort_dir().join("clinical.csv")).unwrap();
    let timepoints: Vec<String> = default_windows().iter().map(|w| w.name.clone()).collect();
    assert_same(
        &measurements_csv(&[], &Metric::all()),
        &measurements_parquet(&[]),
        "measurements-empty.parquet",
    );
    let empty = ClinicalTable {
        rows: Vec::new(),
        ..clinical
    };
    assert_same(
        &patients_csv(&[], &empty, &timepoints, 0, &Metric::all()),
        &patients_parquet(&[], &empty, &timepoints, 0),
        "patients-empty.parquet",
    );
}
