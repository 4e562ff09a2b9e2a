//! The data area: `dataset`, `dataget`, `datadel`, a key-value store per user. Keys are
//! non-empty str of at most 128 bytes (200033 otherwise); values are str of at most
//! 65,535 bytes (200030 beyond, 200033 when missing or not a str).

use std::collections::HashMap;

use rmpv::Value;

use super::{obj, sized_str, Args, Ctx, GateError, Project, Route};

/// The longest key, in bytes.
const MAX_KEY_BYTES: usize = 128;

pub(super) const ROUTES: &[Route] = &[
    Route::user("dataset", set),
    Route::user("dataget", |p, ctx, a| {
        let key = key(a)?;
        let val = p.data.0.get(&ctx.uid).and_then(|m| m.get(key));
        Ok(obj(val.map(|v| ("val", v.as_str().into()))))
    }),
    Route::user("datadel", |p, ctx, a| {
        let key = key(a)?;
        if let Some(m) = p.data.0.get_mut(&ctx.uid) {
            m.remove(key);
        }
        Ok(obj([]))
    }),
];

/// Every user's values, by uid then key.
#[derive(Debug, Default)]
pub(super) struct State(HashMap<i64, HashMap<String, String>>);

/// The `key`: a non-empty str of at most [`MAX_KEY_BYTES`] bytes, or 200033.
fn key(a: Args<'_>) -> Result<&str, GateError> {
    a.req("key", |v| {
        v.as_str()
            .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_BYTES)
    })
}

/// `dataset {key, val}`: stores or replaces; `{}`.
fn set(p: &mut Project, ctx: &mut Ctx, a: Args) -> Result<Value, GateError> {
    let key = key(a)?.to_owned();
    let val = a.req("val", sized_str)??;
    p.data.0.entry(ctx.uid).or_default().insert(key, val);
    Ok(obj([]))
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;

    #[test]
    fn values_per_user_with_size_limits() {
        let mut g = Gate::new();
        let (a, b) = (g.login(A), g.login(B));
        assert_eq!(g.ok(a, "dataget", map! {"key": "k"}), map! {});
        g.ok(a, "dataset", map! {"key": "k", "val": "v1"});
        g.ok(a, "dataset", map! {"key": "k", "val": "v2"});
        assert_eq!(g.ok(a, "dataget", map! {"key": "k"}), map! {"val": "v2"});
        assert_eq!(g.ok(b, "dataget", map! {"key": "k"}), map! {});
        g.ok(a, "datadel", map! {"key": "k"});
        g.ok(a, "datadel", map! {"key": "k"});
        assert_eq!(g.ok(a, "dataget", map! {"key": "k"}), map! {});

        let k128 = "k".repeat(128);
        g.ok(
            a,
            "dataset",
            o([("key", k128.as_str().into()), ("val", "".into())]),
        );
        assert_eq!(
            g.ok(a, "dataget", o([("key", k128.into())])),
            map! {"val": ""}
        );
        let k129 = "k".repeat(129);
        for m in ["dataget", "datadel"] {
            assert_eq!(
                g.err(a, m, o([("key", k129.as_str().into())])),
                EMPTY_PARAMETER
            );
            assert_eq!(g.err(a, m, map! {"key": ""}), EMPTY_PARAMETER);
        }
        assert_eq!(
            g.err(a, "dataset", o([("key", k129.into()), ("val", "v".into())])),
            EMPTY_PARAMETER
        );
        assert_eq!(g.err(a, "dataset", map! {"key": "k"}), EMPTY_PARAMETER);
        let big = o([("key", "k".into()), ("val", "v".repeat(65_536).into())]);
        assert_eq!(g.err(a, "dataset", big), LARGE_MESSAGE_OR_ATTRS);
        g.ok(
            a,
            "dataset",
            o([("key", "k".into()), ("val", "v".repeat(65_535).into())]),
        );
    }
}
