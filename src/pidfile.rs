//! The optional pid file: written once the proxy serves, removed when it exits, and refused
//! when it names a process that is still running.

use std::path::{Path, PathBuf};

/// A pid file path, checked and not yet written.
pub struct PidFile(PathBuf);

/// A written pid file; removed when dropped.
pub struct Written(PathBuf);

impl PidFile {
    /// Refuses a pid file that names a live process (another Switchyard, most likely); a stale
    /// one is overwritten later.
    pub fn check(path: &Path) -> Result<PidFile, String> {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<u32>() {
                if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists() {
                    return Err(format!(
                        "the pid file {} names process {pid}, which is running: is another \
                         Switchyard using it?",
                        path.display()
                    ));
                }
            }
        }
        Ok(PidFile(path.to_path_buf()))
    }

    pub fn write(self) -> Result<Written, String> {
        std::fs::write(&self.0, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write the pid file {}: {e}", self.0.display()))?;
        Ok(Written(self.0))
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
