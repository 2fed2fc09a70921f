/* Server-Sent Events and inbound webhooks against the real Prosody: several clients get the
 * same events as webhooks, heartbeats flow, Last-Event-ID resumes, clients that leave are
 * released (and with the last one the XMPP subscription); signed hooks publish, bad ones are
 * refused. */
#include "harness.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct it_gw gw;

struct sse {
    pthread_t t;
    pthread_mutex_t lock;
    char url[600], last_id[80];
    char *buf;
    size_t len;
    int stop;
    long status;
    char ctype[80];
};

static size_t sse_write(char *p, size_t size, size_t n, void *arg)
{
    struct sse *s = arg;
    pthread_mutex_lock(&s->lock);
    s->buf = realloc(s->buf, s->len + size * n + 1);
    memcpy(s->buf + s->len, p, size * n);
    s->len += size * n;
    s->buf[s->len] = '\0';
    pthread_mutex_unlock(&s->lock);
    return size * n;
}

static int sse_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    struct sse *s = arg;
    pthread_mutex_lock(&s->lock);
    int stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

static void *sse_run(void *arg)
{
    struct sse *s = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char hdr[120];
    if (s->last_id[0]) {
        snprintf(hdr, sizeof(hdr), "Last-Event-ID: %s", s->last_id);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, s->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sse_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &s->status);
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(s->ctype, sizeof(s->ctype), "%s", ct ? ct : "");
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static struct sse *sse_open(const char *node, const char *last_id)
{
    struct sse *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    snprintf(s->url, sizeof(s->url), "%s/v1/nodes/%s/events", gw.base, node);
    if (last_id)
        snprintf(s->last_id, sizeof(s->last_id), "%s", last_id);
    pthread_create(&s->t, NULL, sse_run, s);
    return s;
}

/* Waits until the stream holds text; returns 1 if it did within timeout_ms. */
static int sse_wait(struct sse *s, const char *text, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        pthread_mutex_lock(&s->lock);
        int found = s->buf && strstr(s->buf, text) != NULL;
        pthread_mutex_unlock(&s->lock);
        if (found)
            return 1;
        usleep(10000);
    }
    return 0;
}

static int sse_has(struct sse *s, const char *text)
{
    return sse_wait(s, text, 0);
}

static void sse_close(struct sse *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->t, NULL);
    free(s->buf);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* The id: line of the frame whose data mentions item_id, into out. */
