/* libcurl multi glue. curl tells which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to
 * call it back (CURLMOPT_TIMERFUNCTION); both map onto the gateway loop. Finished transfers are
 * collected after every curl_multi_socket_action, outside curl's own callbacks.
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
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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
    struct gw_loop *loop;
    CURLM *multi;
    uint64_t timer;
    struct xfer *xfers; /* waiting or in flight, for gw_httpc_free */
    struct gw_hmap *hosts;
    struct host *starved_head, *starved_tail;
    long max_host, max_total, active;
    CURL *spare[64]; /* finished easy handles kept for reuse (curl_easy_reset) */
    int nspare;
    int policy; /* check addresses */
    const struct gw_cidr *allow;
    size_t nallow;
};

struct xfer {
    struct gw_httpc *c;
    struct host *host;
    int started;            /* handed to curl */
    struct xfer *wait_next; /* in its host's queue */
    CURL *easy;
    struct curl_slist *headers;
    gw_send_cb cb;
    void *arg;
    char body[BODY_KEEP + 1];
    size_t body_len;
    /* a document fetched (body_max): the whole answer up to body_max, and its caching headers */
    char *doc;
    size_t doc_len, doc_cap, body_max;
    int truncated;
    char etag[256], last_modified[64], cache_control[128], content_type[128];
    char errbuf[CURL_ERROR_SIZE];
    struct xfer *prev, *next;
};

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

static struct host *host_get(struct gw_httpc *c, const char *url)
{
    char key[256];
    host_key(url, key, sizeof(key));
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
    curl_slist_free_all(x->headers);
    free(x->doc);
    free(x);
}

/* A waiting transfer that curl refused: its owner hears of it as of any failed transfer. */
static void fail_now(struct gw_httpc *c, struct xfer *x, const char *why)
{
    unlink_xfer(c, x);
    struct gw_send_result res = {.error = why, .body = ""};
    x->cb(x->arg, &res);
    free_xfer(x);
}

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
        struct gw_send_result res = {0};
        if (msg->data.result == CURLE_OK) {
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &res.status);
            curl_off_t ra = 0;
            if (curl_easy_getinfo(x->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
                res.retry_after_s = (long)ra;
        } else {
            res.error = x->errbuf[0] ? x->errbuf : curl_easy_strerror(msg->data.result);
        }
        x->body[x->body_len] = '\0';
        res.body = x->body;
        res.body_len = x->body_len;
        if (x->body_max > 0) {
            res.body = x->doc ? x->doc : "";
            res.body_len = x->doc_len;
            res.truncated = x->truncated;
            res.etag = x->etag;
            res.last_modified = x->last_modified;
            res.cache_control = x->cache_control;
            res.content_type = x->content_type;
        }
        curl_multi_remove_handle(c->multi, x->easy);
        unlink_xfer(c, x);
        x->host->active--;
        c->active--;
        x->cb(x->arg, &res);
        slot_freed(c, x->host);
        /* Handles are reused: creating one per delivery showed in the fan-out profile. */
        if (c->nspare < (int)(sizeof(c->spare) / sizeof(c->spare[0])))
            c->spare[c->nspare++] = x->easy;
        else
            curl_easy_cleanup(x->easy);
        curl_slist_free_all(x->headers);
        free(x->doc);
        free(x);
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
    memcpy(x->body + x->body_len, ptr, take);
    x->body_len += take;
    return len; /* the rest is read and dropped */
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
    struct xfer *x = arg;
    size_t len = size * n;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) { /* a new answer (a redirect's) */
        x->etag[0] = x->last_modified[0] = x->cache_control[0] = x->content_type[0] = '\0';
        return len;
    }
    static const struct {
        const char *name;
        size_t off, cap;
    } keep[] = {
        {"etag:", offsetof(struct xfer, etag), sizeof(((struct xfer *)0)->etag)},
        {"last-modified:", offsetof(struct xfer, last_modified),
         sizeof(((struct xfer *)0)->last_modified)},
        {"cache-control:", offsetof(struct xfer, cache_control),
         sizeof(((struct xfer *)0)->cache_control)},
        {"content-type:", offsetof(struct xfer, content_type),
         sizeof(((struct xfer *)0)->content_type)},
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
                char *dst = (char *)x + keep[i].off;
                memcpy(dst, v, vl);
                dst[vl] = '\0';
            }
        }
    }
    return len;
}

static int send_req(struct gw_sender *s, const struct gw_send_req *req, gw_send_cb cb, void *arg)
{
    struct gw_httpc *c = (struct gw_httpc *)s;
    struct xfer *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -1;
    x->c = c;
    x->cb = cb;
    x->arg = arg;
    if (c->nspare > 0) {
        x->easy = c->spare[--c->nspare];
        curl_easy_reset(x->easy);
    } else {
        x->easy = curl_easy_init();
    }
    if (x->easy == NULL) {
        free(x);
        return -1;
    }
    for (const char *const *h = req->headers; h && *h; h++)
        x->headers = curl_slist_append(x->headers, *h);
    x->headers = curl_slist_append(x->headers, "Expect:");
    CURL *e = x->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, req->body_max > 0 ? on_doc : on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    if (req->body_max > 0) {
        x->body_max = req->body_max;
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    }
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->body_max > 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "pubsubgw/" PUBSUBGW_VERSION);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, c);
    if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body ? req->body : "");
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    struct host *h = host_get(c, req->url);
    if (h == NULL) {
        free_xfer(x);
        return -1;
    }
    x->host = h;
    if (h->wait_head == NULL && h->active < c->max_host && c->active < c->max_total) {
        if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
            free_xfer(x);
            host_release(c, h);
            return -1;
        }
        x->started = 1;
        h->active++;
        c->active++;
    } else {
        if (h->wait_tail)
            h->wait_tail->wait_next = x;
        else
            h->wait_head = x;
        h->wait_tail = x;
        admit(c, h); /* only notes a host held back by the total cap: there is no room */
    }
    x->next = c->xfers;
    if (c->xfers)
        c->xfers->prev = x;
    c->xfers = x;
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
                "gateway during deliveries");
    c->sender.send = send_req;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_total);
    c->max_host = max_host > 0 ? max_host : 1;
    c->max_total = max_total > 0 ? max_total : 1;
    c->hosts = gw_hmap_new();
    if (c->hosts == NULL) {
        curl_multi_cleanup(c->multi);
        free(c);
        return NULL;
    }
    return c;
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
    if (c->timer)
        gw_loop_timer_cancel(c->loop, c->timer);
    while (c->nspare > 0)
        curl_easy_cleanup(c->spare[--c->nspare]);
    while (c->xfers) {
        struct xfer *x = c->xfers;
        if (x->started)
            curl_multi_remove_handle(c->multi, x->easy);
        /* The owner hears of the end like of any failed transfer and frees its state. */
        fail_now(c, x, "the gateway is stopping");
    }
    gw_hmap_each(c->hosts, free_host, NULL);
    gw_hmap_free(c->hosts);
    curl_multi_cleanup(c->multi);
    curl_global_cleanup();
    free(c);
}
