/* Every refusal the gateway and Prosody can produce, each a problem+json with the mapped status,
 * and the gateway still serving after each. Also the answers while XMPP is unreachable. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>

static struct it_gw gw;

static void req(const char *method, const char *path, const char *ctype, const char *body,
                struct it_resp *r)
{
    char url[4096];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    it_http(method, url, ctype, body, body ? strlen(body) : 0, r);
}

static void still_serving(void)
{
    struct it_resp r;
    it_get(&gw, "/v1/health", &r);
    CHECK_INT(r.status, 200);
    it_resp_free(&r);
}

int main(void)
{
    int xport = it_server_port();
    /* HTTP on a pool of its own threads here (the other tests use the default: on the loop). */
    const char *extra[] = {"--max-body", "4096", "--http-threads", "2", NULL};
    if (it_gw_start(&gw, "gw3@localhost", "gw3", xport, extra, 1) != 0)
        return 1;
    struct it_resp r;
    const char *node = it_unique("err");
    char path[512], body[512];

    /* No token configured: /v1/token says so, names no token and lists every scope. */
    req("GET", "/v1/token", NULL, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK(json_is_false(json_object_get(r.json, "authentication")));
    CHECK(json_object_get(r.json, "name") == NULL);
    CHECK_INT(json_array_size(json_object_get(r.json, "scopes")), 4);
    CHECK(json_is_null(json_object_get(r.json, "nodes")));
    it_resp_free(&r);

    /* 404 from the service: unknown node, for reads, publishes and deletes. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    req("GET", path, NULL, NULL, &r);
    it_check_problem(&r, 404, NULL);
    CHECK_STR(json_string_value(json_object_get(r.json, "xmpp_condition")), "item-not-found");
    it_resp_free(&r);
    req("POST", path, "application/json", "{}", &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s", node);
    req("DELETE", path, NULL, NULL, &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);
    req("GET", path, NULL, NULL, &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);

    /* 409: the node exists. */
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    req("POST", "/v1/nodes", "application/json", body, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    req("POST", "/v1/nodes", "application/json", body, &r);
    it_check_problem(&r, 409, NULL);
    CHECK_STR(json_string_value(json_object_get(r.json, "xmpp_condition")), "conflict");
    it_resp_free(&r);

    /* 400s from validation, each naming its field. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    req("POST", path, "application/json", "{\"a\":", &r);
    it_check_problem(&r, 400, "body");
    it_resp_free(&r);
    req("POST", path, "application/json", "", &r);
    it_check_problem(&r, 400, "body");
    it_resp_free(&r);
    req("POST", path, "application/xml", "<a><b></a>", &r);
    it_check_problem(&r, 400, "body");
    it_resp_free(&r);
    req("POST", path, "application/xml", "<a/><b/>", &r);
    it_check_problem(&r, 400, "body");
    it_resp_free(&r);
    req("POST", path, "application/xml", "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", &r);
    it_check_problem(&r, 400, "DOCTYPE");
    it_resp_free(&r);
    req("POST", path, "text/xml", "<a>\xC3</a>", &r);
    it_check_problem(&r, 400, "UTF-8");
    it_resp_free(&r);
    req("POST", path, "text/plain", "hello", &r);
    it_check_problem(&r, 415, "Content-Type");
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?max_items=-3", node);
    req("GET", path, NULL, NULL, &r);
    it_check_problem(&r, 400, "max_items");
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?service=bad%%20jid", node);
    req("GET", path, NULL, NULL, &r);
    it_check_problem(&r, 400, "service");
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=%%0A", node);
    req("POST", path, "application/json", "1", &r);
    it_check_problem(&r, 400, "id");
    it_resp_free(&r);
    req("GET", "/v1/nodes/bad%zzescape", NULL, NULL, &r);
    it_check_problem(&r, 400, "node");
    it_resp_free(&r);
    req("GET", "/v1/nodes/x?service=%zz", NULL, NULL, &r);
    it_check_problem(&r, 400, "query");
    it_resp_free(&r);
    req("POST", "/v1/nodes", "application/json", "{\"node\":[]}", &r);
    it_check_problem(&r, 400, "node");
    it_resp_free(&r);
    req("POST", "/v1/nodes", "application/json", "{\"config\":{\"x\":{}}}", &r);
    it_check_problem(&r, 400, "config.x");
    it_resp_free(&r);

    /* XML injection through ids is impossible: they are escaped attribute values. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=%%27%%3E%%3Cx%%2F%%3E", node);
    req("POST", path, "application/json", "{\"ok\":true}", &r);
    CHECK_INT(r.status, 201);
    CHECK_STR(json_string_value(json_object_get(r.json, "id")), "'><x/>");
    it_resp_free(&r);

    /* Routing and size refusals. */
    req("GET", "/v1/nope", NULL, NULL, &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);
    req("PATCH", "/v1/nodes", "application/json", "{}", &r);
    it_check_problem(&r, 405, NULL);
    CHECK_STR(r.allow, "GET, POST");
    it_resp_free(&r);
    char *big = malloc(10000);
    memset(big, ' ', 9999);
    big[0] = '[';
    big[9997] = ']';
    big[9998] = '\0';
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    req("POST", path, "application/json", big, &r);
    it_check_problem(&r, 413, "body");
    it_resp_free(&r);
    free(big);
    still_serving();

    /* 403 from the service: alice is no admin, so Prosody forbids her creating nodes. */
    struct it_gw gw_alice;
    if (it_gw_start(&gw_alice, "alice@localhost", "alice", xport, NULL, 1) == 0) {
        char url[512];
        snprintf(url, sizeof(url), "%s/v1/nodes", gw_alice.base);
        snprintf(body, sizeof(body), "{\"node\":\"%s\"}", it_unique("forbidden"));
        it_http("POST", url, "application/json", body, strlen(body), &r);
        it_check_problem(&r, 403, NULL);
        CHECK_STR(json_string_value(json_object_get(r.json, "xmpp_condition")), "forbidden");
        it_resp_free(&r);
        /* ... nor delete the admin's node. */
        snprintf(url, sizeof(url), "%s/v1/nodes/%s", gw_alice.base, node);
        it_http("DELETE", url, NULL, NULL, 0, &r);
        it_check_problem(&r, 403, NULL);
        it_resp_free(&r);
        CHECK_INT(it_gw_stop(&gw_alice, SIGTERM), 0);
    } else {
        CHECK(0);
    }
    /* A wrong password never connects, and the password is not in the log. */
    struct it_gw gw_bad;
    if (it_gw_start(&gw_bad, "bob@localhost", "not-bobs-password", xport, NULL, 0) == 0) {
        CHECK_INT(it_gw_wait_health(&gw_bad, 0, 3000), 0);
        CHECK_INT(it_gw_stop(&gw_bad, SIGTERM), 0);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "grep -q not-bobs-password %s", gw_bad.log);
        CHECK(system(cmd) != 0);
    } else {
        CHECK(0);
    }

    snprintf(path, sizeof(path), "/v1/nodes/%s", node);
    req("DELETE", path, NULL, NULL, &r);
    CHECK_INT(r.status, 204);
    it_resp_free(&r);
    still_serving();
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);

    /* XMPP unreachable: 503 with Retry-After at once, for health and for XMPP routes. */
    struct it_gw down;
    if (it_gw_start(&down, "gw3@localhost", "gw3", it_free_port(), NULL, 0) == 0) {
        char url[512];
        snprintf(url, sizeof(url), "%s/v1/health", down.base);
        it_http("GET", url, NULL, NULL, 0, &r);
        it_check_problem(&r, 503, NULL);
        CHECK_STR(json_string_value(json_object_get(r.json, "xmpp")), "disconnected");
        it_resp_free(&r);
        snprintf(url, sizeof(url), "%s/v1/nodes/n/items", down.base);
        it_http("POST", url, "application/json", "{}", 2, &r);
        it_check_problem(&r, 503, NULL);
        CHECK(atoi(r.retry_after) > 0);
        CHECK(r.seconds < 1.0);
        it_resp_free(&r);
        snprintf(url, sizeof(url), "%s/v1/nodes", down.base);
        it_http("GET", url, NULL, NULL, 0, &r);
        it_check_problem(&r, 503, NULL);
        it_resp_free(&r);
        CHECK_INT(it_gw_stop(&down, SIGTERM), 0);
    } else {
        CHECK(0);
    }
    CHECK_DONE();
}
