/* libmicrohttpd glue. By default MHD runs on the gateway loop: its epoll descriptor is one more
 * watch, MHD_run() is called when it is readable, when MHD's own timeout is due, and in the
 * round after a request was resumed. With --http-threads N it runs its own pool of N threads
 * instead (MHD_USE_INTERNAL_POLLING_THREAD). Either way a request that needs XMPP is suspended
 * before its command is posted, and the loop's completion callback resumes it, so nothing waits
 * or polls. On the loop, a request costs no thread hand-off at all: the publish profile showed
 * the hand-offs (eventfd, MHD's wake-up pipe, futexes, context switches) as a third of the
 * gateway's CPU. Paths and query strings are decoded by us, not by MHD, so that an encoded '/'
 * stays inside a node id. */
#include "server.h"

#include "../gateway/itemid.h"
#include "../gateway/log.h"
#include "../gateway/loop.h"
#include "../gateway/status.h"
#include "../gateway/stream.h"
#include "../gateway/webhooks.h"
#include "../gateway/workq.h"
#include "atom.h"
#include "auth.h"
#include "openapi.h"
#include "replay.h"
#include "request.h"
#include "router.h"
#include "ui.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct gw_http {
    const struct gw_config *cfg;
    struct gw_mailbox *mb;
    struct MHD_Daemon *daemon;
    int port;
    /* on the loop (no MHD threads) */
    struct gw_loop *loop;
    int epoll_fd; /* -1 with MHD's own threads */
    int run_soon; /* MHD_run() in the next round */
    uint64_t timer;
    int64_t timer_at; /* when it fires (gw_now_ms) */
    atomic_int draining;
    atomic_llong last_request_ms; /* CLOCK_MONOTONIC ms of the latest request */
    struct gw_replay *replay;     /* signed hooks seen recently (NULL: window 0) */
    struct gw_workq *resolver;    /* workers that resolve callback hosts */
    char *https_cert, *https_key; /* PEM text, kept while the daemon runs */
    struct req *spare;            /* finished requests kept for reuse (loop only), and how many */
    int nspare;
};

enum req_state { REQ_READING = 0, REQ_WAITING, REQ_ANSWERED };

struct req {
    struct gw_http *h;
    struct MHD_Connection *conn;
    enum req_state state;
    enum gw_match_result mres;
    struct gw_route_match match;
    char *body;
    size_t len, cap;
    int too_large;
    struct gw_cmd *cmd;
    const struct gw_token *token; /* the caller's API token, NULL when none are configured */
    /* for the access log */
    char rid[72]; /* X-Request-Id: the client's when valid, else generated */
    char method[16];
    char *path;
    int64_t start_ms;
    int status;
    unsigned long long bytes;
    struct req *next_spare;
};

/* A request's state is 3.4 KB (the matched path's parameters): above what glibc's per-thread
 * cache holds, so each calloc and free took malloc's slow path and consolidated its small free
 * chunks, several per cent of a publish's CPU. On the loop (MHD without threads of its own)
 * finished ones are kept for the next, with their body buffer. */
#define SPARE_REQS 64
#define SPARE_BODY_MAX 16384

static struct req *req_new(struct gw_http *h)
{
    struct req *r = h->epoll_fd >= 0 ? h->spare : NULL;
    if (r == NULL)
        return calloc(1, sizeof(*r));
    h->spare = r->next_spare;
    h->nspare--;
    char *body = r->body;
    size_t cap = r->cap;
    memset(r, 0, sizeof(*r));
    r->body = body;
    r->cap = cap;
    return r;
}

static void req_destroy(struct req *r)
{
    free(r->body);
    free(r);
}

static void req_free(struct gw_http *h, struct req *r)
{
    gw_cmd_free(r->cmd);
    free(r->path);
    if (h->epoll_fd >= 0 && h->nspare < SPARE_REQS && r->cap <= SPARE_BODY_MAX) {
        r->next_spare = h->spare;
        h->spare = r;
        h->nspare++;
        return;
    }
    req_destroy(r);
}

/* The request being handled on this thread: every answer queued while it runs carries its
 * X-Request-Id and is counted for its access log line. */
static _Thread_local struct req *current;

/* Queues resp for status, with the current request's id; frees nothing. */
static enum MHD_Result queue(struct MHD_Connection *conn, unsigned int status,
                             struct MHD_Response *resp, unsigned long long bytes)
{
    if (current != NULL) {
        MHD_add_response_header(resp, "X-Request-Id", current->rid);
        current->status = (int)status;
        current->bytes = bytes;
    }
    return MHD_queue_response(conn, status, resp);
}

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

/* Sends body (JSON or problem) with status; hname/hvalue add one header (may be NULL). */
static enum MHD_Result send_reply(struct MHD_Connection *conn, int status, json_t *body,
                                  int retry_after, const char *hname, const char *hvalue)
{
    char *text = NULL, small[1024];
    size_t len = 0;
    enum MHD_ResponseMemoryMode mode = MHD_RESPMEM_MUST_FREE;
    if (body != NULL) {
        /* Most answers are small (a publish's is its id and node): written on the stack and
         * copied once by MHD, instead of jansson's growing buffer and its copy. */
        len = json_dumpb(body, small, sizeof(small), JSON_COMPACT | JSON_ENCODE_ANY);
        if (len > 0 && len <= sizeof(small)) {
            text = small;
            mode = MHD_RESPMEM_MUST_COPY;
        } else {
            text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
            if (text == NULL) {
                status = 500;
                text = strdup(
                    "{\"type\":\"about:blank\",\"title\":\"Internal error\",\"status\":500}");
            }
            len = text ? strlen(text) : 0;
        }
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, mode);
    if (resp == NULL) {
        if (text != small)
            free(text);
        return MHD_NO;
    }
    if (body != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                status >= 400 ? "application/problem+json" : "application/json");
    if (retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (hname != NULL && hvalue != NULL)
        MHD_add_response_header(resp, hname, hvalue);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status >= 400)
        atomic_fetch_add(&gw_status.http_errors, 1);
    enum MHD_Result rc = queue(conn, (unsigned int)status, resp, len);
    MHD_destroy_response(resp);
    return rc;
}

