//! Stage 5: the initramfs. Builds the static guest binaries (`/init` and the suites)
//! and writes a newc cpio archive from Rust: entries sorted, fixed inode numbers,
//! owners and mtimes, so identical inputs give a byte-identical archive.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::util::{project_root, run_captured, setup_error, target_dir};

/// One archive member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    CharDev {
        path: String,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path } | Entry::File { path, .. } | Entry::CharDev { path, .. } => path,
        }
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[allow(clippy::too_many_arguments)]
fn header(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: usize,
    rmaj: u32,
    rmin: u32,
    name: &str,
) {
    out.extend_from_slice(b"070701");
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        size as u32,
        0,
        0,
        rmaj,
        rmin,
        name.len() as u32 + 1,
        0,
    ];
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

/// Writes a newc archive. Parent directories must be listed; entries are sorted.
pub fn write_newc(entries: &[Entry]) -> Vec<u8> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path().cmp(b.path()));
    let mut out = Vec::new();
    for (i, e) in sorted.iter().enumerate() {
        let ino = i as u32 + 1;
        match e {
            Entry::Dir { path } => header(&mut out, ino, 0o040755, 2, 0, 0, 0, path),
            Entry::File { path, mode, data } => {
                header(&mut out, ino, 0o100000 | mode, 1, data.len(), 0, 0, path);
                out.extend_from_slice(data);
                pad4(&mut out);
            }
            Entry::CharDev {
                path,
                mode,
                major,
                minor,
            } => header(&mut out, ino, 0o020000 | mode, 1, 0, *major, *minor, path),
        }
    }
    header(&mut out, 0, 0, 1, 0, 0, 0, "TRAILER!!!");
    out
}

/// The archive layout the guest init expects: /init, /suites/<name>, mount points,
/// and /dev/console (the kernel opens it for PID 1 before devtmpfs is mounted).
pub fn layout(init: Vec<u8>, suites: Vec<(String, Vec<u8>)>) -> Vec<Entry> {
    let mut v = vec![
        Entry::Dir { path: "dev".into() },
        Entry::CharDev {
            path: "dev/console".into(),
            mode: 0o600,
            major: 5,
            minor: 1,
        },
        Entry::Dir {
            path: "proc".into(),
        },
        Entry::Dir { path: "sys".into() },
        Entry::Dir { path: "tmp".into() },
        Entry::Dir {
            path: "suites".into(),
        },
        Entry::File {
            path: "init".into(),
            mode: 0o755,
            data: init,
        },
    ];
    for (name, data) in suites {
        v.push(Entry::File {
            path: format!("suites/{name}"),
            mode: 0o755,
            data,
        });
    }
    v
}

/// The guest crates' binaries, built static for the one target this machine has.
pub const GUEST_TARGET: &str = "x86_64-unknown-linux-gnu";

/// Builds `/init` and the Rust suites (`bins` None) or only these `mm-selftests`
/// binaries; returns the directory holding them.
pub fn build_guest(bins: Option<&[&str]>) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let tdir = target_dir().join("guest");
    let mut args: Vec<std::ffi::OsString> = ["build", "--release", "--quiet", "--target"]
        .into_iter()
        .map(Into::into)
        .collect();
    args.push(GUEST_TARGET.into());
    args.push("--target-dir".into());
    args.push(tdir.clone().into());
    let what = match bins {
        None => {
            args.extend(["-p", "guest-init", "-p", "mm-selftests", "--bins"].map(Into::into));
            "initramfs: building the guest binaries (cargo build)".to_string()
        }
        Some(list) => {
            args.extend(["-p", "mm-selftests"].map(Into::into));
            for b in list {
                args.push("--bin".into());
                args.push(b.into());
            }
            format!(
                "building {} for the guest target (cargo build)",
                list.join(", ")
            )
        }
    };
    let out = duct::cmd(cargo, args)
        .dir(project_root())
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    run_captured(out, &what, 40)?;
    Ok(tdir.join(GUEST_TARGET).join("release"))
}

/// What the installed uapi headers depend on: the tree's path, its top Makefile and
/// every file under its uapi directories (a few thousand small files: milliseconds).
fn headers_key(tree: &Path) -> Result<String> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, files);
            } else {
                files.push(p);
            }
        }
    }
    let mut files = vec![tree.join("Makefile")];
    for d in [
        "include/uapi",
        "arch/x86/include/uapi",
        "scripts/headers_install.sh",
    ] {
        let p = tree.join(d);
        if p.is_dir() {
            walk(&p, &mut files);
        } else {
            files.push(p);
        }
    }
    files.sort();
    let mut k = crate::util::Key::new("headers_install");
    k.str("tree", &tree.display().to_string());
    for f in &files {
        let data = std::fs::read(f).unwrap_or_default();
        k.part(&f.display().to_string(), &data);
    }
    Ok(k.hex())
}

