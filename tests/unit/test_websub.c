/* WebSub's pure parts: which node a topic names (feed URLs with any prefix and service, XEP-0060
 * node URIs, percent-encoding) and what is refused; X-Hub-Signature against the HMAC test
 * vectors of RFC 4231 and RFC 2202. */
#include "../check.h"
#include "gateway/websub.h"

#include <stdlib.h>

static void topic_is(const char *topic, const char *service, const char *node)
{
    char *s = NULL, *n = NULL, err[300];
    int rc = gw_websub_topic(topic, "pubsub.example.org", &s, &n, err, sizeof(err));
    CHECK_INT(rc, 0);
    if (rc == 0) {
        CHECK_STR(s, service);
        CHECK_STR(n, node);
    } else {
        fprintf(stderr, "  %s: %s\n", topic, err);
    }
    free(s);
    free(n);
}

static void topic_refused(const char *topic)
{
    char *s = NULL, *n = NULL, err[300] = "";
    CHECK_INT(gw_websub_topic(topic, "pubsub.example.org", &s, &n, err, sizeof(err)), -1);
    CHECK(s == NULL && n == NULL);
    CHECK(strncmp(err, "hub.topic: ", 11) == 0);
}

int main(void)
{
    topic_is("https://gw.example.org/v1/nodes/news/feed", "pubsub.example.org", "news");
    topic_is("http://127.0.0.1:8080/v1/nodes/a%2Fb%20c/feed", "pubsub.example.org", "a/b c");
    topic_is("https://example.org/pubsub/v1/nodes/news/feed?service=pubsub.other.org&max=5",
             "pubsub.other.org", "news");
    topic_is("https://example.org/v1/nodes/news/feed?max=5", "pubsub.example.org", "news");
    topic_is("xmpp:pubsub.shakespeare.lit?;node=princely_musings", "pubsub.shakespeare.lit",
             "princely_musings");
    topic_is("xmpp:pubsub.example.org?;node=a%2Fb;item=x", "pubsub.example.org", "a/b");
    topic_refused("https://example.org/feed");
    topic_refused("https://example.org/v1/nodes//feed");
    topic_refused("https://example.org/v1/nodes/news/items");
    topic_refused("https://example.org/v1/nodes/news/feed/more");
    topic_refused("https://example.org/v1/nodes/bad%0Aname/feed");
    topic_refused("https://example.org/v1/nodes/bad%zzname/feed");
    topic_refused("https://example.org/v1/nodes/news/feed?service=");
    topic_refused("xmpp:pubsub.example.org");
    topic_refused("xmpp:?;node=news");
    topic_refused("ftp://example.org/v1/nodes/news/feed");
    topic_refused("news");

    char sig[200];
    const char *data = "what do ya want for nothing?";
    CHECK_INT(gw_websub_sign("sha256", "Jefe", data, strlen(data), sig, sizeof(sig)), 0);
    CHECK_STR(sig, "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK_INT(gw_websub_sign("sha1", "Jefe", data, strlen(data), sig, sizeof(sig)), 0);
    CHECK_STR(sig, "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    CHECK_INT(gw_websub_sign("sha512", "Jefe", data, strlen(data), sig, sizeof(sig)), 0);
    CHECK(strncmp(sig, "sha512=164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554",
                  71) == 0);
    CHECK_INT(gw_websub_sign("md5", "Jefe", data, strlen(data), sig, sizeof(sig)), -1);
    CHECK_INT(gw_websub_sign("sha512", "Jefe", data, strlen(data), sig, 20), -1);
    CHECK(gw_websub_alg_known("sha384") && !gw_websub_alg_known("SHA256") &&
          !gw_websub_alg_known(NULL));
    CHECK_DONE();
}
