//! The spill file: records Kafka cannot take now, kept on disk in order until they can be
//! sent again.
//!
//! Format: a sequence of records, each `key: u32 LE`, `len: u32 LE`, then `len` bytes of
//! JSON. Records are appended at the end and read from a read offset that only moves forward;
//! once every record was handed to Kafka and delivered, the file is truncated to zero. A torn
//! record at the end (the proxy died while writing it) is cut off when the file is opened.
//!
//! The records hold SQL text, and the directory may be one that others can write to: the file
//! is created 0600 (its directory, if missing, 0700), is never opened through a symbolic link,
//! and an existing file that group or others can read is tightened to 0600 (with a warning)
//! rather than refused, so that the records an earlier run left are still sent. The file is
//! never replaced: it is emptied in place through the descriptor opened here, so no later step
//! goes through the path again.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Bytes before each record's payload.
const HEADER: u64 = 8;

/// How much is read from the file at a time when sending records again.
const READ_CHUNK: usize = 256 * 1024;

/// Appended records are written to the file once this much is buffered (and at every flush).
const WRITE_CHUNK: usize = 64 * 1024;

/// One spill file, owned by the producer thread.
#[derive(Debug)]
pub(crate) struct Spill {
    path: PathBuf,
    file: File,
    /// Bytes of the file, including `wbuf`.
    len: u64,
    /// Appended records not yet written to the file.
    wbuf: Vec<u8>,
    /// Where the first record not yet handed to Kafka starts.
    read_pos: u64,
    /// Records from `read_pos` to the end.
    unsent: u64,
    /// Records in `wbuf`.
    wbuf_records: u64,
    max_size: u64,
    /// A window of the file starting at `rbuf_pos`, for reading records back.
    rbuf: Vec<u8>,
    rbuf_pos: u64,
}

