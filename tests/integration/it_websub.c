/* The WebSub hub, after websub.rocks' hub tests: 100 subscribe without a secret, 101 with one,
 * 102 unknown parameters ignored, 103 renewal, 104 unsubscribe; each distribution checked for
 * its content type, its full content (an Atom feed read by feedparser, a parser we did not
 * write), the Link headers and the signature (checked with OpenSSL, not the gateway's code).
 * Then what the Recommendation leaves to hubs: an item published by an XMPP client reaches the
 * subscribers too, a lease ends, a wrong echo activates nothing, a topic that names no node and
 * a node that does not exist are denied to the callback, and bad requests are refused. */
#include "harness.h"
#include "receiver.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static struct it_gw gw;

/* POST /websub with a form of "k=v" pairs (values percent-encoded here); the status. */
static long hub(struct it_resp *r, const char *const *kv)
{
    char form[8192] = "";
    size_t o = 0;
    for (int i = 0; kv[i] != NULL; i += 2) {
        o += (size_t)snprintf(form + o, sizeof(form) - o, "%s%s=", o ? "&" : "", kv[i]);
        for (const unsigned char *p = (const unsigned char *)kv[i + 1]; *p; p++)
            o += (size_t)snprintf(form + o, sizeof(form) - o,
                                  (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                                          (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
                                          *p == '_'
                                      ? "%c"
                                      : "%%%02X",
                                  *p);
    }
    char url[128];
    snprintf(url, sizeof(url), "%s/websub", gw.base);
    if (it_http("POST", url, "application/x-www-form-urlencoded", form, o, r) != 0)
        return 0;
    return r->status;
}

/* The subscription of callback to topic as the API lists it (a new reference), or NULL. */
static json_t *listed(const char *node, const char *callback, const char *topic)
{
    struct it_resp r;
    char path[400];
    snprintf(path, sizeof(path), "/v1/subscriptions?node=%s", node);
    json_t *found = NULL;
    if (it_req(&gw, "GET", path, NULL, &r) == 200) {
        size_t i;
        json_t *s;
        json_array_foreach(json_object_get(r.json, "subscriptions"), i, s)
        {
            json_t *ws = json_object_get(s, "websub");
            const char *t = json_string_value(json_object_get(ws, "topic"));
            const char *cb = json_string_value(json_object_get(s, "callback"));
            if (t && cb && strcmp(t, topic) == 0 && strcmp(cb, callback) == 0) {
                CHECK(found == NULL); /* one subscription per callback and topic */
                found = json_incref(s);
            }
        }
    }
    it_resp_free(&r);
    return found;
}

static json_t *wait_listed(const char *node, const char *callback, const char *topic, int want)
{
    for (int i = 0; i < 500; i++) {
        json_t *s = listed(node, callback, topic);
        if ((s != NULL) == want)
            return s;
        json_decref(s);
        usleep(10000);
    }
    return listed(node, callback, topic);
}

static void publish(const char *node, const char *title)
{
    char path[300], body[300];
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    snprintf(body, sizeof(body), "{\"title\":\"%s\"}", title);
    struct it_resp r;
    CHECK_INT(it_req(&gw, "POST", path, body, &r), 201);
    it_resp_free(&r);
}

/* feedparser reads the distributed document: Atom 1.0, a self link, exactly these titles. */
static int feed_ok(const char *doc, const char *titles)
{
    char path[] = "/tmp/pubsubgw-websub-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fputs(doc, f);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' '%s/feed/check_feed.py' '%s' %s",
             getenv("PUBSUBGW_PYTHON") ? getenv("PUBSUBGW_PYTHON") : "python3", PUBSUBGW_TESTS_DIR,
             path, titles);
    int rc = system(cmd);
    unlink(path);
    return rc;
}

static const char *param(struct it_receiver *rc, int i, const char *name)
{
    return json_string_value(json_object_get(it_receiver_get_params(rc, i), name));
}

/* Waits for the verification GET number i and checks it against mode and topic. */
static void verified(struct it_receiver *rc, int i, const char *mode, const char *topic,
                     const char *lease)
{
    CHECK(it_receiver_wait_gets(rc, i + 1, 10000) >= i + 1);
    CHECK(param(rc, i, "hub.mode") && strcmp(param(rc, i, "hub.mode"), mode) == 0);
    CHECK(param(rc, i, "hub.topic") && strcmp(param(rc, i, "hub.topic"), topic) == 0);
    CHECK(param(rc, i, "hub.challenge") && strlen(param(rc, i, "hub.challenge")) >= 16);
    if (lease != NULL)
        CHECK(param(rc, i, "hub.lease_seconds") &&
              strcmp(param(rc, i, "hub.lease_seconds"), lease) == 0);
}

int main(void)
{
    const char *extra[] = {"--websub-lease-min", "1", "--callback-allow", "127.0.0.0/8", NULL};
    CHECK_INT(it_gw_start(&gw, "gw17@localhost", "gw17", it_server_port(), extra, 1), 0);
    const char *node = it_unique("websub");
    char body[600], topic[400], hub_url[128], cb_a[200], cb_b[200], cb_c[200];
    struct it_resp r;
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);
    snprintf(topic, sizeof(topic), "%s/v1/nodes/%s/feed", gw.base, node);
    snprintf(hub_url, sizeof(hub_url), "%s/websub", gw.base);

    /* Discovery: the topic names its hub, in the feed and in a Link header. */
    CHECK(it_http("GET", topic, NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    char want[600];
    snprintf(want, sizeof(want), "<link rel=\"hub\" href=\"%s\"", hub_url);
    CHECK(r.body && strstr(r.body, want) != NULL);
    it_resp_free(&r);

    /* 100 + 102: subscribe without a secret, with a parameter the hub does not know. */
    struct it_receiver *a = it_receiver_start(IT_OK, 0), *b = it_receiver_start(IT_OK, 0),
                       *c = it_receiver_start(IT_OK, 0);
    snprintf(cb_a, sizeof(cb_a), "%s?who=a", it_receiver_url(a));
    snprintf(cb_b, sizeof(cb_b), "%s", it_receiver_url(b));
    snprintf(cb_c, sizeof(cb_c), "%s", it_receiver_url(c));
    const char *sub_a[] = {
        "hub.mode", "subscribe",   "hub.topic", topic, "hub.callback", cb_a, "hub.lease_seconds",
        "600",      "hub.unknown", "x",         "foo", "bar",          NULL};
    CHECK_INT(hub(&r, sub_a), 202);
    if (r.status != 202)
        fprintf(stderr, "%s\n", r.body ? r.body : "");
    it_resp_free(&r);
    verified(a, 0, "subscribe", topic, "600");
    CHECK(param(a, 0, "who") && strcmp(param(a, 0, "who"), "a") == 0); /* its own query kept */
    json_t *s = wait_listed(node, cb_a, topic, 1);
    CHECK(s != NULL);
    CHECK(json_is_false(json_object_get(json_object_get(s, "websub"), "signed")));
    char expires1[64] = "";
    snprintf(expires1, sizeof(expires1), "%s",
             json_string_value(json_object_get(json_object_get(s, "websub"), "expires_at")));
    json_decref(s);

    /* 101: with a secret (sha256 by default), and one asking for sha512. */
    const char *sub_b[] = {"hub.mode", "subscribe",  "hub.topic",       topic, "hub.callback",
                           cb_b,       "hub.secret", "b secret & more", NULL};
    CHECK_INT(hub(&r, sub_b), 202);
    it_resp_free(&r);
    const char *sub_c[] = {"hub.mode",
                           "subscribe",
                           "hub.topic",
                           topic,
                           "hub.callback",
                           cb_c,
                           "hub.secret",
                           "c-secret",
                           "hub.signature_algorithm",
                           "sha512",
                           NULL};
    CHECK_INT(hub(&r, sub_c), 202);
    it_resp_free(&r);
    verified(b, 0, "subscribe", topic, "864000"); /* the default lease */
    verified(c, 0, "subscribe", topic, NULL);
    json_decref(s = wait_listed(node, cb_b, topic, 1));
    CHECK(s != NULL);
    json_decref(s = wait_listed(node, cb_c, topic, 1));
    CHECK(s != NULL);

    /* Distribution: the topic's content type, the new entry as a feed, Link and signature. */
    publish(node, "Hello WebSub");
    CHECK_INT(it_receiver_wait(a, 1, 10000), 1);
    CHECK_INT(it_receiver_wait(b, 1, 10000), 1);
    CHECK_INT(it_receiver_wait(c, 1, 10000), 1);
    const struct it_delivery *d = it_receiver_get(a, 0);
    CHECK(strncmp(d->ctype, "application/atom+xml", 20) == 0);
    CHECK(d->link != NULL && strstr(d->link, "rel=\"hub\"") && strstr(d->link, hub_url));
    snprintf(want, sizeof(want), "<%s>; rel=\"self\"", topic);
    CHECK(d->link != NULL && strstr(d->link, want) != NULL);
    CHECK(d->hub_sig == NULL);
    CHECK_INT(feed_ok(d->body, "'Hello WebSub'"), 0);
    d = it_receiver_get(b, 0);
    CHECK(d->hub_sig != NULL && strncmp(d->hub_sig, "sha256=", 7) == 0);
    CHECK_INT(it_verify_hub_signature("b secret & more", d), 1);
    CHECK_INT(it_verify_hub_signature("another secret", d), 0);
    d = it_receiver_get(c, 0);
    CHECK(d->hub_sig != NULL && strncmp(d->hub_sig, "sha512=", 7) == 0);
    CHECK_INT(it_verify_hub_signature("c-secret", d), 1);

    /* An item published by an XMPP client (not through the gateway) is distributed too. */
    struct it_xmpp *x = it_xmpp_connect("gw17@localhost/client", "gw17", it_server_port());
    CHECK(x != NULL);
    if (x != NULL) {
        CHECK_INT(
            it_xmpp_publish(x, "pubsub.localhost", node, "from-xmpp", "{\"title\":\"Over XMPP\"}"),
            0);
        it_xmpp_close(x);
    }
    CHECK_INT(it_receiver_wait(b, 2, 10000), 2);
    CHECK(strstr(it_receiver_get(b, 1)->body, "Over XMPP") != NULL);
    CHECK_INT(it_verify_hub_signature("b secret & more", it_receiver_get(b, 1)), 1);
    CHECK_INT(it_receiver_wait(a, 2, 10000), 2);

    /* 103: renewal before expiry: verified again, the same one subscription, a later lease. */
    const char *renew_a[] = {"hub.mode", "subscribe",         "hub.topic", topic, "hub.callback",
                             cb_a,       "hub.lease_seconds", "1200",      NULL};
    CHECK_INT(hub(&r, renew_a), 202);
    it_resp_free(&r);
    verified(a, 1, "subscribe", topic, "1200");
    for (int i = 0; i < 300; i++) {
        s = listed(node, cb_a, topic);
        const char *e =
            json_string_value(json_object_get(json_object_get(s, "websub"), "expires_at"));
        int later = e && strcmp(e, expires1) > 0;
        json_decref(s);
        if (later)
            break;
        usleep(10000);
    }
    s = listed(node, cb_a, topic);
    CHECK(s != NULL &&
          strcmp(json_string_value(json_object_get(json_object_get(s, "websub"), "expires_at")),
                 expires1) > 0);
    json_decref(s);
    publish(node, "After renewal");
    CHECK_INT(it_receiver_wait(a, 3, 10000), 3);
    CHECK_INT(it_receiver_wait(b, 3, 10000), 3);

    /* 104: unsubscribe, verified the same way: nothing more reaches it. */
    const char *unsub_a[] = {"hub.mode",     "unsubscribe", "hub.topic", topic,
                             "hub.callback", cb_a,          NULL};
    CHECK_INT(hub(&r, unsub_a), 202);
    it_resp_free(&r);
    verified(a, 2, "unsubscribe", topic, NULL);
    s = wait_listed(node, cb_a, topic, 0);
    CHECK(s == NULL);
    json_decref(s);
    publish(node, "After unsubscribe");
    CHECK_INT(it_receiver_wait(b, 4, 10000), 4);
    usleep(300000);
    CHECK_INT(it_receiver_count(a), 3);

    /* A wrong echo activates nothing. */
    struct it_receiver *e = it_receiver_start(IT_OK, 0);
    it_receiver_bad_challenge(e, 1);
    const char *sub_e[] = {"hub.mode",     "subscribe",        "hub.topic", topic,
                           "hub.callback", it_receiver_url(e), NULL};
    CHECK_INT(hub(&r, sub_e), 202);
    it_resp_free(&r);
    verified(e, 0, "subscribe", topic, NULL);
    usleep(500000);
    s = listed(node, it_receiver_url(e), topic);
    CHECK(s == NULL);
    json_decref(s);

    /* A lease ends: the subscription goes, and nothing more is sent. */
    it_receiver_bad_challenge(e, 0);
    const char *sub_short[] = {
        "hub.mode",         "subscribe",         "hub.topic", topic, "hub.callback",
        it_receiver_url(e), "hub.lease_seconds", "2",         NULL};
    CHECK_INT(hub(&r, sub_short), 202);
    it_resp_free(&r);
    verified(e, 1, "subscribe", topic, "2");
    json_decref(s = wait_listed(node, it_receiver_url(e), topic, 1));
    CHECK(s != NULL);
    s = wait_listed(node, it_receiver_url(e), topic, 0);
    CHECK(s == NULL);
    json_decref(s);
    publish(node, "After the lease");
    CHECK_INT(it_receiver_wait(b, 5, 10000), 5);
    usleep(300000);
    CHECK_INT(it_receiver_count(e), 0);

    /* Denied: a topic that names no node of this hub, and a node that does not exist. */
    const char *sub_bad[] = {
        "hub.mode",     "subscribe",        "hub.topic", "https://example.org/feed",
        "hub.callback", it_receiver_url(e), NULL};
    CHECK_INT(hub(&r, sub_bad), 202);
    it_resp_free(&r);
    CHECK(it_receiver_wait_gets(e, 3, 10000) >= 3);
    CHECK(param(e, 2, "hub.mode") && strcmp(param(e, 2, "hub.mode"), "denied") == 0);
    CHECK(param(e, 2, "hub.topic") &&
          strcmp(param(e, 2, "hub.topic"), "https://example.org/feed") == 0);
    CHECK(param(e, 2, "hub.reason") && strstr(param(e, 2, "hub.reason"), "hub.topic") != NULL);
    char missing[400];
    snprintf(missing, sizeof(missing), "%s/v1/nodes/%s/feed", gw.base, it_unique("nosuchnode"));
    const char *sub_missing[] = {"hub.mode",     "subscribe",        "hub.topic", missing,
                                 "hub.callback", it_receiver_url(e), NULL};
    CHECK_INT(hub(&r, sub_missing), 202);
    it_resp_free(&r);
    CHECK(it_receiver_wait_gets(e, 5, 10000) >= 5); /* the verification, then the denial */
    CHECK(param(e, 3, "hub.mode") && strcmp(param(e, 3, "hub.mode"), "subscribe") == 0);
    CHECK(param(e, 4, "hub.mode") && strcmp(param(e, 4, "hub.mode"), "denied") == 0);
    CHECK(param(e, 4, "hub.reason") && strstr(param(e, 4, "hub.reason"), "node") != NULL);

    /* Bad requests: refused at once, naming the parameter. */
    const char *no_cb[] = {"hub.mode", "subscribe", "hub.topic", topic, NULL};
    hub(&r, no_cb);
    it_check_problem(&r, 400, "hub.callback");
    it_resp_free(&r);
    const char *bad_mode[] = {"hub.mode", "watch", "hub.topic", topic, "hub.callback", cb_b, NULL};
    hub(&r, bad_mode);
    it_check_problem(&r, 400, "hub.mode");
    it_resp_free(&r);
    char long_secret[201];
    memset(long_secret, 's', 200);
    long_secret[200] = '\0';
    const char *bad_secret[] = {"hub.mode", "subscribe",  "hub.topic", topic, "hub.callback",
                                cb_b,       "hub.secret", long_secret, NULL};
    hub(&r, bad_secret);
    it_check_problem(&r, 400, "hub.secret");
    it_resp_free(&r);
    const char *bad_lease[] = {"hub.mode", "subscribe",         "hub.topic", topic, "hub.callback",
                               cb_b,       "hub.lease_seconds", "soon",      NULL};
    hub(&r, bad_lease);
    it_check_problem(&r, 400, "hub.lease_seconds");
    it_resp_free(&r);
    const char *bad_cb[] = {"hub.mode",     "subscribe",           "hub.topic", topic,
                            "hub.callback", "ftp://example.org/x", NULL};
    hub(&r, bad_cb);
    it_check_problem(&r, 400, "hub.callback");
    it_resp_free(&r);
    /* The callback policy: cloud metadata is out of reach, and nothing is sent there. */
    const char *ssrf[] = {"hub.mode", "subscribe",    "hub.topic",
                          topic,      "hub.callback", "http://169.254.169.254/latest/meta-data",
                          NULL};
    hub(&r, ssrf);
    it_check_problem(&r, 400, "hub.callback");
    it_resp_free(&r);
    char url[128];
    snprintf(url, sizeof(url), "%s/websub", gw.base);
    CHECK(it_http("POST", url, "application/json", "{}", 2, &r) == 0);
    it_check_problem(&r, 415, "body");
    it_resp_free(&r);

    /* Secrets never come back. */
    CHECK_INT(it_req(&gw, "GET", "/v1/subscriptions", NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "b secret") == NULL && strstr(r.body, "c-secret") == NULL);
    it_resp_free(&r);

    it_receiver_stop(a);
    it_receiver_stop(b);
    it_receiver_stop(c);
    it_receiver_stop(e);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    char grep[400];
    snprintf(grep, sizeof(grep), "grep -q -e 'b secret' -e 'c-secret' '%s'", gw.log);
    CHECK(system(grep) != 0); /* nor reach the log */
    CHECK_DONE();
}
