//! Stage 0: host tools. The one declared list of every program the pipeline runs on
//! the host, each with its Debian package. Missing ones are installed with apt-get
//! when running as root; otherwise one message gives the command that would.
//!
//! The list is proven complete by `xtask/tests/hosttools.rs`: it builds and boots a
//! target with `PATH` reduced to a directory holding only these programs (see
//! [`reduced_path`]), so an undeclared program makes that build fail by name.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::util::setup_error;

/// A Debian package the pipeline needs, the programs of it that the pipeline (or the
/// kernel build it drives) runs, and files it needs (headers, libraries).
pub struct Tool {
    pub package: &'static str,
    /// Programs looked up on PATH.
    pub programs: &'static [&'static str],
    /// Absolute files (headers, static libraries).
    pub files: &'static [&'static str],
    /// Who runs it.
    pub why: &'static str,
}

/// Every package the pipeline needs beyond [`BASE_PACKAGES`] and Rust.
pub const TOOLS: &[Tool] = &[
    Tool {
        package: "qemu-system-x86",
        programs: &["qemu-system-x86_64"],
        files: &[],
        why: "boots the kernel",
    },
    Tool {
        package: "gcc",
        programs: &["gcc", "cc"],
        files: &[],
        why: "kernel build, upstream C suites, the linker of the Rust guest binaries",
    },
    Tool {
        package: "binutils",
        programs: &[
            "as", "ld", "ld.bfd", "ar", "nm", "objcopy", "objdump", "readelf", "strip",
        ],
        files: &[],
        why: "kernel build (vmlinux link, objcopy of the boot image)",
    },
    Tool {
        package: "libc6-dev",
        programs: &[],
        files: &[
            "/usr/include/stdio.h",
            "/usr/lib/x86_64-linux-gnu/libc.a",
        ],
        why: "static guest binaries (Rust +crt-static, upstream C suites); host programs of the kernel build",
    },
    Tool {
        package: "make",
        programs: &["make"],
        files: &[],
        why: "kernel build",
    },
    Tool {
        package: "flex",
        programs: &["flex"],
        files: &[],
        why: "kconfig and dtc lexers",
    },
    Tool {
        package: "bison",
        programs: &["bison"],
        files: &[],
        why: "kconfig parser",
    },
    Tool {
        package: "bc",
        programs: &["bc"],
        files: &[],
        why: "kernel/time/timeconst.bc",
    },
    Tool {
        package: "perl",
        programs: &["perl"],
        files: &[],
        why: "kernel build scripts, headers_install, checkpatch.pl",
    },
    Tool {
        package: "rsync",
        programs: &["rsync"],
        files: &[],
        why: "make headers_install before 6.3 (upstream C suites of a 6.1 tree)",
    },
    Tool {
        package: "xz-utils",
        programs: &["xz"],
        files: &[],
        why: "linux-source tarballs; tinyconfig's XZ-compressed bzImage",
    },
    Tool {
        package: "libelf-dev",
        programs: &[],
        files: &["/usr/include/libelf.h", "/usr/include/gelf.h"],
        why: "objtool",
    },
    Tool {
        package: "libssl-dev",
        programs: &[],
        files: &["/usr/include/openssl/ssl.h"],
        why: "scripts/sign-file and extract-cert",
    },
    Tool {
        package: "patch",
        programs: &["patch"],
        files: &[],
        why: "applying a series",
    },
    Tool {
        package: "curl",
        programs: &["curl"],
        files: &[],
        why: "tarball sources",
    },
    Tool {
        package: "dpkg",
        programs: &["dpkg-deb"],
        files: &[],
        why: "unpacking linux-source .deb files",
    },
    Tool {
        package: "ccache",
        programs: &["ccache"],
        files: &[],
        why: "kernel builds served from cache across build directories",
    },
    Tool {
        package: "cpio",
        programs: &["cpio"],
        files: &[],
        why: "cargo test's cross-check of the Rust newc writer",
    },
    Tool {
        package: "git",
        programs: &["git"],
        files: &[],
        why: "a maintainer's own tree and branch (--tree --commits): format-patch, archive",
    },
];

