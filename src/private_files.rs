//! Files and folders that hold personal data or keys (the embedded store, mail written
//! to a folder, generated keys): readable by the service's own user only, whatever the
//! umask says.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Owner read and write.
pub const FILE_MODE: u32 = 0o600;
/// Owner only.
pub const FOLDER_MODE: u32 = 0o700;
/// Any permission for the group or others.
const SHARED_BITS: u32 = 0o077;

/// Writes a new file, mode 0600 from its first byte; an existing file is never replaced.
pub fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.write_all(contents)
}

/// Creates `path` and its missing parents, each mode 0700. An existing folder is left as
/// it is: it may be shared on purpose (`/tmp`), and the files optin writes in it are
/// private anyway. `true` when it exists but others may read it, for a warning.
pub fn create_folder(path: &Path) -> std::io::Result<bool> {
    DirBuilder::new()
        .recursive(true)
        .mode(FOLDER_MODE)
        .create(path)?;
    Ok(std::fs::metadata(path)?.permissions().mode() & SHARED_BITS != 0)
}

/// Makes sure the file at `path` exists and only its owner may read it: a missing file
/// is created empty with mode 0600, an existing one that others could read is tightened
/// to 0600. Answers the mode it had when it was tightened, so the caller can say so.
pub fn restrict_file(path: &Path) -> std::io::Result<Option<u32>> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    let mode = file.metadata()?.permissions().mode() & 0o777;
    if mode & SHARED_BITS == 0 {
        return Ok(None);
    }
    file.set_permissions(Permissions::from_mode(mode & !SHARED_BITS))?;
    Ok(Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_and_folders_are_private_and_loose_files_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a/b");
        assert!(!create_folder(&folder).unwrap());
        assert_eq!(mode(&folder), FOLDER_MODE);
        assert_eq!(mode(&dir.path().join("a")), FOLDER_MODE);

        let new = folder.join("new");
        write_new(&new, b"secret").unwrap();
        assert_eq!(mode(&new), FILE_MODE);
        assert!(write_new(&new, b"again").is_err(), "never replaced");

        let created = folder.join("created");
        assert_eq!(restrict_file(&created).unwrap(), None);
        assert_eq!(mode(&created), FILE_MODE);

        let loose = folder.join("loose");
        std::fs::write(&loose, b"data").unwrap();
        std::fs::set_permissions(&loose, Permissions::from_mode(0o644)).unwrap();
        assert_eq!(restrict_file(&loose).unwrap(), Some(0o644));
        assert_eq!(mode(&loose), FILE_MODE);
        assert_eq!(std::fs::read(&loose).unwrap(), b"data", "contents kept");

        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, Permissions::from_mode(0o755)).unwrap();
        assert!(create_folder(&shared).unwrap(), "reported, not changed");
        assert_eq!(mode(&shared), 0o755);
    }
}
