/* Route table and matcher. Paths are matched segment by segment on the raw path, and each
 * parameter segment is decoded on its own, so "a%2Fb" is the node "a/b" and never two
 * segments. */
#include "router.h"

#include <stdio.h>
#include <string.h>

const struct gw_route_def gw_routes[] = {
    {GW_ROUTE_HEALTH, "GET", "/v1/health"},
    {GW_ROUTE_METRICS, "GET", "/metrics"},
    {GW_ROUTE_OPENAPI_JSON, "GET", "/openapi.json"},
    {GW_ROUTE_OPENAPI_YAML, "GET", "/openapi.yaml"},
    {GW_ROUTE_NODES_LIST, "GET", "/v1/nodes"},
    {GW_ROUTE_NODE_CREATE, "POST", "/v1/nodes"},
    {GW_ROUTE_NODE_GET, "GET", "/v1/nodes/{node}"},
    {GW_ROUTE_NODE_DELETE, "DELETE", "/v1/nodes/{node}"},
    {GW_ROUTE_ITEMS_LIST, "GET", "/v1/nodes/{node}/items"},
    {GW_ROUTE_ITEM_PUBLISH, "POST", "/v1/nodes/{node}/items"},
    {GW_ROUTE_ITEM_GET, "GET", "/v1/nodes/{node}/items/{id}"},
    {GW_ROUTE_ITEM_DELETE, "DELETE", "/v1/nodes/{node}/items/{id}"},
    {GW_ROUTE_NODE_CONFIG_GET, "GET", "/v1/nodes/{node}/config"},
    {GW_ROUTE_NODE_CONFIG_SET, "PUT", "/v1/nodes/{node}/config"},
    {GW_ROUTE_NODE_PURGE, "POST", "/v1/nodes/{node}/purge"},
    {GW_ROUTE_NODE_SUBS_GET, "GET", "/v1/nodes/{node}/subscriptions"},
    {GW_ROUTE_NODE_SUBS_SET, "PUT", "/v1/nodes/{node}/subscriptions"},
    {GW_ROUTE_NODE_AFFS_GET, "GET", "/v1/nodes/{node}/affiliations"},
    {GW_ROUTE_NODE_AFFS_SET, "PUT", "/v1/nodes/{node}/affiliations"},
    {GW_ROUTE_NODE_EVENTS, "GET", "/v1/nodes/{node}/events"},
    {GW_ROUTE_HOOK, "POST", "/v1/hooks/{node}"},
    {GW_ROUTE_SUBS_LIST, "GET", "/v1/subscriptions"},
    {GW_ROUTE_SUB_CREATE, "POST", "/v1/subscriptions"},
    {GW_ROUTE_SUB_GET, "GET", "/v1/subscriptions/{sub}"},
    {GW_ROUTE_SUB_DELETE, "DELETE", "/v1/subscriptions/{sub}"},
    {GW_ROUTE_DEAD_LIST, "GET", "/v1/subscriptions/{sub}/dead-letters"},
    {GW_ROUTE_DEAD_RETRY, "POST", "/v1/subscriptions/{sub}/dead-letters/{id}/retry"},
    {GW_ROUTE_ATTEMPTS_LIST, "GET", "/v1/subscriptions/{sub}/attempts"},
    {GW_ROUTE_READY, "GET", "/v1/ready"},
    {GW_ROUTE_NODE_FEED, "GET", "/v1/nodes/{node}/feed"},
    {GW_ROUTE_WEBSUB, "POST", "/websub"},
    {GW_ROUTE_FEEDS_LIST, "GET", "/v1/feeds"},
    {GW_ROUTE_FEED_CREATE, "POST", "/v1/feeds"},
    {GW_ROUTE_FEED_GET, "GET", "/v1/feeds/{id}"},
    {GW_ROUTE_FEED_DELETE, "DELETE", "/v1/feeds/{id}"},
    {GW_ROUTE_TOKEN, "GET", "/v1/token"},
    {GW_ROUTE_STATS, "GET", "/v1/stats"},
    {GW_ROUTE_DEAD_RETRY_ALL, "POST", "/v1/subscriptions/{sub}/dead-letters/retry"},
    {GW_ROUTE_SUB_TEST, "POST", "/v1/subscriptions/{sub}/test"},
};

