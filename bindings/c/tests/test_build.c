/* ko_build against the real registry and Go fixture, checked with skopeo. */
#include "support.h"

/* `skopeo inspect [--raw] docker://reference`: its output (malloc'd), or NULL when it fails. */
static char *skopeo_inspect(const char *reference, bool raw) {
  char *target = kt_format("docker://%s", reference);
  const char *argv[] = {"skopeo", "inspect", "--tls-verify=false", raw ? "--raw" : target, raw ? target : NULL, NULL};
  char *out = NULL;
  int status = kt_run(NULL, argv, NULL, &out);
  free(target);
  if (status != 0) {
    free(out);
    return NULL;
  }
  return out;
}

TEST(build_publishes_in_argument_order_and_skopeo_finds_it) {
  char *repo = repo_named("build");
  ko_session_t *session = fixture_session(repo, true);
  REQUIRE(session != NULL);
  const char *paths[] = {"./cmd/hello", "ko://example.com/app/cmd/second", "example.com/app/cmd/hello"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 3, NULL, &list));
  REQUIRE(ko_published_list_len(list) == 3);
  CHECK(ko_published_list_get(list, 3) == NULL);
  const ko_published_t *hello = ko_published_list_get(list, 0), *second = ko_published_list_get(list, 1);
  CHECK(strcmp(ko_published_import_path(hello), "example.com/app/cmd/hello") == 0);
  CHECK(strcmp(ko_published_import_path(second), "example.com/app/cmd/second") == 0);
  char *hello_prefix = kt_format("%s/hello-a60355639e70c972f171c1cc04b2df15@sha256:", repo);
  CHECK(strncmp(ko_published_reference(hello), hello_prefix, strlen(hello_prefix)) == 0);
  free(hello_prefix);
  /* A path named twice is built once: the same reference. */
  CHECK(strcmp(ko_published_reference(ko_published_list_get(list, 2)), ko_published_reference(hello)) == 0);
  CHECK(ko_published_children_len(hello) == 0 && ko_published_child(hello, 0) == NULL);
  for (size_t i = 0; i < 2; i++) {
    const char *reference = ko_published_reference(ko_published_list_get(list, i));
    char *inspected = skopeo_inspect(reference, false);
    CHECK(inspected != NULL);
    if (inspected) {
      const char *digest = strchr(reference, '@') + 1;
      char *expected = kt_format("\"Digest\": \"%s\"", digest);
      CHECK(strstr(inspected, expected) != NULL);
      free(expected);
    }
    free(inspected);
  }
  ko_published_list_delete(list);
  ko_session_delete(session);
  free(repo);
}

