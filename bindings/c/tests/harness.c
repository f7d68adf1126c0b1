/* The test harness of libko's C and C++ suites: see harness.h. */
#define _GNU_SOURCE
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#ifndef KT_SOURCE_ROOT
#error "KT_SOURCE_ROOT must name the repository root (CMakeLists.txt defines it)"
#endif

/* ---- Assertions and registration ---- */

static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static int failures;
static int failures_before_test; /* `failures` when the running test started */

void kt_fail(const char *file, int line, const char *fmt, ...) {
  va_list args;
  pthread_mutex_lock(&fail_lock);
  failures++;
  fprintf(stderr, "%s:%d: ", file, line);
  va_start(args, fmt);
  vfprintf(stderr, fmt, args);
  va_end(args);
  fputc('\n', stderr);
  pthread_mutex_unlock(&fail_lock);
}

bool kt_failed(void) {
  pthread_mutex_lock(&fail_lock);
  bool failed = failures > failures_before_test;
  pthread_mutex_unlock(&fail_lock);
  return failed;
}

#define MAX_TESTS 64
static struct {
  const char *name;
  kt_test_fn fn;
} tests[MAX_TESTS];
static size_t n_tests;

void kt_register(const char *name, kt_test_fn fn) {
  if (n_tests == MAX_TESTS) {
    fprintf(stderr, "harness: more than %d tests; raise MAX_TESTS\n", MAX_TESTS);
    abort();
  }
  tests[n_tests].name = name;
  tests[n_tests].fn = fn;
  n_tests++;
}

static bool run_test(size_t i) {
  pthread_mutex_lock(&fail_lock);
  failures_before_test = failures;
  pthread_mutex_unlock(&fail_lock);
  printf("[ RUN      ] %s\n", tests[i].name);
  fflush(stdout);
  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  tests[i].fn();
  clock_gettime(CLOCK_MONOTONIC, &end);
  long ms = (end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
  pthread_mutex_lock(&fail_lock);
  bool ok = failures == failures_before_test;
  pthread_mutex_unlock(&fail_lock);
  printf("[ %s ] %s (%ld ms)\n", ok ? "      OK" : " FAILED ", tests[i].name, ms);
  fflush(stdout);
  return ok;
}

int kt_main(int argc, char **argv) {
  kt_prepare_process();
  size_t ran = 0, passed = 0;
  if (argc > 1 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < n_tests; i++) printf("%s\n", tests[i].name);
    return 0;
  }
  for (size_t i = 0; i < n_tests; i++) {
    bool selected = argc <= 1;
    for (int a = 1; a < argc; a++) selected = selected || strcmp(argv[a], tests[i].name) == 0;
    if (!selected) continue;
    ran++;
    passed += run_test(i);
  }
  for (int a = 1; a < argc; a++) {
    bool known = false;
    for (size_t i = 0; i < n_tests; i++) known = known || strcmp(argv[a], tests[i].name) == 0;
    if (!known) {
      fprintf(stderr, "no test is named %s (--list lists them)\n", argv[a]);
      return 2;
    }
  }
  printf("%zu tests ran, %zu passed, %zu failed\n", ran, passed, ran - passed);
  return passed == ran ? 0 : 1;
}

/* ---- Files, strings, processes ---- */

char *kt_format(const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  char *text = NULL;
  if (vasprintf(&text, fmt, args) < 0) abort();
  va_end(args);
  return text;
}

char *kt_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *text = malloc(cap);
  size_t got;
  while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len - 1 == 0) text = realloc(text, cap *= 2);
  }
  fclose(f);
  text[len] = '\0';
  return text;
}

bool kt_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return false;
  bool ok = fputs(text, f) >= 0;
  return fclose(f) == 0 && ok;
}

char *kt_which(const char *tool) {
  if (strchr(tool, '/')) return access(tool, X_OK) == 0 ? strdup(tool) : NULL;
  const char *path = getenv("PATH");
  if (!path) return NULL;
  char *dirs = strdup(path), *save = NULL;
  char *found = NULL;
  for (char *dir = strtok_r(dirs, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
    char *candidate = kt_format("%s/%s", dir, tool);
    struct stat st;
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0) {
      found = candidate;
    } else {
      free(candidate);
    }
  }
  free(dirs);
  return found;
}

static size_t key_length(const char *entry) {
  const char *eq = strchr(entry, '=');
  return eq ? (size_t)(eq - entry) : strlen(entry);
}