/// Debian's Essential packages (and the shells) whose programs the kernel build
/// assumes on any system: never installed by the harness, but every program they
/// ship goes onto the reduced PATH of the completeness test, and nothing else does.
pub const BASE_PACKAGES: &[&str] = &[
    "dash",
    "bash",
    "coreutils",
    "sed",
    "grep",
    "mawk",
    "findutils",
    "diffutils",
    "tar",
    "gzip",
    "debianutils",
    "util-linux",
    "hostname",
    "apt",
];

/// Programs that come with Rust (rustup), the project's own prerequisite.
pub const RUST_PROGRAMS: &[&str] = &["cargo", "rustc"];

/// A program on PATH, or an absolute file that exists.
pub fn present(probe: &str) -> bool {
    if probe.starts_with('/') {
        return Path::new(probe).exists();
    }
    which(probe).is_some()
}

/// Where PATH finds a program.
pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// Packages some of whose programs or files are missing, in list order.
pub fn missing() -> Vec<&'static str> {
    TOOLS
        .iter()
        .filter(|t| t.programs.iter().any(|p| !present(p)) || t.files.iter().any(|f| !present(f)))
        .map(|t| t.package)
        .collect()
}

/// The one command that installs these packages (as root).
pub fn install_command(pkgs: &[&str], sudo: bool) -> String {
    let s = if sudo { "sudo " } else { "" };
    format!(
        "{s}apt-get update && {s}apt-get install -y --no-install-recommends {}",
        pkgs.join(" ")
    )
}

/// Makes sure every host tool is there: installs what is missing as root, else
/// stops with the command that would.
pub fn ensure() -> Result<()> {
    let pkgs = missing();
    if pkgs.is_empty() {
        return Ok(());
    }
    let is_root = unsafe { libc::geteuid() } == 0;
    if !is_root {
        return Err(setup_error(format!(
            "host tools: missing packages {}; install them with:\n    {}",
            pkgs.join(", "),
            install_command(&pkgs, true)
        )));
    }
    let st = crate::util::Stage::start("host tools", format!("apt-get install {}", pkgs.join(" ")));
    let apt = |args: &[&str]| duct::cmd("apt-get", args).env("DEBIAN_FRONTEND", "noninteractive");
    crate::util::run_captured(apt(&["update", "-q"]), "host tools: apt-get update", 20)?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(pkgs.iter().copied());
    crate::util::run_captured(
        apt(&args),
        &format!("host tools: apt-get install {}", pkgs.join(" ")),
        25,
    )?;
    let still = missing();
    if !still.is_empty() {
        return Err(setup_error(format!(
            "host tools: still missing after apt-get install: {}",
            still.join(", ")
        )));
    }
    st.done(&mut Vec::new());
    Ok(())
}