/* Sends a problem+json answer; retry_after (0: none) and one header (hname may be NULL). */
static enum MHD_Result send_problem(struct MHD_Connection *conn, int status, const char *title,
                                    const char *detail, int retry_after, const char *hname,
                                    const char *hvalue)
{
    json_t *p = gw_problem_new(status, title, detail, NULL);
    enum MHD_Result rc = send_reply(conn, status, p, retry_after, hname, hvalue);
    json_decref(p);
    return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, const char *type, const char *data,
                                 size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result rc = queue(conn, MHD_HTTP_OK, resp, len);
    MHD_destroy_response(resp);
    return rc;
}

/* s percent-encoded for a query value (unreserved characters kept); malloc'd, NULL if no memory. */
static char *query_escape(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; out && *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    if (out)
        *o = '\0';
    return out;
}

/* A node's items as an Atom feed, with an ETag: a client that has this version already gets
 * 304 and no body. The feed names itself by the address it was asked for. */
static enum MHD_Result send_feed(struct gw_http *h, struct req *r)
{
    const char *host = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Host");
    const char *service = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "service");
    char self[2048], listen[300];
    if (host == NULL || host[0] == '\0' || strlen(host) > 255 ||
        strpbrk(host, " /\\\"<>") != NULL) {
        snprintf(listen, sizeof(listen), "%s%s%s:%d", strchr(h->cfg->listen_host, ':') ? "[" : "",
                 h->cfg->listen_host, strchr(h->cfg->listen_host, ':') ? "]" : "", gw_http_port(h));
        host = listen;
    }
    char *svc = service ? query_escape(service) : NULL;
    snprintf(self, sizeof(self), "%s://%s%s%s%s", h->https_cert ? "https" : "http", host, r->path,
             svc ? "?service=" : "", svc ? svc : "");
    free(svc);
    /* WebSub discovery: the hub in the feed and in a Link header, beside the topic's own. */
    char hub[1100];
    snprintf(hub, sizeof(hub), "%s/websub", h->cfg->public_url ? h->cfg->public_url : "");
    int with_hub = h->cfg->websub && h->cfg->public_url != NULL;
    char *doc =
        gw_atom_feed(r->cmd->result, r->cmd->service ? r->cmd->service : h->cfg->service,
                     r->cmd->node ? r->cmd->node : "", self, with_hub ? hub : NULL, gw_wall_ms());
    if (doc == NULL)
        return send_problem(r->conn, 500, "Internal error", "out of memory", 0, NULL, NULL);
    uint64_t fnv = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)doc; *p; p++)
        fnv = (fnv ^ *p) * 1099511628211ULL;
    char etag[40], link[3300];
    snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)fnv);
    if (with_hub)
        snprintf(link, sizeof(link), "<%s>; rel=\"self\", <%s>; rel=\"hub\"", self, hub);
    else
        snprintf(link, sizeof(link), "<%s>; rel=\"self\"", self);
    const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
    int same = inm != NULL && (strstr(inm, etag) != NULL || strcmp(inm, "*") == 0);
    size_t len = same ? 0 : strlen(doc);
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, same ? NULL : doc, same ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (same)
        free(doc);
    if (resp == NULL) {
        if (!same)
            free(doc);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/atom+xml; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    MHD_add_response_header(resp, "Link", link);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result rc = queue(r->conn, same ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp, len);
    MHD_destroy_response(resp);
    return rc;
}

/* Each part of the gateway with its state and, when it is not well, why. */
static json_t *components(struct gw_http *h, int up, const char *reason)
{
    long pending = atomic_load(&gw_status.pending);
    json_t *xmpp = json_pack("{s:s}", "state", up ? "up" : "down");
    if (!up && xmpp)
        json_object_set_new(xmpp, "reason", json_string(reason[0] ? reason : "not yet connected"));
    json_t *outbox =
        json_pack("{s:s, s:I, s:I}", "state", pending >= h->cfg->max_pending ? "full" : "ok",
                  "pending", (json_int_t)pending, "limit", (json_int_t)h->cfg->max_pending);
    json_t *http = json_pack("{s:s}", "state", atomic_load(&h->draining) ? "stopping" : "serving");
    const char *kind = gw_status.store_kind ? gw_status.store_kind : "sqlite";
    json_t *store = json_pack("{s:s, s:s}", "state",
                              atomic_load(&gw_status.store_up) ? "ok" : "down", "kind", kind);
    /* On a shared store: one replica of several, and how much of the delivery work is its own. */
    json_t *replica = strcmp(kind, "postgresql") == 0
                          ? json_pack("{s:s, s:i, s:i, s:i}", "role", "replica", "replicas",
                                      atomic_load(&gw_status.replicas), "delivering",
                                      atomic_load(&gw_status.delivering), "partitions",
                                      atomic_load(&gw_status.partitions))
                          : json_pack("{s:s}", "role", "standalone");
    return json_pack("{s:o*, s:o*, s:o*, s:o*, s:o*}", "xmpp", xmpp, "outbox", outbox, "http", http,
                     "store", store, "replica", replica);
}

