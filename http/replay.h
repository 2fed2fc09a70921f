/* Replay protection for signed inbound hooks: the signatures accepted within a window, each
 * with the delivery id it came with. A captured request sent again under another delivery id
 * (or without one) is a replay; the same delivery id again is the sender's own redelivery.
 * Bounded in time and in entries; thread-safe (HTTP may run on threads of its own). */
#ifndef GW_HTTP_REPLAY_H
#define GW_HTTP_REPLAY_H

#include <stddef.h>
#include <stdint.h>

struct gw_replay;

/* window_ms: how long a signature is remembered; max: entries kept (the oldest go first).
 * NULL when out of memory. Free with gw_replay_free(). */
struct gw_replay *gw_replay_new(int64_t window_ms, size_t max);
void gw_replay_free(struct gw_replay *rp);

/* Records that node accepted a body signed sig under delivery_id (NULL: none) at now_ms.
 * Returns 1 when it is a replay (seen within the window under another or no delivery id; not
 * recorded again), 0 when accepted. */
int gw_replay_check(struct gw_replay *rp, const char *node, const char *sig,
                    const char *delivery_id, int64_t now_ms);

/* Forgets node's signature sig (its request failed on our side, e.g. XMPP down: the sender's
 * retry is not a replay). */
void gw_replay_forget(struct gw_replay *rp, const char *node, const char *sig);

#endif
