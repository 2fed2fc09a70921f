/* The REST front end on libmicrohttpd. It parses and validates requests, answers what needs no
 * XMPP (health, metrics, the OpenAPI document, validation errors) itself, and hands everything
 * else to the loop through the mailbox, suspended until the answer comes. It runs on the loop
 * thread, or on a pool of its own threads with --http-threads N. */
#ifndef GW_HTTP_SERVER_H
#define GW_HTTP_SERVER_H

#include "../gateway/cmd.h"
#include "../gateway/config.h"

#include <stddef.h>

struct gw_http;

/* Starts listening; returns NULL with a one-line reason in err. cfg, mb and loop must outlive
 * it. */
struct gw_http *gw_http_start(const struct gw_config *cfg, struct gw_mailbox *mb,
                              struct gw_loop *loop, char *err, size_t errlen);

/* The port actually bound (useful with --listen 127.0.0.1:0). */
int gw_http_port(const struct gw_http *h);

/* Starts the drain of a shutdown: from now on new requests are answered 503 (with
 * Connection: close) while those already accepted finish. Thread-safe. */
void gw_http_drain(struct gw_http *h);

/* Stops accepting, waits (bounded) for requests in progress to be answered (serving them itself
 * when HTTP runs on the loop, which has stopped by then), then stops and frees h. Every
 * suspended request must already have been completed. */
void gw_http_stop(struct gw_http *h);

#endif
