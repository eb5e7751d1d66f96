//! The fixtures kept beside the project in `../shared` (the real AWS-signed SNS messages, the
//! example payloads). A test that needs them fails when they are missing, so a run cannot
//! pass green without the evidence they give; a checkout that has no `../shared` says so with
//! `CW_SKIP_SHARED=1`, and each such test then says it skipped.

use std::path::{Path, PathBuf};

/// The variable that lets the tests needing `../shared` skip, in a checkout without it.
pub(crate) const OPT_OUT: &str = "CW_SKIP_SHARED";

/// `rel` under `../shared` (the crate beside it) or `../../shared` (a crate one level down,
/// as a scratch copy is); `None` only when missing and opted out.
pub(crate) fn dir(rel: &str) -> Option<PathBuf> {
    let base = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = ["../shared", "../../shared"]
        .iter()
        .map(|up| base.join(up).join(rel))
        .find(|p| p.is_dir());
    let opted_out = std::env::var_os(OPT_OUT).is_some_and(|v| v == "1");
    resolve(rel, found, opted_out).unwrap_or_else(|why| panic!("{why}"))
}

/// What a lookup comes to: the directory, a skip (said on stderr), or why the test fails.
fn resolve(rel: &str, found: Option<PathBuf>, opted_out: bool) -> Result<Option<PathBuf>, String> {
    match (found, opted_out) {
        (Some(dir), _) => Ok(Some(dir)),
        (None, true) => {
            eprintln!("skipped: ../shared/{rel} is absent and {OPT_OUT}=1");
            Ok(None)
        }
        (None, false) => Err(format!(
            "../shared/{rel} is missing: this test needs the shared fixtures beside the \
             project (set {OPT_OUT}=1 to skip it in a checkout without them)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fixtures_fail_unless_opted_out() {
        let why = resolve("fixtures/payloads", None, false).expect_err("fails");
        assert!(
            why.contains("../shared/fixtures/payloads is missing"),
            "{why}"
        );
        assert!(why.contains("CW_SKIP_SHARED=1"), "{why}");
        assert_eq!(resolve("fixtures/payloads", None, true), Ok(None));
        let here = PathBuf::from("/x/shared/fixtures/payloads");
        assert_eq!(
            resolve("fixtures/payloads", Some(here.clone()), false),
            Ok(Some(here.clone()))
        );
        assert_eq!(
            resolve("fixtures/payloads", Some(here.clone()), true),
            Ok(Some(here))
        );
    }

    #[test]
    fn this_checkout_has_its_shared_fixtures() {
        // CI runs with ../shared beside the clone: both sets must be found there.
        if std::env::var_os(OPT_OUT).is_none() {
            assert!(dir("fixtures/sns-aws-signed").is_some());
            assert!(dir("fixtures/payloads").is_some());
        }
    }
}
