// ko.hpp: the C++ API of libko (C++17). The same library as ko.h's C API, reached through a
// cxx bridge compiled into libko: link libko (CMake: ko::cpp or ko::cpp_static) and include this.
//
//   ko::Session session(ko::Options().docker_repo("registry.example.com/team").push(true));
//   std::vector<ko::Published> images = session.build({"./cmd/server"});
//   std::string yaml = session.resolve({"config/"});
//
// Errors are thrown as ko::Error (a std::runtime_error) whose code() is one of the stable codes
// of ko.h's ko_error_code_t. Ownership is C++'s: every object owns its state and frees it when
// destroyed. Threads: a ko::Session is thread-safe (its const member functions may be called
// from several threads at once, each call blocking its thread); a ko::Cancel may be triggered
// from any thread; a ko::Options builder must be set from one thread at a time. Event callbacks
// run on ko's worker threads, possibly several at once, and must not call the session back.
#ifndef KO_HPP
#define KO_HPP

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ko.h"
#include "ko/bridge.rs.h"

namespace ko {

// The stable error codes (ko.h's ko_error_code_t).
enum class ErrorCode : std::uint32_t {
  InvalidInput = KO_INVALID_INPUT,
  NotFound = KO_NOT_FOUND,
  Build = KO_BUILD,
  Registry = KO_REGISTRY,
  Auth = KO_AUTH,
  Io = KO_IO,
  Config = KO_CONFIG,
  Kubectl = KO_KUBECTL,
  Cancelled = KO_CANCELLED,
  Unsupported = KO_UNSUPPORTED,
  Internal = KO_INTERNAL,
};

// The kinds of event (ko.h's ko_event_kind_t, which lists each kind's fields).
enum class EventKind : std::uint32_t {
  BuildStarted = KO_EVENT_BUILD_STARTED,
  GoOutput = KO_EVENT_GO_OUTPUT,
  BuildFinished = KO_EVENT_BUILD_FINISHED,
  LayerReady = KO_EVENT_LAYER_READY,
  BlobExisting = KO_EVENT_BLOB_EXISTING,
  BlobMounted = KO_EVENT_BLOB_MOUNTED,
  BlobProgress = KO_EVENT_BLOB_PROGRESS,
  BlobUploaded = KO_EVENT_BLOB_UPLOADED,
  ManifestPublished = KO_EVENT_MANIFEST_PUBLISHED,
  Published = KO_EVENT_PUBLISHED,
  ResolveFileDone = KO_EVENT_RESOLVE_FILE_DONE,
  KubectlOutput = KO_EVENT_KUBECTL_OUTPUT,
};

// What every failing call throws: what() is the message the ko CLI prints after "Error: ".
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string &message, std::optional<int> exit_code = std::nullopt)
      : std::runtime_error(message), code_(code), exit_code_(exit_code) {}

  ErrorCode code() const noexcept { return code_; }
  // The code's stable name, such as "KO_INVALID_INPUT".
  const char *code_name() const noexcept { return ko_error_code_name(static_cast<std::uint32_t>(code_)); }
  // kubectl's exit status, when kubectl ran and failed (code() is ErrorCode::Kubectl).
  std::optional<int> exit_code() const noexcept { return exit_code_; }

 private:
  ErrorCode code_;
  std::optional<int> exit_code_;
};

namespace detail {

inline void check(const bridge::Status &status) {
  if (status.code != 0) {
    std::optional<int> exit_code;
    if (status.has_exit_code) exit_code = status.exit_code;
    throw Error(static_cast<ErrorCode>(status.code), std::string(status.message), exit_code);
  }
}

inline std::vector<std::string> pairs(const std::map<std::string, std::string> &map) {
  std::vector<std::string> entries;
  entries.reserve(map.size());
  for (const auto &entry : map) entries.push_back(entry.first + "=" + entry.second);
  return entries;
}

}  // namespace detail

