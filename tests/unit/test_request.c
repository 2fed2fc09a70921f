/* Request validation: publish bodies of every content type, ids, create bodies, parameters;
 * every refusal is a 4xx whose detail names the field. */
#include "../check.h"
#include "gateway/itemid.h"
#include "http/request.h"

#include <stdlib.h>

static struct gw_route_match match;

static int prep(enum gw_route route, const char *node, const char *ctype, const char *body,
                struct gw_query_param *q, size_t nq, struct gw_cmd **cmd,
                struct gw_http_reply *reply)
{
    match.route = route;
    snprintf(match.node, sizeof(match.node), "%s", node ? node : "");
    match.id[0] = '\0';
    struct gw_http_request req = {.match = &match,
                                  .content_type = ctype,
                                  .body = body,
                                  .body_len = body ? strlen(body) : 0,
                                  .query = q,
                                  .nquery = nq};
    memset(reply, 0, sizeof(*reply));
    *cmd = NULL;
    return gw_http_prepare(&req, cmd, reply);
}

/* Expects a refusal with status and a detail that contains field; frees the reply. */
static void expect_fail(int rc, struct gw_http_reply *reply, int status, const char *field)
{
    CHECK_INT(rc, -1);
    CHECK_INT(reply->status, status);
    const char *detail = json_string_value(json_object_get(reply->body, "detail"));
    CHECK(detail != NULL && strstr(detail, field) != NULL);
    if (detail == NULL || strstr(detail, field) == NULL)
        fprintf(stderr, "  detail: %s (wanted %s)\n", detail ? detail : "(none)", field);
    CHECK_INT(json_integer_value(json_object_get(reply->body, "status")), status);
    json_decref(reply->body);
}

