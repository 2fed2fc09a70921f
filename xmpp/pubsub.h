/* XEP-0060 requests and answers as stanzas: builders for every IQ the gateway sends and parsers
 * for the results and errors it gets back. Pure: nothing here touches a connection. Every
 * builder returns a new stanza the caller releases, or NULL when out of memory. */
#ifndef GW_XMPP_PUBSUB_H
#define GW_XMPP_PUBSUB_H

#include <jansson.h>
#include <strophe.h>

#define GW_NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define GW_NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define GW_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define GW_NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define GW_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define GW_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define GW_NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define GW_NS_DATA "jabber:x:data"
#define GW_NS_RSM "http://jabber.org/protocol/rsm"

/* <publish node><item id>payload</item></publish> and <publish-options> when options is a
 * non-empty object (values as for gw_pubsub_create); payload is added (not taken). */
xmpp_stanza_t *gw_pubsub_publish(xmpp_ctx_t *ctx, const char *id, const char *service,
                                 const char *node, const char *item_id, xmpp_stanza_t *payload,
                                 json_t *options);
/* The same publish as text, for a JSON payload (json_text, carried in <json/> of XEP-0335)
 * without publish-options: what serializing gw_pubsub_publish's stanza would give, without
 * building it. item_id and service may be NULL. NULL when out of memory or a value holds a
 * character XML cannot carry (the stanza path then decides). */
char *gw_pubsub_publish_text(const char *id, const char *service, const char *node,
                             const char *item_id, const char *json_text, size_t *len);
/* <items node max_items?><item id?/></items> */
xmpp_stanza_t *gw_pubsub_items(xmpp_ctx_t *ctx, const char *id, const char *service,
                               const char *node, int max_items, const char *item_id);
/* <retract node notify='true'><item id/></retract> */
xmpp_stanza_t *gw_pubsub_retract(xmpp_ctx_t *ctx, const char *id, const char *service,
                                 const char *node, const char *item_id);
/* <create node?/><configure>form?</configure>; config may be NULL. Values: string, number,
 * boolean or array of strings (multi-valued fields). */
xmpp_stanza_t *gw_pubsub_create(xmpp_ctx_t *ctx, const char *id, const char *service,
                                const char *node, json_t *config);
/* Owner <delete node><redirect uri/>?</delete>; redirect may be NULL */
xmpp_stanza_t *gw_pubsub_delete(xmpp_ctx_t *ctx, const char *id, const char *service,
                                const char *node, const char *redirect);
/* Owner <purge node/> */
xmpp_stanza_t *gw_pubsub_purge(xmpp_ctx_t *ctx, const char *id, const char *service,
                               const char *node);
/* Owner <configure node> with a submitted node_config form (values as for gw_pubsub_create) */
xmpp_stanza_t *gw_pubsub_config_set(xmpp_ctx_t *ctx, const char *id, const char *service,
                                    const char *node, json_t *config);
/* Owner <subscriptions node/> or <affiliations node/> (get) when entries is NULL; with entries
 * (an array of {"jid","subscription","subid"?} or {"jid","affiliation"}) the set. */
xmpp_stanza_t *gw_pubsub_owner_list(xmpp_ctx_t *ctx, const char *id, const char *service,
                                    const char *node, const char *what, json_t *entries);
/* {"affiliations":[{"jid","affiliation"}]} from an owner affiliations result */
json_t *gw_pubsub_affiliations_json(xmpp_stanza_t *iq);
/* Items by id list (ids: array of strings, may be NULL) and XEP-0059 paging (max > 0 adds a
 * <set/> with after/before when given). */
xmpp_stanza_t *gw_pubsub_items_ex(xmpp_ctx_t *ctx, const char *id, const char *service,
                                  const char *node, int max_items, json_t *ids, int rsm_max,
                                  const char *after, const char *before);
/* Owner <configure node/> (get) */
xmpp_stanza_t *gw_pubsub_config_get(xmpp_ctx_t *ctx, const char *id, const char *service,
                                    const char *node);
/* <subscribe node jid/> and <unsubscribe node jid/> */
xmpp_stanza_t *gw_pubsub_subscribe(xmpp_ctx_t *ctx, const char *id, const char *service,
                                   const char *node, const char *jid, int subscribe);
/* <subscriptions/>: the requester's subscriptions at service */
xmpp_stanza_t *gw_pubsub_subscriptions(xmpp_ctx_t *ctx, const char *id, const char *service);
/* {"subscriptions":[{"node","jid","subscription","subid"}]} from a subscriptions result */
json_t *gw_pubsub_subscriptions_json(xmpp_stanza_t *iq, const char *ns);

/* disco#items / disco#info query, node may be NULL */
xmpp_stanza_t *gw_disco_items(xmpp_ctx_t *ctx, const char *id, const char *service,
                              const char *node);
xmpp_stanza_t *gw_disco_info(xmpp_ctx_t *ctx, const char *id, const char *service,
                             const char *node);

/* From an error IQ: the defined condition (e.g. "item-not-found", "unknown" when absent), the
 * pubsub-specific condition or NULL, and the text or NULL. Pointers live as long as the stanza. */
struct gw_xmpp_error {
    const char *condition;
    const char *pubsub_condition;
    const char *text;
    const char *type; /* "cancel", "wait", "modify", "auth", "continue", or "" */
};
void gw_pubsub_error_parse(xmpp_stanza_t *iq, struct gw_xmpp_error *out);

/* HTTP status for an XMPP stanza error condition (502 for unknown ones). */
int gw_xmpp_condition_status(const char *condition);

/* HTTP status for an error answer, the same on every server: a retryable status (429, 503)
 * only for errors of type "wait" that are not about the request itself. A form field the
 * service refused (ejabberd answers resource-constraint "Unknown field 'x'") is 400, and its
 * name is copied into field (cap bytes; "" when none). */
int gw_xmpp_error_status(const struct gw_xmpp_error *e, char *field, size_t cap);

/* Results to JSON. Each returns a new reference, or NULL when out of memory. */
json_t *gw_pubsub_items_json(xmpp_ctx_t *ctx, xmpp_stanza_t *iq); /* {"items":[…]} */
json_t *gw_disco_items_json(xmpp_stanza_t *iq);                   /* {"nodes":[…]} */
/* XEP-0059 <set/> of an answer as {"first","last","count","first_index"} (those present), or
 * NULL when set is NULL. */
json_t *gw_rsm_page_json(xmpp_stanza_t *set);
json_t *gw_disco_info_json(xmpp_stanza_t *iq); /* {"type":…,"identities":[…],"features":[…]} */
json_t *gw_data_form_json(xmpp_stanza_t *x);   /* field var -> value, typed */
/* The form's fields as the service declares them: [{var, type, label?, desc?, options?}], in
 * its order (hidden fields and FORM_TYPE left out). */
json_t *gw_data_form_fields(xmpp_stanza_t *x);

/* Child helpers shared by the pubsub modules: first child element with name and namespace
 * (ns may be NULL for any). */
xmpp_stanza_t *gw_stanza_child(xmpp_stanza_t *parent, const char *name, const char *ns);

#endif
