/* The API's contract without Go builds: NULL arguments, options by setters and by JSON,
 * accessors, cancel handles, and the version. */
#include "support.h"

TEST(version_is_the_installed_packages) { CHECK(strcmp(ko_version(), KT_KO_VERSION) == 0); }

TEST(null_arguments_are_invalid_input_errors) {
  ko_options_t *options = fixture_options(NULL, false);
  ko_session_t *session = (ko_session_t *)options; /* any non-NULL value: it must be reset */
  CHECK_ERROR(ko_session_new(NULL, &session), KO_INVALID_INPUT, "ko_session_new: `options` is NULL");
  CHECK(session == NULL);
  CHECK_ERROR(ko_session_new(options, NULL), KO_INVALID_INPUT, "`out` is NULL");
  REQUIRE_OK(ko_session_new(options, &session));

  ko_published_list_t *list = (ko_published_list_t *)options;
  CHECK_ERROR(ko_build(NULL, NULL, 0, NULL, &list), KO_INVALID_INPUT, "ko_build: `session` is NULL");
  CHECK(list == NULL);
  CHECK_ERROR(ko_build(session, NULL, 2, NULL, &list), KO_INVALID_INPUT, "`import_paths` is NULL but its count is 2");
  const char *with_null[] = {"./cmd/hello", NULL};
  CHECK_ERROR(ko_build(session, with_null, 2, NULL, &list), KO_INVALID_INPUT, "`import_paths[1]` is NULL");
  CHECK_ERROR(ko_build(session, with_null, 1, NULL, NULL), KO_INVALID_INPUT, "ko_build: `out` is NULL");
  char *yaml = (char *)options;
  CHECK_ERROR(ko_resolve_string(session, NULL, NULL, NULL, &yaml), KO_INVALID_INPUT, "`yaml` is NULL");
  CHECK(yaml == NULL);
  CHECK_ERROR(ko_resolve_files(session, NULL, 1, NULL, NULL, &yaml), KO_INVALID_INPUT, "`paths` is NULL");
  CHECK_ERROR(ko_apply(session, NULL, 0, NULL, NULL, 3, NULL), KO_INVALID_INPUT, "`kubectl_args` is NULL");
  CHECK_ERROR(ko_create(NULL, NULL, 0, NULL, NULL, 0, NULL), KO_INVALID_INPUT, "ko_create: `session` is NULL");
  CHECK_ERROR(ko_delete(NULL, NULL, 0, NULL), KO_INVALID_INPUT, "ko_delete: `session` is NULL");
  CHECK_ERROR(ko_run(session, NULL, NULL, 0, NULL), KO_INVALID_INPUT, "ko_run: `import_path` is NULL");
  CHECK_ERROR(ko_session_finish(NULL), KO_INVALID_INPUT, "ko_session_finish: `session` is NULL");
  CHECK_ERROR(ko_session_set_event_callback(NULL, NULL, NULL), KO_INVALID_INPUT, "`session` is NULL");
  CHECK_ERROR(ko_options_set_tags(NULL, NULL, 0), KO_INVALID_INPUT, "ko_options_set_tags: `options` is NULL");
  CHECK_ERROR(ko_options_set_jobs(NULL, 1), KO_INVALID_INPUT, "ko_options_set_jobs: `options` is NULL");
  CHECK_ERROR(ko_options_set_json(options, NULL), KO_INVALID_INPUT, "`json` is NULL");
  CHECK_ERROR(ko_resolve_options_set_strict(NULL, true), KO_INVALID_INPUT, "`options` is NULL");

  /* Accessors and deletes take NULL quietly. */
  CHECK(ko_error_code(NULL) == KO_OK);
  CHECK(ko_error_message(NULL) == NULL);
  int status = 7;
  CHECK(!ko_error_exit_code(NULL, &status) && status == 7);
  CHECK(ko_published_list_len(NULL) == 0 && ko_published_list_get(NULL, 0) == NULL);
  CHECK(ko_published_reference(NULL) == NULL && ko_published_children_len(NULL) == 0);
  CHECK(ko_event_kind(NULL) == 0 && ko_event_json(NULL) == NULL && ko_event_string(NULL, "digest") == NULL);
  CHECK(!ko_cancel_is_triggered(NULL));
  ko_cancel_trigger(NULL);
  ko_error_delete(NULL);
  ko_string_delete(NULL);
  ko_published_list_delete(NULL);
  ko_options_delete(NULL);
  ko_resolve_options_delete(NULL);
  ko_cancel_delete(NULL);
  ko_session_delete(NULL);

  ko_session_delete(session);
  ko_options_delete(options);
}

TEST(options_check_text_and_entries) {
  ko_options_t *options = ko_options_new();
  CHECK_ERROR(ko_options_set_docker_repo(options, "\xff"), KO_INVALID_INPUT, "ko_options_set_docker_repo: `value` is not UTF-8");
  const char *env[] = {"PATH=/usr/bin", "NOEQUALS"};
  CHECK_ERROR(ko_options_set_env(options, env, 2), KO_INVALID_INPUT, "`NOEQUALS` is not KEY=VALUE");
  CHECK_ERROR(ko_options_set_json(options, "{\"dockerrepo\": \"x\"}"), KO_INVALID_INPUT, "unknown field `dockerrepo`");
  CHECK_ERROR(ko_options_set_json(options, "{\"push\": \"yes\"}"), KO_INVALID_INPUT, "invalid options JSON");
  ko_options_delete(options);
}

