//! Client authentication against the cluster's own accounts, as MaxScale does it: the service
//! user reads `mysql.user`, the proxy checks `mysql_native_password` scrambles itself and keeps
//! the secret that lets it log in to backends as the client. The table is cached and reloaded,
//! at most once per `users_refresh_interval`, when a login fails.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use switchyard_protocol::auth::{self, BackendSecret, NATIVE_PLUGIN};
use switchyard_protocol::conn::connect_admin;
use switchyard_protocol::text_query::query;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

/// One row of the account table.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub host: HostPattern,
    pub plugin: String,
    pub password: StoredPassword,
    /// `ACCOUNT LOCK`: the server refuses it even with the right password.
    pub locked: bool,
    /// `PASSWORD EXPIRE`, or older than its password lifetime, on servers with
    /// `disconnect_on_expired_password`: clients that cannot change it are refused. (Without
    /// it, the backends let everyone in to change it, in their sandbox mode.)
    pub expired: bool,
}

/// What an account's password hash says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredPassword {
    /// No password: the empty response logs in.
    Empty,
    /// `SHA1(SHA1(password))`.
    Native([u8; 20]),
    /// A hash no password matches, or one the proxy cannot read (`invalid`,
    /// `*THISISNOTAVALIDPASSWORD…`, a pre-4.1 hash): nothing logs in, as on the server.
    Unusable,
}

impl StoredPassword {
    /// Reads a `mysql_native_password` hash column.
    pub fn parse(hash: &str) -> Self {
        if hash.is_empty() {
            return StoredPassword::Empty;
        }
        auth::parse_native_hash(hash).map_or(StoredPassword::Unusable, StoredPassword::Native)
    }

    pub fn of(password: &str) -> Self {
        auth::stage2_of(password).map_or(StoredPassword::Empty, StoredPassword::Native)
    }
}

/// The outcome of a login attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted(BackendSecret),
    /// No account may connect from this host at all (error 1130).
    HostNotAllowed,
    /// Unknown user, wrong password, or an account the proxy cannot check (error 1045).
    Denied,
    /// The right password for a locked account (error 4151).
    Locked,
    /// The right password, but it has expired and the client cannot change it (error 1862).
    Expired,
}

/// The accounts of a cluster, most specific host first, as the server orders them.
#[derive(Debug, Default)]
pub struct AccountTable {
    accounts: Vec<Account>,
}

impl AccountTable {
    pub fn new(mut accounts: Vec<Account>) -> Self {
        // Stable sort: exact hosts before patterns, later wildcards before earlier ones, named
        // users before the anonymous one.
        accounts.sort_by_key(|a| (std::cmp::Reverse(a.host.specificity()), a.user.is_empty()));
        AccountTable { accounts }
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// True if some account may connect from `ip`.
    pub fn host_allowed(&self, ip: IpAddr) -> bool {
        self.accounts.iter().any(|a| a.host.matches(ip))
    }

    /// The account the server would pick for `user` connecting from `ip`.
    pub fn find(&self, user: &[u8], ip: IpAddr) -> Option<&Account> {
        self.accounts
            .iter()
            .find(|a| a.host.matches(ip) && (a.user.as_bytes() == user || a.user.is_empty()))
    }

    /// Checks a native scramble `response` to `seed`; `can_change_expired`: the client
    /// declared CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS.
    pub fn authenticate(
        &self,
        user: &[u8],
        ip: IpAddr,
        response: &[u8],
        seed: &[u8],
        can_change_expired: bool,
    ) -> AuthOutcome {
        if !self.host_allowed(ip) {
            return AuthOutcome::HostNotAllowed;
        }
        let Some(account) = self.find(user, ip) else {
            return AuthOutcome::Denied;
        };
        if account.plugin != NATIVE_PLUGIN && !account.plugin.is_empty() {
            warn!(
                user = %account.user, host = %account.host.text, plugin = %account.plugin,
                "the account uses an authentication plugin that Switchyard cannot check; \
                 give it a mysql_native_password password to log in through the proxy"
            );
            return AuthOutcome::Denied;
        }
        let stage2 = match &account.password {
            StoredPassword::Empty => None,
            StoredPassword::Native(stage2) => Some(stage2),
            StoredPassword::Unusable => return AuthOutcome::Denied,
        };
        // As the server, the password first: a locked or expired account says so only to
        // whoever knows its password.
        match auth::verify_native(response, seed, stage2) {
            Some(_) if account.locked => AuthOutcome::Locked,
            Some(_) if account.expired && !can_change_expired => AuthOutcome::Expired,
            Some(secret) => AuthOutcome::Accepted(secret),
            None => AuthOutcome::Denied,
        }
    }
}

/// A `Host` column value: an address, a pattern with `%` and `_`, a netmask or `localhost`.
#[derive(Debug, Clone)]
pub struct HostPattern {
    pub text: String,
    kind: HostKind,
}

#[derive(Debug, Clone)]
enum HostKind {
    Exact(IpAddr),
    Wildcard,
    Netmask(u32, u32),
    Localhost,
    /// A host name: the proxy does not resolve names, like a server with skip-name-resolve.
    Name,
}

impl HostPattern {
    pub fn parse(text: &str) -> Self {
        Self::parse_for(text, true)
    }

