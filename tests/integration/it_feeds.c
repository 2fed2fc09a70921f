/* Feeds in: a local server (libmicrohttpd, in this test) serves Atom, RSS and JSON Feed documents
 * that change while the gateway polls them. Checked: the entries become items under their stable
 * ids, an XMPP client subscribed to the node sees them (and an updated entry again), conditional
 * requests get 304 and publish nothing, 429 + Retry-After is honoured, the publisher ping
 * (hub.mode=publish) fetches at once, a document that is not a feed is named in the state, the
 * state survives a restart (the first fetch after it is conditional), delete stops polling, and
 * bad requests are refused. */
#include "harness.h"
#include "receiver.h"

#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

struct doc {
    const char *path;
    char body[8192];
    char etag[32];     /* "" : none */
    char modified[64]; /* "" : none */
    const char *ctype;
    int requests, conditional, not_modified, busy_once;
    long long last_at, prev_at;
};

static struct doc docs[] = {
    {"/atom.xml", "", "", "", "application/atom+xml", 0, 0, 0, 0, 0, 0},
    {"/rss.xml", "", "", "", "application/rss+xml", 0, 0, 0, 0, 0, 0},
    {"/feed.json", "", "", "", "application/feed+json", 0, 0, 0, 0, 0, 0},
    {"/page.html", "<html><body>no feed here</body></html>", "", "", "text/html", 0, 0, 0, 0, 0, 0},
};
#define NDOCS (int)(sizeof(docs) / sizeof(docs[0]))
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct it_gw gw;
static char srv[64];

static enum MHD_Result serve(void *cls, struct MHD_Connection *c, const char *url,
                             const char *method, const char *version, const char *data,
                             size_t *size, void **con_cls)
{
    (void)cls, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
    struct doc *d = NULL;
    for (int i = 0; i < NDOCS; i++)
        if (strcmp(url, docs[i].path) == 0)
            d = &docs[i];
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    const char *ims = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Modified-Since");
    pthread_mutex_lock(&lock);
    unsigned status = 200;
    char body[8192] = "", etag[32] = "", modified[64] = "", ctype[64] = "text/plain";
    if (d == NULL) {
        status = 404;
    } else {
        d->requests++;
        d->prev_at = d->last_at;
        d->last_at = it_now_ms();
        if (inm || ims)
            d->conditional++;
        if (d->busy_once) {
            d->busy_once = 0;
            status = 429;
        } else if ((inm && d->etag[0] && strcmp(inm, d->etag) == 0) ||
                   (!inm && ims && d->modified[0] && strcmp(ims, d->modified) == 0)) {
            status = 304;
            d->not_modified++;
        } else {
            snprintf(body, sizeof(body), "%s", d->body);
        }
        snprintf(etag, sizeof(etag), "%s", d->etag);
        snprintf(modified, sizeof(modified), "%s", d->modified);
        snprintf(ctype, sizeof(ctype), "%s", d->ctype);
    }
    pthread_mutex_unlock(&lock);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", ctype);
    if (etag[0])
        MHD_add_response_header(r, "ETag", etag);
    if (modified[0])
        MHD_add_response_header(r, "Last-Modified", modified);
    if (status == 429)
        MHD_add_response_header(r, "Retry-After", "3");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static void set_doc(int i, const char *body, const char *etag, const char *modified)
{
    pthread_mutex_lock(&lock);
    snprintf(docs[i].body, sizeof(docs[i].body), "%s", body);
    snprintf(docs[i].etag, sizeof(docs[i].etag), "%s", etag);
    snprintf(docs[i].modified, sizeof(docs[i].modified), "%s", modified);
    pthread_mutex_unlock(&lock);
}

static int doc_count(int i, int which)
{
    pthread_mutex_lock(&lock);
    int v = which == 0 ? docs[i].requests : which == 1 ? docs[i].conditional : docs[i].not_modified;
    pthread_mutex_unlock(&lock);
    return v;
}

static int wait_count(int i, int which, int n, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    while (doc_count(i, which) < n && it_now_ms() < end)
        usleep(20000);
    return doc_count(i, which);
}

/* The node's items as the API lists them (a new reference). */
static json_t *items(const char *node)
{
    char path[300];
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    struct it_resp r;
    json_t *out = NULL;
    if (it_req(&gw, "GET", path, NULL, &r) == 200)
        out = json_incref(json_object_get(r.json, "items"));
    it_resp_free(&r);
    return out;
}

static json_t *item_with(const char *node, const char *id)
{
    json_t *list = items(node), *found = NULL;
    size_t i;
    json_t *it;
    json_array_foreach(list, i, it) if (strcmp(json_string_value(json_object_get(it, "id")), id) ==
                                        0) found = json_incref(it);
    json_decref(list);
    return found;
}

static size_t wait_items(const char *node, size_t n)
{
    for (int i = 0; i < 500; i++) {
        json_t *l = items(node);
        size_t k = json_array_size(l);
        json_decref(l);
        if (k >= n)
            return k;
        usleep(20000);
    }
    json_t *l = items(node);
    size_t k = json_array_size(l);
    json_decref(l);
    return k;
}

static void make_node(const char *node)
{
    char body[300];
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    struct it_resp r;
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);
}

