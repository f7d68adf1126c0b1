//! SPDX 2.3 JSON documents for images and indexes, laid out as upstream's `internal/sbom/spdx.go`
//! lays them out (same packages, relationships, purls and field order), plus what upstream
//! leaves out: the binary as a file with its SHA-256, and the Go standard library with the Go
//! version the binary was built with.
//!
//! The types are this module's own serde structs rather than the `serde-spdx` crate's: that
//! crate generates its types at build time from the JSON schema (schemafy, syn, prettyplease and
//! derive_builder as build dependencies), and serialises fields in the schema's order, not
//! upstream's. A document holds no wall-clock time: `created` is the image config's `created`
//! (so `SOURCE_DATE_EPOCH`, or the base's), which makes the same build give the same bytes.

use serde::Serialize;

use super::buildinfo::{BuildInfo, Module};
use crate::image::time::{ZERO_TIME, rfc3339};

const NOASSERTION: &str = "NOASSERTION";

#[derive(Serialize)]
pub struct Document {
    #[serde(rename = "SPDXID")]
    id: String,
    name: String,
    #[serde(rename = "spdxVersion")]
    version: &'static str,
    #[serde(rename = "creationInfo")]
    creation_info: CreationInfo,
    #[serde(rename = "dataLicense")]
    data_license: &'static str,
    #[serde(rename = "documentNamespace")]
    namespace: String,
    #[serde(rename = "documentDescribes", skip_serializing_if = "Vec::is_empty")]
    describes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<File>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    packages: Vec<Package>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize, Default)]
struct Package {
    #[serde(rename = "SPDXID")]
    id: String,
    name: String,
    #[serde(rename = "versionInfo", skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(rename = "filesAnalyzed")]
    files_analyzed: bool,
    #[serde(rename = "licenseDeclared")]
    license_declared: &'static str,
    #[serde(rename = "licenseConcluded")]
    license_concluded: &'static str,
    #[serde(rename = "downloadLocation")]
    download_location: String,
    #[serde(rename = "copyrightText")]
    copyright: &'static str,
    #[serde(rename = "primaryPackagePurpose", skip_serializing_if = "Option::is_none")]
    purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    #[serde(rename = "externalRefs")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
struct File {
    #[serde(rename = "SPDXID")]
    id: String,
    #[serde(rename = "fileName")]
    name: String,
    #[serde(rename = "copyrightText")]
    copyright: &'static str,
    #[serde(rename = "licenseConcluded")]
    license_concluded: &'static str,
    #[serde(rename = "fileTypes")]
    file_types: Vec<&'static str>,
    #[serde(rename = "licenseInfoInFiles")]
    license_info: Vec<&'static str>,
    checksums: Vec<Checksum>,
}

#[derive(Serialize)]
struct Checksum {
    algorithm: &'static str,
    #[serde(rename = "checksumValue")]
    value: String,
}

#[derive(Serialize)]
struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    category: &'static str,
    #[serde(rename = "referenceLocator")]
    locator: String,
    #[serde(rename = "referenceType")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Relationship {
    #[serde(rename = "spdxElementId")]
    element: String,
    #[serde(rename = "relationshipType")]
    kind: &'static str,
    #[serde(rename = "relatedSpdxElement")]
    related: String,
}

impl Document {
    /// JSON indented by two spaces with a final newline, as upstream's encoder writes it.
    pub fn to_bytes(&self) -> bytes::Bytes {
        let mut out = serde_json::to_vec_pretty(self).expect("an SPDX document always serialises");
        out.push(b'\n');
        out.into()
    }
}

/// An image (or index) that a document describes.
pub struct Subject<'a> {
    /// `sha256:<hex>` of its manifest.
    pub digest: &'a str,
    pub media_type: &'a str,
    /// The config's `created` (for an index, its first image's).
    pub created: Option<&'a str>,
    /// Its `org.opencontainers.image.base.name` and `.base.digest` annotations.
    pub base: Option<(&'a str, &'a str)>,
}

/// The binary an image holds.
pub struct Binary<'a> {
    /// Where it is in the image (`/ko-app/<name>`).
    pub path: &'a str,
    pub sha256: &'a str,
    pub info: &'a BuildInfo,
}

/// One image of an index.
pub struct Child<'a> {
    pub digest: &'a str,
    pub media_type: &'a str,
    pub platform: &'a crate::image::Platform,
}

fn tool() -> String {
    format!("Tool: ko {}", env!("CARGO_PKG_VERSION"))
}

