//! Capability flags and server status flags.

pub const CLIENT_LONG_PASSWORD: u32 = 1;
/// MariaDB's name for bit 0: set by a server (or client) that speaks only MySQL's protocol.
/// Clear in a greeting, it tells the client that the greeting and the handshake response carry
/// four more bytes of MariaDB capabilities.
pub const CLIENT_MYSQL: u32 = CLIENT_LONG_PASSWORD;
pub const CLIENT_FOUND_ROWS: u32 = 1 << 1;
pub const CLIENT_LONG_FLAG: u32 = 1 << 2;
pub const CLIENT_CONNECT_WITH_DB: u32 = 1 << 3;
pub const CLIENT_NO_SCHEMA: u32 = 1 << 4;
pub const CLIENT_COMPRESS: u32 = 1 << 5;
pub const CLIENT_ODBC: u32 = 1 << 6;
pub const CLIENT_LOCAL_FILES: u32 = 1 << 7;
pub const CLIENT_IGNORE_SPACE: u32 = 1 << 8;
pub const CLIENT_PROTOCOL_41: u32 = 1 << 9;
pub const CLIENT_INTERACTIVE: u32 = 1 << 10;
pub const CLIENT_SSL: u32 = 1 << 11;
pub const CLIENT_IGNORE_SIGPIPE: u32 = 1 << 12;
pub const CLIENT_TRANSACTIONS: u32 = 1 << 13;
pub const CLIENT_RESERVED: u32 = 1 << 14;
pub const CLIENT_SECURE_CONNECTION: u32 = 1 << 15;
pub const CLIENT_MULTI_STATEMENTS: u32 = 1 << 16;
pub const CLIENT_MULTI_RESULTS: u32 = 1 << 17;
pub const CLIENT_PS_MULTI_RESULTS: u32 = 1 << 18;
pub const CLIENT_PLUGIN_AUTH: u32 = 1 << 19;
pub const CLIENT_CONNECT_ATTRS: u32 = 1 << 20;
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
pub const CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: u32 = 1 << 22;
pub const CLIENT_SESSION_TRACK: u32 = 1 << 23;
pub const CLIENT_DEPRECATE_EOF: u32 = 1 << 24;

/// What Switchyard offers clients. Compression and TLS are not offered. `CLIENT_MYSQL` is
/// cleared from the greeting when the backends offer MariaDB's extended capabilities (see
/// [`PROXY_EXTENDED_CAPABILITIES`]).
pub const PROXY_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_NO_SCHEMA
    | CLIENT_ODBC
    | CLIENT_LOCAL_FILES
    | CLIENT_IGNORE_SPACE
    | CLIENT_PROTOCOL_41
    | CLIENT_INTERACTIVE
    | CLIENT_IGNORE_SIGPIPE
    | CLIENT_TRANSACTIONS
    | CLIENT_RESERVED
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_STATEMENTS
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS
    | CLIENT_SESSION_TRACK
    | CLIENT_DEPRECATE_EOF;

// MariaDB's extended capabilities: the third word of the flags, exchanged only when neither
// side sets `CLIENT_MYSQL`.
/// Progress reports (ERR packets with code 0xFFFF) during long statements.
pub const MARIADB_CLIENT_PROGRESS: u32 = 1;
/// COM_STMT_BULK_EXECUTE.
pub const MARIADB_CLIENT_STMT_BULK_OPERATIONS: u32 = 1 << 2;
/// Column definitions carry the data type's name and format (`json`, `uuid`, `inet6`, ...).
pub const MARIADB_CLIENT_EXTENDED_METADATA: u32 = 1 << 3;
/// Binary result sets may omit column definitions the client already has.
pub const MARIADB_CLIENT_CACHE_METADATA: u32 = 1 << 4;

/// The extended capabilities Switchyard offers when the backends do: only extended metadata,
/// which adds one field to each column definition and changes no reply's shape. Progress
/// reports, bulk execution and cached metadata change what the reply tracker and the router
/// must follow, and are not offered.
pub const PROXY_EXTENDED_CAPABILITIES: u32 = MARIADB_CLIENT_EXTENDED_METADATA;

pub const SERVER_STATUS_IN_TRANS: u16 = 1;
pub const SERVER_STATUS_AUTOCOMMIT: u16 = 2;
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 8;
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x40;
pub const SERVER_STATUS_LAST_ROW_SENT: u16 = 0x80;
/// The server runs with `sql_mode` NO_BACKSLASH_ESCAPES (lexers must know: it changes where
/// a string ends).
pub const SERVER_STATUS_NO_BACKSLASH_ESCAPES: u16 = 0x200;
pub const SERVER_STATUS_IN_TRANS_READONLY: u16 = 0x2000;
pub const SERVER_SESSION_STATE_CHANGED: u16 = 0x4000;

/// utf8mb4_general_ci, the collation announced in the proxy's handshake.
pub const DEFAULT_COLLATION: u8 = 45;