char **kt_environment(const char *const *overrides, size_t n_overrides, size_t *n) {
  size_t count = 0;
  while (environ[count]) count++;
  char **env = calloc(count + n_overrides + 1, sizeof *env);
  size_t out = 0;
  for (size_t i = 0; i < count; i++) {
    bool replaced = false;
    for (size_t o = 0; o < n_overrides; o++) {
      size_t k = key_length(overrides[o]);
      replaced = replaced || (key_length(environ[i]) == k && strncmp(environ[i], overrides[o], k) == 0);
    }
    if (!replaced) env[out++] = strdup(environ[i]);
  }
  for (size_t o = 0; o < n_overrides; o++) env[out++] = strdup(overrides[o]);
  *n = out;
  return env;
}

void kt_free_strings(char **strings, size_t n) {
  for (size_t i = 0; i < n; i++) free(strings[i]);
  free(strings);
}

/* Starts argv with stdout into `out_fd` (or /dev/null when -1) and stderr into `err_fd` (the
 * test's when -1); returns the pid, or -1. Everything the child needs is prepared before fork,
 * because the parent has other threads (libko's runtime). */
static pid_t spawn(const char *cwd, const char *const *argv, const char *const *env, int out_fd, int err_fd) {
  char *program = kt_which(argv[0]);
  if (!program) {
    fprintf(stderr, "harness: %s is not on PATH\n", argv[0]);
    return -1;
  }
  size_t n_env_overrides = 0;
  while (env && env[n_env_overrides]) n_env_overrides++;
  size_t n_env;
  char **envp = kt_environment(env, n_env_overrides, &n_env);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    /* A registry must not outlive a test program that was killed (by ctest's timeout, say). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    dup2(devnull, 0);
    dup2(out_fd >= 0 ? out_fd : devnull, 1);
    if (err_fd >= 0) dup2(err_fd, 2);
    if (cwd && chdir(cwd) != 0) _exit(126);
    execve(program, (char *const *)argv, envp);
    _exit(127);
  }
  close(devnull);
  kt_free_strings(envp, n_env);
  free(program);
  return pid;
}

static int wait_status(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int kt_run(const char *cwd, const char *const *argv, const char *const *env, char **out) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return -1;
  pid_t pid = spawn(cwd, argv, env, pipe_fds[1], -1);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    return -1;
  }
  size_t cap = 4096, len = 0;
  char *text = malloc(cap);
  ssize_t got;
  while ((got = read(pipe_fds[0], text + len, cap - len - 1)) != 0) {
    if (got < 0) {
      if (errno == EINTR) continue;
      break;
    }
    len += (size_t)got;
    if (cap - len - 1 == 0) text = realloc(text, cap *= 2);
  }
  close(pipe_fds[0]);
  text[len] = '\0';
  if (out) {
    *out = text;
  } else {
    free(text);
  }
  return wait_status(pid);
}

/* ---- Temporary directories and fixtures ---- */

static char *temp_root;
static int temp_count;
static kt_registry *shared_registry;
static char *app_copy;

static void cleanup(void) {
  if (shared_registry) kt_registry_stop(shared_registry);
  shared_registry = NULL;
  if (temp_root) {
    const char *argv[] = {"rm", "-rf", temp_root, NULL};
    kt_run(NULL, argv, NULL, NULL);
    free(temp_root);
    temp_root = NULL;
  }
  free(app_copy);
  app_copy = NULL;
}

static pthread_mutex_t temp_lock = PTHREAD_MUTEX_INITIALIZER;
static char *temp_dirs[256];

const char *kt_tempdir(void) {
  pthread_mutex_lock(&temp_lock);
  if (!temp_root) {
    char pattern[] = "/tmp/ko-c-tests-XXXXXX";
    if (!mkdtemp(pattern)) {
      perror("harness: mkdtemp");
      abort();
    }
    temp_root = strdup(pattern);
    atexit(cleanup);
  }
  if (temp_count == 256) abort();
  char *dir = kt_format("%s/%d", temp_root, temp_count);
  temp_dirs[temp_count++] = dir;
  pthread_mutex_unlock(&temp_lock);
  if (mkdir(dir, 0700) != 0) {
    perror("harness: mkdir");
    abort();
  }
  return dir;
}

static void free_temp_dirs(void) {
  for (int i = 0; i < temp_count; i++) free(temp_dirs[i]);
  temp_count = 0;
}

const char *kt_source_root(void) { return KT_SOURCE_ROOT; }

const char *kt_ko_cli(void) {
  const char *cli = getenv("KO_CLI");
  static char *fallback;
  if (!cli) {
    if (!fallback) fallback = kt_format("%s/target/debug/ko", KT_SOURCE_ROOT);
    cli = fallback;
  }
  if (access(cli, X_OK) != 0) {
    fprintf(stderr, "harness: the ko CLI %s does not exist: run `cargo build -p ko-cli` (or set KO_CLI)\n", cli);
    abort();
  }
  return cli;
}

const char *kt_app(void) {
  pthread_mutex_lock(&temp_lock);
  bool made = app_copy != NULL;
  pthread_mutex_unlock(&temp_lock);
  if (!made) {
    char *dir = kt_format("%s/app", kt_tempdir());
    char *source = kt_format("%s/tests/fixtures/app", KT_SOURCE_ROOT);
    const char *argv[] = {"cp", "-a", source, dir, NULL};
    if (kt_run(NULL, argv, NULL, NULL) != 0) {
      fprintf(stderr, "harness: cannot copy %s\n", source);
      abort();
    }
    free(source);
    pthread_mutex_lock(&temp_lock);
    app_copy = dir;
    pthread_mutex_unlock(&temp_lock);
  }
  return app_copy;
}

void kt_prepare_process(void) {
  /* What would change ko's behaviour, as the Rust integration tests scrub it. */
  static const char *const scrubbed[] = {
      "KO_DOCKER_REPO", "KO_CONFIG_PATH", "KO_DEFAULTBASEIMAGE", "KO_DEFAULTPLATFORMS", "KO_DEFAULTENV",
      "KO_DEFAULTFLAGS", "KO_DEFAULTLDFLAGS", "KO_DATA_DATE_EPOCH", "KO_DATA_PATH_ALLOWED_ROOT", "KO_GO_PATH",
      "KOCACHE", "SOURCE_DATE_EPOCH", "GOOS", "GOARCH", "GOARM", "GOAMD64", "GOFLAGS", "CGO_ENABLED",
  };
  for (size_t i = 0; i < sizeof scrubbed / sizeof *scrubbed; i++) unsetenv(scrubbed[i]);
  char *go = kt_which("go");
  if (!go && access("/usr/local/go/bin/go", X_OK) == 0) {
    char *path = kt_format("/usr/local/go/bin:%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", path, 1);
    free(path);
    go = kt_which("go");
  }
  if (!go) {
    fprintf(stderr, "harness: go is not installed (the suite builds real Go programs)\n");
    abort();
  }
  free(go);
  /* Keep the machine's registry credentials out of the way. */
  setenv("DOCKER_CONFIG", kt_tempdir(), 1);
  atexit(free_temp_dirs);
}

/* ---- Processes in /proc ---- */

int kt_count_processes_with_env(const char *marker, const char *comm) {
  DIR *proc = opendir("/proc");
  if (!proc) return -1;
  int count = 0;
  struct dirent *entry;
  size_t marker_len = strlen(marker);
  while ((entry = readdir(proc))) {
    if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
    char path[300]; /* "/proc/" + a name of at most 255 bytes + the longest suffix */
    snprintf(path, sizeof path, "/proc/%s/environ", entry->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[65536];
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0) continue;
    buf[len] = '\0';
    bool has = false;
    for (char *p = buf; p < buf + len; p += strlen(p) + 1) {
      has = has || (strlen(p) == marker_len && memcmp(p, marker, marker_len) == 0);
    }
    if (!has) continue;
    snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
    char *stat = kt_read_file(path);
    if (!stat) continue;
    /* The state follows the command name, which is in parentheses and may hold anything. */
    char *close_paren = strrchr(stat, ')');
    char state = close_paren && close_paren[1] == ' ' ? close_paren[2] : '?';
    free(stat);
    if (state == 'Z' || state == 'X') continue;
    if (comm) {
      snprintf(path, sizeof path, "/proc/%s/comm", entry->d_name);
      char *name = kt_read_file(path);
      if (!name) continue;
      name[strcspn(name, "\n")] = '\0';
      bool same = strcmp(name, comm) == 0;
      free(name);
      if (!same) continue;
    }
    count++;
  }
  closedir(proc);
  return count;
}

/* ---- Servers ---- */

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
    perror("harness: free port");
    abort();
  }
  close(fd);
  return ntohs(addr.sin_port);
}