/// `SPDXRef-Package-sha256-<hex>`.
fn oci_id(digest: &str) -> String {
    id(&format!("Package-{}", digest.replacen(':', "-", 1)))
}

/// An SPDX identifier: `SPDXRef-` and letters, digits, `.` and `-` (anything else, such as the
/// parentheses of `(devel)`, becomes `-`; upstream writes them as they are, which SPDX refuses).
fn id(s: &str) -> String {
    let clean: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '-' }).collect();
    format!("SPDXRef-{clean}")
}

fn module_id(m: &Module) -> String {
    id(&format!("Package-{}-{}", m.path.replace('/', "."), m.version))
}

/// `pkg:oci/<name>@<digest>?<qualifiers>`, qualifiers sorted and escaped as Go's
/// `url.Values.Encode` writes them.
fn oci_purl(name: &str, digest: &str, qualifiers: &[(&str, &str)]) -> String {
    let mut q: Vec<(&str, &str)> = qualifiers.to_vec();
    q.sort();
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v))).collect();
    let mut purl = format!("pkg:oci/{name}@{digest}");
    if !query.is_empty() {
        purl.push('?');
        purl.push_str(&query.join("&"));
    }
    purl
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `pkg:golang/<path>@<version>?type=module`, the first two path elements lower-cased.
fn go_purl(m: &Module) -> String {
    let mut parts: Vec<String> = m.path.split('/').map(str::to_string).collect();
    if parts.len() > 2 {
        parts[0] = parts[0].to_lowercase();
        parts[1] = parts[1].to_lowercase();
    }
    format!("pkg:golang/{}@{}?type=module", parts.join("/"), m.version)
}

fn purl(locator: String) -> Vec<ExternalRef> {
    vec![ExternalRef { category: "PACKAGE-MANAGER", locator, kind: "purl" }]
}

fn sha256_checksum(digest: &str) -> Vec<Checksum> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    vec![Checksum { algorithm: "SHA256", value: hex.to_string() }]
}

/// A module's `h1:` checksum as the SHA-256 upstream reports (the base64 decoded to hex).
fn h1_to_sha256(sum: &str) -> Option<String> {
    use base64::Engine as _;
    let b64 = sum.strip_prefix("h1:")?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok().map(hex::encode)
}

/// `created` as `YYYY-MM-DDTHH:MM:SSZ` in UTC, as upstream formats the config's time; Go's zero
/// time when there is none or it cannot be read.
fn created(config_created: Option<&str>) -> String {
    config_created.and_then(parse_rfc3339).map(rfc3339).unwrap_or_else(|| ZERO_TIME.to_string())
}

/// Seconds since 1970 of an RFC 3339 time (`2023-11-14T22:13:20.5+01:00`); fractions dropped.
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        rest = fraction.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let minutes = rest.get(1..3)?.parse::<i64>().ok()? * 60 + rest.get(4..6)?.parse::<i64>().ok()?;
            if rest.starts_with('-') { -minutes * 60 } else { minutes * 60 }
        }
        _ => return None,
    };
    // Howard Hinnant's days-from-civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn starter(subject: &Subject<'_>) -> (Document, String) {
    let subject_id = oci_id(subject.digest);
    let doc = Document {
        id: "SPDXRef-DOCUMENT".into(),
        name: format!("sbom-{}", subject.digest),
        version: "SPDX-2.3",
        creation_info: CreationInfo { created: created(subject.created), creators: vec![tool()] },
        data_license: "CC0-1.0",
        namespace: format!("http://spdx.org/spdxdocs/ko/{}", subject.digest),
        describes: vec![subject_id.clone()],
        files: Vec::new(),
        packages: Vec::new(),
        relationships: Vec::new(),
    };
    (doc, subject_id)
}

fn package(id: String, name: String, external: String) -> Package {
    Package {
        id,
        name,
        license_declared: NOASSERTION,
        license_concluded: NOASSERTION,
        download_location: NOASSERTION.into(),
        copyright: NOASSERTION,
        external_refs: purl(external),
        ..Default::default()
    }
}

fn relate(doc: &mut Document, element: &str, kind: &'static str, related: &str) {
    doc.relationships.push(Relationship { element: element.into(), kind, related: related.into() });
}

/// The base image an image or index descends from, from its annotations.
fn add_base(doc: &mut Document, subject_id: &str, base: Option<(&str, &str)>) {
    let Some((name, digest)) = base else { return };
    let (repository, tag) = super::base_repository(name);
    let base_id = oci_id(digest);
    relate(doc, subject_id, "DESCENDANT_OF", &base_id);
    let mut qualifiers = vec![("repository_url", repository.as_str())];
    if let Some(tag) = &tag {
        qualifiers.push(("tag", tag.as_str()));
    }
    let mut p = package(base_id, format!("{repository}@{digest}"), oci_purl("image", digest, &qualifiers));
    p.version = name.to_string();
    p.checksums = sha256_checksum(digest);
    doc.packages.push(p);
}

