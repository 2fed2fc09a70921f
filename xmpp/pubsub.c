/* XEP-0060 stanza building and parsing. Attribute values and text go through libstrophe's
 * setters, which escape on serialization; the one exception is the publish of a JSON item,
 * the hot path, written as text by gw_pubsub_publish_text with its own escaping (checked
 * against libstrophe's parser by the fuzz target fuzz_publish). */
#include "pubsub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gateway/textbuf.h"
#include "payload.h"

/* Adds a new child element; the parent holds the only reference afterwards. */
static xmpp_stanza_t *add(xmpp_stanza_t *parent, const char *name, const char *ns)
{
    xmpp_stanza_t *el = xmpp_stanza_new(xmpp_stanza_get_context(parent));
    if (el == NULL)
        return NULL;
    xmpp_stanza_set_name(el, name);
    if (ns != NULL)
        xmpp_stanza_set_ns(el, ns);
    if (xmpp_stanza_add_child(parent, el) != XMPP_EOK) {
        xmpp_stanza_release(el);
        return NULL;
    }
    xmpp_stanza_release(el);
    return el;
}

static int add_text(xmpp_stanza_t *parent, const char *text)
{
    xmpp_stanza_t *t = xmpp_stanza_new(xmpp_stanza_get_context(parent));
    if (t == NULL)
        return -1;
    int rc =
        xmpp_stanza_set_text(t, text) == XMPP_EOK && xmpp_stanza_add_child(parent, t) == XMPP_EOK;
    xmpp_stanza_release(t);
    return rc ? 0 : -1;
}

/* <iq type to id><NAME xmlns=NS/></iq>; *inner receives the query element. */
static xmpp_stanza_t *iq_with(xmpp_ctx_t *ctx, const char *type, const char *id,
                              const char *service, const char *name, const char *ns,
                              xmpp_stanza_t **inner)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, type, id);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_set_to(iq, service);
    *inner = add(iq, name, ns);
    if (*inner == NULL) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

static int add_form(xmpp_stanza_t *parent, const char *form_type, json_t *fields);

xmpp_stanza_t *gw_pubsub_publish(xmpp_ctx_t *ctx, const char *id, const char *service,
                                 const char *node, const char *item_id, xmpp_stanza_t *payload,
                                 json_t *options)
{
    xmpp_stanza_t *ps;
    xmpp_stanza_t *iq = iq_with(ctx, "set", id, service, "pubsub", GW_NS_PUBSUB, &ps);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_t *publish = add(ps, "publish", NULL);
    xmpp_stanza_t *item = publish ? add(publish, "item", NULL) : NULL;
    if (item == NULL || xmpp_stanza_add_child(item, payload) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    xmpp_stanza_set_attribute(publish, "node", node);
    if (item_id != NULL)
        xmpp_stanza_set_id(item, item_id);
    if (options != NULL && json_object_size(options) > 0) {
        xmpp_stanza_t *po = add(ps, "publish-options", NULL);
        if (po == NULL ||
            add_form(po, "http://jabber.org/protocol/pubsub#publish-options", options) != 0) {
            xmpp_stanza_release(iq);
            return NULL;
        }
    }
    return iq;
}

/* s as XML character data or a double-quoted attribute value: & < > " escaped. Control
 * characters are refused (an attribute value cannot hold any: XML would normalise tab and
 * newline to spaces; text keeps tab, newline and carriage return, as &#13; for the last, which
 * a parser would otherwise turn into a newline). U+FFFE and U+FFFF, which XML cannot hold at
 * all, are refused too, or in JSON text written as the JSON escapes meaning the same (see
 * gw_json_nonchar_escape). */
static void put_escaped(struct gw_textbuf *t, const char *s, int attribute, int json)
{
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        const char *rep = NULL, *esc = gw_json_nonchar_escape(p);
        if (esc != NULL) {
            if (!json) {
                t->failed = 1;
                return;
            }
            gw_textbuf_put_n(t, run, (size_t)((const char *)p - run));
            gw_textbuf_put(t, esc);
            p += 2;
            run = (const char *)p + 1;
            continue;
        }
        switch (*p) {
        case '\0':
            gw_textbuf_put_n(t, run, (size_t)((const char *)p - run));
            return;
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\r':
            rep = "&#13;";
            break;
        default:
            if (*p < 0x20 && (attribute || (*p != '\t' && *p != '\n'))) {
                t->failed = 1;
                return;
            }
            continue;
        }
        if (attribute && *p == '\r') {
            t->failed = 1;
            return;
        }
        gw_textbuf_put_n(t, run, (size_t)((const char *)p - run));
        gw_textbuf_put(t, rep);
        run = (const char *)p + 1;
    }
}

