//! Helpers shared by the integration tests (each test file includes this module).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// Serves one file at any path, for as many GETs as come, on 127.0.0.1:<port>.
pub fn serve(file: PathBuf) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let file = file.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let mut w = conn;
                let mut f = std::fs::File::open(&file).unwrap();
                let len = f.metadata().unwrap().len();
                let _ = write!(
                    w,
                    "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
                );
                let mut buf = vec![0; 1 << 20];
                loop {
                    let n = f.read(&mut buf).unwrap();
                    if n == 0 || w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// The main job's linux-source-6.12 .deb (target/kernel/downloads), served over
/// loopback: `(path, sha256, url)`.
pub struct ServedDeb {
    pub path: PathBuf,
    pub sha: String,
    pub url: String,
}

pub fn serve_deb_6_12() -> ServedDeb {
    let downloads = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/kernel/downloads");
    let path = std::fs::read_dir(&downloads)
        .expect("the main job has downloaded sources")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("linux-source-6.12_")
        })
        .expect("linux-source-6.12 .deb in target/kernel/downloads");
    let out = std::process::Command::new("sha256sum")
        .arg(&path)
        .output()
        .unwrap();
    let sha = String::from_utf8(out.stdout).unwrap()[..64].to_string();
    let url = format!(
        "http://127.0.0.1:{}/linux-source-6.12.deb",
        serve(path.clone())
    );
    ServedDeb { path, sha, url }
}