impl Spill {
    /// Opens (creating the directory and the file if missing) `<dir>/<name>.spill`, keeping
    /// the records an earlier run left in it.
    pub(crate) fn open(dir: &Path, name: &str, max_size: u64) -> io::Result<Spill> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let path = dir.join(format!("{}.spill", file_name(name)));
        let file = open_private(&path)?;
        let (len, unsent) = scan(&file)?;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
        }
        Ok(Spill {
            path,
            file,
            len,
            wbuf: Vec::new(),
            read_pos: 0,
            unsent,
            wbuf_records: 0,
            max_size,
            rbuf: Vec::new(),
            rbuf_pos: 0,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Records not yet handed to Kafka.
    pub(crate) fn unsent(&self) -> u64 {
        self.unsent
    }

    /// Bytes in the file (written or buffered).
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends a record; `Ok(false)` when the file would grow past its maximum size.
    pub(crate) fn append(&mut self, key: u32, payload: &[u8]) -> Result<bool, SpillError> {
        let size = HEADER + payload.len() as u64;
        let Ok(len32) = u32::try_from(payload.len()) else {
            return Ok(false);
        };
        if self.len + size > self.max_size {
            return Ok(false);
        }
        self.wbuf.extend_from_slice(&key.to_le_bytes());
        self.wbuf.extend_from_slice(&len32.to_le_bytes());
        self.wbuf.extend_from_slice(payload);
        self.len += size;
        self.unsent += 1;
        self.wbuf_records += 1;
        if self.wbuf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(true)
    }

    /// Writes the buffered records to the file.
    pub(crate) fn flush(&mut self) -> Result<(), SpillError> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        if let Err(error) = self.file.write_all(&self.wbuf) {
            // What was buffered is lost; cut whatever part of it reached the file.
            let lost = self.wbuf_records;
            self.len -= self.wbuf.len() as u64;
            self.unsent -= lost;
            self.wbuf.clear();
            self.wbuf_records = 0;
            self.file.set_len(self.len).ok();
            return Err(SpillError { error, lost });
        }
        self.wbuf.clear();
        self.wbuf_records = 0;
        Ok(())
    }

    /// The next record not yet handed to Kafka, without moving past it.
    pub(crate) fn peek(&mut self) -> Result<Option<(u32, &[u8])>, SpillError> {
        if self.unsent == 0 {
            return Ok(None);
        }
        self.flush()?;
        let len = match self.record_len() {
            Ok(len) => len,
            Err(error) => return Err(self.discard(error)),
        };
        match self.window(self.read_pos, HEADER as usize + len) {
            Ok(_) => {}
            Err(error) => return Err(self.discard(error)),
        }
        let at = (self.read_pos - self.rbuf_pos) as usize;
        let record = &self.rbuf[at..at + HEADER as usize + len];
        let key = u32::from_le_bytes([record[0], record[1], record[2], record[3]]);
        Ok(Some((key, &record[HEADER as usize..])))
    }

    /// Moves past the record [`Spill::peek`] returned.
    pub(crate) fn consume(&mut self) -> Result<(), SpillError> {
        if self.unsent == 0 {
            return Ok(());
        }
        let len = match self.record_len() {
            Ok(len) => len,
            Err(error) => return Err(self.discard(error)),
        };
        self.read_pos += HEADER + len as u64;
        self.unsent -= 1;
        Ok(())
    }

    /// Empties the file once all of it was handed over (and delivered, which the caller knows).
    pub(crate) fn truncate(&mut self) -> io::Result<()> {
        if self.unsent != 0 || self.len == 0 {
            return Ok(());
        }
        self.file.set_len(0)?;
        self.len = 0;
        self.read_pos = 0;
        self.rbuf.clear();
        self.rbuf_pos = 0;
        Ok(())
    }

    /// The payload length of the record at the read offset.
    fn record_len(&mut self) -> io::Result<usize> {
        let h = self.window(self.read_pos, HEADER as usize)?;
        Ok(u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize)
    }

    /// Gives up the unsent records of a file that cannot be read back.
    fn discard(&mut self, error: io::Error) -> SpillError {
        let lost = self.unsent;
        self.unsent = 0;
        self.wbuf.clear();
        self.wbuf_records = 0;
        if let Err(e) = self.truncate() {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot truncate the spill file");
        }
        SpillError { error, lost }
    }

    /// `n` bytes of the file at `pos`, reading them in if the window does not hold them.
    fn window(&mut self, pos: u64, n: usize) -> io::Result<&[u8]> {
        let end = pos + n as u64;
        if end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "spill record runs past the end of the file",
            ));
        }
        if pos < self.rbuf_pos || end > self.rbuf_pos + self.rbuf.len() as u64 {
            let want = n.max(READ_CHUNK.min((self.len - pos) as usize));
            self.rbuf.resize(want, 0);
            if let Err(e) = self.file.read_exact_at(&mut self.rbuf, pos) {
                self.rbuf.clear();
                return Err(e);
            }
            self.rbuf_pos = pos;
        }
        let at = (pos - self.rbuf_pos) as usize;
        Ok(&self.rbuf[at..at + n])
    }
}

/// A spill file error, and how many records it cost.
#[derive(Debug)]
pub(crate) struct SpillError {
    pub error: io::Error,
    /// Records that were counted in the file and are now lost.
    pub lost: u64,
}

/// Opens (creating it 0600 if missing) the regular file at `path` for reading and appending,
/// refusing a symbolic link there, and takes group and other permissions off an existing one.
fn open_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        // (Opened read-write, a FIFO put there does not block the open; it is refused below.)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    e.kind(),
                    format!(
                        "the spill file {} is a symbolic link; refusing to follow it",
                        path.display()
                    ),
                )
            } else {
                io::Error::new(e.kind(), format!("{}: {e}", path.display()))
            }
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the spill file {} is not a regular file", path.display()),
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        // Owner bits are kept as they are (never loosened), the rest taken away.
        let tightened = mode & 0o600;
        file.set_permissions(std::fs::Permissions::from_mode(tightened))
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "the spill file {} has mode {mode:04o} and cannot be made private: {e}",
                        path.display()
                    ),
                )
            })?;
        tracing::warn!(
            path = %path.display(),
            was = %format!("{mode:04o}"),
            now = %format!("{tightened:04o}"),
            "the spill file could be read by others; its mode was tightened"
        );
    }
    Ok(file)
}