char *gw_pubsub_publish_text(const char *id, const char *service, const char *node,
                             const char *item_id, const char *json_text, size_t *len)
{
    struct gw_textbuf t = {0};
    gw_textbuf_put(&t, "<iq type=\"set\" id=\"");
    put_escaped(&t, id, 1, 0);
    if (service != NULL) {
        gw_textbuf_put(&t, "\" to=\"");
        put_escaped(&t, service, 1, 0);
    }
    gw_textbuf_put(&t, "\"><pubsub xmlns=\"" GW_NS_PUBSUB "\"><publish node=\"");
    put_escaped(&t, node, 1, 0);
    gw_textbuf_put(&t, "\"><item");
    if (item_id != NULL) {
        gw_textbuf_put(&t, " id=\"");
        put_escaped(&t, item_id, 1, 0);
        gw_textbuf_put(&t, "\"");
    }
    gw_textbuf_put(&t, "><json xmlns=\"" GW_JSON_NS "\">");
    put_escaped(&t, json_text, 0, 1);
    gw_textbuf_put(&t, "</json></item></publish></pubsub></iq>");
    if (t.failed) {
        free(t.p);
        return NULL;
    }
    *len = t.len;
    return t.p;
}

xmpp_stanza_t *gw_pubsub_items(xmpp_ctx_t *ctx, const char *id, const char *service,
                               const char *node, int max_items, const char *item_id)
{
    xmpp_stanza_t *ps;
    xmpp_stanza_t *iq = iq_with(ctx, "get", id, service, "pubsub", GW_NS_PUBSUB, &ps);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_t *items = add(ps, "items", NULL);
    if (items == NULL)
        goto fail;
    xmpp_stanza_set_attribute(items, "node", node);
    if (max_items > 0) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", max_items);
        xmpp_stanza_set_attribute(items, "max_items", buf);
    }
    if (item_id != NULL) {
        xmpp_stanza_t *item = add(items, "item", NULL);
        if (item == NULL)
            goto fail;
        xmpp_stanza_set_id(item, item_id);
    }
    return iq;
fail:
    xmpp_stanza_release(iq);
    return NULL;
}

xmpp_stanza_t *gw_pubsub_retract(xmpp_ctx_t *ctx, const char *id, const char *service,
                                 const char *node, const char *item_id)
{
    xmpp_stanza_t *ps;
    xmpp_stanza_t *iq = iq_with(ctx, "set", id, service, "pubsub", GW_NS_PUBSUB, &ps);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_t *retract = add(ps, "retract", NULL);
    xmpp_stanza_t *item = retract ? add(retract, "item", NULL) : NULL;
    if (item == NULL) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    xmpp_stanza_set_attribute(retract, "node", node);
    xmpp_stanza_set_attribute(retract, "notify", "true");
    xmpp_stanza_set_id(item, item_id);
    return iq;
}

static int add_value(xmpp_stanza_t *field, json_t *v)
{
    char buf[64];
    const char *text = buf;
    if (json_is_string(v))
        text = json_string_value(v);
    else if (json_is_true(v))
        text = "1";
    else if (json_is_false(v))
        text = "0";
    else if (json_is_integer(v))
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
    else
        return -1;
    xmpp_stanza_t *value = add(field, "value", NULL);
    return value ? add_text(value, text) : -1;
}

