use super::*;

fn rules(window: &str, zone: &str) -> WindowRules {
    WindowRules::parse(Some(window), zone, &[] as &[&str]).unwrap()
}

/// An instant given as wall-clock time in `zone`.
fn at(zone: &str, s: &str) -> SystemTime {
    let dt: DateTime = s.parse().unwrap();
    let tz = TimeZoneDatabase::bundled().get(zone).unwrap();
    SystemTime::from(tz.to_ambiguous_zoned(dt).compatible().unwrap().timestamp())
}

fn utc(s: &str) -> SystemTime {
    SystemTime::from(s.parse::<Timestamp>().unwrap())
}

fn refusal(r: &WindowRules, now: SystemTime) -> String {
    check(r, now).unwrap_err().to_string()
}

#[test]
fn weekday_hours_open_and_close() {
    let r = rules("Mon-Fri 09:00-16:00", "Europe/Berlin");
    // 2026-06-01 is a Monday.
    assert!(check(&r, at("Europe/Berlin", "2026-06-01T09:00")).is_ok());
    assert!(check(&r, at("Europe/Berlin", "2026-06-05T15:59:59")).is_ok());
    assert!(check(&r, at("Europe/Berlin", "2026-06-05T16:00")).is_err());
    assert!(check(&r, at("Europe/Berlin", "2026-06-01T08:59")).is_err());
    assert_eq!(
        refusal(&r, at("Europe/Berlin", "2026-06-06T10:12")),
        "outside the deploy window Mon-Fri 09:00-16:00 Europe/Berlin: it is Sat 10:12; next opens Mon 09:00"
    );
    assert_eq!(
        refusal(&r, at("Europe/Berlin", "2026-06-02T17:30")),
        "outside the deploy window Mon-Fri 09:00-16:00 Europe/Berlin: it is Tue 17:30; next opens Wed 09:00"
    );
}

