//! The client against a tiny canned HTTP server on 127.0.0.1 (std only).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize};

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::*;

/// One request as the server read it.
#[derive(Clone, Debug)]
struct Seen {
    /// `GET /dicom-web/studies?... HTTP/1.1`
    line: String,
    /// Header names lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Which TCP connection (0-based, in accept order) carried it.
    connection: usize,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
enum Reply {
    /// Status, Content-Type, body (sent with a Content-Length).
    Canned(u16, String, Vec<u8>),
    /// Close the connection without answering.
    Hang,
}

fn reply(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
    Reply::Canned(status, content_type.to_string(), body.into())
}

type Responder = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A keep-alive HTTP/1.1 server on 127.0.0.1 that answers each request with the
/// responder's reply (given the request's 0-based index) and closes a connection idle for
/// `idle` (as Orthanc closes one after 1 s).
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(responder: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static) -> Server {
        Server::start_idle(Duration::from_millis(1000), responder)
    }

    fn start_idle(
        idle: Duration,
        responder: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let responder: Arc<Responder> = Arc::new(responder);
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let accept = std::thread::spawn(move || {
            for (connection, stream) in listener.incoming().enumerate() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, responder) = (Arc::clone(&seen2), Arc::clone(&responder));
                std::thread::spawn(move || serve(stream, connection, idle, &seen, &*responder));
            }
        });
        Server {
            port,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}/dicom-web", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn lines(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.line).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    stream: TcpStream,
    connection: usize,
    idle: Duration,
    seen: &Mutex<Vec<Seen>>,
    responder: &Responder,
) {
    stream.set_read_timeout(Some(idle)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return, // closed, or idle for too long
            Ok(_) => {}
        }
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':').unwrap();
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let request = Seen {
            line: line.trim_end().to_string(),
            headers,
            body,
            connection,
        };
        let index = {
            let mut s = seen.lock().unwrap();
            s.push(request.clone());
            s.len() - 1
        };
        match responder(index, &request) {
            Reply::Hang => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Reply::Canned(status, content_type, body) => {
                let mut head = format!(
                    "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\n",
                    body.len()
                );
                if !content_type.is_empty() {
                    head.push_str(&format!("Content-Type: {content_type}\r\n"));
                }
                head.push_str("\r\n");
                if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body).is_err() {
                    return;
                }
            }
        }
    }
}

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        first_backoff: Duration::from_millis(10),
    }
}

fn client(server: &Server) -> Client {
    Client::new(&server.base(), None, quick()).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A Part 10 file: preamble, `DICM`, a file meta group naming `sop_uid`, then `tail`.
fn part10(sop_uid: &str, tail: &[u8]) -> Vec<u8> {
    let meta = dicom_object::meta::FileMetaTableBuilder::new()
        .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.88.33")
        .media_storage_sop_instance_uid(sop_uid)
        .transfer_syntax("1.2.840.10008.1.2.1")
        .implementation_class_uid("1.2.3.4")
        .build()
        .unwrap();
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    meta.write(&mut out).unwrap();
    out.extend_from_slice(tail);
    out
}

/// A multipart/related body of `parts` (each with the given part Content-Type and,
/// when `lengths`, a Content-Length), closed unless `close` is false.
fn multipart(boundary: &str, parts: &[(&str, &[u8])], lengths: bool, close: bool) -> Vec<u8> {
    let mut body = Vec::new();
    for (content_type, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: {content_type}\r\n").as_bytes(),
        );
        if lengths {
            body.extend_from_slice(format!("Content-Length: {}\r\n", bytes.len()).as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    if close {
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    }
    body
}

fn study_json(uid: &str, patient: &str, date: Option<&str>) -> Value {
    let mut item = serde_json::json!({
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00100020": {"vr": "LO", "Value": [patient]},
    });
    if let Some(d) = date {
        item["00080020"] = serde_json::json!({"vr": "DA", "Value": [d]});
    }
    item
}

// ---- Auth ----

#[test]
fn dicomweb_auth_parses_basic_and_bearer_into_exact_header_values() {
    let basic = Auth::parse("plumbline:s3cr:et\n").unwrap();
    assert_eq!(
        basic,
        Auth::Basic {
            user: "plumbline".into(),
            password: "s3cr:et".into()
        }
    );
    assert_eq!(basic.header_value(), "Basic cGx1bWJsaW5lOnMzY3I6ZXQ=");
    let bearer = Auth::parse("  bearer abc.DEF-123_x \r\n").unwrap();
    assert_eq!(bearer, Auth::Bearer("abc.DEF-123_x".into()));
    assert_eq!(bearer.header_value(), "Bearer abc.DEF-123_x");
}

#[test]
fn dicomweb_auth_rejects_empty_and_malformed_text_without_quoting_it() {
    assert_eq!(Auth::parse(""), Err(AuthError::Empty));
    assert_eq!(Auth::parse(" \n\t\n"), Err(AuthError::Empty));
    for bad in [
        "justapassword",
        ":pw-only",
        "user-only:",
        "Bearer",
        "Bearer   ",
        "Bearer two words",
        "alice:pw1\nbob:pw2",
        "alice:pw\u{7}",
    ] {
        let e = Auth::parse(bad).expect_err(bad);
        assert!(matches!(e, AuthError::Malformed(_)), "{bad:?}: {e:?}");
        let message = e.to_string();
        assert!(message.starts_with("the auth file is not `user:password` or `Bearer TOKEN`"));
        for secret in ["justapassword", "pw-only", "user-only", "pw1", "two words"] {
            assert!(!message.contains(secret), "{message}");
        }
    }
}

#[test]
fn dicomweb_auth_debug_hides_the_secret() {
    let basic = Auth::parse("plumbline:hunter2").unwrap();
    let bearer = Auth::parse("Bearer tok3n-value").unwrap();
    assert_eq!(format!("{basic:?}"), "Auth::Basic(<redacted>)");
    assert_eq!(format!("{bearer:?}"), "Auth::Bearer(<redacted>)");
    let c = Client::new("http://127.0.0.1:1/x", Some(basic), quick()).unwrap();
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("plumbline:"),
        "{debug}"
    );
    assert!(debug.contains("Auth::Basic(<redacted>)"), "{debug}");
}

#[test]
fn dicomweb_auth_file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("plumbline-dweb-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let e = Auth::from_file(&empty).unwrap_err();
    assert!(matches!(e, DicomWebError::Auth(AuthError::Empty)), "{e:?}");
    let missing = dir.join("missing");
    let e = Auth::from_file(&missing).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("cannot read the auth file {}", missing.display()))
    );
    let good = dir.join("good");
    std::fs::write(&good, "Bearer xyz\n").unwrap();
    assert_eq!(Auth::from_file(&good).unwrap(), Auth::Bearer("xyz".into()));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dicomweb_sends_basic_and_bearer_headers_exactly() {
    let server = Server::start(|_, _| reply(200, DICOM_JSON, "[]"));
    let basic = Client::new(
        &server.base(),
        Some(Auth::parse("plumbline:s3cr:et").unwrap()),
        quick(),
    )
    .unwrap();
    basic.search_studies("P1", &[]).unwrap();
    let bearer = Client::new(
        &server.base(),
        Some(Auth::parse("Bearer abc.def").unwrap()),
        quick(),
    )
    .unwrap();
    bearer.search_studies("P1", &[]).unwrap();
    let anonymous = client(&server);
    anonymous.search_studies("P1", &[]).unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        seen[0].header("authorization"),
        Some("Basic cGx1bWJsaW5lOnMzY3I6ZXQ=")
    );
    assert_eq!(seen[1].header("authorization"), Some("Bearer abc.def"));
    assert_eq!(seen[2].header("authorization"), None);
    assert_eq!(seen[0].header("accept"), Some("application/dicom+json"));
}