// One built and published import path.
struct Published {
  std::string import_path;  // the fully qualified import path
  std::string reference;    // what to use the image by: repo@sha256:..., repo:tag@sha256:...
  std::vector<std::string> children;  // for a multi-platform index: each image by digest
};

// What a resolve takes besides the session's options (the defaults are ko resolve's).
struct ResolveOptions {
  bool recursive = false;  // walk directories (-R)
  std::string selector;    // keep only matching objects (-l); empty: all
  bool strict = true;      // only ko:// scalars are references (--strict)
};

// Cancels the calls it is passed to when trigger() is called, from any thread: they throw
// ko::Error with ErrorCode::Cancelled once their go/kubectl processes are killed and their
// temporary files removed. A triggered Cancel stays triggered. Thread-safe; not copyable (pass it
// by reference, and keep it alive while calls use it).
class Cancel {
 public:
  Cancel() : inner_(bridge::new_cancel()) {}
  Cancel(const Cancel &) = delete;
  Cancel &operator=(const Cancel &) = delete;

  void trigger() const noexcept { inner_->trigger(); }
  bool is_triggered() const noexcept { return inner_->is_triggered(); }

  const bridge::Cancel &get() const noexcept { return *inner_; }

 private:
  rust::Box<bridge::Cancel> inner_;
};

// One event, lent to the callback: valid only while the callback runs (copy what you keep).
class Event {
 public:
  explicit Event(const bridge::Event &event) noexcept : event_(event) {}

  EventKind kind() const { return static_cast<EventKind>(event_.kind()); }
  // The kind's name in the JSON form, such as "buildStarted".
  std::string kind_name() const { return std::string(event_.kind_name()); }
  // The whole event as JSON ({"kind":"buildStarted","importPath":...}).
  std::string json() const { return std::string(event_.json()); }
  // A string field by its JSON name ("importPath", "digest", ...), if this kind has it.
  std::optional<std::string> string(const std::string &field) const {
    bool found = false;
    rust::String value = event_.string_field(field, found);
    if (!found) return std::nullopt;
    return std::string(value);
  }
  // A number field ("size", "sent", "total", "durationMs", "references"; "cached" as 0 or 1).
  std::optional<std::uint64_t> number(const std::string &field) const {
    std::uint64_t value = 0;
    if (!event_.number_field(field, value)) return std::nullopt;
    return value;
  }

 private:
  const bridge::Event &event_;
};

// Options for a session, as a builder: each setter returns *this. Unset options fall back to the
// environment and .ko.yaml as in the ko CLI. The names are ko's option names (ko.h's
// ko_options_set_<name>). Lists replace the whole list. A setter throws ko::Error only for text
// that is not UTF-8; the values are checked when a Session is made from them. Copyable.
class Options {
 public:
  Options() : inner_(bridge::new_options()) {}
  Options(const Options &other) : inner_(bridge::clone_options(*other.inner_)) {}
  Options &operator=(const Options &other) {
    if (this != &other) inner_ = bridge::clone_options(*other.inner_);
    return *this;
  }