/// The length of the whole records at the start of `file`, and how many there are.
fn scan(file: &File) -> io::Result<(u64, u64)> {
    let mut r = BufReader::with_capacity(READ_CHUNK, file);
    let (mut len, mut records) = (0u64, 0u64);
    let mut header = [0u8; HEADER as usize];
    loop {
        if r.read_exact(&mut header).is_err() {
            break;
        }
        let n = u64::from(u32::from_le_bytes([
            header[4], header[5], header[6], header[7],
        ]));
        let skipped = io::copy(&mut r.by_ref().take(n), &mut io::sink())?;
        if skipped < n {
            break;
        }
        len += HEADER + n;
        records += 1;
    }
    Ok((len, records))
}

/// A filter name made safe as a file name.
fn file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("querylog{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "querylog-{tag}-{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ));
            TempDir(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    fn drain(s: &mut Spill) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some((k, p)) = s.peek().unwrap() {
            out.push((k, p.to_vec()));
            s.consume().unwrap();
        }
        out
    }

    #[test]
    fn append_read_truncate_roundtrip() {
        let dir = TempDir::new("roundtrip");
        let mut s = Spill::open(&dir.0, "audit", 1 << 20).unwrap();
        assert_eq!(s.path(), dir.0.join("audit.spill"));
        assert_eq!((s.unsent(), s.len()), (0, 0));
        assert!(s.peek().unwrap().is_none());
        for i in 0..100u32 {
            assert!(s.append(i, format!("{{\"n\":{i}}}").as_bytes()).unwrap());
        }
        assert!(s.append(7, b"").unwrap());
        assert_eq!(s.unsent(), 101);
        let got = drain(&mut s);
        assert_eq!(got.len(), 101);
        assert_eq!(got[42], (42, b"{\"n\":42}".to_vec()));
        assert_eq!(got[100], (7, Vec::new()));
        assert_eq!(s.unsent(), 0);
        // Appending after a partial read keeps the order.
        s.append(1, b"late").unwrap();
        assert_eq!(drain(&mut s), vec![(1, b"late".to_vec())]);
        s.truncate().unwrap();
        assert_eq!(s.len(), 0);
        assert_eq!(std::fs::metadata(s.path()).unwrap().len(), 0);
        s.append(2, b"again").unwrap();
        assert_eq!(drain(&mut s), vec![(2, b"again".to_vec())]);
    }

    #[test]
    fn truncate_waits_for_unsent_records() {
        let dir = TempDir::new("unsent");
        let mut s = Spill::open(&dir.0, "a", 1 << 20).unwrap();
        s.append(1, b"x").unwrap();
        s.flush().unwrap();
        s.truncate().unwrap();
        assert_eq!(s.len(), 9);
        assert_eq!(s.peek().unwrap(), Some((1, &b"x"[..])));
    }

    #[test]
    fn a_later_run_resends_and_cuts_a_torn_tail() {
        let dir = TempDir::new("reopen");
        {
            let mut s = Spill::open(&dir.0, "a", 1 << 20).unwrap();
            s.append(5, b"first").unwrap();
            s.append(6, b"second").unwrap();
            s.flush().unwrap();
        }
        let path = dir.0.join("a.spill");
        // A record whose header says 100 bytes but only 3 made it to disk.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&9u32.to_le_bytes()).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(b"abc").unwrap();
        drop(f);
        let mut s = Spill::open(&dir.0, "a", 1 << 20).unwrap();
        assert_eq!(s.unsent(), 2);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 8 + 5 + 8 + 6);
        s.append(7, b"third").unwrap();
        let got = drain(&mut s);
        let keys: Vec<u32> = got.iter().map(|r| r.0).collect();
        assert_eq!(keys, [5, 6, 7]);
        assert_eq!(got[1].1, b"second");
    }

    #[test]
    fn the_size_limit_refuses_records() {
        let dir = TempDir::new("limit");
        let mut s = Spill::open(&dir.0, "a", 30).unwrap();
        assert!(s.append(1, b"0123456789").unwrap());
        assert!(!s.append(2, b"0123456789ab").unwrap());
        assert!(s.append(3, b"").unwrap());
        assert_eq!(s.unsent(), 2);
    }

    #[test]
    fn large_records_cross_read_windows() {
        let dir = TempDir::new("large");
        let mut s = Spill::open(&dir.0, "a", u64::MAX).unwrap();
        let big = vec![b'z'; READ_CHUNK + 10];
        s.append(1, b"small").unwrap();
        s.append(2, &big).unwrap();
        s.append(3, b"tail").unwrap();
        let got = drain(&mut s);
        assert_eq!(got[1].1.len(), big.len());
        assert_eq!(got[2], (3, b"tail".to_vec()));
    }

    #[test]
    fn an_unreadable_file_gives_its_records_up() {
        let dir = TempDir::new("broken");
        let mut s = Spill::open(&dir.0, "a", 1 << 20).unwrap();
        s.append(1, b"one").unwrap();
        s.append(2, b"two").unwrap();
        s.flush().unwrap();
        // Someone cut the file behind our back.
        OpenOptions::new()
            .write(true)
            .open(s.path())
            .unwrap()
            .set_len(3)
            .unwrap();
        let e = s.peek().unwrap_err();
        assert_eq!(e.lost, 2);
        assert_eq!((s.unsent(), s.len()), (0, 0));
        assert!(s.peek().unwrap().is_none());
        s.append(3, b"three").unwrap();
        assert_eq!(drain(&mut s), vec![(3, b"three".to_vec())]);
    }

    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::MetadataExt;
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn spill_file_and_directory_are_private() {
        let dir = TempDir::new("mode");
        let mut s = Spill::open(&dir.0, "a", 1 << 20).unwrap();
        s.append(1, b"select secret").unwrap();
        s.flush().unwrap();
        // Exactly these, whatever the umask (0644 and 0755 under the usual 022 before).
        assert_eq!(mode_of(s.path()), 0o600);
        assert_eq!(mode_of(&dir.0), 0o700);
    }

    #[test]
    fn spill_file_readable_by_others_is_tightened_and_kept() {
        let dir = TempDir::new("tighten");
        {
            let mut s = Spill::open(&dir.0, "a", 1 << 20).unwrap();
            s.append(1, b"kept").unwrap();
            s.flush().unwrap();
        }
        let path = dir.0.join("a.spill");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut s = Spill::open(&dir.0, "a", 1 << 20).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(drain(&mut s), vec![(1, b"kept".to_vec())]);
        drop(s);
        // The owner's bits are not loosened: a read-only file stays read-only (only root can
        // open one for appending, so only then is this checked).
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(&path).unwrap().uid() == 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
            Spill::open(&dir.0, "a", 1 << 20).unwrap();
            assert_eq!(mode_of(&path), 0o400);
        }
    }

    #[test]
    fn spill_symlink_is_refused_and_its_target_untouched() {
        let dir = TempDir::new("symlink");
        std::fs::create_dir_all(&dir.0).unwrap();
        let victim = dir.0.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = dir.0.join("a.spill");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let e = Spill::open(&dir.0, "a", 1 << 20).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("symbolic link") && text.contains(&*path.to_string_lossy()),
            "{text}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(mode_of(&victim), 0o644);
        // A dangling link does not make it create a file where the link points.
        let elsewhere = dir.0.join("elsewhere");
        let path_b = dir.0.join("b.spill");
        std::os::unix::fs::symlink(&elsewhere, &path_b).unwrap();
        assert!(Spill::open(&dir.0, "b", 1 << 20).is_err());
        assert!(!elsewhere.exists());
    }

    #[test]
    fn spill_path_that_is_not_a_file_is_refused() {
        let dir = TempDir::new("notafile");
        std::fs::create_dir_all(dir.0.join("a.spill")).unwrap();
        assert!(Spill::open(&dir.0, "a", 1 << 20).is_err());
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(file_name("audit-1"), "audit-1");
        assert_eq!(file_name("../x/y"), "querylog.._x_y");
        assert_eq!(file_name(""), "querylog");
    }
}