// ---- Base URL ----

#[test]
fn dicomweb_base_url_accepts_http_and_https_only() {
    let c = Client::new("http://127.0.0.1:8042/dicom-web/", None, quick()).unwrap();
    assert_eq!(c.base_url(), "http://127.0.0.1:8042/dicom-web");
    let c = Client::new("HTTPS://pacs.example/dicom-web", None, quick()).unwrap();
    assert_eq!(c.base_url(), "HTTPS://pacs.example/dicom-web");
    for (bad, why) in [
        (
            "ftp://127.0.0.1/dicom-web",
            "it must start with http:// or https://",
        ),
        (
            "127.0.0.1:8042/dicom-web",
            "it must start with http:// or https://",
        ),
        ("http:///dicom-web", "it names no host"),
        (
            "http://user:hunter2@127.0.0.1/dicom-web",
            "it holds user info",
        ),
        (
            "http://127.0.0.1/dicom-web?x=1",
            "it holds a query or fragment",
        ),
    ] {
        let e = Client::new(bad, None, quick()).unwrap_err();
        let message = e.to_string();
        assert!(
            message.starts_with(&format!("invalid DICOMweb base URL: {why}")),
            "{bad}: {message}"
        );
        assert!(!message.contains("hunter2"));
    }
}

// ---- Multipart ----

#[test]
fn dicomweb_retrieve_splits_multipart_with_and_without_content_length() {
    let a = part10(
        "1.2.3.1",
        b"first instance \r\n--not-the-boundary\r\n bytes",
    );
    let b = part10("1.2.3.2", &[0u8, 13, 10, 45, 45, 255]);
    let (a2, b2) = (a.clone(), b.clone());
    let server = Server::start(move |i, _| {
        let parts: [(&str, &[u8]); 2] = [
            (
                "application/dicom; transfer-syntax=1.2.840.10008.1.2.1",
                &a2,
            ),
            ("application/dicom", &b2),
        ];
        match i {
            // Unquoted boundary, parts with Content-Length.
            0 => reply(
                200,
                "multipart/related; type=\"application/dicom\"; boundary=XyZ-123",
                multipart("XyZ-123", &parts, true, true),
            ),
            // Quoted boundary holding a `;`, parts without Content-Length.
            _ => reply(
                200,
                "Multipart/Related;boundary=\"b;q 42\";type=\"application/dicom\"",
                multipart("b;q 42", &parts, false, true),
            ),
        }
    });
    let c = client(&server);
    let with_lengths = c.retrieve_instances("1.2", "1.2.3").unwrap();
    let without = c.retrieve_instances("1.2", "1.2.3").unwrap();
    assert_eq!(with_lengths, vec![a.clone(), b.clone()]);
    assert_eq!(without, vec![a, b]);
    let seen = server.seen();
    assert_eq!(
        seen[0].line,
        "GET /dicom-web/studies/1.2/series/1.2.3 HTTP/1.1"
    );
    assert_eq!(
        seen[0].header("accept"),
        Some("multipart/related; type=\"application/dicom\"; transfer-syntax=*")
    );
}

#[test]
fn dicomweb_retrieve_one_instance() {
    let a = part10("1.2.3.1", b"x");
    let a2 = a.clone();
    let server = Server::start(move |_, _| {
        reply(
            200,
            "multipart/related; boundary=B",
            multipart("B", &[("application/dicom", &a2)], false, true),
        )
    });
    let got = client(&server)
        .retrieve_instance("1.2", "1.2.3", "1.2.3.1")
        .unwrap();
    assert_eq!(got, a);
    assert_eq!(
        server.lines(),
        ["GET /dicom-web/studies/1.2/series/1.2.3/instances/1.2.3.1 HTTP/1.1"]
    );
}

