//! The command line itself. (These tests also make cargo build the `wicket` binary that the
//! end-to-end tests in `tests/` run.)

use std::process::Command;

fn wicket() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wicket"))
}

#[test]
fn plugins_lists_every_builtin_with_its_keys() {
    let out = wicket().arg("plugins").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "http (integration)",
        "mock (integration)",
        "headers (filter)",
        "url (required)",
        "timeout_ms",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn the_example_config_checks() {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/gateway.toml");
    let out = wicket()
        .args(["check", "--config", config])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok (2 routes, 3 plugins)"), "{text}");
}
