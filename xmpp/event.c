/* Event message parsing. Everything here comes from the network: missing attributes and
 * unknown children are skipped, never trusted. */
#include "event.h"

#include "payload.h"
#include "pubsub.h"

#include <string.h>

static json_t *base(const char *type, const char *service, const char *node)
{
    return json_pack("{s:s, s:s, s:s}", "type", type, "service", service, "node", node);
}

static void add_items(xmpp_ctx_t *ctx, json_t *out, xmpp_stanza_t *items, const char *service)
{
    const char *node = xmpp_stanza_get_attribute(items, "node");
    if (node == NULL)
        return;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(items); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!xmpp_stanza_is_tag(c) || name == NULL)
            continue;
        json_t *ev = NULL;
        if (strcmp(name, "item") == 0) {
            json_t *item = gw_payload_item_json(ctx, c);
            ev = item ? base("item.published", service, node) : NULL;
            if (ev)
                json_object_set_new(ev, "item", item);
            else
                json_decref(item);
        } else if (strcmp(name, "retract") == 0 && xmpp_stanza_get_id(c) != NULL) {
            ev = base("item.retracted", service, node);
            if (ev)
                json_object_set_new(ev, "item", json_pack("{s:s}", "id", xmpp_stanza_get_id(c)));
        }
        if (ev != NULL)
            json_array_append_new(out, ev);
    }
}

json_t *gw_event_parse(xmpp_ctx_t *ctx, xmpp_stanza_t *message)
{
    xmpp_stanza_t *event = gw_stanza_child(message, "event", GW_NS_PUBSUB_EVENT);
    const char *from = xmpp_stanza_get_from(message);
    if (event == NULL || from == NULL)
        return NULL;
    /* Errors bounced back to us are not notifications. */
    const char *type = xmpp_stanza_get_type(message);
    if (type != NULL && strcmp(type, "error") == 0)
        return NULL;
    json_t *out = json_array();
    if (out == NULL)
        return NULL;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(event); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!xmpp_stanza_is_tag(c) || name == NULL)
            continue;
        const char *node = xmpp_stanza_get_attribute(c, "node");
        json_t *ev = NULL;
        if (strcmp(name, "items") == 0) {
            add_items(ctx, out, c, from);
        } else if (node == NULL) {
            continue;
        } else if (strcmp(name, "purge") == 0) {
            ev = base("node.purged", from, node);
        } else if (strcmp(name, "delete") == 0) {
            ev = base("node.deleted", from, node);
            xmpp_stanza_t *redirect = gw_stanza_child(c, "redirect", NULL);
            const char *uri = redirect ? xmpp_stanza_get_attribute(redirect, "uri") : NULL;
            if (ev && uri)
                json_object_set_new(ev, "redirect", json_string(uri));
        } else if (strcmp(name, "subscription") == 0) {
            ev = base("subscription.changed", from, node);
            json_t *st = json_object();
            const char *attrs[] = {"jid", "subscription", "subid", "expiry"};
            for (size_t i = 0; ev && st && i < sizeof(attrs) / sizeof(attrs[0]); i++) {
                const char *v = xmpp_stanza_get_attribute(c, attrs[i]);
                if (v)
                    json_object_set_new(st, attrs[i], json_string(v));
            }
            if (ev && st)
                json_object_set_new(ev, "xmpp_subscription", st);
            else
                json_decref(st);
        } else if (strcmp(name, "configuration") == 0) {
            ev = base("node.configured", from, node);
            xmpp_stanza_t *x = gw_stanza_child(c, "x", GW_NS_DATA);
            if (ev && x)
                json_object_set_new(ev, "config", gw_data_form_json(x));
        }
        if (ev != NULL)
            json_array_append_new(out, ev);
    }
    return out;
}
