/* The gateway's XMPP client session on libstrophe: connect, stay connected (reconnect with
 * capped exponential backoff), run the session inside the gateway loop, and execute commands
 * as XEP-0060 requests with per-request timeouts. Loop thread only. */
#ifndef GW_XMPP_SESSION_H
#define GW_XMPP_SESSION_H

#include "../gateway/cmd.h"
#include "../gateway/config.h"

#include <jansson.h>

struct gw_loop;
struct gw_xmpp;

/* Called for every pubsub notification message with a JSON array of event objects (see
 * xmpp/event.h); the array is borrowed for the call. */
typedef void (*gw_xmpp_event_cb)(json_t *events, void *arg);
/* Called when the session comes up (up = 1) or goes down (up = 0). */
typedef void (*gw_xmpp_state_cb)(int up, void *arg);

/* Called when a node is found to exist (created through the gateway, or seen by a publish). */
typedef void (*gw_xmpp_node_cb)(const char *service, const char *node, void *arg);

/* Creates the session (not yet connecting); cfg must outlive it. NULL on failure.
 * Free with gw_xmpp_free(). */
struct gw_xmpp *gw_xmpp_new(const struct gw_config *cfg, struct gw_loop *loop);
void gw_xmpp_free(struct gw_xmpp *x);

void gw_xmpp_set_event_cb(struct gw_xmpp *x, gw_xmpp_event_cb cb, void *arg);
void gw_xmpp_set_state_cb(struct gw_xmpp *x, gw_xmpp_state_cb cb, void *arg);

void gw_xmpp_set_node_cb(struct gw_xmpp *x, gw_xmpp_node_cb cb, void *arg);

/* 1 when the session gave up for good (authentication refused with --exit-on-auth-failure);
 * the loop was stopped. */
int gw_xmpp_fatal(const struct gw_xmpp *x);

/* Starts connecting; failures are retried in the background. */
void gw_xmpp_start(struct gw_xmpp *x);

/* Executes cmd: answers it at once when the session is down or the input is invalid, else
 * when the service answers, the request times out, or the session drops. */
void gw_xmpp_execute(struct gw_xmpp *x, struct gw_cmd *cmd);

/* Fails every pending request, closes the stream and stops reconnecting. */
void gw_xmpp_shutdown(struct gw_xmpp *x);

/* 1 while the session is established. */
int gw_xmpp_is_up(const struct gw_xmpp *x);

#endif
