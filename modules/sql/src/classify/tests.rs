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
        ..SqlMode::default()
    };
    assert_eq!(
        classify_with_mode(sql, mode).flags,
        Flags::READ | Flags::WRITE | Flags::MULTI_STATEMENT
    );
}

fn sf(sql: &str) -> bool {
    has(sql, Flags::STORED_FUNCTION)
}

#[test]
fn stored_function_calls_are_flagged() {
    for s in [
        "SELECT next_seq_value()",
        "select Next_Seq_Value ( )",
        "SELECT a, my_func(a, 'x') FROM t",
        "SELECT * FROM t WHERE id = f(1)",
        "SELECT * FROM t JOIN u ON f(t.a) = u.b",
        "SELECT CONCAT('a', f(1))",
        "SELECT db.f(1)",
        "SELECT `db`.`f`(1)",
        "SELECT `my func`()",
        "SELECT `if`(1, 2, 3)",
        "SELECT test.now()",
        "SELECT pkg.func(1)",
        "SELECT status()",
        "SELECT name(1), type(2)",
        "SELECT st_foo(1)",
        "SELECT a_function_name_that_is_much_longer_than_any_builtin_one(1)",
        "SELECT a_function_name_that_is_much_longer_than_any_builtin_one_and_upper_buf(1)",
        "SET @x = f(1)",
        "SET @x = (SELECT f(a) FROM t)",
        "SET autocommit = f()",
        "DO f()",
        "VALUES (f(1))",
        "SELECT 1 UNION SELECT f(2)",
        "WITH c AS (SELECT f(1) AS a) SELECT * FROM c",
        "WITH c(a) AS (SELECT 1) SELECT f(a) FROM c",
        "WITH c AS (SELECT 1) SELECT * FROM c WHERE g(1)",
        "SELECT a FROM t GROUP BY a WITH ROLLUP HAVING f(a)",
        "SELECT * FROM (SELECT f(1)) x",
        "SET STATEMENT max_statement_time=1 FOR SELECT f()",
        "INSERT INTO t (a) VALUES (f(1))",
        "INSERT INTO t (a) SELECT f(b) FROM u",
        "UPDATE t SET a = f(a)",
        "DELETE FROM t WHERE f(a)",
        "CALL p(f(1))",
        "CREATE TABLE t2 AS SELECT f(a) FROM t",
        "SELECT 1; SELECT f()",
    ] {
        assert!(sf(s), "{s}");
    }
    // Still a read; the router sends it to the primary for the flag.
    assert_eq!(
        c("SELECT next_seq_value()").flags,
        Flags::READ | Flags::STORED_FUNCTION
    );
}

#[test]
fn built_ins_and_grammar_are_not_stored_functions() {
    for s in [
        "SELECT NOW(), UUID(), RAND(), CONCAT('a', 'b'), COUNT(*), SUM(a) FROM t",
        "SELECT IF(a, 1, 2), LEFT(s, 1), RIGHT(s, 1), CHAR(65 USING utf8), ASCII('a')",
        "SELECT DATE(NOW()), CURRENT_USER(), USER(), DATABASE(), SCHEMA(), VERSION()",
        "SELECT NEXTVAL(s), LASTVAL(s), SETVAL(s, 10)",
        "SELECT COLUMN_GET(d, 'a' AS INT), COLUMN_CREATE('a', 1), COLUMN_JSON(d)",
        "SELECT TIMESTAMPADD(DAY, 1, d), TIMESTAMPDIFF(SQL_TSI_WEEK, a, b)",
        "SELECT 'a' REGEXP('b'), WEIGHT_STRING('a'), DATE_FORMAT(d, '%Y')",
        "SELECT GROUP_CONCAT(a ORDER BY b SEPARATOR ','), SUBSTRING(s, 1), TRIM(LEADING 'x' FROM s)",
        "SELECT WSREP_LAST_SEEN_GTID(), WSREP_SYNC_WAIT_UPTO_GTID('x')",
        "SELECT ST_ASTEXT(POINT(1,1)), ASTEXT(GEOMFROMTEXT('POINT(1 1)')), MBRCONTAINS(a, b)",
        "SELECT ST_GEOMETRYCOLLECTIONFROMTEXT('x'), LINESTRING(POINT(1,1), POINT(2,2))",
        "SELECT MULTIPOINT(POINT(1,1)), POLYGON(LINESTRING(POINT(1,1)))",
        "SELECT * FROM t WHERE a IN (1, 2) AND EXISTS (SELECT 1) AND b = ANY (SELECT 1)",
        "SELECT * FROM t WHERE MATCH (a, b) AGAINST ('x' IN BOOLEAN MODE)",
        "SELECT CONVERT(a, DECIMAL(10,2)), CAST(a AS CHAR(10)), CAST(b AS VARCHAR(10))",
        "SELECT CAST(a AS DATETIME(6)), CONVERT(a USING utf8mb4), CAST(a AS BINARY(4))",
        "SELECT DEFAULT(a), VALUE(a), ROW(1, 2) = ROW(1, 2), INTERVAL(5, 1, 10)",
        "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)",
        "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) FROM t",
        "SELECT SUM(a) OVER w FROM t WINDOW w AS (PARTITION BY b)",
        "SELECT * FROM t1 JOIN t2 USING (id)",
        "SELECT * FROM t USE INDEX (i1) FORCE KEY FOR JOIN (i2) IGNORE INDEX FOR ORDER BY (i3)",
        "SELECT * FROM t1 PARTITION (p0, p1)",
        "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$', \
         NESTED PATH '$.b' COLUMNS (b VARCHAR(10) PATH '$'))) AS jt",
        "SELECT @a, @@max_connections, @`f`, @@session.sql_mode",
        "SELECT EXTRACT(YEAR FROM d), POSITION('a' IN s), MOD(5, 2), FORMAT(1.5, 1)",
        "SELECT `concat`('a', 'b'), `ST_X`(p)",
        "SELECT JSON_EXTRACT(j, '$.a'), JSON_ARRAYAGG(a), NVL(a, 1), DECODE_ORACLE(a, 1, 2)",
        "SELECT GET_LOCK('a', 1), LAST_INSERT_ID(), FOUND_ROWS(), ROW_COUNT()",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT 1 FROM t WHERE a = b AND (c OR d)",
    ] {
        assert!(!sf(s), "{s}");
    }
}

