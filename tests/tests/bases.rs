//! Registry base images: inheritance, base annotations, cross-repo mounts,
//! `.ko.yaml` overrides.

use std::fs;

use ko_tests::*;

#[test]
fn registry_base_is_mounted_across_repos() {
    let reg = Registry::start();
    let base = push_base_image(&reg, "base", "v1");
    let hand = &base.images[0];
    let fx = GoFixture::app();

    let mut outs = Vec::new();
    for dest in ["one", "two"] {
        let mark = reg.mark();
        let out = ko_ok(
            fx.ko()
                .args(["build", "./cmd/hello"])
                .env("KO_DOCKER_REPO", format!("{}/{dest}", reg.host()))
                .env("KO_DEFAULTBASEIMAGE", &base.reference),
        );
        let reqs = reg.requests_since(mark);
        assert!(
            out.stderr.contains(&format!("Using base {}", base.reference)),
            "stderr names the base\n{}",
            out.describe()
        );
        for layer in &hand.layers {
            assert!(
                out.stderr.contains(&format!("mounted blob: {}", layer.digest)),
                "base layer {} should be mounted into {dest}\n{}\nrequests: {reqs:?}",
                layer.digest,
                out.describe()
            );
            let mount = reqs.iter().find(|r| {
                let uri = r.decoded_uri();
                r.method == "POST"
                    && uri.starts_with(&format!("/v2/{dest}/"))
                    && uri.contains(&format!("mount={}", layer.digest))
                    && uri.split(['?', '&']).any(|p| p == "from=base")
            });
            assert!(
                mount.is_some_and(|m| m.status == 201),
                "registry saw no successful mount POST of {} from base into {dest}: {reqs:?}",
                layer.digest
            );
        }
        outs.push(out);
    }

    let name_one = format!("{}/one/hello-{HELLO_MD5}", reg.host());
    let r = refs(&outs[0], 1).remove(0);
    assert!(r.starts_with(&format!("{name_one}@sha256:")), "ref {r}");
    let r2 = refs(&outs[1], 1).remove(0);
    // Same image content in both repos.
    assert_eq!(split_digest(&r).1, split_digest(&r2).1, "same digest in both repos");

    let img = pull(&docker(&r));
    assert_eq!(img.layer_count(), hand.layers.len() + 2, "base layers + kodata + binary");
    for (i, layer) in hand.layers.iter().enumerate() {
        assert_eq!(img.layers()[i]["digest"], layer.digest.as_str(), "base layer {i} kept as is");
    }
    for l in img.layers() {
        assert_eq!(l["mediaType"], OCI_LAYER_GZIP, "layer media type follows the OCI base");
    }
    assert_eq!(img.manifest["mediaType"], OCI_MANIFEST, "manifest type follows the base");
    let ann = &img.manifest["annotations"];
    assert_eq!(ann[ANN_BASE_NAME], base.reference.as_str(), "base.name annotation: {ann}");
    assert_eq!(ann[ANN_BASE_DIGEST], base.digest.as_str(), "base.digest annotation: {ann}");

    // Config inherits from the base.
    let config = img.config();
    let env = env_map(&config);
    assert_eq!(
        env.get("PATH").map(String::as_str),
        Some("/usr/local/bin:/usr/bin:/bin:/ko-app"),
        "PATH appended: {env:?}"
    );
    assert_eq!(env.get("BASE_ARCH").map(String::as_str), Some("amd64"));
    assert_eq!(env.get("KO_DATA_PATH").map(String::as_str), Some("/var/run/ko"));
    assert_eq!(config["config"]["Labels"]["ko-tests.base"], "yes", "base labels kept");
    assert_eq!(config["config"]["WorkingDir"], "/", "base WorkingDir kept");
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["/ko-app/hello"]));
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.len(), hand.layers.len() + 2, "base history + 2: {history:?}");
    assert_eq!(history[hand.layers.len()]["created_by"], format!("ko build ko://{HELLO_IP}"));

    // The binary runs on top of this base too.
    let entries = img.layer_entries(img.layer_count() - 1);
    assert_binary_layer(&entries, "hello");
}

#[test]
fn ko_yaml_base_image_overrides() {
    let reg = Registry::start();
    let base = push_base_image(&reg, "special/base", "v2");
    let fx = GoFixture::app();
    fs::write(
        fx.path().join(".ko.yaml"),
        format!("defaultBaseImage: scratch\nbaseImageOverrides:\n  example.com/app/cmd/second: {}\n", base.reference),
    )
    .unwrap();
    let out = ko_ok(
        fx.ko().args(["build", "./cmd/hello", "./cmd/second"]).env("KO_DOCKER_REPO", format!("{}/ovr", reg.host())),
    );
    let refs = refs(&out, 2);
    let hello = pull(&docker(&refs[0]));
    assert_eq!(hello.layer_count(), 2, "hello uses scratch (defaultBaseImage)");
    let second = pull(&docker(&refs[1]));
    assert_eq!(second.layer_count(), 4, "second uses the override base (2 layers)");
    assert_eq!(second.manifest["annotations"][ANN_BASE_DIGEST], base.digest.as_str());

    // KO_DEFAULTBASEIMAGE beats .ko.yaml's defaultBaseImage.
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/ovr", reg.host()))
            .env("KO_DEFAULTBASEIMAGE", &base.reference),
    );
    let img = pull(&docker(&refs_one(&out)));
    assert_eq!(img.layer_count(), 4, "KO_DEFAULTBASEIMAGE wins over .ko.yaml");

    // KO_CONFIG_PATH points at a config elsewhere.
    let cfg_dir = fx.scratch("cfg");
    fs::write(cfg_dir.join(".ko.yaml"), format!("defaultBaseImage: {}\n", base.reference)).unwrap();
    fs::remove_file(fx.path().join(".ko.yaml")).unwrap();
    let out = ko_ok(
        fx.ko()
            .args(["build", "./cmd/hello"])
            .env("KO_DOCKER_REPO", format!("{}/ovr", reg.host()))
            .env("KO_CONFIG_PATH", &cfg_dir),
    );
    let img = pull(&docker(&refs_one(&out)));
    assert_eq!(img.layer_count(), 4, "KO_CONFIG_PATH directory is read");
}

fn refs_one(out: &Output) -> String {
    refs(out, 1).remove(0)
}
