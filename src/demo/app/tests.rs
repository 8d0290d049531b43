use super::*;

#[test]
fn a_good_release_never_fails_and_a_bad_one_fails_a_third_of_the_time() {
    let mut rng = Rng::seeded(1);
    assert!((0..2000).all(|_| simulate(&mut rng, false).code == 200));
    let bad: Vec<Request> = (0..2000).map(|_| simulate(&mut rng, true)).collect();
    let failed: Vec<&Request> = bad.iter().filter(|r| r.code == 500).collect();
    // 600 expected; 5 standard deviations (~20 each) either side.
    assert!((500..700).contains(&failed.len()), "{}", failed.len());
    assert!(failed.iter().all(|r| {
        r.panic
            .as_deref()
            .is_some_and(|p| p.contains("panicked at"))
            && FAILING.iter().any(|f| f.0 == r.method)
    }));
    assert!(bad.iter().all(|r| (r.code == 500) == r.panic.is_some()));
}

#[test]
fn the_bad_release_is_slower() {
    let mut rng = Rng::seeded(3);
    let median = |bad: bool, rng: &mut Rng| {
        let mut st = Stats::default();
        for _ in 0..2000 {
            let r = simulate(rng, bad);
            st.record(r.code, r.took);
        }
        st.quantiles(&[0.5])[0]
    };
    let good = median(false, &mut rng);
    let bad = median(true, &mut rng);
    assert!(bad > 2.0 * good, "median {good}s against {bad}s");
}

#[test]
fn paths_are_filled_in() {
    let mut rng = Rng::seeded(7);
    for _ in 0..500 {
        let r = simulate(&mut rng, false);
        assert!(
            r.path.starts_with('/') && !r.path.contains('{'),
            "{}",
            r.path
        );
        assert!(r.took >= Duration::from_millis(1));
    }
}

#[test]
fn quantiles_come_from_the_recent_window() {
    let mut st = Stats::default();
    for ms in 1..=100 {
        st.record(200, Duration::from_millis(ms));
    }
    st.record(500, Duration::from_millis(1));
    assert_eq!((st.ok, st.failed), (100, 1));
    let q = st.quantiles(&[0.5, 0.99]);
    assert!((q[0] - 0.050).abs() < 0.002, "{q:?}");
    assert!((q[1] - 0.099).abs() < 0.002, "{q:?}");
    for _ in 0..LATENCY_WINDOW {
        st.record(200, Duration::from_millis(5));
    }
    assert_eq!(st.recent.len(), LATENCY_WINDOW);
    assert!((st.quantiles(&[0.99])[0] - 0.005).abs() < 1e-9);
}

/// A slot's app, its upstream file in `dir`, not yet checked.
fn slot_app(dir: &Path, slot: Slot, port: u16) -> App {
    App {
        release: "v2".into(),
        bad: false,
        port,
        slot: Some(SlotState {
            slot,
            upstream_file: dir.join("upstream"),
            live: Mutex::new(false),
        }),
        started_unix: 0.0,
        stats: Mutex::new(Stats::default()),
        life: Daemon::start("[green] shop v2".into(), Some(dir.join("app.log")), None).unwrap(),
    }
}

#[test]
fn a_slot_is_live_only_while_the_upstream_file_names_its_port() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upstream");
    let (live, why) = live_state(&file, 8082);
    assert!(!live && why.contains("no slot is live yet"), "{why}");
    std::fs::write(&file, "8081\n").unwrap();
    let (live, why) = live_state(&file, 8082);
    assert!(!live && why.contains("127.0.0.1:8081"), "{why}");
    std::fs::write(&file, "8082\n").unwrap();
    assert!(live_state(&file, 8082).0);
}

#[test]
fn an_idle_slot_says_so_and_its_summary_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("upstream"), "8081\n").unwrap();
    let app = slot_app(dir.path(), Slot::Green, 8082);
    app.stats().record(200, Duration::from_millis(5));
    app.check_live(true);
    assert!(!app.is_live());
    let page = metrics(&app);
    assert!(
        page.contains("app_info{release=\"v2\",mode=\"good\",slot=\"green\"} 1\n"),
        "{page}"
    );
    assert!(page.contains("\napp_live 0\n"), "{page}");
    // Counters keep what they counted; the quantiles have nothing recent.
    assert!(
        page.contains("http_requests_total{code=\"200\"} 1\n"),
        "{page}"
    );
    assert!(
        page.contains("http_request_duration_seconds{quantile=\"0.5\"} NaN\n"),
        "{page}"
    );
    assert_eq!(crate::model::prometheus::parse(&page).unreadable, []);

    // Switched to: live, and the log says so once, with the slot.
    std::fs::write(dir.path().join("upstream"), "8082\n").unwrap();
    app.check_live(false);
    app.check_live(false);
    assert!(app.is_live());
    assert!(metrics(&app).contains("\napp_live 1\n"));
    let log = std::fs::read_to_string(dir.path().join("app.log")).unwrap();
    let said: Vec<&str> = log.lines().filter(|l| l.contains("[green] ")).collect();
    assert_eq!(said.len(), 2, "{log}");
    assert!(
        said[0].contains(" INFO [green] idle: the front sends traffic to 127.0.0.1:8081"),
        "{log}"
    );
    assert!(
        said[1].contains(" INFO [green] live: the front sends traffic here"),
        "{log}"
    );
}

#[test]
fn labels_are_escaped() {
    assert_eq!(prometheus_label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
}