/* Whether an HTTP server answers on 127.0.0.1:port. */
static bool answers_http(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                             .sin_port = htons((uint16_t)port)};
  bool ok = false;
  if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
    const char request[] = "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    char reply[16] = {0};
    ok = write(fd, request, sizeof request - 1) == (ssize_t)(sizeof request - 1) &&
         read(fd, reply, sizeof reply - 1) > 0 && strncmp(reply, "HTTP/", 5) == 0;
  }
  if (fd >= 0) close(fd);
  return ok;
}

kt_registry *kt_registry_start(const char *extra_config) {
  char *binary = kt_which("docker-registry");
  if (!binary) {
    fprintf(stderr, "harness: docker-registry is not installed (apt-get install -y docker-registry)\n");
    abort();
  }
  free(binary);
  const char *root = kt_tempdir();
  for (int attempt = 0; attempt < 5; attempt++) {
    int port = free_port();
    char *config_path = kt_format("%s/config-%d.yml", root, port);
    char *config = kt_format(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n"
        "http:\n  addr: 127.0.0.1:%d\n  secret: ko-c-tests\n%s",
        root, port, extra_config ? extra_config : "");
    kt_write_file(config_path, config);
    free(config);
    char *log_path = kt_format("%s/registry-%d.log", root, port);
    int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    const char *argv[] = {"docker-registry", "serve", config_path, NULL};
    pid_t pid = spawn(NULL, argv, NULL, log, log);
    close(log);
    free(config_path);
    bool ready = false;
    for (int i = 0; i < 200 && pid > 0 && !ready; i++) {
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        break;
      }
      ready = answers_http(port);
      if (!ready) usleep(100 * 1000);
    }
    if (ready) {
      free(log_path);
      kt_registry *registry = calloc(1, sizeof *registry);
      registry->pid = pid;
      snprintf(registry->address, sizeof registry->address, "127.0.0.1:%d", port);
      registry->root = strdup(root);
      return registry;
    }
    if (pid > 0) {
      kill(pid, SIGKILL);
      wait_status(pid);
    }
    char *log_text = kt_read_file(log_path);
    fprintf(stderr, "harness: docker-registry did not come up on port %d: %s\n", port, log_text ? log_text : "");
    free(log_text);
    free(log_path);
  }
  abort();
}

