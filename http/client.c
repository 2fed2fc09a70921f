/* libcurl multi glue, on a thread of its own. The transfers run on the client's loop, in its
 * thread: curl tells which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to call it back
 * (CURLMOPT_TIMERFUNCTION), both mapped onto that loop. The owner's thread only copies a
 * request (URL, headers, body) and hears the answer: requests go to the client's thread
 * through an inbox, finished transfers come back through an outbox and an eventfd that the
 * owner's loop watches, and each callback runs there. Sockets, HTTP parsing and connection
 * handling for thousands of deliveries a second thus cost the owner's loop nothing but the
 * callbacks.
 *
 * The caps on connections per host and in total are applied here, before a transfer reaches
 * curl: curl would queue the transfers over its cap in a list that it walks on every removal,
 * which with a thousand callbacks on one host made each finished delivery cost a thousand steps.
 * Each host has a queue of waiting transfers; a transfer that ends hands its slot to the next
 * one of its host, or to a host that was kept waiting by the total cap. */
#include "client.h"

#include "../gateway/hmap.h"
#include "../gateway/log.h"
#include "../gateway/loop.h"

#include <ctype.h>
#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY_KEEP 4096

struct host {
    char key[256];
    int active;                         /* transfers handed to curl */
    struct xfer *wait_head, *wait_tail; /* waiting for a slot */
    struct host *starved_next;          /* in the list of hosts held back by the total cap */
    int starved;
};

struct gw_httpc {
    struct gw_sender sender; /* first: the interface pointer is the client pointer */
    struct gw_loop *home;    /* the owner's loop: callbacks run there */
    int done_fd;             /* eventfd: the outbox has answers (watched by home) */
    /* the client's thread and what only it touches */
    struct gw_loop *loop;
    pthread_t thread;
    int started;
    CURLM *multi;
    uint64_t timer;
    struct xfer *xfers; /* waiting or in flight, for gw_httpc_free */
    struct gw_hmap *hosts;
    struct host *starved_head, *starved_tail;
    long max_host, max_total, active;
    int policy; /* check addresses (set before the first request, then only read) */
    const struct gw_cidr *allow;
    size_t nallow;
    CURL *spare[64]; /* finished easy handles kept for reuse (curl_easy_reset) */
    int nspare;
    /* shared between the two threads, under mu */
    pthread_mutex_t mu;
    struct xfer *in_head, *in_tail;   /* requests for the client's thread */
    struct xfer *out_head, *out_tail; /* answers for the owner */
};

/* A fetched document's caching headers (only a fetch with body_max has them). */
struct doc_meta {
    char etag[256], last_modified[64], cache_control[128], content_type[128];
};

/* A transfer's state stays under 1 KiB (the answer's first bytes and a document's headers are
 * allocated apart, as they come), and curl's receive buffer is 1 KiB for a delivery: glibc's
 * per-thread cache serves all three, where 5 KiB of state and curl's 16 KiB buffer took
 * malloc's slow path on every delivery. */
#define DELIVERY_RECV_BUFFER 1024L

struct xfer {
    struct gw_httpc *c;
    struct host *host;
    char hostkey[256];
    int started;            /* handed to curl */
    struct xfer *wait_next; /* in its host's queue, the inbox or the outbox */
    CURL *easy;             /* set up and owned by the client's thread, once admitted */
    /* the request, as the owner handed it: the URL, the header list and its strings in one
     * block (mem); the body of a POST apart, copied or taken from the owner */
    char *mem, *url, *post; /* post: the body of a POST, else NULL */
    size_t post_len;
    long timeout_ms;
    struct curl_slist *headers;
    gw_send_cb cb;
    void *arg;
    char *body; /* the answer's first BODY_KEEP bytes, NULL when it had none */
    size_t body_len, body_cap;
    /* a document fetched (body_max): the whole answer up to body_max, and its caching headers */
    char *doc;
    size_t doc_len, doc_cap, body_max;
    int truncated;
    struct doc_meta *meta;
    char errbuf[CURL_ERROR_SIZE];
    /* the outcome, set by the client's thread */
    long status, retry_after_s;
    const char *error; /* errbuf, a static text, or NULL */
    struct xfer *prev, *next;
};

