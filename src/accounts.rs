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

mod host;
pub use host::HostPattern;

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
mod tests;