#[test]
fn dicomweb_multipart_errors_are_typed() {
    let dicom = part10("1.2.3.1", b"payload");
    let ok = multipart("B", &[("application/dicom", &dicom)], false, true);
    assert_eq!(
        parse_dicom_multipart("multipart/related; boundary=B", &ok).unwrap(),
        vec![dicom.clone()]
    );
    // A preamble before the first boundary and an epilogue are ignored; LF-only lines too.
    let mut lf = b"preamble text\n--B\nContent-Type: application/dicom\n\n".to_vec();
    lf.extend_from_slice(&dicom);
    lf.extend_from_slice(b"\n--B--\nepilogue");
    assert_eq!(
        parse_dicom_multipart("multipart/related; boundary=B", &lf).unwrap(),
        vec![dicom.clone()]
    );
    // An empty multipart.
    assert_eq!(
        parse_dicom_multipart("multipart/related; boundary=B", b"--B--\r\n").unwrap(),
        Vec::<Vec<u8>>::new()
    );

    let cases: Vec<(&str, Vec<u8>, MultipartError)> = vec![
        (
            "application/dicom",
            ok.clone(),
            MultipartError::NotMultipart("application/dicom".into()),
        ),
        (
            "multipart/related; type=\"application/dicom\"",
            ok.clone(),
            MultipartError::MissingBoundary,
        ),
        (
            "multipart/related; boundary=\"B",
            ok.clone(),
            MultipartError::MissingBoundary,
        ),
        (
            "multipart/related; boundary=C",
            ok.clone(),
            MultipartError::NoOpeningBoundary,
        ),
        (
            "multipart/related; boundary=B",
            multipart("B", &[("application/dicom", &dicom)], false, false),
            MultipartError::Truncated,
        ),
        (
            "multipart/related; boundary=B",
            ok[..ok.len() / 2].to_vec(),
            MultipartError::Truncated,
        ),
        (
            "multipart/related; boundary=B",
            multipart(
                "B",
                &[("application/dicom", &dicom), ("application/json", b"{}")],
                true,
                true,
            ),
            MultipartError::NotDicomType {
                part: 1,
                content_type: "application/json".into(),
            },
        ),
        (
            "multipart/related; boundary=B",
            b"--B\r\n\r\nbytes\r\n--B--\r\n".to_vec(),
            MultipartError::NotDicomType {
                part: 0,
                content_type: "(none)".into(),
            },
        ),
        (
            "multipart/related; boundary=B",
            multipart(
                "B",
                &[("application/dicom", b"not a DICOM file at all")],
                true,
                true,
            ),
            MultipartError::NotDicomBytes { part: 0, len: 23 },
        ),
        (
            "multipart/related; boundary=B",
            b"--B\r\nno colon here\r\n\r\nx\r\n--B--".to_vec(),
            MultipartError::BadPartHeader { part: 0 },
        ),
    ];
    for (content_type, body, expected) in cases {
        assert_eq!(
            parse_dicom_multipart(content_type, &body),
            Err(expected),
            "{content_type}"
        );
    }
}

