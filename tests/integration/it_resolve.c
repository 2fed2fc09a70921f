/* Name resolution never stalls the loop: with a resolver that takes 3 s (the test hook
 * PUBSUBGW_TEST_RESOLVE_DELAY_MS), a subscription being created waits for it while publishing
 * and deliveries to other callbacks go on as usual. */
#include "harness.h"
#include "receiver.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

static struct it_gw gw;

struct bg {
    char body[600];
    struct it_resp r;
    long long ms;
    pthread_t t;
};

static void *bg_subscribe(void *arg)
{
    struct bg *b = arg;
    long long t0 = it_now_ms();
    it_req(&gw, "POST", "/v1/subscriptions", b->body, &b->r);
    b->ms = it_now_ms() - t0;
    return NULL;
}

int main(void)
{
    setenv("PUBSUBGW_TEST_RESOLVE_DELAY_MS", "3000", 1); /* the gateway inherits it */
    const char *extra[] = {"--callback-allow", "127.0.0.0/8", NULL};
    if (it_gw_start(&gw, "gw10@localhost", "gw10", it_server_port(), extra, 1) != 0)
        return 1;
    struct it_resp r;
    const char *node = it_unique("resolve");
    char body[600], path[300];
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);
    struct it_receiver *first = it_receiver_start(IT_OK, 0), *second = it_receiver_start(IT_OK, 0);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", node,
             it_receiver_url(first));
    CHECK_INT(it_req(&gw, "POST", "/v1/subscriptions", body, &r), 201);
    it_resp_free(&r);

    struct bg b;
    memset(&b, 0, sizeof(b));
    snprintf(b.body, sizeof(b.body), "{\"node\":\"%s\",\"callback\":\"http://localhost:%s\"}", node,
             strrchr(it_receiver_url(second), ':') + 1);
    long long t0 = it_now_ms();
    pthread_create(&b.t, NULL, bg_subscribe, &b);
    long long worst = 0;
    for (int i = 0; i < 20; i++) {
        snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=i%d", node, i);
        long long t = it_now_ms();
        CHECK_INT(it_req(&gw, "POST", path, "{\"i\":1}", &r), 201);
        it_resp_free(&r);
        if (it_now_ms() - t > worst)
            worst = it_now_ms() - t;
    }
    CHECK_INT(it_receiver_wait(first, 20, 2500), 20);
    long long delivered = it_now_ms() - t0;
    fprintf(stderr,
            "  20 publishes and deliveries in %lld ms (slowest publish %lld ms) while a "
            "callback's name took 3 s to resolve\n",
            delivered, worst);
    CHECK(worst < 1000);
    CHECK(delivered < 2900); /* all done before the resolution ended */
    pthread_join(b.t, NULL);
    CHECK_INT(b.r.status, 201);
    CHECK(b.ms >= 2900);
    it_resp_free(&b.r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=last", node);
    CHECK_INT(it_req(&gw, "POST", path, "{\"i\":2}", &r), 201);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(second, 1, 5000), 1);
    it_receiver_stop(first);
    it_receiver_stop(second);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_DONE();
}
