/* ko.h compiles as the first and only include of a translation unit, in C99 and C11 with
 * -Wall -Wextra -Werror -pedantic (CMakeLists.txt builds this file both ways), and included twice. */
#include <ko.h>
#include <ko.h>

int main(void) {
  ko_error_code_t code = KO_OK;
  ko_event_kind_t kind = KO_EVENT_BUILD_STARTED;
  return (ko_version() != NULL && code == KO_OK && kind == 1) ? 0 : 1;
}
