/* Pubsub notifications (XEP-0060 §7 and §8 event messages) to event objects, the JSON that
 * webhooks and streams deliver. Pure: no connection involved. */
#ifndef GW_XMPP_EVENT_H
#define GW_XMPP_EVENT_H

#include <jansson.h>
#include <strophe.h>

/* Parses a <message/>. Returns a new JSON array of events, one per published item, retraction,
 * purge, deletion, subscription change or configuration change, each
 *   {"type": "item.published"|"item.retracted"|"node.purged"|"node.deleted"|
 *            "subscription.changed"|"node.configured",
 *    "service": FROM, "node": NODE, "item": {…}?, …}
 * or NULL when the message carries no pubsub event (or is malformed). Caller decrefs. */
json_t *gw_event_parse(xmpp_ctx_t *ctx, xmpp_stanza_t *message);

#endif
