/* Commands as XEP-0060 requests: one function sends the request of each operation, one
 * callback turns its answer into the HTTP result. */
#include "../gateway/hmap.h"
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

/* Nodes known to exist. Publishing to a node that does not exist must be 404 on every server,
 * but some (ejabberd) create it instead; so the first publish to a node not seen before asks
 * disco#info first, and later ones go straight out. A node leaves the table when it is deleted
 * (through the gateway or by a notification) or a publish finds it missing. */
#define KNOWN_MAX 100000

static int node_known(struct gw_xmpp *x, const char *service, const char *node)
{
    char key[4200];
    size_t k = gw_hmap_pair_key(service, node, key, sizeof(key));
    return k && gw_hmap_get(gw_xmpp_known_nodes(x), key, k) != NULL;
}

static void node_learn(struct gw_xmpp *x, const char *service, const char *node)
{
    char key[4200];
    size_t k = gw_hmap_pair_key(service, node, key, sizeof(key));
    struct gw_hmap *m = gw_xmpp_known_nodes(x);
    if (k == 0 || gw_hmap_get(m, key, k) != NULL)
        return;
    if (gw_hmap_size(m) < KNOWN_MAX)
        gw_hmap_put(m, key, k, (void *)1); /* past the bound, those nodes are checked each time */
    gw_xmpp_node_appeared(x, service, node);
}

void gw_xmpp_node_forget(struct gw_xmpp *x, const char *service, const char *node)
{
    char key[4200];
    size_t k = gw_hmap_pair_key(service, node, key, sizeof(key));
    if (k)
        gw_hmap_del(gw_xmpp_known_nodes(x), key, k);
}

static int is_condition(xmpp_stanza_t *answer, const char *condition)
{
    struct gw_xmpp_error e;
    gw_pubsub_error_parse(answer, &e);
    return strcmp(e.condition, condition) == 0;
}

static void on_publish(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    (void)step;
    if (is_error(answer)) {
        if (is_condition(answer, "item-not-found"))
            gw_xmpp_node_forget(x, gw_xmpp_service(x, cmd), cmd->node);
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
    (void)step;
    if (cmd->op == GW_OP_NODE_DELETE &&
        (!is_error(answer) || is_condition(answer, "item-not-found")))
        gw_xmpp_node_forget(x, gw_xmpp_service(x, cmd), cmd->node);
    if (is_error(answer))
        gw_xmpp_fail_from_error(cmd, answer);
    else
        gw_cmd_finish(cmd, 204, NULL);
}

/* Builds and sends the publish of cmd; with validate_only just checks that the payload can be
 * built (so a bad body costs no round trip). Returns 0, or -1 when cmd was failed. */
static int send_publish(struct gw_xmpp *x, struct gw_cmd *cmd, int validate_only)
{
    xmpp_ctx_t *ctx = gw_xmpp_ctx(x);
    /* The hot path, a JSON item without publish-options, is written as text: building the
     * stanza tree and serializing it was a tenth of the gateway's CPU per publish. */
    if (cmd->payload_kind == GW_PAYLOAD_JSON && json_object_size(cmd->config) == 0) {
        if (validate_only)
            return 0; /* any JSON text can be carried */
        char id[24];
        gw_xmpp_new_id(x, id);
        const char *service = gw_xmpp_service(x, cmd);
        size_t len = 0;
        char *text =
            gw_pubsub_publish_text(id, service, cmd->node, cmd->item_id, cmd->payload, &len);
        if (text != NULL) {
            gw_xmpp_send_iq_text(x, text, len, id, service, cmd, on_publish, 0);
            return 0;
        }
        /* refused (a value XML cannot carry, which the HTTP layer keeps out) or out of memory:
         * the stanza path decides */
    }
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
        return -1;
    }
    if (validate_only) {
        xmpp_stanza_release(payload);
        return 0;
    }
    char id[24];
    gw_xmpp_new_id(x, id);
    xmpp_stanza_t *iq = gw_pubsub_publish(ctx, id, gw_xmpp_service(x, cmd), cmd->node, cmd->item_id,
                                          payload, cmd->config);
    xmpp_stanza_release(payload);
    gw_xmpp_send_iq(x, iq, cmd, on_publish, 0);
    return 0;
}

/* The first publish to a node not known yet: step 0 is the disco#info answer, step 1 the answer
 * to creating it (--auto-create). */
static void on_publish_check(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    const char *service = gw_xmpp_service(x, cmd);
    if (step == 0 && is_error(answer) && is_condition(answer, "item-not-found")) {
        if (!gw_xmpp_config(x)->auto_create) {
            char detail[600];
            snprintf(detail, sizeof(detail),
                     "node: no node '%.200s' at %.200s; create it first (POST /v1/nodes), or run "
                     "the gateway with --auto-create",
                     cmd->node, service);
            gw_cmd_fail(cmd, 404, "Node not found", detail, "item-not-found");
            return;
        }
        char id[24];
        gw_xmpp_new_id(x, id);
        gw_xmpp_send_iq(x, gw_pubsub_create(gw_xmpp_ctx(x), id, service, cmd->node, NULL), cmd,
                        on_publish_check, 1);
        return;
    }
    if (step == 1 && is_error(answer) && !is_condition(answer, "conflict")) {
        gw_xmpp_fail_from_error(cmd, answer); /* conflict: created meanwhile, publish anyway */
        return;
    }
    /* The node exists (or disco#info could not tell, then the publish answers for itself). */
    if (!is_error(answer) || step == 1)
        node_learn(x, service, cmd->node);
    send_publish(x, cmd, 0);
}