_Static_assert(sizeof(struct xfer) <= 1024, "a transfer's state fits malloc's per-thread cache");

static void unlink_xfer(struct gw_httpc *c, struct xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        c->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
}

/* "host:port" of a URL, lower-cased and without user information: the key of the caps. */
static void host_key(const char *url, char *out, size_t cap)
{
    const char *a = strstr(url, "://");
    a = a ? a + 3 : url;
    size_t n = strcspn(a, "/?#");
    const char *at = memchr(a, '@', n);
    while (at != NULL) { /* the last '@' ends the user information */
        n -= (size_t)(at + 1 - a);
        a = at + 1;
        at = memchr(a, '@', n);
    }
    size_t i = 0;
    for (; i < n && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)a[i]);
    out[i] = '\0';
}

static struct host *host_get(struct gw_httpc *c, const char *key)
{
    struct host *h = gw_hmap_get(c->hosts, key, strlen(key));
    if (h != NULL)
        return h;
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    memcpy(h->key, key, strlen(key) + 1);
    if (gw_hmap_put(c->hosts, key, strlen(key), h) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

/* A host with nothing active or waiting is forgotten (unless queued as starved). */
static void host_release(struct gw_httpc *c, struct host *h)
{
    if (h->active == 0 && h->wait_head == NULL && !h->starved) {
        gw_hmap_del(c->hosts, h->key, strlen(h->key));
        free(h);
    }
}

static void free_xfer(struct xfer *x)
{
    curl_easy_cleanup(x->easy);
    free(x->mem);
    free(x->post);
    free(x->body);
    free(x->doc);
    free(x->meta);
    free(x);
}

/* On the client's thread: x's easy handle is kept for the next transfer (creating one per
 * delivery showed in the fan-out profile). */
static void spare_easy(struct gw_httpc *c, struct xfer *x)
{
    if (x->easy != NULL && c->nspare < (int)(sizeof(c->spare) / sizeof(c->spare[0]))) {
        /* x's error text is read on the owner's thread: the handle no longer points at it */
        curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, NULL);
        c->spare[c->nspare++] = x->easy;
        x->easy = NULL;
    }
}

/* Appends x to the inbox or the outbox (head, tail) under the lock; 1 when it was empty (its
 * reader is then to be woken). */
static int push_locked(struct gw_httpc *c, struct xfer **head, struct xfer **tail, struct xfer *x)
{
    x->wait_next = NULL;
    pthread_mutex_lock(&c->mu);
    int was_empty = *head == NULL;
    if (*tail)
        (*tail)->wait_next = x;
    else
        *head = x;
    *tail = x;
    pthread_mutex_unlock(&c->mu);
    return was_empty;
}

/* Takes the whole inbox or outbox (head, tail) under the lock. */
static struct xfer *take_locked(struct gw_httpc *c, struct xfer **head, struct xfer **tail)
{
    pthread_mutex_lock(&c->mu);
    struct xfer *x = *head;
    *head = *tail = NULL;
    pthread_mutex_unlock(&c->mu);
    return x;
}

/* Hands a finished transfer (its outcome set) to the owner's thread. */
static void post_answer(struct gw_httpc *c, struct xfer *x)
{
    int was_empty = push_locked(c, &c->out_head, &c->out_tail, x);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(c->done_fd, &one, sizeof(one));
        (void)w;
    }
}

/* A transfer that could not be started: its owner hears of it as of any failed transfer. */
static void fail_now(struct gw_httpc *c, struct xfer *x, const char *why)
{
    unlink_xfer(c, x);
    spare_easy(c, x);
    x->status = 0;
    x->error = why;
    post_answer(c, x);
}

static int setup(struct gw_httpc *c, struct xfer *x);