#[test]
fn names_before_parentheses_that_are_not_calls() {
    for s in [
        "WITH cte(a, b) AS (SELECT 1, 2) SELECT * FROM cte",
        "WITH RECURSIVE cte(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM cte WHERE n < 5) \
         SELECT * FROM cte",
        "WITH a(x) AS (SELECT 1), b(y) AS (SELECT x FROM a), c (z) AS (SELECT 2) SELECT 1",
        "WITH `q`(x) AS (SELECT 1) SELECT * FROM q",
        "SELECT * FROM (WITH c(a) AS (SELECT 1) SELECT a FROM c) d",
        "INSERT INTO t WITH c(a) AS (SELECT 1) SELECT a FROM c",
        "INSERT INTO t1 (a, b) VALUES (1, 2)",
        "INSERT t1(a) VALUES (1)",
        "INSERT IGNORE INTO db.t1 (a) VALUES (1)",
        "INSERT LOW_PRIORITY IGNORE t1 (a) SELECT 1",
        "INSERT INTO t1 PARTITION (p0) (a) VALUES (1)",
        "REPLACE t1(a) VALUES (1)",
        "REPLACE INTO `t 1` (a) VALUES (1)",
        "CREATE TABLE t (a DECIMAL(10,2), b VARCHAR(10), c INET6, KEY k (a))",
        "CREATE TABLE db.t(a INT) PARTITION BY RANGE (a) (PARTITION p0 VALUES LESS THAN (10))",
        "CREATE TABLE t (a INT) PARTITION BY HASH(a) PARTITIONS 4",
        "CREATE TABLE t (a INT, FOREIGN KEY (a) REFERENCES u(b)) SELECT 1 AS a",
        "ALTER TABLE t ADD COLUMN c VARCHAR2(10), ADD INDEX i (c)",
        "CREATE INDEX i ON t(a)",
        "CREATE VIEW v(a) AS SELECT 1",
        "CREATE PROCEDURE p() BEGIN INSERT INTO t(a) VALUES (f(1)); SELECT g(); END",
        "CREATE FUNCTION f(a INT) RETURNS INT RETURN g(a)",
        "LOAD DATA INFILE 'x' INTO TABLE t (a, @b) SET c = @b",
        "CALL p(1)",
        "CALL db.p(1)",
        "SELECT CAST(a AS VARCHAR2(10))",
    ] {
        assert!(!sf(s), "{s}");
    }
}

fn oracle() -> SqlMode {
    SqlMode::from_sql_mode(b"PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ORACLE,NO_KEY_OPTIONS")
}

