use super::*;

fn c(sql: &str) -> Classification {
    classify(sql.as_bytes())
}

fn has(sql: &str, f: Flags) -> bool {
    c(sql).flags.contains(f)
}

#[test]
fn reads_and_writes() {
    assert_eq!(c("SELECT * FROM t WHERE id=1").kind, StatementKind::Select);
    assert_eq!(c("SELECT * FROM t WHERE id=1").flags, Flags::READ);
    assert_eq!(c("insert into t values (1)").flags, Flags::WRITE);
    assert_eq!(c("UPDATE t SET a=1").kind, StatementKind::Update);
    assert_eq!(c("DELETE FROM t").kind, StatementKind::Delete);
    assert_eq!(c("REPLACE INTO t VALUES (1)").kind, StatementKind::Replace);
    assert_eq!(c("INSERT INTO t SELECT * FROM u").flags, Flags::WRITE);
    assert_eq!(c("(SELECT 1) UNION (SELECT 2)").flags, Flags::READ);
    assert_eq!(c("FROBNICATE everything").flags, Flags::WRITE);
    assert_eq!(c("").kind, StatementKind::Other);
    assert_eq!(c("").flags, Flags::empty());
    assert_eq!(c("").statements, 0);
}

#[test]
fn with_statements() {
    let r = c("WITH a AS (SELECT 1), b AS (SELECT * FROM a) SELECT * FROM b");
    assert_eq!((r.kind, r.flags), (StatementKind::Select, Flags::READ));
    let r = c("WITH RECURSIVE x (n) AS (SELECT 1 UNION SELECT n+1 FROM x) UPDATE t SET a=1");
    assert_eq!((r.kind, r.flags), (StatementKind::Update, Flags::WRITE));
    let r = c("with d as (select id from t) delete from u where id in (select id from d)");
    assert_eq!((r.kind, r.flags), (StatementKind::Delete, Flags::WRITE));
}

#[test]
fn comments_and_strings_do_not_fool_it() {
    assert_eq!(
        c("/* UPDATE */ SELECT 'DELETE FROM t; DROP TABLE x' -- ; INSERT").flags,
        Flags::READ
    );
    assert_eq!(
        c("SELECT `update`, \"insert;\" FROM `delete`").flags,
        Flags::READ
    );
    assert_eq!(c("# comment\n\t  SeLeCt\n1").flags, Flags::READ);
    assert_eq!(c("SELECT 'GET_LOCK(1)', 'x FOR UPDATE'").flags, Flags::READ);
    assert_eq!(
        c("/*!40101 UPDATE t SET a=1 */").kind,
        StatementKind::Update
    );
    assert_eq!(
        c("SELECT 1 /*!50000 FOR UPDATE */").flags,
        Flags::READ | Flags::FOR_UPDATE
    );
}

#[test]
fn session_commands() {
    assert_eq!(c("SET NAMES utf8mb4").flags, Flags::SESSION_CMD);
    assert_eq!(c("USE shop").flags, Flags::SESSION_CMD);
    assert_eq!(c("PREPARE s FROM 'SELECT 1'").flags, Flags::SESSION_CMD);
    assert_eq!(c("DEALLOCATE PREPARE s").kind, StatementKind::Deallocate);
    assert_eq!(c("DROP PREPARE s").kind, StatementKind::Deallocate);
    assert_eq!(c("DROP PREPARE s").flags, Flags::SESSION_CMD);
    assert_eq!(
        c("SET @a = 1").flags,
        Flags::SESSION_CMD | Flags::ASSIGNS_USER_VAR
    );
    assert_eq!(
        c("SET @a = @b + 1").flags,
        Flags::SESSION_CMD | Flags::ASSIGNS_USER_VAR | Flags::USES_USER_VAR
    );
    assert_eq!(
        c("SET GLOBAL max_connections=10").flags,
        Flags::SESSION_CMD | Flags::GLOBAL_VAR
    );
    assert_eq!(
        c("SET PASSWORD = PASSWORD('x')").flags,
        Flags::WRITE | Flags::IMPLICIT_COMMIT
    );
}