#[test]
fn refusal_carries_the_instants() {
    let r = rules("Mon-Fri 09:00-16:00", "Europe/Berlin");
    let Err(Refusal::OutsideWindow {
        now,
        next_open,
        window,
    }) = check(&r, at("Europe/Berlin", "2026-06-06T10:12"))
    else {
        panic!("expected a closed window");
    };
    assert_eq!(window, "Mon-Fri 09:00-16:00");
    assert_eq!(now.weekday(), Weekday::Saturday);
    let next = next_open.unwrap();
    assert_eq!(
        next.timestamp(),
        "2026-06-08T07:00:00Z".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn day_lists_ranges_and_several_windows() {
    let r = rules("Mon,Wed 10:00-12:00; Sat-Sun 08:00-09:00", "UTC");
    assert!(check(&r, utc("2026-06-01T10:30:00Z")).is_ok()); // Mon
    assert!(check(&r, utc("2026-06-02T10:30:00Z")).is_err()); // Tue
    assert!(check(&r, utc("2026-06-03T11:59:00Z")).is_ok()); // Wed
    assert!(check(&r, utc("2026-06-06T08:30:00Z")).is_ok()); // Sat
    assert!(check(&r, utc("2026-06-07T08:30:00Z")).is_ok()); // Sun
    assert!(check(&r, utc("2026-06-07T09:00:00Z")).is_err());
    assert_eq!(
        refusal(&r, utc("2026-06-03T12:00:00Z")),
        "outside the deploy window Mon,Wed 10:00-12:00; Sat-Sun 08:00-09:00 UTC: it is Wed 12:00; next opens Sat 08:00"
    );
    // Wrapping range and mixed list, in any case, with full names.
    let r = rules("fri-MON,Wednesday 00:00-24:00", "UTC");
    for (day, open) in [
        ("2026-06-01", true),
        ("2026-06-02", false),
        ("2026-06-03", true),
        ("2026-06-04", false),
        ("2026-06-05", true),
        ("2026-06-06", true),
        ("2026-06-07", true),
    ] {
        let t = utc(&format!("{day}T23:59:00Z"));
        assert_eq!(check(&r, t).is_ok(), open, "{day}");
    }
    // No days: every day.
    let r = rules("10:00-11:00", "UTC");
    assert!(check(&r, utc("2026-06-07T10:00:00Z")).is_ok());
    assert!(check(&r, utc("2026-06-07T11:00:00Z")).is_err());
}

#[test]
fn a_range_across_midnight_belongs_to_the_day_it_starts() {
    let r = rules("Fri 22:00-02:00", "UTC");
    // 2026-06-05 is a Friday.
    assert!(check(&r, utc("2026-06-05T21:59:00Z")).is_err());
    assert!(check(&r, utc("2026-06-05T22:00:00Z")).is_ok());
    assert!(check(&r, utc("2026-06-06T01:59:00Z")).is_ok()); // Sat early
    assert!(check(&r, utc("2026-06-06T02:00:00Z")).is_err());
    assert!(check(&r, utc("2026-06-06T23:00:00Z")).is_err()); // Sat night
    assert!(check(&r, utc("2026-06-05T01:00:00Z")).is_err()); // Fri early: Thu's
    assert_eq!(
        refusal(&r, utc("2026-06-06T02:00:00Z")),
        "outside the deploy window Fri 22:00-02:00 UTC: it is Sat 02:00; next opens Fri 22:00"
    );
    // Ending at midnight is the same as 24:00.
    let r = rules("Sun 22:00-00:00", "UTC");
    assert!(check(&r, utc("2026-06-07T23:59:00Z")).is_ok());
    assert!(check(&r, utc("2026-06-08T00:00:00Z")).is_err());
}

#[test]
fn windows_follow_wall_clock_across_dst() {
    let r = rules("Mon-Fri 09:00-16:00", "Europe/Berlin");
    // Europe/Berlin goes from CET (+01) to CEST (+02) on Sun 2026-03-29.
    // Fri 2026-03-27, CET: 09:00 local is 08:00 UTC.
    assert!(check(&r, utc("2026-03-27T07:59:00Z")).is_err());
    assert!(check(&r, utc("2026-03-27T08:00:00Z")).is_ok());
    assert!(check(&r, utc("2026-03-27T14:59:00Z")).is_ok());
    assert!(check(&r, utc("2026-03-27T15:00:00Z")).is_err());
    // Mon 2026-03-30, CEST: 09:00 local is 07:00 UTC.
    assert!(check(&r, utc("2026-03-30T06:59:00Z")).is_err());
    assert!(check(&r, utc("2026-03-30T07:00:00Z")).is_ok());
    assert!(check(&r, utc("2026-03-30T13:59:00Z")).is_ok());
    assert!(check(&r, utc("2026-03-30T14:00:00Z")).is_err());
    // Closed over the change; the next opening is in summer time.
    let Err(Refusal::OutsideWindow { now, next_open, .. }) = check(&r, utc("2026-03-28T12:00:00Z"))
    else {
        panic!("expected a closed window");
    };
    assert_eq!(now.strftime("%a %H:%M %z").to_string(), "Sat 13:00 +0100");
    let next = next_open.unwrap();
    assert_eq!(
        next.timestamp(),
        "2026-03-30T07:00:00Z".parse::<Timestamp>().unwrap()
    );
    assert_eq!(next.strftime("%a %H:%M %z").to_string(), "Mon 09:00 +0200");
    // Back to CET on Sun 2026-10-25.
    assert!(check(&r, utc("2026-10-26T07:59:00Z")).is_err());
    assert!(check(&r, utc("2026-10-26T08:00:00Z")).is_ok());
}

#[test]
fn a_night_window_over_the_dst_change() {
    // Sat 22:00 to Sun 04:00 spans the fall-back hour: seven real hours.
    let r = rules("Sat 22:00-04:00", "Europe/Berlin");
    assert!(check(&r, utc("2026-10-24T19:59:00Z")).is_err());
    assert!(check(&r, utc("2026-10-24T20:00:00Z")).is_ok()); // 22:00 CEST
    assert!(check(&r, utc("2026-10-25T00:30:00Z")).is_ok()); // 02:30 CEST
    assert!(check(&r, utc("2026-10-25T01:30:00Z")).is_ok()); // 02:30 CET
    assert!(check(&r, utc("2026-10-25T02:59:00Z")).is_ok()); // 03:59 CET
    assert!(check(&r, utc("2026-10-25T03:00:00Z")).is_err()); // 04:00 CET
    // A window starting in the spring-forward gap opens when the clock
    // jumps: 02:00 does not exist on 2026-03-29, 03:00 CEST does.
    let r = rules("Sun 02:00-04:00", "Europe/Berlin");
    let Err(Refusal::OutsideWindow { next_open, .. }) = check(&r, utc("2026-03-28T12:00:00Z"))
    else {
        panic!("expected a closed window");
    };
    assert_eq!(
        next_open.unwrap().timestamp(),
        "2026-03-29T01:00:00Z".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn freezes_refuse_and_say_until_when() {
    let r = WindowRules::parse(
        Some("Mon-Fri 09:00-16:00"),
        "Europe/Berlin",
        &["holidays: 2026-12-20 00:00 .. 2027-01-04 00:00"],
    )
    .unwrap();
    assert_eq!(
        refusal(&r, at("Europe/Berlin", "2026-12-22T10:00")),
        "inside the freeze \"holidays\" until 2027-01-04 00:00 Europe/Berlin; deploys reopen Mon 2027-01-04 09:00"
    );
    assert!(check(&r, at("Europe/Berlin", "2026-12-18T10:00")).is_ok());
    assert!(check(&r, at("Europe/Berlin", "2027-01-04T09:00")).is_ok());
    // The freeze is in Berlin time: 2026-12-19 23:00 UTC is already inside.
    assert!(matches!(
        check(&r, utc("2026-12-19T23:00:00Z")),
        Err(Refusal::Frozen { .. })
    ));
    // Outside a window but before a freeze: the next opening skips it.
    let e = refusal(&r, at("Europe/Berlin", "2026-12-19T10:00"));
    assert_eq!(
        e,
        "outside the deploy window Mon-Fri 09:00-16:00 Europe/Berlin: it is Sat 10:00; next opens Mon 2027-01-04 09:00"
    );
}

#[test]
fn freezes_without_windows_and_without_names() {
    let r = WindowRules::parse(
        None,
        "UTC",
        &[
            "2026-11-27 18:00 .. 2026-11-30 08:00",
            "launch: 2026-11-30 .. 2026-11-30 12:00",
        ],
    )
    .unwrap();
    assert!(check(&r, utc("2026-11-27T17:59:00Z")).is_ok());
    // Back-to-back freezes: it opens when the last one ends.
    let e = refusal(&r, utc("2026-11-28T00:00:00Z"));
    assert_eq!(
        e,
        "inside the freeze from 2026-11-27 18:00 until 2026-11-30 08:00 UTC; deploys reopen Mon 12:00"
    );
    assert_eq!(
        refusal(&r, utc("2026-11-30T09:00:00Z")),
        "inside the freeze \"launch\" until 2026-11-30 12:00 UTC"
    );
    assert!(check(&r, utc("2026-11-30T12:00:00Z")).is_ok());
}

#[test]
fn unrestricted_rules_always_allow() {
    let r = WindowRules::parse(None, "UTC", &[] as &[&str]).unwrap();
    assert!(r.is_unrestricted());
    assert!(check(&r, utc("2026-06-06T03:00:00Z")).is_ok());
    assert_eq!(r.to_string(), "deploys at any time");
    let r = WindowRules::parse(
        Some("Mon 09:00-10:00"),
        "europe/berlin",
        &["a: 2026-01-01 .. 2026-01-02"],
    )
    .unwrap();
    assert_eq!(r.zone_name(), "Europe/Berlin");
    assert_eq!(
        r.to_string(),
        "deploys Mon 09:00-10:00 Europe/Berlin, 1 freeze"
    );
}

#[test]
fn bad_windows_say_what_is_wrong() {
    let err = |w: &str| WindowRules::parse(Some(w), "UTC", &[] as &[&str]).unwrap_err();
    let e = err("Mon-Fry 09:00-16:00");
    assert_eq!(
        e,
        "deploy window \"Mon-Fry 09:00-16:00\": \"Fry\" is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"
    );
    assert!(err("Mon-Fri 9-16").contains("\"9\" is not a time like \"09:00\""));
    assert!(err("Mon-Fri 09:00").contains("not a time range"));
    assert!(err("Mon-Fri 09:00-25:00").contains("\"25:00\" is not a time"));
    assert!(err("Mon-Fri 09:60-10:00").contains("\"09:60\""));
    assert!(err("Mon-Fri 24:00-10:00").contains("cannot start at 24:00"));
    assert!(err("Mon-Fri 09:00-09:00").contains("00:00-24:00"));
    assert!(err("Mon, Wed 09:00-10:00").contains("no spaces"));
    assert!(err("Mon 09:00-10:00;").contains("stray ';'"));
    assert!(err("").contains("empty"));
    let e = err("Mon 09:00-10:00; Tue 9:00-1000");
    assert!(
        e.starts_with("deploy window \"Tue 9:00-1000\": \"1000\""),
        "{e}"
    );
    // One-digit hours are fine.
    assert!(WindowRules::parse(Some("Mon 9:00-17:30"), "UTC", &[] as &[&str]).is_ok());
}

#[test]
fn bad_zones_and_freezes_say_what_is_wrong() {
    let e =
        WindowRules::parse(Some("Mon 09:00-10:00"), "Europe/Berln", &[] as &[&str]).unwrap_err();
    assert!(
        e.starts_with("time zone \"Europe/Berln\" is not known"),
        "{e}"
    );
    let err = |f: &str| WindowRules::parse(None, "UTC", &[f]).unwrap_err();
    assert!(err("2026-12-20").contains("expected [NAME:] START .. END"));
    assert!(err("x: 2026-12-20 .. 2026-12-01").contains("ends before it starts"));
    assert!(err("2026-12-20 .. 2026-12-20").contains("ends before it starts"));
    assert!(err("2026-02-30 .. 2026-03-02").contains("no such date"));
    assert!(err("20-12-2026 .. 2027-01-04").contains("is not a date like"));
    assert!(err("2026-12-20 25:00 .. 2027-01-04").contains("\"25:00\" is not a time"));
    assert!(err("2026-12-20 .. 2026-12-21 24:00").contains("not 24:00"));
    assert!(err(": 2026-12-20 .. 2027-01-04").contains("name before ':' is empty"));
    let e = err("holidays 2026-12-20 .. 2027-01-04");
    assert!(
        e.starts_with("freeze \"holidays 2026-12-20 .. 2027-01-04\": "),
        "{e}"
    );
}

#[test]
fn a_freeze_beyond_the_search_says_so() {
    let r = WindowRules::parse(
        Some("Mon-Fri 09:00-16:00"),
        "UTC",
        &["moratorium: 2026-01-01 .. 2030-01-01"],
    )
    .unwrap();
    assert_eq!(
        refusal(&r, utc("2026-06-01T10:00:00Z")),
        "inside the freeze \"moratorium\" until 2030-01-01 00:00 UTC; deploys do not reopen in the next 400 days"
    );
}

#[test]
fn freeze_bounds_in_dst_gaps_move_forward() {
    // 02:30 does not exist in Berlin on 2026-03-29: the freeze starts at 03:30 CEST.
    let r = WindowRules::parse(
        None,
        "Europe/Berlin",
        &["2026-03-29 02:30 .. 2026-03-29 05:00"],
    )
    .unwrap();
    let f = &r.freezes()[0];
    assert_eq!(f.from, "2026-03-29T01:30:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(
        f.until,
        "2026-03-29T03:00:00Z".parse::<Timestamp>().unwrap()
    );
}
