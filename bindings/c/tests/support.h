/* What the C tests share on top of the harness: checks on ko_error_t results and sessions on the
 * Go fixture module. */
#ifndef KO_C_TEST_SUPPORT_H
#define KO_C_TEST_SUPPORT_H

#include <ko.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Fails (and returns from the test) when `call` returned an error, printing it. */
#define REQUIRE_OK(call)                                                                      \
  do {                                                                                        \
    ko_error_t *err_ = (call);                                                                \
    if (err_) {                                                                               \
      kt_fail(__FILE__, __LINE__, "%s failed: %s: %s", #call, ko_error_code_name(ko_error_code(err_)), \
              ko_error_message(err_));                                                        \
      ko_error_delete(err_);                                                                  \
      return;                                                                                 \
    }                                                                                         \
  } while (0)

/* Checks that `err` has `code` and a message containing `needle` (may be NULL); deletes it. */
static inline void expect_error(ko_error_t *err, ko_error_code_t code, const char *needle, const char *what,
                                const char *file, int line) {
  if (!err) {
    kt_fail(file, line, "%s succeeded; expected %s", what, ko_error_code_name(code));
    return;
  }
  if (ko_error_code(err) != code) {
    kt_fail(file, line, "%s: expected %s, got %s: %s", what, ko_error_code_name(code),
            ko_error_code_name(ko_error_code(err)), ko_error_message(err));
  } else if (needle && !strstr(ko_error_message(err), needle)) {
    kt_fail(file, line, "%s: the message does not contain \"%s\": %s", what, needle, ko_error_message(err));
  }
  ko_error_delete(err);
}
#define CHECK_ERROR(call, code, needle) expect_error((call), (code), (needle), #call, __FILE__, __LINE__)

/* Options for the fixture module: `repo` (NULL: none) as the destination, the fixture copy as
 * the working directory, and whether to push. */
static inline ko_options_t *fixture_options(const char *repo, bool push) {
  ko_options_t *options = ko_options_new();
  ko_error_t *errs[] = {
      ko_options_set_docker_repo(options, repo),
      ko_options_set_working_dir(options, kt_app()),
      ko_options_set_push(options, push),
  };
  for (size_t i = 0; i < sizeof errs / sizeof *errs; i++) {
    if (errs[i]) {
      kt_fail(__FILE__, __LINE__, "setting options failed: %s", ko_error_message(errs[i]));
      ko_error_delete(errs[i]);
    }
  }
  return options;
}

/* A session from fixture_options, or NULL after recording a failure. */
static inline ko_session_t *fixture_session(const char *repo, bool push) {
  ko_options_t *options = fixture_options(repo, push);
  ko_session_t *session = NULL;
  ko_error_t *err = ko_session_new(options, &session);
  ko_options_delete(options);
  if (err) {
    kt_fail(__FILE__, __LINE__, "ko_session_new failed: %s", ko_error_message(err));
    ko_error_delete(err);
    return NULL;
  }
  return session;
}

/* "<shared registry>/<name>", malloc'd. */
static inline char *repo_named(const char *name) { return kt_format("%s/%s", kt_shared_registry(), name); }

#endif /* KO_C_TEST_SUPPORT_H */