#[test]
fn autocommit() {
    let off = Flags::SESSION_CMD | Flags::AUTOCOMMIT_OFF;
    let on = Flags::SESSION_CMD | Flags::AUTOCOMMIT_ON;
    for s in [
        "SET autocommit=0",
        "set AUTOCOMMIT = OFF",
        "SET @@autocommit=0",
        "SET @@session.autocommit = false",
        "SET SESSION autocommit='OFF'",
        "SET LOCAL autocommit := 0",
        "SET `autocommit`=0",
    ] {
        assert_eq!(c(s).flags, off, "{s}");
    }
    for s in [
        "SET autocommit=1",
        "SET autocommit=ON",
        "SET @@autocommit=true",
        "SET autocommit=DEFAULT",
    ] {
        assert_eq!(c(s).flags, on, "{s}");
    }
    assert_eq!(
        c("SET names utf8, autocommit=0, @x=1").flags,
        off | Flags::ASSIGNS_USER_VAR
    );
    assert_eq!(c("SET sql_mode='', autocommit = 1").flags, on);
    // Not a plain constant: no claim.
    assert_eq!(
        c("SET autocommit=@x").flags,
        Flags::SESSION_CMD | Flags::USES_USER_VAR
    );
    assert_eq!(c("SET autocommit=1+0").flags, Flags::SESSION_CMD);
    // Global: does not change this session.
    assert_eq!(
        c("SET GLOBAL autocommit=0").flags,
        Flags::SESSION_CMD | Flags::GLOBAL_VAR
    );
    assert_eq!(
        c("SET @@global.autocommit=0").flags,
        Flags::SESSION_CMD | Flags::GLOBAL_VAR
    );
    // A user variable called autocommit is not the system variable.
    assert_eq!(
        c("SET @autocommit=0").flags,
        Flags::SESSION_CMD | Flags::ASSIGNS_USER_VAR
    );
}

#[test]
fn transactions() {
    let begin = Flags::BEGIN_TRX | Flags::IMPLICIT_COMMIT;
    assert_eq!(c("BEGIN").flags, begin);
    assert_eq!(c("begin work").flags, begin);
    assert_eq!(c("START TRANSACTION").flags, begin);
    assert_eq!(
        c("START TRANSACTION READ ONLY").flags,
        begin | Flags::BEGIN_READ_ONLY_TRX
    );
    assert_eq!(
        c("start transaction with consistent snapshot, read only").flags,
        begin | Flags::BEGIN_READ_ONLY_TRX
    );
    assert_eq!(c("START TRANSACTION READ WRITE").flags, begin);
    assert_eq!(c("COMMIT").flags, Flags::COMMIT);
    assert_eq!(
        c("COMMIT WORK AND CHAIN").flags,
        Flags::COMMIT | Flags::BEGIN_TRX
    );
    assert_eq!(c("COMMIT AND NO CHAIN").flags, Flags::COMMIT);
    assert_eq!(c("ROLLBACK").flags, Flags::ROLLBACK);
    assert_eq!(c("ROLLBACK TO SAVEPOINT a").kind, StatementKind::Savepoint);
    assert_eq!(c("ROLLBACK WORK TO a").flags, Flags::empty());
    assert_eq!(c("BEGIN NOT ATOMIC SELECT 1; SELECT 2; END").statements, 1);
    assert_eq!(c("XA START 'x'").flags, Flags::XA | Flags::WRITE);
}

