//! Turns a signing certificate (PEM) into what verification needs: the RSA public key, the
//! validity window and a subject check, plus the RSASSA-PKCS1-v1_5 check itself.

use chrono::{DateTime, Utc};
use rsa::RsaPublicKey;
use rsa::traits::PublicKeyParts;
use x509_cert::Certificate;
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{DecodePem, Encode, Tag, Tagged};
use x509_cert::spki::DecodePublicKey;

use super::error::SnsError;
use super::regions;

/// Subject attribute commonName (2.5.4.3).
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// SNS certificates are 2048-bit; anything weaker is not what SNS serves.
const MIN_RSA_BITS: usize = 2048;

/// The hash under RSASSA-PKCS1-v1_5 for each SignatureVersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// SignatureVersion "1".
    RsaSha1,
    /// SignatureVersion "2".
    RsaSha256,
}

impl SignatureAlgorithm {
    /// Maps SignatureVersion; anything but "1" or "2" is refused.
    pub fn from_version(version: &str) -> Result<Self, SnsError> {
        match version {
            "1" => Ok(SignatureAlgorithm::RsaSha1),
            "2" => Ok(SignatureAlgorithm::RsaSha256),
            _ => Err(SnsError::UnsupportedSignatureVersion),
        }
    }
}

/// A parsed signing certificate whose subject was already checked for its region.
#[derive(Debug, Clone)]
pub struct SigningCert {
    /// The PKCS#1 RSAPublicKey, as `ring` verifies with it.
    pkcs1: Vec<u8>,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    subject_cn: String,
}

impl SigningCert {
    /// Parses a PEM certificate and checks that its subject CN is one SNS uses for `region`.
    /// Dates are not checked here: they are checked at each use against the clock, so a key
    /// cached while valid stops working once its certificate expires.
    pub fn from_pem(pem: &[u8], region: &str) -> Result<Self, SnsError> {
        let cert = Certificate::from_pem(pem)
            .map_err(|_| SnsError::UntrustedCertificate("not a PEM X.509 certificate".into()))?;
        let tbs = &cert.tbs_certificate;

        let subject_cn = common_name(&cert).ok_or_else(|| {
            SnsError::UntrustedCertificate("certificate subject has no common name".into())
        })?;
        let allowed = regions::signing_cert_names(region);
        if !allowed.iter().any(|n| n.eq_ignore_ascii_case(&subject_cn)) {
            return Err(SnsError::UntrustedCertificate(format!(
                "certificate subject CN {subject_cn:?} is not an SNS signing name for {region}"
            )));
        }

        let not_before = to_utc(tbs.validity.not_before.to_unix_duration())?;
        let not_after = to_utc(tbs.validity.not_after.to_unix_duration())?;

        let spki_der = tbs
            .subject_public_key_info
            .to_der()
            .map_err(|_| SnsError::UntrustedCertificate("unreadable public key".into()))?;
        let key = RsaPublicKey::from_public_key_der(&spki_der)
            .map_err(|_| SnsError::UntrustedCertificate("public key is not RSA".into()))?;
        if key.size() * 8 < MIN_RSA_BITS {
            return Err(SnsError::UntrustedCertificate(
                "RSA key is shorter than 2048 bits".into(),
            ));
        }
        let pkcs1 = tbs
            .subject_public_key_info
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| SnsError::UntrustedCertificate("unreadable public key".into()))?
            .to_vec();

        Ok(SigningCert {
            pkcs1,
            not_before,
            not_after,
            subject_cn,
        })
    }

    pub fn subject_cn(&self) -> &str {
        &self.subject_cn
    }
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// Fails unless `now` lies within the certificate's validity window (inclusive).
    pub fn check_validity(&self, now: DateTime<Utc>) -> Result<(), SnsError> {
        if now < self.not_before {
            return Err(SnsError::UntrustedCertificate(
                "certificate is not yet valid".into(),
            ));
        }
        if now > self.not_after {
            return Err(SnsError::UntrustedCertificate(
                "certificate has expired".into(),
            ));
        }
        Ok(())
    }

    /// RSASSA-PKCS1-v1_5 verification of `signed` against a raw signature.
    pub fn verify(
        &self,
        alg: SignatureAlgorithm,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<(), SnsError> {
        // ring's constant-time RSA is about six times faster than the pure-Rust one here
        // (benches/sns_verify.rs): the signature check is the costly part of every SNS
        // delivery, duplicates included. SHA-1 is what SignatureVersion 1 is.
        let algorithm: &'static dyn ring::signature::VerificationAlgorithm = match alg {
            SignatureAlgorithm::RsaSha1 => {
                &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            SignatureAlgorithm::RsaSha256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        };
        ring::signature::UnparsedPublicKey::new(algorithm, &self.pkcs1)
            .verify(signed, signature)
            .map_err(|_| SnsError::BadSignature)
    }
}

