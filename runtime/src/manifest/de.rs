//! A string deserialized through a parse function: how the manifest's checked newtypes
//! (connect entries, rule URLs, listen and UDP entries, sizes) read their text with its
//! position kept for errors. Its own file so that the types of each section and the raw
//! manifest that holds them can share it without depending on each other.

use serde::de::{self, Deserializer, Visitor};

/// Deserializes a string through `parse`; `expecting` is what any other type is told. `parse`
/// runs inside the deserializer, so its error carries the value's position.
pub(crate) fn from_str<'de, D, T, F>(d: D, expecting: &'static str, parse: F) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: FnOnce(&str) -> Result<T, String>,
{
    struct V<F>(&'static str, F);
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
            (self.1)(s).map_err(E::custom)
        }
    }
    d.deserialize_str(V(expecting, parse))
}
