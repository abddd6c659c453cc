use super::*;
use crate::command::{Command, COM_QUERY};

/// `execute(1, ["abc", 42])` as a client sends it on the first execute after binding:
/// parameter types VAR_STRING and LONG, new_params_bound_flag 1.
const FIRST_EXECUTE: &[u8] = &[
    0x17, // COM_STMT_EXECUTE
    0x01, 0x00, 0x00, 0x00, // statement id 1
    0x00, // no cursor
    0x01, 0x00, 0x00, 0x00, // iteration count
    0x00, // NULL bitmap: none
    0x01, // new_params_bound_flag
    0xFD, 0x00, 0x03, 0x00, // types: VAR_STRING, LONG (signed)
    0x03, b'a', b'b', b'c', // "abc"
    0x2A, 0x00, 0x00, 0x00, // 42
];

/// `execute(1, ["xyz", 43])`, the types left out.
const NEXT_EXECUTE: &[u8] = &[
    0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //
    0x00, // NULL bitmap
    0x00, // new_params_bound_flag
    0x03, b'x', b'y', b'z', //
    0x2B, 0x00, 0x00, 0x00,
];

/// `NEXT_EXECUTE` with the types put back in.
const NEXT_EXECUTE_WITH_TYPES: &[u8] = &[
    0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //
    0x00, //
    0x01, //
    0xFD, 0x00, 0x03, 0x00, //
    0x03, b'x', b'y', b'z', //
    0x2B, 0x00, 0x00, 0x00,
];

fn with_types(payload: &[u8], num_params: u16, types: &[u8]) -> Option<Vec<u8>> {
    let mut out = BytesMut::new();
    if execute_with_types(payload, num_params, types, &mut out) {
        Some(out.to_vec())
    } else {
        assert!(out.is_empty(), "nothing is appended when false");
        None
    }
}

#[test]
fn types_of_the_first_execute() {
    assert_eq!(
        execute_param_types(FIRST_EXECUTE, 2),
        Some(&[0xFD, 0x00, 0x03, 0x00][..])
    );
    assert_eq!(execute_param_types(NEXT_EXECUTE, 2), None);
    assert_eq!(
        execute_param_types(NEXT_EXECUTE_WITH_TYPES, 2),
        Some(&[0xFD, 0x00, 0x03, 0x00][..])
    );
}

#[test]
fn types_are_put_back_in() {
    let types = execute_param_types(FIRST_EXECUTE, 2).unwrap();
    assert_eq!(
        with_types(NEXT_EXECUTE, 2, types).as_deref(),
        Some(NEXT_EXECUTE_WITH_TYPES)
    );
    // An execute that has types already is left alone.
    assert_eq!(with_types(FIRST_EXECUTE, 2, types), None);
    assert_eq!(with_types(NEXT_EXECUTE_WITH_TYPES, 2, types), None);
    // Two bytes per parameter, no more, no less.
    assert_eq!(with_types(NEXT_EXECUTE, 2, &types[..2]), None);
    assert_eq!(with_types(NEXT_EXECUTE, 2, &[0; 6]), None);
    // The header is untouched: the command still parses the same.
    let out = with_types(NEXT_EXECUTE, 2, types).unwrap();
    assert_eq!(
        Command::parse(&out).unwrap(),
        Command::parse(NEXT_EXECUTE).unwrap()
    );
}

#[test]
fn appends_to_what_out_holds() {
    let mut out = BytesMut::from(&b"framed"[..]);
    assert!(execute_with_types(
        NEXT_EXECUTE,
        2,
        &[0xFD, 0, 3, 0],
        &mut out
    ));
    assert_eq!(&out[..6], b"framed");
    assert_eq!(&out[6..], NEXT_EXECUTE_WITH_TYPES);
}

#[test]
fn all_null_parameters_end_at_the_flag() {
    // Both parameters NULL: the values are empty and the packet ends with the flag.
    let next = [0x17, 9, 0, 0, 0, 0, 1, 0, 0, 0, 0b11, 0x00];
    assert_eq!(execute_param_types(&next, 2), None);
    let out = with_types(&next, 2, &[0x08, 0x80, 0x0F, 0x00]).unwrap();
    assert_eq!(&out[..11], &next[..11]);
    assert_eq!(&out[11..], &[0x01, 0x08, 0x80, 0x0F, 0x00]);
    assert_eq!(
        execute_param_types(&out, 2),
        Some(&[0x08, 0x80, 0x0F, 0x00][..])
    );
}

#[test]
fn the_bitmap_grows_with_the_parameters() {
    // Nine parameters: a two-byte NULL bitmap (the first eight NULL), one LONG value.
    let types: Vec<u8> = (0..18).collect();
    let mut first = vec![0x17, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0x00, 0x01];
    first.extend_from_slice(&types);
    first.extend_from_slice(&[0x07, 0, 0, 0]);
    assert_eq!(execute_param_types(&first, 9), Some(&types[..]));
    let mut next = vec![0x17, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0x00, 0x00];
    next.extend_from_slice(&[0x07, 0, 0, 0]);
    assert_eq!(with_types(&next, 9, &types).unwrap(), first);
    // Read with a wrong parameter count, the flag is looked for in the wrong place.
    assert_eq!(execute_param_types(&first, 8), None);
}

#[test]
fn any_non_zero_flag_means_types_follow() {
    let mut p = FIRST_EXECUTE.to_vec();
    p[11] = 0x80;
    assert_eq!(
        execute_param_types(&p, 2),
        Some(&[0xFD, 0x00, 0x03, 0x00][..])
    );
    assert_eq!(with_types(&p, 2, &[0; 4]), None);
}