  Options &docker_repo(const std::string &value) { return text("docker_repo", value); }
  Options &base_image(const std::string &value) { return text("base_image", value); }
  Options &platforms(const std::vector<std::string> &values) { return list("platforms", values); }
  Options &tags(const std::vector<std::string> &values) { return list("tags", values); }
  Options &tag_only(bool value = true) { return flag("tag_only", value); }
  Options &push(bool value) { return flag("push", value); }
  Options &local(bool value = true) { return flag("local", value); }
  Options &preserve_import_paths(bool value = true) { return flag("preserve_import_paths", value); }
  Options &base_import_paths(bool value = true) { return flag("base_import_paths", value); }
  Options &bare(bool value = true) { return flag("bare", value); }
  Options &insecure_registry(bool value = true) { return flag("insecure_registry", value); }
  Options &oci_layout_path(const std::string &path) { return text("oci_layout_path", path); }
  Options &tarball(const std::string &path) { return text("tarball", path); }
  Options &image_refs(const std::string &path) { return text("image_refs", path); }
  Options &jobs(std::size_t value) {
    bridge::Status status{};
    inner_->set_count("jobs", value, status);
    detail::check(status);
    return *this;
  }
  Options &sbom(const std::string &value) { return text("sbom", value); }
  /** Also writes each SBOM into this directory. */
  Options &sbom_dir(const std::string &path) { return text("sbom_dir", path); }
  /** How ko's own layers are compressed: "gzip" (the default) or "zstd". */
  Options &layer_compression(const std::string &value) { return text("layer_compression", value); }
  Options &image_labels(const std::map<std::string, std::string> &labels) {
    return list("image_labels", detail::pairs(labels));
  }
  Options &image_annotations(const std::map<std::string, std::string> &annotations) {
    return list("image_annotations", detail::pairs(annotations));
  }
  Options &image_user(const std::string &value) { return text("image_user", value); }
  Options &ldflags(const std::vector<std::string> &values) { return list("ldflags", values); }
  Options &disable_optimizations(bool value = true) { return flag("disable_optimizations", value); }
  Options &config_path(const std::string &path) { return text("config_path", path); }
  Options &working_dir(const std::string &path) { return text("working_dir", path); }
  // The whole environment ko reads and gives go and kubectl (else the process's, when the
  // Session is made).
  Options &env(const std::map<std::string, std::string> &variables) { return list("env", detail::pairs(variables)); }

  // Unsets a text or path option by name ("docker_repo", "working_dir", ...).
  Options &unset(const std::string &name) {
    bridge::Status status{};
    inner_->unset(name, status);
    detail::check(status);
    return *this;
  }

  // Replaces every option with a JSON object of camelCase names, as ko.h's ko_options_set_json.
  Options &json(const std::string &json) {
    bridge::Status status{};
    inner_->set_json(json, status);
    detail::check(status);
    return *this;
  }

  const bridge::Options &get() const noexcept { return *inner_; }

 private:
  Options &text(const char *name, const std::string &value) {
    bridge::Status status{};
    inner_->set_text(name, value, status);
    detail::check(status);
    return *this;
  }
  Options &flag(const char *name, bool value) {
    bridge::Status status{};
    inner_->set_flag(name, value, status);
    detail::check(status);
    return *this;
  }
  Options &list(const char *name, const std::vector<std::string> &values) {
    bridge::Status status{};
    inner_->set_list(name, values, status);
    detail::check(status);
    return *this;
  }

  rust::Box<bridge::Options> inner_;
};

// A configured ko engine. Making one reads the environment and .ko.yaml and checks the options
// (throwing ko::Error), without touching the network or go. Every call blocks its thread until
// ko is done and throws ko::Error when it fails. Thread-safe; movable, not copyable.
class Session {
 public:
  explicit Session(const Options &options) : inner_(open(options)) {}
  Session(const Session &) = delete;
  Session &operator=(const Session &) = delete;
  Session(Session &&) noexcept = default;
  Session &operator=(Session &&) noexcept = default;

  // Builds and publishes the Go main packages (full, ./relative or ko:// import paths; none
  // builds "."), each once and concurrently, as ko build does: one result per argument, in order.
  std::vector<Published> build(const std::vector<std::string> &import_paths, const Cancel &cancel = Cancel()) const {
    bridge::Status status{};
    rust::Vec<bridge::Published> built = inner_->build(import_paths, cancel.get(), status);
    detail::check(status);
    std::vector<Published> published;
    published.reserve(built.size());
    for (const bridge::Published &p : built) {
      Published entry{std::string(p.import_path), std::string(p.reference), {}};
      for (const rust::String &child : p.children) entry.children.emplace_back(child);
      published.push_back(std::move(entry));
    }
    return published;
  }