/// Builds an upstream C selftest (`<name>` = `pagemap_ioctl.c`, `soft-dirty.c`) from
/// the kernel tree under test, statically, against that tree's own uapi headers: the
/// program the Rust ports are compared with, in the same boot.
pub fn build_upstream_c(tree: &Path, build_dir: &Path, name: &str) -> Result<PathBuf> {
    // mm/ since 6.3; vm/ before (a 6.1 tree with the backport series has it there).
    let dir = ["tools/testing/selftests/mm", "tools/testing/selftests/vm"]
        .iter()
        .map(|d| tree.join(d))
        .find(|d| d.join(name).exists())
        .ok_or_else(|| {
            setup_error(format!(
                "initramfs: suite {name}: no tools/testing/selftests/{{mm,vm}}/{name} in this tree"
            ))
        })?;
    let hdr = build_dir.join("usr");
    // Stamped, not judged by what exists: a failed headers_install (6.1 runs rsync
    // after writing the headers) leaves usr/include complete-looking.
    let step = crate::util::Step::new(build_dir, "headers_install", &headers_key(tree)?);
    step.run(|| {
        let out = duct::cmd!(
            "make",
            "-C",
            tree,
            format!("O={}", build_dir.display()),
            "ARCH=x86_64",
            "headers_install"
        );
        run_captured(out, "initramfs: make headers_install", 20).map(drop)
    })?;
    let out_dir = build_dir.join("selftests");
    std::fs::create_dir_all(&out_dir)?;
    let bin = out_dir.join(name);
    let mut args: Vec<String> = ["-static", "-O2", "-Wall", "-U_FORTIFY_SOURCE"]
        .map(String::from)
        .to_vec();
    args.push(format!(
        "-I{}",
        tree.join("tools/testing/selftests").display()
    ));
    args.push(format!("-I{}", tree.display()));
    args.extend(["-isystem".into(), hdr.join("include").display().to_string()]);
    args.extend([
        "-isystem".into(),
        tree.join("tools/include/uapi").display().to_string(),
    ]);
    // Relative source names, compiled in the selftest directory: upstream names its
    // temporary files after __FILE__, which must not be a host path in the guest.
    args.push(name.to_string());
    for helper in ["vm_util.c", "thp_settings.c", "hugepage_settings.c"] {
        if dir.join(helper).exists() {
            args.push(helper.to_string());
        }
    }
    args.extend(["-lrt", "-lpthread", "-lm", "-o"].map(String::from));
    args.push(bin.display().to_string());
    run_captured(
        duct::cmd("gcc", &args).dir(&dir),
        &format!(
            "initramfs: building upstream {name} (gcc {})",
            args.join(" ")
        ),
        40,
    )?;
    Ok(bin)
}

/// Reads a guest binary and checks it is static (no PT_INTERP), so it runs with no
/// libc in the initramfs.
pub fn read_static(path: &Path) -> Result<Vec<u8>> {
    let data = std::fs::read(path)
        .map_err(|e| setup_error(format!("initramfs: {}: {e}", path.display())))?;
    if has_interp(&data) {
        return Err(setup_error(format!(
            "initramfs: {} is dynamically linked (has PT_INTERP); build with -C target-feature=+crt-static",
            path.display()
        )));
    }
    Ok(data)
}

/// True when an ELF64 file has a PT_INTERP program header.
pub fn has_interp(elf: &[u8]) -> bool {
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        return false;
    }
    let u16at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16at(54), u16at(56));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= elf.len() && u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) == 3
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader for the round trip: (name, mode, rdev major, minor, data).
    fn read_newc(mut b: &[u8]) -> Vec<(String, u32, u32, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let total = b.len();
        loop {
            assert_eq!(&b[..6], b"070701");
            let f = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + i * 8..14 + i * 8]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) =
                (f(1), f(6) as usize, f(9), f(10), f(11) as usize);
            let name = std::str::from_utf8(&b[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            let mut off = (110 + namesize).div_ceil(4) * 4;
            let data = b[off..off + size].to_vec();
            off = (off + size).div_ceil(4) * 4;
            assert_eq!((total - b.len() + off) % 4, 0);
            b = &b[off..];
            if name == "TRAILER!!!" {
                assert!(b.is_empty());
                return out;
            }
            out.push((name, mode, rmaj, rmin, data));
        }
    }

    #[test]
    fn round_trip_and_determinism() {
        let l = layout(
            b"init-bytes".to_vec(),
            vec![("soft-dirty".into(), vec![1, 2, 3, 4, 5])],
        );
        let a = write_newc(&l);
        let mut rev = l.clone();
        rev.reverse();
        assert_eq!(a, write_newc(&rev), "order of input does not matter");
        let r = read_newc(&a);
        let names: Vec<_> = r.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "init",
                "proc",
                "suites",
                "suites/soft-dirty",
                "sys",
                "tmp"
            ]
        );
        assert_eq!(r[1].1, 0o020600);
        assert_eq!((r[1].2, r[1].3), (5, 1));
        assert_eq!(r[2].4, b"init-bytes");
        assert_eq!(r[5].4, [1, 2, 3, 4, 5]);
        assert_eq!(r[5].1, 0o100755);
    }

    #[test]
    fn cpio_tool_agrees() {
        assert!(
            crate::hosttools::present("cpio"),
            "cpio (a declared host tool) is missing: `cargo xtask host-tools --install`"
        );
        let l = layout(
            b"#!/bin/sh\n".to_vec(),
            vec![("x".into(), b"data".to_vec())],
        );
        let listing = duct::cmd!("cpio", "-it", "--quiet")
            .stdin_bytes(write_newc(&l))
            .read()
            .unwrap();
        assert_eq!(listing.lines().count(), 8, "{listing}");
        assert!(listing.lines().any(|n| n == "suites/x"));
    }

    #[test]
    fn detects_dynamic_binaries() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert!(has_interp(&sh), "/bin/sh is dynamic on Debian");
        assert!(!has_interp(b"not an elf"));
    }
}
