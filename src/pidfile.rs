//! The optional pid file: written once the proxy serves, removed when it exits, and refused
//! when it names a process that is still running.
//!
//! Its directory may be one that someone else can write to (the service user's, while a root
//! agent reads the file), so the path is never followed through a symbolic link: a link there
//! is refused. The file is written as a new 0600 file beside it and renamed over the path, so a
//! reader sees the old pid or the new one, never half of one, and never a file that was
//! someone else's first.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A pid file path, checked and not yet written.
pub struct PidFile(PathBuf);

/// A written pid file; removed when dropped.
pub struct Written(PathBuf);

/// More than any pid with its newline: a longer file is not ours to parse.
const MAX_LEN: u64 = 64;

impl PidFile {
    /// Refuses a pid file that names a live process (another Switchyard, most likely), and one
    /// that is a symbolic link or not a regular file; a stale one is replaced later.
    pub fn check(path: &Path) -> Result<PidFile, String> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(symlink_error(path)),
            Ok(meta) if !meta.is_file() => {
                return Err(format!(
                    "the pid file {} exists and is not a regular file",
                    path.display()
                ))
            }
            Ok(_) => {
                if let Some(pid) = read_pid(path)? {
                    if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists() {
                        return Err(format!(
                            "the pid file {} names process {pid}, which is running: is another \
                             Switchyard using it?",
                            path.display()
                        ));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read the pid file {}: {e}", path.display())),
        }
        Ok(PidFile(path.to_path_buf()))
    }

    /// Writes the pid to a temporary file in the same directory and renames it over the path.
    pub fn write(self) -> Result<Written, String> {
        let cannot =
            |e: std::io::Error| format!("cannot write the pid file {}: {e}", self.0.display());
        // Between the check and now a link may have been planted; rename would replace it
        // rather than follow it, but one there means someone is playing with the directory.
        if std::fs::symlink_metadata(&self.0).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(symlink_error(&self.0));
        }
        let tmp = temp_path(&self.0)
            .ok_or_else(|| format!("the pid file {} has no file name", self.0.display()))?;
        let written = write_new(&tmp, format!("{}\n", std::process::id()).as_bytes())
            .and_then(|()| std::fs::rename(&tmp, &self.0));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(cannot(e));
        }
        // The rename is durable once the directory is; a pid file lost in a crash is harmless,
        // so a directory that cannot be opened for that is no error.
        if let Ok(dir) = File::open(parent(&self.0)) {
            let _ = dir.sync_all();
        }
        Ok(Written(self.0))
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        // unlink(2) removes a link itself, never what it points to.
        let _ = std::fs::remove_file(&self.0);
    }
}

fn symlink_error(path: &Path) -> String {
    format!(
        "the pid file {} is a symbolic link; refusing to follow it",
        path.display()
    )
}

/// The pid in an existing regular file at `path`, opened without following a link (the file
/// may have been swapped for one since it was looked at).
fn read_pid(path: &Path) -> Result<Option<u32>, String> {
    let file = OpenOptions::new()
        .read(true)
        // O_NONBLOCK: a FIFO swapped in must not hang startup; it is refused below.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(symlink_error(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read the pid file {}: {e}", path.display())),
    };
    let is_file = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if !is_file {
        return Err(format!(
            "the pid file {} exists and is not a regular file",
            path.display()
        ));
    }
    let mut text = String::new();
    if file.take(MAX_LEN).read_to_string(&mut text).is_err() {
        return Ok(None);
    }
    Ok(text.trim().parse::<u32>().ok())
}

/// Creates `path` (which must not exist, not even as a link) with mode 0600 and `contents`,
/// flushed to disk.
fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    // The umask can only take bits away from 0600; this puts back any it took from the owner.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(contents)?;
    file.sync_all()
}

/// A name beside `path` for the file that is renamed over it: hidden, and unique to this
/// process and moment, so that two writers never share one.
fn temp_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Some(parent(path).join(format!(".{name}.{}.{nanos}.tmp", std::process::id())))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let p = std::env::temp_dir().join(format!(
                "switchyard-pidfile-{tag}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir(&p).unwrap();
            TempDir(p)
        }

        fn entries(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn pidfile_is_written_0600_and_removed() {
        let dir = TempDir::new("mode");
        let path = dir.0.join("sy.pid");
        let written = PidFile::check(&path).unwrap().write().unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        // Exactly 0600, whatever the umask of the test run (0644 under the usual 022 before).
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(written);
        assert!(dir.entries().is_empty());
    }

    #[test]
    fn pidfile_replace_is_atomic_and_leaves_no_temp_file() {
        let dir = TempDir::new("replace");
        let path = dir.0.join("sy.pid");
        // A stale pid file, readable by everyone and with a pid that cannot run.
        std::fs::write(&path, "4294967295\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let before = std::fs::metadata(&path).unwrap().ino();
        let written = PidFile::check(&path).unwrap().write().unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_ne!(meta.ino(), before, "the old file was rewritten in place");
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(dir.entries(), ["sy.pid"]);
        drop(written);
    }

    #[test]
    fn pidfile_symlink_is_refused_and_its_target_untouched() {
        let dir = TempDir::new("symlink");
        let target = dir.0.join("victim");
        std::fs::write(&target, "precious\n").unwrap();
        let path = dir.0.join("sy.pid");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = PidFile::check(&path).err().unwrap();
        assert!(
            e.contains("symbolic link") && e.contains(&*path.to_string_lossy()),
            "{e}"
        );
        // Planted after the check: write refuses it as well.
        let checked = PidFile(path.clone());
        let e = checked.write().err().unwrap();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
        assert!(std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(dir.entries(), ["sy.pid", "victim"]);
        // A dangling link (the classic way to make someone create a file elsewhere) too.
        let elsewhere = dir.0.join("created-elsewhere");
        let dangling = dir.0.join("dangling.pid");
        std::os::unix::fs::symlink(&elsewhere, &dangling).unwrap();
        assert!(PidFile::check(&dangling).is_err());
        assert!(!elsewhere.exists());
    }

    #[test]
    fn pidfile_of_a_running_process_or_not_a_file_is_refused() {
        let dir = TempDir::new("live");
        let path = dir.0.join("sy.pid");
        // pid 1 always runs.
        std::fs::write(&path, "1\n").unwrap();
        let e = PidFile::check(&path).err().unwrap();
        assert!(e.contains("names process 1"), "{e}");
        std::fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        assert!(PidFile::check(&path).is_ok());
        let sub = dir.0.join("a-dir.pid");
        std::fs::create_dir(&sub).unwrap();
        let e = PidFile::check(&sub).err().unwrap();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
