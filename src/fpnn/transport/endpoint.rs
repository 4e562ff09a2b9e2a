//! Endpoints: `host:port` or a `ws://`/`wss://` URL, parsed once.

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `wss` when true.
    pub tls: bool,
}

impl Endpoint {
    /// Parses `host:port`, `[v6]:port`, or a `ws://` / `wss://` URL (its path
    /// is ignored). `tls` applies to the `host:port` form.
    pub fn parse(s: &str, tls: bool) -> Option<Endpoint> {
        let (rest, tls) = if let Some(r) = s.strip_prefix("wss://") {
            (r, true)
        } else if let Some(r) = s.strip_prefix("ws://") {
            (r, false)
        } else {
            (s, tls)
        };
        let hostport = rest.split('/').next().unwrap_or("");
        let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
            let (h, p) = r.split_once("]:")?;
            (h, p)
        } else {
            hostport.rsplit_once(':')?
        };
        if host.is_empty() || (host.contains(':') && !hostport.starts_with('[')) {
            return None;
        }
        let port: u16 = port.parse().ok()?;
        if port == 0 {
            return None;
        }
        Some(Endpoint {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "wss" } else { "ws" };
        write!(f, "{scheme}://{}", self.host_header())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("example.com:13321", false).unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("example.com", 13321, false)
        );
        assert!(Endpoint::parse("wss://h:1/service/x", false).unwrap().tls);
        let v6 = Endpoint::parse("[::1]:80", true).unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 80));
        assert_eq!(v6.host_header(), "[::1]:80");
        for bad in [
            "", "host", "host:", ":80", "h:0", "h:99999", "::1:80", "h:x",
        ] {
            assert_eq!(Endpoint::parse(bad, false), None, "{bad}");
        }
    }
}
