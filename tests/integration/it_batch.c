/* Batched delivery, opt-in per subscription: a backlog built while the callback answers 503 is
 * drained in POSTs of at most max_events, each a JSON array of events in order, signed per
 * Standard Webhooks over the whole body under a webhook-id of its own; a failed batch is retried
 * as a unit; max_wait_ms lets a lone event wait for company; the setting is listed, survives a
 * restart, and bad settings are refused. */
#include "harness.h"
#include "receiver.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static struct it_gw gw;

static long pending(void)
{
    struct it_resp r;
    it_get(&gw, "/v1/health", &r);
    long p = (long)json_integer_value(json_object_get(
        json_object_get(json_object_get(r.json, "components"), "outbox"), "pending"));
    it_resp_free(&r);
    return p;
}

static void publish(const char *node, int i)
{
    char path[300], body[100];
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=b%03d", node, i);
    snprintf(body, sizeof(body), "{\"n\":%d}", i);
    struct it_resp r;
    CHECK_INT(it_req(&gw, "POST", path, body, &r), 201);
    it_resp_free(&r);
}

static char *subscribe(const char *node, const char *callback, const char *batch, char *secret,
                       size_t cap)
{
    char body[700];
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\",\"batch\":%s}", node,
             callback, batch);
    struct it_resp r;
    CHECK_INT(it_req(&gw, "POST", "/v1/subscriptions", body, &r), 201);
    char *id = r.json ? strdup(json_string_value(json_object_get(r.json, "id")) ?: "") : NULL;
    snprintf(secret, cap, "%s", json_string_value(json_object_get(r.json, "secret")) ?: "");
    it_resp_free(&r);
    return id;
}

int main(void)
{
    const char *extra[] = {"--callback-allow", "127.0.0.0/8", "--resource", "batch", NULL};
    CHECK_INT(it_gw_start(&gw, "gw19@localhost", "gw19", it_server_port(), extra, 1), 0);
    const char *node = it_unique("batch");
    char body[300], secret[128];
    struct it_resp r;
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);

    /* A backlog of 35 while the callback answers 503, then drained in batches of at most 10. */
    struct it_receiver *rc = it_receiver_start(IT_BUSY_FIRST, 1 << 30);
    char *id = subscribe(node, it_receiver_url(rc), "{\"max_events\":10}", secret, sizeof(secret));
    for (int i = 0; i < 35; i++)
        publish(node, i);
    for (int i = 0; i < 200 && pending() < 35; i++)
        usleep(20000);
    CHECK_INT((int)pending(), 35);
    it_receiver_set_mode(rc, IT_OK, 0);
    for (int i = 0; i < 500 && it_receiver_events(rc) < 35; i++)
        usleep(20000);
    CHECK_INT(it_receiver_events(rc), 35);
    int posts = it_receiver_count(rc), next = 0, signed_ok = 0, sizes_ok = 1;
    for (int k = 0; k < posts; k++) {
        const struct it_delivery *d = it_receiver_get(rc, k);
        CHECK(json_is_array(d->json));
        sizes_ok &= json_array_size(d->json) >= 1 && json_array_size(d->json) <= 10;
        signed_ok += it_verify_signature(secret, d);
        CHECK(strncmp(d->id, "batch_msg_", 10) == 0);
        size_t i;
        json_t *ev;
        json_array_foreach(d->json, i, ev)
        {
            char want[16];
            snprintf(want, sizeof(want), "b%03d", next++);
            const char *item =
                json_string_value(json_object_get(json_object_get(ev, "item"), "id"));
            CHECK(item != NULL && strcmp(item, want) == 0); /* in order, none twice */
            CHECK(strcmp(json_string_value(json_object_get(ev, "subscription")) ?: "", id) == 0);
        }
    }
    fprintf(stderr, "  35 events in %d POSTs\n", posts);
    CHECK(sizes_ok);
    CHECK_INT(signed_ok, posts);
    CHECK(posts >= 4 && posts <= 8);
    CHECK_INT(next, 35);
    /* the receiver records a POST before answering it: the last answer may still be on its way */
    for (int i = 0; i < 250 && pending() != 0; i++)
        usleep(20000);
    CHECK(pending() == 0);

    /* Retried as a unit: a batch answered 500 once comes again whole, under the same id. */
    it_receiver_set_mode(rc, IT_FAIL_FIRST, 1);
    int before = it_receiver_count(rc);
    for (int i = 35; i < 38; i++)
        publish(node, i);
    for (int i = 0; i < 500 && it_receiver_events(rc) < 38; i++)
        usleep(20000);
    CHECK_INT(it_receiver_events(rc), 38);
    for (int k = before; k < it_receiver_count(rc); k++) {
        size_t i;
        json_t *ev;
        json_array_foreach(it_receiver_get(rc, k)->json, i, ev)
        {
            char want[16];
            snprintf(want, sizeof(want), "b%03d", next++);
            const char *item =
                json_string_value(json_object_get(json_object_get(ev, "item"), "id"));
            CHECK(item != NULL && strcmp(item, want) == 0);
        }
    }
    CHECK_INT(next, 38);

    /* max_wait_ms: three events published together arrive in one POST (3 s of wait: room for
     * three publishes on a slow machine, or under valgrind). */
    struct it_receiver *rw = it_receiver_start(IT_OK, 0);
    char *wid = subscribe(node, it_receiver_url(rw), "{\"max_events\":50,\"max_wait_ms\":3000}",
                          secret, sizeof(secret));
    for (int i = 38; i < 41; i++)
        publish(node, i);
    CHECK_INT(it_receiver_wait(rw, 1, 15000), 1);
    usleep(600000);
    CHECK_INT(it_receiver_count(rw), 1);
    CHECK_INT((int)json_array_size(it_receiver_get(rw, 0)->json), 3);
    CHECK_INT(it_verify_signature(secret, it_receiver_get(rw, 0)), 1);

    /* Listed with its setting, and still batched after a restart. */
    char path[200];
    snprintf(path, sizeof(path), "/v1/subscriptions/%s", wid);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200);
    json_t *b = json_object_get(r.json, "batch");
    CHECK(json_integer_value(json_object_get(b, "max_events")) == 50);
    CHECK(json_integer_value(json_object_get(b, "max_wait_ms")) == 3000);
    CHECK(json_integer_value(json_object_get(b, "max_bytes")) == 1048576);
    it_resp_free(&r);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_INT(it_gw_restart(&gw, "gw19@localhost", "gw19", it_server_port(), extra, 1), 0);
    for (int i = 41; i < 44; i++)
        publish(node, i);
    CHECK_INT(it_receiver_wait(rw, 2, 15000), 2);
    usleep(600000);
    CHECK_INT(it_receiver_count(rw), 2);
    CHECK_INT((int)json_array_size(it_receiver_get(rw, 1)->json), 3);

    /* Bad settings name the member. */
    const char *bad[][2] = {
        {"{\"max_events\":0}", "batch.max_events"},
        {"{\"max_events\":5,\"max_bytes\":10}", "batch.max_bytes"},
        {"{\"max_events\":5,\"max_wait_ms\":-1}", "batch.max_wait_ms"},
        {"{\"max_events\":5,\"size\":1}", "batch.size"},
        {"[1]", "batch"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\",\"batch\":%s}", node,
                 it_receiver_url(rw), bad[i][0]);
        it_req(&gw, "POST", "/v1/subscriptions", body, &r);
        it_check_problem(&r, 400, bad[i][1]);
        it_resp_free(&r);
    }
    free(id);
    free(wid);
    it_receiver_stop(rc);
    it_receiver_stop(rw);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_DONE();
}