/* Hands waiting transfers of h to curl while its host and the total have room. */
static void admit(struct gw_httpc *c, struct host *h)
{
    while (h->wait_head != NULL && h->active < c->max_host) {
        if (c->active >= c->max_total) {
            if (!h->starved) {
                h->starved = 1;
                h->starved_next = NULL;
                if (c->starved_tail)
                    c->starved_tail->starved_next = h;
                else
                    c->starved_head = h;
                c->starved_tail = h;
            }
            return;
        }
        struct xfer *x = h->wait_head;
        h->wait_head = x->wait_next;
        if (h->wait_head == NULL)
            h->wait_tail = NULL;
        if (setup(c, x) != 0) {
            fail_now(c, x, "out of memory");
            continue;
        }
        if (curl_multi_add_handle(c->multi, x->easy) != CURLM_OK) {
            fail_now(c, x, "cannot start the request");
            continue;
        }
        x->started = 1;
        h->active++;
        c->active++;
    }
}

/* A slot was freed on h: its own waiting transfers first, then hosts the total cap held back. */
static void slot_freed(struct gw_httpc *c, struct host *h)
{
    admit(c, h);
    while (c->starved_head != NULL && c->active < c->max_total) {
        struct host *s = c->starved_head;
        c->starved_head = s->starved_next;
        if (c->starved_head == NULL)
            c->starved_tail = NULL;
        s->starved = 0;
        admit(c, s);
        if (s != h) /* h itself is released below, once */
            host_release(c, s);
    }
    host_release(c, h);
}

static void check_done(struct gw_httpc *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &x->status);
            curl_off_t ra = 0;
            if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
                x->retry_after_s = (long)ra;
        } else {
            x->error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(msg->data.result);
        }
        curl_multi_remove_handle(c->multi, x->easy);
        spare_easy(c, x);
        unlink_xfer(c, x);
        struct host *h = x->host;
        h->active--;
        c->active--;
        post_answer(c, x);
        slot_freed(c, h);
    }
}

/* On the owner's thread: the callbacks of the transfers that ended. */
static void on_answers(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)loop;
    (void)revents;
    struct gw_httpc *c = arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;
    struct xfer *x = take_locked(c, &c->out_head, &c->out_tail);
    while (x != NULL) {
        struct xfer *next = x->wait_next;
        struct gw_send_result res = {
            .status = x->status, .error = x->error, .retry_after_s = x->retry_after_s};
        res.body = x->body ? x->body : "";
        res.body_len = x->body_len;
        if (x->body_max > 0) {
            res.body = x->doc ? x->doc : "";
            res.body_len = x->doc_len;
            res.truncated = x->truncated;
            res.etag = x->meta->etag;
            res.last_modified = x->meta->last_modified;
            res.cache_control = x->meta->cache_control;
            res.content_type = x->meta->content_type;
        }
        if (res.status == 0 && res.error == NULL)
            res.error = "no answer";
        x->cb(x->arg, &res);
        free_xfer(x);
        x = next;
    }
}

static void on_fd(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)loop;
    struct gw_httpc *c = arg;
    int mask = 0, running;
    if (revents & POLLIN)
        mask |= CURL_CSELECT_IN;
    if (revents & POLLOUT)
        mask |= CURL_CSELECT_OUT;
    if (revents & (POLLERR | POLLHUP))
        mask |= CURL_CSELECT_ERR;
    curl_multi_socket_action(c->multi, fd, mask, &running);
    check_done(c);
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)socketp;
    struct gw_httpc *c = userp;
    short events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= POLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= POLLOUT;
    gw_loop_watch(c->loop, s, what == CURL_POLL_REMOVE ? 0 : events, on_fd, c);
    return 0;
}

static void on_timer(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct gw_httpc *c = arg;
    int running;
    c->timer = 0;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct gw_httpc *c = userp;
    if (c->timer) {
        gw_loop_timer_cancel(c->loop, c->timer);
        c->timer = 0;
    }
    if (timeout_ms >= 0)
        c->timer = gw_loop_timer_add(c->loop, timeout_ms, on_timer, c);
    return 0;
}

