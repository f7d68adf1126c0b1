// ko.hpp compiles as the first and only include of a translation unit with -std=c++17 -Wall
// -Wextra -Werror -pedantic (CMakeLists.txt), and included twice.
#include <ko.hpp>
#include <ko.hpp>

int main() { return ko::version().empty() || static_cast<std::uint32_t>(ko::ErrorCode::Cancelled) != KO_CANCELLED ? 1 : 0; }
