//! Property tests: x509 parsing and PEM: never a panic, round trips.

use crate::probe::x509;
use crate::testing::cases;
use proptest::prelude::*;

proptest! {
    #![proptest_config(cases(1))]

    /// Certificates come from servers: any bytes are an error or a summary.
    #[test]
    fn x509_arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = x509::summarize(&bytes);
    }

    /// A real certificate with bytes overwritten, inserted or cut away.
    #[test]
    fn x509_mutated_certificates_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)
    ) {
        let mut der = x509::tests::der_of(x509::tests::OPENSSL_2049);
        for (at, byte, how) in edits {
            let i = at.index(der.len());
            match how {
                0 => der[i] = byte,
                1 => der.insert(i, byte),
                _ => der.truncate(i),
            }
            if der.is_empty() {
                break;
            }
        }
        if let Ok(s) = x509::summarize(&der) {
            prop_assert!(s.subject.chars().count() <= x509::MAX_SUBJECT + 1);
            prop_assert!(!s.subject.chars().any(char::is_control));
        }
    }
}

proptest! {
    #![proptest_config(cases(1))]

    /// PEM: any bytes are blocks or errors; what we encode comes back.
    #[test]
    fn pem_reader_round_trips_and_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..300),
        noise in "(?s).{0,200}",
        width in 1usize..80,
    ) {
        let _ = x509::pem_certificates(noise.as_bytes());
        let b64 = { use base64::Engine as _; base64::engine::general_purpose::STANDARD.encode(&data) };
        let lines: Vec<&str> = b64.as_bytes().chunks(width).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
        let pem = format!("{noise}\n-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\r\n"));
        let got = x509::pem_certificates(pem.as_bytes());
        let last = got.last().cloned();
        if !data.is_empty() {
            prop_assert_eq!(last, Some(Ok(data)));
        }
    }
}
