//! The system API: the methods of the JavaScript docs' System page
//! (docs/System.md), plus the device push options of the JavaScript SDK.

use std::collections::HashMap;

use serde::Deserialize;

use super::decode::{answer, Empty};
use super::spec::{specs, Spec};
use crate::client::RtmClient;
use crate::error::RtmError;
use crate::types::DevicePushOption;
use crate::value::{self, MapBuilder};

specs! {
    ADD_ATTRS = "addattrs", Safe;
    GET_ATTRS = "getattrs", Safe;
    ADD_DEBUG_LOG = "adddebuglog", Never;
    ADD_DEVICE = "adddevice", Safe;
    REMOVE_DEVICE = "removedevice", Safe;
    ADD_OPTION = "addoption", Safe;
    REMOVE_OPTION = "removeoption", Safe;
    GET_OPTION = "getoption", Safe;
}

answer!(DevicePushOption);

/// The answer of `getattrs`: `{attrs: [{login, my, ...}]}`.
#[derive(Deserialize)]
struct Attrs {
    #[serde(default, deserialize_with = "super::de::nil_default")]
    attrs: Vec<HashMap<String, String>>,
}
impl From<Attrs> for Vec<HashMap<String, String>> {
    fn from(w: Attrs) -> Vec<HashMap<String, String>> {
        w.attrs
    }
}
answer!(Attrs => Vec<HashMap<String, String>>);

