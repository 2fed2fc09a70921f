/* kill -9 of the gateway while 1,000 events stream through it: after a restart every event
 * reaches the receiver at least once, with no gap (the outbox keeps what was taken from XMPP,
 * catch-up recovers what was still on the wire). */
#include "harness.h"
#include "receiver.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define EVENTS 1000

int main(void)
{
    int xport = it_server_port();
    const char *extra[] = {"--callback-allow",
                           "127.0.0.0/8",
                           "--retry-initial",
                           "100",
                           "--retry-max-interval",
                           "1",
                           "--log-level",
                           "info",
                           NULL};
    struct it_gw gw;
    if (it_gw_start(&gw, "gw5@localhost", "gw5", xport, extra, 1) != 0)
        return 1;
    struct it_xmpp *alice = it_xmpp_connect("alice@localhost/crash", "alice", xport);
    CHECK(alice != NULL);
    if (alice == NULL)
        CHECK_DONE();
    const char *node = it_unique("crash");
    struct it_resp r;
    char body[400], url[400];
    snprintf(body, sizeof(body),
             "{\"node\":\"%s\",\"config\":{\"pubsub#publish_model\":\"open\",\"pubsub#max_items\":"
             "\"2000\"}}",
             node);
    it_post_json(&gw, "/v1/nodes", body, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    struct it_receiver *rc = it_receiver_start(IT_OK, 0);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", node,
             it_receiver_url(rc));
    it_post_json(&gw, "/v1/subscriptions", body, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);

    /* Stream the events; kill the gateway once deliveries are under way. */
    int sent = 0, killed = 0;
    while (sent < EVENTS || !killed) {
        if (sent < EVENTS) {
            char id[16], js[32];
            snprintf(id, sizeof(id), "k%04d", sent);
            snprintf(js, sizeof(js), "{\"i\":%d}", sent);
            it_xmpp_publish(alice, "pubsub.localhost", node, id, js);
            sent++;
        } else {
            usleep(1000);
        }
        if (!killed && it_receiver_count(rc) >= 100) {
            kill(gw.pid, SIGKILL);
            killed = 1;
            fprintf(stderr, "killed after %d sent, %d delivered\n", sent, it_receiver_count(rc));
        }
        if (sent == EVENTS && !killed && it_xmpp_wait_published(alice, EVENTS, 1) >= EVENTS &&
            it_receiver_count(rc) < 100)
            it_receiver_wait(rc, 100, 10000);
    }
    CHECK_INT(it_xmpp_wait_published(alice, EVENTS, 20000), EVENTS);
    it_gw_stop(&gw, SIGKILL);
    int before = it_receiver_count(rc);
    CHECK(before < EVENTS); /* the kill did interrupt the stream */
    CHECK_INT(it_gw_restart(&gw, "gw5@localhost", "gw5", xport, extra, 1), 0);

    /* Every event arrives: wait until all 1,000 distinct ids were seen. */
    static char seen[EVENTS];
    int distinct = 0, dupes = 0, scanned = 0;
    long long end = it_now_ms() + 60000;
    while (distinct < EVENTS && it_now_ms() < end) {
        int n = it_receiver_count(rc);
        for (; scanned < n; scanned++) {
            const struct it_delivery *d = it_receiver_get(rc, scanned);
            const char *id =
                json_string_value(json_object_get(json_object_get(d->json, "item"), "id"));
            int k = id && id[0] == 'k' ? atoi(id + 1) : -1;
            if (k < 0 || k >= EVENTS)
                continue;
            if (seen[k])
                dupes++;
            else
                distinct++;
            seen[k] = 1;
        }
        usleep(20000);
    }
    fprintf(stderr, "delivered before kill: %d; distinct after restart: %d; duplicates: %d\n",
            before, distinct, dupes);
    CHECK_INT(distinct, EVENTS);
    for (int k = 0; k < EVENTS; k++)
        if (!seen[k]) {
            fprintf(stderr, "  missing k%04d\n", k);
            CHECK(seen[k]);
        }
    snprintf(url, sizeof(url), "/metrics");
    it_get(&gw, url, &r);
    CHECK(strstr(r.body, "pubsubgw_deliveries_total") != NULL);
    it_resp_free(&r);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    it_receiver_stop(rc);
    it_xmpp_close(alice);
    CHECK_DONE();
}
