/* Request routing: method and raw (still percent-encoded) path to a route and its decoded
 * parameters. Pure and allocation-light, so it is unit tested and fuzzed without a socket. */
#ifndef GW_HTTP_ROUTER_H
#define GW_HTTP_ROUTER_H

#include <stddef.h>

enum gw_route {
    GW_ROUTE_HEALTH = 0,
    GW_ROUTE_METRICS,
    GW_ROUTE_OPENAPI_JSON,
    GW_ROUTE_OPENAPI_YAML,
    GW_ROUTE_NODES_LIST,
    GW_ROUTE_NODE_CREATE,
    GW_ROUTE_NODE_GET,
    GW_ROUTE_NODE_DELETE,
    GW_ROUTE_ITEMS_LIST,
    GW_ROUTE_ITEM_PUBLISH,
    GW_ROUTE_ITEM_GET,
    GW_ROUTE_ITEM_DELETE,
    GW_ROUTE_NODE_CONFIG_GET,
    GW_ROUTE_NODE_CONFIG_SET,
    GW_ROUTE_NODE_PURGE,
    GW_ROUTE_NODE_SUBS_GET,
    GW_ROUTE_NODE_SUBS_SET,
    GW_ROUTE_NODE_AFFS_GET,
    GW_ROUTE_NODE_AFFS_SET,
    GW_ROUTE_NODE_EVENTS,
    GW_ROUTE_HOOK,
    GW_ROUTE_SUBS_LIST,
    GW_ROUTE_SUB_CREATE,
    GW_ROUTE_SUB_GET,
    GW_ROUTE_SUB_DELETE,
    GW_ROUTE_DEAD_LIST,
    GW_ROUTE_DEAD_RETRY,
    GW_ROUTE_ATTEMPTS_LIST,
    GW_ROUTE_READY,
    GW_ROUTE_NODE_FEED,
    GW_ROUTE_WEBSUB,
    GW_ROUTE_FEEDS_LIST,
    GW_ROUTE_FEED_CREATE,
    GW_ROUTE_FEED_GET,
    GW_ROUTE_FEED_DELETE,
    GW_ROUTE_TOKEN,
    GW_ROUTE_STATS,
    GW_ROUTE_DEAD_RETRY_ALL,
    GW_ROUTE_SUB_TEST,
    GW_ROUTE_COUNT
};

/* One route: method and path template ("{node}", "{id}" and "{sub}" are parameters). */
struct gw_route_def {
    enum gw_route route;
    const char *method;
    const char *pattern;
};

/* Every route the router knows, GW_ROUTE_COUNT entries. */
extern const struct gw_route_def gw_routes[];

#define GW_PARAM_MAX 1024

struct gw_route_match {
    enum gw_route route;
    char node[GW_PARAM_MAX + 1]; /* decoded {node}, "" when the route has none */
    char id[GW_PARAM_MAX + 1];   /* decoded {id} */
    char sub[GW_PARAM_MAX + 1];  /* decoded {sub} */
    char allow[64];              /* for GW_MATCH_METHOD: the methods the path accepts */
    char error[128];             /* for GW_MATCH_BAD: what is wrong with the path */
};

enum gw_match_result {
    GW_MATCH_OK = 0,
    GW_MATCH_NOT_FOUND, /* 404 */
    GW_MATCH_METHOD,    /* 405, see allow */
    GW_MATCH_BAD,       /* 400: a parameter is badly encoded or not a valid id */
};

enum gw_match_result gw_route_match(const char *method, const char *path, struct gw_route_match *m);

/* Percent-decodes src[0..len) into dst (capacity cap, NUL-terminated). With plus_space, '+'
 * becomes a space (query strings). Returns the decoded length, or -1 for a bad escape, an
 * embedded NUL or a result that does not fit. */
long gw_percent_decode(const char *src, size_t len, char *dst, size_t cap, int plus_space);

/* 1 when s (len bytes) is valid UTF-8 without control characters (a node or item id), else 0. */
int gw_valid_id(const char *s, size_t len);

/* 1 when s is valid UTF-8 (any characters but NUL), else 0. */
int gw_valid_utf8(const char *s, size_t len);
/* 1 when s (len bytes) is UTF-8 that XML 1.0 text can carry: no control character but tab,
 * newline and carriage return, no U+FFFE or U+FFFF (one such character in a stanza makes the
 * server end the whole XMPP stream). */
int gw_valid_xml_text(const char *s, size_t len);

#endif
