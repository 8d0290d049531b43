//! Building the demo sandbox: config, artifact, three releases, and v1
//! running on every host (on production-eu's blue slots, behind their
//! fronts), all in one folder.

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, ConfigError};
use crate::engine::bluegreen::slot_port;
use crate::engine::{ChangeReport, Engine, EngineError, EventSink};
use crate::host::{HookEnv, Layout, run_command};
use crate::model::{BlueGreen, Host, Operator, ReleaseId, Slot, Strategy, Target};
use crate::store::{Store, StoreError};
use crate::transport::local::LocalTransport;

use super::process;

const CONFIG_TEMPLATE: &str = include_str!("../../assets/demo/shipdeck.toml");
/// The artifact's `bin/`: the hooks the config names, and the sample-app
/// launcher they share.
const SCRIPTS: &[(&str, &str)] = &[
    ("restart", include_str!("../../assets/demo/restart.sh")),
    ("switch", include_str!("../../assets/demo/switch.sh")),
    ("stop", include_str!("../../assets/demo/stop.sh")),
    (
        "sample-app",
        include_str!("../../assets/demo/sample-app.sh"),
    ),
];
const README_TEMPLATE: &str = include_str!("../../assets/demo/README.md");

pub(super) const HOSTS_DIR: &str = "hosts";
const CONFIG_FILE: &str = "shipdeck.toml";
/// Marks a folder as a demo sandbox: `demo --dir` may rebuild it, and the
/// console knows to stop its apps on exit.
const MARKER: &str = ".shipdeck/demo";
/// What `create` writes at the top of a sandbox; a rebuild removes only these.
const OWN_ENTRIES: &[&str] = &[HOSTS_DIR, "dist", ".shipdeck", CONFIG_FILE, "README.md"];
/// The restart hook returns once the app listens; this is for a stuck one.
const START_HOOK_TIMEOUT: Duration = Duration::from_secs(30);
/// The config's `@PORT_n@` placeholders: one port for each of the four
/// hosts of staging and production, and three (front, blue, green) for each
/// of production-eu's two.
const PORTS: usize = 10;