#[test]
fn sql_mode_oracle_assignments() {
    let o = |s: &str| classify_with_mode(s.as_bytes(), oracle());
    let r = o("max_sort_length:=1030;");
    assert_eq!(
        (r.kind, r.flags, r.statements),
        (StatementKind::Set, Flags::SESSION_CMD, 1)
    );
    assert_eq!(r, c("SET max_sort_length = 1030;"));
    assert_eq!(
        o("autocommit := 0").flags,
        Flags::SESSION_CMD | Flags::AUTOCOMMIT_OFF
    );
    assert_eq!(
        o("`autocommit` := ON").flags,
        Flags::SESSION_CMD | Flags::AUTOCOMMIT_ON
    );
    assert_eq!(
        o("\"autocommit\" := 1").flags,
        Flags::SESSION_CMD | Flags::AUTOCOMMIT_ON
    );
    assert_eq!(
        o("max_sort_length := (SELECT f(1))").flags,
        Flags::SESSION_CMD | Flags::STORED_FUNCTION
    );
    let r = o("max_sort_length:=1030; SELECT 1");
    assert_eq!(r.kind, StatementKind::Set);
    assert_eq!(
        r.flags,
        Flags::SESSION_CMD | Flags::READ | Flags::MULTI_STATEMENT
    );
    // The server rejects `@v := 1` as a statement (a syntax error) even in ORACLE mode: not
    // a SET, so it goes to the primary, which reports the error.
    assert_eq!(o("@v := 1").kind, StatementKind::Other);
    assert!(o("@v := 1").flags.contains(Flags::WRITE));
    // Without ORACLE the text is not an assignment (a syntax error on the server).
    assert_eq!(c("max_sort_length:=1030").kind, StatementKind::Other);
    assert_eq!(c("max_sort_length:=1030").flags, Flags::WRITE);
    assert_eq!(c("autocommit:=0").flags, Flags::WRITE);
    // Ordinary statements are unchanged in ORACLE mode.
    assert_eq!(
        o("SELECT @a := 1").flags,
        Flags::READ | Flags::ASSIGNS_USER_VAR
    );
    assert_eq!(o("SET autocommit = 0").flags, c("SET autocommit = 0").flags);
    assert_eq!(o("UPDATE t SET a := 1").kind, StatementKind::Update);
}

#[test]
fn sql_mode_ansi_quotes() {
    let ansi = SqlMode::from_sql_mode(b"ANSI_QUOTES");
    // "..." is an identifier, in which a backslash escapes nothing: the second statement is
    // real (as the server sees it).
    let sql = br#"SELECT "a\"; UPDATE t SET x = 1; -- ""#;
    assert_eq!(classify(sql).flags, Flags::READ);
    assert_eq!(
        classify_with_mode(sql, ansi).flags,
        Flags::READ | Flags::WRITE | Flags::MULTI_STATEMENT
    );
    // A double-quoted name is a quoted identifier.
    let r = classify_with_mode(br#"CREATE TEMPORARY TABLE "my""t" (a INT)"#, ansi);
    assert_eq!(r.tables[0].name, b"my\"t".to_vec());
    assert!(classify_with_mode(br#"SELECT "f"(1)"#, ansi)
        .flags
        .contains(Flags::STORED_FUNCTION));
    assert!(!sf(r#"SELECT "f"(1)"#));
    assert_eq!(
        classify_with_mode(br#"SET "autocommit" = 0"#, ansi).flags,
        Flags::SESSION_CMD | Flags::AUTOCOMMIT_OFF
    );
    // Strings still honour NO_BACKSLASH_ESCAPES next to ANSI_QUOTES.
    let both = SqlMode::from_sql_mode(b"ansi_quotes, NO_BACKSLASH_ESCAPES");
    assert!(both.ansi_quotes && both.no_backslash_escapes && !both.oracle);
    assert_eq!(
        classify_with_mode(br"SELECT 'a\'; DELETE FROM t", both).flags,
        Flags::READ | Flags::WRITE | Flags::MULTI_STATEMENT
    );
}

#[test]
fn sql_mode_from_value() {
    assert_eq!(SqlMode::from_sql_mode(b""), SqlMode::default());
    assert_eq!(
        SqlMode::from_sql_mode(b"STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO"),
        SqlMode::default()
    );
    let o = oracle();
    assert!(o.oracle && o.ansi_quotes && !o.no_backslash_escapes);
    let o = SqlMode::from_sql_mode(b"oracle");
    assert!(o.oracle && o.ansi_quotes);
    assert!(SqlMode::from_sql_mode(b"ANSI").ansi_quotes);
}

#[test]
fn dropped_database_names() {
    let d = |sql: &str| dropped_database(sql.as_bytes());
    assert_eq!(d("DROP DATABASE db3").as_deref(), Some("db3"));
    assert_eq!(
        d("drop schema if exists `my``db`;").as_deref(),
        Some("my`db")
    );
    assert_eq!(d("DROP DATABASE IF EXISTS x").as_deref(), Some("x"));
    assert_eq!(d("DROP TABLE t"), None);
    assert_eq!(d("DROP DATABASE a; SELECT 1"), None);
    assert_eq!(use_target(b"USE `a``b`").as_deref(), Some("a`b"));
}