/* The last word on where a callback may connect: curl hands over the resolved address it is
 * about to use. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
    struct gw_httpc *c = clientp;
    (void)purpose;
    if (c->policy && !gw_addr_allowed(&address->addr, c->allow, c->nallow)) {
        gw_warn("refused to connect a callback to a reserved address (see --callback-allow)");
        return CURL_SOCKET_BAD;
    }
    return socket(address->family, address->socktype, address->protocol);
}

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n, room = BODY_KEEP - x->body_len;
    size_t take = len < room ? len : room;
    if (take == 0)
        return len; /* past BODY_KEEP: read and dropped */
    if (x->body_len + take + 1 > x->body_cap) {
        size_t cap = x->body_len + take + 1;
        char *b = realloc(x->body, cap);
        if (b == NULL)
            return len; /* what was kept stays; the answer's status is what counts */
        x->body = b;
        x->body_cap = cap;
    }
    memcpy(x->body + x->body_len, ptr, take);
    x->body_len += take;
    x->body[x->body_len] = '\0';
    return len;
}

/* A fetched document is kept whole, up to body_max. */
static size_t on_doc(char *ptr, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * n;
    if (x->doc_len + len > x->body_max) {
        x->truncated = 1;
        return 0; /* ends the transfer: the document is too large to take */
    }
    if (x->doc_len + len + 1 > x->doc_cap) {
        size_t cap = x->doc_cap ? x->doc_cap : 16384;
        while (cap < x->doc_len + len + 1)
            cap *= 2;
        char *d = realloc(x->doc, cap);
        if (d == NULL)
            return 0;
        x->doc = d;
        x->doc_cap = cap;
    }
    memcpy(x->doc + x->doc_len, ptr, len);
    x->doc_len += len;
    x->doc[x->doc_len] = '\0';
    return len;
}

/* Keeps the caching headers of a fetched document (of the last answer when redirected). */
static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct doc_meta *m = ((struct xfer *)arg)->meta;
    size_t len = size * n;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new answer (a redirect's) */
        m->etag[0] = m->last_modified[0] = m->cache_control[0] = m->content_type[0] = '\0';
        return len;
    }
    static const struct {
        const char *name;
        size_t off, cap;
    } keep[] = {
        {"etag:", offsetof(struct doc_meta, etag), sizeof(m->etag)},
        {"last-modified:", offsetof(struct doc_meta, last_modified), sizeof(m->last_modified)},
        {"cache-control:", offsetof(struct doc_meta, cache_control), sizeof(m->cache_control)},
        {"content-type:", offsetof(struct doc_meta, content_type), sizeof(m->content_type)},
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        size_t k = strlen(keep[i].name);
        if (len > k && strncasecmp(line, keep[i].name, k) == 0) {
            const char *v = line + k;
            size_t vl = len - k;
            while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                vl--;
            if (vl < keep[i].cap) {
                char *dst = (char *)m + keep[i].off;
                memcpy(dst, v, vl);
                dst[vl] = '\0';
            }
        }
    }
    return len;
}

/* On the client's thread: x's easy handle, set up for its request; 0 or -1. */
static int setup(struct gw_httpc *c, struct xfer *x)
{
    if (c->nspare > 0) {
        x->easy = c->spare[--c->nspare];
        curl_easy_reset(x->easy);
    } else {
        x->easy = curl_easy_init();
    }
    CURL *e = x->easy;
    if (e == NULL)
        return -1;
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, x->body_max > 0 ? on_doc : on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (x->body_max > 0) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    } else {
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, DELIVERY_RECV_BUFFER); /* answers are small */
    }
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, x->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, x->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, x->body_max > 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pubsubgw/" PUBSUBGW_VERSION);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
    if (x->post != NULL) {
        /* x owns the body until the transfer ends: curl need not copy it */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->post_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->post);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    return 0;
}

