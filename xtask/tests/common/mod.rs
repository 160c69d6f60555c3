//! Helpers shared by the integration tests (each test file includes this module).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

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
