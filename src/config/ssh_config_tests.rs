use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::Config;
use crate::model::{SshTarget, Target};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn lookup(config: &SshConfig, alias: &str) -> Found {
    config
        .lookup(&Query {
            alias,
            user: None,
            local_user: "me",
        })
        .unwrap()
}

fn value(found: &Found, key: &str) -> Option<String> {
    found.get(key).map(|(args, _)| args.join(" "))
}

#[test]
fn host_patterns_negation_and_first_value_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "config",
        "# fleet\n\
         Host web* !web-canary\n\
         \x20 User deploy\n\
         \x20 Port=2222\n\
         Host web1\n\
         \x20 User ignored-because-first-wins\n\
         \x20 HostName 10.0.0.1\n\
         Host *\n\
         \x20 User everyone\n\
         \x20 IdentityFile ~/.ssh/a\n\
         \x20 IdentityFile \"/keys/with space\"\n",
    );
    let config = SshConfig::load(&path, dir.path(), true).unwrap();
    let web1 = lookup(&config, "web1");
    assert_eq!(value(&web1, "user").as_deref(), Some("deploy"));
    assert_eq!(value(&web1, "port").as_deref(), Some("2222"));
    assert_eq!(value(&web1, "hostname").as_deref(), Some("10.0.0.1"));
    let (_, place) = web1.get("user").unwrap();
    assert_eq!(place.line, 3, "the line the value was written on");
    // Every IdentityFile counts, in order.
    let files: Vec<&str> = web1
        .identity_files
        .iter()
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(files, ["~/.ssh/a", "/keys/with space"]);

    let canary = lookup(&config, "web-canary");
    assert_eq!(value(&canary, "user").as_deref(), Some("everyone"));
    assert_eq!(value(&canary, "port"), None);
    // Case does not matter in keywords nor in host names.
    assert_eq!(
        value(&lookup(&config, "WEB2"), "user").as_deref(),
        Some("deploy")
    );
}

#[test]
fn include_applies_where_it_stands() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), ".ssh/conf.d/10-db", "Host db*\n  User dba\n");
    write(dir.path(), ".ssh/conf.d/20-web", "Host web*\n  User www\n");
    write(dir.path(), ".ssh/only-for-x", "Port 2200\n");
    let path = write(
        dir.path(),
        ".ssh/config",
        "Include conf.d/*\n\
         Host x\n\
         \x20 Include ~/.ssh/only-for-x\n\
         Host *\n\
         \x20 User fallback\n",
    );
    let config = SshConfig::load(&path, dir.path(), true).unwrap();
    assert_eq!(
        value(&lookup(&config, "db1"), "user").as_deref(),
        Some("dba")
    );
    assert_eq!(
        value(&lookup(&config, "web1"), "user").as_deref(),
        Some("www")
    );
    assert_eq!(
        value(&lookup(&config, "x"), "port").as_deref(),
        Some("2200")
    );
    assert_eq!(
        value(&lookup(&config, "y"), "port"),
        None,
        "an Include inside Host x"
    );
    let db1 = lookup(&config, "db1");
    let (_, place) = db1.get("user").unwrap();
    assert!(place.file.ends_with("conf.d/10-db"), "{place:?}");

    // A file that includes itself is an error, not a hang.
    let looped = write(
        dir.path(),
        "loop",
        &format!("Include {}\n", dir.path().join("loop").display()),
    );
    // Reading a file twice is skipped, so a self-include ends; a chain too deep is refused.
    assert!(SshConfig::load(&looped, dir.path(), true).is_ok());
}

#[test]
fn match_criteria() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "config",
        "Host alias\n\
         \x20 HostName real.example\n\
         Match host real.example\n\
         \x20 Port 2022\n\
         Match originalhost alias user ops\n\
         \x20 IdentityFile /k/ops\n\
         Match !originalhost alias all\n\
         \x20 Port 1\n\
         Match host other exec \"false\"\n\
         \x20 Port 3\n",
    );
    let config = SshConfig::load(&path, dir.path(), true).unwrap();
    let alias = lookup(&config, "alias");
    assert_eq!(
        value(&alias, "port").as_deref(),
        Some("2022"),
        "Match host sees HostName"
    );
    assert!(alias.identity_files.is_empty(), "user is `me`, not ops");
    let as_ops = config
        .lookup(&Query {
            alias: "alias",
            user: Some("ops"),
            local_user: "me",
        })
        .unwrap();
    assert_eq!(as_ops.identity_files.len(), 1);
    // Negated: every other host, until `exec` would have to run.
    let err = config
        .lookup(&Query {
            alias: "other",
            user: None,
            local_user: "me",
        })
        .err();
    assert_eq!(
        value(&lookup(&config, "third"), "port").as_deref(),
        Some("1")
    );
    // `other` gets Port 1 first, but Match exec must still be refused for it.
    let err = err.expect("Match exec is refused");
    assert!(
        err.to_string().contains("Match exec is not supported"),
        "{err}"
    );
    assert_eq!(err.position, Some((9, 1)), "{err}");
}

