//! Corpus test: every statement of `corpus.tsv` with its expected kind and exact flags.

use switchyard_sql::{classify, Flags, StatementKind};

/// Decodes `\n`, `\t`, `\r`, `\\` and `\xHH` in the SQL column.
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).expect("bad \\x escape"));
                    i += 4;
                    continue;
                }
                c => {
                    out.push(b'\\');
                    out.push(c);
                }
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn kind(name: &str) -> StatementKind {
    use StatementKind as K;
    match name {
        "Select" => K::Select,
        "Insert" => K::Insert,
        "Update" => K::Update,
        "Delete" => K::Delete,
        "Replace" => K::Replace,
        "Set" => K::Set,
        "Use" => K::Use,
        "Begin" => K::Begin,
        "Commit" => K::Commit,
        "Rollback" => K::Rollback,
        "Savepoint" => K::Savepoint,
        "Xa" => K::Xa,
        "Show" => K::Show,
        "Explain" => K::Explain,
        "Call" => K::Call,
        "Prepare" => K::Prepare,
        "Execute" => K::Execute,
        "Deallocate" => K::Deallocate,
        "Create" => K::Create,
        "Alter" => K::Alter,
        "Drop" => K::Drop,
        "Rename" => K::Rename,
        "Truncate" => K::Truncate,
        "Load" => K::Load,
        "Lock" => K::Lock,
        "Unlock" => K::Unlock,
        "Grant" => K::Grant,
        "Do" => K::Do,
        "Handler" => K::Handler,
        "Other" => K::Other,
        _ => panic!("unknown kind {name}"),
    }
}

fn flags(spec: &str) -> Flags {
    if spec == "-" {
        return Flags::empty();
    }
    spec.split('|').fold(Flags::empty(), |acc, n| {
        acc | Flags::from_name(n).unwrap_or_else(|| panic!("unknown flag {n}"))
    })
}

#[test]
fn corpus() {
    let text = include_str!("corpus.tsv");
    let mut count = 0;
    let mut failures = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let mut cols = line.splitn(3, '\t');
        let (k, f, sql) = (
            cols.next().unwrap(),
            cols.next().unwrap(),
            cols.next().unwrap_or(""),
        );
        let sql = unescape(sql);
        let got = classify(&sql);
        count += 1;
        let (want_kind, want_flags) = (kind(k), flags(f));
        if got.kind != want_kind || got.flags != want_flags {
            failures.push(format!(
                "line {}: {:?}\n  want {:?} {:?}\n  got  {:?} {:?}",
                lineno + 1,
                String::from_utf8_lossy(&sql),
                want_kind,
                want_flags,
                got.kind,
                got.flags
            ));
        }
    }
    assert!(count >= 300, "corpus has only {count} statements");
    assert!(
        failures.is_empty(),
        "{} of {count} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
