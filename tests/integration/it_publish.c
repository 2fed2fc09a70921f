/* End to end against the real Prosody: nodes created and items published through REST are seen
 * by an independent XMPP subscriber with the payload intact, and read back through REST. */
#include "harness.h"

#include "xmpp/payload.h"
#include "xmpp/pubsub.h"

#include <signal.h>
#include <stdlib.h>

static char path[1024];

/* "/v1/nodes/NODE" + suffix */
static const char *p(const char *node, const char *suffix)
{
    snprintf(path, sizeof(path), "/v1/nodes/%s%s", node, suffix);
    return path;
}

/* The single item of an items event, or NULL. */
static xmpp_stanza_t *event_child(xmpp_stanza_t *msg, const char *what)
{
    xmpp_stanza_t *ev = gw_stanza_child(msg, "event", GW_NS_PUBSUB_EVENT);
    xmpp_stanza_t *items = gw_stanza_child(ev, "items", NULL);
    return gw_stanza_child(items, what, NULL);
}

/* 1 when the item's XEP-0335 payload is the JSON value of text. */
static int json_payload_is(struct it_xmpp *c, xmpp_stanza_t *item, const char *text)
{
    xmpp_stanza_t *jel = gw_stanza_child(item, "json", GW_JSON_NS);
    char *got_text = jel ? xmpp_stanza_get_text(jel) : NULL;
    json_t *got = got_text ? json_loads(got_text, 0, NULL) : NULL;
    json_t *want = json_loads(text, 0, NULL);
    int same = got != NULL && want != NULL && json_equal(got, want);
    json_decref(got);
    json_decref(want);
    if (got_text)
        xmpp_free(it_xmpp_ctx(c), got_text);
    return same;
}

