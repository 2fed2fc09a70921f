/* Outbound HTTP on the libcurl multi interface, on a thread of its own: curl's sockets and timer
 * are watches and timers of that thread's loop (no polling); requests come from the owner's loop
 * and each answer's callback runs there. Redirects are never followed, except for documents
 * fetched (body_max); only http and https are allowed. */
#ifndef GW_HTTP_CLIENT_H
#define GW_HTTP_CLIENT_H

#include "../gateway/netpolicy.h"
#include "../gateway/sender.h"

struct gw_loop;
struct gw_httpc;

/* Returns a client whose callbacks run on loop (its thread is started here), or NULL.
 * max_host/max_total cap connections per host and in total. */
struct gw_httpc *gw_httpc_new(struct gw_loop *loop, long max_host, long max_total);
/* Connects only to addresses gw_addr_allowed() accepts with this allow-list (the check happens
 * on the address actually connected to, so DNS cannot be switched between check and use).
 * allow must outlive c. Without a call every address may be reached. */
void gw_httpc_set_policy(struct gw_httpc *c, const struct gw_cidr *allow, size_t nallow);
/* The client's gw_sender interface. */
struct gw_sender *gw_httpc_sender(struct gw_httpc *c);
/* Ends requests in flight (their callbacks run with status 0) and frees c. */
void gw_httpc_free(struct gw_httpc *c);

#endif
