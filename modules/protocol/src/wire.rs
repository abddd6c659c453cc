//! Primitive wire types: fixed and length-encoded integers and strings, read from borrowed
//! slices and written into `BufMut`s. Every read is bounds-checked and returns
//! [`ProtocolError::Malformed`] instead of panicking.

use bytes::BufMut;

use crate::error::{ProtocolError, Result};

/// A cursor over a packet payload.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

// Every field of every packet goes through these small methods: `#[inline]` lets them be
// inlined into other codegen units too (the release profile has no LTO).
impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    #[inline]
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread rest, consuming it.
    #[inline]
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(ProtocolError::Malformed("packet ends early"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    #[inline]
    pub fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    #[inline]
    pub fn u24(&mut self) -> Result<u32> {
        let b = self.take(3)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], 0]))
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// A length-encoded integer; `None` for the NULL marker `0xFB`.
    #[inline]
    pub fn lenenc_int_or_null(&mut self) -> Result<Option<u64>> {
        let first = self.u8()?;
        Ok(Some(match first {
            0xFB => return Ok(None),
            0xFC => u64::from(self.u16()?),
            0xFD => u64::from(self.u24()?),
            0xFE => self.u64()?,
            0xFF => return Err(ProtocolError::Malformed("invalid length-encoded integer")),
            n => u64::from(n),
        }))
    }

    #[inline]
    pub fn lenenc_int(&mut self) -> Result<u64> {
        self.lenenc_int_or_null()?
            .ok_or(ProtocolError::Malformed("unexpected NULL length"))
    }

    #[inline]
    pub fn lenenc_bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.lenenc_int()?;
        let len = usize::try_from(len).map_err(|_| ProtocolError::Malformed("length too large"))?;
        self.take(len)
    }

    /// A length-encoded string, or `None` for SQL NULL.
    #[inline]
    pub fn lenenc_bytes_or_null(&mut self) -> Result<Option<&'a [u8]>> {
        match self.peek() {
            Some(0xFB) => {
                self.skip(1)?;
                Ok(None)
            }
            _ => self.lenenc_bytes().map(Some),
        }
    }

    /// A NUL-terminated string (without the NUL). A missing terminator takes the rest.
    #[inline]
    pub fn null_terminated(&mut self) -> &'a [u8] {
        match self.buf.iter().position(|&b| b == 0) {
            Some(i) => {
                let s = &self.buf[..i];
                self.buf = &self.buf[i + 1..];
                s
            }
            None => self.rest(),
        }
    }
}

/// The encoded size of a length-encoded integer.
pub fn lenenc_int_len(n: u64) -> usize {
    match n {
        0..=250 => 1,
        251..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 9,
    }
}

pub fn put_lenenc_int(buf: &mut impl BufMut, n: u64) {
    match n {
        0..=250 => buf.put_u8(n as u8),
        251..=0xFFFF => {
            buf.put_u8(0xFC);
            buf.put_u16_le(n as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            buf.put_u8(0xFD);
            buf.put_uint_le(n, 3);
        }
        _ => {
            buf.put_u8(0xFE);
            buf.put_u64_le(n);
        }
    }
}

pub fn put_lenenc_bytes(buf: &mut impl BufMut, s: &[u8]) {
    put_lenenc_int(buf, s.len() as u64);
    buf.put_slice(s);
}

pub fn put_null_terminated(buf: &mut impl BufMut, s: &[u8]) {
    buf.put_slice(s);
    buf.put_u8(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trip() {
        for n in [
            0u64,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut v = Vec::new();
            put_lenenc_int(&mut v, n);
            assert_eq!(v.len(), lenenc_int_len(n));
            assert_eq!(Reader::new(&v).lenenc_int().unwrap(), n);
        }
    }

    #[test]
    fn short_reads_are_errors() {
        assert!(Reader::new(&[0xFC, 1]).lenenc_int().is_err());
        assert!(Reader::new(&[0xFF]).lenenc_int().is_err());
        assert!(Reader::new(&[1, 2]).u32().is_err());
        assert_eq!(Reader::new(&[0xFB]).lenenc_int_or_null().unwrap(), None);
        assert_eq!(Reader::new(b"ab").null_terminated(), b"ab");
    }
}
