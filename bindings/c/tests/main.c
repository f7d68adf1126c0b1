/* The C suite's runner: `ko_c_tests` runs every test, `ko_c_tests NAME...` the named ones (one per
 * ctest entry), `ko_c_tests --list` lists them. */
#include "harness.h"

int main(int argc, char **argv) { return kt_main(argc, argv); }
