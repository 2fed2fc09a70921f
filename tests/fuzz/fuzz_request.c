/* Fuzz target: routing and request validation. The input is split into method, path, query,
 * content type and body, as an HTTP request would carry them. */
#include "http/request.h"
#include "http/router.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Takes the next NUL- or newline-terminated field of (data, size). */
static char *field(const uint8_t **data, size_t *size)
{
    size_t n = 0;
    while (n < *size && (*data)[n] != '\n' && (*data)[n] != '\0')
        n++;
    char *s = malloc(n + 1);
    memcpy(s, *data, n);
    s[n] = '\0';
    size_t skip = n < *size ? n + 1 : n;
    *data += skip;
    *size -= skip;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"};
    if (size < 1)
        return 0;
    const char *method = methods[data[0] % 6];
    data++;
    size--;
    char *path = field(&data, &size);
    char *query = field(&data, &size);
    char *ctype = field(&data, &size);
    struct gw_route_match m;
    if (gw_route_match(method, path, &m) == GW_MATCH_OK) {
        /* query: "k=v&k=v", decoded like the server does */
        struct gw_query_param params[16];
        size_t nq = 0;
        char *save = NULL;
        for (char *kv = strtok_r(query, "&", &save); kv && nq < 16;
             kv = strtok_r(NULL, "&", &save)) {
            char *eq = strchr(kv, '=');
            const char *v = eq ? eq + 1 : "";
            if (eq)
                *eq = '\0';
            char *k = malloc(strlen(kv) + 1), *val = malloc(strlen(v) + 1);
            if (gw_percent_decode(kv, strlen(kv), k, strlen(kv) + 1, 1) < 0 ||
                gw_percent_decode(v, strlen(v), val, strlen(v) + 1, 1) < 0) {
                free(k);
                free(val);
                continue;
            }
            params[nq].key = k;
            params[nq].value = val;
            nq++;
        }
        struct gw_http_request req = {.match = &m,
                                      .content_type = ctype[0] ? ctype : NULL,
                                      .body = size ? (const char *)data : NULL,
                                      .body_len = size,
                                      .query = params,
                                      .nquery = nq};
        struct gw_cmd *cmd = NULL;
        struct gw_http_reply reply = {0};
        if (gw_http_prepare(&req, &cmd, &reply) == 0)
            gw_cmd_free(cmd);
        else
            json_decref(reply.body);
        for (size_t i = 0; i < nq; i++) {
            free(params[i].key);
            free(params[i].value);
        }
    }
    free(path);
    free(query);
    free(ctype);
    return 0;
}