/* A submit form of type FORM_TYPE with the given fields. */
static int add_form(xmpp_stanza_t *parent, const char *form_type, json_t *fields)
{
    xmpp_stanza_t *x = add(parent, "x", GW_NS_DATA);
    if (x == NULL)
        return -1;
    xmpp_stanza_set_type(x, "submit");
    xmpp_stanza_t *ft = add(x, "field", NULL);
    if (ft == NULL)
        return -1;
    xmpp_stanza_set_attribute(ft, "var", "FORM_TYPE");
    xmpp_stanza_set_type(ft, "hidden");
    json_t *ftv = json_string(form_type);
    int ftrc = ftv ? add_value(ft, ftv) : -1;
    json_decref(ftv);
    if (ftrc != 0)
        return -1;
    const char *key;
    json_t *value;
    json_object_foreach(fields, key, value)
    {
        xmpp_stanza_t *f = add(x, "field", NULL);
        if (f == NULL)
            return -1;
        xmpp_stanza_set_attribute(f, "var", key);
        if (json_is_array(value)) {
            size_t i;
            json_t *v;
            json_array_foreach(value, i, v)
            {
                if (add_value(f, v) != 0)
                    return -1;
            }
        } else if (add_value(f, value) != 0) {
            return -1;
        }
    }
    return 0;
}

xmpp_stanza_t *gw_pubsub_create(xmpp_ctx_t *ctx, const char *id, const char *service,
                                const char *node, json_t *config)
{
    xmpp_stanza_t *ps;
    xmpp_stanza_t *iq = iq_with(ctx, "set", id, service, "pubsub", GW_NS_PUBSUB, &ps);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_t *create = add(ps, "create", NULL);
    if (create == NULL)
        goto fail;
    if (node != NULL)
        xmpp_stanza_set_attribute(create, "node", node);
    if (config != NULL && json_object_size(config) > 0) {
        xmpp_stanza_t *configure = add(ps, "configure", NULL);
        if (configure == NULL ||
            add_form(configure, "http://jabber.org/protocol/pubsub#node_config", config) != 0)
            goto fail;
    }
    return iq;
fail:
    xmpp_stanza_release(iq);
    return NULL;
}

static xmpp_stanza_t *owner_node_op(xmpp_ctx_t *ctx, const char *type, const char *id,
                                    const char *service, const char *op, const char *node)
{
    xmpp_stanza_t *ps;
    xmpp_stanza_t *iq = iq_with(ctx, type, id, service, "pubsub", GW_NS_PUBSUB_OWNER, &ps);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_t *el = add(ps, op, NULL);
    if (el == NULL) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    xmpp_stanza_set_attribute(el, "node", node);
    return iq;
}

/* The owner element of an owner request built by owner_node_op. */
static xmpp_stanza_t *owner_el(xmpp_stanza_t *iq, const char *name)
{
    return gw_stanza_child(gw_stanza_child(iq, "pubsub", GW_NS_PUBSUB_OWNER), name, NULL);
}

xmpp_stanza_t *gw_pubsub_delete(xmpp_ctx_t *ctx, const char *id, const char *service,
                                const char *node, const char *redirect)
{
    xmpp_stanza_t *iq = owner_node_op(ctx, "set", id, service, "delete", node);
    if (iq != NULL && redirect != NULL) {
        xmpp_stanza_t *r = add(owner_el(iq, "delete"), "redirect", NULL);
        if (r == NULL) {
            xmpp_stanza_release(iq);
            return NULL;
        }
        xmpp_stanza_set_attribute(r, "uri", redirect);
    }
    return iq;
}

xmpp_stanza_t *gw_pubsub_purge(xmpp_ctx_t *ctx, const char *id, const char *service,
                               const char *node)
{
    return owner_node_op(ctx, "set", id, service, "purge", node);
}

