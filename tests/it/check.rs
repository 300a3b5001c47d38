//! `vigie check` on the shipped files and on a corpus of broken ones: every
//! problem named with its file, line and column; never a panic.

use crate::support::{Sandbox, run_vigie};

#[test]
fn the_shipped_configuration_passes_check() {
    let sb = Sandbox::shipped();
    let config = sb.config();
    let (code, out, _) = run_vigie(&[
        "check",
        "-c",
        config.to_str().unwrap(),
        "--date",
        "2026-06-01",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK: 41 professionals"), "{out}");
    assert!(out.contains("in force: pgc 2026.1"), "{out}");
}
