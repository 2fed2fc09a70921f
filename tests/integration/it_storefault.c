/* PostgreSQL stopped and started again under load (a PostgreSQL of the test's own): meanwhile
 * routes that need the store answer 503 with Retry-After and health says the store is down,
 * publishing goes on, and once it is back every item published reaches the callback, in order
 * (those published while it was away by catch-up from the node). */
#include "harness.h"
#include "receiver.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define NITEMS 150
#define STOP_AT 50
#define START_AT 100

static char dir[] = "/tmp/pubsubgw-pgfault-XXXXXX";

static int postgres(const char *what, const char *port)
{
    char args[600], log[300];
    snprintf(args, sizeof(args), "%s '%s/pg' %s", what, dir, port ? port : "");
    snprintf(log, sizeof(log), "%s/out", dir);
    return it_script(log, "postgres.sh", args);
}

static const char *store_state(struct it_gw *gw)
{
    static char state[16];
    struct it_resp r;
    it_req(gw, "GET", "/v1/health", NULL, &r);
    const char *s = json_string_value(
        json_object_get(json_object_get(json_object_get(r.json, "components"), "store"), "state"));
    snprintf(state, sizeof(state), "%s", s ? s : "?");
    it_resp_free(&r);
    return state;
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL);
    CHECK_INT(postgres("fresh", NULL), 0);
    char pgdir[300], url[400], port[32];
    snprintf(pgdir, sizeof(pgdir), "%s/pg", dir);
    CHECK_INT(it_read_line(pgdir, "url", url, sizeof(url)), 0);
    CHECK_INT(it_read_line(pgdir, "port", port, sizeof(port)), 0);

    struct it_gw gw;
    const char *extra[] = {"--store", url, "--callback-allow", "127.0.0.0/8", NULL};
    CHECK_INT(it_gw_start(&gw, "gw16@localhost", "gw16", it_server_port(), extra, 1), 0);
    CHECK_STR(store_state(&gw), "ok");

    const char *node = it_unique("pgfault");
    char body[512];
    struct it_resp r;
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);
    struct it_receiver *rc = it_receiver_start(IT_OK, 0);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", node,
             it_receiver_url(rc));
    CHECK_INT(it_req(&gw, "POST", "/v1/subscriptions", body, &r), 201);
    char sub_path[200];
    snprintf(sub_path, sizeof(sub_path), "/v1/subscriptions/%s",
             json_string_value(json_object_get(r.json, "id")));
    it_resp_free(&r);

    int refused = 0, down_seen = 0;
    for (int n = 1; n <= NITEMS; n++) {
        if (n == STOP_AT) {
            CHECK_INT(postgres("stop", NULL), 0);
            /* A delete while the store is away is refused and changes nothing: the subscription
             * keeps every item (checked below). */
            CHECK_INT(it_req(&gw, "DELETE", sub_path, NULL, &r), 503);
            CHECK(r.retry_after[0] != '\0');
            it_resp_free(&r);
            long long t0 = it_now_ms();
            while (it_now_ms() - t0 < 5000 && strcmp(store_state(&gw), "down") != 0)
                usleep(50000);
            down_seen = strcmp(store_state(&gw), "down") == 0;
            /* What needs the store says so, with a time to try again. */
            CHECK_INT(it_req(&gw, "POST", "/v1/subscriptions", body, &r), 503);
            CHECK(r.retry_after[0] != '\0');
            it_check_problem(&r, 503, "store");
            CHECK_STR(json_string_value(json_object_get(r.json, "type")),
                      "urn:pubsubgw:problem:store-unavailable");
            it_resp_free(&r);
        }
        if (n == START_AT)
            CHECK_INT(postgres("start", port), 0);
        char item[400], payload[64];
        snprintf(item, sizeof(item), "/v1/nodes/%s/items?id=p%d", node, n);
        snprintf(payload, sizeof(payload), "{\"n\":%d}", n);
        long st = it_req(&gw, "POST", item, payload, &r);
        it_resp_free(&r);
        refused += st != 201;
        usleep(20000);
    }
    CHECK(down_seen);
    CHECK_INT(refused, 0); /* publishing never needed the store */

    long long t0 = it_now_ms();
    while (it_now_ms() - t0 < 10000 && strcmp(store_state(&gw), "ok") != 0)
        usleep(100000);
    CHECK_STR(store_state(&gw), "ok");

    /* Every item, once each and in order. */
    int next = 1, in_order = 1, dups = 0, unique = 0;
    static unsigned char seen[NITEMS + 1];
    t0 = it_now_ms();
    while (it_now_ms() - t0 < 20000 && unique < NITEMS) {
        it_receiver_wait(rc, it_receiver_count(rc) + 1, 500);
        next = 1;
        in_order = 1;
        dups = 0;
        unique = 0;
        memset(seen, 0, sizeof(seen));
        for (int i = 0; i < it_receiver_count(rc); i++) {
            const struct it_delivery *d = it_receiver_get(rc, i);
            int n = (int)json_integer_value(
                json_object_get(json_object_get(json_object_get(d->json, "item"), "payload"), "n"));
            if (n < 1 || n > NITEMS || seen[n]) {
                dups++;
                continue;
            }
            seen[n] = 1;
            unique++;
            in_order &= n == next;
            next = n + 1;
        }
    }
    fprintf(stderr, "%d deliveries, %d items, %d duplicates\n", it_receiver_count(rc), unique,
            dups);
    CHECK_INT(unique, NITEMS);
    CHECK(in_order);

    /* And the routes that needed it work again. */
    CHECK_INT(it_req(&gw, "GET", "/v1/subscriptions", NULL, &r), 200);
    it_resp_free(&r);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    it_receiver_stop(rc);
    /* the cluster goes with the test's directory, unless something failed (kept to look at) */
    CHECK_INT(postgres(check_failures == 0 ? "remove" : "stop", NULL), 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (check_failures == 0 && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    CHECK_DONE();
}