static enum MHD_Result health(struct gw_http *h, struct MHD_Connection *conn)
{
    char jid[3072], reason[1024];
    gw_status_get_jid(jid, sizeof(jid));
    gw_status_get_reason(reason, sizeof(reason));
    int up = atomic_load(&gw_status.xmpp_up);
    long uptime = (long)time(NULL) - atomic_load(&gw_status.started_at);
    json_t *body;
    if (up)
        body = json_pack("{s:s, s:s, s:s, s:s, s:i}", "status", "ok", "xmpp", "connected", "jid",
                         jid, "service", h->cfg->service, "uptime_seconds", (json_int_t)uptime);
    else
        body = gw_problem_new(
            503, "XMPP session down",
            reason[0] ? reason : "the gateway is not connected to its XMPP server", NULL);
    if (!up && body != NULL) {
        json_object_set_new(body, "xmpp", json_string("disconnected"));
        json_object_set_new(body, "reason", json_string(reason[0] ? reason : "not connected yet"));
        json_object_set_new(body, "service", json_string(h->cfg->service));
        json_object_set_new(body, "uptime_seconds", json_integer((json_int_t)uptime));
    }
    json_object_set_new(body, "components", components(h, up, reason));
    enum MHD_Result rc = send_reply(conn, up ? 200 : 503, body, up ? 0 : 5, NULL, NULL);
    json_decref(body);
    return rc;
}

/* GET /v1/token: what the presented token may do, so that a client (the console) offers only
 * that. Never the token itself. */
static enum MHD_Result token_info(struct gw_http *h, struct req *r)
{
    const struct gw_token *t = r->token;
    const struct gw_policy *pol = gw_config_policy(h->cfg);
    int open = pol == NULL || pol->ntokens == 0;
    json_t *scopes = json_array(), *nodes = json_null();
    for (unsigned i = 0; i < GW_SCOPES; i++)
        if (open || (t != NULL && (t->scopes & (1u << i))))
            json_array_append_new(scopes, json_string(gw_scope_names[i]));
    if (t != NULL && t->nodes != NULL) {
        nodes = json_array();
        for (int i = 0; i < t->nnodes; i++)
            json_array_append_new(nodes, json_string(t->nodes[i]));
    }
    json_t *body =
        json_pack("{s:b, s:o, s:o}", "authentication", !open, "scopes", scopes, "nodes", nodes);
    if (body != NULL && t != NULL)
        json_object_set_new(body, "name", json_string(t->name));
    enum MHD_Result rc = send_reply(r->conn, 200, body, 0, NULL, NULL);
    json_decref(body);
    return rc;
}

/* GET /v1/stats: the rates of the last minutes (publishes, events taken from XMPP, deliveries
 * and their failures per interval) and what waits. */
static enum MHD_Result stats(struct MHD_Connection *conn)
{
    struct gw_stats_point pts[GW_STATS_POINTS];
    int n = gw_status_history(gw_wall_ms(), pts, GW_STATS_POINTS);
    json_t *series = json_array();
    for (int i = 0; i < n; i++) {
        char at[GW_ISO_LEN];
        gw_iso_time(pts[i].at_ms, at, sizeof(at));
        json_array_append_new(
            series, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "at", at, "ms",
                              (json_int_t)pts[i].ms, "published", (json_int_t)pts[i].published,
                              "events", (json_int_t)pts[i].events, "delivered",
                              (json_int_t)pts[i].delivered, "failed", (json_int_t)pts[i].failed,
                              "dead_letters", (json_int_t)pts[i].dead_letters));
    }
    long long oldest = atomic_load(&gw_status.oldest_pending_ms);
    char oldest_at[GW_ISO_LEN] = "";
    if (oldest > 0)
        gw_iso_time(oldest, oldest_at, sizeof(oldest_at));
    json_t *body = json_pack("{s:i, s:o, s:I, s:s?, s:I, s:{s:I, s:I, s:I, s:I, s:I}}",
                             "interval_seconds", GW_STATS_INTERVAL_S, "series", series, "pending",
                             (json_int_t)atomic_load(&gw_status.pending), "oldest_pending_at",
                             oldest > 0 ? oldest_at : NULL, "streams_open",
                             (json_int_t)atomic_load(&gw_status.streams_open), "totals",
                             "published", (json_int_t)atomic_load(&gw_status.publishes), "events",
                             (json_int_t)atomic_load(&gw_status.events_received), "delivered",
                             (json_int_t)atomic_load(&gw_status.deliveries_ok), "failed",
                             (json_int_t)atomic_load(&gw_status.deliveries_failed), "dead_letters",
                             (json_int_t)atomic_load(&gw_status.dead_letters));
    enum MHD_Result rc = send_reply(conn, 200, body, 0, NULL, NULL);
    json_decref(body);
    return rc;
}

/* For load balancers: 200 only while this gateway can serve (XMPP up, not stopping, outbox below
 * --max-pending); 503 with the reason otherwise. No token needed, like health. */