#[test]
fn syntax_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "config", "Host a\n  User \"unclosed\n");
    let err = SshConfig::load(&path, dir.path(), true).unwrap_err();
    assert_eq!(err.position, Some((2, 1)));
    assert!(err.to_string().contains("unclosed quote"), "{err}");
    let path = write(dir.path(), "config2", "Host a\n  Port\n");
    let err = SshConfig::load(&path, dir.path(), true).unwrap_err();
    assert!(err.to_string().contains("port needs a value"), "{err}");
    // A named file that is missing is an error; the default one is not.
    assert!(SshConfig::load(&dir.path().join("nope"), dir.path(), true).is_err());
    assert!(SshConfig::load(&dir.path().join("nope"), dir.path(), false).is_ok());
}

/// A shipdeck.toml beside an ssh_config, loaded.
fn load(dir: &Path, ssh_config: &str, toml: &str) -> Result<Config, crate::config::ConfigError> {
    let sc = write(dir, "ssh_config", ssh_config);
    let text = format!(
        "[app]\nname = \"a\"\nartifact = \"dist\"\ndeploy_to = \"/srv/a\"\n\
         [ssh]\nconfig = {:?}\n{toml}",
        sc.display().to_string()
    );
    let path = write(dir, "shipdeck.toml", &text);
    Config::load(&path)
}

fn target(cfg: &Config, env: &str, i: usize) -> SshTarget {
    match &cfg.environment(env).unwrap().hosts[i].target {
        Target::Ssh(t) => t.clone(),
        Target::Local { .. } => panic!("local"),
    }
}

const FLEET: &str = "Host web*\n\
                     \x20 HostName %h.internal\n\
                     \x20 User cfguser\n\
                     \x20 Port 2200\n\
                     \x20 IdentityFile %d/keys/%r-%n\n\
                     \x20 IdentitiesOnly yes\n\
                     \x20 ServerAliveInterval 7\n\
                     \x20 ConnectTimeout 3\n\
                     \x20 ProxyJump jumper@bastion:2022,inner\n\
                     Host bastion\n\
                     \x20 HostName 192.0.2.1\n\
                     \x20 IdentityFile /keys/bastion\n\
                     Host inner\n\
                     \x20 HostName 10.1.1.1\n";

#[test]
fn ssh_config_fills_what_shipdeck_leaves_out() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = load(
        dir.path(),
        FLEET,
        "[environments.prod]\nhosts = [\"web1\"]\n",
    )
    .unwrap();
    let t = target(&cfg, "prod", 0);
    assert_eq!(t.to_string(), "cfguser@web1.internal:2200");
    let home = dirs::home_dir().unwrap();
    assert_eq!(t.identities, [home.join("keys/cfguser-web1")]);
    assert!(t.identities_only);
    assert_eq!(t.keepalive, Some(Duration::from_secs(7)));
    assert_eq!(t.connect_timeout, Some(Duration::from_secs(3)));
    let hops: Vec<String> = t.jump.iter().map(ToString::to_string).collect();
    let me = crate::config::ssh_hosts::local_user();
    assert_eq!(
        hops,
        [
            "jumper@192.0.2.1:2022".to_owned(),
            format!("{me}@10.1.1.1:22")
        ]
    );
    assert_eq!(t.jump[0].identities, [PathBuf::from("/keys/bastion")]);
    assert_eq!(
        t.route(),
        format!("cfguser@web1.internal:2200 via jumper@192.0.2.1:2022 then {me}@10.1.1.1:22")
    );
    let origins = t.origins.describe();
    assert!(origins.contains("User from "), "{origins}");
    assert!(origins.contains("ssh_config line 3"), "{origins}");
}