xmpp_stanza_t *gw_pubsub_config_set(xmpp_ctx_t *ctx, const char *id, const char *service,
                                    const char *node, json_t *config)
{
    xmpp_stanza_t *iq = owner_node_op(ctx, "set", id, service, "configure", node);
    if (iq != NULL && add_form(owner_el(iq, "configure"),
                               "http://jabber.org/protocol/pubsub#node_config", config) != 0) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *gw_pubsub_owner_list(xmpp_ctx_t *ctx, const char *id, const char *service,
                                    const char *node, const char *what, json_t *entries)
{
    xmpp_stanza_t *iq = owner_node_op(ctx, entries ? "set" : "get", id, service, what, node);
    if (iq == NULL || entries == NULL)
        return iq;
    int subs = strcmp(what, "subscriptions") == 0;
    xmpp_stanza_t *list = owner_el(iq, what);
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        xmpp_stanza_t *el = add(list, subs ? "subscription" : "affiliation", NULL);
        if (el == NULL) {
            xmpp_stanza_release(iq);
            return NULL;
        }
        const char *attrs[] = {"jid", subs ? "subscription" : "affiliation", "subid"};
        for (size_t k = 0; k < 3; k++) {
            const char *v = json_string_value(json_object_get(e, attrs[k]));
            if (v != NULL)
                xmpp_stanza_set_attribute(el, attrs[k], v);
        }
    }
    return iq;
}

json_t *gw_pubsub_affiliations_json(xmpp_stanza_t *iq)
{
    json_t *list = json_array();
    json_t *out = json_pack("{s:o}", "affiliations", list);
    if (out == NULL)
        return NULL;
    xmpp_stanza_t *affs = owner_el(iq, "affiliations");
    for (xmpp_stanza_t *c = affs ? xmpp_stanza_get_children(affs) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        const char *jid = xmpp_stanza_get_attribute(c, "jid");
        const char *aff = xmpp_stanza_get_attribute(c, "affiliation");
        if (!xmpp_stanza_is_tag(c) || name == NULL || strcmp(name, "affiliation") != 0 || !jid ||
            !aff)
            continue;
        json_array_append_new(list, json_pack("{s:s, s:s}", "jid", jid, "affiliation", aff));
    }
    return out;
}

static int add_text_child(xmpp_stanza_t *parent, const char *name, const char *text)
{
    xmpp_stanza_t *el = add(parent, name, NULL);
    return el ? add_text(el, text) : -1;
}

xmpp_stanza_t *gw_pubsub_items_ex(xmpp_ctx_t *ctx, const char *id, const char *service,
                                  const char *node, int max_items, json_t *ids, int rsm_max,
                                  const char *after, const char *before)
{
    xmpp_stanza_t *iq = gw_pubsub_items(ctx, id, service, node, max_items, NULL);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_t *ps = gw_stanza_child(iq, "pubsub", GW_NS_PUBSUB);
    xmpp_stanza_t *items = gw_stanza_child(ps, "items", NULL);
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v)
    {
        xmpp_stanza_t *item = add(items, "item", NULL);
        if (item == NULL)
            goto fail;
        xmpp_stanza_set_id(item, json_string_value(v));
    }
    if (rsm_max > 0) {
        xmpp_stanza_t *set = add(ps, "set", GW_NS_RSM);
        char buf[16];
        snprintf(buf, sizeof(buf), "%d", rsm_max);
        if (set == NULL || add_text_child(set, "max", buf) != 0 ||
            (after && add_text_child(set, "after", after) != 0) ||
            (before && add_text_child(set, "before", before) != 0))
            goto fail;
    }
    return iq;
fail:
    xmpp_stanza_release(iq);
    return NULL;
}

xmpp_stanza_t *gw_pubsub_config_get(xmpp_ctx_t *ctx, const char *id, const char *service,
                                    const char *node)
{
    return owner_node_op(ctx, "get", id, service, "configure", node);
}

xmpp_stanza_t *gw_pubsub_subscribe(xmpp_ctx_t *ctx, const char *id, const char *service,
                                   const char *node, const char *jid, int subscribe)
{
    xmpp_stanza_t *ps;
    xmpp_stanza_t *iq = iq_with(ctx, "set", id, service, "pubsub", GW_NS_PUBSUB, &ps);
    if (iq == NULL)
        return NULL;
    xmpp_stanza_t *el = add(ps, subscribe ? "subscribe" : "unsubscribe", NULL);
    if (el == NULL) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    xmpp_stanza_set_attribute(el, "node", node);
    xmpp_stanza_set_attribute(el, "jid", jid);
    return iq;
}

