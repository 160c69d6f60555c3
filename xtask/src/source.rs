//! Stage 1: the kernel source tree.
//!
//! Three kinds: a Debian source package (`apt-get download`, no root needed), a
//! tarball or .deb by URL verified by sha256 before use (what GitHub Actions uses),
//! or a developer's local tree (`--tree`, never modified). Pristine trees are cached
//! under `target/kernel/src/<key>/tree`, published atomically.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use xshell::{cmd, Shell};

use crate::targets::{Source, Tarball};
use crate::util::{publish_dir, setup_error, sha256_file, target_dir};

/// A kernel source tree ready to be copied, patched or built.
#[derive(Clone, Debug)]
pub struct Tree {
    /// What it is, for humans: "Debian linux-source-6.12 6.12.117-1~deb12u1".
    pub describe: String,
    /// Identity for cache keys: changes whenever the content may have.
    pub key: String,
    pub path: PathBuf,
    /// A developer's tree: mutable, so builds always run make.
    pub local: bool,
}

/// Which source to use: the target's, or a local override.
pub enum Choice<'a> {
    Target(&'a Source),
    Local(&'a Path),
}

pub fn fetch(choice: Choice<'_>, prefer_tarball: bool) -> Result<Tree> {
    match choice {
        Choice::Local(p) => local(p),
        Choice::Target(src) => match (&src.debian, &src.tarball) {
            (Some(_), Some(tb)) if prefer_tarball => tarball(tb),
            (Some(pkg), _) => debian(pkg),
            (None, Some(tb)) => tarball(tb),
            (None, None) => bail!("source: the target names no debian package and no tarball"),
        },
    }
}

fn cache() -> PathBuf {
    target_dir().join("kernel")
}

fn local(p: &Path) -> Result<Tree> {
    let path = p
        .canonicalize()
        .map_err(|e| setup_error(format!("--tree {}: {e}", p.display())))?;
    if !path.join("Makefile").exists() || !path.join("Kconfig").exists() {
        return Err(setup_error(format!(
            "--tree {}: not a kernel tree (no top-level Makefile and Kconfig)",
            path.display()
        )));
    }
    if path.join(".config").exists() {
        return Err(setup_error(format!(
            "--tree {}: the tree has a .config; out-of-tree builds (O=) need a clean source \
             tree: run `make mrproper` there first",
            path.display()
        )));
    }
    Ok(Tree {
        describe: format!("local tree {}", path.display()),
        key: format!("local:{}", path.display()),
        path,
        local: true,
    })
}

/// `apt-cache show` fields of the candidate version.
fn apt_candidate(sh: &Shell, spec: &str) -> Result<(String, String, Option<String>)> {
    let out = cmd!(sh, "apt-cache show --no-all-versions {spec}")
        .quiet()
        .ignore_stderr()
        .read()
        .map_err(|_| {
            setup_error(format!(
                "source: Debian package {spec} is unknown to apt (try `apt-get update`)"
            ))
        })?;
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .map(str::to_string)
    };
    match (field("Version"), field("Filename")) {
        (Some(v), Some(f)) => {
            let file = f.rsplit('/').next().unwrap_or(&f).to_string();
            Ok((v, file, field("SHA256").map(|h| h.to_ascii_lowercase())))
        }
        _ => Err(setup_error(format!(
            "source: apt-cache show {spec}: no Version/Filename"
        ))),
    }
}

