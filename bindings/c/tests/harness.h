/* The test harness shared by libko's C suite (bindings/c/tests) and C++ suite (bindings/cpp/tests):
 * a small assert and registration layer for the C tests, and what both suites need around libko,
 * all against the real things: a private docker-registry on a free loopback port, a private copy
 * of the Go fixture module tests/fixtures/app, temporary directories, running programs (the ko
 * CLI, skopeo) and reading /proc. Everything it starts is stopped by pid at exit, and every
 * temporary directory removed. A missing tool is a failure with a clear message, never a skip. */
#ifndef KO_TEST_HARNESS_H
#define KO_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Assertions and registration (C suite; the C++ suite has GoogleTest's) ---- */

/* Records a failure of the running test, printing where and why. */
void kt_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Whether the running test has failed so far. */
bool kt_failed(void);

#ifndef __cplusplus
#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) kt_fail(__FILE__, __LINE__, "check failed: %s", #cond);     \
  } while (0)
#define REQUIRE(cond)                                                        \
  do {                                                                       \
    if (!(cond)) {                                                           \
      kt_fail(__FILE__, __LINE__, "requirement failed: %s", #cond);          \
      return;                                                                \
    }                                                                        \
  } while (0)

typedef void (*kt_test_fn)(void);
void kt_register(const char *name, kt_test_fn fn);

/* Declares a test; the test's name is what ctest runs it by (`ko_c_tests NAME`). */
#define TEST(name)                                                               \
  static void name(void);                                                        \
  __attribute__((constructor)) static void kt_register_##name(void) { kt_register(#name, name); } \
  static void name(void)
#endif

/* Runs the registered tests named in argv (all with no names); 0 when all passed. Prepares the
 * process first: removes the KO_* variables (and others that change ko's behaviour) from the
 * environment, points DOCKER_CONFIG at an empty directory, and puts go on PATH. */
int kt_main(int argc, char **argv);
/* The same preparation, for a test runner of its own (the C++ suite's gtest main). */
void kt_prepare_process(void);

/* ---- The real things ---- */

typedef struct kt_registry {
  pid_t pid;
  char address[64]; /* "127.0.0.1:PORT" */
  char *root;
} kt_registry;

/* Starts `docker-registry serve` on a free loopback port with filesystem storage under a new
 * temporary directory; `extra_config` (may be NULL) is appended to its YAML configuration. */
kt_registry *kt_registry_start(const char *extra_config);
/* Kills the registry by pid and waits for it. */
void kt_registry_stop(kt_registry *registry);
/* One registry shared by every test of the process, started on first use, stopped at exit. */
const char *kt_shared_registry(void);

/* An HTTP server on a free loopback port that answers every request with 401 and a registry
 * error body: a token service that refuses everyone. */
typedef struct kt_refusing_server kt_refusing_server;
kt_refusing_server *kt_refusing_server_start(void);
int kt_refusing_server_port(const kt_refusing_server *server);
void kt_refusing_server_stop(kt_refusing_server *server);

/* A new temporary directory, removed at exit. Owned by the harness. */
const char *kt_tempdir(void);
/* A private copy of tests/fixtures/app (the Go module example.com/app), made once per process. */
const char *kt_app(void);
/* The repository's root directory. */
const char *kt_source_root(void);
/* The ko CLI binary (KO_CLI, else target/debug/ko), failing clearly when it is missing. */
const char *kt_ko_cli(void);
/* The full path of `tool` on PATH, or NULL. */
char *kt_which(const char *tool);

/* Runs argv[0] (searched on PATH) in `cwd` (NULL: here) with the process environment plus
 * `env` ("KEY=VALUE" entries, NULL-terminated; may be NULL). Stores its standard output in
 * `*out` (malloc'd; may be NULL to discard) and returns its exit status, or -1 when it could not
 * run or was killed. Standard error goes to the test's. */
int kt_run(const char *cwd, const char *const *argv, const char *const *env, char **out);

/* The process environment plus `overrides` ("KEY=VALUE", replacing those keys), as a malloc'd
 * array of malloc'd strings with its length in `*n`; free it with kt_free_strings. */
char **kt_environment(const char *const *overrides, size_t n_overrides, size_t *n);
void kt_free_strings(char **strings, size_t n);

/* A file's whole contents (malloc'd, NUL-terminated), or NULL. */
char *kt_read_file(const char *path);
/* Writes `text` to `path` (creating it); false on failure. */
bool kt_write_file(const char *path, const char *text);
/* A malloc'd printf. */
char *kt_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How many live processes (not zombies) have `marker` ("KEY=VALUE") in their environment; when
 * `comm` is not NULL, only those whose command name is `comm`. */
int kt_count_processes_with_env(const char *marker, const char *comm);

#ifdef __cplusplus
}
#endif

#endif /* KO_TEST_HARNESS_H */