xmpp_stanza_t *gw_pubsub_subscriptions(xmpp_ctx_t *ctx, const char *id, const char *service)
{
    xmpp_stanza_t *ps;
    xmpp_stanza_t *iq = iq_with(ctx, "get", id, service, "pubsub", GW_NS_PUBSUB, &ps);
    if (iq != NULL && add(ps, "subscriptions", NULL) == NULL) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

json_t *gw_pubsub_subscriptions_json(xmpp_stanza_t *iq, const char *ns)
{
    json_t *list = json_array();
    json_t *out = json_pack("{s:o}", "subscriptions", list);
    if (out == NULL)
        return NULL;
    xmpp_stanza_t *subs = gw_stanza_child(gw_stanza_child(iq, "pubsub", ns), "subscriptions", NULL);
    const char *parent_node = subs ? xmpp_stanza_get_attribute(subs, "node") : NULL;
    for (xmpp_stanza_t *c = subs ? xmpp_stanza_get_children(subs) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!xmpp_stanza_is_tag(c) || name == NULL || strcmp(name, "subscription") != 0)
            continue;
        json_t *e = json_object();
        if (e == NULL)
            continue;
        const char *node = xmpp_stanza_get_attribute(c, "node");
        if (node == NULL)
            node = parent_node;
        if (node)
            json_object_set_new(e, "node", json_string(node));
        const char *attrs[] = {"jid", "subscription", "subid", "expiry"};
        for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
            const char *v = xmpp_stanza_get_attribute(c, attrs[i]);
            if (v)
                json_object_set_new(e, attrs[i], json_string(v));
        }
        json_array_append_new(list, e);
    }
    return out;
}

static xmpp_stanza_t *disco(xmpp_ctx_t *ctx, const char *id, const char *service, const char *node,
                            const char *ns)
{
    xmpp_stanza_t *q;
    xmpp_stanza_t *iq = iq_with(ctx, "get", id, service, "query", ns, &q);
    if (iq != NULL && node != NULL)
        xmpp_stanza_set_attribute(q, "node", node);
    return iq;
}

xmpp_stanza_t *gw_disco_items(xmpp_ctx_t *ctx, const char *id, const char *service,
                              const char *node)
{
    return disco(ctx, id, service, node, GW_NS_DISCO_ITEMS);
}

xmpp_stanza_t *gw_disco_info(xmpp_ctx_t *ctx, const char *id, const char *service, const char *node)
{
    return disco(ctx, id, service, node, GW_NS_DISCO_INFO);
}

xmpp_stanza_t *gw_stanza_child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
    if (parent == NULL)
        return NULL;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(parent); c; c = xmpp_stanza_get_next(c)) {
        if (!xmpp_stanza_is_tag(c))
            continue;
        const char *n = xmpp_stanza_get_name(c);
        const char *cns = xmpp_stanza_get_ns(c);
        if (n && strcmp(n, name) == 0 && (ns == NULL || (cns && strcmp(cns, ns) == 0)))
            return c;
    }
    return NULL;
}

void gw_pubsub_error_parse(xmpp_stanza_t *iq, struct gw_xmpp_error *out)
{
    out->condition = "undefined-condition";
    out->pubsub_condition = NULL;
    out->text = NULL;
    out->type = "";
    xmpp_stanza_t *error = gw_stanza_child(iq, "error", NULL);
    if (error == NULL)
        return;
    if (xmpp_stanza_get_type(error) != NULL)
        out->type = xmpp_stanza_get_type(error);
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(error); c; c = xmpp_stanza_get_next(c)) {
        if (!xmpp_stanza_is_tag(c))
            continue;
        const char *name = xmpp_stanza_get_name(c), *ns = xmpp_stanza_get_ns(c);
        if (name == NULL || ns == NULL)
            continue;
        if (strcmp(ns, GW_NS_STANZAS) == 0) {
            if (strcmp(name, "text") == 0) {
                xmpp_stanza_t *t = xmpp_stanza_get_children(c);
                if (t && xmpp_stanza_is_text(t))
                    out->text = xmpp_stanza_get_text_ptr(t);
            } else {
                out->condition = name;
            }
        } else if (strcmp(ns, GW_NS_PUBSUB_ERRORS) == 0) {
            out->pubsub_condition = name;
        }
    }
}