#[test]
fn user_variables() {
    assert_eq!(c("SELECT @a").flags, Flags::READ | Flags::USES_USER_VAR);
    assert_eq!(
        c("SELECT @a := 1").flags,
        Flags::READ | Flags::ASSIGNS_USER_VAR
    );
    assert_eq!(
        c("SELECT a INTO @x FROM t").flags,
        Flags::READ | Flags::ASSIGNS_USER_VAR
    );
    assert_eq!(
        c("SELECT a, b FROM t INTO @x, @y").flags,
        Flags::READ | Flags::ASSIGNS_USER_VAR
    );
    assert_eq!(
        c("SELECT a FROM t INTO @x WHERE @y").flags.bits(),
        (Flags::READ | Flags::ASSIGNS_USER_VAR | Flags::USES_USER_VAR).bits()
    );
    assert_eq!(c("SELECT * FROM t WHERE u = 'a'@'b'").flags, Flags::READ);
    assert_eq!(
        c("SELECT 1 INTO OUTFILE '/tmp/x'").flags,
        Flags::READ | Flags::WRITE | Flags::INTO_OUTFILE
    );
}

#[test]
fn functions_and_sysvars() {
    assert!(has("SELECT GET_LOCK('a', 10)", Flags::LOCK_FUNCTION));
    assert!(has("select release_all_locks()", Flags::LOCK_FUNCTION));
    assert!(has("DO RELEASE_LOCK('a')", Flags::LOCK_FUNCTION));
    assert!(!has("SELECT get_lock FROM t", Flags::LOCK_FUNCTION));
    assert!(has("SELECT LAST_INSERT_ID()", Flags::LAST_INSERT_ID));
    assert!(has("SELECT @@identity", Flags::LAST_INSERT_ID));
    assert!(has(
        "SELECT @@session.last_insert_id",
        Flags::LAST_INSERT_ID
    ));
    assert!(has("SELECT NEXTVAL(s)", Flags::SEQUENCE));
    assert!(has("SELECT NEXT VALUE FOR s", Flags::SEQUENCE));
    assert!(has("SELECT PREVIOUS VALUE FOR s", Flags::SEQUENCE));
    assert!(has("SELECT FOUND_ROWS()", Flags::FOUND_ROWS));
    assert!(has("SHOW WARNINGS", Flags::SHOW_WARNINGS));
    assert!(has("SHOW COUNT(*) ERRORS", Flags::SHOW_WARNINGS));
    assert!(!has("SHOW TABLES", Flags::SHOW_WARNINGS));
}

#[test]
fn locking_reads() {
    for s in [
        "SELECT * FROM t FOR UPDATE",
        "SELECT * FROM t FOR SHARE",
        "SELECT * FROM t LOCK IN SHARE MODE",
        "SELECT 1 FROM DUAL FOR UPDATE SKIP LOCKED",
        "select * from t for update nowait",
    ] {
        assert_eq!(c(s).flags, Flags::READ | Flags::FOR_UPDATE, "{s}");
    }
    assert_eq!(c("SELECT * FROM t FOR SYSTEM_TIME ALL").flags, Flags::READ);
}

