//! Glue between the library and the ktap crate's forking runner
//! ([`ktap::runner`]), for the suites written for this project
//! (`pagemap_scan_regressions`).
//!
//! A SKIP comes only from a probe: [`probed`] wraps the calls that establish a
//! feature (a userfaultfd handshake that names the features it lacks) and turns
//! "unsupported" into a SKIP naming the version that brought it. Everything else a
//! test does with `?` goes through `From<Error> for Stop` and FAILs, "unsupported"
//! included: once the probes found a feature, the kernel refusing it later (a
//! userfaultfd WP registration without UFFDIO_WRITEPROTECT, PAGEMAP_SCAN answering
//! ENOTTY) is a wrong kernel, not a missing feature.

use ktap::runner::Stop;

impl From<crate::Error> for Stop {
    fn from(e: crate::Error) -> Stop {
        if e.is_unsupported() {
            Stop::Fail(format!(
                "{e} (outside a feature probe: the kernel refused what the probes found present)"
            ))
        } else {
            Stop::Fail(e.to_string())
        }
    }
}

/// A feature probe: "unsupported" is a SKIP naming the version that brought the
/// feature; any other error is a FAIL.
pub fn probed<T>(r: crate::Result<T>) -> Result<T, Stop> {
    r.map_err(|e| {
        if e.is_unsupported() {
            Stop::Skip(with_versions(&e.to_string()))
        } else {
            Stop::Fail(e.to_string())
        }
    })
}

/// Appends "(added in X)" for the features an Unsupported error names.
pub fn with_versions(msg: &str) -> String {
    const SINCE: &[(&str, &str)] = &[
        (
            "UFFD_FEATURE_WP_ASYNC",
            "UFFD_FEATURE_WP_ASYNC added in 6.7",
        ),
        (
            "UFFD_FEATURE_WP_UNPOPULATED",
            "UFFD_FEATURE_WP_UNPOPULATED added in 6.6",
        ),
        ("PAGEMAP_SCAN", "PAGEMAP_SCAN added in 6.7"),
        (
            "userfaultfd",
            "userfaultfd needs CONFIG_USERFAULTFD (UFFD_USER_MODE_ONLY: 5.11)",
        ),
    ];
    let found: Vec<&str> = SINCE
        .iter()
        .filter(|(k, _)| msg.contains(k))
        .map(|(_, v)| *v)
        .collect();
    if found.is_empty() {
        msg.to_string()
    } else {
        format!("{msg} ({})", found.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_appended_to_named_features() {
        assert_eq!(with_versions("no THP"), "no THP");
        assert_eq!(
            with_versions("PAGEMAP_SCAN: ENOTTY"),
            "PAGEMAP_SCAN: ENOTTY (PAGEMAP_SCAN added in 6.7)"
        );
    }

    #[test]
    fn unsupported_skips_only_from_a_probe() {
        let e = || crate::Error::Unsupported {
            feature: "UFFDIO_WRITEPROTECT".into(),
            reason: "register allowed 0x0".into(),
        };
        assert!(matches!(Stop::from(e()), Stop::Fail(m) if m.contains("outside a feature probe")));
        assert!(matches!(probed::<()>(Err(e())), Err(Stop::Skip(_))));
        let sys = crate::Error::Sys {
            call: "x",
            args: String::new(),
            errno: libc::EINVAL,
        };
        assert!(matches!(probed::<()>(Err(sys)), Err(Stop::Fail(_))));
    }
}
