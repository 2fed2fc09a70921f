/* The routes behind the console, against a real XMPP server and a real receiver: what a token
 * may do (/v1/token), the rates (/v1/stats), the node's form as the service declares it, a
 * subscription's backlog and dead-letter count, retrying every dead letter at once, a test
 * event, and the console's own files at /ui/. */
#include "harness.h"
#include "receiver.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define ADMIN "Authorization: Bearer console-admin-token-0001"
#define VIEWER "Authorization: Bearer console-viewer-token-002"

static struct it_gw gw;

static long req(const char *method, const char *path, const char *auth, const char *json,
                struct it_resp *r)
{
    return it_req_auth(&gw, method, path, auth, json, r);
}

/* The subscription's "dead_letters" (-1 when absent). */
static long dead_count(const char *sub)
{
    char path[200];
    snprintf(path, sizeof(path), "/v1/subscriptions/%s", sub);
    struct it_resp r;
    long n = -1;
    if (req("GET", path, ADMIN, NULL, &r) == 200 && json_object_get(r.json, "dead_letters"))
        n = (long)json_integer_value(json_object_get(r.json, "dead_letters"));
    it_resp_free(&r);
    return n;
}

/* The i-th accepted delivery's body (null when it did not come: the checks then fail cleanly). */
static json_t *got(struct it_receiver *rc, int i)
{
    const struct it_delivery *d = it_receiver_get(rc, i);
    return d ? d->json : NULL;
}

static void publish(const char *node, const char *id)
{
    char path[300];
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=%s", node, id);
    struct it_resp r;
    CHECK_INT(req("POST", path, ADMIN, "{\"n\":1}", &r), 201);
    it_resp_free(&r);
}

