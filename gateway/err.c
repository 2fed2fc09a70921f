/* Text for enum gw_err. */
#include "err.h"

const char *gw_strerror(enum gw_err err)
{
    switch (err) {
    case GW_OK:
        return "ok";
    case GW_ERR_NOMEM:
        return "out of memory";
    case GW_ERR_INVALID:
        return "invalid argument";
    case GW_ERR_IO:
        return "input/output error";
    case GW_ERR_STATE:
        return "wrong state";
    case GW_ERR_LIMIT:
        return "limit reached";
    }
    return "unknown error";
}
