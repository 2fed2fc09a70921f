/* The OpenAPI 3.1 document (openapi/openapi.json), embedded at build time. */
#ifndef GW_HTTP_OPENAPI_H
#define GW_HTTP_OPENAPI_H

#include <stddef.h>

extern const char gw_openapi_document[];
extern const size_t gw_openapi_document_len;

#endif
