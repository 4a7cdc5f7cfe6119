//! `measurements.parquet` and `patients.parquet`: the columns, rows and order of
//! `measurements.csv` and `patients.csv` ([`crate::tables::Table`]) as one Parquet row
//! group, for Spark, DuckDB or Polars.
//!
//! Every column is OPTIONAL: text as `BYTE_ARRAY (STRING)`, numbers as `DOUBLE` (the
//! exact f64 that the CSV prints), flags as `BOOLEAN`. A cell that is empty in the CSV is
//! null. Pages are uncompressed (the tables are small; dictionary encoding already folds
//! the repeated text) and the bytes depend only on the table: no timestamps, and
//! `created_by` is `plumbline <version>`.

use std::sync::Arc;

use ::parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType};
use ::parquet::errors::Result;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::Type;
use plumbline_ingest::clinical::ClinicalTable;

use crate::tables::{MeasuredReading, Table, Values, measurements_table, patients_table};
use plumbline_geometry::Metric;

/// The `created_by` of every file written.
pub const CREATED_BY: &str = concat!("plumbline ", env!("CARGO_PKG_VERSION"));

/// `measurements.parquet` with every metric: the table of
/// [`crate::tables::measurements_csv`].
pub fn measurements_parquet(rows: &[MeasuredReading]) -> Vec<u8> {
    table_parquet(&measurements_table(rows, &Metric::all()))
}

/// `patients.parquet` with every metric: the table of [`crate::tables::patients_csv`].
pub fn patients_parquet(
    rows: &[MeasuredReading],
    clinical: &ClinicalTable,
    timepoints: &[String],
    baseline: usize,
) -> Vec<u8> {
    table_parquet(&patients_table(
        rows,
        clinical,
        timepoints,
        baseline,
        &Metric::all(),
    ))
}

/// Any [`Table`] as Parquet bytes.
pub fn table_parquet(table: &Table) -> Vec<u8> {
    write(table).expect("writing Parquet to memory")
}

fn schema(table: &Table) -> Result<Type> {
    let fields = table
        .columns
        .iter()
        .map(|c| {
            let (physical, logical) = match c.values {
                Values::Text(_) => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
                Values::Number(_) => (PhysicalType::DOUBLE, None),
                Values::Flag(_) => (PhysicalType::BOOLEAN, None),
            };
            Type::primitive_type_builder(&c.name, physical)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>>>()?;
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
}

/// The present values and the definition levels (1 present, 0 null) of a column.
fn split<T, U>(cells: &[T], value: impl Fn(&T) -> Option<U>) -> (Vec<U>, Vec<i16>) {
    let mut values = Vec::with_capacity(cells.len());
    let levels = cells
        .iter()
        .map(|c| match value(c) {
            Some(v) => {
                values.push(v);
                1
            }
            None => 0,
        })
        .collect();
    (values, levels)
}

fn write(table: &Table) -> Result<Vec<u8>> {
    let props = WriterProperties::builder()
        .set_created_by(CREATED_BY.to_string())
        .build();
    let mut w = SerializedFileWriter::new(Vec::new(), Arc::new(schema(table)?), Arc::new(props))?;
    if table.rows == 0 {
        // No row group at all: a valid file that every reader opens as an empty table.
        return w.into_inner();
    }
    let mut rg = w.next_row_group()?;
    for column in &table.columns {
        let mut cw = rg
            .next_column()?
            .expect("one column writer per schema field");
        match &column.values {
            Values::Text(cells) => {
                let (v, d) = split(cells, |s: &String| {
                    (!s.is_empty()).then(|| ByteArray::from(s.as_str()))
                });
                cw.typed::<ByteArrayType>()
                    .write_batch(&v, Some(&d), None)?;
            }
            Values::Number(cells) => {
                let (v, d) = split(cells, |x: &Option<f64>| *x);
                cw.typed::<DoubleType>().write_batch(&v, Some(&d), None)?;
            }
            Values::Flag(cells) => {
                let (v, d) = split(cells, |x: &Option<bool>| *x);
                cw.typed::<BoolType>().write_batch(&v, Some(&d), None)?;
            }
        }
        cw.close()?;
    }
    rg.close()?;
    w.into_inner()
}