/* On the client's thread: a new transfer goes to curl, or waits for a slot of its host. Its
 * easy handle is set up as it goes to curl: a thousand callbacks on one host kept a thousand
 * handles set up while 32 were in use, and each delivery created one and destroyed one (on the
 * owner's loop) as the spares ran over. */
static void start(struct gw_httpc *c, struct xfer *x)
{
    x->next = c->xfers;
    x->prev = NULL;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
    struct host *h = host_get(c, x->hostkey);
    if (h == NULL) {
        fail_now(c, x, "out of memory");
        return;
    }
    x->host = h;
    x->wait_next = NULL;
    if (h->wait_tail)
        h->wait_tail->wait_next = x;
    else
        h->wait_head = x;
    h->wait_tail = x;
    admit(c, h);        /* at once when its host and the total have room */
    host_release(c, h); /* forgotten if x failed to start and nothing else is there */
}

/* On the client's thread, woken by send_req: starts what the inbox holds. */
static void on_inbox(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct gw_httpc *c = arg;
    struct xfer *x = take_locked(c, &c->in_head, &c->in_tail);
    while (x != NULL) {
        struct xfer *next = x->wait_next;
        start(c, x);
        x = next;
    }
    /* curl learns of the new handles through its timer callback; run it now rather than a
     * round later */
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static void *run(void *arg)
{
    pthread_setname_np(pthread_self(), "pubsubgw-http"); /* top -H, perf */
    struct gw_httpc *c = arg;
    gw_loop_run(c->loop);
    return NULL;
}

/* On the owner's thread: the request is copied (URL, headers, body, or the body taken) and
 * handed to the client's thread, which sets up its transfer. The header list is built in the
 * same block as the URL: curl reads a struct curl_slist list and never frees it, and
 * curl_slist_append would take two allocations per header on every delivery. */
static int send_req(struct gw_sender *s, const struct gw_send_req *req, gw_send_cb cb, void *arg)
{
    static const char expect[] = "Expect:"; /* no 100-continue round trip for larger bodies */
    struct gw_httpc *c = (struct gw_httpc *)s;
    int post = strcmp(req->method, "POST") == 0;
    char *taken = req->take_body ? (char *)req->body : NULL;
    size_t nh = 1, strings = strlen(req->url) + 1 + sizeof(expect);
    for (const char *const *h = req->headers; h && *h; h++, nh++)
        strings += strlen(*h) + 1;
    struct xfer *x = calloc(1, sizeof(*x));
    char *mem = x ? malloc(nh * sizeof(struct curl_slist) + strings) : NULL;
    char *body = post && taken == NULL ? malloc(req->body_len + 1) : taken;
    struct doc_meta *meta = req->body_max > 0 ? calloc(1, sizeof(*meta)) : NULL;
    if (x == NULL || mem == NULL || (post && body == NULL) || (req->body_max > 0 && !meta)) {
        free(x);
        free(mem);
        free(body);
        free(meta);
        return -1;
    }
    x->meta = meta;
    x->c = c;
    x->cb = cb;
    x->arg = arg;
    x->mem = mem;
    struct curl_slist *nodes = (struct curl_slist *)(void *)mem;
    char *p = mem + nh * sizeof(struct curl_slist);
    size_t k = 0;
    for (const char *const *h = req->headers; h && *h; h++, k++) {
        size_t l = strlen(*h) + 1;
        nodes[k] = (struct curl_slist){memcpy(p, *h, l), &nodes[k + 1]};
        p += l;
    }
    nodes[k] = (struct curl_slist){memcpy(p, expect, sizeof(expect)), NULL};
    p += sizeof(expect);
    x->headers = nodes;
    x->url = memcpy(p, req->url, strlen(req->url) + 1);
    if (post) {
        if (taken == NULL) {
            if (req->body_len > 0)
                memcpy(body, req->body, req->body_len);
            body[req->body_len] = '\0';
        }
        x->post = body;
        x->post_len = req->body_len;
    } else {
        free(taken);
    }
    x->timeout_ms = req->timeout_ms;
    x->body_max = req->body_max;
    host_key(req->url, x->hostkey, sizeof(x->hostkey));
    if (push_locked(c, &c->in_head, &c->in_tail, x))
        gw_loop_wake(c->loop);
    return 0;
}

struct gw_httpc *gw_httpc_new(struct gw_loop *loop, long max_host, long max_total)
{
    struct gw_httpc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* Deliveries resolve callback hosts inside libcurl: only its threaded (or c-ares) resolver
     * keeps that off the loop. */
    if (!(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_ASYNCHDNS))
        gw_warn("this libcurl resolves names synchronously: a slow DNS server will stall the "
                "gateway's deliveries");
    c->sender.send = send_req;
    c->home = loop;
    c->done_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    c->loop = gw_loop_new();
    c->multi = curl_multi_init();
    c->hosts = gw_hmap_new();
    c->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->loop == NULL || c->multi == NULL || c->hosts == NULL || c->done_fd < 0 ||
        gw_loop_watch(loop, c->done_fd, POLLIN, on_answers, c) != 0)
        goto fail;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
    c->max_host = max_host > 0 ? max_host : 1;
    c->max_total = max_total > 0 ? max_total : 1;
    gw_loop_on_wake(c->loop, on_inbox, c);
    if (pthread_create(&c->thread, NULL, run, c) != 0)
        goto fail;
    c->started = 1;
    return c;
fail:
    if (c->done_fd >= 0) {
        gw_loop_watch(loop, c->done_fd, 0, NULL, NULL);
        close(c->done_fd);
    }
    gw_hmap_free(c->hosts);
    if (c->multi)
        curl_multi_cleanup(c->multi);
    gw_loop_free(c->loop);
    pthread_mutex_destroy(&c->mu);
    curl_global_cleanup();
    free(c);
    return NULL;
}

