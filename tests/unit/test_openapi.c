/* The OpenAPI document: it parses, is 3.1, and lists every route the router knows with its
 * method; the embedded copy the binary serves is the same document. */
#include "../check.h"
#include "http/openapi.h"
#include "http/router.h"

#include <ctype.h>
#include <jansson.h>

int main(void)
{
    json_error_t e;
    json_t *doc = json_load_file(OPENAPI_FILE, 0, &e);
    CHECK(doc != NULL);
    if (doc == NULL) {
        fprintf(stderr, "%s:%d: %s\n", OPENAPI_FILE, e.line, e.text);
        CHECK_DONE();
    }
    json_t *embedded = json_loadb(gw_openapi_document, gw_openapi_document_len, 0, &e);
    CHECK(embedded != NULL && json_equal(doc, embedded));
    json_decref(embedded);
    CHECK(strncmp(json_string_value(json_object_get(doc, "openapi")), "3.1", 3) == 0);
    json_t *paths = json_object_get(doc, "paths");
    CHECK(json_is_object(paths));
    for (int i = 0; i < GW_ROUTE_COUNT; i++) {
        char method[16];
        size_t n = strlen(gw_routes[i].method);
        for (size_t k = 0; k <= n; k++)
            method[k] = (char)tolower((unsigned char)gw_routes[i].method[k]);
        json_t *op = json_object_get(json_object_get(paths, gw_routes[i].pattern), method);
        CHECK(json_is_object(op));
        if (!json_is_object(op))
            fprintf(stderr, "  missing in openapi: %s %s\n", gw_routes[i].method,
                    gw_routes[i].pattern);
        else
            CHECK(json_is_object(json_object_get(op, "responses")));
    }
    json_decref(doc);
    CHECK_DONE();
}