static int sse_id_of(struct sse *s, const char *item_id, char *out, size_t cap)
{
    char needle[120];
    snprintf(needle, sizeof(needle), "\"id\":\"%s\"", item_id);
    pthread_mutex_lock(&s->lock);
    int ok = 0;
    char *data = s->buf ? strstr(s->buf, needle) : NULL;
    if (data) {
        char *id = NULL;
        for (char *p = s->buf; p && p < data; p = strstr(p + 1, "id: msg_"))
            if (strncmp(p, "id: msg_", 8) == 0)
                id = p + 4;
        if (id) {
            size_t n = strcspn(id, "\n");
            snprintf(out, cap, "%.*s", (int)n, id);
            ok = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static long metric(const char *name)
{
    struct it_resp r;
    it_get(&gw, "/metrics", &r);
    char needle[120];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    char *p = r.body ? strstr(r.body, needle) : NULL;
    long v = p ? atol(p + strlen(needle)) : -1;
    it_resp_free(&r);
    return v;
}

static long hook(const char *node, const char *ctype, const char *body, const char *secret,
                 const char *delivery, struct it_resp *r)
{
    char sig[120] = "", del[120] = "", url[400];
    if (secret) {
        unsigned char mac[32];
        unsigned int maclen = 0;
        HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body, strlen(body),
             mac, &maclen);
        int o = snprintf(sig, sizeof(sig), "X-Hub-Signature-256: sha256=");
        for (unsigned int i = 0; i < maclen; i++)
            o += snprintf(sig + o, sizeof(sig) - (size_t)o, "%02x", mac[i]);
    }
    if (delivery)
        snprintf(del, sizeof(del), "X-GitHub-Delivery: %s", delivery);
    const char *headers[] = {sig[0] ? sig : NULL, del[0] ? del : NULL};
    snprintf(url, sizeof(url), "%s/v1/hooks/%s", gw.base, node);
    it_http_ex("POST", url, ctype, body, strlen(body), headers, 2, r);
    return r->status;
}

int main(void)
{
    int xport = it_server_port();
    const char *extra[] = {
        "--sse-heartbeat", "1", "--hook-secret", "hooked=s3cret", "--hook-secret", "*=wild", NULL};
    if (it_gw_start(&gw, "gw7@localhost", "gw7", xport, extra, 1) != 0)
        return 1;
    struct it_xmpp *gwcheck = it_xmpp_connect("gw7@localhost/streamcheck", "gw7", xport);
    CHECK(gwcheck != NULL);
    struct it_resp r;
    char path[600], body[400];
    const char *node = it_unique("sse");
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    it_post_json(&gw, "/v1/nodes", body, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    /* An item from before any stream: never sent to one (ejabberd re-sends the last item when
     * the gateway subscribes). */
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=old", node);
    it_post_json(&gw, path, "{\"old\":1}", &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);

    struct sse *a = sse_open(node, NULL);
    CHECK(sse_wait(a, "retry: 3000", 5000));
    struct sse *b = sse_open(node, NULL), *c = sse_open(node, NULL);
    CHECK(sse_wait(b, "retry: 3000", 5000) && sse_wait(c, "retry: 3000", 5000));
    CHECK_INT(metric("pubsubgw_streams_open"), 3);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=s1", node);
    it_post_json(&gw, path, "{\"n\":1,\"t\":\"<&>\"}", &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    CHECK(sse_wait(a, "event: item.published\ndata: {", 5000));
    CHECK(sse_wait(a, "\"item\":{\"id\":\"s1\",\"payload\":{\"n\":1,\"t\":\"<&>\"}}", 1000));
    CHECK(sse_wait(b, "\"id\":\"s1\"", 2000) && sse_wait(c, "\"id\":\"s1\"", 2000));
    CHECK(!sse_has(a, "\"id\":\"old\"") && !sse_has(b, "\"id\":\"old\""));
    char s1_id[80] = "";
    CHECK(sse_id_of(a, "s1", s1_id, sizeof(s1_id)));
    CHECK(sse_wait(a, ": keep-alive", 3000));

    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=s2", node);
    it_post_json(&gw, path, "{\"n\":2}", &r);
    it_resp_free(&r);
    CHECK(sse_wait(a, "\"id\":\"s2\"", 5000));
    snprintf(path, sizeof(path), "%s/v1/nodes/%s/items/s2", gw.base, node);
    it_http("DELETE", path, NULL, NULL, 0, &r);
    it_resp_free(&r);
    CHECK(sse_wait(a, "event: item.retracted", 5000));

    /* Resume after s1: s2 and its retraction come at once, s1 does not come again. */
    struct sse *d = sse_open(node, s1_id);
    CHECK(sse_wait(d, "event: item.retracted", 3000));
    CHECK(sse_has(d, "\"id\":\"s2\""));
    CHECK(!sse_has(d, "\"id\":\"s1\""));
    struct sse *e = sse_open(node, "msg_unknown");
    CHECK(sse_wait(e, "no longer held", 3000));

    /* Clients that leave are released at the next heartbeat. */
    sse_close(b);
    sse_close(c);
    sse_close(d);
    sse_close(e);
    int released = 0;
    for (int i = 0; i < 50 && !released; i++) {
        released = metric("pubsubgw_streams_open") == 1;
        usleep(100000);
    }
    CHECK(released);
    sse_close(a);
    /* With the last reader gone and no webhook, the gateway leaves the node. */
    int unsubscribed = 0;
    for (int i = 0; i < 50 && !unsubscribed && gwcheck; i++) {
        json_t *nodes = it_xmpp_subscriptions(gwcheck, "pubsub.localhost");
        unsubscribed = nodes != NULL;
        size_t k;
        json_t *v;
        json_array_foreach(nodes, k, v) if (strcmp(json_string_value(v), node) == 0) unsubscribed =
            0;
        json_decref(nodes);
        usleep(100000);
    }
    CHECK(unsubscribed);
    CHECK_INT(metric("pubsubgw_streams_open"), 0);

    /* A stream of a node that does not exist: 404 problem, not a stream. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/events", it_unique("nosuch"));
    it_get(&gw, path, &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);

    /* Inbound webhooks. */
    const char *hooked = "hooked";
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", hooked);
    it_post_json(&gw, "/v1/nodes", body, &r);
    CHECK(r.status == 201 || r.status == 409);
    it_resp_free(&r);
    const char *push = "{\"ref\":\"refs/heads/main\",\"commits\":[{\"id\":\"abc\"}]}";
    hook(hooked, "application/json", push, "s3cret", "72d3162e-cc78-11e3-81ab-4c9367dc0958", &r);
    CHECK_INT(r.status, 201);
    CHECK_STR(json_string_value(json_object_get(r.json, "id")),
              "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    it_resp_free(&r);
    hook(hooked, "application/json", push, "s3cret", "72d3162e-cc78-11e3-81ab-4c9367dc0958", &r);
    CHECK_INT(r.status, 201); /* redelivered: same item, overwritten */
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", hooked);
    it_get(&gw, path, &r);
    CHECK_INT(json_array_size(json_object_get(r.json, "items")), 1);
    json_t *want = json_loads(push, 0, NULL);
    CHECK(json_equal(
        json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "payload"), want));
    json_decref(want);
    it_resp_free(&r);
    /* The captured request replayed under another delivery id, or none: refused, no new item. */
    hook(hooked, "application/json", push, "s3cret", "another-delivery-id", &r);
    it_check_problem(&r, 409, "delivery id");
    it_resp_free(&r);
    hook(hooked, "application/json", push, "s3cret", NULL, &r);
    it_check_problem(&r, 409, "X-Hub-Signature-256");
    it_resp_free(&r);
    it_get(&gw, path, &r);
    CHECK_INT(json_array_size(json_object_get(r.json, "items")), 1);
    it_resp_free(&r);
    hook(hooked, "application/json", push, "wrong", NULL, &r);
    it_check_problem(&r, 403, "X-Hub-Signature-256");
    it_resp_free(&r);
    hook(hooked, "application/json", push, NULL, NULL, &r);
    it_check_problem(&r, 403, "X-Hub-Signature-256");
    it_resp_free(&r);
    hook(hooked, "application/json", push, "wild", NULL, &r); /* the node's own secret wins */
    it_check_problem(&r, 403, NULL);
    it_resp_free(&r);
    hook(hooked, "text/plain", "hello", "s3cret", NULL, &r);
    it_check_problem(&r, 415, "Content-Type");
    it_resp_free(&r);
    hook(hooked, "application/json", "{broken", "s3cret", NULL, &r);
    it_check_problem(&r, 400, "body");
    it_resp_free(&r);
    hook(hooked, "application/xml", "<build xmlns='urn:ci'><status>green</status></build>",
         "s3cret", "x-1", &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items/x-1", hooked);
    it_get(&gw, path, &r);
    CHECK_STR(json_string_value(json_object_get(r.json, "xml")),
              "<build xmlns=\"urn:ci\"><status>green</status></build>");
    it_resp_free(&r);
    /* The wildcard secret covers other nodes; an unknown node is the service's 404. */
    hook(node, "application/json", "{\"w\":1}", "wild", NULL, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    hook(it_unique("nohook"), "application/json", "{}", "wild", NULL, &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);

    snprintf(path, sizeof(path), "%s/v1/nodes/%s", gw.base, hooked);
    it_http("DELETE", path, NULL, NULL, 0, &r);
    it_resp_free(&r);
    it_xmpp_close(gwcheck);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_DONE();
}