#[test]
fn dicomweb_multipart_errors_through_the_server_name_the_url() {
    let server = Server::start(|i, _| match i {
        0 => reply(
            200,
            "multipart/related; boundary=B",
            multipart("B", &[("application/dicom", b"x")], false, false),
        ),
        1 => reply(
            200,
            "multipart/related; boundary=B",
            multipart("B", &[("text/plain", b"x")], false, true),
        ),
        2 => reply(200, "multipart/related", "--B--"),
        _ => reply(
            200,
            "multipart/related; boundary=B",
            multipart("B", &[("application/dicom", b"x")], false, true),
        ),
    });
    let c = client(&server);
    let url = format!("{}/studies/1/series/2", server.base());
    let e = c.retrieve_instances("1", "2").unwrap_err();
    assert!(
        matches!(
            &e,
            DicomWebError::Multipart {
                source: MultipartError::Truncated,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("{url}: the multipart body is truncated: it ends before its closing boundary")
    );
    let e = c.retrieve_instances("1", "2").unwrap_err();
    assert!(
        matches!(
            &e,
            DicomWebError::Multipart {
                source: MultipartError::NotDicomType { part: 0, .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = c.retrieve_instances("1", "2").unwrap_err();
    assert!(
        matches!(
            &e,
            DicomWebError::Multipart {
                source: MultipartError::MissingBoundary,
                ..
            }
        ),
        "{e:?}"
    );
    let e = c.retrieve_instances("1", "2").unwrap_err();
    assert!(
        matches!(
            &e,
            DicomWebError::Multipart {
                source: MultipartError::NotDicomBytes { part: 0, len: 1 },
                ..
            }
        ),
        "{e:?}"
    );
    // None of these is retried.
    assert_eq!(server.seen().len(), 4);
}

// ---- QIDO ----

#[test]
fn dicomweb_qido_keeps_only_answers_matching_what_was_asked() {
    // A server that ignores the query (as Orthanc 1.10.1 does for an unknown key) and
    // answers every study it has.
    let server = Server::start(|_, _| {
        let all = serde_json::json!([
            study_json("1.9", "P1", Some("20200315")),
            study_json("1.3", "P1", Some("20190101")),
            study_json("1.5", "P2", Some("20200320")),
            study_json("1.4", "P1", None),
            study_json("1.2", "P1 ", Some("20200101")),
            {"00100020": {"vr": "LO", "Value": ["P1"]}},
        ]);
        reply(200, DICOM_JSON, all.to_string())
    });
    let found = client(&server)
        .search_studies("P1", &[(date(2020, 1, 1), date(2020, 12, 31))])
        .unwrap();
    assert_eq!(
        found.kept,
        vec![
            Study {
                study_uid: "1.2".into(),
                patient_id: "P1".into(),
                study_date: Some(date(2020, 1, 1))
            },
            Study {
                study_uid: "1.9".into(),
                patient_id: "P1".into(),
                study_date: Some(date(2020, 3, 15))
            },
        ]
    );
    assert_eq!(
        found.rejected,
        vec![
            Rejected {
                uid: "".into(),
                reason: "the answer has no StudyInstanceUID".into()
            },
            Rejected {
                uid: "1.3".into(),
                reason: "StudyDate 20190101 answered outside the range asked, 20200101 to 20201231"
                    .into()
            },
            Rejected {
                uid: "1.4".into(),
                reason: "StudyDate \"\" answered where a date in 20200101 to 20201231 was asked"
                    .into()
            },
            Rejected {
                uid: "1.5".into(),
                reason: "PatientID \"P2\" answered where \"P1\" was asked".into()
            },
        ]
    );
}

#[test]
fn dicomweb_qido_one_query_per_range_union_sorted_and_url_encoded() {
    // Answers by the StudyDate asked, as a server would.
    let server = Server::start(|_, seen: &Seen| {
        let body = if seen.line.contains("StudyDate=20200101-20200630") {
            serde_json::json!([
                study_json("2.10", "Doe^J ö/1", Some("20200601")),
                study_json("2.2", "Doe^J ö/1", Some("20200101")),
            ])
        } else if seen.line.contains("StudyDate=20200601-20201231") {
            serde_json::json!([
                study_json("2.10", "Doe^J ö/1", Some("20200601")),
                study_json("2.1", "Doe^J ö/1", Some("20201231")),
            ])
        } else {
            serde_json::json!([])
        };
        reply(200, DICOM_JSON, body.to_string())
    });
    let found = client(&server)
        .search_studies(
            "Doe^J ö/1",
            &[
                (date(2020, 1, 1), date(2020, 6, 30)),
                (date(2020, 6, 1), date(2020, 12, 31)),
            ],
        )
        .unwrap();
    let uids: Vec<&str> = found.kept.iter().map(|s| s.study_uid.as_str()).collect();
    assert_eq!(uids, ["2.1", "2.10", "2.2"]);
    assert!(found.rejected.is_empty());
    assert_eq!(
        server.lines(),
        [
            "GET /dicom-web/studies?PatientID=Doe%5EJ%20%C3%B6%2F1&StudyDate=20200101-20200630&includefield=00080020&includefield=00100020&includefield=0020000D HTTP/1.1",
            "GET /dicom-web/studies?PatientID=Doe%5EJ%20%C3%B6%2F1&StudyDate=20200601-20201231&includefield=00080020&includefield=00100020&includefield=0020000D HTTP/1.1",
        ]
    );
}

#[test]
fn dicomweb_qido_without_ranges_asks_once_and_rejects_backwards_ranges() {
    let server = Server::start(|_, _| reply(200, DICOM_JSON, ""));
    let c = client(&server);
    let found = c.search_studies("P*", &[]).unwrap();
    assert!(found.kept.is_empty() && found.rejected.is_empty());
    assert_eq!(
        server.lines(),
        [
            "GET /dicom-web/studies?PatientID=P%2A&includefield=00080020&includefield=00100020&includefield=0020000D HTTP/1.1"
        ]
    );
    let e = c
        .search_studies("P1", &[(date(2020, 2, 1), date(2020, 1, 1))])
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid date range 2020-02-01 to 2020-01-01: the start is after the end"
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn dicomweb_series_are_checked_against_the_study_and_sorted() {
    let server = Server::start(|_, _| {
        let body = serde_json::json!([
            {"0020000E": {"vr": "UI", "Value": ["1.2.9"]}, "0020000D": {"vr": "UI", "Value": ["1.2"]}, "00080060": {"vr": "CS", "Value": ["SR"]}},
            {"0020000E": {"vr": "UI", "Value": ["1.2.10"]}, "00080060": {"vr": "CS", "Value": ["DX"]}},
            {"0020000E": {"vr": "UI", "Value": ["7.7"]}, "0020000D": {"vr": "UI", "Value": ["7"]}, "00080060": {"vr": "CS", "Value": ["CT"]}},
        ]);
        reply(
            200,
            "application/dicom+json; charset=utf-8",
            body.to_string(),
        )
    });
    let found = client(&server).series("1.2").unwrap();
    assert_eq!(
        found.kept,
        vec![
            Series {
                series_uid: "1.2.10".into(),
                modality: Some("DX".into())
            },
            Series {
                series_uid: "1.2.9".into(),
                modality: Some("SR".into())
            },
        ]
    );
    assert_eq!(
        found.rejected,
        vec![Rejected {
            uid: "7.7".into(),
            reason: "StudyInstanceUID 7 answered where 1.2 was asked".into()
        }]
    );
    assert_eq!(
        server.lines(),
        ["GET /dicom-web/studies/1.2/series?includefield=0020000D&includefield=00080060 HTTP/1.1"]
    );
}

#[test]
fn dicomweb_metadata_returns_the_array_and_404_names_the_series() {
    let server = Server::start(|i, _| match i {
        0 => reply(
            200,
            DICOM_JSON,
            r#"[{"00280010": {"vr": "US", "Value": [320]}}]"#,
        ),
        _ => reply(
            404,
            "application/json",
            r#"{"Message": "Unknown resource"}"#,
        ),
    });
    let c = client(&server);
    let meta = c.metadata("1.2", "1.2.3").unwrap();
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0]["00280010"]["Value"][0], 320);
    let e = c.metadata("1.2", "1.2.4").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "series 1.2.4 of study 1.2 not found (HTTP 404) at {}/studies/1.2/series/1.2.4/metadata",
            server.base()
        )
    );
    let e = c.series("9.9").unwrap_err();
    assert!(
        e.to_string().starts_with("study 9.9 not found (HTTP 404)"),
        "{e}"
    );
    assert_eq!(server.seen().len(), 3, "a 404 is not retried");
}

// ---- Status codes and retries ----

#[test]
fn dicomweb_401_is_a_clear_error_without_retries() {
    let server = Server::start(|_, _| reply(401, "text/plain", "Unauthorized"));
    let c = Client::new(
        &server.base(),
        Some(Auth::parse("plumbline:hunter2").unwrap()),
        quick(),
    )
    .unwrap();
    let e = c.series("1.2").unwrap_err();
    let message = e.to_string();
    assert_eq!(
        message,
        format!(
            "the server refused the credentials (HTTP 401) for {}/studies/1.2/series?includefield=0020000D&includefield=00080060: check --auth-file",
            server.base()
        )
    );
    assert!(!message.contains("hunter2") && !format!("{e:?}").contains("hunter2"));
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn dicomweb_403_is_refused_too() {
    let server = Server::start(|_, _| reply(403, "", ""));
    let e = client(&server).metadata("1", "2").unwrap_err();
    assert!(
        matches!(e, DicomWebError::Refused { status: 403, .. }),
        "{e:?}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn dicomweb_503_twice_then_200_succeeds_on_the_third_request() {
    let server = Server::start(|i, _| match i {
        0 | 1 => reply(503, "text/plain", "busy"),
        _ => reply(
            200,
            DICOM_JSON,
            serde_json::json!([study_json("1.1", "P1", Some("20200101"))]).to_string(),
        ),
    });
    let found = client(&server).search_studies("P1", &[]).unwrap();
    assert_eq!(found.kept.len(), 1);
    assert_eq!(found.kept[0].study_uid, "1.1");
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|s| s.line == seen[0].line));
}

#[test]
fn dicomweb_retries_exhausted_name_the_url_and_the_last_failure() {
    let server = Server::start(|_, _| reply(503, "text/plain", "Service  Unavailable\n"));
    let c = Client::new(
        &server.base(),
        Some(Auth::parse("plumbline:hunter2").unwrap()),
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(5),
        },
    )
    .unwrap();
    let start = std::time::Instant::now();
    let e = c.metadata("1.2", "1.2.3").unwrap_err();
    // 5 + 10 + 20 ms of back-off.
    assert!(start.elapsed() >= Duration::from_millis(35));
    assert_eq!(
        e.to_string(),
        format!(
            "{}/studies/1.2/series/1.2.3/metadata: gave up after 4 attempt(s); the last: HTTP 503: Service Unavailable",
            server.base()
        )
    );
    assert_eq!(server.seen().len(), 4);
}

#[test]
fn dicomweb_after_giving_up_calls_try_once_until_the_server_answers() {
    // Requests 0-3 and 4 fail (503); 5 answers; 6-9 fail again.
    let server = Server::start(|i, _| match i {
        5 => reply(200, DICOM_JSON, "[]"),
        _ => reply(503, "text/plain", "busy"),
    });
    let c = Client::new(
        &server.base(),
        None,
        RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(1),
        },
    )
    .unwrap();
    let attempts = |e: DicomWebError| match e {
        DicomWebError::GaveUp { attempts, .. } => attempts,
        other => panic!("{other:?}"),
    };
    assert_eq!(attempts(c.series("1.2").unwrap_err()), 4);
    assert_eq!(server.seen().len(), 4);
    // The server is taken to be down: one attempt.
    assert_eq!(attempts(c.series("1.2").unwrap_err()), 1);
    assert_eq!(server.seen().len(), 5);
    // It answers again: the next failing call has its retries back.
    assert!(c.series("1.2").unwrap().kept.is_empty());
    assert_eq!(attempts(c.series("1.2").unwrap_err()), 4);
    assert_eq!(server.seen().len(), 10);
}

#[test]
fn dicomweb_429_and_dropped_connections_are_retried() {
    let server = Server::start(|i, _| match i {
        0 => Reply::Hang,
        1 => reply(429, "", ""),
        _ => reply(200, DICOM_JSON, "[]"),
    });
    let found = client(&server).series("1.2").unwrap();
    assert!(found.kept.is_empty());
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn dicomweb_other_statuses_are_errors_with_the_body_start() {
    let server = Server::start(|_, _| {
        reply(
            400,
            "application/json",
            "{\n  \"Message\" : \"Bad request\"\n}",
        )
    });
    let e = client(&server).search_studies("P1", &[]).unwrap_err();
    assert!(matches!(e, DicomWebError::Status { status: 400, .. }));
    assert!(
        e.to_string()
            .ends_with(": { \"Message\" : \"Bad request\" }"),
        "{e}"
    );
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn dicomweb_survives_the_server_closing_an_idle_keep_alive_connection() {
    // The server closes a connection idle for 100 ms; one attempt only, so a stale pooled
    // connection would fail the second call.
    let server = Server::start_idle(Duration::from_millis(100), |_, _| {
        reply(200, DICOM_JSON, "[]")
    });
    let c = Client::new(
        &server.base(),
        None,
        RetryPolicy {
            attempts: 1,
            first_backoff: Duration::ZERO,
        },
    )
    .unwrap();
    c.series("1").unwrap();
    c.series("2").unwrap(); // at once: the pooled connection is reused
    std::thread::sleep(Duration::from_millis(300));
    c.series("3").unwrap();
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0].connection, seen[1].connection, "keep-alive is used");
    assert_ne!(seen[1].connection, seen[2].connection);
}

#[test]
fn dicomweb_counts_bytes_received() {
    let server = Server::start(|i, _| match i {
        0 => reply(503, "text/plain", "12345"),
        _ => reply(200, DICOM_JSON, "[]   "),
    });
    let c = client(&server);
    let counter = c.byte_counter();
    c.series("1").unwrap();
    assert_eq!(c.bytes_received(), 10);
    assert_eq!(counter.load(Ordering::Relaxed), 10);
}

// ---- STOW ----

#[test]
fn dicomweb_stow_sends_multipart_and_reports_failed_instances() {
    let a = part10("1.2.3.1", b"first");
    let b = part10("1.2.3.2", b"second");
    let server = Server::start(|_, _| {
        let answer = serde_json::json!({
            "00081190": {"vr": "UR", "Value": ["http://x/studies/1.2"]},
            "00081198": {"vr": "SQ", "Value": [
                {"00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.88.33"]},
                 "00081155": {"vr": "UI", "Value": ["1.2.3.2"]},
                 "00081197": {"vr": "US", "Value": [272]}}
            ]},
            "00081199": {"vr": "SQ", "Value": [
                {"00081155": {"vr": "UI", "Value": ["1.2.3.1"]}}
            ]}
        });
        reply(200, DICOM_JSON, answer.to_string())
    });
    let outcome = client(&server)
        .stow("1.2", &[a.clone(), b.clone()])
        .unwrap();
    assert_eq!(
        outcome,
        StowOutcome {
            status: 200,
            stored: vec!["1.2.3.1".into()],
            failed: vec![StowFailure {
                sop_instance_uid: "1.2.3.2".into(),
                reason: Some(272)
            }],
        }
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].line, "POST /dicom-web/studies/1.2 HTTP/1.1");
    let content_type = seen[0].header("content-type").unwrap().to_string();
    assert!(
        content_type
            .starts_with("multipart/related; type=\"application/dicom\"; boundary=plumbline-stow-")
    );
    // The body is a multipart the parser reads back to the same instances.
    assert_eq!(
        parse_dicom_multipart(&content_type, &seen[0].body).unwrap(),
        vec![a, b]
    );
}

