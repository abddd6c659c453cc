//! Prepared statements over the binary protocol, for a proxy that runs one client statement
//! on several backends: renumbering statement ids in commands and in the reply to
//! COM_STMT_PREPARE, and carrying parameter types over to a backend that has not seen them.
//!
//! A client sends the parameter types of COM_STMT_EXECUTE only when it has bound new
//! parameters (`new_params_bound_flag` set); later executes leave them out and the server
//! reuses the types it last saw for that statement on that connection. A backend that did
//! not see those types needs them put back in with [`execute_with_types`].
//!
//! The layouts here are the classic ones: the proxy offers neither MariaDB's extended
//! capabilities nor MySQL's `CLIENT_QUERY_ATTRIBUTES`, which both change COM_STMT_EXECUTE.

use bytes::{BufMut, BytesMut};

use crate::command::{
    COM_STMT_CLOSE, COM_STMT_EXECUTE, COM_STMT_FETCH, COM_STMT_RESET, COM_STMT_SEND_LONG_DATA,
};

/// The statement id MariaDB reads as "the statement prepared last on this connection", so
/// that a client can send COM_STMT_PREPARE and COM_STMT_EXECUTE without waiting in between.
pub const LAST_PREPARED_STMT_ID: u32 = u32::MAX;

/// Command byte, statement id, flags (cursor type), iteration count.
const EXECUTE_HEADER_LEN: usize = 1 + 4 + 1 + 4;

/// The shortest COM_STMT_PREPARE_OK: header, statement id, column and parameter counts,
/// filler (the warning count after it may be missing).
const PREPARE_OK_MIN_LEN: usize = 1 + 4 + 2 + 2 + 1;

/// Overwrites the statement id of a COM_STMT_EXECUTE, COM_STMT_SEND_LONG_DATA,
/// COM_STMT_CLOSE, COM_STMT_RESET or COM_STMT_FETCH payload (command byte, then the id);
/// false, changing nothing, for another command or a payload too short to hold an id.
pub fn set_command_stmt_id(payload: &mut [u8], id: u32) -> bool {
    match payload {
        [COM_STMT_EXECUTE
        | COM_STMT_SEND_LONG_DATA
        | COM_STMT_CLOSE
        | COM_STMT_RESET
        | COM_STMT_FETCH, stmt_id @ ..]
            if stmt_id.len() >= 4 =>
        {
            stmt_id[..4].copy_from_slice(&id.to_le_bytes());
            true
        }
        _ => false,
    }
}

/// Overwrites the statement id of a COM_STMT_PREPARE_OK payload (header `0x00`, then the
/// id); false, changing nothing, for an ERR or a payload too short to be a PREPARE_OK.
pub fn set_prepare_ok_stmt_id(payload: &mut [u8], id: u32) -> bool {
    if payload.len() < PREPARE_OK_MIN_LEN || payload[0] != 0x00 {
        return false;
    }
    payload[1..5].copy_from_slice(&id.to_le_bytes());
    true
}

/// Where `new_params_bound_flag` is in a COM_STMT_EXECUTE of a statement with `num_params`
/// parameters: after the header and the NULL bitmap. A statement without parameters has
/// neither the bitmap nor the flag.
fn bound_flag_at(payload: &[u8], num_params: u16) -> Option<usize> {
    if num_params == 0 || payload.first() != Some(&COM_STMT_EXECUTE) {
        return None;
    }
    let at = EXECUTE_HEADER_LEN + usize::from(num_params).div_ceil(8);
    (at < payload.len()).then_some(at)
}

/// The parameter types (type byte and flag byte per parameter) that a COM_STMT_EXECUTE
/// payload of a statement with `num_params` parameters carries; `None` when it leaves them
/// out (`new_params_bound_flag` 0), the statement has no parameters, or the payload is
/// malformed.
pub fn execute_param_types(payload: &[u8], num_params: u16) -> Option<&[u8]> {
    let at = bound_flag_at(payload, num_params)?;
    // The server takes any non-zero flag as "types follow".
    if payload[at] == 0 {
        return None;
    }
    payload.get(at + 1..at + 1 + 2 * usize::from(num_params))
}

/// Appends to `out` the COM_STMT_EXECUTE `payload` of a statement with `num_params`
/// parameters with `types` (as [`execute_param_types`] returned them from an earlier
/// execute) put in, and `new_params_bound_flag` set. False, appending nothing, when the
/// payload already carries types, the statement has no parameters, `types` is not two bytes
/// per parameter, or the payload is malformed.
pub fn execute_with_types(
    payload: &[u8],
    num_params: u16,
    types: &[u8],
    out: &mut BytesMut,
) -> bool {
    let Some(at) = bound_flag_at(payload, num_params) else {
        return false;
    };
    if payload[at] != 0 || types.len() != 2 * usize::from(num_params) {
        return false;
    }
    out.reserve(payload.len() + types.len());
    out.put_slice(&payload[..at]);
    out.put_u8(1);
    out.put_slice(types);
    out.put_slice(&payload[at + 1..]);
    true
}

#[cfg(test)]
mod tests;
