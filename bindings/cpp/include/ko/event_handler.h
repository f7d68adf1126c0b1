// Part of libko's C++ API (ko.hpp); included by the generated bridge header, not by users.
//
// ko::bridge::EventHandler holds the std::function a ko::Session delivers events to. The engine
// calls it from its worker threads, possibly several at once; an exception escaping the user's
// callback must not unwind into Rust, so call() catches it, reports it on stderr and goes on (as
// Python's logging does with a failing handler): the build is not affected.
#ifndef KO_EVENT_HANDLER_H
#define KO_EVENT_HANDLER_H

#include <cstdio>
#include <exception>
#include <functional>
#include <utility>

namespace ko {
namespace bridge {

struct Event;

class EventHandler {
 public:
  explicit EventHandler(std::function<void(const Event &)> callback) : callback_(std::move(callback)) {}

  void call(const Event &event) const noexcept {
    try {
      callback_(event);
    } catch (const std::exception &e) {
      std::fprintf(stderr, "ko: an exception escaped the event callback: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "ko: an exception escaped the event callback\n");
    }
  }

 private:
  std::function<void(const Event &)> callback_;
};

}  // namespace bridge
}  // namespace ko

#endif  // KO_EVENT_HANDLER_H
