// The C++ version of build.c: builds the Go main package in a module directory into an image in
// an OCI layout with libko's C++ API (ko.hpp), and prints its reference.
//
//   c++ -std=c++17 build.cpp $(pkg-config --cflags --libs ko) -o build && ./build ../hello /tmp/layout
#include <iostream>
#include <ko.hpp>

int main(int argc, char **argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " GO_MODULE_DIR OCI_LAYOUT_DIR\n";
    return 2;
  }
  try {
    ko::Session session(ko::Options().working_dir(argv[1]).oci_layout_path(argv[2]).push(false));
    session.on_event([](const ko::Event &event) {  // called on libko's threads
      if (event.kind() == ko::EventKind::BuildStarted) {
        std::cerr << "building " << event.string("importPath").value_or("") << " for "
                  << event.string("platform").value_or("") << "\n";
      }
    });
    std::vector<ko::Published> published = session.build({"."});
    std::cout << published[0].reference << "\n";
  } catch (const ko::Error &e) {
    std::cerr << "ko: " << e.code_name() << ": " << e.what() << "\n";
    return 1;
  }
  return 0;
}
