/* Webhook subscriptions against the real Prosody and real HTTP receivers: validation,
 * verification, exact payloads with independently verified signatures, retries in order,
 * a hanging callback that delays nobody else, 410, dead letters, unsubscribe, restart and
 * catch-up. */
#include "harness.h"
#include "receiver.h"

#include "gateway/store.h"

#include <sqlite3.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct it_gw gw;
static const char *extra[] = {"--callback-allow",
                              "127.0.0.0/8",
                              "--retry-attempts",
                              "4",
                              "--retry-initial",
                              "100",
                              "--retry-max-interval",
                              "1",
                              "--delivery-timeout",
                              "2",
                              NULL};
static const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static long req(const char *method, const char *path, const char *json, struct it_resp *r)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    it_http(method, url, json ? "application/json" : NULL, json, json ? strlen(json) : 0, r);
    return r->status;
}

static void make_node(const char *node)
{
    struct it_resp r;
    char body[300];
    snprintf(body, sizeof(body),
             "{\"node\":\"%s\",\"config\":{\"pubsub#publish_model\":\"open\",\"pubsub#max_items\":"
             "\"100\"}}",
             node);
    CHECK_INT(req("POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);
}

/* Creates a subscription; returns its id (static buffer rotation) or NULL. */
static const char *subscribe(const char *node, struct it_receiver *rc, const char *more)
{
    static char ids[32][64];
    static int k;
    struct it_resp r;
    char body[600];
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\",\"secret\":\"%s\"%s}", node,
             it_receiver_url(rc), secret, more ? more : "");
    long st = req("POST", "/v1/subscriptions", body, &r);
    CHECK_INT(st, 201);
    if (st != 201) {
        fprintf(stderr, "  %s\n", r.body);
        it_resp_free(&r);
        return NULL;
    }
    CHECK(json_object_get(r.json, "secret") == NULL); /* given, so never echoed */
    char *id = ids[k++ % 32];
    snprintf(id, 64, "%s", json_string_value(json_object_get(r.json, "id")));
    it_resp_free(&r);
    return id;
}

static void publish(const char *node, const char *id, const char *json)
{
    struct it_resp r;
    char path[400];
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=%s", node, id);
    CHECK_INT(req("POST", path, json, &r), 201);
    it_resp_free(&r);
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* Publishes items c1..cN one after another, counting those answered 201. */
struct churn {
    const char *node;
    int n;
    atomic_int published;
};

static void *churn_publisher(void *arg)
{
    struct churn *c = arg;
    for (int i = 1; i <= c->n; i++) {
        char path[400], json[64];
        snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=c%d", c->node, i);
        snprintf(json, sizeof(json), "{\"n\":%d}", i);
        struct it_resp r;
        if (req("POST", path, json, &r) == 201)
            atomic_store(&c->published, i);
        it_resp_free(&r);
    }
    return NULL;
}

/* The receiver's published items as numbers: 1 when they are first..last with no gap, repeat
 * or disorder. */
static int contiguous(struct it_receiver *rc, int *first, int *last)
{
    *first = *last = 0;
    for (int i = 0; i < it_receiver_count(rc); i++) {
        const struct it_delivery *d = it_receiver_get(rc, i);
        const char *type = json_string_value(json_object_get(d->json, "type"));
        if (type == NULL || strcmp(type, "item.published") != 0)
            continue; /* the node keeps 100 items: some servers tell the oldest retracted */
        int n = (int)json_integer_value(
            json_object_get(json_object_get(json_object_get(d->json, "item"), "payload"), "n"));
        if (*first == 0)
            *first = n;
        else if (n != *last + 1) {
            fprintf(stderr, "  delivery %d: c%d after c%d\n", i, n, *last);
            return 0;
        }
        *last = n;
    }
    return 1;
}

struct sub_rows {
    const char *a, *b;
    long a_rows, b_rows;
};

static void rows_of(const char *sub_id, int64_t n, void *arg)
{
    struct sub_rows *r = arg;
    if (strcmp(sub_id, r->a) == 0)
        r->a_rows += n;
    else if (strcmp(sub_id, r->b) == 0)
        r->b_rows += n;
}

static void validation(struct it_receiver *ok)
{
    struct it_resp r;
    char body[600];
    struct {
        const char *body, *field;
    } bad[] = {
        {"{\"callback\":\"http://127.0.0.1:9/x\"}", "node"},
        {"{\"node\":\"n\"}", "callback"},
        {"{\"node\":\"n\",\"callback\":\"ftp://127.0.0.1/x\"}", "callback"},
        {"{\"node\":\"n\",\"callback\":\"http:///x\"}", "callback"},
        {"{\"node\":\"n\",\"callback\":\"http://u:p@127.0.0.1/x\"}", "callback"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1:99999/x\"}", "callback"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/a b\"}", "callback"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"secret\":\"abc\"}", "secret"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"secret\":\"whsec_c2hvcnQ=\"}",
         "secret"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"events\":[\"items\",\"nope\"]}",
         "events[1]"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"events\":[]}", "events"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"verify\":\"yes\"}", "verify"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"replay\":-1}", "replay"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"colour\":1}", "colour"},
        {"{\"node\":\"n\",\"callback\":\"http://127.0.0.1/\",\"service\":\"a b\"}", "service"},
        {"[1]", "body"},
        {"{", "body"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req("POST", "/v1/subscriptions", bad[i].body, &r);
        it_check_problem(&r, 400, bad[i].field);
        it_resp_free(&r);
    }
    /* Unknown node: the XMPP subscribe fails and its condition reaches the client. */
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", it_unique("absent"),
             it_receiver_url(ok));
    req("POST", "/v1/subscriptions", body, &r);
    it_check_problem(&r, 404, NULL);
    CHECK_STR(jstr(r.json, "xmpp_condition"), "item-not-found");
    it_resp_free(&r);
    CHECK_INT(req("GET", "/v1/subscriptions/sub_nope", NULL, &r), 404);
    it_resp_free(&r);
    CHECK_INT(req("DELETE", "/v1/subscriptions/sub_nope", NULL, &r), 404);
    it_resp_free(&r);
}

int main(void)
{
    int xport = it_server_port();
    if (it_gw_start(&gw, "gw4@localhost", "gw4", xport, extra, 1) != 0)
        return 1;
    struct it_xmpp *alice = it_xmpp_connect("alice@localhost/hooks", "alice", xport);
    struct it_xmpp *gwcheck = it_xmpp_connect("gw4@localhost/check", "gw4", xport);
    CHECK(alice != NULL && gwcheck != NULL);
    if (alice == NULL || gwcheck == NULL)
        CHECK_DONE();
    struct it_resp r;
    char body[800];
    struct it_receiver *r1 = it_receiver_start(IT_OK, 0);
    validation(r1);

    /* Verification: a callback that does not echo the challenge is refused. */
    const char *n1 = it_unique("hooks");
    make_node(n1);
    struct it_receiver *liar = it_receiver_start(IT_OK, 0);
    it_receiver_bad_challenge(liar, 1);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\",\"verify\":true}", n1,
             it_receiver_url(liar));
    req("POST", "/v1/subscriptions", body, &r);
    it_check_problem(&r, 400, "callback");
    it_resp_free(&r);
    CHECK_INT(it_receiver_gets(liar), 1);
    it_receiver_stop(liar);

    /* A stored item before subscribing, replayed first. */
    publish(n1, "before", "{\"stored\":true}");
    const char *s1 = subscribe(n1, r1, ",\"verify\":true,\"replay\":5");
    CHECK_INT(it_receiver_gets(r1), 1);
    req("GET", "/v1/subscriptions", NULL, &r);
    CHECK(strstr(r.body, s1 ? s1 : "-") != NULL);
    CHECK(strstr(r.body, "whsec_") == NULL);
    it_resp_free(&r);
    snprintf(body, sizeof(body), "/v1/subscriptions/%s", s1);
    req("GET", body, NULL, &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(jstr(r.json, "node"), n1);
    CHECK_STR(jstr(r.json, "callback"), it_receiver_url(r1));
    CHECK(json_object_get(r.json, "secret") == NULL);
    it_resp_free(&r);

    /* Published through REST (JSON and XML) and by an independent XMPP client. */
    publish(n1, "j1", "{\"text\":\"caf\xC3\xA9 <&> \\\"q\\\"\",\"n\":[1,2]}");
    char url[600];
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items?id=x1", gw.base, n1);
    it_http("POST", url, "application/xml", "<note xmlns='urn:test'>hi &amp; bye</note>", 42, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    CHECK_INT(it_xmpp_publish(alice, "pubsub.localhost", n1, "a1", "{\"from\":\"alice\"}"), 0);
    CHECK_INT(it_xmpp_wait_published(alice, 1, 5000), 1);
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items/j1", gw.base, n1);
    it_http("DELETE", url, NULL, NULL, 0, &r);
    CHECK_INT(r.status, 204);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(r1, 5, 10000), 5);
    const char *types[] = {"item.published", "item.published", "item.published", "item.published",
                           "item.retracted"};
    const char *ids[] = {"before", "j1", "x1", "a1", "j1"};
    long long now = (long long)time(NULL);
    for (int i = 0; i < 5; i++) {
        const struct it_delivery *d = it_receiver_get(r1, i);
        if (d == NULL)
            break;
        CHECK_STR(jstr(d->json, "type"), types[i]);
        CHECK_STR(json_string_value(json_object_get(json_object_get(d->json, "item"), "id")),
                  ids[i]);
        CHECK_STR(jstr(d->json, "node"), n1);
        CHECK_STR(jstr(d->json, "service"), "pubsub.localhost");
        CHECK_STR(jstr(d->json, "subscription"), s1);
        CHECK(jstr(d->json, "timestamp") != NULL);
        CHECK_STR(d->ctype, "application/json");
        CHECK(strncmp(d->id, "msg_", 4) == 0);
        CHECK(llabs(atoll(d->ts) - now) < 30);
        CHECK(it_verify_signature(secret, d));
        CHECK_INT(json_is_true(json_object_get(d->json, "replay")), i == 0);
    }
    const struct it_delivery *d = it_receiver_get(r1, 1);
    if (d) {
        json_t *want = json_loads("{\"text\":\"caf\xC3\xA9 <&> \\\"q\\\"\",\"n\":[1,2]}", 0, NULL);
        CHECK(json_equal(json_object_get(json_object_get(d->json, "item"), "payload"), want));
        json_decref(want);
    }
    if ((d = it_receiver_get(r1, 2)) != NULL)
        CHECK_STR(json_string_value(json_object_get(json_object_get(d->json, "item"), "xml")),
                  "<note xmlns=\"urn:test\">hi &amp; bye</note>");
    if ((d = it_receiver_get(r1, 3)) != NULL)
        CHECK_STR(jstr(json_object_get(json_object_get(d->json, "item"), "payload"), "from"),
                  "alice");
    /* A tampered body does not verify. */
    if ((d = it_receiver_get(r1, 3)) != NULL) {
        struct it_delivery t = *d;
        t.body = "{}";
        CHECK(!it_verify_signature(secret, &t));
    }

    /* Retries: the first three attempts fail; each event is accepted once, in order. */
    const char *n2 = it_unique("retry");
    make_node(n2);
    struct it_receiver *r2 = it_receiver_start(IT_FAIL_FIRST, 3);
    const char *s2 = subscribe(n2, r2, NULL);
    for (int i = 1; i <= 5; i++) {
        char id[16], js[32];
        snprintf(id, sizeof(id), "e%d", i);
        snprintf(js, sizeof(js), "{\"n\":%d}", i);
        publish(n2, id, js);
    }
    CHECK_INT(it_receiver_wait(r2, 5, 15000), 5);
    usleep(300000);
    CHECK_INT(it_receiver_count(r2), 5);
    CHECK_INT(it_receiver_posts(r2), 8);
    for (int i = 0; i < 5 && (d = it_receiver_get(r2, i)) != NULL; i++) {
        char id[16];
        snprintf(id, sizeof(id), "e%d", i + 1);
        CHECK_STR(json_string_value(json_object_get(json_object_get(d->json, "item"), "id")), id);
    }
    /* The first event kept its webhook-id across retries: all five ids are distinct. */
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (it_receiver_get(r2, i) && it_receiver_get(r2, j))
                CHECK(strcmp(it_receiver_get(r2, i)->id, it_receiver_get(r2, j)->id) != 0);

    /* Retry-After on 503 is honoured (one second here). */
    const char *n2b = it_unique("busy");
    make_node(n2b);
    struct it_receiver *rb = it_receiver_start(IT_BUSY_FIRST, 1);
    subscribe(n2b, rb, NULL);
    long long t0 = it_now_ms();
    publish(n2b, "b1", "1");
    CHECK_INT(it_receiver_wait(rb, 1, 5000), 1);
    CHECK(it_now_ms() - t0 >= 900);
    it_receiver_stop(rb);

    /* 3xx is a failure: the redirect is never followed. */
    const char *n2c = it_unique("redirect");
    make_node(n2c);
    struct it_receiver *target = it_receiver_start(IT_OK, 0);
    struct it_receiver *redir = it_receiver_start(IT_REDIRECT, 0);
    it_receiver_redirect(redir, it_receiver_url(target));
    const char *s_redir = subscribe(n2c, redir, NULL);
    publish(n2c, "r1", "1");
    for (int i = 0; i < 100 && it_receiver_posts(redir) < 2; i++)
        usleep(50000);
    CHECK(it_receiver_posts(redir) >= 2);
    CHECK_INT(it_receiver_posts(target), 0);
    snprintf(body, sizeof(body), "/v1/subscriptions/%s", s_redir);
    CHECK_INT(req("DELETE", body, NULL, &r), 204);
    it_resp_free(&r);

    /* The event filter: only retractions. */
    struct it_receiver *filt = it_receiver_start(IT_OK, 0);
    subscribe(n2c, filt, ",\"events\":[\"retract\"]");
    publish(n2c, "f1", "1");
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items/f1", gw.base, n2c);
    it_http("DELETE", url, NULL, NULL, 0, &r);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(filt, 1, 5000), 1);
    usleep(200000);
    CHECK_INT(it_receiver_count(filt), 1);
    if ((d = it_receiver_get(filt, 0)) != NULL)
        CHECK_STR(jstr(d->json, "type"), "item.retracted");

    /* A hanging callback delays no other subscription. */
    const char *n3 = it_unique("hang");
    make_node(n3);
    struct it_receiver *slow = it_receiver_start(IT_HANG, 4000);
    struct it_receiver *fast = it_receiver_start(IT_OK, 0);
    const char *s_slow = subscribe(n3, slow, NULL);
    subscribe(n3, fast, NULL);
    publish(n3, "h1", "{}");
    long long t1 = it_now_ms();
    publish(n3, "h2", "{}");
    CHECK_INT(it_receiver_wait(fast, 2, 2000), 2);
    CHECK(it_now_ms() - t1 < 1000);

    /* 410 removes the subscription. */
    struct it_receiver *gone = it_receiver_start(IT_GONE, 0);
    const char *s_gone = subscribe(n1, gone, NULL);
    publish(n1, "g1", "{}");
    char path[200];
    snprintf(path, sizeof(path), "/v1/subscriptions/%s", s_gone);
    int removed = 0;
    for (int i = 0; i < 100 && !removed; i++) {
        removed = req("GET", path, NULL, &r) == 404;
        it_resp_free(&r);
        usleep(50000);
    }
    CHECK(removed);

    /* Dead letters after the bound, then retried by hand. */
    const char *n4 = it_unique("dead");
    make_node(n4);
    struct it_receiver *bad = it_receiver_start(IT_FAIL, 0);
    const char *s4 = subscribe(n4, bad, NULL);
    publish(n4, "d1", "{\"dead\":1}");
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/dead-letters", s4);
    json_t *letters = NULL;
    for (int i = 0; i < 100; i++) {
        req("GET", path, NULL, &r);
        if (json_array_size(json_object_get(r.json, "dead_letters")) > 0) {
            letters = json_incref(json_object_get(r.json, "dead_letters"));
            it_resp_free(&r);
            break;
        }
        it_resp_free(&r);
        usleep(50000);
    }
    CHECK(letters != NULL && json_array_size(letters) == 1);
    CHECK_INT(it_receiver_posts(bad), 4);
    json_t *letter = json_array_get(letters, 0);
    CHECK_INT(json_integer_value(json_object_get(letter, "attempts")), 4);
    CHECK_STR(jstr(letter, "last_error"), "HTTP 500");
    CHECK_STR(jstr(json_object_get(json_object_get(letter, "event"), "item"), "id"), "d1");
    it_receiver_set_mode(bad, IT_OK, 0);
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/dead-letters/%s/retry", s4,
             jstr(letter, "id"));
    CHECK_INT(req("POST", path, NULL, &r), 202);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(bad, 1, 5000), 1);
    CHECK_INT(req("POST", path, NULL, &r), 404);
    it_resp_free(&r);
    json_decref(letters);
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/dead-letters/999999/retry", s4);
    CHECK_INT(req("POST", path, NULL, &r), 404);
    it_resp_free(&r);

    /* Unsubscribe: deliveries stop, and the XMPP subscription goes with the node's last callback.
     */
    json_t *nodes = it_xmpp_subscriptions(gwcheck, "pubsub.localhost");
    int listed = 0;
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v) listed |= strcmp(json_string_value(v), n1) == 0;
    CHECK(listed);
    json_decref(nodes);
    snprintf(path, sizeof(path), "/v1/subscriptions/%s", s1);
    CHECK_INT(req("DELETE", path, NULL, &r), 204);
    it_resp_free(&r);
    int before = it_receiver_count(r1);
    publish(n1, "after-delete", "{}");
    usleep(500000);
    CHECK_INT(it_receiver_count(r1), before);
    nodes = it_xmpp_subscriptions(gwcheck, "pubsub.localhost");
    int n1_listed = 0, n2_listed = 0;
    json_array_foreach(nodes, i, v)
    {
        n1_listed |= strcmp(json_string_value(v), n1) == 0;
        n2_listed |= strcmp(json_string_value(v), n2) == 0;
    }
    CHECK(!n1_listed);
    CHECK(n2_listed);
    json_decref(nodes);
    snprintf(path, sizeof(path), "/v1/subscriptions?node=%s", n2);
    req("GET", path, NULL, &r);
    CHECK_INT(json_array_size(json_object_get(r.json, "subscriptions")), 1);
    CHECK_STR(jstr(json_array_get(json_object_get(r.json, "subscriptions"), 0), "id"), s2);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/subscriptions/%s", s_slow);
    CHECK_INT(req("DELETE", path, NULL, &r), 204);
    it_resp_free(&r);

    /* Restart: subscriptions survive; items published while away are caught up once. */
    const char *n5 = it_unique("catchup");
    make_node(n5);
    struct it_receiver *r5 = it_receiver_start(IT_OK, 0);
    const char *s5 = subscribe(n5, r5, NULL);
    publish(n5, "live1", "{}");
    CHECK_INT(it_receiver_wait(r5, 1, 5000), 1);
    /* The receiver has answered; the gateway counts the delivery done once it has read that
     * answer (its attempt is then listed). A delivery still in flight at a stop is made again
     * at the next start, by design: wait for it to be done. */
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/attempts", s5);
    for (int k = 0; k < 100; k++) {
        req("GET", path, NULL, &r);
        size_t n = json_array_size(json_object_get(r.json, "attempts"));
        it_resp_free(&r);
        if (n >= 1)
            break;
        usleep(20000);
    }
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    for (int k = 1; k <= 3; k++) {
        char id[16];
        snprintf(id, sizeof(id), "away%d", k);
        it_xmpp_publish(alice, "pubsub.localhost", n5, id, "{\"away\":true}");
    }
    CHECK_INT(it_xmpp_wait_published(alice, 4, 5000), 4);
    CHECK_INT(it_gw_restart(&gw, "gw4@localhost", "gw4", xport, extra, 1), 0);
    CHECK_INT(it_receiver_wait(r5, 4, 10000), 4);
    for (int k = 1; k <= 3 && (d = it_receiver_get(r5, k)) != NULL; k++) {
        char id[16];
        snprintf(id, sizeof(id), "away%d", k);
        CHECK_STR(jstr(json_object_get(d->json, "item"), "id"), id);
        CHECK(json_is_true(json_object_get(d->json, "catchup")));
    }
    snprintf(path, sizeof(path), "/v1/subscriptions?node=%s", n5);
    req("GET", path, NULL, &r);
    CHECK_INT(json_array_size(json_object_get(r.json, "subscriptions")), 1);
    it_resp_free(&r);
    publish(n5, "live2", "{}");
    CHECK_INT(it_receiver_wait(r5, 5, 5000), 5);
    /* Once more: nothing is delivered twice. */
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_INT(it_gw_restart(&gw, "gw4@localhost", "gw4", xport, extra, 1), 0);
    usleep(1500000);
    CHECK_INT(it_receiver_count(r5), 5);

    /* Connection caps: twelve subscriptions on one slow host get at most --max-host-connections
     * (8 by default) deliveries at once, all arrive, and a callback on another host is served
     * meanwhile, not after them. */
    const char *n6 = it_unique("hooks");
    make_node(n6);
    struct it_receiver *busy = it_receiver_start(IT_HANG, 300);
    struct it_receiver *other = it_receiver_start(IT_OK, 0);
    for (int k = 0; k < 12; k++)
        subscribe(n6, busy, NULL);
    subscribe(n6, other, NULL);
    long long t6 = it_now_ms();
    publish(n6, "cap1", "{}");
    publish(n6, "cap2", "{}");
    CHECK_INT(it_receiver_wait(other, 2, 5000), 2);
    /* (under valgrind everything takes a few times longer) */
    CHECK(it_now_ms() - t6 < (getenv("PUBSUBGW_VALGRIND") ? 3000 : 1000));
    CHECK(it_receiver_count(busy) < 24);
    CHECK_INT(it_receiver_wait(busy, 24, 10000), 24);
    CHECK(it_receiver_max_concurrent(busy) <= 8);
    CHECK(it_receiver_max_concurrent(busy) >= 4);
    int in_order = 1;
    for (int k = 0; k < 24; k++) { /* each subscription got cap1 before cap2 */
        const struct it_delivery *dk = it_receiver_get(busy, k);
        const char *sub = jstr(dk->json, "subscription");
        const char *item = jstr(json_object_get(dk->json, "item"), "id");
        if (sub && item && strcmp(item, "cap2") == 0)
            for (int j = k + 1; j < 24; j++) {
                const struct it_delivery *e = it_receiver_get(busy, j);
                const char *esub = jstr(e->json, "subscription");
                if (esub && strcmp(esub, sub) == 0)
                    in_order = 0;
            }
    }
    CHECK(in_order);
    it_receiver_stop(busy);
    it_receiver_stop(other);

    /* Subscriptions created and deleted while items flow: the new one gets every item from
     * its creation on, the deleted one every item up to its deletion and none after, each in
     * order without a gap; and the store keeps no row for the deleted one. */
    const char *n8 = it_unique("hooks");
    make_node(n8);
    struct it_receiver *ra = it_receiver_start(IT_OK, 0), *rcb = it_receiver_start(IT_OK, 0);
    const char *sa = subscribe(n8, ra, NULL);
    struct churn ch = {n8, 300, 0};
    pthread_t pub;
    CHECK_INT(pthread_create(&pub, NULL, churn_publisher, &ch), 0);
    while (atomic_load(&ch.published) < 80)
        usleep(1000);
    const char *sb = subscribe(n8, rcb, NULL);
    int after_create = atomic_load(&ch.published);
    while (atomic_load(&ch.published) < 180)
        usleep(1000);
    snprintf(body, sizeof(body), "/v1/subscriptions/%s", sa ? sa : "-");
    CHECK_INT(req("DELETE", body, NULL, &r), 204);
    it_resp_free(&r);
    int after_delete = atomic_load(&ch.published);
    pthread_join(pub, NULL);
    CHECK_INT(atomic_load(&ch.published), 300);
    int a_first, a_last, b_first, b_last;
    for (int k = 0; k < 200 && (!contiguous(rcb, &b_first, &b_last) || b_last < 300); k++)
        it_receiver_wait(rcb, it_receiver_count(rcb) + 1, 100);
    CHECK(contiguous(ra, &a_first, &a_last));
    CHECK(contiguous(rcb, &b_first, &b_last));
    fprintf(stderr,
            "churn: deleted got c%d..c%d (deleted after c%d), created got c%d..c%d "
            "(created after c%d)\n",
            a_first, a_last, after_delete, b_first, b_last, after_create);
    CHECK_INT(a_first, 1);
    CHECK(a_last <= after_delete + 1); /* one publish may have been under way */
    CHECK(b_first >= 1 && b_first <= after_create + 2);
    CHECK_INT(b_last, 300);
    /* what follows the last item (a server's retraction of the oldest) is delivered too */
    snprintf(body, sizeof(body), "/v1/subscriptions/%s", sb ? sb : "-");
    long backlog = -1;
    for (int k = 0; k < 100 && backlog != 0; k++) {
        if (k > 0)
            usleep(100000);
        if (req("GET", body, NULL, &r) == 200)
            backlog = (long)json_integer_value(json_object_get(r.json, "backlog"));
        it_resp_free(&r);
    }
    CHECK_INT((int)backlog, 0);

    /* A delete the store refuses: the subscription stays, listed and delivering. (SQLite: the
     * test holds the database's write lock past the gateway's 5 s busy timeout; the same on
     * PostgreSQL is the store fault test's.) */
    const char *vg = getenv("PUBSUBGW_VALGRIND");
    if (vg != NULL && strcmp(vg, "1") == 0) {
        /* under valgrind the gateway's own writes outlast the lock's window: timing, not a
         * check, would fail */
        fprintf(stderr, "refused delete: not run under valgrind (it times a lock)\n");
    } else if (strcmp(it_store_name(), "sqlite") == 0) {
        usleep(300000); /* the delivered rows' removal (20 ms after) is done before the lock */
        char dbpath[400];
        snprintf(dbpath, sizeof(dbpath), "%s/data/pubsubgw.db", gw.dir);
        sqlite3 *db = NULL;
        CHECK_INT(sqlite3_open(dbpath, &db), SQLITE_OK);
        sqlite3_busy_timeout(db, 30000); /* the gateway may be writing (slowly, under valgrind) */
        CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
        snprintf(body, sizeof(body), "/v1/subscriptions/%s", sb ? sb : "-");
        long long t9 = it_now_ms();
        CHECK_INT(req("DELETE", body, NULL, &r), 500);
        CHECK(it_now_ms() - t9 >= 4000);
        it_check_problem(&r, 500, "unchanged");
        it_resp_free(&r);
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
        CHECK_INT(req("GET", body, NULL, &r), 200);
        it_resp_free(&r);
        int had = it_receiver_count(rcb);
        publish(n8, "after-refused-delete", "{\"n\":301}");
        /* (on ejabberd a retraction of the oldest item comes too, in either order) */
        int found = 0;
        for (int k = 0; k < 150 && !found; k++) {
            it_receiver_wait(rcb, it_receiver_count(rcb) + 1, 100);
            for (int j = had; j < it_receiver_count(rcb) && !found; j++) {
                const json_t *ev = it_receiver_get(rcb, j)->json;
                const char *type = json_string_value(json_object_get(ev, "type"));
                const char *id =
                    json_string_value(json_object_get(json_object_get(ev, "item"), "id"));
                found = type && id && strcmp(type, "item.published") == 0 &&
                        strcmp(id, "after-refused-delete") == 0;
            }
        }
        CHECK(found);
        fprintf(stderr, "refused delete: answered 500 after %lld ms, still delivering\n",
                it_now_ms() - t9);
    } else {
        fprintf(stderr, "refused delete: checked by the store fault test on PostgreSQL\n");
    }

    /* The total cap: with --max-delivery-connections 2, six deliveries to three slow hosts go two
     * at a time (three rounds of 300 ms), and every host gets its turn. */
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    struct gw_store *st = it_gw_store_open(&gw);
    CHECK(st != NULL);
    struct sub_rows rows = {sa ? sa : "-", sb ? sb : "-", 0, 0};
    if (st != NULL) {
        CHECK_INT(gw_store_pending_each(st, rows_of, &rows), 0);
        CHECK_INT(gw_store_dead_count_each(st, NULL, rows_of, &rows), 0);
        gw_store_close(st);
    }
    CHECK_INT((int)rows.a_rows, 0);
    CHECK_INT((int)rows.b_rows, 0);
    it_receiver_stop(ra);
    it_receiver_stop(rcb);
    const char *capped[] = {"--callback-allow", "127.0.0.0/8", "--max-delivery-connections", "2",
                            NULL};
    CHECK_INT(it_gw_restart(&gw, "gw4@localhost", "gw4", xport, capped, 1), 0);
    const char *n7 = it_unique("hooks");
    make_node(n7);
    struct it_receiver *slow3[3];
    for (int k = 0; k < 3; k++) {
        slow3[k] = it_receiver_start(IT_HANG, 300);
        subscribe(n7, slow3[k], NULL);
        subscribe(n7, slow3[k], NULL);
    }
    long long t7 = it_now_ms();
    publish(n7, "total1", "{}");
    for (int k = 0; k < 3; k++)
        CHECK_INT(it_receiver_wait(slow3[k], 2, 10000), 2);
    CHECK(it_now_ms() - t7 >= 850);
    for (int k = 0; k < 3; k++)
        it_receiver_stop(slow3[k]);

    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    it_xmpp_close(alice);
    it_xmpp_close(gwcheck);
    it_receiver_stop(r1);
    it_receiver_stop(r2);
    it_receiver_stop(slow);
    it_receiver_stop(fast);
    it_receiver_stop(gone);
    it_receiver_stop(bad);
    it_receiver_stop(r5);
    it_receiver_stop(target);
    it_receiver_stop(redir);
    it_receiver_stop(filt);
    CHECK_DONE();
}
