//! The results of the data methods (the JavaScript docs' Data page, docs/Data.md).

/// A stored value.
///
/// Mirrors the `data` (`{val}`) of JavaScript `dataGet`'s callback.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct DataValue {
    /// The value stored under the key; `None` when nothing is.
    pub val: Option<String>,
}