static enum MHD_Result ready(struct gw_http *h, struct MHD_Connection *conn)
{
    char reason[1024] = "";
    long pending = atomic_load(&gw_status.pending);
    if (atomic_load(&h->draining))
        snprintf(reason, sizeof(reason), "the gateway is stopping");
    else if (!atomic_load(&gw_status.xmpp_up)) {
        char why[900];
        gw_status_get_reason(why, sizeof(why));
        snprintf(reason, sizeof(reason), "XMPP session down: %s",
                 why[0] ? why : "not yet connected");
    } else if (pending >= h->cfg->max_pending)
        snprintf(reason, sizeof(reason), "the outbox holds --max-pending (%ld) undelivered events",
                 pending);
    json_t *body =
        reason[0] ? gw_problem_new(503, "Not ready", reason, NULL) : json_pack("{s:b}", "ready", 1);
    if (reason[0] && body)
        json_object_set_new(body, "reason", json_string(reason));
    enum MHD_Result rc =
        send_reply(conn, reason[0] ? 503 : 200, body, reason[0] ? 5 : 0, NULL, NULL);
    json_decref(body);
    return rc;
}

/* The server that runs on the loop, if any (one per process). After a resume MHD must run in
 * the next round (its wake-up pipe does not make its epoll descriptor readable for an outside
 * loop), so every resume goes through resume_conn, which has only the connection at hand: an
 * event stream's wake-up gets nothing else. */
static struct gw_http *loop_http;

static void resume_conn(void *conn)
{
    if (loop_http != NULL)
        loop_http->run_soon = 1;
    MHD_resume_connection(conn);
}

static void suspend_conn(void *conn)
{
    MHD_suspend_connection(conn);
}

static ssize_t sse_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    long n = gw_stream_read(cls, buf, max, suspend_conn);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void sse_free(void *cls)
{
    gw_stream_end(cls);
    gw_stream_unref(cls);
}

/* The answer to an event stream request: text/event-stream fed by the loop thread. */
static enum MHD_Result send_stream(struct MHD_Connection *conn, struct gw_stream *st)
{
    gw_stream_ref(st);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_reader, st, sse_free);
    if (resp == NULL) {
        gw_stream_end(st);
        gw_stream_unref(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result rc = queue(conn, MHD_HTTP_OK, resp, 0);
    MHD_destroy_response(resp);
    return rc;
}

static void on_cmd_done(struct gw_cmd *cmd)
{
    struct req *r = cmd->done_arg;
    /* After this call the HTTP side owns r and cmd again: touch neither here. */
    resume_conn(r->conn);
}

/* The sender's id for this delivery, used as item id by inbound hooks. */
static const char *delivery_id(struct MHD_Connection *conn)
{
    const char *names[] = {"X-GitHub-Delivery", "X-Gitlab-Event-UUID", "Idempotency-Key",
                           "X-Request-Id"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, names[i]);
        if (v != NULL && v[0] != '\0')
            return v;
    }
    return NULL;
}

struct query_collect {
    struct gw_query_param *params;
    size_t n, cap;
    int bad;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct query_collect *q = cls;
    if (q->n == 64) {
        q->bad = 1;
        return MHD_NO;
    }
    size_t klen = strlen(key), vlen = value ? strlen(value) : 0;
    char *k = malloc(klen + 1), *v = malloc(vlen + 1);
    if (k == NULL || v == NULL || gw_percent_decode(key, klen, k, klen + 1, 1) < 0 ||
        gw_percent_decode(value ? value : "", vlen, v, vlen + 1, 1) < 0 ||
        !gw_valid_utf8(k, strlen(k)) || !gw_valid_utf8(v, strlen(v))) {
        free(k);
        free(v);
        q->bad = 1;
        return MHD_NO;
    }
    q->params[q->n].key = k;
    q->params[q->n].value = v;
    q->n++;
    return MHD_YES;
}

/* Hands r's command to the loop; when the mailbox is closed (shutdown) answers 503 at once. */
static void post_cmd(struct req *r)
{
    struct gw_cmd *cmd = r->cmd;
    if (gw_mailbox_post(r->h->mb, cmd) != 0) {
        cmd->retry_after = 5;
        cmd->status = 503;
        json_decref(cmd->result);
        cmd->result = gw_problem_new(503, "Shutting down", "the gateway is stopping", NULL);
        resume_conn(r->conn);
    }
}

/* Worker thread: the SSRF check of a new subscription's callback, which resolves its host. A
 * refusal goes through the mailbox too (already settled), so that the connection is resumed
 * from the loop, which runs libmicrohttpd. */
static void check_callback(void *arg)
{
    struct req *r = arg;
    struct gw_cmd *cmd = r->cmd;
    const struct gw_config *cfg = r->h->cfg;
    const char *delay = getenv("PUBSUBGW_TEST_RESOLVE_DELAY_MS");
    if (delay != NULL && atoi(delay) > 0)
        usleep((useconds_t)atoi(delay) * 1000); /* tests: a slow resolver */
    char err[512];
    /* The field as the client named it: a feed's url, WebSub's hub.callback, a callback. */
    int feed = cmd->op == GW_OP_FEED_CREATE;
    const char *field = feed ? "url" : cmd->op == GW_OP_WEBSUB ? "hub.callback" : "callback";
    const char *callback = json_string_value(json_object_get(cmd->args, feed ? "url" : "callback"));
    const struct gw_policy *pol = gw_config_policy(cfg);
    if (!gw_url_allowed(callback, pol->allow, (size_t)pol->nallow, err, sizeof(err))) {
        char named[600];
        snprintf(named, sizeof(named), "%s: %s", field, err);
        cmd->status = 400;
        cmd->result = gw_problem_new(400, "Invalid request body", named, NULL);
    }
    post_cmd(r);
}

