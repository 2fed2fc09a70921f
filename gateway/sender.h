/* Outbound HTTP as the core sees it: one request, answered once through a callback on the loop
 * thread. http/client.c implements it on the libcurl multi interface. */
#ifndef GW_SENDER_H
#define GW_SENDER_H

#include <stddef.h>

struct gw_send_result {
    long status;        /* HTTP status, 0 when no answer (refused, timeout, reset) */
    const char *error;  /* transport error text when status is 0 */
    long retry_after_s; /* Retry-After in seconds, 0 when absent */
    const char *body;   /* the first bytes of the answer (at most 4 KiB, or the request's
                         * body_max), NUL-terminated */
    size_t body_len;
    int truncated; /* the answer was longer than what was kept */
    /* with body_max: these headers of the answer, "" when absent */
    const char *etag, *last_modified, *cache_control, *content_type;
};

typedef void (*gw_send_cb)(void *arg, const struct gw_send_result *res);

struct gw_send_req {
    const char *method; /* "POST" or "GET" */
    const char *url;
    const char *const *headers; /* "Name: value" strings, NULL-terminated; may be NULL */
    const char *body;           /* copied, or taken (take_body); may be NULL */
    size_t body_len;
    long timeout_ms;
    /* fetching a document: keep up to body_max bytes of the answer (0: 4 KiB) and its caching
     * headers, follow up to 5 redirects (each address checked), accept compressed answers */
    size_t body_max;
    /* body is malloc'd and the sender's from the call on (freed by it, even when send fails);
     * it need not be NUL-terminated */
    int take_body;
};

struct gw_sender {
    /* Starts req; cb runs exactly once, later, on the loop thread. Returns 0, or -1 when the
     * request could not be started (cb is then not called). */
    int (*send)(struct gw_sender *s, const struct gw_send_req *req, gw_send_cb cb, void *arg);
};

#endif
