//! A real Orthanc 1.10.1 with its DICOMweb plugin, for the tests of Plumbline's DICOMweb
//! client: [`Orthanc::start`] writes a configuration into a fresh temporary folder
//! (storage and index there, free HTTP and DICOM ports, remote access off, HTTP Basic
//! authentication with one test user, the DICOMweb plugin at `/dicom-web/`), starts
//! `/usr/sbin/Orthanc CONFIG` as a child process and waits until `GET /system` answers.
//! [`Orthanc::kill`] and [`Orthanc::restart`] (same storage, same ports) let a test kill
//! the server in the middle of a run; dropping an [`Orthanc`] kills the child and removes
//! the folder.
//!
//! Orthanc 1.10.1 listens on every interface and cannot be bound to one address, so a
//! test that starts it first calls [`enter_private_netns`]: unless the process already
//! is in a network namespace of its own (one whose only interface is `lo`), the test
//! binary runs again for that one test under `unshare -n` (loopback brought up) and the
//! outer test passes or fails with it. Every request goes to 127.0.0.1.
//!
//! Measured on the 2-core development machine (inside `unshare -n`, the DICOMweb plugin
//! loaded, polling every 10 ms): `/system` answers 0.15 s after a first start on an empty
//! storage (0.14-0.15 s over three runs) and 0.07-0.11 s after a restart on the same
//! storage; [`Orthanc::started_in`] gives each start's time (`orthanc_smoke` prints it
//! with `--nocapture`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Orthanc server program.
pub const ORTHANC_BIN: &str = "/usr/sbin/Orthanc";
/// The DICOMweb plugin of Debian's `orthanc-dicomweb`.
pub const DICOMWEB_PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
/// How to install both on Debian.
pub const ORTHANC_INSTALL: &str = "apt-get install orthanc orthanc-dicomweb";
/// Set in the environment of a test binary re-run inside a private network namespace.
pub const NETNS_MARKER: &str = "PLUMBLINE_E2E_PRIVATE_NETNS";
/// The test user of every server started here.
pub const ORTHANC_USER: &str = "plumbline";
/// How long [`Orthanc::start`] waits for `/system`.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running (or killed) Orthanc in a temporary folder of its own.
#[derive(Debug)]
pub struct Orthanc {
    dir: PathBuf,
    config: PathBuf,
    log: PathBuf,
    http_port: u16,
    dicom_port: u16,
    password: String,
    child: Option<Child>,
    started_in: Duration,
}

/// A random 64-bit number from the standard library's per-process hash keys.
fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Two distinct ports free on 127.0.0.1 now (bound together, then released).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// Whether this process's network namespace has no interface but `lo` (`/proc/net/dev`
/// follows the namespace, unlike `/sys/class/net`).
pub fn in_isolated_netns() -> bool {
    let Ok(dev) = std::fs::read_to_string("/proc/net/dev") else {
        return false;
    };
    let names: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    names == ["lo"]
}

/// Whether Orthanc and its DICOMweb plugin are installed.
pub fn orthanc_installed() -> bool {
    Path::new(ORTHANC_BIN).is_file() && Path::new(DICOMWEB_PLUGIN).exists()
}

/// A test that cannot run here: under `CI=true` it fails; elsewhere it prints why and
/// the caller returns (the test passes without checking anything).
fn cannot_run(test: &str, why: &str) -> bool {
    assert!(
        !crate::under_ci(),
        "{test}: {why}; under CI=true no test is skipped"
    );
    eprintln!("{test}: SKIPPED: {why} (under CI=true this fails)");
    false
}

