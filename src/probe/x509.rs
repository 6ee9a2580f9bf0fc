//! Just enough DER to read an X.509 certificate's `notAfter` and subject,
//! and just enough PEM to find certificates in a CA bundle.
//!
//! The chain comes from the server, so this reader treats every byte as
//! hostile: lengths are checked against what is left, nothing recurses
//! deeper than the certificate's fixed shape, and the subject is cut to a
//! readable length without control characters. It does not verify anything —
//! rustls (webpki) does that; this only reads what the operator is shown.
//! ~150 lines here instead of an X.509 crate (x509-parser pulls in nom,
//! der-parser, asn1-rs, time …) for two fields.
//!
//! The PEM reader exists for speed: rustls-pki-types decodes base64 with a
//! branch-free (constant-time) routine meant for private keys, which took
//! 5.7 M of the 8.7 M instructions of loading the 220 KB system bundle, a
//! third of a one-shot `check` of 4 https targets. Roots are public, so the
//! plain `base64` decoder (already linked) does it here.

use crate::time::Timestamp;

/// What we show about one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    pub not_after: Timestamp,
    /// The subject as `CN=…, O=…` in encoded order (cut to `MAX_SUBJECT` chars).
    pub subject: String,
}

/// A subject longer than this is cut: it goes into one-line details.
pub const MAX_SUBJECT: usize = 160;

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const PEM_END: &[u8] = b"-----END CERTIFICATE-----";

/// The DER of every `CERTIFICATE` block of a PEM text, in order (other
/// blocks and text between them are skipped, as OpenSSL does). A block whose
/// base64 is broken, or that never ends, is an error naming the block.
pub fn pem_certificates(text: &[u8]) -> Vec<Result<Vec<u8>, String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = find_dashes(rest, PEM_BEGIN) {
        let n = out.len() + 1;
        let body = &rest[at + PEM_BEGIN.len()..];
        // One pass: base64 up to the first '-', which must start the END line.
        let Some((der, end)) = base64_until_dash(body) else {
            out.push(Err(format!("certificate {n}: broken base64")));
            match find_dashes(body, PEM_END) {
                Some(e) => rest = &body[e..],
                None => break,
            }
            continue;
        };
        if !body[end..].starts_with(PEM_END) {
            out.push(Err(format!("certificate {n}: no END CERTIFICATE line")));
            rest = &body[end..];
            continue;
        }
        out.push(Ok(der));
        rest = &body[end + PEM_END.len()..];
    }
    out
}

/// Where `marker` (which starts with '-') next occurs.
fn find_dashes(hay: &[u8], marker: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(p) = hay[from..].iter().position(|&b| b == b'-') {
        if hay[from + p..].starts_with(marker) {
            return Some(from + p);
        }
        from += p + 1;
    }
    None
}

/// The first '-' (or the end), 16 bytes at a time: the compiler turns the
/// fixed-size `any` into vector compares, unlike an early-exit `position`.
fn first_dash(text: &[u8]) -> usize {
    let mut at = 0;
    for chunk in text.chunks_exact(16) {
        if chunk.iter().fold(false, |seen, &b| seen | (b == b'-')) {
            break;
        }
        at += 16;
    }
    at + text[at..].iter().position(|&b| b == b'-').unwrap_or(text.len() - at)
}

/// Decodes standard base64 (whitespace skipped, `=` padding optional) up
/// to the first '-' or the end: (bytes, where it stopped). None on any other
/// byte, on data after padding, or on a length no encoder produces.
fn base64_until_dash(text: &[u8]) -> Option<(Vec<u8>, usize)> {
    use base64::Engine as _;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let stop = first_dash(text);
    let compact: Vec<u8> = text[..stop]
        .iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    // Padding is optional, but when given it must be whole ("QQ==", not "QQ=").
    if compact.last() == Some(&b'=') && !compact.len().is_multiple_of(4) {
        return None;
    }
    ENGINE.decode(compact).ok().map(|der| (der, stop))
}

