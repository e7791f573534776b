//! `vscout check` for the collector: name resolution, TCP, TLS trust (with the thumbprint
//! presented), the agent's credentials, and the clock skew from the collector's `Date`.

use std::time::Duration;

use super::{CheckResult, Status};
use crate::config::{CollectorConfig, TlsPolicy};
use crate::tls::{self, SeenThumbprint};

fn row(check: &'static str, status: Status, detail: String) -> CheckResult {
    CheckResult {
        target: "collector".into(),
        check,
        status,
        detail,
    }
}

/// Every collector check, in order; a failure ends the list (later checks need it).
pub(super) async fn checks(c: &CollectorConfig) -> Vec<CheckResult> {
    let mut out = Vec::new();
    if !super::reach("collector", &c.url, &mut out).await {
        return out;
    }
    let seen = SeenThumbprint::default();
    let http = match tls::client_config(&c.tls, seen.clone(), c.identity.as_ref()).and_then(|t| {
        reqwest::Client::builder()
            .tls_backend_preconfigured(t)
            .timeout(c.request_timeout.min(Duration::from_secs(30)))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())
    }) {
        Ok(h) => h,
        Err(e) => {
            out.push(row("tls", Status::Fail, e));
            return out;
        }
    };
    let presented = || {
        seen.lock()
            .ok()
            .and_then(|g| *g)
            .map(|d| tls::format_thumbprint(&d))
            .unwrap_or_else(|| "none".into())
    };
    let health = c.url.join("v1/health").map_err(|e| e.to_string());
    let resp = match health {
        Ok(u) => http.get(u).send().await,
        Err(e) => {
            out.push(row("tls", Status::Fail, e));
            return out;
        }
    };
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            let reason = crate::telemetry::error_chain(&e).join(": ");
            out.push(row("tls", Status::Fail, format!("{reason}; the collector presented SHA-256 {}; fix: pin it (collector.tls.thumbprint_sha256) if it is the collector's, or set collector.tls.ca_file", presented())));
            return out;
        }
    };
    let how = match &c.tls {
        TlsPolicy::Verify { .. } => "chain verified",
        TlsPolicy::Pinned { .. } => "pinned thumbprint matched",
        TlsPolicy::Insecure => "NOT verified (tls.insecure)",
    };
    let tls_status = if matches!(c.tls, TlsPolicy::Insecure) {
        Status::Warn
    } else {
        Status::Pass
    };
    out.push(row(
        "tls",
        tls_status,
        format!("{how}; SHA-256 {}", presented()),
    ));
    let date = resp
        .headers()
        .get("date")
        .and_then(|d| d.to_str().ok())
        .map(str::to_owned);
    out.push(auth(&http, c).await);
    out.push(clock(date.as_deref()));
    out
}

/// Credentials: an authenticated read.
async fn auth(http: &reqwest::Client, c: &CollectorConfig) -> CheckResult {
    let mut req = http.get(
        c.url
            .join("v1/stats")
            .map_err(|e| e.to_string())
            .unwrap_or_else(|_| c.url.clone()),
    );
    if let Some(t) = &c.token {
        req = req.bearer_auth(t.expose());
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => row(
            "auth",
            Status::Pass,
            match (&c.token, &c.identity) {
                (Some(_), Some(_)) => "token and client certificate accepted".into(),
                (Some(_), None) => "token accepted".into(),
                _ => "client certificate accepted".into(),
            },
        ),
        Ok(r) => {
            let code = r.status().as_u16();
            let mut msg = r.text().await.unwrap_or_default();
            msg.truncate(200);
            row("auth", Status::Fail, format!("the collector answered {code}: {msg}; fix: issue a token with `vscout-collector token add NAME` and put it in collector.token_file (or use a client certificate its client_ca_file trusts)"))
        }
        Err(e) => row("auth", Status::Fail, e.to_string()),
    }
}

/// The collector's clock against this machine's, from its `Date` header.
fn clock(date: Option<&str>) -> CheckResult {
    match date.and_then(parse_http_date) {
        Some(t) => {
            let skew = t - crate::telemetry::unix_now_ms() / 1000;
            if skew.abs() > 300 {
                row("clock", Status::Warn, format!("the collector's clock differs from this machine's by {skew} s: fix NTP on one of them"))
            } else {
                row("clock", Status::Pass, format!("skew {skew} s"))
            }
        }
        None => row(
            "clock",
            Status::Warn,
            "the collector sent no usable Date header".into(),
        ),
    }
}

/// Parses an IMF-fixdate (`Sun, 22 Nov 2026 03:20:00 GMT`) into Unix seconds.
pub(super) fn parse_http_date(text: &str) -> Option<i64> {
    let mut it = text.split_whitespace().skip(1);
    let day: i64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let iso = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z");
    crate::vsphere::datetime::parse_unix_secs(&iso)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates() {
        assert_eq!(
            super::parse_http_date("Thu, 01 Jan 1970 00:01:40 GMT"),
            Some(100)
        );
        assert_eq!(
            super::parse_http_date("Sun, 22 Nov 2026 03:20:00 GMT"),
            crate::vsphere::datetime::parse_unix_secs("2026-11-22T03:20:00Z")
        );
        assert_eq!(super::parse_http_date("yesterday"), None);
    }
}