/// `pkg` or `pkg=version` (pinned: Debian keeps several versions in its archive).
fn debian(spec: &str) -> Result<Tree> {
    let sh = Shell::new()?;
    let pkg = spec.split('=').next().unwrap_or(spec);
    let (version, deb_name, sha256) = apt_candidate(&sh, spec)?;
    let downloads = cache().join("downloads");
    std::fs::create_dir_all(&downloads)?;
    let deb = downloads.join(&deb_name);
    let stem = deb_name.trim_end_matches(".deb").replace('~', "_");
    if let Some(want) = &sha256 {
        if !unpacked(&stem) {
            drop_if_corrupt(&deb, want)?;
        }
    }
    if !deb.exists() {
        eprintln!("    apt-get download {pkg} ({version})");
        // Download into a private directory, then rename: never a half file in the cache.
        let tmp = tempfile::tempdir_in(&downloads)?;
        sh.change_dir(tmp.path());
        cmd!(sh, "apt-get download -q {pkg}={version}")
            .quiet()
            .run()
            .map_err(|e| {
                let full = crate::util::disk_full(&downloads).map(|n| format!("{n}; "));
                setup_error(format!(
                    "source: {}apt-get download {pkg}={version}: {e}",
                    full.unwrap_or_default()
                ))
            })?;
        let got = tmp.path().join(&deb_name);
        if !got.exists() {
            // apt encodes ':' in epochs as %3a; take whatever single .deb came.
            let any = std::fs::read_dir(tmp.path())?
                .flatten()
                .find(|e| e.path().extension().is_some_and(|x| x == "deb"))
                .ok_or_else(|| setup_error(format!("source: apt-get download {pkg}: no .deb")))?;
            std::fs::rename(any.path(), &deb)?;
        } else {
            std::fs::rename(got, &deb)?;
        }
    }
    let path = unpack_deb(&deb, &stem)?;
    Ok(Tree {
        describe: format!("Debian {pkg} {version}"),
        key: format!("debian:{deb_name}"),
        path,
        local: false,
    })
}

/// Whether the tree cache holds the unpacked tree `stem` (then its download is not read).
fn unpacked(stem: &str) -> bool {
    cache()
        .join("src")
        .join(stem)
        .join("tree/Makefile")
        .exists()
}

/// A cached download about to be unpacked is checked against its sha256 first: a
/// truncated or damaged file is removed (and so downloaded again), never unpacked.
fn drop_if_corrupt(file: &Path, want: &str) -> Result<()> {
    if !file.exists() {
        return Ok(());
    }
    let got = sha256_file(file)?;
    if got != want {
        eprintln!(
            "    cached {} is damaged (sha256 {got}, expected {want}): downloading it again",
            file.display()
        );
        std::fs::remove_file(file)
            .with_context(|| format!("removing the damaged {}", file.display()))?;
    }
    Ok(())
}

/// Unpacks a linux-source .deb (a tarball inside a .deb) into the tree cache.
fn unpack_deb(deb: &Path, stem: &str) -> Result<PathBuf> {
    let entry = cache().join("src").join(stem);
    if !entry.join("tree").join("Makefile").exists() {
        eprintln!("    unpacking {}", deb.display());
        publish_dir(&entry, |tmp| {
            let sh = Shell::new()?;
            let debdir = tmp.join("deb");
            cmd!(sh, "dpkg-deb -x {deb} {debdir}").quiet().run()?;
            let usr_src = debdir.join("usr/src");
            let tarball = std::fs::read_dir(&usr_src)
                .with_context(|| format!("{} has no usr/src", deb.display()))?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().contains(".tar"))
                .ok_or_else(|| {
                    setup_error(format!("{}: no kernel tarball in usr/src", deb.display()))
                })?;
            extract_tarball(&tarball, tmp)?;
            std::fs::remove_dir_all(&debdir)?;
            Ok(())
        })?;
    }
    Ok(entry.join("tree"))
}

/// Extracts a tarball with one top-level directory into `<dir>/tree`.
fn extract_tarball(tarball: &Path, dir: &Path) -> Result<()> {
    let sh = Shell::new()?;
    let x = dir.join("x");
    std::fs::create_dir_all(&x)?;
    cmd!(sh, "tar -xf {tarball} -C {x}")
        .quiet()
        .run()
        .map_err(|e| setup_error(format!("source: extracting {}: {e}", tarball.display())))?;
    let tops: Vec<_> = std::fs::read_dir(&x)?.flatten().map(|e| e.path()).collect();
    let [top] = tops.as_slice() else {
        bail!(
            "source: {} has {} top-level entries, expected one directory",
            tarball.display(),
            tops.len()
        )
    };
    if !top.join("Makefile").exists() {
        return Err(setup_error(format!(
            "source: {} is not a kernel tree",
            tarball.display()
        )));
    }
    std::fs::rename(top, dir.join("tree"))?;
    std::fs::remove_dir(&x)?;
    Ok(())
}

