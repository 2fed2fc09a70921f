/* Hostile and unauthenticated input against the real gateway: tokens and scopes, SSRF targets,
 * deeply nested and invalid bodies, oversized headers, injection attempts, callbacks that reset
 * or answer garbage. Every refusal is the right 4xx, and the gateway keeps serving. */
#include "harness.h"
#include "receiver.h"

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct it_gw gw;
static const char *full = "Authorization: Bearer full-access-token-0001";
static const char *reader = "Authorization: Bearer read-only-token-000002";
static const char *team = "Authorization: Bearer team-publisher-tok-003";

static long call(const char *method, const char *path, const char *auth, const char *json,
                 struct it_resp *r)
{
    char url[70000];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    const char *h[] = {auth};
    it_http_ex(method, url, json ? "application/json" : NULL, json, json ? strlen(json) : 0, h, 1,
               r);
    return r->status;
}

static void serving(void)
{
    struct it_resp r;
    CHECK_INT(call("GET", "/v1/health", NULL, NULL, &r), 200);
    it_resp_free(&r);
}

/* A TCP "callback" that resets the connection or answers garbage, as told. */
struct rogue {
    int fd, port, garbage;
    atomic_int stop;
    pthread_t t;
};

static void *rogue_run(void *arg)
{
    struct rogue *g = arg;
    while (!g->stop) {
        int c = accept(g->fd, NULL, NULL);
        if (c < 0)
            continue;
        if (g->garbage) {
            char buf[4096];
            if (read(c, buf, sizeof(buf)) < 0)
                buf[0] = 0;
            const char junk[] = "NOT HTTP AT ALL\r\n\x01\x02\xff\r\n\r\n";
            if (write(c, junk, sizeof(junk) - 1) < 0)
                buf[0] = 0;
        } else {
            struct linger l = {1, 0}; /* close with RST */
            setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        }
        close(c);
    }
    return NULL;
}

static struct rogue *rogue_start(int garbage)
{
    struct rogue *g = calloc(1, sizeof(*g));
    g->garbage = garbage;
    g->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(g->fd, (struct sockaddr *)&a, sizeof(a));
    listen(g->fd, 16);
    getsockname(g->fd, (struct sockaddr *)&a, &len);
    g->port = ntohs(a.sin_port);
    pthread_create(&g->t, NULL, rogue_run, g);
    return g;
}

static void rogue_stop(struct rogue *g)
{
    g->stop = 1;
    shutdown(g->fd, SHUT_RDWR);
    close(g->fd);
    pthread_join(g->t, NULL);
    free(g);
}