int main(void)
{
    struct gw_cmd *cmd;
    struct gw_http_reply reply;

    int rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json; charset=utf-8",
                  " {\"a\" : [1, 2]} ", NULL, 0, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK_INT(cmd->op, GW_OP_PUBLISH);
    CHECK_INT(cmd->payload_kind, GW_PAYLOAD_JSON);
    CHECK_STR(cmd->payload, "{\"a\":[1,2]}");
    CHECK_STR(cmd->node, "n");
    CHECK(cmd->item_id != NULL && strlen(cmd->item_id) == GW_ITEMID_LEN);
    char first_id[64];
    snprintf(first_id, sizeof(first_id), "%s", cmd->item_id);
    gw_cmd_free(cmd);
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", "42", NULL, 0, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK_STR(cmd->payload, "42");
    CHECK(strcmp(cmd->item_id, first_id) > 0); /* time-ordered */
    gw_cmd_free(cmd);

    struct gw_query_param q[] = {{"id", "item-1"},
                                 {"publish-option.pubsub#access_model", "open"},
                                 {"service", "pubsub.example.org"}};
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/atom+xml", "<entry/>", q, 3, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK_INT(cmd->payload_kind, GW_PAYLOAD_XML);
    CHECK_STR(cmd->payload, "<entry/>");
    CHECK_STR(cmd->item_id, "item-1");
    CHECK_STR(cmd->service, "pubsub.example.org");
    CHECK_STR(json_string_value(json_object_get(cmd->config, "pubsub#access_model")), "open");
    gw_cmd_free(cmd);
    /* the deepObject form generated clients send */
    struct gw_query_param q2[] = {{"publish-option[pubsub#max_items]", "5"},
                                  {"publish-option[]", "ignored"}};
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", "{}", q2, 2, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK_STR(json_string_value(json_object_get(cmd->config, "pubsub#max_items")), "5");
    CHECK_INT(json_object_size(cmd->config), 1);
    gw_cmd_free(cmd);

    rc = prep(
        GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json",
        "{\"id\":\"e1\",\"payload\":{\"x\":\"<&>\"},\"publish_options\":{\"pubsub#max_items\":5}}",
        NULL, 0, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK_STR(cmd->item_id, "e1");
    CHECK_STR(cmd->payload, "{\"x\":\"<&>\"}");
    CHECK_INT(json_integer_value(json_object_get(cmd->config, "pubsub#max_items")), 5);
    gw_cmd_free(cmd);

    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", "{\"a\":", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "body");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", "{\"a\":1,\"a\":2}", NULL, 0, &cmd,
              &reply);
    expect_fail(rc, &reply, 400, "body");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", NULL, NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "body");
    /* U+0000 cannot travel in XML: refused naming the field and the reason. */
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json",
              "{\"a\":{\"b\":[\"ok\",\"x\\u0000y\"]}}", NULL, 0, &cmd, &reply);
    CHECK(strstr(json_string_value(json_object_get(reply.body, "detail")), "XML cannot carry"));
    expect_fail(rc, &reply, 400, "body.a.b[1]");
    rc = prep(GW_ROUTE_NODE_CONFIG_SET, "n", "application/json",
              "{\"config\":{\"pubsub#title\":\"\\u0000\"}}", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "body.config.pubsub#title");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", "{\"a\\u0000\":1}", NULL, 0, &cmd,
              &reply);
    expect_fail(rc, &reply, 400, "U+0000");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", "\"\xC3\"", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "body");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "text/xml", "<a>\xFF</a>", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "UTF-8");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "text/plain", "hi", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 415, "Content-Type");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", NULL, "hi", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 415, "Content-Type");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json; charset=latin1", "1", NULL, 0, &cmd,
              &reply);
    expect_fail(rc, &reply, 415, "UTF-8");
    struct gw_query_param badid[] = {{"id", "a\nb"}};
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/json", "1", badid, 1, &cmd, &reply);
    expect_fail(rc, &reply, 400, "id");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json", "{\"id\":\"x\"}",
              NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "payload");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json",
              "{\"payload\":1,\"extra\":2}", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "extra");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json",
              "{\"payload\":1,\"id\":7}", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "id");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json",
              "{\"payload\":1,\"publish_options\":{\"k\":{}}}", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "publish_options.k");
    /* A value XML cannot carry would make the server end the XMPP stream: refused here. */
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json",
              "{\"payload\":1,\"publish_options\":{\"pubsub#title\":\"a\\u0001\"}}", NULL, 0,
              &cmd, &reply);
    expect_fail(rc, &reply, 400, "publish_options.pubsub#title");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json",
              "{\"payload\":1,\"publish_options\":{\"k\":[\"ok\",\"\\ufffe\"]}}", NULL, 0,
              &cmd, &reply);
    expect_fail(rc, &reply, 400, "publish_options.k[1]");
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json",
              "{\"payload\":1,\"publish_options\":{\"k\":\"tab\\tnewline\\n\"}}", NULL, 0,
              &cmd, &reply);
    CHECK_INT(rc, 0);
    gw_cmd_free(cmd);
    rc = prep(GW_ROUTE_ITEM_PUBLISH, "n", "application/vnd.pubsubgw.publish+json", "[1]", NULL, 0,
              &cmd, &reply);
    expect_fail(rc, &reply, 400, "body");

    struct gw_query_param badsvc[] = {{"service", "a b"}};
    rc = prep(GW_ROUTE_ITEMS_LIST, "n", NULL, NULL, badsvc, 1, &cmd, &reply);
    expect_fail(rc, &reply, 400, "service");
    struct gw_query_param mi[] = {{"max_items", "0"}};
    rc = prep(GW_ROUTE_ITEMS_LIST, "n", NULL, NULL, mi, 1, &cmd, &reply);
    expect_fail(rc, &reply, 400, "max_items");
    mi[0].value = "12x";
    rc = prep(GW_ROUTE_ITEMS_LIST, "n", NULL, NULL, mi, 1, &cmd, &reply);
    expect_fail(rc, &reply, 400, "max_items");
    mi[0].value = "7";
    rc = prep(GW_ROUTE_ITEMS_LIST, "n", NULL, NULL, mi, 1, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK_INT(cmd->max_items, 7);
    CHECK_INT(cmd->op, GW_OP_ITEMS_GET);
    gw_cmd_free(cmd);

    rc = prep(GW_ROUTE_NODE_CREATE, NULL, "application/json",
              "{\"node\":\"n2\",\"config\":{\"pubsub#max_items\":\"100\"}}", NULL, 0, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK_STR(cmd->node, "n2");
    CHECK_STR(json_string_value(json_object_get(cmd->config, "pubsub#max_items")), "100");
    gw_cmd_free(cmd);
    rc = prep(GW_ROUTE_NODE_CREATE, NULL, NULL, NULL, NULL, 0, &cmd, &reply);
    CHECK_INT(rc, 0);
    CHECK(cmd->node == NULL); /* instant node */
    gw_cmd_free(cmd);
    rc =
        prep(GW_ROUTE_NODE_CREATE, NULL, "application/json", "{\"node\":5}", NULL, 0, &cmd, &reply);
    expect_fail(rc, &reply, 400, "node");
    rc = prep(GW_ROUTE_NODE_CREATE, NULL, "application/json", "{\"nod\":\"x\"}", NULL, 0, &cmd,
              &reply);
    expect_fail(rc, &reply, 400, "nod");
    rc = prep(GW_ROUTE_NODE_CREATE, NULL, "application/json", "{\"config\":[]}", NULL, 0, &cmd,
              &reply);
    expect_fail(rc, &reply, 400, "config");
    rc = prep(GW_ROUTE_NODE_CREATE, NULL, "application/json", "{\"config\":{\"a\":[1]}}", NULL, 0,
              &cmd, &reply);
    expect_fail(rc, &reply, 400, "config.a[0]");

    CHECK(gw_valid_jid("pubsub.example.org"));
    CHECK(gw_valid_jid("user@example.org"));
    CHECK(gw_valid_jid("user@example.org/res with space"));
    CHECK(!gw_valid_jid(""));
    CHECK(!gw_valid_jid("@example.org"));
    CHECK(!gw_valid_jid("a@b@c"));
    CHECK(!gw_valid_jid("a@"));
    CHECK(!gw_valid_jid("a<b"));
    CHECK(!gw_valid_jid("example.org/"));
    CHECK_DONE();
}