/// The releases the demo builds: id, notes, bad.
const RELEASES: &[(&str, &str, bool)] = &[
    ("v1", "first release", false),
    ("v2", "faster order listing", false),
    (
        "v3",
        "new order reservation worker (the demo's bad release: healthy, but a third of its requests fail)",
        true,
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{0} is not empty and is not a shipdeck demo; pick a new folder (or leave out --dir)")]
    NotEmpty(String),
    #[error("cannot find free ports on 127.0.0.1: {0}")]
    Ports(io::Error),
    #[error("the demo's config does not load (a bug in shipdeck): {0}")]
    Config(#[from] ConfigError),
    #[error("building release {id}: {source}")]
    Build {
        id: String,
        #[source]
        source: StoreError,
    },
    #[error("{what}: {why}")]
    Setup { what: String, why: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DemoError + '_ {
    move |source| DemoError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Whether `config_dir` holds a sandbox `shipdeck demo` built (so its apps
/// are the demo's to stop).
pub fn is_sandbox(config_dir: &Path) -> bool {
    config_dir.join(MARKER).is_file()
}

/// Build the sandbox in `dir` (a new temporary folder when `None`, kept
/// after exit), start v1 on every host, and return the path of its
/// `shipdeck.toml`; this process is noted as showing it (see `stop_apps`).
/// A `dir` that holds an earlier demo is rebuilt; any other non-empty
/// folder is refused. Prints where the sandbox is on stderr.
pub fn create(dir: Option<&Path>) -> Result<PathBuf, DemoError> {
    let started = Instant::now();
    let root = prepare(dir)?;
    eprintln!(
        "shipdeck demo: building a sandbox in {}: 6 hosts, a sample app, releases v1, v2, v3…",
        root.display()
    );
    let built = build(&root);
    if built.is_err() {
        // Whatever had started must not run on in a half-built sandbox.
        super::stop_all_apps(&root);
    }
    let (config, ports) = built?;
    // This process opens the console on it: its apps run until it is done.
    let _ = super::consoles::note(&root, std::process::id());
    eprintln!(
        "shipdeck demo: ready in {:.1}s in {}\n  v1 runs on staging (1 host), production (3 hosts, canary) and production-eu (2 hosts, blue/green: v1 on blue); v2 and v3 (healthy, bad in traffic) are built\n  apps and fronts on 127.0.0.1 ports {}\n  re-open it: shipdeck --config {}",
        started.elapsed().as_secs_f64(),
        root.display(),
        ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        config.display()
    );
    Ok(config)
}

/// The sandbox folder, absolute, existing and empty of anything of ours.
fn prepare(dir: Option<&Path>) -> Result<PathBuf, DemoError> {
    let Some(dir) = dir else {
        let tmp = tempfile::Builder::new()
            .prefix("shipdeck-demo-")
            .tempdir()
            .map_err(io_err(&std::env::temp_dir()))?;
        // The operator re-opens the sandbox after the console exits.
        return Ok(tmp.keep());
    };
    let root = std::path::absolute(dir).map_err(io_err(dir))?;
    if root.exists() {
        if is_sandbox(&root) {
            super::stop_all_apps(&root);
            for entry in OWN_ENTRIES {
                let p = root.join(entry);
                match fs::symlink_metadata(&p) {
                    Ok(m) if m.is_dir() => fs::remove_dir_all(&p).map_err(io_err(&p))?,
                    Ok(_) => fs::remove_file(&p).map_err(io_err(&p))?,
                    Err(_) => {}
                }
            }
        } else if fs::read_dir(&root).map_err(io_err(&root))?.next().is_some() {
            return Err(DemoError::NotEmpty(root.display().to_string()));
        }
    }
    fs::create_dir_all(&root).map_err(io_err(&root))?;
    Ok(root)
}

fn build(root: &Path) -> Result<(PathBuf, Vec<u16>), DemoError> {
    let ports = free_ports(PORTS)?;
    let config_path = root.join(CONFIG_FILE);
    let fill = |template: &str| {
        let mut s = template
            .replace("@CONFIG@", &config_path.display().to_string())
            .replace("@DIR@", &root.display().to_string());
        for (i, port) in ports.iter().enumerate() {
            s = s.replace(&format!("@PORT_{i}@"), &port.to_string());
        }
        s
    };
    write(&config_path, &fill(CONFIG_TEMPLATE))?;
    write(&root.join("README.md"), &fill(README_TEMPLATE))?;
    write(&root.join(MARKER), "built by `shipdeck demo`\n")?;
    write_artifact(&root.join("dist"))?;

    let config = Arc::new(Config::load(&config_path)?);
    let store = Store::new(&config);
    let bad_marker = root.join("dist/bad");
    for (id, notes, bad) in RELEASES {
        let release = ReleaseId::parse(id).map_err(|e| DemoError::Setup {
            what: format!("release id {id}"),
            why: e.to_string(),
        })?;
        if *bad {
            write(
                &bad_marker,
                "This release is the demo's bad one: its /healthz passes, but about a third of its requests fail with a 500 and the rest are slower.\n",
            )?;
        }
        let built = store.build(Some(release), Some((*notes).to_owned()));
        if *bad {
            // dist/ stays a healthy artifact for the operator's own builds.
            fs::remove_file(&bad_marker).map_err(io_err(&bad_marker))?;
        }
        built.map_err(|source| DemoError::Build {
            id: (*id).to_owned(),
            source,
        })?;
    }
    start_v1(&config)?;
    Ok((config_path, ports))
}

/// `dist/`: the artifact each release is packed from.
fn write_artifact(dist: &Path) -> Result<(), DemoError> {
    let bin = dist.join("bin");
    fs::create_dir_all(&bin).map_err(io_err(&bin))?;
    // The build command stamps the release id in; this is what a build
    // without one would carry.
    write(&dist.join("VERSION"), "dev\n")?;
    for (name, script) in SCRIPTS {
        let path = bin.join(name);
        write(&path, script)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io_err(&path))?;
    }
    // The sample app is this very binary: the restart hook finds it here.
    let exe = std::env::current_exe().map_err(|e| DemoError::Setup {
        what: "finding the shipdeck binary".into(),
        why: e.to_string(),
    })?;
    write(&bin.join("shipdeck-path"), &format!("{}\n", exe.display()))?;
    Ok(())
}

fn write(path: &Path, content: &str) -> Result<(), DemoError> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    fs::write(path, content).map_err(io_err(path))
}

/// Ports the kernel says are free now. All are held open until every one is
/// picked, so the hosts get different ones.
fn free_ports(n: usize) -> Result<Vec<u16>, DemoError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(DemoError::Ports)?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(DemoError::Ports)
}

/// Deploy v1 to staging and promote it to every other environment through
/// the engine, as an operator would, so history shows how v1 got there.
/// Every host at once: the canary is for the operator's changes, not for
/// setting up. Blue/green stays: v1 starts on each host's blue slot and the
/// switch starts the front pointing at it, so the next change goes to green
/// and its rollback is a switch back.
fn start_v1(config: &Config) -> Result<(), DemoError> {
    let mut setup = config.clone();
    for env in &mut setup.environments {
        if !matches!(env.strategy, Strategy::BlueGreen(_)) {
            env.strategy = Strategy::AllAtOnce;
        }
    }
    let engine =
        Engine::new(Arc::new(setup), false, EventSink::discard()).with_operator(Operator {
            who: "shipdeck-demo".into(),
            machine: gethostname::gethostname().to_string_lossy().into_owned(),
        });
    let v1 = ReleaseId::parse("v1").map_err(|e| DemoError::Setup {
        what: "release id v1".into(),
        why: e.to_string(),
    })?;
    // Say what takes the time, so the terminal is not blank for seconds.
    eprintln!("shipdeck demo: deploying v1 to staging…");
    succeeded("deploying v1 to staging", engine.deploy("staging", &v1))?;
    for env in config.environment_names() {
        if env != "staging" {
            eprintln!("shipdeck demo: promoting v1 to {env}…");
            succeeded(&format!("promoting v1 to {env}"), engine.promote(&v1, env))?;
        }
    }
    Ok(())
}

fn succeeded(what: &str, result: Result<ChangeReport, EngineError>) -> Result<(), DemoError> {
    let setup_err = |why: String| DemoError::Setup {
        what: what.to_owned(),
        why,
    };
    let report = result.map_err(|e| setup_err(e.to_string()))?;
    if report.exit_code() == 0 {
        return Ok(());
    }
    let mut why = report.summary.clone();
    for h in report.hosts.iter().filter(|h| h.error.is_some()) {
        why.push_str(&format!(
            "\n  {}: {}",
            h.host,
            h.error.as_deref().unwrap_or_default()
        ));
    }
    Err(setup_err(why))
}

/// Start the app of every host of the sandbox at `config_dir` whose app is
/// not running, on the release its `current` names, through the config's
/// restart hook: for a sandbox re-opened after its console stopped its apps
/// (or after a reboot). On a blue/green host: the live slot's app and the
/// front (the restart hook on that slot, then its switch hook, which starts
/// the front and names the live slot again), and the old slot's app while a
/// change waits for `finish` (so a rollback can still switch back). Returns
/// how many apps were started (fronts not counted).
pub fn start_apps(config_dir: &Path) -> Result<usize, DemoError> {
    let config = Config::load(&config_dir.join(CONFIG_FILE))?;
    // The caller shows the sandbox (a console re-opened on it) until it
    // calls `stop_apps`.
    let _ = super::consoles::note(config_dir, std::process::id());
    let Some(restart) = &config.hooks.restart else {
        return Ok(0);
    };
    let mut started = 0;
    for env in &config.environments {
        for host in &env.hosts {
            let Target::Local { dir } = &host.target else {
                continue;
            };
            let start = Start {
                env: &env.name,
                host,
                dir,
                restart,
            };
            started += match &env.strategy {
                Strategy::BlueGreen(bg) => start.blue_green(bg)?,
                _ => start.plain()?,
            };
        }
    }
    Ok(started)
}

/// Starting one host's apps again.
struct Start<'a> {
    env: &'a str,
    host: &'a Host,
    dir: &'a Path,
    restart: &'a str,
}

impl Start<'_> {
    fn plain(&self) -> Result<usize, DemoError> {
        let layout = Layout::new(&self.host.deploy_to);
        let Some(release) = release_of(&self.dir.join("current")) else {
            return Ok(0);
        };
        if running(&self.dir.join(super::PID_FILE)) {
            return Ok(0);
        }
        let env = self.hook_env(&release, None);
        self.run("restart", self.restart, &layout.current(), &env)?;
        Ok(1)
    }

    fn blue_green(&self, bg: &BlueGreen) -> Result<usize, DemoError> {
        let layout = Layout::new(&self.host.deploy_to);
        let mut t = LocalTransport::new(&self.host.name, self.dir);
        let state = crate::host::probe(&mut t, &layout).map_err(|e| DemoError::Setup {
            what: format!("reading the state of {}", self.host.name),
            why: e.to_string(),
        })?;
        let Some(live) = state.live_slot else {
            return Ok(0);
        };
        let mut slots = vec![live];
        if let Some(p) = &state.pending_finish
            && p.old_release.is_some()
            && let Some(old) = p.old
        {
            slots.push(old);
        }
        let mut started = 0;
        for slot in slots {
            let Some(release) = release_of(Path::new(&layout.slot(slot))) else {
                continue;
            };
            let env = self.hook_env(&release, Some((slot, slot_port(bg, self.host, slot))));
            let front_down = slot == live && !running(&self.dir.join(super::FRONT_PID_FILE));
            if !running(&self.dir.join(super::slot_pid_file(slot))) {
                self.run(
                    &format!("restart on {slot}"),
                    self.restart,
                    &layout.slot(slot),
                    &env,
                )?;
                started += 1;
            }
            if front_down {
                self.run(
                    &format!("switch to {slot}"),
                    &bg.switch,
                    &layout.release(&release),
                    &env,
                )?;
            }
        }
        Ok(started)
    }

    fn hook_env(&self, release: &ReleaseId, slot: Option<(Slot, u16)>) -> HookEnv {
        HookEnv {
            env: self.env.to_owned(),
            host: self.host.name.clone(),
            release: release.clone(),
            previous: None,
            deploy_to: self.host.deploy_to.clone(),
            release_dir: Layout::new(&self.host.deploy_to).release(release),
            host_vars: self.host.vars.clone(),
            slot,
        }
    }

    /// Run a hook of this host (`what` names it in its errors).
    fn run(&self, what: &str, command: &str, dir: &str, env: &HookEnv) -> Result<(), DemoError> {
        let mut t = LocalTransport::new(&self.host.name, self.dir);
        run_command(&mut t, what, dir, command, env, START_HOOK_TIMEOUT).map_err(|e| {
            let slot = env
                .slot
                .map_or(String::new(), |(slot, _)| format!(" ({slot} slot)"));
            DemoError::Setup {
                what: format!("starting {} on {}{slot}", env.release, self.host.name),
                why: e.to_string(),
            }
        })?;
        Ok(())
    }
}