/// Fills `dir` with symlinks to every declared program (the tools of [`TOOLS`], the
/// programs of [`BASE_PACKAGES`] as `dpkg -L` lists them, and Rust's) and nothing
/// else: `PATH=dir` is the host as the declared list describes it. `drop` removes
/// one package's programs (to show that the completeness test notices).
pub fn reduced_path(dir: &Path, drop: &[String]) -> Result<Vec<String>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut programs: BTreeSet<(String, PathBuf)> = BTreeSet::new();
    for t in TOOLS
        .iter()
        .filter(|t| !drop.iter().any(|d| d == t.package))
    {
        for p in t.programs {
            let at = which(p).ok_or_else(|| {
                setup_error(format!(
                    "host tools: {p} (package {}) is not installed",
                    t.package
                ))
            })?;
            programs.insert((p.to_string(), at));
        }
    }
    for pkg in BASE_PACKAGES
        .iter()
        .filter(|p| !drop.iter().any(|d| d == *p))
    {
        let list = duct::cmd!("dpkg", "-L", pkg)
            .stderr_null()
            .read()
            .with_context(|| format!("dpkg -L {pkg}"))?;
        for f in list.lines() {
            let path = Path::new(f);
            let in_bin = ["/bin", "/usr/bin", "/sbin", "/usr/sbin"]
                .iter()
                .any(|d| path.parent() == Some(Path::new(d)));
            if in_bin && path.exists() {
                let name = path
                    .file_name()
                    .expect("a file")
                    .to_string_lossy()
                    .to_string();
                programs.insert((name, path.to_path_buf()));
            }
        }
    }
    // Debian's alternatives (`awk` -> mawk, `cc` -> gcc): a name in /usr/bin whose
    // link chain ends at a program already taken is that program under its common name.
    let taken: BTreeSet<PathBuf> = programs
        .iter()
        .filter_map(|(_, at)| at.canonicalize().ok())
        .collect();
    for bin in ["/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        for e in std::fs::read_dir(bin).into_iter().flatten().flatten() {
            let link = e.path();
            let Ok(first) = std::fs::read_link(&link) else {
                continue;
            };
            if !first.starts_with("/etc/alternatives") {
                continue;
            }
            if let Ok(end) = link.canonicalize() {
                if taken.contains(&end) {
                    let name = e.file_name().to_string_lossy().to_string();
                    programs.insert((name, link));
                }
            }
        }
    }
    for p in RUST_PROGRAMS {
        let at = which(p).ok_or_else(|| setup_error(format!("{p} is not on PATH")))?;
        programs.insert((p.to_string(), at));
    }
    let mut names = Vec::new();
    for (name, at) in programs {
        let link = dir.join(&name);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink(&at, &link)
            .with_context(|| format!("linking {} -> {}", link.display(), at.display()))?;
        names.push(name);
    }
    Ok(names)
}

/// `cargo xtask host-tools`.
pub fn main(reduced: Option<&Path>, drop: &[String], install: bool) -> Result<crate::util::Exit> {
    if install {
        ensure()?;
    }
    if let Some(dir) = reduced {
        let names = reduced_path(dir, drop)?;
        eprintln!("{} programs linked into {}", names.len(), dir.display());
        return Ok(crate::util::Exit::Ok);
    }
    let missing = missing();
    for t in TOOLS {
        let state = if missing.contains(&t.package) {
            "MISSING"
        } else {
            "ok"
        };
        let what: Vec<&str> = t.programs.iter().chain(t.files).copied().collect();
        println!(
            "{:<16} {:<8} {}  ({})",
            t.package,
            state,
            what.join(" "),
            t.why
        );
    }
    println!(
        "assumed present: the programs of {} (Essential), and {} (Rust)",
        BASE_PACKAGES.join(", "),
        RUST_PROGRAMS.join(", ")
    );
    if !missing.is_empty() {
        println!(
            "install the missing ones with:\n    {}",
            install_command(&missing, unsafe { libc::geteuid() } != 0)
        );
        return Ok(crate::util::Exit::Setup);
    }
    Ok(crate::util::Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_tell_present_from_absent() {
        assert!(present("sh"));
        assert!(!present("no-such-tool-on-any-path"));
        assert!(!present("/no/such/header.h"));
    }

    #[test]
    fn install_command_is_one_line_with_every_package() {
        let c = install_command(&["a", "rsync"], true);
        assert_eq!(
            c,
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends a rsync"
        );
        assert!(!c.contains('\n'));
    }

    #[test]
    fn the_list_has_what_headers_install_needs() {
        // Linux 6.1's `make headers_install` runs rsync (the first fresh-machine bug).
        assert!(TOOLS.iter().any(|t| t.programs.contains(&"rsync")));
    }

    #[test]
    fn packages_are_listed_once() {
        let mut seen = BTreeSet::new();
        for t in TOOLS {
            assert!(seen.insert(t.package), "{} listed twice", t.package);
            assert!(
                !t.programs.is_empty() || !t.files.is_empty(),
                "{}",
                t.package
            );
        }
    }
}
