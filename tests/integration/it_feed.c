/* A node's items as an Atom feed: read by feedparser (a parser we did not write), newest first,
 * JSON payloads as entries and Atom entries as they are, an ETag that a conditional request
 * gets 304 for until the node changes, and errors as for the items route. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>

static int feed_matches(struct it_gw *gw, const char *node, const char *titles)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' '%s/feed/check_feed.py' '%s/v1/nodes/%s/feed' %s",
             getenv("PUBSUBGW_PYTHON") ? getenv("PUBSUBGW_PYTHON") : "python3", PUBSUBGW_TESTS_DIR,
             gw->base, node, titles);
    return system(cmd);
}

int main(void)
{
    struct it_gw gw;
    /* gw13 is another test's account too: a resource of its own (this test subscribes to
     * nothing, so sharing the bare JID is harmless). */
    const char *extra[] = {"--resource", "feedtest", NULL};
    CHECK_INT(it_gw_start(&gw, "gw13@localhost", "gw13", it_server_port(), extra, 1), 0);
    const char *node = it_unique("feed");
    char body[600], path[300];
    struct it_resp r;
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    CHECK_INT(it_req(&gw, "POST", path,
                     "{\"title\":\"First <post> & more\",\"link\":\"https://example.org/1\"}", &r),
              201);
    it_resp_free(&r);
    /* An Atom entry as the payload: served as it is. */
    const char *entry = "<entry xmlns=\"http://www.w3.org/2005/Atom\"><id>tag:example.org,2026:2"
                        "</id><title>Second, in Atom</title><updated>2026-11-29T10:00:00Z"
                        "</updated><content>hi</content></entry>";
    char url[400];
    snprintf(url, sizeof(url), "%s%s", gw.base, path);
    CHECK(it_http("POST", url, "application/xml", entry, strlen(entry), &r) == 0);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);

    CHECK_INT(feed_matches(&gw, node, "'Second, in Atom' 'First <post> & more'"), 0);

    snprintf(url, sizeof(url), "%s/v1/nodes/%s/feed", gw.base, node);
    CHECK(it_http("GET", url, NULL, NULL, 0, &r) == 0);
    CHECK_INT(r.status, 200);
    CHECK(strncmp(r.content_type, "application/atom+xml", 20) == 0);
    CHECK(r.body && strstr(r.body, "<link rel=\"self\" href=\"http://127.0.0.1:") != NULL);
    CHECK(r.body && strstr(r.body, "First &lt;post&gt; &amp; more") != NULL);
    it_resp_free(&r);
    /* The ETag comes back in a conditional request: 304, no body, until the node changes. */
    char etag[64] = "";
    {
        char hdr[600];
        snprintf(hdr, sizeof(hdr), "curl -sI '%s' | tr -d '\\r' | sed -n 's/^[Ee][Tt]ag: //p'",
                 url);
        FILE *p = popen(hdr, "r");
        CHECK(p != NULL && fgets(etag, sizeof(etag), p) != NULL);
        if (p)
            pclose(p);
        etag[strcspn(etag, "\n")] = '\0';
    }
    CHECK(etag[0] == '"');
    char inm[100];
    snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
    const char *headers[] = {inm};
    CHECK(it_http_ex("GET", url, NULL, NULL, 0, headers, 1, &r) == 0);
    CHECK_INT(r.status, 304);
    CHECK(r.body == NULL || r.body[0] == '\0');
    it_resp_free(&r);
    CHECK_INT(it_req(&gw, "POST", path, "{\"title\":\"Third\"}", &r), 201);
    it_resp_free(&r);
    CHECK(it_http_ex("GET", url, NULL, NULL, 0, headers, 1, &r) == 0);
    CHECK_INT(r.status, 200);
    it_resp_free(&r);
    CHECK_INT(feed_matches(&gw, node, "'Third' 'Second, in Atom' 'First <post> & more'"), 0);

    /* As many entries as asked; errors as for the items route. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/feed?max=1", node);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200);
    CHECK(r.body && strstr(r.body, "Third") != NULL && strstr(r.body, "Second") == NULL);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/feed?max=0", node);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 400);
    it_check_problem(&r, 400, "max");
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/feed", it_unique("nosuch"));
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 404);
    it_resp_free(&r);

    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_DONE();
}