  // Resolves YAML files and directories as ko resolve -f does; only the ko:// scalars change.
  std::string resolve(const std::vector<std::string> &paths, const ResolveOptions &options = {},
                      const Cancel &cancel = Cancel()) const {
    bridge::Status status{};
    rust::String yaml = inner_->resolve_files(paths, bridge_options(options), cancel.get(), status);
    detail::check(status);
    return std::string(yaml);
  }

  // Resolves one YAML text (named "-" in messages).
  std::string resolve_string(const std::string &yaml, const ResolveOptions &options = {},
                             const Cancel &cancel = Cancel()) const {
    bridge::Status status{};
    rust::String resolved = inner_->resolve_string(yaml, bridge_options(options), cancel.get(), status);
    detail::check(status);
    return std::string(resolved);
  }

  // Resolves paths, then pipes the result into kubectl apply -f - kubectl_args...; kubectl's
  // output arrives as EventKind::KubectlOutput events.
  void apply(const std::vector<std::string> &paths, const std::vector<std::string> &kubectl_args = {},
             const ResolveOptions &options = {}, const Cancel &cancel = Cancel()) const {
    kubectl_resolved(false, paths, kubectl_args, options, cancel);
  }

  // As apply, with kubectl create -f -.
  void create(const std::vector<std::string> &paths, const std::vector<std::string> &kubectl_args = {},
              const ResolveOptions &options = {}, const Cancel &cancel = Cancel()) const {
    kubectl_resolved(true, paths, kubectl_args, options, cancel);
  }

  // kubectl delete kubectl_args..., as ko delete (delete is a C++ keyword, hence the underscore).
  void delete_(const std::vector<std::string> &kubectl_args, const Cancel &cancel = Cancel()) const {
    bridge::Status status{};
    inner_->kubectl_delete(kubectl_args, cancel.get(), status);
    detail::check(status);
  }

  // Builds and publishes import_path, then kubectl run ... --image=<reference> ..., as ko run.
  void run(const std::string &import_path, const std::vector<std::string> &kubectl_args = {},
           const Cancel &cancel = Cancel()) const {
    bridge::Status status{};
    inner_->run(import_path, kubectl_args, cancel.get(), status);
    detail::check(status);
  }

  // Writes the tarball and image-refs files; later calls throw. A second finish() does nothing.
  void finish() const {
    bridge::Status status{};
    inner_->finish(status);
    detail::check(status);
  }

  // Delivers the events of later calls to callback, on ko's worker threads (possibly several
  // at once). Replaces any earlier callback; an empty std::function stops delivery. An exception
  // escaping the callback is reported on stderr and ignored.
  void on_event(std::function<void(const Event &)> callback) const {
    auto handler = std::make_unique<bridge::EventHandler>(
        [callback = std::move(callback)](const bridge::Event &event) {
          if (callback) callback(Event(event));
        });
    bridge::Status status{};
    inner_->set_event_handler(std::move(handler), status);
    detail::check(status);
  }

 private:
  static rust::Box<bridge::Session> open(const Options &options) {
    bridge::Status status{};
    rust::Box<bridge::Session> session = bridge::new_session(options.get(), status);
    detail::check(status);
    return session;
  }

  static bridge::ResolveOptions bridge_options(const ResolveOptions &options) {
    return bridge::ResolveOptions{options.recursive, rust::String(options.selector), options.strict};
  }

  void kubectl_resolved(bool create, const std::vector<std::string> &paths,
                        const std::vector<std::string> &kubectl_args, const ResolveOptions &options,
                        const Cancel &cancel) const {
    bridge::Status status{};
    inner_->apply(create, paths, bridge_options(options), kubectl_args, cancel.get(), status);
    detail::check(status);
  }

  rust::Box<bridge::Session> inner_;
};

// The version of libko, such as "0.1.0".
inline std::string version() { return std::string(bridge::version()); }

}  // namespace ko

#endif  // KO_HPP