/// The subject's (last) commonName, decoded from any of the string types CAs use.
fn common_name(cert: &Certificate) -> Option<String> {
    let mut found = None;
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid != OID_COMMON_NAME {
                continue;
            }
            let text = match atv.value.tag() {
                Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
                    std::str::from_utf8(atv.value.value()).ok()
                }
                _ => None,
            };
            found = text.map(str::to_owned);
        }
    }
    found
}

fn to_utc(since_epoch: std::time::Duration) -> Result<DateTime<Utc>, SnsError> {
    i64::try_from(since_epoch.as_secs())
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .ok_or_else(|| SnsError::UntrustedCertificate("certificate date out of range".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::sns::test_support::{TestKeys, keys};
    use rsa::RsaPrivateKey;

    fn sign(key: &RsaPrivateKey, alg: SignatureAlgorithm, data: &[u8]) -> Vec<u8> {
        TestKeys::sign_with(key, alg, data)
    }

    #[test]
    fn versions_map_to_algorithms() {
        assert_eq!(
            SignatureAlgorithm::from_version("1").ok(),
            Some(SignatureAlgorithm::RsaSha1)
        );
        assert_eq!(
            SignatureAlgorithm::from_version("2").ok(),
            Some(SignatureAlgorithm::RsaSha256)
        );
        for v in ["", "3", "0", " 1", "1.0", "v2"] {
            assert!(matches!(
                SignatureAlgorithm::from_version(v),
                Err(SnsError::UnsupportedSignatureVersion)
            ));
        }
    }

    #[test]
    fn parses_generated_cert_and_verifies_both_hashes() {
        let k = keys();
        let cert = SigningCert::from_pem(&k.good_pem, "us-east-1").expect("parses");
        assert_eq!(cert.subject_cn(), "sns.amazonaws.com");
        assert!(cert.not_before() < cert.not_after());
        for alg in [SignatureAlgorithm::RsaSha1, SignatureAlgorithm::RsaSha256] {
            let sig = sign(&k.private, alg, b"hello");
            assert!(cert.verify(alg, b"hello", &sig).is_ok());
            assert!(matches!(
                cert.verify(alg, b"hellO", &sig),
                Err(SnsError::BadSignature)
            ));
        }
        // A SHA-1 signature does not pass as SHA-256 and vice versa (the DigestInfo differs).
        let sig1 = sign(&k.private, SignatureAlgorithm::RsaSha1, b"hello");
        assert!(
            cert.verify(SignatureAlgorithm::RsaSha256, b"hello", &sig1)
                .is_err()
        );
        assert!(
            cert.verify(SignatureAlgorithm::RsaSha1, b"hello", &[])
                .is_err()
        );
    }

    #[test]
    fn subject_must_be_an_sns_name_for_the_region() {
        let k = keys();
        assert!(matches!(
            SigningCert::from_pem(&k.wrong_cn_pem, "us-east-1"),
            Err(SnsError::UntrustedCertificate(_))
        ));
        assert!(SigningCert::from_pem(&k.signing_east_pem, "us-east-1").is_ok());
        // sns-signing.us-east-1... is not a name for another region.
        assert!(matches!(
            SigningCert::from_pem(&k.signing_east_pem, "eu-south-1"),
            Err(SnsError::UntrustedCertificate(_))
        ));
        assert!(matches!(
            SigningCert::from_pem(&k.good_pem, "cn-north-1"),
            Err(SnsError::UntrustedCertificate(_))
        ));
    }

    #[test]
    fn validity_window_is_enforced() {
        let k = keys();
        let cert = SigningCert::from_pem(&k.good_pem, "us-east-1").expect("parses");
        assert!(cert.check_validity(Utc::now()).is_ok());
        assert!(cert.check_validity(cert.not_before()).is_ok());
        assert!(cert.check_validity(cert.not_after()).is_ok());
        let before = cert.not_before() - chrono::Duration::seconds(1);
        let after = cert.not_after() + chrono::Duration::seconds(1);
        assert!(matches!(
            cert.check_validity(before),
            Err(SnsError::UntrustedCertificate(_))
        ));
        assert!(matches!(
            cert.check_validity(after),
            Err(SnsError::UntrustedCertificate(_))
        ));
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        for junk in [
            &b""[..],
            b"hello",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            assert!(matches!(
                SigningCert::from_pem(junk, "us-east-1"),
                Err(SnsError::UntrustedCertificate(_))
            ));
        }
        // A private key PEM is not a certificate either.
        assert!(SigningCert::from_pem(&keys().private_pem, "us-east-1").is_err());
    }
}
