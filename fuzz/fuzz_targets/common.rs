//! What the targets share: a scratch folder for the input file (the readers take paths).

use std::path::PathBuf;
use std::sync::OnceLock;

/// A folder of this process in `/dev/shm` (else the temp folder), made once.
pub fn dir(target: &str) -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("plumbline-fuzz-{target}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}