/* POST /v1/feeds; the feed's id into id. */
static long add_feed(const char *path, const char *node, int interval, char *id, size_t cap)
{
    char body[600];
    snprintf(body, sizeof(body), "{\"url\":\"%s%s\",\"node\":\"%s\",\"interval\":%d}", srv, path,
             node, interval);
    struct it_resp r;
    long st = it_req(&gw, "POST", "/v1/feeds", body, &r);
    if (id != NULL)
        snprintf(id, cap, "%s", json_string_value(json_object_get(r.json, "id")) ?: "");
    it_resp_free(&r);
    return st;
}

static json_t *feed_state(const char *id)
{
    char path[200];
    snprintf(path, sizeof(path), "/v1/feeds/%s", id);
    struct it_resp r;
    json_t *st = NULL;
    if (it_req(&gw, "GET", path, NULL, &r) == 200)
        st = json_incref(json_object_get(r.json, "state"));
    it_resp_free(&r);
    return st;
}

static const char *ATOM1 =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">"
    "<title>Blog</title><id>urn:blog</id><updated>2026-11-29T10:00:00Z</updated>"
    "<entry><id>tag:blog,2026:2</id><title>Second post</title>"
    "<updated>2026-11-29T10:00:00Z</updated></entry>"
    "<entry><id>tag:blog,2026:1</id><title>First post</title>"
    "<updated>2026-11-28T10:00:00Z</updated></entry></feed>";
static const char *ATOM2 =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">"
    "<title>Blog</title><id>urn:blog</id><updated>2026-11-29T12:00:00Z</updated>"
    "<entry><id>tag:blog,2026:3</id><title>Third post</title>"
    "<updated>2026-11-29T12:00:00Z</updated></entry>"
    "<entry><id>tag:blog,2026:2</id><title>Second post</title>"
    "<updated>2026-11-29T10:00:00Z</updated></entry>"
    "<entry><id>tag:blog,2026:1</id><title>First post, corrected</title>"
    "<updated>2026-11-29T11:00:00Z</updated></entry></feed>";
static const char *RSS1 = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>"
                          "<item><title>Rss one</title><link>https://example.org/r/1</link>"
                          "<guid>r-1</guid><description>first</description></item></channel></rss>";
static const char *JSON1 =
    "{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"J\",\"items\":["
    "{\"id\":\"j-2\",\"title\":\"Json two\",\"content_text\":\"2\"},"
    "{\"id\":\"j-1\",\"title\":\"Json one\",\"content_text\":\"1\"}]}";

