use super::*;

fn account(user: &str, host: &str, password: &str) -> Account {
    Account {
        user: user.into(),
        host: HostPattern::parse(host),
        plugin: NATIVE_PLUGIN.into(),
        password: StoredPassword::of(password),
        locked: false,
        expired: false,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn host_patterns() {
    assert!(HostPattern::parse("%").matches(ip("10.0.0.1")));
    assert!(HostPattern::parse("10.0.%").matches(ip("10.0.3.4")));
    assert!(!HostPattern::parse("10.0.%").matches(ip("10.1.3.4")));
    assert!(HostPattern::parse("10.0.0._").matches(ip("10.0.0.7")));
    assert!(!HostPattern::parse("10.0.0._").matches(ip("10.0.0.17")));
    assert!(HostPattern::parse("127.0.0.1").matches(ip("::ffff:127.0.0.1")));
    assert!(HostPattern::parse("localhost").matches(ip("127.0.0.1")));
    assert!(!HostPattern::parse("localhost").matches(ip("127.0.0.2")));
    assert!(HostPattern::parse("192.168.1.0/255.255.255.0").matches(ip("192.168.1.77")));
    assert!(!HostPattern::parse("192.168.1.0/255.255.255.0").matches(ip("192.168.2.77")));
    assert!(!HostPattern::parse("db.example.com").matches(ip("10.0.0.1")));
}

#[test]
fn most_specific_account_wins() {
    let t = AccountTable::new(vec![
        account("app", "%", "wild"),
        account("app", "127.0.0.1", "exact"),
    ]);
    let seed = auth::new_seed();
    let exact = BackendSecret::from_password("exact").scramble(&seed);
    let wild = BackendSecret::from_password("wild").scramble(&seed);
    assert!(matches!(
        t.authenticate(b"app", ip("127.0.0.1"), &exact, &seed, false),
        AuthOutcome::Accepted(_)
    ));
    assert_eq!(
        t.authenticate(b"app", ip("127.0.0.1"), &wild, &seed, false),
        AuthOutcome::Denied
    );
    assert!(matches!(
        t.authenticate(b"app", ip("10.0.0.1"), &wild, &seed, false),
        AuthOutcome::Accepted(_)
    ));
}

#[test]
fn unknown_host_user_and_password() {
    let t = AccountTable::new(vec![
        account("app", "127.0.0.1", "app"),
        account("nopw", "127.0.0.1", ""),
    ]);
    let seed = auth::new_seed();
    let good = BackendSecret::from_password("app").scramble(&seed);
    assert_eq!(
        t.authenticate(b"app", ip("127.0.0.2"), &good, &seed, false),
        AuthOutcome::HostNotAllowed
    );
    assert_eq!(
        t.authenticate(b"bob", ip("127.0.0.1"), &good, &seed, false),
        AuthOutcome::Denied
    );
    assert_eq!(
        t.authenticate(b"app", ip("127.0.0.1"), &[], &seed, false),
        AuthOutcome::Denied
    );
    assert_eq!(
        t.authenticate(b"nopw", ip("127.0.0.1"), &[], &seed, false),
        AuthOutcome::Accepted(BackendSecret::Empty)
    );
}

#[test]
fn other_plugins_are_denied() {
    let mut a = account("root", "127.0.0.1", "");
    a.plugin = "unix_socket".into();
    let t = AccountTable::new(vec![a]);
    assert_eq!(
        t.authenticate(b"root", ip("127.0.0.1"), &[], &[0; 20], false),
        AuthOutcome::Denied
    );
}

#[test]
fn unreadable_hashes_admit_nobody() {
    let seed = auth::new_seed();
    let guess = BackendSecret::from_password("x").scramble(&seed);
    for hash in [
        "invalid",
        "*THISISNOTAVALIDPASSWORDTHATCANBEUSEDHERE",
        "6f8c114b58f2ce9e",
    ] {
        let mut a = account("u", "127.0.0.1", "");
        a.password = StoredPassword::parse(hash);
        assert_eq!(a.password, StoredPassword::Unusable, "{hash}");
        let t = AccountTable::new(vec![a]);
        for response in [&[][..], &guess[..]] {
            assert_eq!(
                t.authenticate(b"u", ip("127.0.0.1"), response, &seed, false),
                AuthOutcome::Denied,
                "{hash}"
            );
        }
    }
}

#[test]
fn locked_and_expired_accounts_are_refused_after_the_password() {
    let seed = auth::new_seed();
    let right = BackendSecret::from_password("pw").scramble(&seed);
    let wrong = BackendSecret::from_password("no").scramble(&seed);
    let mut locked = account("locked", "127.0.0.1", "pw");
    locked.locked = true;
    let mut expired = account("expired", "127.0.0.1", "pw");
    expired.expired = true;
    let t = AccountTable::new(vec![locked, expired]);
    let check = |user: &[u8], response: &[u8], can_change| {
        t.authenticate(user, ip("127.0.0.1"), response, &seed, can_change)
    };
    assert_eq!(check(b"locked", &wrong, false), AuthOutcome::Denied);
    assert_eq!(check(b"locked", &right, true), AuthOutcome::Locked);
    assert_eq!(check(b"expired", &wrong, false), AuthOutcome::Denied);
    assert_eq!(check(b"expired", &right, false), AuthOutcome::Expired);
    assert!(matches!(
        check(b"expired", &right, true),
        AuthOutcome::Accepted(_)
    ));
}

#[test]
fn localhost_is_loopback_only_where_names_are_resolved() {
    assert!(HostPattern::parse_for("localhost", true).matches(ip("127.0.0.1")));
    assert!(!HostPattern::parse_for("localhost", false).matches(ip("127.0.0.1")));
    assert!(!HostPattern::parse_for("LOCALHOST", false).matches(ip("::1")));
}
