/* A webhook receiver for the tests: a real HTTP server (libmicrohttpd, a thread per
 * connection unless started fast) on a free loopback port that records every delivery and answers
 * as told. */
#ifndef GW_IT_RECEIVER_H
#define GW_IT_RECEIVER_H

#include <jansson.h>

enum it_mode {
    IT_OK = 0,     /* 200 */
    IT_FAIL_FIRST, /* 500 for the first n POSTs, then 200 */
    IT_FAIL,       /* always 500 */
    IT_HANG,       /* waits n ms, then 200 */
    IT_GONE,       /* 410 */
    IT_BUSY_FIRST, /* 503 with Retry-After: 1 for the first n POSTs, then 200 */
    IT_REDIRECT,   /* 302 to the location set with it_receiver_redirect */
};

struct it_delivery {
    char *body;
    json_t *json;
    char id[160], ts[40], sig[200], ctype[80];
    char *link, *hub_sig; /* WebSub: the Link and X-Hub-Signature headers, or NULL */
    long long at_ms;      /* CLOCK_MONOTONIC ms when received */
    double at_s;          /* the same, in seconds with sub-millisecond resolution */
};

struct it_receiver;

struct it_receiver *it_receiver_start(enum it_mode mode, int n);
/* One thread polling every connection (epoll), always 200: the cheapest receiver this library
 * makes, for the benchmarks' fan-out, where the receiver shares the machine's cores with the
 * gateway. Not for IT_HANG or anything that blocks in the handler. */
struct it_receiver *it_receiver_start_fast(void);
void it_receiver_stop(struct it_receiver *r);
/* "http://127.0.0.1:PORT/hook" */
const char *it_receiver_url(struct it_receiver *r);
void it_receiver_set_mode(struct it_receiver *r, enum it_mode mode, int n);
void it_receiver_redirect(struct it_receiver *r, const char *location);
/* Answer verification GETs with a wrong body. */
void it_receiver_bad_challenge(struct it_receiver *r, int bad);
/* The query parameters of the i-th GET (verification or denial), as a JSON object of strings
 * (valid until stop), or NULL when there is no such GET. */
json_t *it_receiver_get_params(struct it_receiver *r, int i);
/* Waits until count GETs arrived; returns the number then. */
int it_receiver_wait_gets(struct it_receiver *r, int count, int timeout_ms);
/* Deliveries answered 2xx so far, and all POSTs received. */
int it_receiver_count(struct it_receiver *r);
/* Events received in accepted deliveries: a JSON array body (a batch) counts each element. */
int it_receiver_events(struct it_receiver *r);
int it_receiver_posts(struct it_receiver *r);
int it_receiver_gets(struct it_receiver *r);
/* The most POSTs that were being answered at the same time. */
int it_receiver_max_concurrent(struct it_receiver *r);
/* Waits until count deliveries were accepted; returns the number accepted then. */
int it_receiver_wait(struct it_receiver *r, int count, int timeout_ms);
/* The i-th accepted delivery (valid until stop). */
const struct it_delivery *it_receiver_get(struct it_receiver *r, int i);

/* Standard Webhooks check done independently of the gateway's code: decodes the whsec_ key
 * and compares v1,BASE64(HMAC-SHA256(key, id.ts.body)) with the header. 1 when it matches. */
int it_verify_signature(const char *secret, const struct it_delivery *d);

/* WebSub check done independently of the gateway's code: X-Hub-Signature is ALG=HEX of the
 * HMAC of the body keyed with secret. 1 when it matches. */
int it_verify_hub_signature(const char *secret, const struct it_delivery *d);

long long it_now_ms(void);

#endif
