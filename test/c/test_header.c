/* test_header.c — header hygiene: tilelli.h compiles alone, twice, with nothing before it. */
#include "tilelli.h"
#include "tilelli.h"

#include "check.h"

int tl_test_header_other_unit(void);

int main(void) {
    CHECK(tl_version() ==
              TILELLI_VERSION_MAJOR * 10000u + TILELLI_VERSION_MINOR * 100u + TILELLI_VERSION_PATCH,
          "version %u", tl_version());
    CHECK(tl_test_header_other_unit() == TL_ERR_EMPTY, "a second unit including the header links");
    return check_report("header");
}
