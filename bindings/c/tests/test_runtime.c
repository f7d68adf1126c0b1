/* Threads, cancellation and events: several threads on one session, a cancel from another thread
 * in the middle of `go build`, and the events of a build adding up to what was published. */
#include "support.h"

#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- Four threads resolving at once on one session ---- */

typedef struct {
  const ko_session_t *session;
  char *yaml;
  ko_error_t *err;
} resolve_job;

static void *resolve_config(void *arg) {
  resolve_job *job = arg;
  const char *paths[] = {"config"};
  job->err = ko_resolve_files(job->session, paths, 1, NULL, NULL, &job->yaml);
  return NULL;
}

TEST(four_threads_resolve_at_once_on_one_session) {
  char *repo = repo_named("threads");
  ko_session_t *session = fixture_session(repo, true);
  REQUIRE(session != NULL);
  resolve_job jobs[4];
  pthread_t threads[4];
  for (int i = 0; i < 4; i++) {
    jobs[i] = (resolve_job){session, NULL, NULL};
    REQUIRE(pthread_create(&threads[i], NULL, resolve_config, &jobs[i]) == 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
  for (int i = 0; i < 4; i++) {
    if (jobs[i].err) {
      kt_fail(__FILE__, __LINE__, "thread %d: %s", i, ko_error_message(jobs[i].err));
      ko_error_delete(jobs[i].err);
    }
  }
  REQUIRE(!kt_failed());
  for (int i = 1; i < 4; i++) CHECK(strcmp(jobs[i].yaml, jobs[0].yaml) == 0);
  char *image = kt_format("image: %s/hello-", repo);
  CHECK(strstr(jobs[0].yaml, image) != NULL);
  free(image);
  /* And the same as one call alone. */
  resolve_job alone = {session, NULL, NULL};
  resolve_config(&alone);
  REQUIRE(alone.err == NULL);
  CHECK(strcmp(alone.yaml, jobs[0].yaml) == 0);
  ko_string_delete(alone.yaml);
  for (int i = 0; i < 4; i++) ko_string_delete(jobs[i].yaml);
  ko_session_delete(session);
  free(repo);
}

/* ---- A cancel from another thread while go build runs ---- */

typedef struct {
  const ko_session_t *session;
  const ko_cancel_t *cancel;
  ko_error_t *err;
  double returned;
} build_job;

static void *build_hello(void *arg) {
  build_job *job = arg;
  const char *paths[] = {"./cmd/hello"};
  ko_published_list_t *list = NULL;
  job->err = ko_build(job->session, paths, 1, job->cancel, &list);
  job->returned = now();
  ko_published_list_delete(list);
  return NULL;
}

TEST(cancel_from_another_thread_stops_go_build) {
  /* A cold Go build cache makes `go build` compile the standard library: long enough to cancel
   * it in the middle. The cache directory, unique to this test, also marks every process this
   * build starts (go, compile, asm, link inherit the environment). */
  char *cache = kt_format("%s/gocache", kt_tempdir());
  REQUIRE(mkdir(cache, 0700) == 0);
  char *marker = kt_format("GOCACHE=%s", cache);
  const char *overrides[] = {marker};
  size_t n;
  char **env = kt_environment(overrides, 1, &n);
  ko_options_t *options = fixture_options("127.0.0.1:1/cancel", false);
  REQUIRE_OK(ko_options_set_env(options, (const char *const *)env, n));
  kt_free_strings(env, n);
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);

  ko_cancel_t *cancel = ko_cancel_new();
  build_job job = {session, cancel, NULL, 0};
  pthread_t thread;
  REQUIRE(pthread_create(&thread, NULL, build_hello, &job) == 0);
  bool compiling = false;
  for (double deadline = now() + 120; !compiling && now() < deadline;) {
    compiling = kt_count_processes_with_env(marker, "compile") > 0;
    if (!compiling) usleep(20 * 1000);
  }
  CHECK(compiling);
  double triggered = now();
  ko_cancel_trigger(cancel);
  pthread_join(thread, NULL);
  CHECK(ko_error_code(job.err) == KO_CANCELLED);
  CHECK_ERROR(job.err, KO_CANCELLED, "cancelled");
  /* The call returns once its processes are killed, well before a cold build could finish. */
  CHECK(job.returned - triggered < 10);
  /* Killed processes may linger a moment as zombies (pid 1 here does not reap orphans), which
   * do not count; nothing else of the build may be left. */
  int left = -1;
  for (double deadline = now() + 3; left != 0 && now() < deadline;) {
    left = kt_count_processes_with_env(marker, NULL);
    if (left != 0) usleep(20 * 1000);
  }
  CHECK(left == 0);
  ko_cancel_delete(cancel);
  ko_session_delete(session);
  free(marker);
  free(cache);
}

/* ---- Events ---- */

typedef struct {
  ko_event_kind_t kind;
  char *import_path, *platform, *layer, *digest, *repository, *reference;
  uint64_t size, sent, total;
} event_copy;

typedef struct {
  pthread_mutex_t lock;
  event_copy *events;
  size_t len, cap;
} event_log;

static char *copy_field(const ko_event_t *event, const char *field) {
  const char *value = ko_event_string(event, field);
  return value ? strdup(value) : NULL;
}

static void record_event(const ko_event_t *event, void *user_data) {
  event_log *log = user_data;
  event_copy copy = {
      .kind = ko_event_kind(event),
      .import_path = copy_field(event, "importPath"),
      .platform = copy_field(event, "platform"),
      .layer = copy_field(event, "layer"),
      .digest = copy_field(event, "digest"),
      .repository = copy_field(event, "repository"),
      .reference = copy_field(event, "reference"),
  };
  ko_event_number(event, "size", &copy.size);
  ko_event_number(event, "sent", &copy.sent);
  ko_event_number(event, "total", &copy.total);
  pthread_mutex_lock(&log->lock);
  if (log->len == log->cap) log->events = realloc(log->events, (log->cap = log->cap * 2 + 16) * sizeof *log->events);
  log->events[log->len++] = copy;
  pthread_mutex_unlock(&log->lock);
}

static void clear_log(event_log *log) {
  for (size_t i = 0; i < log->len; i++) {
    event_copy *e = &log->events[i];
    free(e->import_path), free(e->platform), free(e->layer), free(e->digest), free(e->repository),
        free(e->reference);
  }
  log->len = 0;
}

static size_t count_kind(const event_log *log, ko_event_kind_t kind) {
  size_t n = 0;
  for (size_t i = 0; i < log->len; i++) n += log->events[i].kind == kind;
  return n;
}

static bool is_blob_event(ko_event_kind_t kind) {
  return kind == KO_EVENT_BLOB_EXISTING || kind == KO_EVENT_BLOB_MOUNTED || kind == KO_EVENT_BLOB_UPLOADED;
}

/* The blob digests of a manifest (its config's and its layers'), as `"digest":"sha256:..."`. */
static size_t manifest_digests(const char *manifest, char digests[][72], size_t max) {
  size_t n = 0;
  for (const char *p = manifest; (p = strstr(p, "\"digest\"")) && n < max; p++) {
    const char *value = strstr(p, "sha256:");
    if (!value) break;
    snprintf(digests[n++], 72, "%.71s", value);
  }
  return n;
}

TEST(events_of_a_build_add_up_to_what_was_published) {
  char *repo = repo_named("events");
  /* The image's own blobs only: no SBOM attached beside it. */
  ko_options_t *options = fixture_options(repo, true);
  REQUIRE_OK(ko_options_set_sbom(options, "none"));
  ko_session_t *session = NULL;
  REQUIRE_OK(ko_session_new(options, &session));
  ko_options_delete(options);
  event_log log = {.events = NULL, .len = 0, .cap = 0};
  pthread_mutex_init(&log.lock, NULL);
  REQUIRE_OK(ko_session_set_event_callback(session, record_event, &log));
  const char *paths[] = {"./cmd/hello"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  const char *reference = ko_published_reference(ko_published_list_get(list, 0));
  const char *digest = strchr(reference, '@') + 1;

  /* One go build, started before it finished. */
  CHECK(count_kind(&log, KO_EVENT_BUILD_STARTED) == 1 && count_kind(&log, KO_EVENT_BUILD_FINISHED) == 1);
  size_t started = log.len, finished = log.len;
  for (size_t i = 0; i < log.len; i++) {
    const event_copy *e = &log.events[i];
    if (e->kind == KO_EVENT_BUILD_STARTED) started = i;
    if (e->kind == KO_EVENT_BUILD_FINISHED) finished = i;
    if (e->kind == KO_EVENT_BUILD_STARTED || e->kind == KO_EVENT_BUILD_FINISHED) {
      CHECK(strcmp(e->import_path, "example.com/app/cmd/hello") == 0 && strcmp(e->platform, "linux/amd64") == 0);
    }
  }
  CHECK(started < finished);

  /* The manifest's blobs are exactly the blobs the events name, each once. */
  char *target = kt_format("docker://%s", reference);
  const char *argv[] = {"skopeo", "inspect", "--tls-verify=false", "--raw", target, NULL};
  char *manifest = NULL;
  REQUIRE(kt_run(NULL, argv, NULL, &manifest) == 0);
  free(target);
  char digests[16][72];
  size_t n_digests = manifest_digests(manifest, digests, 16);
  CHECK(n_digests >= 3); /* config, the base's layer(s), kodata, binary */
  size_t blob_events = 0;
  for (size_t i = 0; i < log.len; i++) blob_events += is_blob_event(log.events[i].kind);
  CHECK(blob_events == n_digests);
  for (size_t d = 0; d < n_digests; d++) {
    size_t named = 0;
    uint64_t size = 0;
    for (size_t i = 0; i < log.len; i++) {
      const event_copy *e = &log.events[i];
      if (!is_blob_event(e->kind) || strcmp(e->digest, digests[d]) != 0) continue;
      named++;
      size = e->size;
      char *prefix = kt_format("%s/hello-", repo);
      CHECK(strncmp(e->repository, prefix, strlen(prefix)) == 0);
      free(prefix);
      if (e->kind != KO_EVENT_BLOB_UPLOADED) continue;
      /* An upload's progress ends at its size. */
      const event_copy *last = NULL;
      for (size_t j = 0; j < log.len; j++) {
        if (log.events[j].kind == KO_EVENT_BLOB_PROGRESS && strcmp(log.events[j].digest, digests[d]) == 0) {
          last = &log.events[j];
        }
      }
      CHECK(last != NULL && last < e && last->sent == last->total && last->total == e->size);
    }
    CHECK(named == 1);
    char *sized = kt_format("\"size\":%llu", (unsigned long long)size);
    CHECK(strstr(manifest, sized) != NULL);
    free(sized);
  }

  /* ko's two layers are among them, with their sizes. */
  size_t layers = 0;
  for (size_t i = 0; i < log.len; i++) {
    const event_copy *e = &log.events[i];
    if (e->kind != KO_EVENT_LAYER_READY) continue;
    layers++;
    CHECK(strcmp(e->layer, "kodata") == 0 || strcmp(e->layer, "binary") == 0);
    /* ko writes descriptors as {"mediaType":...,"size":...,"digest":...}. */
    char *descriptor = kt_format("\"size\":%llu,\"digest\":\"%s\"", (unsigned long long)e->size, e->digest);
    CHECK(strstr(manifest, descriptor) != NULL);
    free(descriptor);
  }
  CHECK(layers == 2);

  /* One manifest put, with the reference's digest, and one published import path. */
  CHECK(count_kind(&log, KO_EVENT_MANIFEST_PUBLISHED) == 1 && count_kind(&log, KO_EVENT_PUBLISHED) == 1);
  for (size_t i = 0; i < log.len; i++) {
    const event_copy *e = &log.events[i];
    if (e->kind == KO_EVENT_MANIFEST_PUBLISHED) CHECK(strcmp(e->digest, digest) == 0);
    if (e->kind == KO_EVENT_PUBLISHED) CHECK(strcmp(e->reference, reference) == 0);
  }

  /* Again: nothing is uploaded or put; every blob is already there. */
  clear_log(&log);
  ko_published_list_t *again = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &again));
  CHECK(strcmp(ko_published_reference(ko_published_list_get(again, 0)), reference) == 0);
  CHECK(count_kind(&log, KO_EVENT_BLOB_UPLOADED) == 0 && count_kind(&log, KO_EVENT_BLOB_PROGRESS) == 0);
  CHECK(count_kind(&log, KO_EVENT_BLOB_EXISTING) == n_digests);
  CHECK(count_kind(&log, KO_EVENT_MANIFEST_PUBLISHED) == 0 && count_kind(&log, KO_EVENT_PUBLISHED) == 1);

  /* No more events once the callback is removed. */
  clear_log(&log);
  REQUIRE_OK(ko_session_set_event_callback(session, NULL, NULL));
  ko_published_list_t *quiet = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &quiet));
  CHECK(log.len == 0);

  ko_published_list_delete(quiet);
  ko_published_list_delete(again);
  ko_published_list_delete(list);
  ko_session_delete(session);
  free(manifest);
  free(log.events);
  pthread_mutex_destroy(&log.lock);
  free(repo);
}

