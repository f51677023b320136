//! Reading a JSON object whose `type` (or `strategy`) names an enum's variant through
//! one flat struct of every field any variant has, then building the variant by hand:
//! serde's own reading of internally tagged enums buffers each object to read it
//! again, which doubled the reading code of every type inside an event in the page.
//! `ClusterEvent`, `StreamMessage` and `DowningStrategy` are read this way; this is
//! the one rule they share.

/// A field the variant needs, or the error that names it.
pub(crate) fn required<T>(field: Option<T>, name: &str) -> Result<T, String> {
    field.ok_or_else(|| format!("missing field `{name}`"))
}
