/* What the request modules of xmpp/ need from the session: sending an IQ whose answer is routed
 * back to a callback, with the timeout and disconnect handling done by the session. */
#ifndef GW_XMPP_SESSION_INT_H
#define GW_XMPP_SESSION_INT_H

#include "session.h"

#include <strophe.h>

struct gw_iq;

/* Runs with the answer (type result or error). The callback finishes cmd or sends the next IQ. */
typedef void (*gw_iq_cb)(struct gw_xmpp *x, struct gw_cmd *cmd, xmpp_stanza_t *answer, int step);

xmpp_ctx_t *gw_xmpp_ctx(struct gw_xmpp *x);
const char *gw_xmpp_service(struct gw_xmpp *x, const struct gw_cmd *cmd);
/* The gateway's bare JID (subscriptions are made for it). */
const char *gw_xmpp_bare_jid(struct gw_xmpp *x);

/* Writes a fresh IQ id into buf (at least 24 bytes). */
void gw_xmpp_new_id(struct gw_xmpp *x, char *buf);

/* Sends iq (whose id came from gw_xmpp_new_id; released here) and routes its answer to cb.
 * When the answer does not come in time or the session drops, cmd is failed with 504 or 503.
 * A NULL iq (out of memory) fails cmd with 500. */
void gw_xmpp_send_iq(struct gw_xmpp *x, xmpp_stanza_t *iq, struct gw_cmd *cmd, gw_iq_cb cb,
                     int step);
/* The same for an IQ already written as text (len bytes, freed here; NULL: out of memory),
 * whose id and to (may be NULL) are given. */
void gw_xmpp_send_iq_text(struct gw_xmpp *x, char *text, size_t len, const char *id,
                          const char *to, struct gw_cmd *cmd, gw_iq_cb cb, int step);

/* The nodes known to exist, keyed "service NUL node" (see ops.c). */
struct gw_hmap *gw_xmpp_known_nodes(struct gw_xmpp *x);
/* The node no longer exists (deleted, or not found). */
void gw_xmpp_node_forget(struct gw_xmpp *x, const char *service, const char *node);
const struct gw_config *gw_xmpp_config(struct gw_xmpp *x);
/* Reports a node found to exist to the node callback. */
void gw_xmpp_node_appeared(struct gw_xmpp *x, const char *service, const char *node);

/* Finishes cmd with the problem that an error IQ describes. */
void gw_xmpp_fail_from_error(struct gw_cmd *cmd, xmpp_stanza_t *answer);

#endif
