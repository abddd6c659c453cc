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
use switchyard_protocol::conn::{connect_admin, query};
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

/// One row of the account table.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: String,
    pub host: HostPattern,
    pub plugin: String,
    /// `SHA1(SHA1(password))`; `None` when the account has no password.
    pub stage2: Option<[u8; 20]>,
}

/// The outcome of a login attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted(BackendSecret),
    /// No account may connect from this host at all (error 1130).
    HostNotAllowed,
    /// Unknown user, wrong password, or an account the proxy cannot check (error 1045).
    Denied,
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

    /// Checks a native scramble `response` to `seed`.
    pub fn authenticate(
        &self,
        user: &[u8],
        ip: IpAddr,
        response: &[u8],
        seed: &[u8],
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
        match auth::verify_native(response, seed, account.stage2.as_ref()) {
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
        let lower = text.to_ascii_lowercase();
        let kind = if lower == "localhost" {
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

const ACCOUNT_QUERY: &str = "SELECT User, Host, plugin, authentication_string, Password \
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
        let rows = tokio::time::timeout(
            s.connect_timeout,
            query(&mut io, info.capabilities, ACCOUNT_QUERY),
        )
        .await
        .map_err(|_| "timed out reading mysql.user".to_string())?
        .map_err(|e| e.to_string())?;
        io.shutdown().await;
        let text = |v: &Option<bytes::Bytes>| {
            v.as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default()
                .into_owned()
        };
        let accounts = rows
            .iter()
            .filter(|r| r.len() == 5)
            .map(|r| {
                let plugin = text(&r[2]);
                let auth_string = text(&r[3]);
                let password = text(&r[4]);
                let hash = if auth_string.is_empty() {
                    password
                } else {
                    auth_string
                };
                let stage2 = auth::parse_native_hash(&hash);
                if stage2.is_none()
                    && !hash.is_empty()
                    && (plugin.is_empty() || plugin == NATIVE_PLUGIN)
                {
                    debug!(user = %text(&r[0]), "account has an unreadable password hash");
                }
                Account {
                    user: text(&r[0]),
                    host: HostPattern::parse(&text(&r[1])),
                    plugin,
                    stage2,
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
            stage2: auth::stage2_of(password),
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
            t.authenticate(b"app", ip("127.0.0.1"), &exact, &seed),
            AuthOutcome::Accepted(_)
        ));
        assert_eq!(
            t.authenticate(b"app", ip("127.0.0.1"), &wild, &seed),
            AuthOutcome::Denied
        );
        assert!(matches!(
            t.authenticate(b"app", ip("10.0.0.1"), &wild, &seed),
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
            t.authenticate(b"app", ip("127.0.0.2"), &good, &seed),
            AuthOutcome::HostNotAllowed
        );
        assert_eq!(
            t.authenticate(b"bob", ip("127.0.0.1"), &good, &seed),
            AuthOutcome::Denied
        );
        assert_eq!(
            t.authenticate(b"app", ip("127.0.0.1"), &[], &seed),
            AuthOutcome::Denied
        );
        assert_eq!(
            t.authenticate(b"nopw", ip("127.0.0.1"), &[], &seed),
            AuthOutcome::Accepted(BackendSecret::Empty)
        );
    }

    #[test]
    fn other_plugins_are_denied() {
        let mut a = account("root", "127.0.0.1", "");
        a.plugin = "unix_socket".into();
        let t = AccountTable::new(vec![a]);
        assert_eq!(
            t.authenticate(b"root", ip("127.0.0.1"), &[], &[0; 20]),
            AuthOutcome::Denied
        );
    }
}