#[test]
fn dicomweb_stow_409_without_a_list_fails_every_instance_by_its_uid() {
    let a = part10("1.2.3.7", b"x");
    let server = Server::start(|i, _| match i {
        0 => reply(409, "text/plain", "conflict"),
        _ => reply(500, "", ""),
    });
    let c = client(&server);
    let outcome = c.stow("1.2", std::slice::from_ref(&a)).unwrap();
    assert_eq!(
        outcome,
        StowOutcome {
            status: 409,
            stored: vec![],
            failed: vec![StowFailure {
                sop_instance_uid: "1.2.3.7".into(),
                reason: None
            }],
        }
    );
    let e = c.stow("1.2", &[a]).unwrap_err();
    assert!(
        matches!(e, DicomWebError::GaveUp { attempts: 3, .. }),
        "{e:?}"
    );
}

#[test]
fn dicomweb_encode_keeps_unreserved_characters_only() {
    assert_eq!(encode("1.2.840-x_y~z"), "1.2.840-x_y~z");
    assert_eq!(
        encode("a b^c/d?e&f=g%\\,ö"),
        "a%20b%5Ec%2Fd%3Fe%26f%3Dg%25%5C%2C%C3%B6"
    );
}

// ---- the DICOMweb source (crate::source::dicomweb) ----