    /// As the servers read it: `localhost` is the loopback address only when they resolve
    /// names; with `skip_name_resolve` it matches socket connections, never a TCP client.
    pub fn parse_for(text: &str, names_resolved: bool) -> Self {
        let lower = text.to_ascii_lowercase();
        let kind = if lower == "localhost" && !names_resolved {
            HostKind::Name
        } else if lower == "localhost" {
            HostKind::Localhost
        } else if let Ok(ip) = lower.parse::<IpAddr>() {
            HostKind::Exact(ip)
        } else if let Some((net, mask)) = lower.split_once('/') {
            match (
                net.parse::<std::net::Ipv4Addr>(),
                mask.parse::<std::net::Ipv4Addr>(),
            ) {
                (Ok(n), Ok(m)) => HostKind::Netmask(u32::from(n), u32::from(m)),
                _ => HostKind::Name,
            }
        } else if lower.is_empty() || lower.contains(['%', '_']) {
            HostKind::Wildcard
        } else {
            HostKind::Name
        };
        HostPattern { text: lower, kind }
    }

    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match &self.kind {
            HostKind::Exact(a) => a.to_canonical() == ip,
            // What the loopback address resolves to; other 127/8 addresses have other names.
            HostKind::Localhost => {
                ip == IpAddr::from([127, 0, 0, 1])
                    || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            }
            HostKind::Netmask(net, mask) => match ip {
                IpAddr::V4(v4) => u32::from(v4) & mask == *net,
                IpAddr::V6(_) => false,
            },
            HostKind::Wildcard => {
                self.text.is_empty() || like(self.text.as_bytes(), ip.to_string().as_bytes())
            }
            HostKind::Name => false,
        }
    }

    /// Higher is more specific.
    fn specificity(&self) -> usize {
        match &self.kind {
            HostKind::Exact(_) | HostKind::Localhost | HostKind::Name => usize::MAX,
            HostKind::Netmask(..) => usize::MAX - 1,
            HostKind::Wildcard => self.text.find(['%', '_']).unwrap_or(0),
        }
    }
}

/// SQL `LIKE` matching with `%` and `_` (no escapes: host names have none).
fn like(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'%', rest)) => (0..=text.len()).any(|i| like(rest, &text[i..])),
        Some((b'_', rest)) => !text.is_empty() && like(rest, &text[1..]),
        Some((c, rest)) => {
            text.first().is_some_and(|t| t.eq_ignore_ascii_case(c)) && like(rest, &text[1..])
        }
    }
}

/// Where and how a service loads its accounts.
#[derive(Debug, Clone)]
pub struct AccountSource {
    pub user: String,
    pub password: String,
    pub connect_timeout: Duration,
    pub refresh_interval: Duration,
}

/// The cached account table of one service, reloaded on demand.
#[derive(Debug)]
pub struct Accounts {
    table: ArcSwap<AccountTable>,
    source: AccountSource,
    last_load: Mutex<Option<Instant>>,
    server_version: ArcSwap<bytes::Bytes>,
    extended_capabilities: AtomicU32,
}

const DEFAULT_VERSION: &str = "10.11.0-MariaDB";

/// MariaDB 10.4 and later keep what the proxy must check in `mysql.global_priv`: the
/// `mysql.user` view shows neither `ACCOUNT LOCK` nor password lifetimes. Columns: user, host,
/// plugin, hash, locked, expired (where the server disconnects such clients),
/// skip_name_resolve. A row without a plugin gets one the proxy
/// refuses, never the native default: an account it cannot read is no account it admits.
/// (JSON_VALUE reads a JSON `true` as '1'.)
const PRIV_QUERY: &str = "SELECT User, Host, plugin, hash, locked, \
        @@disconnect_on_expired_password AND (last_changed = 0 OR (lifetime > 0 \
            AND last_changed > 0 AND last_changed + lifetime * 86400 < UNIX_TIMESTAMP())), \
        @@skip_name_resolve \
    FROM (SELECT User, Host, \
            IFNULL(JSON_VALUE(Priv, '$.plugin'), '(none)') AS plugin, \
            IFNULL(JSON_VALUE(Priv, '$.authentication_string'), '') AS hash, \
            IFNULL(JSON_VALUE(Priv, '$.account_locked'), '') IN ('1', 'true') AS locked, \
            CAST(IFNULL(JSON_VALUE(Priv, '$.password_last_changed'), -1) AS SIGNED) \
                AS last_changed, \
            IF(CAST(IFNULL(JSON_VALUE(Priv, '$.password_lifetime'), -1) AS SIGNED) = -1, \
               @@global.default_password_lifetime, \
               CAST(JSON_VALUE(Priv, '$.password_lifetime') AS SIGNED)) AS lifetime \
          FROM mysql.global_priv \
          WHERE IFNULL(JSON_VALUE(Priv, '$.is_role'), '') NOT IN ('1', 'true')) AS a";