static void on_create(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
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
    node_learn(x, gw_xmpp_service(x, cmd), node);
    finish_json(cmd, 201, json_pack("{s:s}", "node", node));
}

/* Node lists hold pubsub nodes only. Some servers list other entries beside an account's PEP
 * nodes or a server's (ejabberd: ad-hoc command trees such as "config" and "user", which carry
 * a human-readable name); entries with a name are checked one by one with disco#info and kept
 * only when the entity says it is a pubsub node. Entries without a name are nodes as listed. */
#define NODES_VERIFY_MAX 64

static int next_named(json_t *nodes, size_t from)
{
    for (size_t i = from; i < json_array_size(nodes) && i < NODES_VERIFY_MAX; i++)
        if (json_object_get(json_array_get(nodes, i), "name") != NULL)
            return (int)i;
    return -1;
}

static void on_nodes(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step);

/* A token limited to some nodes lists only those. */
static void scope_nodes(struct gw_cmd *cmd, json_t *nodes)
{
    size_t i = 0;
    while (i < json_array_size(nodes)) {
        const char *node = json_string_value(json_object_get(json_array_get(nodes, i), "node"));
        if (gw_token_allows_node(cmd->token, node))
            i++;
        else
            json_array_remove(nodes, i);
    }
}

static void verify_next(struct gw_xmpp *x, struct gw_cmd *cmd, size_t from)
{
    json_t *nodes = json_object_get(cmd->result, "nodes");
    int i = next_named(nodes, from);
    if (i < 0) {
        /* Done: drop the entries found not to be nodes (set to null). */
        json_t *kept = json_array();
        size_t k;
        json_t *e;
        json_array_foreach(nodes, k, e)
        {
            if (!json_is_null(e))
                json_array_append(kept, e);
        }
        json_t *out = json_pack("{s:o}", "nodes", kept);
        json_decref(cmd->result);
        cmd->result = NULL;
        finish_json(cmd, 200, out);
        return;
    }
    json_t *e = json_array_get(nodes, (size_t)i);
    const char *jid = json_string_value(json_object_get(e, "jid"));
    char id[24];
    gw_xmpp_new_id(x, id);
    gw_xmpp_send_iq(x,
                    gw_disco_info(gw_xmpp_ctx(x), id, jid ? jid : gw_xmpp_service(x, cmd),
                                  json_string_value(json_object_get(e, "node"))),
                    cmd, on_nodes, i + 1);
}

static int is_pubsub_node(xmpp_stanza_t *answer)
{
    xmpp_stanza_t *q = gw_stanza_child(answer, "query", GW_NS_DISCO_INFO);
    for (xmpp_stanza_t *c = q ? xmpp_stanza_get_children(q) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        const char *category = xmpp_stanza_get_attribute(c, "category");
        if (xmpp_stanza_is_tag(c) && name && strcmp(name, "identity") == 0 && category &&
            strcmp(category, "pubsub") == 0)
            return 1;
    }
    return 0;
}

static void on_nodes(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step)
{
    if (step == 0) {
        if (is_error(answer)) {
            gw_xmpp_fail_from_error(cmd, answer);
            return;
        }
        json_t *out = gw_disco_items_json(answer);
        scope_nodes(cmd, json_object_get(out, "nodes"));
        if (out == NULL || next_named(json_object_get(out, "nodes"), 0) < 0) {
            finish_json(cmd, 200, out);
            return;
        }
        cmd->result = out; /* kept while entries are checked */
        verify_next(x, cmd, 0);
        return;
    }
    /* An entity that cannot describe the entry, or describes something else, is no node. */
    json_t *nodes = json_object_get(cmd->result, "nodes");
    if (is_error(answer) || !is_pubsub_node(answer))
        json_array_set_new(nodes, (size_t)(step - 1), json_null());
    verify_next(x, cmd, (size_t)step);
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
                json_pack("{s:o, s:o}", "config", form ? gw_data_form_json(form) : json_object(),
                          "fields", form ? gw_data_form_fields(form) : json_array()));
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
    case GW_OP_PUBLISH:
        /* PEP nodes are created by publishing (XEP-0163), so they are not checked. */
        if (strchr(service, '@') != NULL || node_known(x, service, cmd->node)) {
            send_publish(x, cmd, 0);
        } else if (send_publish(x, cmd, 1) == 0) {
            gw_xmpp_send_iq(x, gw_disco_info(ctx, id, service, cmd->node), cmd, on_publish_check,
                            0);
        }
        return;
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
        /* Subscribers learn of a deletion on every server: Prosody notifies by default,
         * ejabberd only when asked. */
        if (cmd->config == NULL)
            cmd->config = json_object();
        if (cmd->config != NULL && json_object_get(cmd->config, "pubsub#notify_delete") == NULL)
            json_object_set_new(cmd->config, "pubsub#notify_delete", json_true());
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
