//! Organisation key files: the one module of this crate that touches the disk.
//!
//! A key file holds the 32-byte ed25519 secret seed as 64 hex characters and a
//! newline. It is created with mode 0600 and refused when group or others can
//! read or write it: a key others could read is a key others could sign with.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write key file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} has mode {mode:04o}: group or others can access it; \
         run `chmod 600 {path}` (and consider the key leaked if others could read it)"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} is not 64 hexadecimal characters (an ed25519 secret seed)")]
    Format { path: PathBuf },
    #[error("cannot generate a key: the system's random source failed: {0}")]
    Random(String),
}

/// Generates a fresh key from the operating system's random source.
pub fn generate() -> Result<SigningKey, KeyFileError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyFileError::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a new key file with mode 0600; refuses to overwrite an existing file.
pub fn write_new(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let err = |source| KeyFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(format!("{}\n", hex::encode(key.to_bytes())).as_bytes())
        .map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(())
}

/// Reads a key file, refusing it if group or others have any access.
pub fn read(path: &Path) -> Result<SigningKey, KeyFileError> {
    let meta = fs::metadata(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let seed: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyFileError::Format {
            path: path.to_path_buf(),
        })?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_0600_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.key");
        let key = generate().unwrap();
        write_new(&path, &key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read(&path).unwrap().to_bytes(), key.to_bytes());
        assert!(write_new(&path, &key).is_err(), "overwrote an existing key");
    }

    #[test]
    fn readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.key");
        write_new(&path, &generate().unwrap()).unwrap();
        for mode in [0o640, 0o604, 0o660, 0o644] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = read(&path).unwrap_err();
            assert!(matches!(err, KeyFileError::Permissions { .. }), "{mode:o}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }
}
