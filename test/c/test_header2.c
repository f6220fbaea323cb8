/* A second translation unit including the header: the inline helpers must not clash at link time. */
#include "tilelli.h"

int tl_test_header_other_unit(void) { return tl_is_error(TL_ERR_EMPTY) ? TL_ERR_EMPTY : TL_OK; }
