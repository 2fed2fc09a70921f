/* Commands as XEP-0060 requests: one function sends the request of each operation, one
 * callback turns its answer into the HTTP result. */
#include "../gateway/log.h"
#include "../gateway/status.h"
#include "payload.h"
#include "pubsub.h"
#include "session_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_error(xmpp_stanza_t *answer)
{
    const char *type = xmpp_stanza_get_type(answer);
    return type && strcmp(type, "error") == 0;
}

static void finish_json(struct gw_cmd *cmd, int status, json_t *body)
{
    if (body == NULL)
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
    else
        gw_cmd_finish(cmd, status, body);
}

static void on_publish(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer)) {
        gw_xmpp_fail_from_error(cmd, answer);
        return;
    }
    /* The service may have assigned or normalised the id; its answer wins when present. */
    const char *id = cmd->item_id;
    xmpp_stanza_t *item = gw_stanza_child(
        gw_stanza_child(gw_stanza_child(answer, "pubsub", GW_NS_PUBSUB), "publish", NULL), "item",
        NULL);
    if (item != NULL && xmpp_stanza_get_id(item) != NULL)
        id = xmpp_stanza_get_id(item);
    atomic_fetch_add(&gw_status.publishes, 1);
    finish_json(cmd, 201, json_pack("{s:s, s:s}", "id", id, "node", cmd->node));
}

static void on_items(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)step;
    if (is_error(answer)) {
        gw_xmpp_fail_from_error(cmd, answer);
        return;
    }
    json_t *out = gw_pubsub_items_json(gw_xmpp_ctx(x), answer);
    if (out == NULL || cmd->op == GW_OP_ITEMS_GET) {
        finish_json(cmd, 200, out);
        return;
    }
    /* One item asked for by id: the service answers an empty list when it has none. */
    json_t *item = json_incref(json_array_get(json_object_get(out, "items"), 0));
    json_decref(out);
    if (item == NULL)
        gw_cmd_fail(cmd, 404, "Item not found", "the node has no item with this id",
                    "item-not-found");
    else
        gw_cmd_finish(cmd, 200, item);
}

static void on_no_content(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer))
        gw_xmpp_fail_from_error(cmd, answer);
    else
        gw_cmd_finish(cmd, 204, NULL);
}

static void on_create(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer)) {
        gw_xmpp_fail_from_error(cmd, answer);
        return;
    }
    /* For an instant node the service names the node in its answer. */
    const char *node = cmd->node;
    xmpp_stanza_t *create =
        gw_stanza_child(gw_stanza_child(answer, "pubsub", GW_NS_PUBSUB), "create", NULL);
    if (create != NULL && xmpp_stanza_get_attribute(create, "node") != NULL)
        node = xmpp_stanza_get_attribute(create, "node");
    if (node == NULL) {
        gw_cmd_fail(cmd, 502, "Bad answer from the service", "the service named no node", NULL);
        return;
    }
    finish_json(cmd, 201, json_pack("{s:s}", "node", node));
}

static void on_nodes(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer))
        gw_xmpp_fail_from_error(cmd, answer);
    else
        finish_json(cmd, 200, gw_disco_items_json(answer));
}

/* Node info is two requests: disco#info (does it exist, what type) then the owner's
 * configuration form, which only owners may read; without it the answer has no config. */