int main(void)
{
    set_doc(0, ATOM1, "\"v1\"", "");
    set_doc(1, RSS1, "", "Sun, 29 Nov 2026 10:00:00 GMT");
    set_doc(2, JSON1, "\"j1\"", "");
    struct MHD_Daemon *d = NULL;
    int port = 0;
    for (int tries = 0; tries < 20 && d == NULL; tries++) {
        port = it_free_port();
        d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                             (uint16_t)port, NULL, NULL, serve, NULL, MHD_OPTION_END);
    }
    CHECK(d != NULL);
    snprintf(srv, sizeof(srv), "http://127.0.0.1:%d", port);

    const char *extra[] = {
        "--feed-interval-min", "1", "--callback-allow", "127.0.0.0/8", "--resource", "feeds", NULL};
    CHECK_INT(it_gw_start(&gw, "gw18@localhost", "gw18", it_server_port(), extra, 1), 0);
    const char *n_atom = it_unique("fatom"), *n_rss = it_unique("frss"),
               *n_json = it_unique("fjson"), *n_html = it_unique("fhtml");
    make_node(n_atom);
    make_node(n_rss);
    make_node(n_json);
    make_node(n_html);

    /* An XMPP client follows the Atom feed's node. */
    struct it_xmpp *x = it_xmpp_connect("alice@localhost/feeds", "alice", it_server_port());
    CHECK(x != NULL);
    CHECK_INT(it_xmpp_subscribe(x, "pubsub.localhost", n_atom), 0);

    /* Atom: both entries become items under their ids, as Atom entries; the client sees them. */
    char atom_id[80], rss_id[80], json_id[80], html_id[80];
    CHECK_INT(add_feed("/atom.xml", n_atom, 1, atom_id, sizeof(atom_id)), 201);
    CHECK(strncmp(atom_id, "feed_", 5) == 0);
    CHECK_INT((int)wait_items(n_atom, 2), 2);
    json_t *it = item_with(n_atom, "tag:blog,2026:1");
    CHECK(it != NULL && strstr(json_string_value(json_object_get(it, "xml")) ?: "",
                               "<title>First post</title>") != NULL);
    json_decref(it);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        xmpp_stanza_t *ev = it_xmpp_next_event(x, n_atom, 5000);
        seen += ev != NULL;
        if (ev)
            xmpp_stanza_release(ev);
    }
    CHECK_INT(seen, 2);

    /* Unchanged: conditional requests, 304, nothing published again. */
    CHECK(wait_count(0, 2, 2, 8000) >= 2);
    CHECK(doc_count(0, 1) >= 2);
    xmpp_stanza_t *none = it_xmpp_next_event(x, n_atom, 300);
    CHECK(none == NULL);
    if (none)
        xmpp_stanza_release(none);

    /* Changed: the new entry and the corrected one are published; the same one is not. */
    set_doc(0, ATOM2, "\"v2\"", "");
    seen = 0;
    int third = 0, corrected = 0;
    for (int i = 0; i < 3; i++) {
        xmpp_stanza_t *ev = it_xmpp_next_event(x, n_atom, 6000);
        if (ev == NULL)
            break;
        char *text = NULL;
        size_t len = 0;
        xmpp_stanza_to_text(ev, &text, &len);
        seen++;
        third += text && strstr(text, "Third post") != NULL;
        corrected += text && strstr(text, "First post, corrected") != NULL;
        xmpp_free(it_xmpp_ctx(x), text);
        xmpp_stanza_release(ev);
    }
    CHECK_INT(seen, 2);
    CHECK_INT(third, 1);
    CHECK_INT(corrected, 1);
    CHECK_INT((int)wait_items(n_atom, 3), 3);

    /* RSS with Last-Modified only, and JSON Feed. */
    CHECK_INT(add_feed("/rss.xml", n_rss, 1, rss_id, sizeof(rss_id)), 201);
    CHECK_INT(add_feed("/feed.json", n_json, 1, json_id, sizeof(json_id)), 201);
    CHECK_INT((int)wait_items(n_rss, 1), 1);
    CHECK_INT((int)wait_items(n_json, 2), 2);
    it = item_with(n_rss, "r-1");
    json_t *payload = json_object_get(it, "payload");
    CHECK(payload &&
          strcmp(json_string_value(json_object_get(payload, "title")) ?: "", "Rss one") == 0);
    CHECK(payload && strcmp(json_string_value(json_object_get(payload, "link")) ?: "",
                            "https://example.org/r/1") == 0);
    json_decref(it);
    it = item_with(n_json, "j-2");
    CHECK(it &&
          strcmp(json_string_value(json_object_get(json_object_get(it, "payload"), "title")) ?: "",
                 "Json two") == 0);
    json_decref(it);
    CHECK(wait_count(1, 2, 1, 8000) >= 1); /* If-Modified-Since answered 304 */

    /* 429 with Retry-After: 3: the next fetch waits for it. */
    pthread_mutex_lock(&lock);
    docs[2].busy_once = 1;
    int before = docs[2].requests;
    pthread_mutex_unlock(&lock);
    wait_count(2, 0, before + 2, 10000);
    pthread_mutex_lock(&lock);
    long long gap = docs[2].last_at - docs[2].prev_at;
    pthread_mutex_unlock(&lock);
    fprintf(stderr, "  after 429: next fetch %lld ms later\n", gap);
    CHECK(gap >= 2900);

    /* Not a feed: named in the state, nothing published. */
    CHECK_INT(add_feed("/page.html", n_html, 1, html_id, sizeof(html_id)), 201);
    wait_count(3, 0, 1, 5000);
    json_t *st = NULL;
    for (int i = 0; i < 100; i++) {
        json_decref(st);
        st = feed_state(html_id);
        if (json_object_get(st, "last_error") != NULL)
            break;
        usleep(20000);
    }
    CHECK(strstr(json_string_value(json_object_get(st, "last_error")) ?: "", "not a feed") != NULL);
    json_decref(st);
    CHECK_INT((int)wait_items(n_html, 0), 0);

    /* The publisher's ping fetches at once, whatever the interval. */
    struct it_resp r;
    char path[200], url[200];
    snprintf(path, sizeof(path), "/v1/feeds/%s", rss_id);
    CHECK_INT(it_req(&gw, "DELETE", path, NULL, &r), 204);
    it_resp_free(&r);
    CHECK_INT(add_feed("/rss.xml", n_rss, 3600, rss_id, sizeof(rss_id)), 201);
    int rss_before = wait_count(1, 0, doc_count(1, 0) + 1, 5000);
    usleep(300000);
    CHECK_INT(doc_count(1, 0), rss_before); /* an hour's interval: no more fetches */
    snprintf(url, sizeof(url), "%s/websub", gw.base);
    char form[300];
    snprintf(form, sizeof(form), "hub.mode=publish&hub.url=%s/rss.xml", srv);
    CHECK(it_http("POST", url, "application/x-www-form-urlencoded", form, strlen(form), &r) == 0);
    CHECK_INT(r.status, 202);
    it_resp_free(&r);
    CHECK(wait_count(1, 0, rss_before + 1, 3000) == rss_before + 1);
    snprintf(form, sizeof(form), "hub.mode=publish&hub.url=%s/unknown.xml", srv);
    CHECK(it_http("POST", url, "application/x-www-form-urlencoded", form, strlen(form), &r) == 0);
    it_check_problem(&r, 404, "hub.url");
    it_resp_free(&r);

    /* The feeds are WebSub topics too: a subscriber to the RSS feed's URL gets its new items as
     * RSS, one to the JSON Feed's as JSON Feed. */
    struct it_receiver *rw = it_receiver_start(IT_OK, 0), *jw = it_receiver_start(IT_OK, 0);
    char form2[600];
    snprintf(form2, sizeof(form2), "hub.mode=subscribe&hub.topic=%s/rss.xml&hub.callback=%s", srv,
             it_receiver_url(rw));
    CHECK(it_http("POST", url, "application/x-www-form-urlencoded", form2, strlen(form2), &r) == 0);
    CHECK_INT(r.status, 202);
    it_resp_free(&r);
    snprintf(form2, sizeof(form2), "hub.mode=subscribe&hub.topic=%s/feed.json&hub.callback=%s", srv,
             it_receiver_url(jw));
    CHECK(it_http("POST", url, "application/x-www-form-urlencoded", form2, strlen(form2), &r) == 0);
    CHECK_INT(r.status, 202);
    it_resp_free(&r);
    CHECK(it_receiver_wait_gets(rw, 1, 5000) == 1 && it_receiver_wait_gets(jw, 1, 5000) == 1);
    for (int i = 0; i < 100; i++) { /* verified and stored */
        CHECK_INT(it_req(&gw, "GET", "/v1/subscriptions", NULL, &r), 200);
        int both = r.body && strstr(r.body, "/rss.xml") && strstr(r.body, "/feed.json");
        it_resp_free(&r);
        if (both)
            break;
        usleep(20000);
    }
    set_doc(1,
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>News</title>"
            "<item><title>Rss two</title><link>https://example.org/r/2</link><guid>r-2</guid>"
            "</item><item><title>Rss one</title><link>https://example.org/r/1</link>"
            "<guid>r-1</guid><description>first</description></item></channel></rss>",
            "", "Sun, 29 Nov 2026 11:00:00 GMT");
    snprintf(form, sizeof(form), "hub.mode=publish&hub.url=%s/rss.xml", srv);
    CHECK(it_http("POST", url, "application/x-www-form-urlencoded", form, strlen(form), &r) == 0);
    CHECK_INT(r.status, 202);
    it_resp_free(&r);
    CHECK_INT(it_receiver_wait(rw, 1, 8000), 1);
    const struct it_delivery *dl = it_receiver_get(rw, 0);
    CHECK(strncmp(dl->ctype, "application/rss+xml", 19) == 0);
    char doc_path[] = "/tmp/pubsubgw-rss-XXXXXX";
    int fd = mkstemp(doc_path);
    if (fd >= 0) {
        CHECK(write(fd, dl->body, strlen(dl->body)) == (ssize_t)strlen(dl->body));
        close(fd);
        char cmd[800];
        snprintf(cmd, sizeof(cmd), "'%s' '%s/feed/check_feed.py' --version=rss20 '%s' 'Rss two'",
                 getenv("PUBSUBGW_PYTHON") ? getenv("PUBSUBGW_PYTHON") : "python3",
                 PUBSUBGW_TESTS_DIR, doc_path);
        CHECK_INT(system(cmd), 0);
        unlink(doc_path);
    }
    set_doc(2,
            "{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"J\",\"items\":["
            "{\"id\":\"j-3\",\"title\":\"Json three\",\"content_text\":\"3\"},"
            "{\"id\":\"j-2\",\"title\":\"Json two\",\"content_text\":\"2\"},"
            "{\"id\":\"j-1\",\"title\":\"Json one\",\"content_text\":\"1\"}]}",
            "\"j2\"", "");
    CHECK_INT(it_receiver_wait(jw, 1, 8000), 1);
    dl = it_receiver_get(jw, 0);
    CHECK(strncmp(dl->ctype, "application/feed+json", 21) == 0);
    json_t *items0 = json_array_get(json_object_get(dl->json, "items"), 0);
    CHECK(json_array_size(json_object_get(dl->json, "items")) == 1);
    CHECK_STR(json_string_value(json_object_get(items0, "title")) ?: "", "Json three");
    CHECK(strncmp(json_string_value(json_object_get(dl->json, "version")) ?: "",
                  "https://jsonfeed.org/version/1", 30) == 0);
    it_receiver_stop(rw);
    it_receiver_stop(jw);

    /* Listed, with its state; counters in the metrics. */
    CHECK_INT(it_req(&gw, "GET", "/v1/feeds", NULL, &r), 200);
    CHECK_INT((int)json_array_size(json_object_get(r.json, "feeds")), 4);
    it_resp_free(&r);
    st = feed_state(atom_id);
    CHECK(json_integer_value(json_object_get(st, "not_modified")) >= 2);
    CHECK(json_integer_value(json_object_get(st, "published")) == 4);
    CHECK(json_integer_value(json_object_get(st, "entries")) == 3);
    json_decref(st);
    CHECK_INT(it_req(&gw, "GET", "/metrics", NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "pubsubgw_feed_items_total ") != NULL);
    it_resp_free(&r);

    /* A restart keeps the feeds and their validators: the first fetch is conditional. */
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    int cond = doc_count(0, 2);
    CHECK_INT(it_gw_restart(&gw, "gw18@localhost", "gw18", it_server_port(), extra, 1), 0);
    CHECK(wait_count(0, 2, cond + 1, 8000) >= cond + 1);
    CHECK_INT((int)wait_items(n_atom, 3), 3);
    none = it_xmpp_next_event(x, n_atom, 500);
    CHECK(none == NULL); /* nothing published again */
    if (none)
        xmpp_stanza_release(none);

    /* Deleted: no more fetches. */
    snprintf(path, sizeof(path), "/v1/feeds/%s", atom_id);
    CHECK_INT(it_req(&gw, "DELETE", path, NULL, &r), 204);
    it_resp_free(&r);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 404);
    it_resp_free(&r);
    usleep(300000);
    int after = doc_count(0, 0);
    usleep(2500000);
    CHECK_INT(doc_count(0, 0), after);

    /* Bad requests name the field. */
    const char *bad[][2] = {
        {"{\"node\":\"x\"}", "url"},
        {"{\"url\":\"ftp://example.org/f\",\"node\":\"x\"}", "url"},
        {"{\"url\":\"http://example.org/f\"}", "node"},
        {"{\"url\":\"http://example.org/f\",\"node\":\"x\",\"interval\":0}", "interval"},
        {"{\"url\":\"http://example.org/f\",\"node\":\"x\",\"colour\":1}", "colour"},
        {"{\"url\":\"http://169.254.169.254/f\",\"node\":\"x\"}", "url"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        it_req(&gw, "POST", "/v1/feeds", bad[i][0], &r);
        it_check_problem(&r, 400, bad[i][1]);
        it_resp_free(&r);
    }
    it_xmpp_close(x);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    MHD_stop_daemon(d);
    CHECK_DONE();
}
