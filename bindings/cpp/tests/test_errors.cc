// One test per error code, each from a real bad input, thrown as ko::Error. (ErrorCode::Internal
// is what a bug becomes and no input produces it: see bindings/c/tests/test_errors.c.)
#include <sys/stat.h>

#include <fstream>

#include "support.hpp"

namespace {

void build(const std::string &repo, const std::string &path, bool push = true) {
  ko::Session session(kt::fixture(repo, push));
  session.build({path});
}

void write(const std::string &path, const std::string &text) { std::ofstream(path) << text; }

TEST(Errors, InvalidInput) {
  kt::expect_error([] { build("127.0.0.1:1/x", "./pkg/lib"); }, ko::ErrorCode::InvalidInput, "is not a main package");
}

TEST(Errors, NotFound) {
  kt::expect_error([] { build("127.0.0.1:1/x", "./cmd/nope"); }, ko::ErrorCode::NotFound, "cmd/nope");
}

TEST(Errors, Build) {
  // Not pushed: an unreachable destination is found while building.
  kt::expect_error([] { build("127.0.0.1:1/x", "./cmd/broken", false); }, ko::ErrorCode::Build,
                   "undefined: thisDoesNotExist");
}

TEST(Errors, Registry) {
  kt::expect_error([] { build("127.0.0.1:1/x", "./cmd/hello"); }, ko::ErrorCode::Registry, "Connection refused");
}

TEST(Errors, Auth) {
  kt_refusing_server *tokens = kt_refusing_server_start();
  std::string config = "auth:\n  silly:\n    realm: http://127.0.0.1:" + std::to_string(kt_refusing_server_port(tokens)) +
                       "/token\n    service: ko-tests\n";
  kt_registry *registry = kt_registry_start(config.c_str());
  kt::expect_error([&] { build(std::string(registry->address) + "/x", "./cmd/hello"); }, ko::ErrorCode::Auth, "401");
  kt_registry_stop(registry);
  kt_refusing_server_stop(tokens);
}

TEST(Errors, Io) {
  ko::Session session(kt::fixture("127.0.0.1:1/x", false).tarball(std::string(kt_tempdir()) + "/missing/image.tar"));
  // Refused before anything is built.
  kt::expect_error([&] { session.build({"./cmd/second"}); }, ko::ErrorCode::Io, "missing does not exist; create it first");
}

TEST(Errors, Config) {
  const std::string dir = kt_tempdir();
  write(dir + "/.ko.yaml", "defaultPlatforms: [unclosed\n");
  kt::expect_error([&] { ko::Session s(kt::fixture("127.0.0.1:1/x", true).config_path(dir)); }, ko::ErrorCode::Config,
                   dir + "/.ko.yaml");
}

// The process environment with PATH replaced.
std::map<std::string, std::string> environment_with_path(const std::string &path) {
  std::map<std::string, std::string> env;
  size_t n = 0;
  char **entries = kt_environment(nullptr, 0, &n);
  for (size_t i = 0; i < n; i++) {
    std::string entry = entries[i];
    size_t eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  kt_free_strings(entries, n);
  env["PATH"] = path;
  return env;
}

TEST(Errors, KubectlMissingAndFailing) {
  const std::string bin = kt_tempdir();
  const std::string manifest = bin + "/ns.yaml";
  write(manifest, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n");
  {
    ko::Session session(kt::fixture("127.0.0.1:1/x", false).env(environment_with_path(bin)));
    ko::Error e = kt::expect_error([&] { session.apply({manifest}); }, ko::ErrorCode::Kubectl, "kubectl was not found on PATH");
    EXPECT_FALSE(e.exit_code().has_value());
    kt::expect_error([&] { session.delete_({"-f", manifest}); }, ko::ErrorCode::Kubectl, "kubectl was not found");
    kt::expect_error([&] { session.run("./cmd/hello"); }, ko::ErrorCode::Kubectl, "kubectl was not found");
  }
  // A kubectl that prints to both streams and fails with status 3.
  const std::string script = bin + "/kubectl";
  write(script, "#!/bin/sh\ncat > /dev/null\necho 'namespace/x created'\necho 'refusing on purpose' >&2\nexit 3\n");
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  ko::Session session(kt::fixture("127.0.0.1:1/x", false).env(environment_with_path(bin + ":" + getenv("PATH"))));
  std::mutex lock;
  std::vector<std::string> lines;
  session.on_event([&](const ko::Event &event) {
    if (event.kind() != ko::EventKind::KubectlOutput) return;
    std::lock_guard<std::mutex> guard(lock);
    lines.push_back(event.string("stream").value_or("?") + ": " + event.string("line").value_or("?"));
  });
  ko::Error e = kt::expect_error([&] { session.create({manifest}, {"--dry-run=client"}); }, ko::ErrorCode::Kubectl,
                                 "kubectl create exited with status 3");
  EXPECT_EQ(e.exit_code(), std::optional<int>(3));
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"stderr: refusing on purpose", "stdout: namespace/x created"}));
}

TEST(Errors, Cancelled) {
  ko::Session session(kt::fixture("127.0.0.1:1/x", false));
  ko::Cancel cancel;
  cancel.trigger();
  EXPECT_TRUE(cancel.is_triggered());
  kt::expect_error([&] { session.build({"./cmd/hello"}, cancel); }, ko::ErrorCode::Cancelled, "cancelled");
}

TEST(Errors, Unsupported) {
  kt::expect_error([] { ko::Session s(kt::fixture("127.0.0.1:1/x", true).docker_repo("kind.local")); },
                   ko::ErrorCode::Unsupported, "ko::Options::local()");
}

}  // namespace