/// Older servers: the account table itself, which has no locks or lifetimes.
const USER_QUERY: &str = "SELECT User, Host, plugin, \
        IF(authentication_string = '', Password, authentication_string), 'N', 'N', \
        @@skip_name_resolve \
    FROM mysql.user WHERE is_role <> 'Y'";

impl Accounts {
    pub fn new(source: AccountSource) -> Self {
        Accounts {
            table: ArcSwap::default(),
            source,
            last_load: Mutex::new(None),
            server_version: ArcSwap::from_pointee(bytes::Bytes::from_static(
                DEFAULT_VERSION.as_bytes(),
            )),
            extended_capabilities: Default::default(),
        }
    }

    pub fn table(&self) -> Arc<AccountTable> {
        self.table.load_full()
    }

    /// The version string of the backends, as the proxy announces it to clients.
    pub fn server_version(&self) -> Arc<bytes::Bytes> {
        self.server_version.load_full()
    }

    /// MariaDB's extended capabilities that the proxy may offer clients: those of
    /// [`PROXY_EXTENDED_CAPABILITIES`](switchyard_protocol::caps::PROXY_EXTENDED_CAPABILITIES)
    /// that the backend the table was last loaded from offers (none before the first load).
    pub fn extended_capabilities(&self) -> u32 {
        self.extended_capabilities.load(Ordering::Relaxed)
    }

    /// Reloads the table from the first of `addresses` that answers, unless it was loaded less
    /// than `refresh_interval` ago. Returns true if a new table was loaded.
    pub async fn reload(&self, addresses: &[String]) -> bool {
        let mut last = self.last_load.lock().await;
        if last.is_some_and(|t| t.elapsed() < self.source.refresh_interval) {
            return false;
        }
        *last = Some(Instant::now());
        for address in addresses {
            match self.load_from(address).await {
                Ok(table) => {
                    info!(server = %address, accounts = table.len(), "loaded the account table");
                    self.table.store(Arc::new(table));
                    return true;
                }
                Err(e) => warn!(
                    server = %address, user = %self.source.user, error = %e,
                    "could not load the account table; trying the next server"
                ),
            }
        }
        false
    }

    async fn load_from(&self, address: &str) -> Result<AccountTable, String> {
        let s = &self.source;
        let (mut io, info) = connect_admin(address, &s.user, &s.password, s.connect_timeout)
            .await
            .map_err(|e| e.to_string())?;
        self.server_version
            .store(Arc::new(info.server_version.clone()));
        self.extended_capabilities
            .store(info.extended_capabilities, Ordering::Relaxed);
        let timeout = s.connect_timeout;
        let set = match tokio::time::timeout(timeout, query(&mut io, info.capabilities, PRIV_QUERY))
            .await
        {
            Ok(Ok(set)) => set,
            Err(_) => return Err("timed out reading mysql.global_priv".into()),
            Ok(Err(e)) => {
                warn!(
                    server = %address, user = %s.user, error = %e,
                    "could not read mysql.global_priv (a server before MariaDB 10.4, or a \
                     service user without SELECT on it): locked accounts and expired \
                     passwords are left for the backends to refuse"
                );
                tokio::time::timeout(timeout, query(&mut io, info.capabilities, USER_QUERY))
                    .await
                    .map_err(|_| "timed out reading mysql.user".to_string())?
                    .map_err(|e| e.to_string())?
            }
        };
        io.shutdown().await;
        let text = |v: &Option<bytes::Bytes>| {
            v.as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned()
        };
        let yes = |v: &Option<bytes::Bytes>| matches!(v.as_deref(), Some(b"1" | b"Y"));
        let accounts = set
            .rows
            .iter()
            .filter(|r| r.len() == 7)
            .map(|r| {
                let plugin = text(&r[2]);
                let password = StoredPassword::parse(&text(&r[3]));
                if password == StoredPassword::Unusable
                    && (plugin.is_empty() || plugin == NATIVE_PLUGIN)
                {
                    debug!(user = %text(&r[0]), "account has a password hash no password matches");
                }
                Account {
                    user: text(&r[0]),
                    host: HostPattern::parse_for(&text(&r[1]), !yes(&r[6])),
                    plugin,
                    password,
                    locked: yes(&r[4]),
                    expired: yes(&r[5]),
                }
            })
            .collect();
        Ok(AccountTable::new(accounts))
    }
}

#[cfg(test)]
mod tests {
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
}
