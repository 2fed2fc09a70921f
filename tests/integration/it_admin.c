/* Node administration through REST alone, against the real Prosody: configuration, purge,
 * delete with redirect, owner subscriptions and affiliations, items by id, publish-options,
 * PEP through ?service=, and the error mappings Prosody produces for them. */
#include "harness.h"

#include "xmpp/pubsub.h"

#include <signal.h>
#include <stdlib.h>

static struct it_gw gw;

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* 1 when the list (array of objects) has an entry whose key equals value. */
static int has(json_t *list, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) if (jstr(e, key) && strcmp(jstr(e, key), value) == 0) return 1;
    return 0;
}

int main(void)
{
    int xport = it_server_port();
    const char *allow[] = {"--callback-allow", "127.0.0.0/8", NULL};
    if (it_gw_start(&gw, "gw6@localhost", "gw6", xport, allow, 1) != 0)
        return 1;
    struct it_xmpp *alice = it_xmpp_connect("alice@localhost/admin", "alice", xport);
    CHECK(alice != NULL);
    if (alice == NULL)
        CHECK_DONE();
    struct it_resp r;
    char path[600], body[600];
    const char *node = it_unique("admin");
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"config\":{\"pubsub#max_items\":\"50\"}}",
             node);
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);

    /* Configuration: read, change, read back; typed fields; the service's refusals. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/config", node);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200);
    json_t *cfg = json_object_get(r.json, "config");
    CHECK_STR(jstr(cfg, "pubsub#max_items"), "50");
    CHECK(json_is_boolean(json_object_get(cfg, "pubsub#persist_items")));
    it_resp_free(&r);
    CHECK_INT(it_req(&gw, "PUT", path,
                     "{\"config\":{\"pubsub#title\":\"Admin <&> test\",\"pubsub#max_items\":25,"
                     "\"pubsub#notify_retract\":false}}",
                     &r),
              204);
    it_resp_free(&r);
    it_req(&gw, "GET", path, NULL, &r);
    cfg = json_object_get(r.json, "config");
    CHECK_STR(jstr(cfg, "pubsub#title"), "Admin <&> test");
    CHECK_STR(jstr(cfg, "pubsub#max_items"), "25");
    CHECK(json_is_false(json_object_get(cfg, "pubsub#notify_retract")));
    it_resp_free(&r);
    /* A value the service refuses: Prosody answers bad-request / not-acceptable, ejabberd
     * resource-constraint naming the field; never a retryable status. */
    it_req(&gw, "PUT", path, "{\"config\":{\"pubsub#max_items\":\"banana\"}}", &r);
    it_check_problem(&r, 400, it_server_is("ejabberd") ? "pubsub#max_items" : NULL);
    CHECK_STR(jstr(r.json, "xmpp_condition"),
              it_server_is("ejabberd") ? "resource-constraint" : "bad-request");
    it_resp_free(&r);
    it_req(&gw, "PUT", path, "{\"config\":{\"pubsub#access_model\":\"bogus\"}}", &r);
    it_check_problem(&r, it_server_is("ejabberd") ? 400 : 422,
                     it_server_is("ejabberd") ? "pubsub#access_model" : NULL);
    CHECK(r.retry_after[0] == '\0');
    it_resp_free(&r);
    /* ejabberd sends purge notifications only with pubsub#notify_retract. */
    CHECK_INT(it_req(&gw, "PUT", path, "{\"config\":{\"pubsub#notify_retract\":true}}", &r), 204);
    it_resp_free(&r);
    it_req(&gw, "PUT", path, "{\"cfg\":{}}", &r);
    it_check_problem(&r, 400, "config");
    it_resp_free(&r);
    it_req(&gw, "PUT", path, "{\"config\":{\"x\":{}}}", &r);
    it_check_problem(&r, 400, "config.x");
    it_resp_free(&r);

    /* Items by id list. */
    for (int i = 1; i <= 4; i++) {
        snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=i%d", node, i);
        snprintf(body, sizeof(body), "{\"i\":%d}", i);
        CHECK_INT(it_req(&gw, "POST", path, body, &r), 201);
        it_resp_free(&r);
    }
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=i2&id=i4", node);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200);
    json_t *items = json_object_get(r.json, "items");
    CHECK_INT(json_array_size(items), 2);
    CHECK(has(items, "id", "i2") && has(items, "id", "i4"));
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?max=2", node);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200); /* Prosody ignores XEP-0059 here */
    CHECK(json_array_size(json_object_get(r.json, "items")) >= 2);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?max=0", node);
    it_req(&gw, "GET", path, NULL, &r);
    it_check_problem(&r, 400, "max");
    it_resp_free(&r);

    /* Publish-options: a precondition that does not hold is a 409 naming it. */
    snprintf(path, sizeof(path),
             "/v1/nodes/%s/items?publish-option.pubsub%%23access_model=whitelist", node);
    it_req(&gw, "POST", path, "{}", &r);
    it_check_problem(&r, 409, NULL);
    CHECK_STR(jstr(r.json, "xmpp_condition"), "conflict");
    CHECK_STR(jstr(r.json, "pubsub_condition"), "precondition-not-met");
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?publish-option.pubsub%%23access_model=open",
             node);
    CHECK_INT(it_req(&gw, "POST", path, "{\"ok\":1}", &r), 201);
    it_resp_free(&r);

    /* Owner view of subscriptions; the service decides what owners may change. */
    CHECK_INT(it_xmpp_subscribe(alice, "pubsub.localhost", node), 0);
    snprintf(path, sizeof(path), "/v1/nodes/%s/subscriptions", node);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200);
    CHECK(has(json_object_get(r.json, "subscriptions"), "jid", "alice@localhost"));
    CHECK(has(json_object_get(r.json, "subscriptions"), "subscription", "subscribed"));
    it_resp_free(&r);
    it_req(&gw, "PUT", path,
           "{\"subscriptions\":[{\"jid\":\"bob@localhost\",\"subscription\":\"subscribed\"}]}", &r);
    CHECK(r.status == 204 || r.status == 403); /* Prosody 0.12 refuses owner changes: forbidden */
    if (r.status == 403)
        CHECK_STR(jstr(r.json, "xmpp_condition"), "forbidden");
    it_resp_free(&r);
    it_req(&gw, "PUT", path,
           "{\"subscriptions\":[{\"jid\":\"bob@localhost\",\"subscription\":\"maybe\"}]}", &r);
    it_check_problem(&r, 400, "subscriptions[0].subscription");
    it_resp_free(&r);

    /* Affiliations: add a publisher, see it, remove it with "none". */
    snprintf(path, sizeof(path), "/v1/nodes/%s/affiliations", node);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200);
    CHECK(has(json_object_get(r.json, "affiliations"), "jid", "gw6@localhost"));
    it_resp_free(&r);
    CHECK_INT(
        it_req(&gw, "PUT", path,
               "{\"affiliations\":[{\"jid\":\"bob@localhost\",\"affiliation\":\"publisher\"}]}",
               &r),
        204);
    it_resp_free(&r);
    it_req(&gw, "GET", path, NULL, &r);
    CHECK(has(json_object_get(r.json, "affiliations"), "jid", "bob@localhost"));
    it_resp_free(&r);
    /* bob may publish now, through a gateway of his own */
    struct it_gw gwb;
    CHECK_INT(it_gw_start(&gwb, "bob@localhost", "bob", xport, allow, 1), 0);
    snprintf(body, sizeof(body), "/v1/nodes/%s/items?id=from-bob", node);
    CHECK_INT(it_req(&gwb, "POST", body, "{\"bob\":true}", &r), 201);
    it_resp_free(&r);
    CHECK_INT(it_req(&gw, "PUT", path,
                     "{\"affiliations\":[{\"jid\":\"bob@localhost\",\"affiliation\":\"none\"}]}",
                     &r),
              204);
    it_resp_free(&r);
    it_req(&gw, "GET", path, NULL, &r);
    CHECK(!has(json_object_get(r.json, "affiliations"), "jid", "bob@localhost"));
    it_resp_free(&r);
    it_req(&gwb, "POST", body, "{\"bob\":false}", &r);
    it_check_problem(&r, 403, NULL);
    it_resp_free(&r);
    /* Owner operations by a non-owner are forbidden. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/config", node);
    it_req(&gwb, "PUT", path, "{\"config\":{\"pubsub#title\":\"mine\"}}", &r);
    it_check_problem(&r, 403, NULL);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/purge", node);
    it_req(&gwb, "POST", path, NULL, &r);
    it_check_problem(&r, 403, NULL);
    it_resp_free(&r);
    it_req(&gw, "PUT", "/v1/nodes/x/affiliations",
           "{\"affiliations\":[{\"jid\":\"a b\",\"affiliation\":\"owner\"}]}", &r);
    it_check_problem(&r, 400, "affiliations[0].jid");
    it_resp_free(&r);

    /* A whitelisted node: subscribing is not allowed (405, closed-node). */
    const char *closed = it_unique("closed");
    snprintf(body, sizeof(body),
             "{\"node\":\"%s\",\"config\":{\"pubsub#access_model\":\"whitelist\"}}", closed);
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes", body, &r), 201);
    it_resp_free(&r);
    snprintf(body, sizeof(body), "{\"node\":\"%s\",\"callback\":\"http://127.0.0.1:9/x\"}", closed);
    it_req(&gwb, "POST", "/v1/subscriptions", body, &r);
    CHECK(r.status == 405 || r.status == 403);
    CHECK(jstr(r.json, "xmpp_condition") != NULL);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", closed);
    it_req(&gwb, "GET", path, NULL, &r);
    CHECK(r.status == 403 || r.status == 405);
    it_resp_free(&r);
    CHECK_INT(it_gw_stop(&gwb, SIGTERM), 0);

    /* Purge: items gone, the subscriber told. */
    snprintf(path, sizeof(path), "/v1/nodes/%s/purge", node);
    CHECK_INT(it_req(&gw, "POST", path, NULL, &r), 204);
    it_resp_free(&r);
    int purged = 0;
    for (xmpp_stanza_t *m; !purged && (m = it_xmpp_next_event(alice, node, 3000)) != NULL;) {
        purged =
            gw_stanza_child(gw_stanza_child(m, "event", GW_NS_PUBSUB_EVENT), "purge", NULL) != NULL;
        xmpp_stanza_release(m);
    }
    CHECK(purged);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    it_req(&gw, "GET", path, NULL, &r);
    CHECK_INT(json_array_size(json_object_get(r.json, "items")), 0);
    it_resp_free(&r);

    /* Delete with redirect: the subscriber is told the node is gone. */
    snprintf(path, sizeof(path), "/v1/nodes/%s?redirect=xmpp:pubsub.localhost?;node=elsewhere",
             node);
    CHECK_INT(it_req(&gw, "DELETE", path, NULL, &r), 204);
    it_resp_free(&r);
    int deleted = 0;
    for (xmpp_stanza_t *m; !deleted && (m = it_xmpp_next_event(alice, node, 3000)) != NULL;) {
        deleted = gw_stanza_child(gw_stanza_child(m, "event", GW_NS_PUBSUB_EVENT), "delete",
                                  NULL) != NULL;
        xmpp_stanza_release(m);
    }
    CHECK(deleted);
    snprintf(path, sizeof(path), "/v1/nodes/%s/config", node);
    it_req(&gw, "GET", path, NULL, &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes/%s?redirect=%%0A", closed);
    it_req(&gw, "DELETE", path, NULL, &r);
    it_check_problem(&r, 400, "redirect");
    it_resp_free(&r);

    /* PEP: the gateway's own account as the service. */
    CHECK_INT(it_req(&gw, "POST", "/v1/nodes/urn:example:pep/items?service=gw6@localhost&id=p1",
                     "{\"pep\":1}", &r),
              201);
    it_resp_free(&r);
    CHECK_INT(it_req(&gw, "GET", "/v1/nodes/urn:example:pep/items?service=gw6@localhost", NULL, &r),
              200);
    CHECK(has(json_object_get(r.json, "items"), "id", "p1"));
    it_resp_free(&r);
    CHECK_INT(it_req(&gw, "GET", "/v1/nodes?service=gw6@localhost", NULL, &r), 200);
    CHECK(has(json_object_get(r.json, "nodes"), "node", "urn:example:pep"));
    it_resp_free(&r);
    snprintf(path, sizeof(path), "/v1/nodes?node=%s", closed);
    CHECK_INT(it_req(&gw, "GET", path, NULL, &r), 200); /* a leaf: no child nodes */
    CHECK_INT(json_array_size(json_object_get(r.json, "nodes")), 0);
    it_resp_free(&r);
    it_req(&gw, "GET", "/v1/nodes?node=no-such-node-here", NULL, &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);
    /* A remote domain: these servers have no server-to-server; Prosody says not-allowed,
     * ejabberd forbidden. */
    it_req(&gw, "GET", "/v1/nodes?service=nowhere.invalid", NULL, &r);
    it_check_problem(&r, it_server_is("ejabberd") ? 403 : 405, NULL);
    CHECK_STR(jstr(r.json, "xmpp_condition"),
              it_server_is("ejabberd") ? "forbidden" : "not-allowed");
    it_resp_free(&r);

    snprintf(path, sizeof(path), "/v1/nodes/%s", closed);
    CHECK_INT(it_req(&gw, "DELETE", path, NULL, &r), 204);
    it_resp_free(&r);
    it_xmpp_close(alice);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_DONE();
}