/// Makes sure the calling test runs in a private network namespace, where the Orthanc
/// it starts (which listens on every interface) is reachable from this machine only.
///
/// Returns `true` when the caller is inside such a namespace and should go on. Otherwise
/// it runs the current test binary again for the one test `test` (its full name, as
/// `cargo test -- --exact` takes it) under `unshare -n` with `lo` up and [`NETNS_MARKER`]
/// set, prints that run's output, fails when it failed (or ran no test), and returns
/// `false`: the caller then returns, its work done by the inner run. When Orthanc or
/// `unshare` is missing or the machine allows no new namespace, `false` as well, after
/// printing why; under `CI=true` that fails the test instead.
pub fn enter_private_netns(test: &str) -> bool {
    if std::env::var_os(NETNS_MARKER).is_some() {
        assert!(
            in_isolated_netns(),
            "{NETNS_MARKER} is set but this process sees other interfaces than lo"
        );
        return true;
    }
    if !orthanc_installed() {
        return cannot_run(
            test,
            &format!("needs {ORTHANC_BIN} and {DICOMWEB_PLUGIN} ({ORTHANC_INSTALL})"),
        );
    }
    if in_isolated_netns() {
        return true;
    }
    let Some(unshare) = crate::on_path("unshare").or_else(|| {
        let p = PathBuf::from("/usr/bin/unshare");
        p.is_file().then_some(p)
    }) else {
        return cannot_run(
            test,
            "needs unshare (util-linux) for a private network namespace",
        );
    };
    let ip = crate::on_path("ip").or_else(|| {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"]
            .map(PathBuf::from)
            .into_iter()
            .find(|p| p.is_file())
    });
    let Some(ip) = ip else {
        return cannot_run(
            test,
            "needs ip (iproute2) to bring lo up in a private network namespace",
        );
    };
    // As root `unshare -n`; otherwise a user namespace too (`-r`), where the kernel allows.
    let flags = ["-n", "-rn"].into_iter().find(|flag| {
        Command::new(&unshare)
            .args([*flag, "--", ip.to_str().unwrap(), "link", "set", "lo", "up"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    let Some(flags) = flags else {
        return cannot_run(
            test,
            "this machine allows no private network namespace (`unshare -n` and `unshare -rn` failed)",
        );
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(&unshare)
        .args([
            flags,
            "--",
            "sh",
            "-c",
            "\"$0\" link set lo up && exec \"$@\"",
        ])
        .arg(&ip)
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(NETNS_MARKER, "1")
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{test} failed inside `unshare {flags}` ({}): its output is above",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} inside `unshare {flags}` did not run exactly one test: is `{test}` its full name?"
    );
    false
}

impl Orthanc {
    /// Writes a configuration into a new temporary folder, starts Orthanc and waits for
    /// `/system` ([`START_TIMEOUT`]). Panics with the log's tail when it does not answer.
    /// Call it inside [`enter_private_netns`].
    pub fn start() -> Orthanc {
        let dir = std::env::temp_dir().join(format!(
            "plumbline-orthanc-{}-{:016x}",
            std::process::id(),
            random_u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (http_port, dicom_port) = free_ports();
        let password = format!("test-{:016x}", random_u64());
        let config = dir.join("orthanc.json");
        let json = serde_json::json!({
            "Name": "plumbline-test",
            "StorageDirectory": dir.join("storage"),
            "IndexDirectory": dir.join("index"),
            "StorageCompression": false,
            "HttpServerEnabled": true,
            "HttpPort": http_port,
            "DicomServerEnabled": true,
            "DicomPort": dicom_port,
            "RemoteAccessAllowed": false,
            "AuthenticationEnabled": true,
            "RegisteredUsers": { ORTHANC_USER: password },
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": { "Enable": true, "Root": "/dicom-web/" },
            "SaveJobs": false,
            "HttpsVerifyPeers": false,
        });
        std::fs::write(&config, serde_json::to_string_pretty(&json).unwrap()).unwrap();
        let mut orthanc = Orthanc {
            log: dir.join("orthanc.log"),
            dir,
            config,
            http_port,
            dicom_port,
            password,
            child: None,
            started_in: Duration::ZERO,
        };
        orthanc.spawn();
        orthanc
    }

    /// Starts the child on the current configuration and waits for `/system`.
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let start = Instant::now();
        let child = Command::new(ORTHANC_BIN)
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {ORTHANC_BIN}: {e}"));
        self.child = Some(child);
        loop {
            if let Ok((200, _)) = self.get("/system") {
                self.started_in = start.elapsed();
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!(
                    "Orthanc exited ({status}) before answering /system; the end of {}:\n{}",
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            if start.elapsed() > START_TIMEOUT {
                panic!(
                    "Orthanc did not answer http://127.0.0.1:{}/system within {:?}; the end of {}:\n{}",
                    self.http_port,
                    START_TIMEOUT,
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last `lines` lines of Orthanc's log (its standard output and error, every
    /// start appended).
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// How long the last start took until `/system` answered.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The REST API's root, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The DICOMweb root, `http://127.0.0.1:PORT/dicom-web`.
    pub fn dicomweb_url(&self) -> String {
        format!("{}/dicom-web", self.url())
    }

    /// The HTTP port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The DICOM port.
    pub fn dicom_port(&self) -> u16 {
        self.dicom_port
    }

    /// The test user's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// An auth file's text for the test user: `plumbline:PASSWORD`.
    pub fn auth_file_text(&self) -> String {
        format!("{ORTHANC_USER}:{}", self.password)
    }

    /// The temporary folder (configuration, storage, index, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `GET path` on the REST API as the test user: status and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
        self.http("GET", path, None)
    }

    /// One HTTP/1.0 request to 127.0.0.1 (the connection closed after it), as the test
    /// user: status and body.
    fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let credentials = base64_encode(self.auth_file_text().as_bytes());
        let mut head = format!(
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nAuthorization: Basic {credentials}\r\n",
            self.http_port
        );
        if let Some((content_type, bytes)) = body {
            head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                bytes.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        if let Some((_, bytes)) = body {
            stream.write_all(bytes)?;
        }
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("an answer without an end of headers"))?;
        let status_line = String::from_utf8_lossy(&answer[..split])
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("a bad status line: {status_line}")))?;
        Ok((status, answer[split + 4..].to_vec()))
    }

    /// Stores one DICOM file (`POST /instances`); returns Orthanc's answer (`ID`,
    /// `Status`: `Success` or `AlreadyStored`, ...). Panics unless Orthanc answers 200.
    pub fn upload(&self, path: &Path) -> serde_json::Value {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (status, body) = self
            .http("POST", "/instances", Some(("application/dicom", &bytes)))
            .unwrap_or_else(|e| panic!("POST /instances {}: {e}", path.display()));
        assert_eq!(
            status,
            200,
            "POST /instances {}: {}",
            path.display(),
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap()
    }

    /// Stores every DICOM file below `dir` (those with the preamble and `DICM`; other
    /// files are passed over), in path order; returns the paths stored.
    pub fn upload_dir(&self, dir: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        walk(dir, &mut files);
        files.sort();
        files.retain(|f| is_part10(f));
        for f in &files {
            self.upload(f);
        }
        files
    }

    /// Kills the server (as a crash would) and waits for it to go.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the child is running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Starts the server again (killing it first if it runs), on the same storage and
    /// ports, and waits for `/system`.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// Whether the file starts with a 128-byte preamble and `DICM`.
fn is_part10(path: &Path) -> bool {
    let mut head = [0u8; 132];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head[128..] == b"DICM"
}

/// Standard base64 with padding (for the Basic credentials of the harness's own
/// requests).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_known_values() {
        assert_eq!(super::base64_encode(b""), "");
        assert_eq!(super::base64_encode(b"f"), "Zg==");
        assert_eq!(super::base64_encode(b"fo"), "Zm8=");
        assert_eq!(super::base64_encode(b"foo"), "Zm9v");
        assert_eq!(
            super::base64_encode(b"plumbline:s3cr:et"),
            "cGx1bWJsaW5lOnMzY3I6ZXQ="
        );
    }
}