int main(void)
{
    const char *extra[] = {"--callback-allow",
                           "127.0.0.0/8",
                           "--retry-attempts",
                           "2",
                           "--retry-initial",
                           "100",
                           "--api-token",
                           "console-admin-token-0001 name=admin",
                           "--api-token",
                           "console-viewer-token-002 name=viewer scopes=read nodes=con*",
                           NULL};
    CHECK_INT(it_gw_start(&gw, "gw21@localhost", "gw21", it_server_port(), extra, 1), 0);
    struct it_resp r;

    /* /v1/token: scopes and nodes of the token sent, never the token; any token may ask */
    CHECK_INT(req("GET", "/v1/token", ADMIN, NULL, &r), 200);
    CHECK(json_is_true(json_object_get(r.json, "authentication")));
    CHECK_STR(json_string_value(json_object_get(r.json, "name")), "admin");
    CHECK_INT(json_array_size(json_object_get(r.json, "scopes")), 4);
    CHECK(json_is_null(json_object_get(r.json, "nodes")));
    CHECK(strstr(r.body, "console-admin-token") == NULL);
    it_resp_free(&r);
    CHECK_INT(req("GET", "/v1/token", VIEWER, NULL, &r), 200);
    CHECK_STR(json_string_value(json_array_get(json_object_get(r.json, "scopes"), 0)), "read");
    CHECK_INT(json_array_size(json_object_get(r.json, "scopes")), 1);
    CHECK_STR(json_string_value(json_array_get(json_object_get(r.json, "nodes"), 0)), "con*");
    it_resp_free(&r);
    CHECK_INT(req("GET", "/v1/token", NULL, NULL, &r), 401);
    it_check_problem(&r, 401, "Authorization");
    it_resp_free(&r);

    /* the console's files: no token needed, the page and its script; nothing else */
    CHECK_INT(req("GET", "/ui/", NULL, NULL, &r), 200);
    CHECK(strncmp(r.content_type, "text/html", 9) == 0);
    CHECK(strstr(r.body, "<script src=\"app.js\"") != NULL);
    it_resp_free(&r);
    CHECK_INT(req("GET", "/ui/app.js", NULL, NULL, &r), 200);
    CHECK(strncmp(r.content_type, "text/javascript", 15) == 0);
    it_resp_free(&r);
    CHECK_INT(req("GET", "/ui", NULL, NULL, &r), 308);
    it_resp_free(&r);
    CHECK_INT(req("GET", "/ui/secrets.txt", NULL, NULL, &r), 404);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);
    CHECK_INT(req("DELETE", "/ui/", NULL, NULL, &r), 405);
    CHECK_STR(r.allow, "GET, HEAD");
    it_resp_free(&r);

    /* the node's form: its fields as the service declares them, beside the values */
    const char *node = it_unique("con");
    char body[600], path[400];
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(req("POST", "/v1/nodes", ADMIN, body, &r), 201);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/config", node);
    CHECK_INT(req("GET", path, ADMIN, NULL, &r), 200);
    json_t *fields = json_object_get(r.json, "fields");
    CHECK(json_array_size(fields) > 3);
    int max_items = 0, with_options = 0;
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f)
    {
        const char *var = json_string_value(json_object_get(f, "var"));
        CHECK(var != NULL && json_string_value(json_object_get(f, "type")) != NULL);
        if (var && strcmp(var, "pubsub#max_items") == 0)
            max_items = json_object_get(json_object_get(r.json, "config"), var) != NULL;
        with_options += json_array_size(json_object_get(f, "options")) > 0;
    }
    CHECK(max_items);
    CHECK(with_options > 0); /* access_model and the like list their options */
    it_resp_free(&r);

    /* two events to a failing receiver: dead letters, counted on the subscription */
    struct it_receiver *rc = it_receiver_start(IT_FAIL, 0);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", node,
             it_receiver_url(rc));
    CHECK_INT(req("POST", "/v1/subscriptions", ADMIN, body, &r), 201);
    char sub[64], secret[128];
    snprintf(sub, sizeof(sub), "%s", json_string_value(json_object_get(r.json, "id")));
    snprintf(secret, sizeof(secret), "%s", json_string_value(json_object_get(r.json, "secret")));
    it_resp_free(&r);
    CHECK_INT((int)dead_count(sub), 0);
    publish(node, "one");
    publish(node, "two");
    for (int k = 0; k < 300 && dead_count(sub) < 2; k++)
        usleep(20000);
    CHECK_INT((int)dead_count(sub), 2);
    snprintf(path, sizeof(path), "/v1/subscriptions?node=%s", node);
    CHECK_INT(req("GET", path, ADMIN, NULL, &r), 200);
    json_t *listed = json_array_get(json_object_get(r.json, "subscriptions"), 0);
    CHECK_INT((int)json_integer_value(json_object_get(listed, "dead_letters")), 2);
    CHECK_INT((int)json_integer_value(json_object_get(listed, "backlog")), 0);
    it_resp_free(&r);

    /* retry all: both delivered, in order, and none left */
    it_receiver_set_mode(rc, IT_OK, 0);
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/dead-letters/retry", sub);
    CHECK_INT(req("POST", path, VIEWER, NULL, &r), 403);
    it_resp_free(&r);
    CHECK_INT(req("POST", path, ADMIN, NULL, &r), 202);
    CHECK_INT((int)json_integer_value(json_object_get(r.json, "retried")), 2);
    CHECK_STR(json_string_value(json_object_get(r.json, "state")), "queued");
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(rc, 2, 10000), 2);
    CHECK_STR(json_string_value(json_object_get(json_object_get(got(rc, 0), "item"), "id")), "one");
    CHECK_STR(json_string_value(json_object_get(json_object_get(got(rc, 1), "item"), "id")), "two");
    CHECK_INT((int)dead_count(sub), 0);
    CHECK_INT(req("POST", path, ADMIN, NULL, &r), 202); /* none left: nothing to do */
    CHECK_INT((int)json_integer_value(json_object_get(r.json, "retried")), 0);
    it_resp_free(&r);

    /* a test event: for this subscription alone, marked, signed like any delivery */
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/test", sub);
    CHECK_INT(req("POST", path, ADMIN, NULL, &r), 202);
    char event_id[64];
    snprintf(event_id, sizeof(event_id), "%s",
             json_string_value(json_object_get(r.json, "event_id")));
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(rc, 3, 10000), 3);
    const struct it_delivery *d = it_receiver_get(rc, 2);
    CHECK(d != NULL);
    if (d == NULL)
        CHECK_DONE();
    CHECK(json_is_true(json_object_get(d->json, "test")));
    CHECK_STR(d->id, event_id);
    CHECK_STR(json_string_value(json_object_get(d->json, "type")), "item.published");
    CHECK_STR(json_string_value(json_object_get(
                  json_object_get(json_object_get(d->json, "item"), "payload"), "subscription")),
              sub);
    CHECK(it_verify_signature(secret, d));
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    CHECK_INT(req("GET", path, ADMIN, NULL, &r), 200); /* nothing was published to the node */
    CHECK_INT(json_array_size(json_object_get(r.json, "items")), 2);
    it_resp_free(&r);

    /* a subscription that asked only for purges gets its test event all the same */
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\",\"events\":[\"purge\"]}",
             node, it_receiver_url(rc));
    CHECK_INT(req("POST", "/v1/subscriptions", ADMIN, body, &r), 201);
    char sub2[64];
    snprintf(sub2, sizeof(sub2), "%s", json_string_value(json_object_get(r.json, "id")));
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/test", sub2);
    CHECK_INT(req("POST", path, ADMIN, NULL, &r), 202);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(rc, 4, 10000), 4);
    CHECK(json_is_true(json_object_get(got(rc, 3), "test")));
    CHECK_INT(req("POST", "/v1/subscriptions/sub_nosuch/test", ADMIN, NULL, &r), 404);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);
    CHECK_INT(req("POST", "/v1/subscriptions/sub_nosuch/dead-letters/retry", ADMIN, NULL, &r), 404);
    it_resp_free(&r);

    /* the rates: intervals with what happened, read with a read token */
    CHECK_INT(req("GET", "/v1/stats", NULL, NULL, &r), 401);
    it_resp_free(&r);
    CHECK_INT(req("GET", "/v1/stats", VIEWER, NULL, &r), 200);
    CHECK_INT((int)json_integer_value(json_object_get(r.json, "interval_seconds")), 10);
    json_t *series = json_object_get(r.json, "series");
    CHECK(json_array_size(series) >= 1);
    json_int_t published = 0, delivered = 0, failed = 0;
    json_array_foreach(series, i, f)
    {
        published += json_integer_value(json_object_get(f, "published"));
        delivered += json_integer_value(json_object_get(f, "delivered"));
        failed += json_integer_value(json_object_get(f, "failed"));
    }
    CHECK_INT((int)published, 2);
    CHECK_INT((int)delivered, 4);
    CHECK_INT((int)failed, 4); /* two events, two attempts each */
    CHECK_INT(
        (int)json_integer_value(json_object_get(json_object_get(r.json, "totals"), "dead_letters")),
        2);
    CHECK_INT((int)json_integer_value(json_object_get(r.json, "pending")), 0);
    it_resp_free(&r);

    it_receiver_stop(rc);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_DONE();
}