/* ---- A blocking call from inside a callback is refused, not a deadlock ---- */

typedef struct {
  const ko_session_t *session;
  ko_error_code_t code;
  char *message;
} reentry;

static void call_back_in(const ko_event_t *event, void *user_data) {
  reentry *r = user_data;
  if (ko_event_kind(event) != KO_EVENT_BUILD_STARTED || r->message) return;
  char *yaml = NULL;
  ko_error_t *err = ko_resolve_string(r->session, "a: b\n", NULL, NULL, &yaml);
  r->code = ko_error_code(err);
  r->message = strdup(err ? ko_error_message(err) : "");
  ko_error_delete(err);
  ko_string_delete(yaml);
}

TEST(a_blocking_call_from_a_callback_is_an_error) {
  ko_session_t *session = fixture_session("127.0.0.1:1/reentry", false);
  REQUIRE(session != NULL);
  reentry r = {session, KO_OK, NULL};
  REQUIRE_OK(ko_session_set_event_callback(session, call_back_in, &r));
  const char *paths[] = {"./cmd/second"};
  ko_published_list_t *list = NULL;
  REQUIRE_OK(ko_build(session, paths, 1, NULL, &list));
  CHECK(r.code == KO_INVALID_INPUT);
  CHECK(r.message && strstr(r.message, "from inside ko's runtime") != NULL);
  free(r.message);
  ko_published_list_delete(list);
  ko_session_delete(session);
}