static void on_node_get(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    if (step == 0) {
        if (is_error(answer)) {
            gw_xmpp_fail_from_error(cmd, answer);
            return;
        }
        json_t *info = gw_disco_info_json(answer);
        if (info == NULL) {
            gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
            return;
        }
        json_object_set_new(info, "node", json_string(cmd->node));
        if (json_object_get(info, "type") == NULL)
            json_object_set_new(info, "type", json_string("leaf"));
        cmd->result = info; /* kept until the second answer */
        char id[24];
        gw_xmpp_new_id(x, id);
        gw_xmpp_send_iq(
            x, gw_pubsub_config_get(gw_xmpp_ctx(x), id, gw_xmpp_service(x, cmd), cmd->node), cmd,
            on_node_get, 1);
        return;
    }
    json_t *info = cmd->result;
    cmd->result = NULL;
    if (!is_error(answer)) {
        xmpp_stanza_t *form =
            gw_stanza_child(gw_stanza_child(gw_stanza_child(answer, "pubsub", GW_NS_PUBSUB_OWNER),
                                            "configure", NULL),
                            "x", GW_NS_DATA);
        if (form != NULL)
            json_object_set_new(info, "config", gw_data_form_json(form));
    }
    gw_cmd_finish(cmd, 200, info);
}

static void on_subscriptions(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer))
        gw_xmpp_fail_from_error(cmd, answer);
    else
        finish_json(cmd, 200, gw_pubsub_subscriptions_json(answer, GW_NS_PUBSUB));
}

static void on_subscribe(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer)) {
        gw_xmpp_fail_from_error(cmd, answer);
        return;
    }
    /* The service may answer "pending" (authorize access model) or "unconfigured". */
    xmpp_stanza_t *sub =
        gw_stanza_child(gw_stanza_child(answer, "pubsub", GW_NS_PUBSUB), "subscription", NULL);
    const char *state = sub ? xmpp_stanza_get_attribute(sub, "subscription") : NULL;
    finish_json(cmd, 200, json_pack("{s:s}", "subscription", state ? state : "subscribed"));
}

static void on_config(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer)) {
        gw_xmpp_fail_from_error(cmd, answer);
        return;
    }
    xmpp_stanza_t *form = gw_stanza_child(
        gw_stanza_child(gw_stanza_child(answer, "pubsub", GW_NS_PUBSUB_OWNER), "configure", NULL),
        "x", GW_NS_DATA);
    finish_json(cmd, 200,
                json_pack("{s:o}", "config", form ? gw_data_form_json(form) : json_object()));
}

static void on_owner_list(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)x;
    (void)step;
    if (is_error(answer))
        gw_xmpp_fail_from_error(cmd, answer);
    else if (cmd->op == GW_OP_AFFILIATIONS_GET)
        finish_json(cmd, 200, gw_pubsub_affiliations_json(answer));
    else
        finish_json(cmd, 200, gw_pubsub_subscriptions_json(answer, GW_NS_PUBSUB_OWNER));
}