/// The WADO-RS metadata of one DX image of patient P1: DS given as JSON numbers, pixel
/// data by BulkDataURI, an UN element and a file meta element (both left out).
fn image_metadata(sop: &str) -> Value {
    serde_json::json!({
        "00020010": {"vr": "UI", "Value": ["1.2.840.10008.1.2.4.80"]},
        "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.1.1"]},
        "00080018": {"vr": "UI", "Value": [sop]},
        "00080020": {"vr": "DA", "Value": ["20200301"]},
        "00080060": {"vr": "CS", "Value": ["DX"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jörg"}]},
        "00100020": {"vr": "LO", "Value": ["P1"]},
        "0020000D": {"vr": "UI", "Value": ["1.7"]},
        "0020000E": {"vr": "UI", "Value": ["1.7.2"]},
        "00280010": {"vr": "US", "Value": [3000]},
        "00280011": {"vr": "US", "Value": [1200]},
        "00280030": {"vr": "DS", "Value": [0.143, 0.1435]},
        "00091001": {"vr": "UN", "InlineBinary": "AAE="},
        "7FE00010": {"vr": "OB", "BulkDataURI": "http://127.0.0.1/bulk/7fe00010"},
    })
}

/// A fake PACS holding patient P1's study 1.7 (SR series 1.7.1, image series 1.7.2) that
/// answers every study search with every study it has, P2's included (as Orthanc 1.10.1
/// does for an unknown key). Its SR instances: 1.7.1.1 good, 1.7.1.2 a truncated
/// multipart, 1.7.1.3 a part that is not DICOM; one more listed under a UID that is not a
/// UID. Image 1.7.2.2 is listed by QIDO but missing from the metadata.
fn fake_pacs() -> Server {
    use serde_json::json;
    Server::start(|_, seen| {
        let target = seen.line.split(' ').nth(1).unwrap_or_default().to_string();
        let p = target.strip_prefix("/dicom-web").unwrap_or_default();
        let instance = |uid: &str, class: &str| {
            json!({"00080018": {"vr": "UI", "Value": [uid]},
                   "00080016": {"vr": "UI", "Value": [class]}})
        };
        let sr = "1.2.840.10008.5.1.4.1.1.88.34";
        let dx = "1.2.840.10008.5.1.4.1.1.1.1";
        let mp = |parts: &[(&str, &[u8])], close: bool| {
            reply(
                200,
                "multipart/related; type=\"application/dicom\"; boundary=B",
                multipart("B", parts, false, close),
            )
        };
        match p {
            _ if p.starts_with("/studies?") => reply(
                200,
                DICOM_JSON,
                json!([
                    study_json("1.7", "P1", Some("20200301")),
                    study_json("1.8", "P2", Some("20200302"))
                ])
                .to_string(),
            ),
            _ if p.starts_with("/studies/1.7/series?") => reply(
                200,
                DICOM_JSON,
                json!([
                    {"0020000E": {"vr": "UI", "Value": ["1.7.2"]}},
                    {"0020000E": {"vr": "UI", "Value": ["1.7.1"]}},
                    {"0020000D": {"vr": "UI", "Value": ["1.9"]},
                     "0020000E": {"vr": "UI", "Value": ["1.9.1"]}},
                ])
                .to_string(),
            ),
            _ if p.starts_with("/studies/1.7/series/1.7.1/instances?") => reply(
                200,
                DICOM_JSON,
                json!([
                    instance("1.7.1.3", sr),
                    instance("1.7.1.1", sr),
                    instance("1.7.1.2", sr),
                    instance("../../etc/passwd", sr),
                ])
                .to_string(),
            ),
            _ if p.starts_with("/studies/1.7/series/1.7.2/instances?") => reply(
                200,
                DICOM_JSON,
                json!([instance("1.7.2.1", dx), instance("1.7.2.2", dx)]).to_string(),
            ),
            "/studies/1.7/series/1.7.2/metadata" => reply(
                200,
                DICOM_JSON,
                json!([image_metadata("1.7.2.1")]).to_string(),
            ),
            "/studies/1.7/series/1.7.1/instances/1.7.1.1" => {
                mp(&[("application/dicom", &part10("1.7.1.1", b""))], true)
            }
            "/studies/1.7/series/1.7.1/instances/1.7.1.2" => {
                mp(&[("application/dicom", &part10("1.7.1.2", b""))], false)
            }
            "/studies/1.7/series/1.7.1/instances/1.7.1.3" => {
                mp(&[("application/dicom", b"this is not DICOM")], true)
            }
            "/studies/1.7/series/1.7.2/instances/1.7.2.1" => mp(
                &[("application/dicom", &part10("1.7.2.1", b"pixels"))],
                true,
            ),
            _ => reply(404, "text/plain", "no such resource"),
        }
    })
}