TEST(build_of_two_platforms_lists_the_children) {
  char *repo = repo_named("index");
  ko_options_t *options = fixture_options(repo, true);
  const char *platforms[] = {"linux/amd64", "linux/arm64"};
  REQUIRE_OK(ko_options_set_platforms(options, platforms, 2));
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  const char *paths[] = {"./cmd/second"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  const ko_published_t *second = ko_published_list_get(list, 0);
  REQUIRE(ko_published_children_len(second) == 2);
  char *index = skopeo_inspect(ko_published_reference(second), true);
  CHECK(index != NULL && strstr(index, "application/vnd.oci.image.index.v1+json") != NULL);
  for (size_t i = 0; i < 2; i++) {
    const char *child = ko_published_child(second, i);
    char *prefix = kt_format("%s/second-", repo);
    CHECK(strncmp(child, prefix, strlen(prefix)) == 0);
    free(prefix);
    /* Each child is in the index and in the registry. */
    CHECK(index != NULL && strstr(index, strchr(child, '@') + 1) != NULL);
    char *manifest = skopeo_inspect(child, true);
    CHECK(manifest != NULL);
    free(manifest);
  }
  CHECK(ko_published_child(second, 2) == NULL);
  free(index);
  ko_published_list_delete(list);
  ko_session_delete(session);
  free(repo);
}

TEST(labels_are_key_value_entries_whose_values_may_hold_commas_and_equals_signs) {
  char *repo = repo_named("labels");
  ko_options_t *options = fixture_options(repo, true);
  const char *labels[] = {"team=web,api", "note=a=b"};
  REQUIRE_OK(ko_options_set_image_labels(options, labels, 2));
  const char *bad[] = {"novalue"};
  ko_error_t *error = ko_options_set_image_annotations(options, bad, 1);
  CHECK(ko_error_code(error) == KO_INVALID_INPUT && strstr(ko_error_message(error), "`novalue` is not KEY=VALUE"));
  ko_error_delete(error);
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  const char *paths[] = {"./cmd/hello"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  char *inspected = skopeo_inspect(ko_published_reference(ko_published_list_get(list, 0)), false);
  CHECK(inspected != NULL && strstr(inspected, "\"team\": \"web,api\"") && strstr(inspected, "\"note\": \"a=b\""));
  free(inspected);
  ko_published_list_delete(list);
  ko_session_delete(session);
  free(repo);
}

TEST(layer_compression_zstd_gives_zstd_layers_and_an_unknown_kind_is_refused) {
  char *repo = repo_named("zstd");
  ko_options_t *options = fixture_options(repo, true);
  REQUIRE_OK(ko_options_set_layer_compression(options, "lz4"));
  ko_session_t *session = NULL;
  ko_error_t *error = ko_session_new(options, &session);
  CHECK(ko_error_code(error) == KO_INVALID_INPUT && strstr(ko_error_message(error), "\"lz4\": expected gzip or zstd"));
  ko_error_delete(error);
  REQUIRE_OK(ko_options_set_layer_compression(options, "zstd"));
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  const char *paths[] = {"./cmd/hello"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  char *manifest = skopeo_inspect(ko_published_reference(ko_published_list_get(list, 0)), true);
  CHECK(manifest != NULL && strstr(manifest, "application/vnd.oci.image.layer.v1.tar+zstd"));
  free(manifest);
  ko_published_list_delete(list);
  ko_session_delete(session);
  free(repo);
}

TEST(an_sbom_is_attached_by_default_and_written_to_sbom_dir_and_none_skips_it) {
  char *repo = repo_named("sbom");
  ko_options_t *options = fixture_options(repo, true);
  char *dir = kt_format("%s/sboms", kt_tempdir());
  REQUIRE_OK(ko_options_set_sbom_dir(options, dir));
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  const char *paths[] = {"./cmd/hello"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  const char *reference = ko_published_reference(ko_published_list_get(list, 0));
  char *file = kt_format("%s/hello-linux-amd64.spdx.json", dir);
  char *document = kt_read_file(file);
  CHECK(document != NULL && strstr(document, "\"spdxVersion\": \"SPDX-2.3\"") && strstr(document, "pkg:oci/"));
  /* Attached as upstream attaches it: the tag sha256-<hex>.sbom, beside the image. */
  const char *at = strchr(reference, '@');
  REQUIRE(at != NULL);
  char *tag = kt_format("%.*s:sha256-%s.sbom", (int)(at - reference), reference, at + strlen("@sha256:"));
  char *manifest = skopeo_inspect(tag, true);
  CHECK(manifest != NULL && strstr(manifest, "text/spdx+json"));
  free(manifest);
  free(tag);
  free(document);
  free(file);
  ko_published_list_delete(list);
  ko_session_delete(session);

  /* sbom "none": nothing written, nothing attached. */
  char *other = kt_format("%s/none", kt_tempdir());
  REQUIRE_OK(ko_options_set_sbom_dir(options, other));
  REQUIRE_OK(ko_options_set_sbom(options, "none"));
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  file = kt_format("%s/hello-linux-amd64.spdx.json", other);
  document = kt_read_file(file);
  CHECK(document == NULL);
  free(document);
  free(file);
  free(other);
  free(dir);
  ko_published_list_delete(list);
  ko_session_delete(session);
  free(repo);
}

TEST(build_with_no_import_paths_builds_the_working_directory) {
  ko_options_t *options = fixture_options("127.0.0.1:1/dot", false);
  char *dir = kt_format("%s/cmd/second", kt_app());
  REQUIRE_OK(ko_options_set_working_dir(options, dir));
  free(dir);
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, NULL, 0, NULL, &list));
  REQUIRE(ko_published_list_len(list) == 1);
  CHECK(strcmp(ko_published_import_path(ko_published_list_get(list, 0)), "example.com/app/cmd/second") == 0);
  ko_published_list_delete(list);
  ko_session_delete(session);
}

TEST(finish_writes_image_refs_and_closes_the_session) {
  char *repo = repo_named("refs");
  ko_options_t *options = fixture_options(repo, true);
  char *refs = kt_format("%s/refs.txt", kt_tempdir());
  REQUIRE_OK(ko_options_set_image_refs(options, refs));
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  const char *paths[] = {"./cmd/second"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  CHECK(kt_read_file(refs) == NULL); /* written at the end, not before */
  REQUIRE_OK(ko_session_finish(session));
  char *text = kt_read_file(refs);
  char *expected = kt_format("%s\n", ko_published_reference(ko_published_list_get(list, 0)));
  CHECK(text != NULL && strcmp(text, expected) == 0);
  free(text);
  free(expected);
  ko_published_list_delete(list);
  list = NULL;
  CHECK_ERROR(ko_build(session, paths, 1, NULL, &list), KO_INVALID_INPUT, "this ko session has finished");
  REQUIRE_OK(ko_session_finish(session)); /* a second finish does nothing */
  ko_session_delete(session);
  free(refs);
  free(repo);
}