int gw_xmpp_condition_status(const char *condition)
{
    static const struct {
        const char *condition;
        int status;
    } map[] = {
        {"bad-request", 400},
        {"jid-malformed", 400},
        {"not-authorized", 403},
        {"forbidden", 403},
        {"registration-required", 403},
        {"subscription-required", 403},
        {"payment-required", 402},
        {"item-not-found", 404},
        {"recipient-unavailable", 404},
        {"not-allowed", 405},
        {"conflict", 409},
        {"gone", 410},
        {"not-acceptable", 422},
        {"policy-violation", 422},
        {"resource-constraint", 429},
        {"internal-server-error", 502},
        {"remote-server-not-found", 502},
        {"redirect", 502},
        {"undefined-condition", 502},
        {"unexpected-request", 502},
        {"feature-not-implemented", 501},
        {"service-unavailable", 503},
        {"remote-server-timeout", 504},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].condition, condition) == 0)
            return map[i].status;
    return 502;
}

/* The field a refusal names: "... field 'NAME' ..." (ejabberd's wording for unknown fields and
 * bad values). */
static int field_named(const char *text, char *field, size_t cap)
{
    const char *p = text ? strstr(text, "field '") : NULL;
    if (p == NULL)
        return 0;
    p += 7;
    const char *end = strchr(p, '\'');
    if (end == NULL || end == p || (size_t)(end - p) >= cap)
        return 0;
    memcpy(field, p, (size_t)(end - p));
    field[end - p] = '\0';
    return 1;
}

int gw_xmpp_error_status(const struct gw_xmpp_error *e, char *field, size_t cap)
{
    if (cap > 0)
        field[0] = '\0';
    if (field_named(e->text, field, cap))
        return 400;
    int status = gw_xmpp_condition_status(e->condition);
    int wait = strcmp(e->type, "wait") == 0;
    if (status == 429 && !wait)
        return 400; /* resource-constraint the request cannot overcome by waiting */
    if (status == 503 && !wait && e->type[0] != '\0')
        return 502; /* service-unavailable for good: the entity does not offer it */
    return status;
}

json_t *gw_pubsub_items_json(xmpp_ctx_t *ctx, xmpp_stanza_t *iq)
{
    json_t *list = json_array();
    json_t *out = json_object();
    if (list == NULL || out == NULL) {
        json_decref(list);
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out, "items", list);
    xmpp_stanza_t *ps = gw_stanza_child(iq, "pubsub", GW_NS_PUBSUB);
    json_t *page = gw_rsm_page_json(gw_stanza_child(ps, "set", GW_NS_RSM));
    if (page != NULL)
        json_object_set_new(out, "page", page);
    xmpp_stanza_t *items = gw_stanza_child(ps, "items", NULL);
    if (items == NULL)
        return out;
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(items); c; c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!xmpp_stanza_is_tag(c) || name == NULL || strcmp(name, "item") != 0)
            continue;
        json_t *item = gw_payload_item_json(ctx, c);
        if (item != NULL)
            json_array_append_new(list, item);
    }
    return out;
}

static const char *child_text(xmpp_stanza_t *parent, const char *name)
{
    xmpp_stanza_t *el = gw_stanza_child(parent, name, NULL);
    xmpp_stanza_t *t = el ? xmpp_stanza_get_children(el) : NULL;
    return t && xmpp_stanza_is_text(t) ? xmpp_stanza_get_text_ptr(t) : NULL;
}

