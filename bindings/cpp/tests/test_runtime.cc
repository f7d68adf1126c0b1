// Threads, cancellation and events through the C++ API: several std::threads on one ko::Session,
// a ko::Cancel triggered from another thread during `go build`, and the events of a build.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "support.hpp"

namespace {

using Clock = std::chrono::steady_clock;

TEST(Runtime, FourThreadsResolveAtOnceOnOneSession) {
  const std::string repo = kt::repo("cpp-threads");
  const ko::Session session(kt::fixture(repo, true));
  std::vector<std::string> results(4);
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; i++) {
    threads.emplace_back([&, i] {
      try {
        results[i] = session.resolve({"config"});
      } catch (const ko::Error &e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto &t : threads) t.join();
  for (int i = 0; i < 4; i++) ASSERT_EQ(errors[i], "") << "thread " << i;
  for (int i = 1; i < 4; i++) EXPECT_EQ(results[i], results[0]);
  EXPECT_TRUE(kt::contains(results[0], "image: " + repo + "/hello-"));
  EXPECT_EQ(session.resolve({"config"}), results[0]);
}

TEST(Runtime, CancelFromAnotherThreadStopsGoBuild) {
  // A cold Go build cache makes go build compile the standard library, long enough to cancel it
  // in the middle; the cache directory also marks every process of this build.
  const std::string cache = std::string(kt_tempdir()) + "/gocache";
  ASSERT_EQ(mkdir(cache.c_str(), 0700), 0);
  const std::string marker = "GOCACHE=" + cache;
  std::map<std::string, std::string> env;
  size_t n = 0;
  const char *overrides[] = {marker.c_str()};
  char **entries = kt_environment(overrides, 1, &n);
  for (size_t i = 0; i < n; i++) {
    std::string entry = entries[i];
    env[entry.substr(0, entry.find('='))] = entry.substr(entry.find('=') + 1);
  }
  kt_free_strings(entries, n);
  ko::Session session(kt::fixture("127.0.0.1:1/cpp-cancel", false).env(env));
  ko::Cancel cancel;
  std::optional<ko::ErrorCode> code;
  Clock::time_point returned;
  std::thread builder([&] {
    try {
      session.build({"./cmd/hello"}, cancel);
    } catch (const ko::Error &e) {
      code = e.code();
    }
    returned = Clock::now();
  });
  bool compiling = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(120); !compiling && Clock::now() < deadline;) {
    compiling = kt_count_processes_with_env(marker.c_str(), "compile") > 0;
    if (!compiling) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(compiling);
  Clock::time_point triggered = Clock::now();
  cancel.trigger();
  builder.join();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(static_cast<int>(*code), static_cast<int>(ko::ErrorCode::Cancelled));
  EXPECT_LT(returned - triggered, std::chrono::seconds(10));
  int left = -1;
  for (auto deadline = Clock::now() + std::chrono::seconds(3); left != 0 && Clock::now() < deadline;) {
    left = kt_count_processes_with_env(marker.c_str(), nullptr);
    if (left != 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(left, 0) << "go processes of the cancelled build are still running";
}

struct Recorded {
  ko::EventKind kind;
  std::string layer, digest, reference;
  std::uint64_t size = 0, sent = 0, total = 0;
};

TEST(Runtime, EventsOfABuildAddUp) {
  const std::string repo = kt::repo("cpp-events");
  ko::Session session(kt::fixture(repo, true).sbom("none"));  // the image's own blobs only
  std::mutex lock;
  std::vector<Recorded> events;
  std::set<std::thread::id> threads;
  session.on_event([&](const ko::Event &event) {
    Recorded r{event.kind(), event.string("layer").value_or(""), event.string("digest").value_or(""),
               event.string("reference").value_or(""), event.number("size").value_or(0),
               event.number("sent").value_or(0), event.number("total").value_or(0)};
    EXPECT_EQ(event.kind_name(), event.json().substr(9, event.kind_name().size()));  // {"kind":"<name>",...
    std::lock_guard<std::mutex> guard(lock);
    events.push_back(r);
    threads.insert(std::this_thread::get_id());
  });
  std::string reference = session.build({"./cmd/hello"})[0].reference;
  auto count = [&](ko::EventKind kind) {
    return std::count_if(events.begin(), events.end(), [&](const Recorded &r) { return r.kind == kind; });
  };
  EXPECT_EQ(count(ko::EventKind::BuildStarted), 1);
  EXPECT_EQ(count(ko::EventKind::BuildFinished), 1);
  EXPECT_EQ(count(ko::EventKind::LayerReady), 2);
  EXPECT_EQ(count(ko::EventKind::ManifestPublished), 1);
  EXPECT_EQ(count(ko::EventKind::Published), 1);
  EXPECT_FALSE(threads.count(std::this_thread::get_id())) << "events arrive on ko's threads";
  // Every blob once; every upload's progress ends at its size; ko's layers are among the blobs.
  std::map<std::string, std::uint64_t> blobs;
  for (const Recorded &r : events) {
    if (r.kind == ko::EventKind::BlobExisting || r.kind == ko::EventKind::BlobMounted || r.kind == ko::EventKind::BlobUploaded) {
      EXPECT_TRUE(blobs.emplace(r.digest, r.size).second) << r.digest << " twice";
    }
    if (r.kind == ko::EventKind::BlobUploaded) {
      auto last = std::find_if(events.rbegin(), events.rend(), [&](const Recorded &p) {
        return p.kind == ko::EventKind::BlobProgress && p.digest == r.digest;
      });
      ASSERT_NE(last, events.rend());
      EXPECT_EQ(last->sent, r.size);
      EXPECT_EQ(last->total, r.size);
    }
    if (r.kind == ko::EventKind::Published) {
      EXPECT_EQ(r.reference, reference);
    }
    if (r.kind == ko::EventKind::ManifestPublished) {
      EXPECT_EQ(r.digest, reference.substr(reference.find('@') + 1));
    }
  }
  int status = -1;
  std::string manifest = kt::run(nullptr, {"skopeo", "inspect", "--tls-verify=false", "--raw", "docker://" + reference}, {}, &status);
  ASSERT_EQ(status, 0);
  size_t described = 0;
  for (size_t at = manifest.find("\"digest\""); at != std::string::npos; at = manifest.find("\"digest\"", at + 1)) described++;
  EXPECT_EQ(blobs.size(), described);
  for (const auto &blob : blobs) {
    // ko writes descriptors as {"mediaType":...,"size":...,"digest":...}.
    EXPECT_TRUE(kt::contains(manifest, "\"size\":" + std::to_string(blob.second) + ",\"digest\":\"" + blob.first + "\""));
  }
  for (const Recorded &r : events) {
    if (r.kind == ko::EventKind::LayerReady) {
      EXPECT_TRUE(r.layer == "kodata" || r.layer == "binary") << r.layer;
      EXPECT_EQ(blobs.count(r.digest), 1u);
    }
  }
}

TEST(Runtime, AnExceptionInTheCallbackDoesNotStopTheBuild) {
  ko::Session session(kt::fixture("127.0.0.1:1/cpp-throws", false));
  std::atomic<int> calls{0};
  session.on_event([&](const ko::Event &) {
    calls++;
    throw std::runtime_error("thrown on purpose by the test");
  });
  EXPECT_EQ(session.build({"./cmd/second"}).size(), 1u);
  EXPECT_GT(calls.load(), 0);
  // An empty callback stops delivery.
  session.on_event(nullptr);
  int before = calls.load();
  session.build({"./cmd/second"});
  EXPECT_EQ(calls.load(), before);
}

}  // namespace
