//! The generator's command line, defined once for `plumbline synth` and the
//! `plumbline-synth` program (both need the `synth` feature, on by default).

use std::path::PathBuf;
use std::time::Instant;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use plumbline_synth::{ImageSize, Schedule, SynthError, SynthOptions, UnknownValue, generate};

/// The generator's command-line options.
#[derive(Clone, Debug, clap::Args)]
pub struct SynthArgs {
    /// Number of patients.
    #[arg(long)]
    pub patients: usize,
    /// Random seed; the same seed gives byte-identical files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (created; must not already contain a dicom/ folder).
    #[arg(long)]
    pub out: PathBuf,
    /// Pixel matrix: small (320 x 136) or clinical (7000 x 3000).
    #[arg(
        long,
        default_value = ImageSize::default().as_str(),
        value_parser = one_of(&ImageSize::ALL, ImageSize::as_str),
    )]
    pub image_size: ImageSize,
    /// Plant a gross landmark error (swapped corners, a vertebra out of order, a femoral
    /// head above S1, a PI jump) in one reading of every fifth patient; design.csv's
    /// planted_error column says where.
    #[arg(long)]
    pub plant_errors: bool,
    /// Visit schedule and timepoint names: discectomy (preop, postop, m3, m6), fusion
    /// (preop, w6, w52, w104) or survey (one baseline study per patient).
    #[arg(
        long,
        default_value = Schedule::default().as_str(),
        value_parser = one_of(&Schedule::ALL, Schedule::as_str),
    )]
    pub schedule: Schedule,
}

/// A parser accepting the names of `all` (listed in `--help` and in the error message)
/// and giving the value of that name.
fn one_of<T>(all: &[T], name: fn(T) -> &'static str) -> impl TypedValueParser<Value = T>
where
    T: Copy + Send + Sync + std::str::FromStr<Err = UnknownValue> + 'static,
{
    PossibleValuesParser::new(all.iter().map(|v| name(*v))).try_map(|s| s.parse::<T>())
}

impl From<SynthArgs> for SynthOptions {
    fn from(a: SynthArgs) -> Self {
        SynthOptions {
            patients: a.patients,
            seed: a.seed,
            out: a.out,
            image_size: a.image_size,
            plant_errors: a.plant_errors,
            schedule: a.schedule,
        }
    }
}

/// Runs the generator for a command line and prints its closing line to stderr as
/// `{program}: ...`; the caller prints the error (exit code 1).
pub fn run(program: &str, args: SynthArgs) -> Result<(), SynthError> {
    let start = Instant::now();
    let opts = SynthOptions::from(args);
    let s = generate(&opts)?;
    eprintln!(
        "{program}: {} patients, {} DICOM files ({:.1} MB), {} truth rows in {:.1} s -> {}",
        opts.patients,
        s.files,
        s.bytes as f64 / 1e6,
        s.truth_rows,
        start.elapsed().as_secs_f64(),
        opts.out.display()
    );
    Ok(())
}
