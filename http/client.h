/* Outbound HTTP on the libcurl multi interface, driven by the gateway loop: curl's sockets are
 * watched by the loop and its timer is a loop timer, so no thread and no polling. Redirects are
 * never followed; only http and https are allowed. */
#ifndef GW_HTTP_CLIENT_H
#define GW_HTTP_CLIENT_H

#include "../gateway/netpolicy.h"
#include "../gateway/sender.h"

struct gw_loop;
struct gw_httpc;

/* Returns a client, or NULL. max_host/max_total cap connections per host and in total. */
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
