// The C++ suite's runner: GoogleTest's, after the harness has prepared the process (KO_*
// variables removed, an empty DOCKER_CONFIG, go on PATH).
#include <gtest/gtest.h>

#include "harness.h"

int main(int argc, char **argv) {
  testing::InitGoogleTest(&argc, argv);
  kt_prepare_process();
  return RUN_ALL_TESTS();
}
