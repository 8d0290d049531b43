use super::connect::hostkey_methods;
use super::*;

#[test]
fn quoting_survives_sh() {
    assert_eq!(quote("echo hi"), "'echo hi'");
    assert_eq!(quote("it's"), r"'it'\''s'");
    let script = "printf '%s\\n' \"a b\" 'c'\"'\"'d' $HOME";
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("sh -c {}", quote(script)))
        .output()
        .unwrap();
    let direct = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(out.stdout, direct.stdout);
}

#[test]
fn describe_takes_the_first_line() {
    assert_eq!(describe("\n  echo a\nrm -rf x\n"), "echo a");
    assert_eq!(describe("#!/bin/sh\nset -eu\n\nrm -rf x\n"), "rm -rf x");
    assert_eq!(describe("set -e\n"), "set -e");
    let long = "x".repeat(200);
    assert_eq!(describe(&long).chars().count(), 80);
}

#[test]
fn millis_is_never_zero() {
    assert_eq!(millis(Duration::ZERO), 1);
    assert_eq!(millis(Duration::from_secs(2)), 2000);
    assert_eq!(millis(Duration::from_secs(u64::MAX)), u32::MAX);
}

#[test]
fn rsa_maps_to_all_its_signature_methods() {
    assert_eq!(
        hostkey_methods("ssh-rsa"),
        ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
    );
    assert_eq!(hostkey_methods("ssh-ed25519"), ["ssh-ed25519"]);
    assert!(hostkey_methods("nonsense").is_empty());
}

#[test]
fn transport_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<SshTransport>();
}

#[test]
fn signals_become_shell_statuses() {
    assert_eq!(signal_number("KILL"), Some(9));
    assert_eq!(signal_number("TERM"), Some(15));
    assert_eq!(signal_number("WEIRD"), None);
}