/// The release a link (`current`, `slots/blue`) points at.
fn release_of(link: &Path) -> Option<ReleaseId> {
    let target = fs::read_link(link).ok()?;
    ReleaseId::parse(&target.file_name()?.to_string_lossy()).ok()
}

/// Whether the pid file names a running sample app (or front).
fn running(pid_file: &Path) -> bool {
    process::read_pid(pid_file).is_some_and(process::is_sample_app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_template_loads_once_filled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        let mut s = CONFIG_TEMPLATE.replace("@CONFIG@", &path.display().to_string());
        for i in 0..PORTS {
            s = s.replace(&format!("@PORT_{i}@"), &(4000 + i).to_string());
        }
        assert!(!s.contains('@'), "a placeholder is left");
        let cfg = Config::parse(&path, &s).unwrap();
        assert_eq!(
            cfg.environment_names(),
            ["staging", "production", "production-eu"]
        );
        let prod = cfg.environment("production").unwrap();
        assert_eq!(prod.hosts.len(), 3);
        assert_eq!(prod.requires.as_deref(), Some("staging"));
        let Strategy::Canary { steps, thresholds } = &prod.strategy else {
            panic!("production is not a canary: {:?}", prod.strategy);
        };
        let steps: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(steps, ["1", "pause 20s", "50%", "pause", "100%"]);
        assert_eq!(thresholds.max_error_rate, Some(0.05));
        assert_eq!(thresholds.max_relative, Some(2.0));
        // v3's error share breaches both limits many times over; v2 has none.
        assert!(super::super::app::BAD_ERROR_SHARE > 4.0 * thresholds.max_error_rate.unwrap());
        // Staging is gated by health alone, which v3 passes.
        let staging = cfg.environment("staging").unwrap();
        assert!(
            matches!(staging.strategy, Strategy::AllAtOnce),
            "{:?}",
            staging.strategy
        );
        let ports: Vec<u16> = cfg
            .environments
            .iter()
            .flat_map(|e| &e.hosts)
            .map(|h| h.health_http.as_ref().unwrap().port)
            .collect();
        assert_eq!(ports, [4000, 4001, 4002, 4003, 4004, 4007]);
        assert_eq!(
            cfg.environments[0].hosts[0].metrics.as_ref().unwrap().path,
            "/metrics"
        );

        // production-eu: blue/green behind a front on each host's `port`,
        // which the console's health and metrics URLs use.
        let eu = cfg.environment("production-eu").unwrap();
        assert_eq!(eu.requires.as_deref(), Some("staging"));
        let Strategy::BlueGreen(bg) = &eu.strategy else {
            panic!("production-eu is not blue/green: {:?}", eu.strategy);
        };
        assert_eq!(bg.switch, "./bin/switch");
        assert_eq!(bg.stop.as_deref(), Some("./bin/stop"));
        assert_eq!(bg.finish_after, None);
        let names: Vec<&str> = eu.hosts.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["local:hosts/eu-1", "local:hosts/eu-2"]);
        let slots: Vec<[u16; 3]> = eu
            .hosts
            .iter()
            .map(|h| {
                assert_eq!(
                    h.metrics.as_ref().unwrap().port,
                    h.health_http.as_ref().unwrap().port
                );
                [
                    h.health_http.as_ref().unwrap().port,
                    slot_port(bg, h, Slot::Blue),
                    slot_port(bg, h, Slot::Green),
                ]
            })
            .collect();
        assert_eq!(slots, [[4004, 4005, 4006], [4007, 4008, 4009]]);
    }

    #[test]
    fn the_hooks_the_config_names_are_in_the_artifact() {
        let dir = tempfile::tempdir().unwrap();
        write_artifact(&dir.path().join("dist")).unwrap();
        for hook in ["./bin/restart", "./bin/switch", "./bin/stop"] {
            assert!(CONFIG_TEMPLATE.contains(&format!("\"{hook}\"")), "{hook}");
            let path = dir.path().join("dist").join(hook);
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111, "{hook} is not executable");
        }
        // What restart, stop and the sandbox's clean-up agree on.
        let restart = SCRIPTS[0].1;
        assert!(restart.contains("$shared/app-$SHIPDECK_SLOT.pid"));
        assert!(restart.contains("$shared/app.pid"));
        assert_eq!(
            super::super::slot_pid_file(Slot::Green),
            "shared/app-green.pid"
        );
        assert!(SCRIPTS[2].1.contains("shared/app-$SHIPDECK_SLOT.pid"));
        let switch = SCRIPTS[1].1;
        assert!(switch.contains(r#"upstream="$shared/upstream""#));
        assert!(switch.contains(r#""$shared/front.pid""#));
        assert_eq!(super::super::UPSTREAM_FILE, "shared/upstream");
        assert_eq!(super::super::FRONT_PID_FILE, "shared/front.pid");
    }

    #[test]
    fn free_ports_differ() {
        let ports = free_ports(PORTS).unwrap();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), PORTS);
    }

    #[test]
    fn a_folder_with_other_things_in_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let err = create(Some(dir.path())).unwrap_err();
        assert!(matches!(err, DemoError::NotEmpty(_)), "{err}");
        assert!(dir.path().join("notes.txt").exists());
    }
}
