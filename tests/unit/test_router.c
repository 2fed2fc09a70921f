/* Routing: every route, percent-decoding of parameters, refusals and the 405 Allow list. */
#include "../check.h"
#include "http/router.h"

static enum gw_match_result m(const char *method, const char *path, struct gw_route_match *out)
{
    return gw_route_match(method, path, out);
}

int main(void)
{
    struct gw_route_match r;
    for (int i = 0; i < GW_ROUTE_COUNT; i++) {
        char path[256];
        const char *p = gw_routes[i].pattern;
        size_t o = 0;
        while (*p && o < sizeof(path) - 8) {
            if (strncmp(p, "{node}", 6) == 0) {
                memcpy(path + o, "n1", 2), o += 2, p += 6;
            } else if (strncmp(p, "{id}", 4) == 0) {
                memcpy(path + o, "i1", 2), o += 2, p += 4;
            } else {
                path[o++] = *p++;
            }
        }
        path[o] = '\0';
        CHECK_INT(m(gw_routes[i].method, path, &r), GW_MATCH_OK);
        CHECK_INT(r.route, gw_routes[i].route);
    }

    CHECK_INT(m("GET", "/v1/nodes/a%2Fb/items/x%20y", &r), GW_MATCH_OK);
    CHECK_INT(r.route, GW_ROUTE_ITEM_GET);
    CHECK_STR(r.node, "a/b");
    CHECK_STR(r.id, "x y");
    CHECK_INT(m("GET", "/v1/nodes/caf%C3%A9", &r), GW_MATCH_OK);
    CHECK_STR(r.node, "café");
    CHECK_INT(m("GET", "/v1/nodes/", &r), GW_MATCH_OK);
    CHECK_INT(r.route, GW_ROUTE_NODES_LIST);
    CHECK_INT(m("HEAD", "/v1/health", &r), GW_MATCH_OK);

    CHECK_INT(m("GET", "/v1/nodes/a/b", &r), GW_MATCH_NOT_FOUND);
    CHECK_INT(m("GET", "/v2/nodes", &r), GW_MATCH_NOT_FOUND);
    CHECK_INT(m("GET", "/", &r), GW_MATCH_NOT_FOUND);
    CHECK_INT(m("GET", "", &r), GW_MATCH_NOT_FOUND);
    CHECK_INT(m("GET", "/v1/nodes//items", &r), GW_MATCH_NOT_FOUND);

    CHECK_INT(m("PATCH", "/v1/nodes/x", &r), GW_MATCH_METHOD);
    CHECK_STR(r.allow, "GET, DELETE");
    CHECK_INT(m("PUT", "/v1/nodes", &r), GW_MATCH_METHOD);
    CHECK_STR(r.allow, "GET, POST");

    CHECK_INT(m("GET", "/v1/nodes/%zz", &r), GW_MATCH_BAD);
    CHECK(strstr(r.error, "node") != NULL);
    CHECK_INT(m("GET", "/v1/nodes/a%", &r), GW_MATCH_BAD);
    CHECK_INT(m("GET", "/v1/nodes/a%0", &r), GW_MATCH_BAD);
    CHECK_INT(m("GET", "/v1/nodes/a%00b", &r), GW_MATCH_BAD);
    CHECK_INT(m("GET", "/v1/nodes/a%0Ab", &r), GW_MATCH_BAD);
    CHECK_INT(m("GET", "/v1/nodes/%FF", &r), GW_MATCH_BAD);
    CHECK_INT(m("GET", "/v1/nodes/%C0%AF", &r), GW_MATCH_BAD);            /* overlong '/' */
    CHECK_INT(m("GET", "/v1/nodes/n/items/%ED%A0%80", &r), GW_MATCH_BAD); /* surrogate */
    CHECK(strstr(r.error, "id") != NULL);

    char longpath[4000] = "/v1/nodes/";
    memset(longpath + 10, 'a', 1500);
    longpath[1510] = '\0';
    CHECK_INT(m("GET", longpath, &r), GW_MATCH_BAD);

    char buf[16];
    CHECK_INT(gw_percent_decode("a+b%2B", 6, buf, sizeof(buf), 1), 4);
    CHECK_STR(buf, "a b+");
    CHECK_INT(gw_percent_decode("a+b", 3, buf, sizeof(buf), 0), 3);
    CHECK_STR(buf, "a+b");
    CHECK_INT(gw_percent_decode("0123456789abcdef", 16, buf, sizeof(buf), 0), -1);

    CHECK(gw_valid_utf8("h\xC3\xA9", 3));
    CHECK(!gw_valid_utf8("\xC3", 1));
    CHECK(!gw_valid_utf8("\xF4\x90\x80\x80", 4)); /* past U+10FFFF */
    CHECK(gw_valid_id("news", 4));
    CHECK(!gw_valid_id("", 0));
    CHECK(!gw_valid_id("a\tb", 3));
    CHECK(!gw_valid_id("a\x7f", 2));
    CHECK(!gw_valid_id("\xEF\xBF\xBF", 3)); /* U+FFFF */
    CHECK_DONE();
}