#[test]
fn dicomweb_source_lists_checked_instances_and_turns_bad_answers_into_qc() {
    use crate::source::Source;
    use crate::source::dicomweb::{DicomWeb, PatientQuery};
    let server = fake_pacs();
    let cache = std::env::temp_dir().join(format!("plumbline-dweb-src-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let queries = [PatientQuery {
        patient_id: "P1".into(),
        date_ranges: vec![(date(2020, 1, 1), date(2020, 12, 31))],
    }];
    let calls = AtomicUsize::new(0);
    let source = DicomWeb::discover(client(&server), &cache, &queries, &|studies| {
        calls.fetch_add(1, Ordering::Relaxed);
        assert_eq!(studies, 1);
    })
    .unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(source.name(), server.base());
    let (entries, issues) = source.list().unwrap();
    let names: Vec<String> = entries
        .iter()
        .map(|p| p.strip_prefix(&cache).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        ["1.7.1.1.dcm", "1.7.1.2.dcm", "1.7.1.3.dcm", "1.7.2.1.dcm"]
    );
    let described: Vec<(&str, &str, &str)> = issues
        .iter()
        .map(|i| (i.code, i.sop_instance_uid.as_str(), i.patient_id.as_str()))
        .collect();
    assert_eq!(
        described,
        [
            ("dicomweb_bad_answer", "1.8", "P1"),
            ("dicomweb_bad_answer", "1.9.1", "P1"),
            ("dicomweb_bad_answer", "../../etc/passwd", "P1"),
            ("dicomweb_bad_answer", "1.7.2.2", "P1"),
        ]
    );
    assert!(
        issues[0]
            .message
            .contains("PatientID \"P2\" answered where \"P1\" was asked")
    );
    assert!(issues[3].message.contains("lacks instance 1.7.2.2"));
    // Nothing was written outside the cache folder.
    assert!(!cache.join("../../etc/passwd.dcm").exists());

    // The image header was written at discovery: readable, pixel data and the UN element
    // left out, DS values as given, names in UTF-8.
    let header = dicom_object::open_file(&entries[3]).unwrap();
    assert_eq!(
        header
            .element(tags::PIXEL_SPACING)
            .unwrap()
            .to_multi_float64()
            .unwrap(),
        vec![0.143, 0.1435]
    );
    assert_eq!(
        header.element(tags::ROWS).unwrap().to_int::<u32>().unwrap(),
        3000
    );
    assert_eq!(
        header
            .element(tags::PATIENT_NAME)
            .unwrap()
            .to_str()
            .unwrap(),
        "Müller^Jörg"
    );
    assert!(header.element(tags::PIXEL_DATA).is_err());
    assert!(header.element(Tag(0x0009, 0x1001)).is_err());
    assert_eq!(header.meta().media_storage_sop_instance_uid(), "1.7.2.1");
    assert_eq!(header.meta().transfer_syntax(), "1.2.840.10008.1.2.1");
    // The scan reads it as the image it is.
    match crate::scan::scan_file(&entries[3], &crate::ScanOptions::default()).0 {
        crate::scan::FileOutcome::Image(r) => {
            assert_eq!((r.rows, r.cols, r.patient_id.as_str()), (3000, 1200, "P1"));
            assert_eq!(r.spacing.unwrap().0.row, 0.143);
            assert_eq!(r.spacing.unwrap().0.col, 0.1435);
        }
        _ => panic!("the header file is not read as an image"),
    }

    // SRs are fetched when opened: the good one once, the bad ones are errors naming the
    // URL and what is wrong, never a panic and never a file in the cache.
    assert!(!entries[0].exists());
    assert_eq!(source.open(&entries[0]).unwrap(), entries[0]);
    assert_eq!(std::fs::read(&entries[0]).unwrap(), part10("1.7.1.1", b""));
    assert_eq!(source.open(&entries[0]).unwrap(), entries[0]);
    let truncated = source.open(&entries[1]).unwrap_err().to_string();
    assert!(truncated.contains("instances/1.7.1.2"), "{truncated}");
    assert!(truncated.contains("truncated"), "{truncated}");
    let not_dicom = source.open(&entries[2]).unwrap_err().to_string();
    assert!(
        not_dicom.contains("do not start with the DICOM preamble"),
        "{not_dicom}"
    );
    assert!(!entries[1].exists() && !entries[2].exists());
    let stats = source.stats();
    assert_eq!(
        (stats.patients, stats.studies, stats.series, stats.instances),
        (1, 1, 2, 4)
    );
    // Fetched: the image header and SR 1.7.1.1; reused: 1.7.1.1 opened again.
    assert_eq!((stats.fetched, stats.reused), (2, 1));
    let fetches = |p: &str| server.lines().iter().filter(|l| l.contains(p)).count();
    assert_eq!(fetches("instances/1.7.1.1 "), 1);

    // The image's pixels: a temporary whole instance, removed when dropped.
    let pixels = source.with_pixels(&entries[3]).unwrap();
    assert_eq!(
        std::fs::read(pixels.path()).unwrap(),
        part10("1.7.2.1", b"pixels")
    );
    let temporary = pixels.path().to_path_buf();
    drop(pixels);
    assert!(!temporary.exists());

    // A second discovery reuses the header it has; it asks the metadata again only
    // because 1.7.2.2 is still missing, and writes nothing new.
    let before = fetches("/metadata");
    let again = DicomWeb::discover(client(&server), &cache, &queries, &|_| {}).unwrap();
    assert_eq!(fetches("/metadata"), before + 1);
    assert_eq!((again.stats().fetched, again.stats().reused), (0, 1));
    std::fs::remove_dir_all(&cache).unwrap();
}

