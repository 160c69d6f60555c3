//! Glue between the library and the ktap crate's forking runner
//! ([`ktap::runner`]), for the suites written for this project
//! (`pagemap_scan_regressions`): `?` on a library [`Result`](crate::Result) inside a
//! test turns an unsupported feature into a SKIP that names the version which brought
//! it, and any other error into a failure.

use ktap::runner::Stop;

impl From<crate::Error> for Stop {
    fn from(e: crate::Error) -> Stop {
        if e.is_unsupported() {
            Stop::Skip(with_versions(&e.to_string()))
        } else {
            Stop::Fail(e.to_string())
        }
    }
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
}