/// The document for one image holding `binary`.
pub fn image(subject: &Subject<'_>, binary: &Binary<'_>) -> Document {
    let (mut doc, image_id) = starter(subject);
    relate(&mut doc, "SPDXRef-DOCUMENT", "DESCRIBES", &image_id);
    let mut p = package(
        image_id.clone(),
        subject.digest.to_string(),
        oci_purl("image", subject.digest, &[("mediaType", subject.media_type)]),
    );
    p.purpose = Some("CONTAINER");
    doc.packages.push(p);
    add_base(&mut doc, &image_id, subject.base);

    let info = binary.info;
    // GOPATH builds have no main module: the package stands for it.
    let main = info.main.clone().unwrap_or_else(|| Module {
        path: info.path.clone(),
        version: "(devel)".into(),
        sum: String::new(),
    });
    let main_id = module_id(&main);
    relate(&mut doc, &image_id, "CONTAINS", &main_id);
    let mut p = package(main_id.clone(), main.path.clone(), go_purl(&main));
    p.download_location = format!("https://{}", main.path);
    doc.packages.push(p);

    for dep in &info.deps {
        let dep_id = module_id(dep);
        relate(&mut doc, &main_id, "DEPENDS_ON", &dep_id);
        let mut p = package(dep_id, dep.path.clone(), go_purl(dep));
        p.version = dep.version.clone();
        p.download_location = format!("https://proxy.golang.org/{}/@v/{}.zip", dep.path, dep.version);
        if let Some(sha) = h1_to_sha256(&dep.sum) {
            p.checksums = vec![Checksum { algorithm: "SHA256", value: sha }];
        }
        doc.packages.push(p);
    }

    // The Go toolchain's standard library, as SBOM scanners name it (`pkg:golang/stdlib`).
    let go = info.go_version.as_str();
    let stdlib_id = id(&format!("Package-stdlib-{go}"));
    relate(&mut doc, &main_id, "DEPENDS_ON", &stdlib_id);
    let mut p = package(stdlib_id, "stdlib".into(), format!("pkg:golang/stdlib@{}", go.trim_start_matches("go")));
    p.version = go.to_string();
    doc.packages.push(p);

    let file_id = id(&format!("File{}", binary.path.replace('/', "-")));
    relate(&mut doc, &image_id, "CONTAINS", &file_id);
    relate(&mut doc, &file_id, "GENERATED_FROM", &main_id);
    doc.files.push(File {
        id: file_id,
        name: binary.path.to_string(),
        copyright: NOASSERTION,
        license_concluded: NOASSERTION,
        file_types: vec!["BINARY"],
        license_info: vec![NOASSERTION],
        checksums: vec![Checksum { algorithm: "SHA256", value: binary.sha256.to_string() }],
    });
    doc
}

