//! The Kubernetes harness itself: a real etcd + kube-apiserver on loopback,
//! driven by the real `kubectl`. (ko's own `apply` tests build on it.)

use std::path::Path;
use std::time::Duration;

use ko_tests::k8s::ApiServer;
use ko_tests::{Output, run};

const T: Duration = Duration::from_secs(120);

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "kubectl failed\n{}", out.describe());
    out
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: {image}
"
    )
}

fn image_of(api: &ApiServer, ns: &str, name: &str) -> String {
    let out = ok(run(
        api.kubectl().args([
            "-n",
            ns,
            "get",
            "deployment",
            name,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]),
        T,
    ));
    out.stdout
}

#[test]
fn apply_get_delete_a_deployment_from_stdin() {
    let api = ApiServer::start();

    let image = "registry.example.com/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let out = ok(api.kubectl_stdin(&["apply", "-f", "-"], &deployment("hello", image)));
    assert_eq!(out.stdout.trim(), "deployment.apps/hello created", "{}", out.describe());
    assert_eq!(image_of(&api, "default", "hello"), image);

    // A second apply updates the stored object.
    let image2 = "registry.example.com/app:v2";
    let out = ok(api.kubectl_stdin(&["apply", "-f", "-"], &deployment("hello", image2)));
    assert_eq!(out.stdout.trim(), "deployment.apps/hello configured", "{}", out.describe());
    assert_eq!(image_of(&api, "default", "hello"), image2);

    let out = ok(run(api.kubectl().args(["delete", "deployment", "hello", "--wait=false"]), T));
    assert_eq!(out.stdout.trim(), "deployment.apps \"hello\" deleted", "{}", out.describe());
    let out = run(api.kubectl().args(["get", "deployment", "hello"]), T);
    assert!(!out.status.success(), "the deployment is still there\n{}", out.describe());
    assert!(out.stderr.contains("NotFound"), "{}", out.describe());
}

#[test]
fn multi_document_yaml_with_a_namespace() {
    let api = ApiServer::start();
    let yaml = format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: ko-ns
---
{}---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: ko-ns
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
",
        deployment("web", "registry.example.com/web:1").replace("  name: web\n", "  name: web\n  namespace: ko-ns\n")
    );
    let out = ok(api.kubectl_stdin(&["apply", "-f", "-"], &yaml));
    assert_eq!(
        out.lines(),
        ["namespace/ko-ns created", "deployment.apps/web created", "service/web created"],
        "{}",
        out.describe()
    );
    assert_eq!(image_of(&api, "ko-ns", "web"), "registry.example.com/web:1");
    let out = ok(run(
        api.kubectl().args(["-n", "ko-ns", "get", "service", "web", "-o", "jsonpath={.spec.ports[0].port}"]),
        T,
    ));
    assert_eq!(out.stdout, "80");

    // `configure` gives another program (as ko runs kubectl) the same server.
    let mut cmd = std::process::Command::new(ko_tests::require_tool("kubectl"));
    api.configure(&mut cmd);
    let out = ok(run(cmd.args(["-n", "ko-ns", "get", "deployments", "-o", "name"]), T));
    assert_eq!(out.stdout.trim(), "deployment.apps/web");

    let out = ok(api.kubectl_stdin(&["delete", "--wait=false", "-f", "-"], &yaml));
    assert_eq!(out.lines().len(), 3, "{}", out.describe());
    let out = run(api.kubectl().args(["-n", "ko-ns", "get", "deployment", "web"]), T);
    assert!(!out.status.success(), "the deployment is still there\n{}", out.describe());
}

#[test]
fn drop_kills_etcd_and_the_api_server() {
    let api = ApiServer::start();
    let out = ok(run(api.kubectl().args(["version", "-o", "json"]), T));
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["serverVersion"]["major"], "1", "{}", out.describe());
    let (etcd, apiserver) = api.pids();
    let kubeconfig = api.kubeconfig_path().to_path_buf();
    assert!(kubeconfig.is_file());
    drop(api);
    for pid in [etcd, apiserver] {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} still running after drop");
    }
    assert!(!kubeconfig.exists(), "the temp dir is removed on drop");
}