void gw_xmpp_execute(struct gw_xmpp *x, struct gw_cmd *cmd)
{
    if (!gw_xmpp_is_up(x)) {
        gw_cmd_fail_unavailable(cmd, "the gateway is not connected to its XMPP server");
        return;
    }
    xmpp_ctx_t *ctx = gw_xmpp_ctx(x);
    const char *service = gw_xmpp_service(x, cmd);
    char id[24];
    gw_xmpp_new_id(x, id);
    switch (cmd->op) {
    case GW_OP_PUBLISH: {
        char err[256];
        xmpp_stanza_t *payload = NULL;
        if (cmd->payload_kind == GW_PAYLOAD_JSON) {
            payload = gw_payload_json_element(ctx, cmd->payload);
            snprintf(err, sizeof(err), "out of memory");
        } else {
            payload = gw_payload_xml_element(ctx, cmd->payload, err, sizeof(err));
        }
        if (payload == NULL) {
            char detail[300];
            snprintf(detail, sizeof(detail), "body: %s", err);
            gw_cmd_fail(cmd, 400, "Invalid payload", detail, NULL);
            return;
        }
        xmpp_stanza_t *iq =
            gw_pubsub_publish(ctx, id, service, cmd->node, cmd->item_id, payload, cmd->config);
        xmpp_stanza_release(payload);
        gw_xmpp_send_iq(x, iq, cmd, on_publish, 0);
        return;
    }
    case GW_OP_ITEMS_GET: {
        json_t *a = cmd->args;
        gw_xmpp_send_iq(x,
                        gw_pubsub_items_ex(ctx, id, service, cmd->node, cmd->max_items,
                                           json_object_get(a, "ids"),
                                           (int)json_integer_value(json_object_get(a, "max")),
                                           json_string_value(json_object_get(a, "after")),
                                           json_string_value(json_object_get(a, "before"))),
                        cmd, on_items, 0);
        return;
    }
    case GW_OP_ITEM_GET:
        gw_xmpp_send_iq(x, gw_pubsub_items(ctx, id, service, cmd->node, 0, cmd->item_id), cmd,
                        on_items, 0);
        return;
    case GW_OP_ITEM_RETRACT:
        gw_xmpp_send_iq(x, gw_pubsub_retract(ctx, id, service, cmd->node, cmd->item_id), cmd,
                        on_no_content, 0);
        return;
    case GW_OP_NODES_LIST:
        gw_xmpp_send_iq(x, gw_disco_items(ctx, id, service, cmd->node), cmd, on_nodes, 0);
        return;
    case GW_OP_NODE_CREATE:
        gw_xmpp_send_iq(x, gw_pubsub_create(ctx, id, service, cmd->node, cmd->config), cmd,
                        on_create, 0);
        return;
    case GW_OP_NODE_GET:
        gw_xmpp_send_iq(x, gw_disco_info(ctx, id, service, cmd->node), cmd, on_node_get, 0);
        return;
    case GW_OP_NODE_DELETE:
        gw_xmpp_send_iq(x,
                        gw_pubsub_delete(ctx, id, service, cmd->node,
                                         json_string_value(json_object_get(cmd->args, "redirect"))),
                        cmd, on_no_content, 0);
        return;
    case GW_OP_CONFIG_GET:
        gw_xmpp_send_iq(x, gw_pubsub_config_get(ctx, id, service, cmd->node), cmd, on_config, 0);
        return;
    case GW_OP_CONFIG_SET:
        gw_xmpp_send_iq(x, gw_pubsub_config_set(ctx, id, service, cmd->node, cmd->config), cmd,
                        on_no_content, 0);
        return;
    case GW_OP_PURGE:
        gw_xmpp_send_iq(x, gw_pubsub_purge(ctx, id, service, cmd->node), cmd, on_no_content, 0);
        return;
    case GW_OP_OWNER_SUBS_GET:
    case GW_OP_AFFILIATIONS_GET:
        gw_xmpp_send_iq(x,
                        gw_pubsub_owner_list(ctx, id, service, cmd->node,
                                             cmd->op == GW_OP_AFFILIATIONS_GET ? "affiliations"
                                                                               : "subscriptions",
                                             NULL),
                        cmd, on_owner_list, 0);
        return;
    case GW_OP_OWNER_SUBS_SET:
    case GW_OP_AFFILIATIONS_SET: {
        const char *what = cmd->op == GW_OP_AFFILIATIONS_SET ? "affiliations" : "subscriptions";
        gw_xmpp_send_iq(x,
                        gw_pubsub_owner_list(ctx, id, service, cmd->node, what,
                                             json_object_get(cmd->args, what)),
                        cmd, on_no_content, 0);
        return;
    }
    case GW_OP_SUBSCRIBE:
    case GW_OP_UNSUBSCRIBE:
        gw_xmpp_send_iq(x,
                        gw_pubsub_subscribe(ctx, id, service, cmd->node, gw_xmpp_bare_jid(x),
                                            cmd->op == GW_OP_SUBSCRIBE),
                        cmd, cmd->op == GW_OP_SUBSCRIBE ? on_subscribe : on_no_content, 0);
        return;
    case GW_OP_SUBSCRIPTIONS:
        gw_xmpp_send_iq(x, gw_pubsub_subscriptions(ctx, id, service), cmd, on_subscriptions, 0);
        return;
    default:
        break;
    }
    gw_cmd_fail(cmd, 500, "Internal error", "unknown operation", NULL);
}
