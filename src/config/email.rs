//! The `email` notifier's settings, judged at load: an SMTP host and port,
//! how the connection is secured (never in clear over a network), the
//! addresses (parsed as mail addresses), a login only with its password
//! file, and an optional CA file.

use super::Validator;
use super::notifier::{Email, SmtpTls};
use super::raw::RawNotifier;
use serde_saphyr::Location;
use std::net::IpAddr;

/// A CA file bigger than this is not a CA bundle.
const MAX_CA_BYTES: u64 = 1 << 20;

/// Whether `host` names this machine only: `localhost` or a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.to_ascii_lowercase().ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Validator<'_> {
    pub(super) fn email(&mut self, loc: &Location, r: &RawNotifier) -> Option<Email> {
        let before = self.problems.len();
        let Some(smtp) = &r.smtp else {
            self.at(loc, "notifier of type email needs `smtp` ({host, port, tls})");
            return None;
        };
        let host = smtp.value.host.value.trim().to_string();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
            self.at(&smtp.value.host.referenced, "smtp.host: expected a host name or address");
        }
        let tls = smtp.value.tls.unwrap_or(SmtpTls::Starttls);
        if tls == SmtpTls::None && !is_loopback(&host) {
            self.at(
                &smtp.referenced,
                format!("smtp: tls: none is allowed only to a loopback host (localhost, 127.0.0.1, ::1), not {host:?}: expected starttls or implicit (no credentials or alerts in clear over a network)"),
            );
        }
        let port = match smtp.value.port {
            Some(0) => {
                self.at(&smtp.referenced, "smtp.port: expected 1-65535");
                0
            }
            Some(p) => p,
            None => match tls {
                SmtpTls::Starttls => 587,
                SmtpTls::Implicit => 465,
                SmtpTls::None => 25,
            },
        };
        match &r.from {
            None => self.at(loc, "notifier of type email needs `from`"),
            Some(f) if f.parse::<lettre::message::Mailbox>().is_err() => self.at(
                loc,
                format!("from: {f:?} is not a mail address: expected \"Name <user@example.com>\" or user@example.com"),
            ),
            Some(_) => {}
        }
        let to = r.to.clone().unwrap_or_default();
        if to.is_empty() {
            self.at(loc, "notifier of type email needs `to` (a list of addresses)");
        }
        for t in &to {
            if t.parse::<lettre::message::Mailbox>().is_err() {
                self.at(loc, format!("to: {t:?} is not a mail address: expected user@example.com"));
            }
        }
        if r.username.is_some() != r.password_file.is_some() {
            self.at(
                loc,
                "email: `username` and `password_file` go together: expected both or neither",
            );
        }
        if let Some(ca) = &r.ca_file {
            let pem = crate::fsutil::read_regular(ca, MAX_CA_BYTES);
            let ok = match &pem {
                Ok(bytes) => {
                    lettre::transport::smtp::client::Certificate::from_pem(bytes).is_ok()
                        && bytes.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----")
                }
                Err(_) => false,
            };
            if !ok {
                let why = match pem {
                    Err(e) => {
                        e.to_string().split(" (os error").next().unwrap_or_default().to_string()
                    }
                    Ok(_) => "no PEM certificate in it".to_string(),
                };
                self.at(loc, format!("ca_file {}: {why}", ca.display()));
            }
        }
        if self.problems.len() != before {
            return None;
        }
        Some(Email {
            host,
            port,
            tls,
            username: r.username.clone(),
            password_file: r.password_file.clone(),
            from: r.from.clone().unwrap_or_default(),
            to,
            ca_file: r.ca_file.clone(),
        })
    }
}
