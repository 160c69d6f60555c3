//! junit.xml (with the quick-junit crate): one testsuite per suite, one testcase per
//! test; a suite with no test results is one testcase. A run that stopped at a
//! stage is one failing testcase named after the stage; kernel trouble (panic,
//! hang, console WARNING) is a failing `<target>.kernel` testcase; each C program vs
//! its Rust port is a `<target>.c-vs-rust` testcase.

use anyhow::Result;
use ktap::Status;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::Ending;
use crate::plan::RunRecord;

fn failure(message: &str, description: Option<String>) -> TestCaseStatus {
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
    s.set_message(message);
    if let Some(d) = description {
        s.set_description(d);
    }
    s
}

pub fn render(r: &RunRecord, end: Ending<'_>) -> Result<String> {
    let target = &r.plan.target;
    let mut report = Report::new(format!("cargo xtask test-kernel {target}"));
    if let Some(f) = &r.failure {
        let mut detail = f.message.clone();
        if let Some(e) = &f.first_error {
            detail.push_str(&format!("\n\nfirst error:\n{e}"));
        }
        let mut suite = TestSuite::new(format!("{target}.{}", f.stage));
        let mut case = TestCase::new(
            f.stage.to_string(),
            failure(f.message.lines().next().unwrap_or(""), Some(detail)),
        );
        case.set_classname(format!("{target}.{}", f.stage));
        suite.add_test_case(case);
        report.add_test_suite(suite);
    }
    let Ending::Judged(a) = end else {
        return Ok(report.to_string()?);
    };
    for s in &a.suites {
        let class = format!("{target}.{}", s.name);
        let mut suite = TestSuite::new(class.clone());
        let tests: Vec<_> = a.tests.iter().filter(|t| t.suite == s.name).collect();
        if tests.is_empty() {
            let status = if let Some(why) = &s.skipped_suite {
                let mut st = TestCaseStatus::skipped();
                st.set_message(why.as_str());
                st
            } else if !s.mismatches.is_empty() {
                failure(&s.mismatches.join("; "), None)
            } else {
                TestCaseStatus::success()
            };
            let mut case = TestCase::new(s.name.clone(), status);
            case.set_classname(class.clone());
            suite.add_test_case(case);
        }
        for t in tests {
            let status = if t.status == Status::Skip {
                let mut st = TestCaseStatus::skipped();
                st.set_message(t.expectation.as_deref().unwrap_or(&t.reason));
                st
            } else if !t.as_expected {
                failure(format!("{} {}", t.status, t.reason).trim(), None)
            } else {
                TestCaseStatus::success()
            };
            let mut case = TestCase::new(t.name.clone(), status);
            case.set_classname(class.clone());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    let trouble: Vec<String> = a
        .console_problems
        .iter()
        .cloned()
        .chain(a.cut_short.then(|| {
            "the results port ended without `# exit=`: the guest crashed, hung or was killed"
                .to_string()
        }))
        .chain(a.kvm_required.clone())
        .collect();
    if !trouble.is_empty() {
        let class = format!("{target}.kernel");
        let mut suite = TestSuite::new(class.clone());
        let mut case = TestCase::new("kernel", failure(&a.headline(), Some(trouble.join("\n\n"))));
        case.set_classname(class);
        suite.add_test_case(case);
        report.add_test_suite(suite);
    }
    // Each C program vs its Rust port: one testcase, failing on an unexplained
    // difference or a stale explanation.
    if !a.c_vs_rust.is_empty() {
        let class = format!("{target}.c-vs-rust");
        let mut suite = TestSuite::new(class.clone());
        for c in &a.c_vs_rust {
            let status = if c.problems.is_empty() {
                TestCaseStatus::success()
            } else {
                failure(&c.line(), Some(c.problems.join("\n")))
            };
            let mut case = TestCase::new(format!("{} vs {}", c.rust, c.c), status);
            case.set_classname(class.clone());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    Ok(report.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::tests::{judge, plan, RUN};
    use crate::stages::{StageFailure, StageName};

    #[test]
    fn skips_and_failures_are_marked() {
        let p = plan(
            "      soft-dirty:\n        skip: { 'Test test_hugepage huge page allocation': 'no THP' }\n      pagemap_ioctl: { skip_suite: 'added in 6.7' }\n",
        );
        let a = judge(&p, RUN, "");
        let x = render(&RunRecord::new(p), Ending::Judged(&a)).unwrap();
        assert!(x.contains("<skipped message=\"no THP\"/>"), "{x}");
        assert!(
            x.contains("<skipped message=\"PAGEMAP_SCAN not supported\"/>"),
            "{x}"
        );
        assert!(
            x.contains("reused memory location\" classname=\"t.soft-dirty\">\n            <failure message=\"FAIL\"/>"),
            "{x}"
        );
    }

    #[test]
    fn an_unexplained_c_vs_rust_difference_is_a_failing_case() {
        let p = crate::crosscheck::tests::paired("        {}\n");
        let t = crate::crosscheck::tests::run(&[("a", true), ("b", true)], &[("a", true)]);
        let a = judge(&p, &t, "");
        let x = render(&RunRecord::new(p), Ending::Judged(&a)).unwrap();
        assert!(
            x.contains("<testcase name=\"pagemap_ioctl vs pagemap_ioctl.c\" classname=\"t.c-vs-rust\">\n            <failure message=\"pagemap_ioctl vs pagemap_ioctl.c: 2 vs 1 tests, 1 only in pagemap_ioctl (1 UNEXPLAINED)"),
            "{x}"
        );
    }

    #[test]
    fn a_stopped_run_is_one_failing_case() {
        let p = plan("      soft-dirty: {}\n      pagemap_ioctl: {}\n");
        let mut r = RunRecord::new(p);
        let e: anyhow::Error = crate::series::NotApplied {
            patch: "0002-x.patch".into(),
            problems: vec!["fs/proc/task_mmu.c: Hunk #2 FAILED at 120.".into()],
        }
        .into();
        r.failure = Some(StageFailure::new(StageName::Series, &e));
        let x = render(&r, Ending::Stopped).unwrap();
        assert!(x.contains("testsuite name=\"t.series\""), "{x}");
        assert!(x.contains("series: 0002-x.patch does not apply:"), "{x}");
        assert!(x.contains("Hunk #2 FAILED"), "{x}");
    }
}