/// The document for an index of `children`.
pub fn index(subject: &Subject<'_>, children: &[Child<'_>]) -> Document {
    let (mut doc, index_id) = starter(subject);
    let mut p = package(
        index_id.clone(),
        subject.digest.to_string(),
        oci_purl("index", subject.digest, &[("mediaType", subject.media_type)]),
    );
    p.purpose = Some("CONTAINER");
    p.checksums = sha256_checksum(subject.digest);
    doc.packages.push(p);
    add_base(&mut doc, &index_id, subject.base);
    for child in children {
        let child_id = oci_id(child.digest);
        relate(&mut doc, &index_id, "VARIANT_OF", &child_id);
        let pf = child.platform;
        let mut q = vec![("mediaType", child.media_type), ("arch", pf.architecture.as_str()), ("os", pf.os.as_str())];
        if let Some(v) = &pf.variant {
            q.push(("variant", v.as_str()));
        }
        if let Some(v) = &pf.os_version {
            q.push(("os-version", v.as_str()));
        }
        for feature in pf.os_features.iter().flatten() {
            q.push(("os-feature", feature.as_str()));
        }
        let mut p = package(child_id, child.digest.to_string(), oci_purl("image", child.digest, &q));
        p.version = pf.to_string();
        p.purpose = Some("CONTAINER");
        p.checksums = sha256_checksum(child.digest);
        doc.packages.push(p);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> BuildInfo {
        BuildInfo {
            go_version: "go1.26.8".into(),
            path: "example.com/app/cmd/hello".into(),
            main: Some(Module { path: "example.com/app".into(), version: "(devel)".into(), sum: String::new() }),
            deps: vec![Module {
                path: "github.com/Google/uuid".into(),
                version: "v1.6.0".into(),
                sum: "h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=".into(),
            }],
        }
    }

    #[test]
    fn image_documents_follow_upstream() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let base = format!("sha256:{}", "b".repeat(64));
        let subject = Subject {
            digest: &digest,
            media_type: "application/vnd.oci.image.manifest.v1+json",
            created: Some("2023-11-14T23:13:20+01:00"),
            base: Some(("127.0.0.1:5000/base:v1", &base)),
        };
        let info = info();
        let doc = image(&subject, &Binary { path: "/ko-app/hello", sha256: &"c".repeat(64), info: &info });
        let json: serde_json::Value = serde_json::from_slice(&doc.to_bytes()).unwrap();
        assert_eq!(json["creationInfo"]["created"], "2023-11-14T22:13:20Z");
        assert_eq!(json["documentNamespace"], format!("http://spdx.org/spdxdocs/ko/{digest}"));
        let p = &json["packages"];
        assert_eq!(
            p[0]["externalRefs"][0]["referenceLocator"],
            format!("pkg:oci/image@{digest}?mediaType=application%2Fvnd.oci.image.manifest.v1%2Bjson")
        );
        assert_eq!(
            p[1]["externalRefs"][0]["referenceLocator"],
            format!("pkg:oci/image@{base}?repository_url=127.0.0.1%3A5000%2Fbase&tag=v1")
        );
        assert_eq!(p[2]["SPDXID"], "SPDXRef-Package-example.com.app--devel-");
        assert_eq!(p[2]["externalRefs"][0]["referenceLocator"], "pkg:golang/example.com/app@(devel)?type=module");
        assert_eq!(p[3]["versionInfo"], "v1.6.0");
        assert_eq!(p[3]["externalRefs"][0]["referenceLocator"], "pkg:golang/github.com/google/uuid@v1.6.0?type=module");
        assert_eq!(
            p[3]["checksums"][0]["checksumValue"],
            "348bda24330eb231c0f27d630212d2833ac0cf2d4782bfa136b6f9edefbde05d"
        );
        assert_eq!((p[4]["name"].as_str(), p[4]["versionInfo"].as_str()), (Some("stdlib"), Some("go1.26.8")));
        assert_eq!(json["files"][0]["fileName"], "/ko-app/hello");
        let kinds: Vec<&str> =
            json["relationships"].as_array().unwrap().iter().map(|r| r["relationshipType"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["DESCRIBES", "DESCENDANT_OF", "CONTAINS", "DEPENDS_ON", "DEPENDS_ON", "CONTAINS", "GENERATED_FROM"]
        );
        assert_eq!(
            doc.to_bytes(),
            image(&subject, &Binary { path: "/ko-app/hello", sha256: &"c".repeat(64), info: &info }).to_bytes()
        );
    }

    #[test]
    fn index_documents_list_each_platform() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let child = format!("sha256:{}", "d".repeat(64));
        let mut platform = crate::image::Platform::new("windows", "amd64", None);
        platform.os_version = Some("10.0.17763.1".into());
        let subject = Subject {
            digest: &digest,
            media_type: "application/vnd.oci.image.index.v1+json",
            created: None,
            base: None,
        };
        let doc = index(
            &subject,
            &[Child { digest: &child, media_type: "application/vnd.oci.image.manifest.v1+json", platform: &platform }],
        );
        let json: serde_json::Value = serde_json::from_slice(&doc.to_bytes()).unwrap();
        assert_eq!(json["creationInfo"]["created"], "0001-01-01T00:00:00Z", "no time: Go's zero time, never the clock");
        assert_eq!(json["packages"][1]["versionInfo"], "windows/amd64:10.0.17763.1");
        assert_eq!(
            json["packages"][1]["externalRefs"][0]["referenceLocator"],
            format!(
                "pkg:oci/image@{child}?arch=amd64&mediaType=application%2Fvnd.oci.image.manifest.v1%2Bjson&os=windows&os-version=10.0.17763.1"
            )
        );
        assert_eq!(json["relationships"][0]["relationshipType"], "VARIANT_OF");
    }

    #[test]
    fn times_parse_like_rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123456789Z"), Some(1_700_000_000));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z").map(rfc3339).as_deref(), Some(ZERO_TIME));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
