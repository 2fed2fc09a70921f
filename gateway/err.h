/* The gateway's error codes: one enum for every module, turned into text by gw_strerror(). */
#ifndef GW_ERR_H
#define GW_ERR_H

enum gw_err {
    GW_OK = 0,
    GW_ERR_NOMEM,
    GW_ERR_INVALID,
    GW_ERR_IO,
    GW_ERR_STATE,
    GW_ERR_LIMIT,
};

const char *gw_strerror(enum gw_err err);

#endif