static enum MHD_Result dispatch(struct req *r)
{
    struct MHD_Connection *conn = r->conn;
    switch (r->match.route) {
    case GW_ROUTE_HEALTH:
        return health(r->h, conn);
    case GW_ROUTE_READY:
        return ready(r->h, conn);
    case GW_ROUTE_TOKEN:
        return token_info(r->h, r);
    case GW_ROUTE_STATS:
        return stats(conn);
    case GW_ROUTE_METRICS: {
        char *text = gw_status_metrics_text();
        if (text == NULL)
            return send_problem(conn, 500, "Internal error", "out of memory", 0, NULL, NULL);
        return send_text(conn, "text/plain; version=0.0.4", text, strlen(text),
                         MHD_RESPMEM_MUST_FREE);
    }
    case GW_ROUTE_OPENAPI_JSON:
        return send_text(conn, "application/json", gw_openapi_document, gw_openapi_document_len,
                         MHD_RESPMEM_PERSISTENT);
    case GW_ROUTE_OPENAPI_YAML:
        /* JSON is YAML 1.2, so the same document serves both names. */
        return send_text(conn, "application/yaml", gw_openapi_document, gw_openapi_document_len,
                         MHD_RESPMEM_PERSISTENT);
    default:
        break;
    }
    struct gw_query_param params[64];
    struct query_collect q = {params, 0, 64, 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
    enum MHD_Result rc = MHD_YES;
    if (q.bad) {
        rc = send_problem(conn, 400, "Invalid query string",
                          "query: bad percent-encoding, invalid UTF-8 or more than 64 parameters",
                          0, NULL, NULL);
        goto out;
    }
    struct gw_http_request hreq = {
        .match = &r->match,
        .cfg = r->h->cfg,
        .hub_signature = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Hub-Signature-256"),
        .delivery_id = delivery_id(conn),
        .replay = r->h->replay,
        .now_ms = gw_now_ms(),
        .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type"),
        .body = r->len > 0 ? r->body : NULL, /* a kept buffer holds an earlier body */
        .body_len = r->len,
        .query = params,
        .nquery = q.n,
    };
    struct gw_http_reply reply = {0};
    struct gw_cmd *cmd = NULL;
    if (gw_http_prepare(&hreq, &cmd, &reply) != 0) {
        rc = send_reply(conn, reply.status, reply.body, reply.retry_after, NULL, NULL);
        json_decref(reply.body);
        goto out;
    }
    cmd->token = r->token;
    _Static_assert(sizeof(cmd->rid) == sizeof(r->rid), "request ids are copied whole");
    memcpy(cmd->rid, r->rid, sizeof(cmd->rid));
    /* The node a request names outside its path (a body, ?node=) is checked here; nodes the
     * request reaches through an id are checked where the id is resolved. */
    const char *target =
        cmd->node ? cmd->node : json_string_value(json_object_get(cmd->args, "node"));
    if ((target != NULL || cmd->op == GW_OP_NODE_CREATE) &&
        !gw_auth_node_allowed(r->token, target)) {
        gw_cmd_free(cmd);
        rc = send_problem(conn, 403, "Forbidden",
                          target ? "node: the token may not act on this node"
                                 : "node: a token limited to some nodes cannot create an instant "
                                   "node (name it)",
                          0, NULL, NULL);
        goto out;
    }
    if (GW_OP_NEEDS_XMPP(cmd->op) && !atomic_load(&gw_status.xmpp_up)) {
        gw_cmd_free(cmd);
        rc = send_problem(conn, 503, "XMPP session unavailable",
                          "the gateway is not connected to its XMPP server", 5, NULL, NULL);
        goto out;
    }
    if (cmd->op == GW_OP_STREAM_OPEN) {
        cmd->stream =
            gw_stream_new(r->h->cfg->sse_queue_bytes, resume_conn, conn,
                          MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID"));
        if (cmd->stream == NULL) {
            gw_cmd_free(cmd);
            rc = send_problem(conn, 500, "Internal error", "out of memory", 0, NULL, NULL);
            goto out;
        }
    }
    cmd->done = on_cmd_done;
    cmd->done_arg = r;
    r->cmd = cmd;
    r->state = REQ_WAITING;
    /* Suspend before posting: the answer may come back before this function returns. */
    MHD_suspend_connection(conn);
    /* A callback's host is resolved (and its addresses checked) on a worker: name resolution
     * may take seconds, and the loop must not wait for it. The worker posts the command on. */
    if ((cmd->op == GW_OP_SUB_CREATE || cmd->op == GW_OP_FEED_CREATE ||
         (cmd->op == GW_OP_WEBSUB && json_object_get(cmd->args, "callback") != NULL)) &&
        gw_workq_submit(r->h->resolver, check_callback, r) == 0)
        goto out;
    post_cmd(r);
out:
    for (size_t i = 0; i < q.n; i++) {
        free(params[i].key);
        free(params[i].value);
    }
    return rc;
}

/* A signed hook that failed on our side (XMPP down, timeout): its signature leaves the replay
 * window, so the sender's retry under the same conditions is accepted. */
static void forget_hook(struct req *r)
{
    const char *secret = gw_config_hook_secret(r->h->cfg, r->match.node);
    const char *sig = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Hub-Signature-256");
    if (secret != NULL && sig != NULL)
        gw_replay_forget(r->h->replay, r->match.node, sig);
}

/* Checks the bearer token and the node of the path. Returns 1 with *rc set when the request was
 * refused (answer queued), 0 when it may go on (r->token set). */
static int refuse_unauthorized(struct req *r, enum MHD_Result *rc)
{
    struct MHD_Connection *conn = r->conn;
    const struct gw_config *cfg = r->h->cfg;
    /* A signed inbound hook authenticates by its signature: the senders (GitHub, GitLab...)
     * cannot send bearer tokens. */
    if (r->match.route == GW_ROUTE_HOOK && gw_config_hook_secret(cfg, r->match.node) != NULL)
        return 0;
    const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    int a = gw_auth_check(cfg, authz, r->match.route, &r->token);
    if (a == 401)
        *rc = send_problem(conn, 401, "Unauthorized",
                           "Authorization: a valid bearer token is required", 0,
                           MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"pubsubgw\"");
    else if (a == 403)
        *rc = send_problem(conn, 403, "Forbidden",
                           "Authorization: the token lacks the scope this route needs", 0, NULL,
                           NULL);
    else if (r->match.node[0] != '\0' && !gw_auth_node_allowed(r->token, r->match.node))
        *rc = send_problem(conn, 403, "Forbidden", "node: the token may not act on this node", 0,
                           NULL, NULL);
    else
        return 0;
    return 1;
}

/* A request id the client sent is kept when it is short and plain (letters, digits, . _ - :),
 * so it can be followed through its systems; otherwise one is made. */
static void request_start(struct req *r, const char *method, const char *url)
{
    r->start_ms = gw_now_ms();
    size_t mlen = strnlen(method, sizeof(r->method) - 1);
    memcpy(r->method, method, mlen);
    r->method[mlen] = '\0';
    size_t plen = strcspn(url, "?");
    r->path = strndup(url, plen > 512 ? 512 : plen);
    const char *given = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    int ok = n > 0 && n < 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = isalnum((unsigned char)given[i]) || strchr("._-:", given[i]) != NULL;
    if (ok) {
        memcpy(r->rid, given, n + 1);
    } else {
        memcpy(r->rid, "req_", 4);
        if (gw_itemid_new(r->rid + 4) != 0)
            snprintf(r->rid, sizeof(r->rid), "req_unknown");
    }
}

static enum MHD_Result on_request_inner(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    enum MHD_Result rc =
        on_request_inner(cls, conn, url, method, version, upload_data, upload_data_size, con_cls);
    current = NULL;
    return rc;
}

/* Sends one of the console's files. The policy allows this origin's scripts, styles and
 * requests only: no inline script, nothing from elsewhere, never framed. */
static enum MHD_Result send_asset(struct MHD_Connection *conn, const char *type, const char *data,
                                  size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self'; style-src 'self'; "
                            "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
                            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result rc = queue(conn, MHD_HTTP_OK, resp, len);
    MHD_destroy_response(resp);
    return rc;
}

/* /ui and below: the console. Its files need no token (they hold no data); every request the
 * console makes does. */
static enum MHD_Result serve_ui(struct gw_http *h, struct MHD_Connection *conn, const char *url,
                                const char *method)
{
    static const struct {
        const char *path, *type;
        const char *data;
        const size_t *len;
    } files[] = {
        {"/ui/", "text/html; charset=utf-8", gw_ui_index, &gw_ui_index_len},
        {"/ui/index.html", "text/html; charset=utf-8", gw_ui_index, &gw_ui_index_len},
        {"/ui/app.js", "text/javascript; charset=utf-8", gw_ui_js, &gw_ui_js_len},
        {"/ui/app.css", "text/css; charset=utf-8", gw_ui_css, &gw_ui_css_len},
        {"/ui/icon.svg", "image/svg+xml", gw_ui_icon, &gw_ui_icon_len},
    };
    if (!h->cfg->ui)
        return send_problem(conn, 404, "Not found", "the console is switched off (--ui off)", 0,
                            NULL, NULL);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return send_problem(conn, 405, "Method not allowed", "see the Allow header", 0,
                            MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    if (strcmp(url, "/ui") == 0) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/ui/");
        enum MHD_Result rc = queue(conn, MHD_HTTP_PERMANENT_REDIRECT, resp, 0);
        MHD_destroy_response(resp);
        return rc;
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        if (strcmp(url, files[i].path) == 0)
            return send_asset(conn, files[i].type, files[i].data, *files[i].len);
    return send_problem(conn, 404, "Not found", "no such file in the console", 0, NULL, NULL);
}

static enum MHD_Result on_request_inner(void *cls, struct MHD_Connection *conn, const char *url,
                                        const char *method, const char *version,
                                        const char *upload_data, size_t *upload_data_size,
                                        void **con_cls)
{
    (void)version;
    struct gw_http *h = cls;
    struct req *r = *con_cls;
    if (r == NULL) {
        r = req_new(h);
        if (r == NULL)
            return MHD_NO;
        r->h = h;
        r->conn = conn;
        *con_cls = r;
        request_start(r, method, url);
        current = r;
        atomic_fetch_add(&gw_status.http_requests, 1);
        atomic_store(&h->last_request_ms, (long long)gw_now_ms());
        if (strncmp(url, "/ui", 3) == 0 && (url[3] == '\0' || url[3] == '/')) {
            r->state = REQ_ANSWERED;
            r->mres = GW_MATCH_NOT_FOUND;
            return serve_ui(h, conn, url, method);
        }
        r->mres = gw_route_match(method, url, &r->match);
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > h->cfg->max_body)
            r->too_large = 1;
        /* Authentication comes before the body: a request without a valid token is answered
         * now, and its body is never read into memory. */
        if (r->mres == GW_MATCH_OK && !atomic_load(&h->draining)) {
            enum MHD_Result rc;
            if (refuse_unauthorized(r, &rc)) {
                r->state = REQ_ANSWERED;
                return rc;
            }
        }
        return MHD_YES;
    }
    current = r;
    if (r->state == REQ_WAITING) {
        /* Resumed: the loop thread has set the result. */
        r->state = REQ_ANSWERED;
        if (r->match.route == GW_ROUTE_HOOK && r->cmd->status >= 500 && h->replay != NULL)
            forget_hook(r);
        if (r->cmd->op == GW_OP_STREAM_OPEN && r->cmd->status == 200)
            return send_stream(conn, r->cmd->stream);
        if (r->match.route == GW_ROUTE_NODE_FEED && r->cmd->status == 200)
            return send_feed(h, r);
        return send_reply(conn, r->cmd->status, r->cmd->result, r->cmd->retry_after, NULL, NULL);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > h->cfg->max_body) {
            r->too_large = 1;
            return MHD_YES; /* read and drop the rest, then answer 413 */
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 512; /* most bodies: from the per-thread cache */
            while (cap < r->len + n + 1)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (b == NULL)
                return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        r->body[r->len] = '\0';
        return MHD_YES;
    }
    if (r->state == REQ_ANSWERED)
        return MHD_YES;
    r->state = REQ_ANSWERED;
    if (r->too_large) {
        char detail[96];
        snprintf(detail, sizeof(detail), "body: larger than %zu bytes", h->cfg->max_body);
        return send_problem(conn, 413, "Request body too large", detail, 0, NULL, NULL);
    }
    switch (r->mres) {
    case GW_MATCH_NOT_FOUND:
        return send_problem(conn, 404, "Not found", "no such route", 0, NULL, NULL);
    case GW_MATCH_METHOD:
        return send_problem(conn, 405, "Method not allowed", "see the Allow header", 0,
                            MHD_HTTP_HEADER_ALLOW, r->match.allow);
    case GW_MATCH_BAD:
        return send_problem(conn, 400, "Invalid path", r->match.error, 0, NULL, NULL);
    case GW_MATCH_OK:
        break;
    }
    if (atomic_load(&h->draining))
        return send_problem(conn, 503, "Shutting down", "the gateway is stopping", 5,
                            MHD_HTTP_HEADER_CONNECTION, "close");
    return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    struct gw_http *h = cls;
    struct req *r = *con_cls;
    if (r == NULL)
        return;
    struct gw_access a = {r->method,
                          r->path ? r->path : "?",
                          r->rid,
                          r->token ? r->token->name : NULL,
                          r->status,
                          r->bytes,
                          (double)(gw_now_ms() - r->start_ms)};
    gw_log_access(&a);
    if (r->mres == GW_MATCH_OK && r->status > 0)
        gw_status_http_observe((int)r->match.route, r->status, (gw_now_ms() - r->start_ms) * 1000);
    if (atomic_load(&h->draining)) /* its client may come back at once: see gw_http_stop */
        atomic_store(&h->last_request_ms, (long long)gw_now_ms());
    req_free(h, r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    gw_warn("http: %s", buf);
}

static void run_mhd(struct gw_http *h);

static void on_mhd_timer(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct gw_http *h = arg;
    h->timer = 0;
    run_mhd(h);
}

/* One MHD pass, then what MHD asks for: another pass at once (it has data left to process on
 * some connection), a timer (connection timeouts), or nothing until its descriptor is ready. */
static void run_mhd(struct gw_http *h)
{
    h->run_soon = 0;
    MHD_run(h->daemon);
    MHD_UNSIGNED_LONG_LONG ms = 0;
    int has = MHD_get_timeout(h->daemon, &ms) == MHD_YES;
    int64_t delay = ms > 60000 ? 60000 : (int64_t)ms;
    int64_t at = has && ms > 0 ? gw_now_ms() + delay : 0;
    /* A timer that fires no later than needed is kept: it runs a pass and is armed again.
     * Replacing it on every pass (each request) cost an allocation and a walk of the list. */
    if (h->timer && (at == 0 || h->timer_at > at)) {
        gw_loop_timer_cancel(h->loop, h->timer);
        h->timer = 0;
    }
    if (has && ms == 0)
        h->run_soon = 1;
    else if (has && h->timer == 0) {
        h->timer = gw_loop_timer_add(h->loop, delay, on_mhd_timer, h);
        h->timer_at = at;
    }
}

static void on_mhd_fd(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    run_mhd(arg);
}

static int on_mhd_round(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct gw_http *h = arg;
    if (h->epoll_fd < 0 || !h->run_soon)
        return 0;
    run_mhd(h);
    return h->run_soon;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *b = realloc(buf, cap);
            if (b == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        memcpy(buf + len, chunk, n);
        len += n;
        buf[len] = '\0';
    }
    fclose(f);
    return buf;
}

static void free_http(struct gw_http *h)
{
    gw_replay_free(h->replay);
    gw_workq_free(h->resolver);
    if (h->https_key != NULL)
        memset(h->https_key, 0, strlen(h->https_key)); /* a secret: not left in freed memory */
    free(h->https_key);
    free(h->https_cert);
    while (h->spare != NULL) {
        struct req *r = h->spare;
        h->spare = r->next_spare;
        req_destroy(r);
    }
    free(h);
}

struct gw_http *gw_http_start(const struct gw_config *cfg, struct gw_mailbox *mb,
                              struct gw_loop *loop, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (cfg->http_threads > 0)
        flags |= MHD_USE_INTERNAL_POLLING_THREAD;
    if (inet_pton(AF_INET, cfg->listen_host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)cfg->listen_port);
    } else if (inet_pton(AF_INET6, cfg->listen_host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)cfg->listen_port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "--listen: '%s' is not a numeric IPv4 or IPv6 address",
                 cfg->listen_host);
        return NULL;
    }
    /* Metrics label each route "METHOD /path/{template}". */
    static char labels[GW_ROUTE_COUNT][128];
    static const char *names[GW_ROUTE_COUNT];
    for (int i = 0; i < GW_ROUTE_COUNT; i++) {
        snprintf(labels[gw_routes[i].route], sizeof(labels[0]), "%s %s", gw_routes[i].method,
                 gw_routes[i].pattern);
        names[gw_routes[i].route] = labels[gw_routes[i].route];
    }
    gw_status_set_routes(names, GW_ROUTE_COUNT);
    struct gw_http *h = calloc(1, sizeof(*h));
    if (h != NULL && ((cfg->hook_replay_window_ms > 0 &&
                       (h->replay = gw_replay_new(cfg->hook_replay_window_ms, 100000)) == NULL) ||
                      (h->resolver = gw_workq_new(4)) == NULL)) {
        free_http(h);
        h = NULL;
    }
    if (h == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->cfg = cfg;
    h->mb = mb;
    h->loop = loop;
    h->epoll_fd = -1;
    /* The per-connection memory bounds the request headers (about 14 KiB fit in 16 KiB, as with
     * common servers' defaults). libmicrohttpd clears what a request used before the next one on
     * the connection, so a larger pool showed as memset in the publish profile. */
    if (cfg->https_cert != NULL) {
        h->https_cert = read_file(cfg->https_cert);
        h->https_key = read_file(cfg->https_key);
        if (h->https_cert == NULL || h->https_key == NULL) {
            snprintf(err, errlen, "cannot read --tls-cert or --tls-key");
            free_http(h);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem pool[] = {
        {cfg->http_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
         (intptr_t)cfg->http_threads, NULL},
        {MHD_OPTION_END, 0, NULL},
        {MHD_OPTION_END, 0, NULL},
        {MHD_OPTION_END, 0, NULL}};
    if (h->https_cert != NULL) {
        /* after the pool entry, which may be an END: options past an END are not read, so the
         * TLS ones go first then */
        int k = cfg->http_threads > 1 ? 1 : 0;
        pool[k] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->https_cert};
        pool[k + 1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->https_key};
    }
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->listen_port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_SOCK_ADDR, &ss, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_ARRAY, pool,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->http_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, MHD_OPTION_END);
    if (h->daemon == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not available%s)",
                 cfg->listen_host, cfg->listen_port,
                 h->https_cert ? ", or the certificate and key do not match" : "");
        free_http(h);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : cfg->listen_port;
    if (cfg->http_threads == 0) {
        info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (info == NULL || gw_loop_watch(loop, info->epoll_fd, POLLIN, on_mhd_fd, h) != 0 ||
            gw_loop_on_round(loop, on_mhd_round, h) != 0) {
            snprintf(err, errlen, "cannot run the HTTP server on the event loop");
            MHD_stop_daemon(h->daemon);
            free_http(h);
            return NULL;
        }
        h->epoll_fd = info->epoll_fd;
        h->run_soon = 1;
        loop_http = h;
    }
    return h;
}

void gw_http_drain(struct gw_http *h)
{
    if (h != NULL)
        atomic_store(&h->draining, 1);
}

int gw_http_port(const struct gw_http *h)
{
    return h->port;
}

/* Waits 10 ms; when MHD runs on the loop (which has stopped by now), serves meanwhile. */
static void serve_10ms(struct gw_http *h)
{
    if (h->epoll_fd < 0) {
        usleep(10000);
        return;
    }
    int64_t end = gw_now_ms() + 10;
    for (int64_t left = 10; left > 0; left = end - gw_now_ms()) {
        struct pollfd p = {h->epoll_fd, POLLIN, 0};
        if (!h->run_soon)
            poll(&p, 1, (int)left);
        run_mhd(h);
    }
}

/* 1 when a connection waits in the listening socket's accept queue: the kernel has completed
 * it, so the client has sent or is sending its request, and closing the listener would reset
 * it instead of refusing it. */
static int accept_pending(struct gw_http *h)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (info == NULL || info->listen_fd == MHD_INVALID_SOCKET)
        return 0;
    struct pollfd p = {info->listen_fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

void gw_http_stop(struct gw_http *h)
{
    if (h == NULL)
        return;
    /* While requests still arrive or are answered (each new one gets 503 while draining, and a
     * client answered a moment ago may be about to send its next), keep listening: closing the
     * socket would reset connections waiting in the accept queue. Up to two seconds. */
    for (int i = 0; i < 200 && atomic_load(&h->draining); i++) {
        if (gw_now_ms() - atomic_load(&h->last_request_ms) >= 200 && !accept_pending(h))
            break;
        serve_10ms(h);
    }
    /* Resolutions under way post their commands (refused with 503 once the mailbox is closed),
     * so no connection stays suspended. */
    gw_workq_free(h->resolver);
    h->resolver = NULL;
    /* The accept queue once more, right before the listener closes. */
    for (int i = 0; i < 20 && accept_pending(h); i++)
        serve_10ms(h);
    MHD_socket lsock = MHD_quiesce_daemon(h->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    /* Give answers already queued up to two seconds to reach their clients. */
    for (int i = 0; i < 200; i++) {
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
        if (info == NULL || info->num_connections == 0)
            break;
        serve_10ms(h);
    }
    if (h->epoll_fd >= 0) {
        loop_http = NULL;
        gw_loop_watch(h->loop, h->epoll_fd, 0, NULL, NULL);
        if (h->timer)
            gw_loop_timer_cancel(h->loop, h->timer);
    }
    MHD_stop_daemon(h->daemon);
    free_http(h);
}