void gw_httpc_set_policy(struct gw_httpc *c, const struct gw_cidr *allow, size_t nallow)
{
    c->policy = 1;
    c->allow = allow;
    c->nallow = nallow;
}

struct gw_sender *gw_httpc_sender(struct gw_httpc *c)
{
    return &c->sender;
}

static void free_host(void *value, void *arg)
{
    (void)arg;
    free(value);
}

void gw_httpc_free(struct gw_httpc *c)
{
    if (c == NULL)
        return;
    /* The client's thread ends first: what it held is then this thread's to finish. */
    if (c->started) {
        gw_loop_stop(c->loop);
        pthread_join(c->thread, NULL);
    }
    if (c->timer)
        gw_loop_timer_cancel(c->loop, c->timer);
    while (c->xfers) {
        struct xfer *x = c->xfers;
        if (x->started)
            curl_multi_remove_handle(c->multi, x->easy);
        /* The owner hears of the end like of any failed transfer and frees its state. */
        fail_now(c, x, "the gateway is stopping");
    }
    /* Requests that never reached the client's thread end the same way; a callback may send
     * again, which ends so too (a bounded number of rounds: a callback cannot keep it open). */
    for (int round = 0; round < 100; round++) {
        struct xfer *in = take_locked(c, &c->in_head, &c->in_tail);
        while (in != NULL) {
            struct xfer *next = in->wait_next;
            in->error = "the gateway is stopping";
            post_answer(c, in);
            in = next;
        }
        on_answers(c->home, c->done_fd, POLLIN, c);
        if (c->in_head == NULL)
            break;
    }
    gw_loop_watch(c->home, c->done_fd, 0, NULL, NULL);
    close(c->done_fd);
    while (c->nspare > 0)
        curl_easy_cleanup(c->spare[--c->nspare]);
    gw_hmap_each(c->hosts, free_host, NULL);
    gw_hmap_free(c->hosts);
    curl_multi_cleanup(c->multi);
    gw_loop_free(c->loop);
    pthread_mutex_destroy(&c->mu);
    curl_global_cleanup();
    free(c);
}
