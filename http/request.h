/* HTTP request to command: validates everything that can be checked without XMPP (content
 * type, JSON body, query parameters, ids) and either builds the command for the loop thread or
 * an immediate answer. Pure: no libmicrohttpd here, so it is unit tested and fuzzed directly. */
#ifndef GW_HTTP_REQUEST_H
#define GW_HTTP_REQUEST_H

#include "../gateway/cmd.h"
#include "../gateway/config.h"
#include "router.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct gw_query_param {
    char *key;   /* decoded */
    char *value; /* decoded */
};

struct gw_replay;

struct gw_http_request {
    const struct gw_route_match *match;
    const struct gw_config *cfg; /* hook secrets; may be NULL (no secrets) */
    const char *hub_signature;   /* X-Hub-Signature-256, or NULL */
    const char *delivery_id;     /* X-GitHub-Delivery / Idempotency-Key, or NULL */
    struct gw_replay *replay;    /* signed hooks seen recently; NULL: no replay check */
    int64_t now_ms;              /* for the replay window */
    const char *content_type;    /* NULL when absent */
    const char *body;            /* NULL when empty */
    size_t body_len;
    const struct gw_query_param *query;
    size_t nquery;
};

struct gw_http_reply {
    int status;
    json_t *body;    /* JSON body or problem object; NULL for none */
    int retry_after; /* seconds, 0 for none */
};

/* Builds the command for req into *cmd (caller posts or frees it) and returns 0; or returns -1
 * with an immediate answer (a 4xx problem) in *reply, whose body the caller owns. */
int gw_http_prepare(const struct gw_http_request *req, struct gw_cmd **cmd,
                    struct gw_http_reply *reply);

/* 1 when a JID given by a client looks acceptable to send to the server: 1..3071 bytes of
 * UTF-8, no whitespace or control characters, at most one '@' before the domain. */
int gw_valid_jid(const char *jid);

/* 1 when url is acceptable as a webhook callback or fetched URL (http/https, a host, an optional
 * numeric port, no user information or fragment, at most 2048 printable ASCII characters); else
 * 0 with the reason in err, which the caller prefixes with the field's name. */
int gw_valid_callback(const char *url, char *err, size_t errlen);

#endif
