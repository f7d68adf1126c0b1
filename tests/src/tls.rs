//! A certificate authority made for one test: a CA certificate (to trust through
//! `SSL_CERT_FILE`), server certificates for `127.0.0.1`/`localhost` signed by it, and a
//! self-signed P-256 key pair for signing registry tokens.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tempfile::TempDir;

/// A test CA and the files it wrote.
pub struct TestCa {
    dir: TempDir,
    params: CertificateParams,
    key: KeyPair,
    /// `ca.pem`: the CA certificate.
    pub ca_pem: PathBuf,
}

/// A server certificate and key (PEM files).
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::Builder::new().prefix("ko-tests-ca").tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("ko tests CA {name}"));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ca_pem = dir.path().join("ca.pem");
        fs::write(&ca_pem, cert.pem()).unwrap();
        TestCa { dir, params, key, ca_pem }
    }

    /// A certificate for `127.0.0.1` and `localhost`, signed by this CA.
    pub fn server_cert(&self, name: &str) -> ServerCert {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let out = ServerCert {
            cert: self.dir.path().join(format!("{name}.crt")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        fs::write(&out.cert, cert.pem()).unwrap();
        fs::write(&out.key, key.serialize_pem()).unwrap();
        out
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A self-signed signing certificate for tokens: its DER (for the JWT `x5c` header), its PKCS#8
/// private key, and a PEM file holding it (the registry's `rootcertbundle`).
pub struct TokenSigningKey {
    pub cert_der: Vec<u8>,
    pub key_pkcs8: Vec<u8>,
    pub bundle: PathBuf,
}

impl TokenSigningKey {
    pub fn new(dir: &Path) -> TokenSigningKey {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "ko tests token signer");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let bundle = dir.join("token-root.pem");
        fs::write(&bundle, cert.pem()).unwrap();
        TokenSigningKey { cert_der: cert.der().to_vec(), key_pkcs8: key.serialize_der(), bundle }
    }
}
