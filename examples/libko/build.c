/* Builds the Go main package in a module directory into an image in an OCI layout, with libko's C
 * API, and prints its reference. No registry is involved (push is off), so it runs anywhere go
 * does:
 *
 *   cc build.c $(pkg-config --cflags --libs ko) -o build && ./build ../hello /tmp/layout
 */
#include <ko.h>
#include <stdio.h>

/* Called on libko's threads while the build runs; the event is lent for the call only. */
static void on_event(const ko_event_t *event, void *user_data) {
  (void)user_data;
  if (ko_event_kind(event) == KO_EVENT_BUILD_STARTED) {
    fprintf(stderr, "building %s for %s\n", ko_event_string(event, "importPath"), ko_event_string(event, "platform"));
  }
}

/* Prints an error and frees it (errors are owned by the caller). */
static int report(ko_error_t *err) {
  fprintf(stderr, "ko: %s: %s\n", ko_error_code_name(ko_error_code(err)), ko_error_message(err));
  ko_error_delete(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s GO_MODULE_DIR OCI_LAYOUT_DIR\n", argv[0]);
    return 2;
  }
  ko_options_t *options = ko_options_new();
  ko_error_t *err = NULL;
  if ((err = ko_options_set_working_dir(options, argv[1])) || (err = ko_options_set_oci_layout_path(options, argv[2])) ||
      (err = ko_options_set_push(options, false))) {
    ko_options_delete(options);
    return report(err);
  }
  ko_session_t *session = NULL;
  err = ko_session_new(options, &session); /* copies the options */
  ko_options_delete(options);
  if (err) return report(err);
  if ((err = ko_session_set_event_callback(session, on_event, NULL))) {
    ko_session_delete(session);
    return report(err);
  }

  const char *import_paths[] = {"."};
  ko_published_list_t *published = NULL;
  err = ko_build(session, import_paths, 1, NULL, &published); /* blocks until built */
  if (!err) {
    printf("%s\n", ko_published_reference(ko_published_list_get(published, 0)));
    ko_published_list_delete(published);
  }
  ko_session_delete(session);
  return err ? report(err) : 0;
}