#[test]
fn temp_tables() {
    let r = c("CREATE TEMPORARY TABLE IF NOT EXISTS `my``t` (a INT)");
    assert_eq!(r.flags, Flags::WRITE | Flags::CREATE_TEMP_TABLE);
    assert_eq!(
        r.tables,
        [TableName {
            schema: None,
            name: b"my`t".to_vec()
        }]
    );
    let r = c("create or replace temporary table db.t1 as select 1");
    assert_eq!(
        r.tables,
        [TableName {
            schema: Some(b"db".to_vec()),
            name: b"t1".to_vec()
        }]
    );
    let r = c("DROP TEMPORARY TABLE IF EXISTS a, `b`, s.c");
    assert_eq!(r.flags, Flags::WRITE | Flags::DROP_TABLE);
    let names: Vec<_> = r.tables.iter().map(|t| t.name.clone()).collect();
    assert_eq!(names, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let r = c("DROP TABLE t");
    assert_eq!(
        r.flags,
        Flags::WRITE | Flags::DROP_TABLE | Flags::IMPLICIT_COMMIT
    );
    assert_eq!(
        c("CREATE TABLE t (a int)").flags,
        Flags::WRITE | Flags::IMPLICIT_COMMIT
    );
    assert!(c("CREATE TABLE t (a int)").tables.is_empty());
    assert!(c("DROP VIEW v").tables.is_empty());
}

#[test]
fn multi_statements() {
    let r = c("SELECT 1; UPDATE t SET a=1;");
    assert_eq!(r.kind, StatementKind::Select);
    assert_eq!(r.statements, 2);
    assert_eq!(r.flags, Flags::READ | Flags::WRITE | Flags::MULTI_STATEMENT);
    assert_eq!(c("SELECT 1;").statements, 1);
    assert_eq!(c(";;SELECT 1;;").flags, Flags::READ);
    assert_eq!(c("SELECT ';'; ").statements, 1);
    let r = c("CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END");
    assert_eq!((r.statements, r.kind), (1, StatementKind::Create));
}

#[test]
fn set_statement_for() {
    let r = c("SET STATEMENT max_statement_time=1 FOR SELECT 1");
    assert_eq!((r.kind, r.flags), (StatementKind::Select, Flags::READ));
    let r = c("SET STATEMENT a=1, b=(SELECT 2) FOR UPDATE t SET x=1");
    assert_eq!((r.kind, r.flags), (StatementKind::Update, Flags::WRITE));
    // Deep nesting is bounded.
    let deep = "SET STATEMENT a=1 FOR ".repeat(1000) + "SELECT 1";
    assert_eq!(c(&deep).flags, Flags::WRITE);
}

#[test]
fn flags_debug_and_names() {
    assert_eq!(
        format!("{:?}", Flags::READ | Flags::FOR_UPDATE),
        "Flags(READ | FOR_UPDATE)"
    );
    assert_eq!(Flags::from_name("SESSION_CMD"), Some(Flags::SESSION_CMD));
    assert_eq!(Flags::from_name("NOPE"), None);
}

#[test]
fn never_panics_on_arbitrary_bytes() {
    let alphabet: &[&[u8]] = &[
        b"SELECT",
        b"SET",
        b"@a",
        b"@@",
        b"'",
        b"`",
        b"(",
        b")",
        b";",
        b"/*!",
        b"*/",
        b"FOR",
        b"UPDATE",
        b"CREATE",
        b"TEMPORARY",
        b"TABLE",
        b"DROP",
        b".",
        b",",
        b"=",
        b"\xff",
        b" ",
    ];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut buf = Vec::new();
    for _ in 0..20_000 {
        buf.clear();
        for _ in 0..(x % 12) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.extend_from_slice(alphabet[(x % alphabet.len() as u64) as usize]);
        }
        x = x.wrapping_add(1);
        let _ = classify(&buf);
    }
}

#[test]
fn large_statements_are_linear() {
    // A 2 MB multi-row INSERT and a 1 MB comment: one pass each, no quadratic lookahead.
    let mut sql = b"INSERT INTO t VALUES ".to_vec();
    for i in 0..100_000 {
        sql.extend_from_slice(format!("({i}, 'row {i} it''s', @v),").as_bytes());
    }
    sql.extend_from_slice(b"(0, '', @v)");
    let start = std::time::Instant::now();
    let r = classify(&sql);
    assert_eq!(r.flags, Flags::WRITE | Flags::USES_USER_VAR);
    let big_comment = format!("SELECT @a /*{}*/, @b", "x".repeat(1 << 20));
    assert_eq!(c(&big_comment).flags, Flags::READ | Flags::USES_USER_VAR);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn sql_mode_no_backslash_escapes() {
    let sql = br"SELECT 'a\'; UPDATE t SET x = 1; -- '";
    assert_eq!(classify(sql).flags, Flags::READ);
    let mode = SqlMode {
        no_backslash_escapes: true,
    };
    assert_eq!(
        classify_with_mode(sql, mode).flags,
        Flags::READ | Flags::WRITE | Flags::MULTI_STATEMENT
    );
}