_Static_assert(sizeof(gw_routes) / sizeof(gw_routes[0]) == GW_ROUTE_COUNT, "route table");

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long gw_percent_decode(const char *src, size_t len, char *dst, size_t cap, int plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '%') {
            if (len - i < 3)
                return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c == '\0' || o + 1 >= cap)
            return -1;
        dst[o++] = c;
    }
    if (cap == 0)
        return -1;
    dst[o] = '\0';
    return (long)o;
}

/* Length of the UTF-8 sequence at s (at most n bytes) and its code point, or 0 if invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned long *cp)
{
    unsigned char c = s[0];
    size_t len;
    unsigned long v;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2;
        v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((len == 2 && v < 0x80) || (len == 3 && v < 0x800) || (len == 4 && v < 0x10000) ||
        v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

int gw_valid_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (n == 0 || cp == 0)
            return 0;
        i += n;
    }
    return 1;
}

int gw_valid_xml_text(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        if (n == 0 || (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xFFFE ||
            cp == 0xFFFF)
            return 0;
        i += n;
    }
    return 1;
}

int gw_valid_id(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    if (len == 0 || len > GW_PARAM_MAX)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned long cp;
        size_t n = utf8_next(p + i, len - i, &cp);
        /* Control characters cannot appear in XML 1.0 attributes, so no id may hold them;
         * U+FFFE/U+FFFF are not XML characters either. */
        if (n == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0xFFFE ||
            cp == 0xFFFF)
            return 0;
        i += n;
    }
    return 1;
}

/* Matches one template against the path; fills parameters. Returns 1 on match, 0 if not,
 * -1 if it matched but a parameter is invalid. */
static int match_pattern(const char *pattern, const char *path, struct gw_route_match *m)
{
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p == '{') {
            const char *pend = strchr(p, '}');
            const char *send = strchr(s, '/');
            size_t slen = send ? (size_t)(send - s) : strlen(s);
            if (slen == 0)
                return 0;
            const char *pname = strncmp(p, "{node}", 6) == 0  ? "node"
                                : strncmp(p, "{sub}", 5) == 0 ? "subscription id"
                                                              : "id";
            char *dst = pname[0] == 'n' ? m->node : pname[0] == 's' ? m->sub : m->id;
            /* Only the rest of the template decides whether this is the route. */
            const char *prest = pend + 1, *srest = s + slen;
            if ((*prest == '\0') != (*srest == '\0'))
                return 0;
            long n = gw_percent_decode(s, slen, dst, GW_PARAM_MAX + 1, 0);
            if (n < 0) {
                snprintf(m->error, sizeof(m->error), "%s: bad percent-encoding or too long", pname);
                return -1;
            }
            if (!gw_valid_id(dst, (size_t)n)) {
                snprintf(m->error, sizeof(m->error),
                         "%s: must be valid UTF-8 without control characters", pname);
                return -1;
            }
            p = prest;
            s = srest;
            continue;
        }
        if (*p != *s)
            return 0;
        p++;
        s++;
    }
    return *p == '\0' && *s == '\0';
}

enum gw_match_result gw_route_match(const char *method, const char *path, struct gw_route_match *m)
{
    m->node[0] = m->id[0] = m->sub[0] = m->allow[0] = m->error[0] = '\0';
    size_t plen = strlen(path);
    /* One trailing slash is forgiven ("/v1/nodes/"), as clients often add it. */
    char trimmed[4 * GW_PARAM_MAX];
    if (plen > 1 && path[plen - 1] == '/' && plen < sizeof(trimmed)) {
        memcpy(trimmed, path, plen - 1);
        trimmed[plen - 1] = '\0';
        path = trimmed;
    }
    int path_known = 0;
    for (int i = 0; i < GW_ROUTE_COUNT; i++) {
        int r = match_pattern(gw_routes[i].pattern, path, m);
        if (r < 0)
            return GW_MATCH_BAD;
        if (r == 0)
            continue;
        if (strcmp(gw_routes[i].method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(gw_routes[i].method, "GET") == 0)) {
            m->route = gw_routes[i].route;
            return GW_MATCH_OK;
        }
        path_known = 1;
        size_t al = strlen(m->allow);
        snprintf(m->allow + al, sizeof(m->allow) - al, "%s%s", al ? ", " : "", gw_routes[i].method);
    }
    return path_known ? GW_MATCH_METHOD : GW_MATCH_NOT_FOUND;
}
