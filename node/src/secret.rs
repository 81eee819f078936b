//! Secrets the node reads from files of their own (the OpenID client
//! secret, the metrics token): the file readable by its owner only, as
//! the organisation's key is (`keyfile`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The file's first line, trimmed; refused if group or others may read
/// the file, or if the line is empty. The error says why, for the caller
/// to name the setting.
pub fn read(path: &Path) -> Result<String, String> {
    let mode = std::fs::metadata(path)
        .map_err(|e| e.to_string())?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "it may be read by others (mode {:o}): run  chmod 600 {}",
            mode & 0o777,
            path.display()
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let secret = text.lines().next().unwrap_or("").trim().to_string();
    if secret.is_empty() {
        return Err("it is empty".into());
    }
    Ok(secret)
}