/// Base64 of a whole text (tests and fuzzing).
#[cfg(test)]
fn base64_decode(text: &[u8]) -> Option<Vec<u8>> {
    match base64_until_dash(text) {
        Some((bytes, end)) if end == text.len() => Some(bytes),
        _ => None,
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version` at the start of a v2/v3 TBSCertificate.
const VERSION_TAG: u8 = 0xa0;

/// Reads `notAfter` and the subject of a DER certificate.
pub fn summarize(der: &[u8]) -> Result<CertSummary, &'static str> {
    let (tag, cert, _) = tlv(der)?;
    expect(tag, SEQUENCE, "certificate is not a SEQUENCE")?;
    let (tag, tbs, _) = tlv(cert)?;
    expect(tag, SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == VERSION_TAG {
        rest = after;
    }
    // serialNumber, signature, issuer: skipped.
    for what in ["serialNumber missing", "signature missing", "issuer missing"] {
        let (_, _, after) = tlv(rest).map_err(|_| what)?;
        rest = after;
    }
    let (tag, validity, after) = tlv(rest)?;
    expect(tag, SEQUENCE, "validity is not a SEQUENCE")?;
    rest = after;
    let (_, _, v) = tlv(validity).map_err(|_| "notBefore missing")?;
    let (tag, not_after, _) = tlv(v).map_err(|_| "notAfter missing")?;
    let not_after = time(tag, not_after)?;
    let (tag, subject, _) = tlv(rest).map_err(|_| "subject missing")?;
    expect(tag, SEQUENCE, "subject is not a SEQUENCE")?;
    Ok(CertSummary { not_after, subject: name(subject)? })
}

fn expect(tag: u8, want: u8, err: &'static str) -> Result<(), &'static str> {
    if tag == want { Ok(()) } else { Err(err) }
}

/// One tag-length-value: (tag, contents, what follows). Single-byte tags,
/// definite lengths of at most 4 bytes (DER forbids the indefinite form).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), &'static str> {
    let [tag, first, rest @ ..] = input else { return Err("truncated") };
    if tag & 0x1f == 0x1f {
        return Err("multi-byte tag");
    }
    let (len, rest) = match *first {
        n @ 0..=0x7f => (usize::from(n), rest),
        0x80 => return Err("indefinite length"),
        n => {
            let bytes = usize::from(n & 0x7f);
            if bytes > 4 || rest.len() < bytes {
                return Err("bad length");
            }
            let len = rest[..bytes].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[bytes..])
        }
    };
    if rest.len() < len {
        return Err("truncated");
    }
    Ok((*tag, &rest[..len], &rest[len..]))
}

/// UTCTime `YYMMDDHHMMSSZ` (50-99 → 19xx, RFC 5280) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, the only forms RFC 5280 allows.
fn time(tag: u8, v: &[u8]) -> Result<Timestamp, &'static str> {
    let digits = |r: std::ops::Range<usize>| -> Result<i64, &'static str> {
        let part = v.get(r).ok_or("bad time")?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err("bad time");
        }
        Ok(part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let (year, at) = match (tag, v.len()) {
        (UTC_TIME, 13) => {
            let yy = digits(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (GENERALIZED_TIME, 15) => (digits(0..4)?, 4),
        (UTC_TIME | GENERALIZED_TIME, _) => return Err("time not in RFC 5280 form"),
        _ => return Err("notAfter is not a time"),
    };
    if v.last() != Some(&b'Z') {
        return Err("time not in UTC");
    }
    let (mo, d) = (digits(at..at + 2)?, digits(at + 2..at + 4)?);
    let (h, mi, s) = (digits(at + 4..at + 6)?, digits(at + 6..at + 8)?, digits(at + 8..at + 10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err("time out of range");
    }
    Ok(Timestamp::from_civil(year, mo, d, h, mi, s))
}

/// A Name (SEQUENCE OF SET OF AttributeTypeAndValue) as `CN=a, O=b`.
fn name(mut rdns: &[u8]) -> Result<String, &'static str> {
    let mut parts: Vec<String> = Vec::new();
    while !rdns.is_empty() {
        let (tag, set, after) = tlv(rdns)?;
        expect(tag, SET, "name part is not a SET")?;
        rdns = after;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (tag, atv, after) = tlv(atvs)?;
            expect(tag, SEQUENCE, "attribute is not a SEQUENCE")?;
            atvs = after;
            let (tag, oid, value) = tlv(atv)?;
            expect(tag, OID, "attribute type is not an OID")?;
            let (vtag, value, _) = tlv(value)?;
            parts.push(format!("{}={}", attribute_name(oid), string(vtag, value)));
        }
    }
    let full = parts.join(", ");
    let mut out: String = full
        .chars()
        .filter(|c| !crate::text::is_control_or_format(*c))
        .take(MAX_SUBJECT)
        .collect::<String>();
    if full.chars().count() > MAX_SUBJECT {
        out.push('…');
    }
    Ok(out)
}

/// Short names of the usual attributes; others as a dotted OID.
fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        _ => dotted(oid),
    }
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = acc.saturating_mul(128) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.extend([first, acc - first * 40]);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        }
    }
    let text: Vec<String> = arcs.iter().map(u64::to_string).collect();
    if text.is_empty() { "?".into() } else { text.join(".") }
}

/// The directory string types certificates use.
fn string(tag: u8, v: &[u8]) -> String {
    match tag {
        // UTF8String, PrintableString, IA5String, VisibleString, NumericString
        0x0c | 0x13 | 0x16 | 0x1a | 0x12 => String::from_utf8_lossy(v).into_owned(),
        // TeletexString: in practice Latin-1.
        0x14 => v.iter().map(|&b| char::from(b)).collect(),
        // BMPString: UTF-16BE.
        0x1e => char::decode_utf16(v.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])))
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect(),
        // UniversalString: UTF-32BE.
        0x1c => v
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        _ => "?".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Made with openssl 3.0: `openssl req -x509 -newkey ec -pkeyopt
    /// ec_paramgen_curve:prime256v1 -nodes -days 8400 -subj "/C=DE/O=Chat
    /// Stack/CN=leadflow.example"`; `openssl x509 -enddate` says
    /// "Nov 30 09:02:32 2049 GMT" (a UTCTime).
    pub(crate) const OPENSSL_2049: &str = "\
MIIB7TCCAZKgAwIBAgIUfis8leJ4IoNWMVkEw2fBzC5fExswCgYIKoZIzj0EAwIw
PTELMAkGA1UEBhMCREUxEzARBgNVBAoMCkNoYXQgU3RhY2sxGTAXBgNVBAMMEGxl
YWRmbG93LmV4YW1wbGUwHhcNMjYxMjAxMDkwMjMyWhcNNDkxMTMwMDkwMjMyWjA9
MQswCQYDVQQGEwJERTETMBEGA1UECgwKQ2hhdCBTdGFjazEZMBcGA1UEAwwQbGVh
ZGZsb3cuZXhhbXBsZTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABO2/uhURVXCD
XqvcPA1xX41wsQ1vS05wDtYhcOq0zrmjz2VWwqa85OeLW6Vn933oqPabNNAuN8iI
rDtKjSkVItmjcDBuMB0GA1UdDgQWBBRibl08Cx9oEPb5ZmFnuUgWfLnibDAfBgNV
HSMEGDAWgBRibl08Cx9oEPb5ZmFnuUgWfLnibDAPBgNVHRMBAf8EBTADAQH/MBsG
A1UdEQQUMBKCEGxlYWRmbG93LmV4YW1wbGUwCgYIKoZIzj0EAwIDSQAwRgIhAOOn
5DnNsuIinQFBb5Hroi57b+BE0U4NDyDqdrNDv0jXAiEAmkCFcWGPWF6fRXDL3rLt
utONmp7+mcNwpiYMUvAel/I=";

    /// The same with `-days 9500`: "Dec  4 09:02:32 2052 GMT", a GeneralizedTime.
    const OPENSSL_2052: &str = "\
MIIB7jCCAZSgAwIBAgIUIsgOXP9osHVM1N8rvLkeJQQI9ukwCgYIKoZIzj0EAwIw
PTELMAkGA1UEBhMCREUxEzARBgNVBAoMCkNoYXQgU3RhY2sxGTAXBgNVBAMMEGxl
YWRmbG93LmV4YW1wbGUwIBcNMjYxMjAxMDkwMjMyWhgPMjA1MjEyMDQwOTAyMzJa
MD0xCzAJBgNVBAYTAkRFMRMwEQYDVQQKDApDaGF0IFN0YWNrMRkwFwYDVQQDDBBs
ZWFkZmxvdy5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEIleExTX5
Fwyrp6kaXHFD0CZJKRPi/XpFOOyQ56/YFRARm/FFcvoitV5wF1Ec6h5p/B35zmVn
A9IxYWBgEyS+n6NwMG4wHQYDVR0OBBYEFNKIFUXLxZ77wIOPxwP/IAmax+l1MB8G
A1UdIwQYMBaAFNKIFUXLxZ77wIOPxwP/IAmax+l1MA8GA1UdEwEB/wQFMAMBAf8w
GwYDVR0RBBQwEoIQbGVhZGZsb3cuZXhhbXBsZTAKBggqhkjOPQQDAgNIADBFAiA6
bntVVOpw68kwZUdIunEPw2sB1EHvqon+EJEHXdgFJgIhAMzJj3twBGuqq8rYlJjj
yadCogKAUL384jvxU0yXqAe/";

    pub(crate) fn der_of(pem_body: &str) -> Vec<u8> {
        let text = format!("-----BEGIN CERTIFICATE-----\n{pem_body}\n-----END CERTIFICATE-----\n");
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        CertificateDer::from_pem_slice(text.as_bytes()).expect("a PEM certificate").to_vec()
    }

    #[test]
    fn reads_openssl_certificates() {
        let s = summarize(&der_of(OPENSSL_2049)).expect("parses");
        assert_eq!(Some(s.not_after), Timestamp::parse("2049-11-30T09:02:32Z"));
        assert_eq!(s.subject, "C=DE, O=Chat Stack, CN=leadflow.example");
        let s = summarize(&der_of(OPENSSL_2052)).expect("parses");
        assert_eq!(Some(s.not_after), Timestamp::parse("2052-12-04T09:02:32Z"));
    }

    /// Every root of the system bundle, read by us and by openssl: the same
    /// notAfter, in the same order (skipped where either is missing).
    #[test]
    fn agrees_with_openssl_on_the_whole_system_bundle() {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let bundle = crate::probe::certs::SYSTEM_BUNDLE;
        let (Ok(pem), Ok(out)) = (
            std::fs::read(bundle),
            std::process::Command::new("openssl")
                .args(["storeutl", "-noout", "-text", "-certs", bundle])
                .output(),
        ) else {
            eprintln!("no {bundle} or no openssl: skipped");
            return;
        };
        let month = |m: &str| {
            ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
                .iter()
                .position(|x| *x == m)
                .map(|i| i as i64 + 1)
        };
        // "            Not After : Dec 31 09:37:37 2030 GMT"
        let theirs: Vec<Timestamp> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("            Not After : "))
            .map(|t| {
                let f: Vec<&str> = t.split_whitespace().collect();
                let hms: Vec<i64> = f[2].split(':').map(|x| x.parse().unwrap()).collect();
                Timestamp::from_civil(
                    f[3].parse().unwrap(),
                    month(f[0]).unwrap(),
                    f[1].parse().unwrap(),
                    hms[0],
                    hms[1],
                    hms[2],
                )
            })
            .collect();
        let ours: Vec<Timestamp> = CertificateDer::pem_slice_iter(&pem)
            .map(|c| summarize(&c.unwrap()).expect("a system root we cannot read").not_after)
            .collect();
        assert!(ours.len() > 10, "{} roots", ours.len());
        assert_eq!(ours, theirs);
    }

    /// Our fast PEM reader finds exactly what rustls-pki-types finds, on the
    /// whole system bundle (when there is one) and on made-up inputs.
    #[test]
    fn pem_reader_agrees_with_rustls() {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let theirs = |t: &[u8]| -> Vec<Vec<u8>> {
            CertificateDer::pem_slice_iter(t).map(|c| c.unwrap().to_vec()).collect()
        };
        let ours = |t: &[u8]| -> Vec<Vec<u8>> {
            pem_certificates(t).into_iter().map(|c| c.unwrap()).collect()
        };
        if let Ok(bundle) = std::fs::read(crate::probe::certs::SYSTEM_BUNDLE) {
            assert!(ours(&bundle).len() > 10);
            assert_eq!(ours(&bundle), theirs(&bundle));
        }
        let one = format!(
            "junk\r\n-----BEGIN CERTIFICATE-----\r\n{OPENSSL_2052}\r\n-----END CERTIFICATE-----\r\n\
             -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        );
        assert_eq!(ours(one.as_bytes()), theirs(one.as_bytes()));
        assert_eq!(base64_decode(b"QQ=="), Some(b"A".to_vec()));
        assert_eq!(base64_decode(b"QUI="), Some(b"AB".to_vec()));
        assert_eq!(base64_decode(b"QUJD"), Some(b"ABC".to_vec()));
        assert_eq!(base64_decode(b"QUI"), Some(b"AB".to_vec()));
        for bad in [&b"Q"[..], b"QQ=", b"Q===", b"QQ==QUJD", b"QU*D"] {
            assert_eq!(base64_decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        let broken = pem_certificates(b"-----BEGIN CERTIFICATE-----\nQU*D\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nQUJD\n");
        assert_eq!(
            broken,
            vec![
                Err("certificate 1: broken base64".into()),
                Err("certificate 2: no END CERTIFICATE line".into())
            ]
        );
    }

    #[test]
    fn every_cut_of_a_certificate_is_an_error_not_a_panic() {
        let der = der_of(OPENSSL_2049);
        for n in 0..der.len() {
            assert!(summarize(&der[..n]).is_err(), "{n} bytes parsed");
        }
    }

    #[test]
    fn times_follow_rfc_5280() {
        let t = |tag, s: &str| time(tag, s.as_bytes());
        assert_eq!(
            t(UTC_TIME, "491231235959Z"),
            Ok(Timestamp::from_civil(2049, 12, 31, 23, 59, 59))
        );
        assert_eq!(t(UTC_TIME, "500101000000Z"), Ok(Timestamp::from_civil(1950, 1, 1, 0, 0, 0)));
        assert_eq!(
            t(GENERALIZED_TIME, "20500101000000Z"),
            Ok(Timestamp::from_civil(2050, 1, 1, 0, 0, 0))
        );
        for bad in
            ["4912312359Z", "491231235959+", "49123123595aZ", "491331235959Z", "49123124000Z"]
        {
            assert!(t(UTC_TIME, bad).is_err(), "{bad}");
        }
        assert!(t(0x04, "491231235959Z").is_err());
    }

    #[test]
    fn names_render_known_and_unknown_attributes() {
        // SET { SEQ { OID 2.5.4.3, UTF8 "a\nb" } }, SET { SEQ { OID 1.2.3, BMP "é" } }
        let n = [
            0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'a', b'\n', b'b',
            0x31, 0x0a, 0x30, 0x08, 0x06, 0x02, 0x2a, 0x03, 0x1e, 0x02, 0x00, 0xe9,
        ];
        assert_eq!(name(&n), Ok("CN=ab, 1.2.3=é".to_string()));
    }

    #[test]
    fn lengths_beyond_the_input_are_rejected() {
        assert!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(tlv(&[0x30, 0x80]).is_err());
        assert!(tlv(&[0x1f, 0x01, 0x00]).is_err());
        assert_eq!(tlv(&[0x04, 0x81, 0x01, 7, 9]), Ok((0x04, &[7u8][..], &[9u8][..])));
    }
}

#[cfg(test)]
mod fuzz;