#[test]
fn dicomweb_source_refused_credentials_stop_discovery_after_one_request() {
    use crate::source::dicomweb::{DicomWeb, PatientQuery};
    let server = Server::start(|_, _| reply(401, "text/plain", "who are you"));
    let cache = std::env::temp_dir().join(format!("plumbline-dweb-401-{}", std::process::id()));
    let queries: Vec<PatientQuery> = (0..20)
        .map(|i| PatientQuery {
            patient_id: format!("P{i}"),
            date_ranges: vec![],
        })
        .collect();
    let e = DicomWeb::discover(client(&server), &cache, &queries, &|_| {}).unwrap_err();
    assert!(
        matches!(e, DicomWebError::Refused { status: 401, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("check --auth-file"));
    assert_eq!(server.lines().len(), 1);
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn dicomweb_source_failed_searches_are_qc_errors_and_the_batch_goes_on() {
    use crate::source::Source;
    use crate::source::dicomweb::{DicomWeb, PatientQuery};
    // P1's search fails every time (503); P2 has no studies. P2 is searched first.
    let server = Server::start(|_, seen| {
        if seen.line.contains("PatientID=P1") {
            reply(503, "text/plain", "busy")
        } else {
            reply(200, DICOM_JSON, "[]")
        }
    });
    let cache = std::env::temp_dir().join(format!("plumbline-dweb-503-{}", std::process::id()));
    let queries = ["P2", "P1"].map(|p| PatientQuery {
        patient_id: p.into(),
        date_ranges: vec![],
    });
    let source = DicomWeb::discover(client(&server), &cache, &queries, &|_| {}).unwrap();
    let (entries, issues) = source.list().unwrap();
    assert!(entries.is_empty());
    assert_eq!(issues.len(), 1);
    assert_eq!(
        (issues[0].code, issues[0].patient_id.as_str()),
        ("dicomweb_failed", "P1")
    );
    assert!(issues[0].message.contains("the studies of patient P1"));
    assert!(issues[0].message.contains("gave up after 3 attempt(s)"));
    // The first patient's search failing stops discovery: nothing would be found.
    let queries = ["P1", "P2"].map(|p| PatientQuery {
        patient_id: p.into(),
        date_ranges: vec![],
    });
    let e = DicomWeb::discover(client(&server), &cache, &queries, &|_| {}).unwrap_err();
    assert!(matches!(e, DicomWebError::GaveUp { .. }), "{e:?}");
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn dicomweb_source_a_server_ignoring_the_query_gives_a_bounded_qc() {
    use crate::source::Source;
    use crate::source::dicomweb::{DicomWeb, PatientQuery, REJECTED_LISTED};
    // Every study search answers 500 studies of other patients.
    let server = Server::start(|_, _| {
        let all: Vec<Value> = (0..500)
            .map(|i| study_json(&format!("1.2.{i}"), &format!("Q{i}"), Some("20200101")))
            .collect();
        reply(200, DICOM_JSON, Value::Array(all).to_string())
    });
    let cache = std::env::temp_dir().join(format!("plumbline-dweb-all-{}", std::process::id()));
    let queries = [PatientQuery {
        patient_id: "P1".into(),
        date_ranges: vec![],
    }];
    let source = DicomWeb::discover(client(&server), &cache, &queries, &|_| {}).unwrap();
    let (entries, issues) = source.list().unwrap();
    assert!(entries.is_empty());
    assert_eq!(issues.len(), REJECTED_LISTED + 1);
    assert!(issues.iter().all(|i| i.code == "dicomweb_bad_answer"));
    assert_eq!(issues[0].sop_instance_uid, "1.2.0");
    assert!(
        issues[0]
            .message
            .contains("PatientID \"Q0\" answered where \"P1\" was asked")
    );
    assert!(
        issues[REJECTED_LISTED]
            .message
            .starts_with("the DICOMweb server answered 490 more of them (study)"),
        "{}",
        issues[REJECTED_LISTED].message
    );
    let _ = std::fs::remove_dir_all(&cache);
}

#[test]
fn dicomweb_source_images_whose_metadata_fails_are_left_out_with_one_qc_error() {
    use crate::source::Source;
    use crate::source::dicomweb::{DicomWeb, PatientQuery};
    use serde_json::json;
    let server = Server::start(|_, seen| {
        let target = seen.line.split(' ').nth(1).unwrap_or_default().to_string();
        let p = target.strip_prefix("/dicom-web").unwrap_or_default();
        if p.starts_with("/studies?") {
            reply(
                200,
                DICOM_JSON,
                json!([study_json("1.7", "P1", Some("20200301"))]).to_string(),
            )
        } else if p.starts_with("/studies/1.7/series?") {
            reply(
                200,
                DICOM_JSON,
                json!([{"0020000E": {"vr": "UI", "Value": ["1.7.2"]}}]).to_string(),
            )
        } else if p.starts_with("/studies/1.7/series/1.7.2/instances?") {
            let dx = json!({"00080018": {"vr": "UI", "Value": ["1.7.2.1"]},
                            "00080016": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.1.1"]}});
            reply(200, DICOM_JSON, json!([dx]).to_string())
        } else {
            reply(503, "text/plain", "busy")
        }
    });
    let cache = std::env::temp_dir().join(format!("plumbline-dweb-meta-{}", std::process::id()));
    let queries = [PatientQuery {
        patient_id: "P1".into(),
        date_ranges: vec![],
    }];
    let source = DicomWeb::discover(client(&server), &cache, &queries, &|_| {}).unwrap();
    let (entries, issues) = source.list().unwrap();
    assert!(entries.is_empty(), "{entries:?}");
    assert_eq!(issues.len(), 1, "{issues:?}");
    assert_eq!(issues[0].code, "dicomweb_failed");
    assert!(issues[0].message.starts_with(
        "the image headers (metadata) of series 1.7.2 of study 1.7 could not be read"
    ));
    let _ = std::fs::remove_dir_all(&cache);
}