int main(void)
{
    int xport = it_server_port();
    const char *extra[] = {"--api-token",
                           "full-access-token-0001",
                           "--api-token",
                           "read-only-token-000002 scopes=read",
                           "--api-token",
                           "team-publisher-tok-003 scopes=read,publish nodes=sec-team-*",
                           "--callback-allow",
                           "127.0.0.1/32",
                           "--retry-attempts",
                           "2",
                           "--retry-initial",
                           "100",
                           "--max-json-depth",
                           "32",
                           NULL};
    if (it_gw_start(&gw, "gw8@localhost", "gw8", xport, extra, 1) != 0)
        return 1;
    struct it_resp r;
    char body[800], path[400];

    /* Tokens and scopes. */
    CHECK_INT(call("GET", "/v1/nodes", NULL, NULL, &r), 401);
    CHECK_STR(r.content_type, "application/problem+json");
    it_resp_free(&r);
    {
        /* the challenge header */
        char url[200];
        snprintf(url, sizeof(url), "%s/metrics", gw.base);
        FILE *p = NULL;
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "curl -s -D - -o /dev/null %s", url);
        p = popen(cmd, "r");
        char out[2000] = "";
        size_t n = p ? fread(out, 1, sizeof(out) - 1, p) : 0;
        out[n] = '\0';
        if (p)
            pclose(p);
        CHECK(strstr(out, "WWW-Authenticate: Bearer") != NULL ||
              strstr(out, "www-authenticate: Bearer") != NULL);
    }
    CHECK_INT(call("GET", "/v1/nodes", "Authorization: Bearer not-a-token-at-all", NULL, &r), 401);
    it_resp_free(&r);
    CHECK_INT(call("GET", "/openapi.json", NULL, NULL, &r), 401);
    it_resp_free(&r);
    serving();
    const char *node = it_unique("sec-team");
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(call("POST", "/v1/nodes", reader, body, &r), 403);
    it_resp_free(&r);
    CHECK_INT(call("POST", "/v1/nodes", team, body, &r), 403);
    it_resp_free(&r);
    CHECK_INT(call("POST", "/v1/nodes", full, body, &r), 201);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    CHECK_INT(call("POST", path, reader, "{\"x\":1}", &r), 403);
    it_resp_free(&r);
    CHECK_INT(call("POST", path, team, "{\"x\":1}", &r), 201);
    it_resp_free(&r);
    CHECK_INT(call("GET", path, reader, NULL, &r), 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "items")), 1);
    it_resp_free(&r);
    const char *other = it_unique("sec-other");
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", other);
    CHECK_INT(call("POST", "/v1/nodes", full, body, &r), 201);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", other);
    call("POST", path, team, "{\"x\":1}", &r);
    it_check_problem(&r, 403, "node");
    it_resp_free(&r);

    /* SSRF: reserved addresses are refused before anything is sent; 127.0.0.1 is allow-listed. */
    const char *targets[] = {"http://10.0.0.1/hook",   "http://169.254.169.254/latest/meta-data",
                             "http://[::1]:8080/x",    "http://[::ffff:10.1.1.1]/x",
                             "http://127.0.0.2:9/x",   "http://0.0.0.0:9/x",
                             "http://[fd00:ec2::254]/"};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", node, targets[i]);
        call("POST", "/v1/subscriptions", full, body, &r);
        it_check_problem(&r, 400, "callback");
        it_resp_free(&r);
    }
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"http://127.0.0.1:9/x\"}", other);
    call("POST", "/v1/subscriptions", team, body, &r);
    CHECK_INT(r.status, 403); /* team tokens lack the subscribe scope */
    it_resp_free(&r);

    /* Callbacks that reset the connection or answer garbage: failures, then dead letters, and
     * nothing else is disturbed. */
    struct rogue *reset = rogue_start(0), *junk = rogue_start(1);
    struct it_receiver *good = it_receiver_start(IT_OK, 0);
    char subs[3][80];
    const char *cbs[3];
    char cb0[100], cb1[100];
    snprintf(cb0, sizeof(cb0), "http://127.0.0.1:%d/h", reset->port);
    snprintf(cb1, sizeof(cb1), "http://127.0.0.1:%d/h", junk->port);
    cbs[0] = cb0;
    cbs[1] = cb1;
    cbs[2] = it_receiver_url(good);
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", node, cbs[i]);
        CHECK_INT(call("POST", "/v1/subscriptions", full, body, &r), 201);
        snprintf(subs[i], sizeof(subs[i]), "%s", json_string_value(json_object_get(r.json, "id")));
        it_resp_free(&r);
    }
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=rogue", node);
    CHECK_INT(call("POST", path, full, "{\"to\":\"all\"}", &r), 201);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(good, 1, 5000), 1);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "/v1/subscriptions/%s/dead-letters", subs[i]);
        size_t n = 0;
        for (int k = 0; k < 100 && n == 0; k++) {
            call("GET", path, full, NULL, &r);
            n = json_array_size(json_object_get(r.json, "dead_letters"));
            it_resp_free(&r);
            if (n == 0)
                usleep(50000);
        }
        CHECK_INT(n, 1);
    }
    rogue_stop(reset);
    rogue_stop(junk);
    it_receiver_stop(good);

    /* Bodies: nesting, invalid UTF-8, injection through ids and payloads. */
    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    call("POST", path, full, deep, &r);
    it_check_problem(&r, 400, "nested");
    it_resp_free(&r);
    call("POST", path, full, "{\"a\":\"\xC3\x28\"}", &r);
    it_check_problem(&r, 400, "body");
    it_resp_free(&r);
    call("POST", path, full, "{\"a\":\"</json><evil/>\"}", &r);
    CHECK_INT(r.status, 201);
    const char *inj_id = json_string_value(json_object_get(r.json, "id"));
    char inj_path[400];
    snprintf(inj_path, sizeof(inj_path), "/v1/nodes/%s/items/%s", node, inj_id ? inj_id : "x");
    it_resp_free(&r);
    call("GET", inj_path, full, NULL, &r);
    CHECK_STR(json_string_value(json_object_get(json_object_get(r.json, "payload"), "a")),
              "</json><evil/>");
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=%%22%%3E%%3Cx", node);
    CHECK_INT(call("POST", path, full, "1", &r), 201);
    it_resp_free(&r);
    call("POST", "/v1/nodes/a%00b/items", full, "1", &r);
    it_check_problem(&r, 400, "node");
    it_resp_free(&r);
    char url[300];
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items", gw.base, node);
    const char *h1[] = {full};
    it_http_ex("POST", url, "application/xml", "<a><![CDATA[x]]><b xmlns:evil='e'/></a><c/>", 43,
               h1, 1, &r);
    it_check_problem(&r, 400, "body");
    it_resp_free(&r);
    /* A header far beyond the limit: refused by the HTTP layer, the gateway carries on. */
    char *bighdr = malloc(200000);
    strcpy(bighdr, "X-Big: ");
    memset(bighdr + 7, 'a', 150000);
    bighdr[150007] = '\0';
    const char *h2[] = {full, bighdr};
    it_http_ex("GET", url, NULL, NULL, 0, h2, 2, &r);
    CHECK(r.status == 431 || r.status == 413 || r.status == 400 || r.status == 0);
    it_resp_free(&r);
    free(bighdr);
    serving();

    /* Secrets never reach the log. */
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    const char *secrets[] = {"full-access-token-0001", "read-only-token-000002",
                             "team-publisher-tok-003", "gw8\"", "whsec_"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "grep -qF '%s' %s", secrets[i], gw.log);
        CHECK(system(cmd) != 0);
    }

    /* Bounded outbox: a subscription past its cap dead-letters new events; past the total cap
     * publishing is refused with 503 until deliveries catch up. Oversized notifications are
     * dropped. */
    const char *bounded[] = {"--max-pending-per-subscription",
                             "2",
                             "--max-pending",
                             "3",
                             "--max-stanza",
                             "20000",
                             "--callback-allow",
                             "127.0.0.1/32",
                             "--retry-initial",
                             "60000",
                             "--http-timeout",
                             "1",
                             NULL};
    if (it_gw_start(&gw, "gw8@localhost", "gw8", xport, bounded, 1) != 0)
        CHECK_DONE();
    /* A client that starts a request and goes quiet is disconnected after --http-timeout, and
     * others are served meanwhile. */
    int idle = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)gw.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_INT(connect(idle, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK(write(idle, "GET /v1/health HTTP/1.1\r\nHost: x\r\n", 34) == 34);
    long long t_idle = it_now_ms();
    CHECK_INT(call("GET", "/v1/health", NULL, NULL, &r), 200);
    it_resp_free(&r);
    struct timeval tv = {5, 0};
    setsockopt(idle, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char sink[256];
    ssize_t got = read(idle, sink, sizeof(sink));
    long long waited = it_now_ms() - t_idle;
    CHECK(got <= 0); /* closed (or reset), not answered */
    CHECK(waited >= 900 && waited < 4000);
    close(idle);
    const char *bnode = it_unique("sec-bounded");
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", bnode);
    CHECK_INT(call("POST", "/v1/nodes", NULL, body, &r), 201);
    it_resp_free(&r);
    struct it_receiver *down = it_receiver_start(IT_FAIL, 0);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", bnode,
             it_receiver_url(down));
    CHECK_INT(call("POST", "/v1/subscriptions", NULL, body, &r), 201);
    char sub_a[80];
    snprintf(sub_a, sizeof(sub_a), "%s", json_string_value(json_object_get(r.json, "id")));
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", bnode);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(call("POST", path, NULL, "{\"n\":1}", &r), 201);
        it_resp_free(&r);
    }
    snprintf(path, sizeof(path), "/v1/subscriptions/%s/dead-letters", sub_a);
    size_t nfull = 0;
    for (int k = 0; k < 100 && nfull < 2; k++) {
        call("GET", path, NULL, NULL, &r);
        nfull = 0;
        size_t i;
        json_t *l;
        json_array_foreach(json_object_get(r.json, "dead_letters"), i, l)
        {
            const char *e = json_string_value(json_object_get(l, "last_error"));
            nfull += e && strcmp(e, "outbox full") == 0;
        }
        it_resp_free(&r);
        if (nfull < 2)
            usleep(50000);
    }
    CHECK_INT(nfull, 2);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", bnode,
             it_receiver_url(down));
    CHECK_INT(call("POST", "/v1/subscriptions", NULL, body, &r), 201); /* 2 pending of 3 */
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", bnode);
    CHECK_INT(call("POST", path, NULL, "{\"n\":2}", &r), 201); /* the new one: 3 of 3 */
    it_resp_free(&r);
    for (int k = 0; k < 50; k++) { /* until the event has been taken in */
        call("POST", path, NULL, "{\"n\":3}", &r);
        long st = r.status;
        if (st == 503)
            CHECK(atoi(r.retry_after) > 0);
        it_resp_free(&r);
        if (st == 503)
            break;
        CHECK(k < 49);
        usleep(50000);
    }
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    it_receiver_stop(down);

    /* A notification over --max-stanza is dropped with a log line, never delivered. */
    const char *small[] = {"--max-stanza", "20000", "--callback-allow", "127.0.0.1/32", NULL};
    if (it_gw_start(&gw, "gw8@localhost", "gw8", xport, small, 1) != 0)
        CHECK_DONE();
    struct it_receiver *ok = it_receiver_start(IT_OK, 0);
    const char *bignode = it_unique("sec-big");
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", bignode);
    CHECK_INT(call("POST", "/v1/nodes", NULL, body, &r), 201);
    it_resp_free(&r);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"%s\"}", bignode,
             it_receiver_url(ok));
    CHECK_INT(call("POST", "/v1/subscriptions", NULL, body, &r), 201);
    it_resp_free(&r);
    char *huge = malloc(40000);
    memset(huge, 'x', 39990);
    memcpy(huge, "{\"big\":\"", 8);
    memcpy(huge + 39990 - 2, "\"}", 3);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=huge", bignode);
    CHECK_INT(call("POST", path, NULL, huge, &r), 201); /* the service takes it */
    it_resp_free(&r);
    free(huge);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=small", bignode);
    CHECK_INT(call("POST", path, NULL, "{\"small\":1}", &r), 201);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(ok, 1, 5000), 1);
    usleep(300000);
    CHECK_INT(it_receiver_count(ok), 1);
    const struct it_delivery *d = it_receiver_get(ok, 0);
    CHECK_STR(d ? json_string_value(json_object_get(json_object_get(d->json, "item"), "id")) : NULL,
              "small");
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "grep -q 'larger than --max-stanza' %s", gw.log);
    CHECK_INT(system(cmd), 0);
    it_receiver_stop(ok);
    CHECK_DONE();
}
