/* One test per error code, each from a real bad input. KO_INTERNAL is the exception: it is what a
 * bug (a panic) becomes, and no input produces it; the Rust unit tests of the panic boundary
 * (bindings/c/src/boundary.rs) check that a panic arrives as KO_INTERNAL. */
#include "support.h"

#include <sys/stat.h>

static void build_fails(const char *repo, bool push, const char *path, ko_error_code_t code, const char *needle,
                        const char *file, int line) {
  ko_session_t *session = fixture_session(repo, push);
  if (!session) return;
  const char *paths[] = {path};
  ko_published_list_t *list = (ko_published_list_t *)session;
  expect_error(ko_build(session, paths, 1, NULL, &list), code, needle, path, file, line);
  if (list != NULL) kt_fail(file, line, "ko_build left *out set after failing");
  ko_session_delete(session);
}

TEST(error_invalid_input) {
  ko_options_t *options = fixture_options("UPPER/!!bad", true);
  ko_session_t *session = NULL;
  CHECK_ERROR(ko_session_new(options, &session), KO_INVALID_INPUT, "invalid repository \"UPPER/!!bad\"");
  ko_options_delete(options);
  build_fails("127.0.0.1:1/x", true, "./pkg/lib", KO_INVALID_INPUT, "is not a main package", __FILE__, __LINE__);
}

TEST(error_not_found) {
  build_fails("127.0.0.1:1/x", true, "./cmd/nope", KO_NOT_FOUND, "cmd/nope", __FILE__, __LINE__);
  ko_session_t *session = fixture_session("127.0.0.1:1/x", false);
  REQUIRE(session != NULL);
  const char *paths[] = {"nope.yaml"};
  char *yaml = NULL;
  CHECK_ERROR(ko_resolve_files(session, paths, 1, NULL, NULL, &yaml), KO_NOT_FOUND, "nope.yaml");
  ko_session_delete(session);
}

TEST(error_build) {
  /* Not pushed: an unreachable destination is found while building. */
  build_fails("127.0.0.1:1/x", false, "./cmd/broken", KO_BUILD, "undefined: thisDoesNotExist", __FILE__, __LINE__);
}

TEST(error_registry) {
  build_fails("127.0.0.1:1/x", true, "./cmd/hello", KO_REGISTRY, "Connection refused", __FILE__, __LINE__);
}

TEST(error_auth) {
  /* A registry that wants bearer tokens from a token service that refuses everyone. */
  kt_refusing_server *tokens = kt_refusing_server_start();
  char *config = kt_format("auth:\n  silly:\n    realm: http://127.0.0.1:%d/token\n    service: ko-tests\n",
                           kt_refusing_server_port(tokens));
  kt_registry *registry = kt_registry_start(config);
  char *repo = kt_format("%s/x", registry->address);
  build_fails(repo, true, "./cmd/hello", KO_AUTH, "401", __FILE__, __LINE__);
  free(repo);
  free(config);
  kt_registry_stop(registry);
  kt_refusing_server_stop(tokens);
}

TEST(error_io) {
  /* A tarball in a directory that does not exist: refused before anything is built. */
  ko_options_t *options = fixture_options("127.0.0.1:1/x", false);
  char *tarball = kt_format("%s/missing/image.tar", kt_tempdir());
  REQUIRE_OK(ko_options_set_tarball(options, tarball));
  free(tarball);
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  const char *paths[] = {"./cmd/second"};
  ko_published_list_t *list = NULL;
  CHECK_ERROR(ko_build(session, paths, 1, NULL, &list), KO_IO, "missing does not exist; create it first");
  CHECK(list == NULL);
  ko_session_delete(session);
}

TEST(error_config) {
  const char *dir = kt_tempdir();
  char *config = kt_format("%s/.ko.yaml", dir);
  REQUIRE(kt_write_file(config, "defaultPlatforms: [unclosed\n"));
  ko_options_t *options = fixture_options("127.0.0.1:1/x", true);
  REQUIRE_OK(ko_options_set_config_path(options, dir));
  ko_session_t *session = NULL;
  CHECK_ERROR(ko_session_new(options, &session), KO_CONFIG, config);
  CHECK(session == NULL);
  ko_options_delete(options);
  free(config);
}

/* A session whose environment is the process's, with PATH replaced by `path`. */
static ko_session_t *session_with_path(const char *path) {
  char *path_entry = kt_format("PATH=%s", path);
  const char *overrides[] = {path_entry};
  size_t n;
  char **env = kt_environment(overrides, 1, &n);
  ko_options_t *options = fixture_options("127.0.0.1:1/x", false);
  ko_error_t *err = ko_options_set_env(options, (const char *const *)env, n);
  ko_session_t *session = NULL;
  if (!err) err = ko_session_new(options, &session);
  if (err) {
    kt_fail(__FILE__, __LINE__, "%s", ko_error_message(err));
    ko_error_delete(err);
  }
  ko_options_delete(options);
  kt_free_strings(env, n);
  free(path_entry);
  return session;
}

