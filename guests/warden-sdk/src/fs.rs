//! Files inside the manifest's `[[files]]` grants, with errors that name the path.
//!
//! These are `std::fs` calls; the difference is the error, which says which path failed.
//! Outside every grant a path does not exist (`NotFound`); writing into a `read` grant fails
//! with a permission error.

use std::path::Path;

use crate::Error;

/// Reads a whole file as UTF-8.
///
/// # Errors
///
/// [`Error::Io`] naming `path`.
pub fn read_to_string(path: impl AsRef<Path>) -> Result<String, Error> {
    let path = path.as_ref();
    std::fs::read_to_string(path).map_err(|source| io(path, source))
}

/// Reads a whole file.
///
/// # Errors
///
/// [`Error::Io`] naming `path`.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<u8>, Error> {
    let path = path.as_ref();
    std::fs::read(path).map_err(|source| io(path, source))
}

/// Writes a whole file, creating or truncating it.
///
/// # Errors
///
/// [`Error::Io`] naming `path`.
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> Result<(), Error> {
    let path = path.as_ref();
    std::fs::write(path, contents).map_err(|source| io(path, source))
}

/// Creates a folder and its missing parents.
///
/// # Errors
///
/// [`Error::Io`] naming `path`.
pub fn create_dir_all(path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    std::fs::create_dir_all(path).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}
