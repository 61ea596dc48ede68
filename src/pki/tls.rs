//! What every TLS server of a platform offers, defined once for all of them: ANSSI's
//! recommendations for TLS ("Recommandations de sécurité relatives à TLS", v1.2). TLS 1.2 or
//! later; with TLS 1.2, only suites with an ephemeral elliptic-curve key exchange (ECDHE) and an
//! AEAD cipher (AES-GCM, ChaCha20-Poly1305), in the server's order of preference: no CBC suite,
//! no RSA key exchange, no anonymous, NULL, EXPORT, RC4 or 3DES suite. TLS 1.3's suites are all
//! AEAD with an ephemeral key exchange; each library keeps its own for them (Go's cannot be
//! changed).
//!
//! The servers read the TLS 1.2 list in two syntaxes, both made here from [`TLS12_SUITES`]:
//! OpenSSL's cipher names (PostgreSQL, Postfix, nginx, and pgBackRest's server through OpenSSL's
//! configuration) and the IANA names Go's crypto/tls knows them by (Prometheus, Alertmanager and
//! the exporters' `--web.config.file`). Templates read them as `tlsPolicy` ([`TlsPolicy`]).

use serde::Serialize;

/// A TLS 1.2 cipher suite by its two names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suite {
    /// The IANA name, which Go's crypto/tls uses too (`tls.CipherSuites()`).
    pub iana: &'static str,
    /// OpenSSL's name, for cipher lists (`openssl ciphers -stdname` maps one to the other).
    pub openssl: &'static str,
}

/// The TLS 1.2 suites every server offers, in its order of preference: ECDHE with AES-GCM or
/// ChaCha20-Poly1305, signed with ECDSA (the platform's certificates) or RSA (a public
/// certificate may be RSA).
pub const TLS12_SUITES: [Suite; 6] = [
    Suite {
        iana: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        openssl: "ECDHE-ECDSA-AES256-GCM-SHA384",
    },
    Suite {
        iana: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        openssl: "ECDHE-ECDSA-AES128-GCM-SHA256",
    },
    Suite {
        iana: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        openssl: "ECDHE-ECDSA-CHACHA20-POLY1305",
    },
    Suite {
        iana: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        openssl: "ECDHE-RSA-AES256-GCM-SHA384",
    },
    Suite {
        iana: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        openssl: "ECDHE-RSA-AES128-GCM-SHA256",
    },
    Suite {
        iana: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        openssl: "ECDHE-RSA-CHACHA20-POLY1305",
    },
];

/// The lowest protocol version, as OpenSSL names it (PostgreSQL, Postfix, nginx, OpenSSL's
/// configuration).
pub const MIN_PROTOCOL: &str = "TLSv1.2";

/// The same, as the exporter toolkit names it (`min_version`).
pub const GO_MIN_VERSION: &str = "TLS12";

/// What Postfix removes from every cipher grade it uses (`smtpd_tls_exclude_ciphers`): its SMTP
/// server offers anonymous suites unless told not to. The grade itself (`high`) is already the
/// list above; this keeps anonymous, NULL, RSA key exchange and SHA-1 CBC suites out should a
/// grade ever be widened.
pub const POSTFIX_EXCLUDE_CIPHERS: &str = "aNULL, eNULL, kRSA, SHA1, RC4, 3DES, DES, MD5";

/// A one-line description of what the servers offer, for attestations.
pub const SUMMARY: &str = "TLS 1.2 or later on every TLS server of the platform; with TLS 1.2 only ECDHE key exchange with AES-GCM or ChaCha20-Poly1305 (no CBC suite, RSA key exchange or anonymous suite), as ANSSI's recommendations for TLS (v1.2) ask";

/// The policy as the templates read it (`tlsPolicy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsPolicy {
    /// `TLSv1.2`: `ssl_min_protocol_version`, Postfix's `>=TLSv1.2`, OpenSSL's `MinProtocol`.
    pub min_protocol: &'static str,
    /// `TLS12`: the exporter toolkit's `min_version`.
    pub go_min_version: &'static str,
    /// The TLS 1.2 suites as an OpenSSL cipher list (`a:b:c`), in order of preference.
    pub openssl_ciphers: String,
    /// The same suites by their Go (IANA) names, in the same order.
    pub go_cipher_suites: Vec<&'static str>,
    /// Postfix's exclusions (`smtpd_tls_exclude_ciphers`), whitespace and comma separated.
    pub postfix_exclude_ciphers: &'static str,
}

impl TlsPolicy {
    /// The platform's one policy (see the module's documentation).
    pub fn anssi() -> TlsPolicy {
        TlsPolicy {
            min_protocol: MIN_PROTOCOL,
            go_min_version: GO_MIN_VERSION,
            openssl_ciphers: TLS12_SUITES
                .iter()
                .map(|s| s.openssl)
                .collect::<Vec<_>>()
                .join(":"),
            go_cipher_suites: TLS12_SUITES.iter().map(|s| s.iana).collect(),
            postfix_exclude_ciphers: POSTFIX_EXCLUDE_CIPHERS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_names_describe_ecdhe_aead_suites_only() {
        for s in TLS12_SUITES {
            assert!(
                s.iana.starts_with("TLS_ECDHE_") && s.openssl.starts_with("ECDHE-"),
                "{s:?}"
            );
            let aead = |n: &str| n.contains("GCM") || n.contains("CHACHA20_POLY1305");
            assert!(aead(s.iana) && aead(&s.openssl.replace('-', "_")), "{s:?}");
            assert!(
                !s.iana.contains("CBC") && !s.openssl.contains("CBC"),
                "{s:?}"
            );
            // one signature algorithm, in both names
            let ecdsa = s.iana.contains("_ECDSA_");
            assert_eq!(ecdsa, s.openssl.contains("-ECDSA-"), "{s:?}");
            assert_eq!(
                !ecdsa,
                s.iana.contains("_RSA_") && s.openssl.contains("-RSA-")
            );
        }
    }

    #[test]
    fn the_policy_lists_the_suites_once_in_each_syntax() {
        let p = TlsPolicy::anssi();
        assert_eq!(
            p.openssl_ciphers,
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:\
             ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"
        );
        assert_eq!(p.go_cipher_suites.len(), TLS12_SUITES.len());
        assert_eq!(
            p.go_cipher_suites[2],
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        );
        let json = serde_json::to_value(&p).unwrap_or_default();
        assert_eq!(json["minProtocol"], "TLSv1.2");
        assert_eq!(json["goMinVersion"], "TLS12");
        assert!(
            json["postfixExcludeCiphers"]
                .as_str()
                .is_some_and(|e| e.starts_with("aNULL, eNULL")),
            "{json}"
        );
    }
}