int main(void)
{
    int xport = it_server_port();
    struct it_gw gw;
    if (it_gw_start(&gw, "gw2@localhost", "gw2", xport, NULL, 1) != 0)
        return 1;
    struct it_resp r;
    const char *node = it_unique("news");
    char body[512];

    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    it_post_json(&gw, "/v1/nodes", body, &r);
    CHECK_INT(r.status, 201);
    CHECK_STR(json_string_value(json_object_get(r.json, "node")), node);
    it_resp_free(&r);

    struct it_xmpp *alice = it_xmpp_connect("alice@localhost/t", "alice", xport);
    CHECK(alice != NULL);
    if (alice == NULL)
        CHECK_DONE();
    CHECK_INT(it_xmpp_subscribe(alice, "pubsub.localhost", node), 0);

    /* JSON payload, hostile characters included. */
    const char *payload =
        "{\"msg\":\"hello <&> \\\"q\\\" 'a' caf\xC3\xA9 \\u0001\",\"n\":[1,2.5,null,true]}";
    it_post_json(&gw, p(node, "/items"), payload, &r);
    CHECK_INT(r.status, 201);
    CHECK_STR(json_string_value(json_object_get(r.json, "node")), node);
    const char *id = json_string_value(json_object_get(r.json, "id"));
    CHECK(id != NULL && strlen(id) == 26);
    char json_id[64];
    snprintf(json_id, sizeof(json_id), "%s", id ? id : "");
    it_resp_free(&r);

    xmpp_stanza_t *msg = it_xmpp_next_event(alice, node, 5000);
    CHECK(msg != NULL);
    xmpp_stanza_t *item = msg ? event_child(msg, "item") : NULL;
    CHECK(item != NULL);
    if (item != NULL) {
        CHECK_STR(xmpp_stanza_get_id(item), json_id);
        CHECK(json_payload_is(alice, item, payload));
    }
    if (msg)
        xmpp_stanza_release(msg);

    /* U+FFFE and U+FFFF, which no XML stream may carry (a server ends the stream on one), raw
     * and escaped in JSON strings, and a raw carriage return between tokens: published intact,
     * and the session stays up. */
    const char *nonchar = "{\"a\":\"x\xEF\xBF\xBEy\",\r\n\"b\":\"\\uffff\\r\"}";
    it_post_json(&gw, p(node, "/items"), nonchar, &r);
    CHECK_INT(r.status, 201);
    char nonchar_id[64];
    snprintf(nonchar_id, sizeof(nonchar_id), "%s",
             r.json ? json_string_value(json_object_get(r.json, "id")) : "");
    it_resp_free(&r);
    msg = it_xmpp_next_event(alice, node, 5000);
    item = msg ? event_child(msg, "item") : NULL;
    CHECK(item != NULL && json_payload_is(alice, item, nonchar));
    if (msg)
        xmpp_stanza_release(msg);

    /* XML payload with a chosen id. */
    const char *atom =
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>T &amp; \xC3\xA9</title></entry>";
    char url[1200];
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items?id=atom%%201", gw.base, node);
    it_http("POST", url, "application/atom+xml", atom, strlen(atom), &r);
    CHECK_INT(r.status, 201);
    CHECK_STR(json_string_value(json_object_get(r.json, "id")), "atom 1");
    it_resp_free(&r);
    msg = it_xmpp_next_event(alice, node, 5000);
    item = msg ? event_child(msg, "item") : NULL;
    CHECK(item != NULL);
    if (item != NULL) {
        CHECK_STR(xmpp_stanza_get_id(item), "atom 1");
        xmpp_stanza_t *entry = gw_stanza_child(item, "entry", "http://www.w3.org/2005/Atom");
        xmpp_stanza_t *title = gw_stanza_child(entry, "title", NULL);
        char *t = title ? xmpp_stanza_get_text(title) : NULL;
        CHECK_STR(t, "T & \xC3\xA9");
        if (t)
            xmpp_free(it_xmpp_ctx(alice), t);
    }
    if (msg)
        xmpp_stanza_release(msg);

    /* The envelope form. */
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items", gw.base, node);
    const char *env = "{\"id\":\"env1\",\"payload\":[\"x\"]}";
    it_http("POST", url, "application/vnd.pubsubgw.publish+json", env, strlen(env), &r);
    CHECK_INT(r.status, 201);
    CHECK_STR(json_string_value(json_object_get(r.json, "id")), "env1");
    it_resp_free(&r);
    msg = it_xmpp_next_event(alice, node, 5000);
    CHECK(msg != NULL);
    if (msg)
        xmpp_stanza_release(msg);

    /* Read back. */
    it_get(&gw, p(node, "/items"), &r);
    CHECK_INT(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    CHECK_INT(json_array_size(items), 4);
    int seen_json = 0, seen_xml = 0, seen_nonchar = 0;
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *iid = json_string_value(json_object_get(it, "id"));
        if (iid && strcmp(iid, json_id) == 0) {
            json_t *want = json_loads(payload, 0, NULL);
            seen_json = json_equal(json_object_get(it, "payload"), want);
            json_decref(want);
        }
        if (iid && strcmp(iid, nonchar_id) == 0) {
            json_t *want = json_loads(nonchar, 0, NULL);
            seen_nonchar = json_equal(json_object_get(it, "payload"), want);
            json_decref(want);
        }
        if (iid && strcmp(iid, "atom 1") == 0)
            seen_xml =
                strstr(json_string_value(json_object_get(it, "xml")), "T &amp; \xC3\xA9") != NULL;
    }
    CHECK(seen_json);
    CHECK(seen_xml);
    CHECK(seen_nonchar);
    it_resp_free(&r);
    it_get(&gw, p(node, "/items?max_items=1"), &r);
    CHECK_INT(r.status, 200);
    CHECK_INT(json_array_size(json_object_get(r.json, "items")), 1);
    it_resp_free(&r);
    it_get(&gw, p(node, "/items/atom%201"), &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(json_string_value(json_object_get(r.json, "id")), "atom 1");
    it_resp_free(&r);
    it_get(&gw, p(node, "/items/absent"), &r);
    it_check_problem(&r, 404, NULL);
    it_resp_free(&r);

    /* Re-sending with the same id overwrites instead of duplicating. */
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items?id=env1", gw.base, node);
    it_http("POST", url, "application/json", "{\"v\":2}", 7, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    msg = it_xmpp_next_event(alice, node, 5000);
    if (msg)
        xmpp_stanza_release(msg);
    it_get(&gw, p(node, "/items"), &r);
    CHECK_INT(json_array_size(json_object_get(r.json, "items")), 4);
    it_resp_free(&r);

    /* Retract: the subscriber is told. */
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items/env1", gw.base, node);
    it_http("DELETE", url, NULL, NULL, 0, &r);
    CHECK_INT(r.status, 204);
    it_resp_free(&r);
    msg = it_xmpp_next_event(alice, node, 5000);
    xmpp_stanza_t *retract = msg ? event_child(msg, "retract") : NULL;
    CHECK(retract != NULL);
    CHECK_STR(retract ? xmpp_stanza_get_id(retract) : NULL, "env1");
    if (msg && (retract == NULL || strcmp(xmpp_stanza_get_id(retract), "env1") != 0)) {
        char *t = gw_stanza_text(it_xmpp_ctx(alice), msg);
        fprintf(stderr, "  event was: %s\n", t ? t : "?");
        free(t);
    }
    if (msg)
        xmpp_stanza_release(msg);

    /* Node discovery and information. */
    it_get(&gw, "/v1/nodes", &r);
    CHECK_INT(r.status, 200);
    int listed = 0;
    json_array_foreach(json_object_get(r.json, "nodes"), i, it)
    {
        const char *n = json_string_value(json_object_get(it, "node"));
        listed |= n && strcmp(n, node) == 0;
    }
    CHECK(listed);
    it_resp_free(&r);
    it_get(&gw, p(node, ""), &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(json_string_value(json_object_get(r.json, "node")), node);
    CHECK_STR(json_string_value(json_object_get(r.json, "type")), "leaf");
    CHECK(json_object_get(json_object_get(r.json, "config"), "pubsub#max_items") != NULL);
    it_resp_free(&r);

    /* A node id with a slash, created with configuration. */
    char slashed[200];
    snprintf(slashed, sizeof(slashed), "team/%s", it_unique("cfg"));
    snprintf(body, sizeof(body),
             "{\"node\":\"%s\",\"config\":{\"pubsub#max_items\":\"5\",\"pubsub#title\":\"T\"}}",
             slashed);
    it_post_json(&gw, "/v1/nodes", body, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    char enc[300];
    snprintf(enc, sizeof(enc), "team%%2F%s", slashed + 5);
    it_get(&gw, p(enc, ""), &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(json_string_value(json_object_get(r.json, "node")), slashed);
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(r.json, "config"), "pubsub#max_items")),
        "5");
    CHECK_STR(json_string_value(json_object_get(json_object_get(r.json, "config"), "pubsub#title")),
              "T");
    it_resp_free(&r);
    snprintf(url, sizeof(url), "%s/v1/nodes/%s", gw.base, enc);
    it_http("DELETE", url, NULL, NULL, 0, &r);
    CHECK_INT(r.status, 204);
    it_resp_free(&r);

    /* Instant node: the service picks the id. */
    snprintf(url, sizeof(url), "%s/v1/nodes", gw.base);
    it_http("POST", url, NULL, NULL, 0, &r);
    CHECK_INT(r.status, 201);
    const char *instant = json_string_value(json_object_get(r.json, "node"));
    CHECK(instant != NULL && instant[0] != '\0');
    if (instant) {
        char u2[600];
        snprintf(u2, sizeof(u2), "%s/v1/nodes/%s", gw.base, instant);
        struct it_resp r2;
        it_http("DELETE", u2, NULL, NULL, 0, &r2);
        CHECK_INT(r2.status, 204);
        it_resp_free(&r2);
    }
    it_resp_free(&r);

    /* Service documents. */
    it_get(&gw, "/openapi.json", &r);
    CHECK_INT(r.status, 200);
    CHECK(json_object_get(json_object_get(r.json, "paths"), "/v1/nodes/{node}/items") != NULL);
    it_resp_free(&r);
    it_get(&gw, "/metrics", &r);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "pubsubgw_publishes_total 5") != NULL);
    CHECK(strstr(r.body, "pubsubgw_xmpp_up 1") != NULL);
    it_resp_free(&r);
    it_get(&gw, "/v1/health", &r);
    CHECK_INT(r.status, 200);
    CHECK_STR(json_string_value(json_object_get(r.json, "xmpp")), "connected");
    CHECK(strncmp(json_string_value(json_object_get(r.json, "jid")), "gw2@localhost/", 14) == 0);
    it_resp_free(&r);

    /* Delete the node: the subscriber is told, and the node is gone. */
    snprintf(url, sizeof(url), "%s/v1/nodes/%s", gw.base, node);
    it_http("DELETE", url, NULL, NULL, 0, &r);
    CHECK_INT(r.status, 204);
    it_resp_free(&r);
    it_get(&gw, p(node, "/items"), &r);
    it_check_problem(&r, 404, NULL);
    CHECK_STR(json_string_value(json_object_get(r.json, "xmpp_condition")), "item-not-found");
    it_resp_free(&r);

    it_xmpp_close(alice);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    CHECK_DONE();
}
