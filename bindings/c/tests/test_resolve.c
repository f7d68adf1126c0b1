/* ko_resolve_files and ko_resolve_string against the real registry, compared with the ko CLI. */
#include "support.h"

TEST(resolve_files_is_byte_equal_to_the_cli) {
  char *repo = repo_named("resolve");
  ko_session_t *session = fixture_session(repo, true);
  REQUIRE(session != NULL);
  const char *paths[] = {"config"};
  char *yaml = NULL;
  REQUIRE_OK(ko_resolve_files(session, paths, 1, NULL, NULL, &yaml));

  char *env_repo = kt_format("KO_DOCKER_REPO=%s", repo);
  const char *env[] = {env_repo, NULL};
  const char *argv[] = {kt_ko_cli(), "resolve", "-f", "config", NULL};
  char *cli = NULL;
  CHECK(kt_run(kt_app(), argv, env, &cli) == 0);
  CHECK(cli != NULL && strcmp(yaml, cli) == 0);
  if (cli && strcmp(yaml, cli) != 0) fprintf(stderr, "--- libko ---\n%s\n--- ko resolve ---\n%s\n", yaml, cli);
  char *image = kt_format("image: %s/hello-", repo);
  CHECK(strstr(yaml, image) != NULL && strstr(yaml, "@sha256:") != NULL);
  CHECK(strstr(yaml, "ko://example.com/app/cmd/hello is not replaced inside a block scalar") != NULL);
  CHECK(strstr(yaml, "ko://example.com/app/cmd/hello    # built") == NULL);
  free(image);
  free(cli);
  free(env_repo);

  /* Recursive: config/more/pod.yaml is read too. */
  ko_resolve_options_t *ro = ko_resolve_options_new();
  REQUIRE_OK(ko_resolve_options_set_recursive(ro, true));
  char *deep = NULL;
  REQUIRE_OK(ko_resolve_files(session, paths, 1, ro, NULL, &deep));
  CHECK(strstr(yaml, "name: nested") == NULL && strstr(deep, "  name: nested\n") != NULL);
  ko_string_delete(deep);
  ko_resolve_options_delete(ro);
  ko_string_delete(yaml);
  ko_session_delete(session);
  free(repo);
}

TEST(resolve_string_keeps_every_other_byte_and_selects) {
  ko_session_t *session = fixture_session("127.0.0.1:1/string", false);
  REQUIRE(session != NULL);
  const char *text =
      "# first\n"
      "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {keep: \"yes\"}}\n"
      "spec:\n  containers:\n  - image: 'ko://example.com/app/cmd/second'   # quoted\n"
      "---\n"
      "apiVersion: v1\nkind: Pod\nmetadata: {name: b}\n"
      "spec:\n  containers:\n  - image: ko://example.com/app/cmd/hello\n";
  char *yaml = NULL;
  REQUIRE_OK(ko_resolve_string(session, text, NULL, NULL, &yaml));
  CHECK(strncmp(yaml, "# first\napiVersion: v1\n", 23) == 0);
  CHECK(strstr(yaml, "- image: '127.0.0.1:1/string/second-") != NULL);
  CHECK(strstr(yaml, "'   # quoted\n") != NULL);
  CHECK(strstr(yaml, "ko://") == NULL);
  ko_string_delete(yaml);

  ko_resolve_options_t *ro = ko_resolve_options_new();
  REQUIRE_OK(ko_resolve_options_set_selector(ro, "keep=yes"));
  REQUIRE_OK(ko_resolve_string(session, text, ro, NULL, &yaml));
  CHECK(strstr(yaml, "name: a") != NULL && strstr(yaml, "name: b") == NULL);
  CHECK(strstr(yaml, "/hello-") == NULL);
  ko_string_delete(yaml);
  ko_resolve_options_delete(ro);

  /* A bad reference names its place in the text. */
  CHECK_ERROR(ko_resolve_string(session, "image: ko://example.com/app/pkg/lib\n", NULL, NULL, &yaml),
              KO_INVALID_INPUT, "-:1:8: example.com/app/pkg/lib");
  ko_session_delete(session);
}