json_t *gw_rsm_page_json(xmpp_stanza_t *set)
{
    if (set == NULL)
        return NULL;
    json_t *page = json_object();
    if (page == NULL)
        return NULL;
    const char *first = child_text(set, "first");
    const char *last = child_text(set, "last");
    const char *count = child_text(set, "count");
    if (first != NULL)
        json_object_set_new(page, "first", json_string(first));
    if (last != NULL)
        json_object_set_new(page, "last", json_string(last));
    char *end = NULL;
    long long n = count ? strtoll(count, &end, 10) : -1;
    if (count != NULL && end != count && *end == '\0' && n >= 0)
        json_object_set_new(page, "count", json_integer(n));
    xmpp_stanza_t *fe = gw_stanza_child(set, "first", NULL);
    const char *index = fe ? xmpp_stanza_get_attribute(fe, "index") : NULL;
    n = index ? strtoll(index, &end, 10) : -1;
    if (index != NULL && end != index && *end == '\0' && n >= 0)
        json_object_set_new(page, "first_index", json_integer(n));
    return page;
}

json_t *gw_disco_items_json(xmpp_stanza_t *iq)
{
    json_t *list = json_array();
    json_t *out = json_object();
    if (list == NULL || out == NULL) {
        json_decref(list);
        json_decref(out);
        return NULL;
    }
    json_object_set_new(out, "nodes", list);
    xmpp_stanza_t *q = gw_stanza_child(iq, "query", GW_NS_DISCO_ITEMS);
    for (xmpp_stanza_t *c = q ? xmpp_stanza_get_children(q) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!xmpp_stanza_is_tag(c) || name == NULL || strcmp(name, "item") != 0)
            continue;
        const char *node = xmpp_stanza_get_attribute(c, "node");
        if (node == NULL)
            continue;
        json_t *entry = json_object();
        if (entry == NULL)
            continue;
        json_object_set_new(entry, "node", json_string(node));
        const char *n = xmpp_stanza_get_attribute(c, "name");
        if (n != NULL)
            json_object_set_new(entry, "name", json_string(n));
        const char *jid = xmpp_stanza_get_attribute(c, "jid");
        if (jid != NULL)
            json_object_set_new(entry, "jid", json_string(jid));
        json_array_append_new(list, entry);
    }
    return out;
}

json_t *gw_disco_info_json(xmpp_stanza_t *iq)
{
    json_t *out = json_object();
    json_t *identities = json_array();
    json_t *features = json_array();
    if (out == NULL || identities == NULL || features == NULL) {
        json_decref(out);
        json_decref(identities);
        json_decref(features);
        return NULL;
    }
    json_object_set_new(out, "identities", identities);
    json_object_set_new(out, "features", features);
    xmpp_stanza_t *q = gw_stanza_child(iq, "query", GW_NS_DISCO_INFO);
    for (xmpp_stanza_t *c = q ? xmpp_stanza_get_children(q) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *name = xmpp_stanza_get_name(c);
        if (!xmpp_stanza_is_tag(c) || name == NULL)
            continue;
        if (strcmp(name, "identity") == 0) {
            const char *category = xmpp_stanza_get_attribute(c, "category");
            const char *type = xmpp_stanza_get_attribute(c, "type");
            json_t *id = json_object();
            if (id == NULL)
                continue;
            if (category)
                json_object_set_new(id, "category", json_string(category));
            if (type)
                json_object_set_new(id, "type", json_string(type));
            const char *iname = xmpp_stanza_get_attribute(c, "name");
            if (iname)
                json_object_set_new(id, "name", json_string(iname));
            json_array_append_new(identities, id);
            if (category && type && strcmp(category, "pubsub") == 0 &&
                (strcmp(type, "leaf") == 0 || strcmp(type, "collection") == 0))
                json_object_set_new(out, "type", json_string(type));
        } else if (strcmp(name, "feature") == 0) {
            const char *var = xmpp_stanza_get_attribute(c, "var");
            if (var)
                json_array_append_new(features, json_string(var));
        } else if (strcmp(name, "x") == 0 && json_object_get(out, "meta") == NULL) {
            json_t *meta = gw_data_form_json(c);
            if (meta)
                json_object_set_new(out, "meta", meta);
        }
    }
    return out;
}