/// Downloads (curl) and verifies a tarball or .deb by sha256, then unpacks it.
pub fn tarball(tb: &Tarball) -> Result<Tree> {
    let downloads = cache().join("downloads");
    std::fs::create_dir_all(&downloads)?;
    let base = tb.url.rsplit('/').next().unwrap_or("download").to_string();
    let want = tb.sha256.to_ascii_lowercase();
    // Keyed by the whole checksum: a sum that differs in any digit is another entry.
    let file = downloads.join(format!("{want}-{base}"));
    let stem = format!("url-{want}");
    if !unpacked(&stem) {
        drop_if_corrupt(&file, &want)?;
    }
    if !file.exists() {
        eprintln!("    downloading {}", tb.url);
        let part = tempfile::NamedTempFile::new_in(&downloads)?;
        let sh = Shell::new()?;
        let url = &tb.url;
        let out = part.path();
        cmd!(sh, "curl -fsSL --retry 3 -o {out} {url}")
            .quiet()
            .run()
            .map_err(|e| {
                // Checked while the partial file still fills the disk.
                let full = crate::util::disk_full(&downloads).map(|n| format!("{n}; "));
                setup_error(format!(
                    "source: {}downloading {url}: {e}",
                    full.unwrap_or_default()
                ))
            })?;
        let got = sha256_file(part.path())?;
        if got != want {
            // The temporary file is removed on drop: nothing corrupt stays in the cache.
            return Err(setup_error(format!(
                "source: sha256 mismatch for {url}\n    expected {want}\n    got      {got}\n\
                 (fix source.tarball.sha256 in configs/targets.yaml, or the URL)"
            )));
        }
        part.persist(&file)
            .map_err(|e| anyhow::anyhow!("keeping download: {e}"))?;
    }
    let path = if base.ends_with(".deb") {
        unpack_deb(&file, &stem)?
    } else {
        let entry = cache().join("src").join(&stem);
        if !entry.join("tree").join("Makefile").exists() {
            eprintln!("    unpacking {}", file.display());
            publish_dir(&entry, |tmp| extract_tarball(&file, tmp))?;
        }
        entry.join("tree")
    };
    Ok(Tree {
        describe: format!("tarball {}", tb.url),
        key: format!("sha256:{want}"),
        path,
        local: false,
    })
}

/// `make kernelversion` without touching the tree.
pub fn kernel_version(tree: &Path) -> String {
    let text = std::fs::read_to_string(tree.join("Makefile")).unwrap_or_default();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.trim_start_matches([' ', '=']).trim().to_string())
            })
            .unwrap_or_default()
    };
    format!(
        "{}.{}.{}",
        get("VERSION"),
        get("PATCHLEVEL"),
        get("SUBLEVEL")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_reads_the_makefile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("Makefile"),
            "# SPDX\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\n",
        )
        .unwrap();
        assert_eq!(kernel_version(d.path()), "6.12.117");
    }

    #[test]
    fn local_tree_must_be_a_clean_kernel_tree() {
        let d = tempfile::tempdir().unwrap();
        let e = local(d.path()).unwrap_err().to_string();
        assert!(e.contains("not a kernel tree"), "{e}");
        std::fs::write(d.path().join("Makefile"), "").unwrap();
        std::fs::write(d.path().join("Kconfig"), "").unwrap();
        assert!(local(d.path()).unwrap().local);
        std::fs::write(d.path().join(".config"), "").unwrap();
        assert!(local(d.path())
            .unwrap_err()
            .to_string()
            .contains("mrproper"));
    }
}