#[test]
fn not_applicable() {
    // A statement without parameters has no bitmap and no flag.
    let no_params = [0x17, 3, 0, 0, 0, 0, 1, 0, 0, 0];
    assert_eq!(execute_param_types(&no_params, 0), None);
    assert_eq!(with_types(&no_params, 0, &[]), None);
    assert_eq!(execute_param_types(FIRST_EXECUTE, 0), None);
    // Not an execute.
    let mut p = FIRST_EXECUTE.to_vec();
    p[0] = COM_QUERY;
    assert_eq!(execute_param_types(&p, 2), None);
    let mut p = NEXT_EXECUTE.to_vec();
    p[0] = 0x18;
    assert_eq!(with_types(&p, 2, &[0; 4]), None);
    assert_eq!(execute_param_types(&[], 2), None);
    assert_eq!(with_types(&[], 2, &[0; 4]), None);
    // A parameter count far beyond the packet.
    assert_eq!(execute_param_types(FIRST_EXECUTE, u16::MAX), None);
    assert_eq!(with_types(NEXT_EXECUTE, u16::MAX, &[0; 4]), None);
}

#[test]
fn every_prefix_is_handled() {
    for n in 0..FIRST_EXECUTE.len() {
        let prefix = &FIRST_EXECUTE[..n];
        // Types are found once the whole types block is there, not before.
        let expected = (n >= 16).then_some(&FIRST_EXECUTE[12..16]);
        assert_eq!(execute_param_types(prefix, 2), expected, "prefix {n}");
        assert_eq!(with_types(prefix, 2, &[0; 4]), None);
    }
    for n in 0..NEXT_EXECUTE.len() {
        let prefix = &NEXT_EXECUTE[..n];
        assert_eq!(execute_param_types(prefix, 2), None);
        // From the flag on, the values are the client's business, not ours.
        assert_eq!(
            with_types(prefix, 2, &[0; 4]).is_some(),
            n >= 12,
            "prefix {n}"
        );
    }
    for num_params in [1, 2, 3, 8, 9, 300, u16::MAX] {
        for p in [FIRST_EXECUTE, NEXT_EXECUTE] {
            for n in 0..=p.len() {
                let _ = execute_param_types(&p[..n], num_params);
                let _ = with_types(&p[..n], num_params, &vec![0; 2 * usize::from(num_params)]);
            }
        }
    }
}

#[test]
fn command_stmt_ids() {
    for (mut p, parsed) in [
        (
            NEXT_EXECUTE.to_vec(),
            Command::StmtExecute {
                stmt_id: 0x0102_0304,
                flags: 0,
            },
        ),
        (
            vec![0x18, 1, 0, 0, 0, 0, 0, b'x'],
            Command::StmtSendLongData {
                stmt_id: 0x0102_0304,
            },
        ),
        (
            vec![0x19, 1, 0, 0, 0],
            Command::StmtClose {
                stmt_id: 0x0102_0304,
            },
        ),
        (
            vec![0x1A, 1, 0, 0, 0],
            Command::StmtReset {
                stmt_id: 0x0102_0304,
            },
        ),
        (
            vec![0x1C, 1, 0, 0, 0, 10, 0, 0, 0],
            Command::StmtFetch {
                stmt_id: 0x0102_0304,
                rows: 10,
            },
        ),
    ] {
        let before = p.clone();
        assert!(set_command_stmt_id(&mut p, 0x0102_0304));
        assert_eq!(&p[1..5], &[4, 3, 2, 1]);
        assert_eq!((&p[..1], &p[5..]), (&before[..1], &before[5..]));
        assert_eq!(Command::parse(&p).unwrap(), parsed);
    }
}

#[test]
fn command_stmt_ids_refused() {
    for p in [
        &b"\x03SELECT 1"[..],
        &[0x16, b'S'][..],
        &[0x19, 1, 0, 0][..],
        &[0x17][..],
        &[][..],
    ] {
        let mut q = p.to_vec();
        assert!(!set_command_stmt_id(&mut q, 7));
        assert_eq!(q, p);
    }
    // The id of the last prepared statement is just another id here.
    let mut p = vec![0x19, 0xFF, 0xFF, 0xFF, 0xFF];
    assert!(set_command_stmt_id(&mut p, 3));
    assert_eq!(p, [0x19, 3, 0, 0, 0]);
    assert_eq!(LAST_PREPARED_STMT_ID.to_le_bytes(), [0xFF; 4]);
}

#[test]
fn prepare_ok_stmt_id() {
    // Statement 1, one column, two parameters, filler, no warnings.
    let mut p = vec![0x00, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0];
    assert!(set_prepare_ok_stmt_id(&mut p, 0xDEAD_BEEF));
    assert_eq!(p, [0x00, 0xEF, 0xBE, 0xAD, 0xDE, 1, 0, 2, 0, 0, 0, 0]);
    // Without the warning count (old servers).
    let mut p = vec![0x00, 1, 0, 0, 0, 1, 0, 2, 0, 0];
    assert!(set_prepare_ok_stmt_id(&mut p, 5));
    assert_eq!(&p[1..5], &[5, 0, 0, 0]);
    // An ERR, and every truncated PREPARE_OK, are left alone.
    let mut err = b"\xFF\x28\x04#42000You have an error".to_vec();
    assert!(!set_prepare_ok_stmt_id(&mut err, 5));
    assert_eq!(&err[..3], b"\xFF\x28\x04");
    let full = [0x00, 1, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0];
    for n in 0..10 {
        let mut q = full[..n].to_vec();
        assert!(!set_prepare_ok_stmt_id(&mut q, 5));
        assert_eq!(q, &full[..n]);
    }
}
