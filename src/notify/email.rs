//! Email over SMTP (lettre's blocking transport): STARTTLS or implicit TLS
//! through rustls (ring), or no TLS to a loopback relay only (the config
//! refuses anything else). One message per event and recipient; the
//! subject says what happened, the plain-text body gives the detail.

use super::events::Event;
use super::http::{Attempt, read_secret};
use crate::config::{Email, EventName, SmtpTls};
use crate::probe::CheckStatus;
use crate::state::Health;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Message, SmtpTransport, Transport};
use std::time::Duration;

/// A CA file bigger than this is not a CA bundle.
const MAX_CA_BYTES: u64 = 1 << 20;

/// Sends `e` to one recipient `to`, adding the password to `secrets`.
pub fn send(
    m: &Email,
    to: &str,
    e: &Event,
    timeout: Duration,
    secrets: &mut Vec<String>,
) -> Result<Attempt, Attempt> {
    let password = match &m.password_file {
        Some(file) => {
            let p = read_secret(file, "password_file")?;
            secrets.push(p.clone());
            Some(p)
        }
        None => None,
    };
    let parse = |a: &str, what: &str| {
        a.parse::<Mailbox>().map_err(|_| Attempt::Fail(format!("{what} is not a mail address")))
    };
    let message = Message::builder()
        .from(parse(&m.from, "from")?)
        .to(parse(to, "to")?)
        .subject(subject(e))
        .header(ContentType::TEXT_PLAIN)
        .body(body(e))
        .map_err(|err| Attempt::Fail(format!("cannot build the message: {err}")))?;
    let tls = match m.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls => Tls::Required(tls_parameters(m)?),
        SmtpTls::Implicit => Tls::Wrapper(tls_parameters(m)?),
    };
    let mut builder = SmtpTransport::builder_dangerous(m.host.as_str())
        .port(m.port)
        .tls(tls)
        .timeout(Some(timeout))
        .hello_name(ClientId::Domain(hello_name(&e.host)));
    if let (Some(user), Some(password)) = (&m.username, password) {
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(match builder.build().send(&message) {
        Ok(_) => Attempt::Sent,
        // 5xx: the server refused this message for good (bad address,
        // login refused): retrying will not help.
        Err(err) if err.is_permanent() => Attempt::Fail(format!("SMTP: {err}")),
        Err(err) if err.is_timeout() => {
            Attempt::Retry { why: super::http::no_answer(timeout), after: None }
        }
        Err(err) => Attempt::Retry { why: format!("SMTP: {}", error_text(&err)), after: None },
    })
}

/// The error and its causes, one line ("connection refused" is in the source).
fn error_text(err: &lettre::transport::smtp::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(more.split(" (os error").next().unwrap_or_default());
        }
        source = s.source();
    }
    text
}

/// rustls settings: the built-in roots, or only the `ca_file`'s.
fn tls_parameters(m: &Email) -> Result<TlsParameters, Attempt> {
    let mut b = TlsParameters::builder(m.host.clone());
    match &m.ca_file {
        Some(file) => {
            let pem =
                crate::fsutil::read_regular(file, MAX_CA_BYTES).map_err(|err| Attempt::Retry {
                    why: format!(
                        "cannot read ca_file {}: {}",
                        file.display(),
                        super::http::io_text(&err)
                    ),
                    after: None,
                })?;
            let cert = Certificate::from_pem(&pem).map_err(|_| {
                Attempt::Fail(format!("ca_file {}: no PEM certificate in it", file.display()))
            })?;
            b = b.certificate_store(CertificateStore::None).add_root_certificate(cert);
        }
        None => b = b.certificate_store(CertificateStore::WebpkiRoots),
    }
    b.build_rustls().map_err(|err| Attempt::Fail(format!("TLS settings: {err}")))
}

/// EHLO wants a domain: the host name if it is one, else `localhost`.
fn hello_name(host: &str) -> String {
    let ok = !host.is_empty()
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok { host.to_string() } else { "localhost".to_string() }
}

/// What the service is now, in the subject's capitals.
pub fn state_word(e: &Event) -> String {
    match e.event {
        EventName::Down => "DOWN".into(),
        EventName::Up if e.status == Health::Degraded => "DEGRADED".into(),
        EventName::Up => "UP".into(),
        EventName::Degraded => "DEGRADED".into(),
        EventName::Reminder => "STILL DOWN".into(),
        EventName::Restart if e.restart_ok == Some(false) => "DOWN (restart failed)".into(),
        EventName::Restart => "RESTARTED".into(),
        EventName::HealSuspended => "DOWN (healing suspended)".into(),
        EventName::Test => "OK (test notification)".into(),
        EventName::Flapping => "FLAPPING".into(),
        EventName::FlappingEnded => "STEADY again".into(),
        EventName::Rebooted => "REBOOTED".into(),
    }
}

/// `[chatstack-status] <SERVICE> is <DOWN|UP|…> on <HOST>`.
pub fn subject(e: &Event) -> String {
    format!("[chatstack-status] {}", title(e))
}

/// `<SERVICE> is <DOWN|UP|…> on <HOST>` (also ntfy's title).
pub fn title(e: &Event) -> String {
    format!("{} is {} on {}", e.service, state_word(e), e.host)
}

/// The plain-text message: the event's line, when, every check that is not
/// up with its reason and detail, then the incident's diagnosis (unit,
/// journal, host) when there is one.
pub fn body(e: &Event) -> String {
    let mut out = format!("{}\n\n", e.text);
    out.push_str(&format!(
        "Service:  {}\nHost:     {}\nEvent:    {}\n",
        e.service,
        e.host,
        e.event.as_str()
    ));
    out.push_str(&format!("Status:   {}\n", e.status.as_str()));
    if let Some(since) = e.since {
        out.push_str(&format!("Since:    {since}\n"));
    }
    out.push_str(&format!("At:       {}\n", e.at));
    let failing: Vec<_> = e.checks.iter().filter(|c| c.status != CheckStatus::Up).collect();
    if !failing.is_empty() {
        out.push_str("\nChecks not up:\n");
        for c in failing {
            let reason = c.reason.map(|r| format!(" ({})", r.as_str())).unwrap_or_default();
            out.push_str(&format!(
                "- {} {}: {}{reason}: {}\n",
                c.kind,
                c.target,
                c.status.as_str(),
                c.detail
            ));
        }
    } else if !e.detail.is_empty() && e.detail != e.text {
        out.push_str(&format!("\nDetail: {}\n", e.detail));
    }
    if !e.also_affected.is_empty() {
        out.push_str(&format!("\nAlso affected: {}\n", e.also_affected.join(", ")));
    }
    if let Some(d) = &e.diagnosis {
        out.push_str("\nDiagnosis:\n");
        out.push_str(super::diagnosis_text::plain_text(d).trim_end());
        out.push('\n');
    }
    out.push_str("\n-- \nchatstack-status\n");
    out
}
