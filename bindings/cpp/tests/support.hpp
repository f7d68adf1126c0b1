// What the C++ tests share: sessions on the Go fixture module, running programs, and a check
// that a call throws ko::Error with a given code and message.
#ifndef KO_CPP_TEST_SUPPORT_HPP
#define KO_CPP_TEST_SUPPORT_HPP

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <ko.hpp>
#include <string>
#include <vector>

#include "harness.h"

namespace kt {

// "<shared registry>/<name>".
inline std::string repo(const std::string &name) { return std::string(kt_shared_registry()) + "/" + name; }

// Options for the fixture module: `repo` as the destination, the fixture copy as the working
// directory, and whether to push.
inline ko::Options fixture(const std::string &repository, bool push) {
  return ko::Options().docker_repo(repository).working_dir(kt_app()).push(push);
}

// Runs a program (see kt_run); its standard output, and its exit status in *status.
inline std::string run(const char *cwd, const std::vector<std::string> &argv, const std::vector<std::string> &env,
                       int *status) {
  std::vector<const char *> args, vars;
  for (const auto &a : argv) args.push_back(a.c_str());
  args.push_back(nullptr);
  for (const auto &v : env) vars.push_back(v.c_str());
  vars.push_back(nullptr);
  char *out = nullptr;
  *status = kt_run(cwd, args.data(), vars.data(), &out);
  std::string text = out ? out : "";
  std::free(out);
  return text;
}

inline bool contains(const std::string &text, const std::string &needle) {
  return text.find(needle) != std::string::npos;
}

// Runs `call`, expecting a ko::Error with `code` whose message contains `needle`; returns it.
inline ko::Error expect_error(const std::function<void()> &call, ko::ErrorCode code, const std::string &needle) {
  try {
    call();
  } catch (const ko::Error &e) {
    EXPECT_EQ(static_cast<std::uint32_t>(e.code()), static_cast<std::uint32_t>(code)) << e.code_name() << ": " << e.what();
    EXPECT_TRUE(contains(e.what(), needle)) << "\"" << needle << "\" is not in: " << e.what();
    return e;
  }
  ADD_FAILURE() << "no ko::Error was thrown (expected \"" << needle << "\")";
  return ko::Error(ko::ErrorCode::Internal, "nothing was thrown");
}

}  // namespace kt

#endif  // KO_CPP_TEST_SUPPORT_HPP
