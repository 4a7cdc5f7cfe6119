//! Times the scan stage (headers + landmark SRs, no pixel data) of a folder.
//!
//! ```sh
//! cargo run --release -p plumbline-ingest --example scan_timing -- DIR THREADS [K/N]
//! ```
//! With `K/N`, only shard `K` of `N` is read in full (as `plumbline run --shard K/N`).
//! Prints files, wall time and files/s. A benchmark, not a test: numbers depend on the
//! machine and on the page cache (run it twice; the second run is the warm one).

use std::path::PathBuf;
use std::time::Instant;

use plumbline_ingest::{ScanOptions, scan};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: scan_timing DIR THREADS"));
    let threads: usize = args
        .next()
        .and_then(|t| t.parse().ok())
        .expect("usage: scan_timing DIR THREADS");
    let shard = args.next().map(|s| {
        let (k, n) = s.split_once('/').expect("shard as K/N");
        (
            k.parse().expect("shard K/N: K a number"),
            n.parse().expect("shard K/N: N a number"),
        )
    });
    let opts = ScanOptions {
        shard,
        ..ScanOptions::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    let start = Instant::now();
    let s = pool.install(|| scan(&dir, &opts, &|_| {})).expect("scan");
    let secs = start.elapsed().as_secs_f64();
    let points: usize = s.docs.iter().map(|d| d.points.len()).sum();
    println!(
        "{} files ({} images, {} SRs, {} points, {} QC issues) in {:.2} s with {} thread(s): {:.0} files/s",
        s.counts.files,
        s.counts.images,
        s.counts.srs,
        points,
        s.issues.len(),
        secs,
        threads,
        s.counts.files as f64 / secs
    );
}