TEST(error_kubectl_missing) {
  const char *empty = kt_tempdir();
  char *manifest = kt_format("%s/ns.yaml", empty);
  REQUIRE(kt_write_file(manifest, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n"));
  ko_session_t *session = session_with_path(empty);
  REQUIRE(session != NULL);
  const char *paths[] = {manifest};
  ko_error_t *err = ko_apply(session, paths, 1, NULL, NULL, 0, NULL);
  int status = -1;
  CHECK(!ko_error_exit_code(err, &status));
  CHECK_ERROR(err, KO_KUBECTL, "kubectl was not found on PATH");
  const char *args[] = {"--dry-run=client"};
  CHECK_ERROR(ko_create(session, paths, 1, NULL, args, 1, NULL), KO_KUBECTL, "kubectl was not found");
  const char *delete_args[] = {"-f", manifest};
  CHECK_ERROR(ko_delete(session, delete_args, 2, NULL), KO_KUBECTL, "kubectl was not found");
  CHECK_ERROR(ko_run(session, "./cmd/hello", NULL, 0, NULL), KO_KUBECTL, "kubectl was not found");
  ko_session_delete(session);
  free(manifest);
}

typedef struct {
  int stdout_lines, stderr_lines;
  bool saw_out, saw_err;
} kubectl_output;

static void count_kubectl_output(const ko_event_t *event, void *user_data) {
  kubectl_output *seen = user_data;
  if (ko_event_kind(event) != KO_EVENT_KUBECTL_OUTPUT) return;
  const char *stream = ko_event_string(event, "stream"), *line = ko_event_string(event, "line");
  if (strcmp(stream, "stdout") == 0) {
    seen->stdout_lines++;
    seen->saw_out = seen->saw_out || strcmp(line, "namespace/x created") == 0;
  } else {
    seen->stderr_lines++;
    seen->saw_err = seen->saw_err || strcmp(line, "refusing on purpose") == 0;
  }
}

TEST(error_kubectl_exit_status_and_output_events) {
  /* A kubectl that records its arguments and standard input, prints to both streams, fails. */
  const char *bin = kt_tempdir();
  char *script = kt_format("%s/kubectl", bin);
  char *body = kt_format("#!/bin/sh\necho \"$@\" > %s/args\ncat > %s/stdin\n"
                         "echo 'namespace/x created'\necho 'refusing on purpose' >&2\nexit 3\n",
                         bin, bin);
  REQUIRE(kt_write_file(script, body));
  REQUIRE(chmod(script, 0755) == 0);
  char *path = kt_format("%s:%s", bin, getenv("PATH"));
  ko_session_t *session = session_with_path(path);
  REQUIRE(session != NULL);
  kubectl_output seen = {0, 0, false, false};
  REQUIRE_OK(ko_session_set_event_callback(session, count_kubectl_output, &seen));
  char *manifest = kt_format("%s/ns.yaml", bin);
  const char *text = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x   # kept\n";
  REQUIRE(kt_write_file(manifest, text));
  const char *paths[] = {manifest};
  const char *args[] = {"--context=prod", "-n", "web"};
  ko_error_t *err = ko_apply(session, paths, 1, NULL, args, 3, NULL);
  int status = -1;
  CHECK(ko_error_exit_code(err, &status) && status == 3);
  CHECK_ERROR(err, KO_KUBECTL, "kubectl apply exited with status 3");
  CHECK(seen.stdout_lines == 1 && seen.saw_out);
  CHECK(seen.stderr_lines == 1 && seen.saw_err);
  char *args_path = kt_format("%s/args", bin), *stdin_path = kt_format("%s/stdin", bin);
  char *recorded_args = kt_read_file(args_path), *recorded_stdin = kt_read_file(stdin_path);
  CHECK(recorded_args && strcmp(recorded_args, "apply -f - --context=prod -n web\n") == 0);
  CHECK(recorded_stdin && strcmp(recorded_stdin, text) == 0);
  free(recorded_args);
  free(recorded_stdin);
  free(args_path);
  free(stdin_path);
  ko_session_delete(session);
  free(manifest);
  free(path);
  free(body);
  free(script);
}

TEST(error_cancelled) {
  ko_cancel_t *cancel = ko_cancel_new();
  ko_cancel_trigger(cancel);
  ko_session_t *session = fixture_session("127.0.0.1:1/x", false);
  REQUIRE(session != NULL);
  const char *paths[] = {"./cmd/hello"};
  ko_published_list_t *list = NULL;
  CHECK_ERROR(ko_build(session, paths, 1, cancel, &list), KO_CANCELLED, "cancelled");
  ko_session_delete(session);
  ko_cancel_delete(cancel);
}

TEST(error_unsupported) {
  ko_options_t *options = fixture_options("127.0.0.1:1/x", true);
  REQUIRE_OK(ko_options_set_docker_repo(options, "kind.local/team"));
  ko_session_t *session = NULL;
  CHECK_ERROR(ko_session_new(options, &session), KO_UNSUPPORTED, "kind load docker-image");
  CHECK_ERROR(ko_session_new(options, &session), KO_UNSUPPORTED, "ko_options_set_local()");
  ko_options_delete(options);
}