static int is_multi(const char *type)
{
    return type && (strcmp(type, "list-multi") == 0 || strcmp(type, "jid-multi") == 0 ||
                    strcmp(type, "text-multi") == 0);
}

json_t *gw_data_form_fields(xmpp_stanza_t *x)
{
    json_t *out = json_array();
    for (xmpp_stanza_t *f = xmpp_stanza_get_children(x); f && out; f = xmpp_stanza_get_next(f)) {
        const char *name = xmpp_stanza_get_name(f);
        if (!xmpp_stanza_is_tag(f) || name == NULL || strcmp(name, "field") != 0)
            continue;
        const char *var = xmpp_stanza_get_attribute(f, "var");
        const char *type = xmpp_stanza_get_type(f);
        if (var == NULL || strcmp(var, "FORM_TYPE") == 0 || (type && strcmp(type, "hidden") == 0))
            continue;
        json_t *field = json_pack("{s:s, s:s}", "var", var, "type", type ? type : "text-single");
        const char *label = xmpp_stanza_get_attribute(f, "label");
        const char *desc = child_text(f, "desc");
        if (field != NULL && label != NULL)
            json_object_set_new(field, "label", json_string(label));
        if (field != NULL && desc != NULL)
            json_object_set_new(field, "desc", json_string(desc));
        json_t *options = json_array();
        for (xmpp_stanza_t *o = xmpp_stanza_get_children(f); o && options;
             o = xmpp_stanza_get_next(o)) {
            const char *on = xmpp_stanza_get_name(o);
            const char *value = xmpp_stanza_is_tag(o) && on && strcmp(on, "option") == 0
                                    ? child_text(o, "value")
                                    : NULL;
            if (value == NULL)
                continue;
            json_t *opt = json_pack("{s:s}", "value", value);
            const char *olabel = xmpp_stanza_get_attribute(o, "label");
            if (opt != NULL && olabel != NULL)
                json_object_set_new(opt, "label", json_string(olabel));
            json_array_append_new(options, opt);
        }
        if (field != NULL && json_array_size(options) > 0)
            json_object_set(field, "options", options);
        json_decref(options);
        if (field != NULL)
            json_array_append_new(out, field);
    }
    return out;
}

json_t *gw_data_form_json(xmpp_stanza_t *x)
{
    json_t *out = json_object();
    if (out == NULL)
        return NULL;
    for (xmpp_stanza_t *f = xmpp_stanza_get_children(x); f; f = xmpp_stanza_get_next(f)) {
        const char *name = xmpp_stanza_get_name(f);
        if (!xmpp_stanza_is_tag(f) || name == NULL || strcmp(name, "field") != 0)
            continue;
        const char *var = xmpp_stanza_get_attribute(f, "var");
        const char *type = xmpp_stanza_get_type(f);
        if (var == NULL || strcmp(var, "FORM_TYPE") == 0)
            continue;
        json_t *values = json_array();
        if (values == NULL)
            continue;
        for (xmpp_stanza_t *v = xmpp_stanza_get_children(f); v; v = xmpp_stanza_get_next(v)) {
            const char *vn = xmpp_stanza_get_name(v);
            if (!xmpp_stanza_is_tag(v) || vn == NULL || strcmp(vn, "value") != 0)
                continue;
            xmpp_stanza_t *t = xmpp_stanza_get_children(v);
            const char *text = (t && xmpp_stanza_is_text(t)) ? xmpp_stanza_get_text_ptr(t) : "";
            json_array_append_new(values, json_string(text ? text : ""));
        }
        json_t *value;
        if (is_multi(type)) {
            value = values;
        } else {
            json_t *first = json_array_get(values, 0);
            const char *s = first ? json_string_value(first) : NULL;
            if (type && strcmp(type, "boolean") == 0)
                value = json_boolean(s && (strcmp(s, "1") == 0 || strcmp(s, "true") == 0));
            else /* a field sent without <value/> is empty, as on servers that send one */
                value = json_string(s ? s : "");
            json_decref(values);
        }
        json_object_set_new(out, var, value);
    }
    return out;
}