#[test]
fn shipdeck_wins_host_then_environment_then_ssh_section() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = load(
        dir.path(),
        FLEET,
        "user = \"top\"\njump = \"none\"\n\
         [environments.prod]\n\
         hosts = [\"web1\", { address = \"web2\", user = \"mine\", port = 22, jump = \"b1:2\" }, \"other@web3:2\"]\n\
         [environments.prod.ssh]\nuser = \"envuser\"\nport = 2300\n\
         [environments.stage]\nhosts = [\"web4\"]\n",
    )
    .unwrap();
    let web1 = target(&cfg, "prod", 0);
    assert_eq!(web1.to_string(), "envuser@web1.internal:2300");
    assert!(web1.jump.is_empty(), "[ssh] jump = none beats ProxyJump");
    let origins = web1.origins.describe();
    assert!(
        origins.contains("User from shipdeck.toml [environments.prod.ssh]"),
        "{origins}"
    );
    assert!(origins.contains("HostName from "), "{origins}");
    let web2 = target(&cfg, "prod", 1);
    assert_eq!(web2.to_string(), "mine@web2.internal:22");
    assert_eq!(web2.jump.len(), 1);
    assert_eq!(web2.jump[0].port, 2);
    // %r follows the user shipdeck settled on.
    assert!(
        web2.identities[0].ends_with("keys/mine-web2"),
        "{:?}",
        web2.identities
    );
    assert_eq!(target(&cfg, "prod", 2).to_string(), "other@web3.internal:2");
    assert_eq!(
        target(&cfg, "stage", 0).to_string(),
        "top@web4.internal:2200"
    );
}

#[test]
fn proxy_command_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(
        dir.path(),
        "Host other\n  ProxyCommand nc other 22\nHost web*\n  ProxyCommand ssh -W %h:%p b\n",
        "[environments.prod]\nhosts = [\"web1\"]\n",
    )
    .unwrap_err();
    assert!(err.file.ends_with("ssh_config"), "{err}");
    assert_eq!(err.position, Some((4, 1)), "{err}");
    assert!(
        err.message.contains("use ProxyJump") || err.message.contains("with ProxyJump"),
        "{err}"
    );
    // ProxyCommand none is no proxy at all.
    let ok = load(
        dir.path(),
        "Host *\n  ProxyCommand none\n",
        "[environments.prod]\nhosts = [\"web1\"]\n",
    );
    assert!(ok.is_ok());
}

#[test]
fn bad_values_point_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(
        dir.path(),
        "Host *\n  Port http\n",
        "[environments.prod]\nhosts = [\"web1\"]\n",
    )
    .unwrap_err();
    assert_eq!(err.position, Some((2, 1)), "{err}");
    let err = load(
        dir.path(),
        "Host *\n  IdentityFile ~/.ssh/%C\n",
        "[environments.prod]\nhosts = [\"web1\"]\n",
    )
    .unwrap_err();
    assert!(err.message.contains("%C"), "{err}");
    let err = load(
        dir.path(),
        "",
        "jump = \"bad host!\"\n[environments.prod]\nhosts = [\"web1\"]\n",
    )
    .unwrap_err();
    assert!(err.file.ends_with("shipdeck.toml"), "{err}");
    assert!(err.message.contains("jump"), "{err}");
}

#[test]
fn local_hosts_never_read_ssh_config() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = load(
        dir.path(),
        "Host *\n  Port not-a-port\n",
        "[environments.dev]\nhosts = [\"local:/tmp/x\"]\n",
    );
    assert!(cfg.is_ok(), "{:?}", cfg.err());
}

/// The cases OpenSSH's own regression test for `Include` checks with
/// `ssh -G`: an `Include` inside a block applies only when the block does,
/// and the included files' own `Host`/`Match` lines end at their end.
#[test]
fn include_inside_blocks_as_openssh_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let inc = format!("{}/i.*", d.display());
    let main = format!(
        "Match host a\n Hostname aa\n\
         Match host b\n Hostname bb\n Include {inc}\n\
         Match host c\n Include {inc}\n Hostname cc\n\
         Match host m\n Include {inc}\n\
         Host d\n Hostname dd\n\
         Host e\n Hostname ee\n Include {inc}\n\
         Host f\n Include {inc}\n Hostname ff\n\
         Host n\n Include {inc}\n"
    );
    let path = write(d, "main", &main);
    write(d, "i.0", "Match host xxxxxx\n");
    // i.1 names each host three times over, i.2 four times, then `Match all`.
    let blocks = |times: usize| -> String {
        ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|h| {
                let kw = if "abc".contains(h) {
                    "Match host"
                } else {
                    "Host"
                };
                format!("{kw} {h}\n Hostname {}\n", h.repeat(times))
            })
            .collect()
    };
    write(d, "i.1", &blocks(3));
    write(d, "i.2", &(blocks(4) + "Match all\n Hostname xxxx\n"));
    let config = SshConfig::load(&path, d, true).unwrap();
    for (host, expected) in [
        ("a", Some("aa")),
        ("b", Some("bb")),
        ("c", Some("ccc")),
        ("d", Some("dd")),
        ("e", Some("ee")),
        ("f", Some("fff")),
        ("m", Some("xxxx")),
        ("n", Some("xxxx")),
        ("x", None),
    ] {
        assert_eq!(
            value(&lookup(&config, host), "hostname").as_deref(),
            expected,
            "host {host}"
        );
    }
}