void kt_registry_stop(kt_registry *registry) {
  if (!registry) return;
  kill(registry->pid, SIGKILL);
  wait_status(registry->pid);
  free(registry->root);
  free(registry);
}

const char *kt_shared_registry(void) {
  pthread_mutex_lock(&temp_lock);
  bool started = shared_registry != NULL;
  pthread_mutex_unlock(&temp_lock);
  if (!started) {
    kt_registry *registry = kt_registry_start(NULL);
    pthread_mutex_lock(&temp_lock);
    shared_registry = registry;
    pthread_mutex_unlock(&temp_lock);
  }
  return shared_registry->address;
}

struct kt_refusing_server {
  int fd;
  int port;
  volatile int stop;
  pthread_t thread;
};

static void *refuse(void *arg) {
  kt_refusing_server *server = arg;
  static const char body[] = "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad credentials\"}]}";
  while (!server->stop) {
    struct pollfd pfd = {.fd = server->fd, .events = POLLIN};
    if (poll(&pfd, 1, 100) <= 0) continue;
    int client = accept4(server->fd, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) continue;
    char request[8192];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof request - 1 && (got = read(client, request + len, sizeof request - 1 - len)) > 0) {
      len += (size_t)got;
      request[len] = '\0';
      if (strstr(request, "\r\n\r\n")) break;
    }
    char *reply = kt_format(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
        "Connection: close\r\n\r\n%s",
        sizeof body - 1, body);
    if (write(client, reply, strlen(reply)) < 0) perror("harness: refusing server");
    free(reply);
    close(client);
  }
  return NULL;
}

kt_refusing_server *kt_refusing_server_start(void) {
  kt_refusing_server *server = calloc(1, sizeof *server);
  server->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
  socklen_t len = sizeof addr;
  if (server->fd < 0 || bind(server->fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
      listen(server->fd, 16) != 0 || getsockname(server->fd, (struct sockaddr *)&addr, &len) != 0) {
    perror("harness: refusing server");
    abort();
  }
  server->port = ntohs(addr.sin_port);
  pthread_create(&server->thread, NULL, refuse, server);
  return server;
}

int kt_refusing_server_port(const kt_refusing_server *server) { return server->port; }

void kt_refusing_server_stop(kt_refusing_server *server) {
  server->stop = 1;
  pthread_join(server->thread, NULL);
  close(server->fd);
  free(server);
}