TEST(session_messages_name_the_c_setters) {
  /* No destination and pushing: the core's message names the C setters, not the CLI's flags. */
  ko_options_t *options = ko_options_new();
  const char *env[] = {"PATH=/usr/bin:/bin", "HOME=/nonexistent"};
  REQUIRE_OK(ko_options_set_env(options, env, 2));
  ko_session_t *session = NULL;
  CHECK_ERROR(ko_session_new(options, &session), KO_CONFIG, "ko_options_set_docker_repo()");
  CHECK(session == NULL);
  const char *platforms[] = {"linux/"};
  REQUIRE_OK(ko_options_set_docker_repo(options, "127.0.0.1:1/x"));
  REQUIRE_OK(ko_options_set_platforms(options, platforms, 1));
  CHECK_ERROR(ko_session_new(options, &session), KO_INVALID_INPUT, "ko_options_set_platforms()");
  REQUIRE_OK(ko_options_set_platforms(options, NULL, 0));
  REQUIRE_OK(ko_options_set_tag_only(options, true));
  CHECK_ERROR(ko_session_new(options, &session), KO_INVALID_INPUT, "ko_options_set_tag_only() needs exactly one tag");
  ko_options_delete(options);
}

TEST(json_replaces_every_option) {
  ko_options_t *options = ko_options_new();
  REQUIRE_OK(ko_options_set_docker_repo(options, "UPPER/!!bad"));
  char *json = kt_format("{\"dockerRepo\": \"127.0.0.1:1/json\", \"push\": false, \"tags\": \"v1,v2\", "
                         "\"imageLabels\": {\"team\": \"web\"}, \"workingDir\": \"%s\"}",
                         kt_app());
  REQUIRE_OK(ko_options_set_json(options, json));
  free(json);
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  const char *paths[] = {"./cmd/second"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  const char *reference = ko_published_reference(ko_published_list_get(list, 0));
  CHECK(strncmp(reference, "127.0.0.1:1/json/second-", 24) == 0);
  CHECK(strstr(reference, "@sha256:") != NULL);
  ko_published_list_delete(list);
  ko_session_delete(session);
}

TEST(cancel_handles_and_resolve_options) {
  ko_cancel_t *cancel = ko_cancel_new();
  CHECK(!ko_cancel_is_triggered(cancel));
  ko_cancel_trigger(cancel);
  CHECK(ko_cancel_is_triggered(cancel));
  ko_session_t *session = fixture_session("127.0.0.1:1/cancelled", false);
  REQUIRE(session != NULL);
  /* A triggered handle cancels every later call at once. */
  const char *paths[] = {"./cmd/hello"};
  ko_published_list_t *list = NULL;
  CHECK_ERROR(ko_build(session, paths, 1, cancel, &list), KO_CANCELLED, "cancelled");
  CHECK(list == NULL);
  char *yaml = NULL;
  CHECK_ERROR(ko_resolve_string(session, "a: b\n", NULL, cancel, &yaml), KO_CANCELLED, NULL);

  ko_resolve_options_t *ro = ko_resolve_options_new();
  REQUIRE_OK(ko_resolve_options_set_selector(ro, "in in ("));
  CHECK_ERROR(ko_resolve_string(session, "a: b\n", ro, NULL, &yaml), KO_INVALID_INPUT, "invalid selector");
  REQUIRE_OK(ko_resolve_options_set_selector(ro, NULL));
  REQUIRE_OK(ko_resolve_options_set_recursive(ro, true));
  REQUIRE_OK(ko_resolve_string(session, "a: b # kept\n", ro, NULL, &yaml));
  CHECK(strcmp(yaml, "a: b # kept\n") == 0);
  ko_string_delete(yaml);
  ko_resolve_options_delete(ro);
  ko_session_delete(session);
  ko_cancel_delete(cancel);
}

TEST(error_codes_have_stable_names) {
  static const struct {
    uint32_t code;
    const char *name;
  } codes[] = {{0, "KO_OK"},          {1, "KO_INVALID_INPUT"}, {2, "KO_NOT_FOUND"}, {3, "KO_BUILD"},
               {4, "KO_REGISTRY"},    {5, "KO_AUTH"},          {6, "KO_IO"},        {7, "KO_CONFIG"},
               {8, "KO_KUBECTL"},     {9, "KO_CANCELLED"},     {10, "KO_UNSUPPORTED"}, {11, "KO_INTERNAL"}};
  for (size_t i = 0; i < sizeof codes / sizeof *codes; i++) {
    CHECK(strcmp(ko_error_code_name(codes[i].code), codes[i].name) == 0);
  }
  CHECK(KO_INVALID_INPUT == 1 && KO_CANCELLED == 9 && KO_INTERNAL == 11);
  CHECK(ko_error_code_name(12) == NULL);
}