impl RtmClient {
    /// Adds attributes to the current connection (`addattrs {attrs}`); keys
    /// already set are replaced. Every connection of the user sees them in
    /// [`RtmClient::get_attrs`]. Mirrors JavaScript
    /// `addAttrs(attrs, timeout, callback)`. An empty `attrs` completes with
    /// 200033 without sending.
    pub fn add_attrs(
        &self,
        attrs: &HashMap<String, String>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if attrs.is_empty() {
            return self.reject("attrs must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("attrs", value::string_map(attrs))
            .build();
        self.quest::<Empty>(&ADD_ATTRS, payload, timeout, callback);
    }

    /// The attributes of each connection of the logged-in user (`getattrs
    /// {}`, answer `{attrs: [map]}`), one `HashMap` per connection. Mirrors
    /// JavaScript `getAttrs(timeout, callback)`.
    ///
    /// Each map holds the connection's attributes plus `login` (its login
    /// time) and `my`; on the local gate `login` is in milliseconds since the
    /// epoch and `my` is `"1"` on the asking connection's map and `"0"` on
    /// the others (docs/System.md).
    pub fn get_attrs(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<Vec<HashMap<String, String>>>) + Send + 'static,
    ) {
        self.quest::<Attrs>(&GET_ATTRS, MapBuilder::new().build(), timeout, callback);
    }

    /// Stores a debug log entry on the server (`adddebuglog {msg, attrs}`).
    /// Mirrors JavaScript `addDebugLog(msg, attrs, timeout, callback)`. An
    /// empty `msg` completes with 200033 without sending. Never resent after
    /// a reconnect (a second entry would be stored).
    pub fn add_debug_log(
        &self,
        msg: &str,
        attrs: &str,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if msg.is_empty() {
            return self.reject("msg must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("msg", msg)
            .put("attrs", attrs)
            .build();
        self.quest::<Empty>(&ADD_DEBUG_LOG, payload, timeout, callback);
    }

    /// Registers a device for push notifications (`adddevice {apptype,
    /// devicetoken}`). Mirrors JavaScript
    /// `addDevice(apptype, devicetoken, timeout, callback)`. An empty
    /// argument completes with 200033 without sending.
    pub fn add_device(
        &self,
        apptype: &str,
        devicetoken: &str,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if apptype.is_empty() || devicetoken.is_empty() {
            return self.reject("apptype and devicetoken must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("apptype", apptype)
            .put("devicetoken", devicetoken)
            .build();
        self.quest::<Empty>(&ADD_DEVICE, payload, timeout, callback);
    }

    /// Unregisters a device (`removedevice {devicetoken}`). Mirrors
    /// JavaScript `removeDevice(devicetoken, timeout, callback)`. An empty
    /// `devicetoken` completes with 200033 without sending.
    pub fn remove_device(
        &self,
        devicetoken: &str,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if devicetoken.is_empty() {
            return self.reject("devicetoken must not be empty", |e| e, callback);
        }
        let payload = MapBuilder::new().put("devicetoken", devicetoken).build();
        self.quest::<Empty>(&REMOVE_DEVICE, payload, timeout, callback);
    }

    /// Stops pushes to the user's devices for messages from a peer or a
    /// group (`addoption {type, xid, mtypes?}`). Mirrors JavaScript
    /// `addDevicePushOption(type, xid, mtypes, timeout, callback)`.
    ///
    /// `option_type` 0: `xid` is a peer uid; 1: a group id; any other value
    /// completes with 200033 without sending. `mtypes` `None` (or empty):
    /// every mtype.
    pub fn add_device_push_option(
        &self,
        option_type: u8,
        xid: i64,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.push_option(&ADD_OPTION, option_type, xid, mtypes, timeout, callback);
    }

    /// Lets pushes through again (`removeoption {type, xid, mtypes?}`):
    /// `mtypes` `None` (or empty) removes the whole option for `xid`.
    /// Mirrors JavaScript
    /// `removeDevicePushOption(type, xid, mtypes, timeout, callback)`.
    /// Arguments as [`RtmClient::add_device_push_option`].
    pub fn remove_device_push_option(
        &self,
        option_type: u8,
        xid: i64,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        self.push_option(&REMOVE_OPTION, option_type, xid, mtypes, timeout, callback);
    }

    /// The user's device push options (`getoption {}`, answer `{p2p: {xid:
    /// [mtype]}, group: {xid: [mtype]}}`); an empty list means every mtype.
    /// Mirrors JavaScript `getDevicePushOption(timeout, callback)`.
    pub fn get_device_push_option(
        &self,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<DevicePushOption>) + Send + 'static,
    ) {
        self.quest::<DevicePushOption>(&GET_OPTION, MapBuilder::new().build(), timeout, callback);
    }

    /// The shared path of `addoption` and `removeoption`.
    fn push_option(
        &self,
        spec: &'static Spec,
        option_type: u8,
        xid: i64,
        mtypes: Option<&[u8]>,
        timeout: u64,
        callback: impl FnOnce(Option<RtmError>, Option<()>) + Send + 'static,
    ) {
        if option_type > 1 {
            return self.reject("type must be 0 (p2p) or 1 (group)", |e| e, callback);
        }
        let payload = MapBuilder::new()
            .put("type", option_type)
            .put("xid", xid)
            .put_opt("mtypes", mtypes.map(value::u8_array))
            .build();
        self.quest::<Empty>(spec, payload, timeout, callback);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::decode::decode;
    use rmpv::Value;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    #[test]
    fn answers_decode() {
        let o = map(vec![
            (
                "p2p",
                Value::Map(vec![("7".into(), Value::Array(vec![30.into(), 31.into()]))]),
            ),
            ("group", Value::Map(vec![(8.into(), Value::Array(vec![]))])),
        ]);
        let o = decode::<DevicePushOption>("getoption", o).unwrap();
        assert_eq!(
            (o.p2p[&7].as_slice(), o.group[&8].as_slice()),
            (&[30, 31][..], &[][..])
        );
        let a = map(vec![(
            "attrs",
            Value::Array(vec![Value::Map(vec![("my".into(), "1".into())])]),
        )]);
        let a = decode::<Attrs>("getattrs", a).unwrap();
        assert_eq!(a[0]["my"], "1");
        assert!(
            decode::<Attrs>("getattrs", map(vec![("attrs", Value::Nil)]))
                .unwrap()
                .is_empty()
        );
        // An entry that cannot be read is skipped (docs/System.md).
        let bad = map(vec![(
            "p2p",
            Value::Map(vec![
                ("7".into(), Value::Array(vec![300.into()])),
                ("8".into(), Value::Array(vec![30.into()])),
            ]),
        )]);
        let o = decode::<DevicePushOption>("getoption", bad).unwrap();
        assert_eq!(o.p2p, [(8, vec![30])].into_iter().collect());
        assert!(decode::<DevicePushOption>("getoption", map(vec![("p2p", 1.into())])).is_err());
    }
}
