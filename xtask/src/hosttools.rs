//! Stage 0: host tools. Missing ones are installed with apt-get when running as root;
//! otherwise one message gives the command that would install them.

use std::path::Path;

use anyhow::Result;

use crate::util::setup_error;

/// A tool the pipeline needs, how to tell it is there, and its Debian package.
struct Tool {
    /// What to look for: a program on PATH, or an absolute file (headers).
    probe: &'static str,
    package: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool {
        probe: "qemu-system-x86_64",
        package: "qemu-system-x86",
    },
    Tool {
        probe: "gcc",
        package: "gcc",
    },
    Tool {
        probe: "make",
        package: "make",
    },
    Tool {
        probe: "flex",
        package: "flex",
    },
    Tool {
        probe: "bison",
        package: "bison",
    },
    Tool {
        probe: "bc",
        package: "bc",
    },
    Tool {
        probe: "cpio",
        package: "cpio",
    },
    Tool {
        probe: "xz",
        package: "xz-utils",
    },
    Tool {
        probe: "patch",
        package: "patch",
    },
    Tool {
        probe: "perl",
        package: "perl",
    },
    Tool {
        probe: "curl",
        package: "curl",
    },
    Tool {
        probe: "dpkg-deb",
        package: "dpkg",
    },
    Tool {
        probe: "ccache",
        package: "ccache",
    },
    Tool {
        probe: "/usr/include/libelf.h",
        package: "libelf-dev",
    },
    Tool {
        probe: "/usr/include/openssl/ssl.h",
        package: "libssl-dev",
    },
];

/// A program on PATH, or an absolute file that exists.
pub fn present(probe: &str) -> bool {
    if probe.starts_with('/') {
        return Path::new(probe).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(probe).is_file()))
        .unwrap_or(false)
}

/// Packages whose tools are missing.
pub fn missing() -> Vec<&'static str> {
    let mut v: Vec<&str> = TOOLS
        .iter()
        .filter(|t| !present(t.probe))
        .map(|t| t.package)
        .collect();
    v.dedup();
    v
}

pub fn install_command(pkgs: &[&str]) -> String {
    format!("apt-get update && apt-get install -y {}", pkgs.join(" "))
}

/// Makes sure every host tool is there.
pub fn ensure() -> Result<()> {
    let pkgs = missing();
    if pkgs.is_empty() {
        return Ok(());
    }
    let is_root = unsafe { libc::geteuid() } == 0;
    if !is_root {
        return Err(setup_error(format!(
            "missing host tools ({}); install them with:\n    sudo {}",
            pkgs.join(", "),
            install_command(&pkgs)
        )));
    }
    eprintln!("==> host tools: installing {}", pkgs.join(" "));
    let sh = xshell::Shell::new()?;
    sh.set_var("DEBIAN_FRONTEND", "noninteractive");
    xshell::cmd!(sh, "apt-get update -qq").run()?;
    let list = pkgs.clone();
    xshell::cmd!(sh, "apt-get install -y -qq {list...}")
        .run()
        .map_err(|e| setup_error(format!("apt-get install {}: {e}", pkgs.join(" "))))?;
    let still = missing();
    if !still.is_empty() {
        return Err(setup_error(format!(
            "still missing after apt-get: {}",
            still.join(", ")
        )));
    }
    Ok(())
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
    fn install_command_lists_packages() {
        assert_eq!(
            install_command(&["a", "b"]),
            "apt-get update && apt-get install -y a b"
        );
    }
}
