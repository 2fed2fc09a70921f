/* libstrophe glue. libstrophe has no descriptor getter and no wake-up call, so the socket is
 * captured in the sockopt callback (on every reconnect) and watched by the gateway loop, which
 * calls xmpp_run_once(ctx, 0) when it is readable, after sends were queued, and on a one-second
 * tick for libstrophe's own timers. IQ answers are matched against our own pending table, which
 * also gives every request the timeout libstrophe lacks. */
#include "session_int.h"

#include "../gateway/hmap.h"
#include "../gateway/log.h"
#include "../gateway/loop.h"
#include "../gateway/status.h"
#include "event.h"
#include "pubsub.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { ST_DOWN = 0, ST_CONNECTING, ST_UP, ST_STOPPED };

struct gw_iq {
    char id[24];
    char *to;
    int64_t deadline;
    int64_t sent_us;
    struct gw_cmd *cmd;
    gw_iq_cb cb;
    int step;
    struct gw_iq *prev, *next;
};

struct gw_xmpp {
    const struct gw_config *cfg;
    struct gw_loop *loop;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    xmpp_log_t log;
    enum state state;
    int fd;
    int watched_fd;
    short watched_events;
    int need_run;
    int progress;
    int backoff_ms;
    uint64_t reconnect_timer, expiry_timer, tick_timer;
    unsigned long long next_id;
    struct gw_iq *head, *tail; /* ordered by deadline: every IQ gets the same timeout */
    int npending;
    char bare[1100];
    char domain[1100];
    /* liveness: the last time anything arrived, and the keepalive ping in flight */
    int64_t last_rx_ms, ping_sent_ms, connect_started_ms, up_since_ms;
    char ping_id[24];
    /* why the session is going down, set before tearing it down ourselves */
    char teardown[600];
    int auth_failed, conflicts, fatal;
    int connect_errno;     /* the errno of the last failed connect, from libstrophe's log */
    struct gw_hmap *known; /* nodes known to exist (see ops.c) */
    gw_xmpp_node_cb node_cb;
    void *node_arg;
    gw_xmpp_event_cb event_cb;
    void *event_arg;
    /* Events read in this round, handed on together when it ends (or before an answer that
     * may depend on them): the registry then stores them in one transaction, not one each. */
    json_t *events;
    gw_xmpp_state_cb state_cb;
    void *state_arg;
    /* Stanzas sent during a loop round, written together at its end: one send() and one TCP
     * segment for many publishes instead of one each (libstrophe writes each queued stanza
     * with its own send()). */
    char *out;
    size_t outlen, outcap;
};

/* Queues stanza text for the end of the round (see out). */
static void send_text(struct gw_xmpp *x, const char *text, size_t len)
{
    x->need_run = 1;
    if (x->outlen + len + 1 > x->outcap) { /* + NUL: libstrophe logs what it sends with %s */
        size_t cap = x->outcap ? x->outcap : 16384;
        while (cap < x->outlen + len + 1)
            cap *= 2;
        char *grown = realloc(x->out, cap);
        if (grown == NULL)
            return; /* as if lost on the wire: the request times out */
        x->out = grown;
        x->outcap = cap;
    }
    memcpy(x->out + x->outlen, text, len);
    x->outlen += len;
    x->out[x->outlen] = '\0';
}

/* Queues a stanza for the end of the round (see out). */
static void send_stanza(struct gw_xmpp *x, xmpp_stanza_t *stanza)
{
    char *text = NULL;
    size_t len = 0;
    x->need_run = 1;
    if (xmpp_stanza_to_text(stanza, &text, &len) != XMPP_EOK)
        return;
    send_text(x, text, len);
    xmpp_free(x->ctx, text);
}

/* libstrophe logs at debug level carry raw stream data, SASL exchanges included: only warnings
 * and errors are passed on, so no secret can reach the log. */
static void strophe_log(void *userdata, xmpp_log_level_t level, const char *area, const char *msg)
{
    struct gw_xmpp *x = userdata;
    /* libstrophe reports a refused login only here ("Cannot authenticate with known methods")
     * before it closes the stream, so this is where it is recognised. */
    if (level == XMPP_LEVEL_ERROR && area && strcmp(area, "auth") == 0)
        x->auth_failed = 1;
    /* Nor does it pass a failed connect's errno to the connection handler: it logs it. */
    static const char failed[] = "connection failed, error ";
    int err = 0;
    if (msg && strncmp(msg, failed, sizeof(failed) - 1) == 0 &&
        sscanf(msg + sizeof(failed) - 1, "%d", &err) == 1 && err > 0)
        x->connect_errno = err; /* every debug line comes here: sscanf only for this one */
    if (level == XMPP_LEVEL_ERROR)
        gw_error("xmpp %s: %s", area, msg);
    else if (level == XMPP_LEVEL_WARN)
        gw_warn("xmpp %s: %s", area, msg);
}

const struct gw_config *gw_xmpp_config(struct gw_xmpp *x)
{
    return x->cfg;
}

xmpp_ctx_t *gw_xmpp_ctx(struct gw_xmpp *x)
{
    return x->ctx;
}

const char *gw_xmpp_bare_jid(struct gw_xmpp *x)
{
    return x->bare;
}

const char *gw_xmpp_service(struct gw_xmpp *x, const struct gw_cmd *cmd)
{
    return cmd->service ? cmd->service : x->cfg->service;
}

int gw_xmpp_is_up(const struct gw_xmpp *x)
{
    return x->state == ST_UP;
}

void gw_xmpp_new_id(struct gw_xmpp *x, char *buf)
{
    snprintf(buf, 24, "gw%llx", ++x->next_id);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void unlink_iq(struct gw_xmpp *x, struct gw_iq *iq)
{
    x->npending--;
    if (iq->prev)
        iq->prev->next = iq->next;
    else
        x->head = iq->next;
    if (iq->next)
        iq->next->prev = iq->prev;
    else
        x->tail = iq->prev;
}

static void on_expiry(struct gw_loop *loop, void *arg);

static void arm_expiry(struct gw_xmpp *x)
{
    if (x->expiry_timer != 0 || x->head == NULL)
        return;
    x->expiry_timer = gw_loop_timer_add(x->loop, x->head->deadline - gw_now_ms(), on_expiry, x);
}

static void on_expiry(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct gw_xmpp *x = arg;
    x->expiry_timer = 0;
    int64_t now = gw_now_ms();
    while (x->head && x->head->deadline <= now) {
        struct gw_iq *iq = x->head;
        unlink_iq(x, iq);
        atomic_fetch_add(&gw_status.iq_timeouts, 1);
        gw_warn("no answer to IQ %s within %d ms%s%s", iq->id, x->cfg->iq_timeout_ms,
                iq->cmd->rid[0] ? " rid=" : "", iq->cmd->rid);
        gw_cmd_fail(iq->cmd, 504, "XMPP request timed out",
                    "the XMPP service did not answer in time", "remote-server-timeout");
        free(iq->to);
        free(iq);
    }
    arm_expiry(x);
}

static void fail_all_pending(struct gw_xmpp *x, const char *why)
{
    while (x->head) {
        struct gw_iq *iq = x->head;
        unlink_iq(x, iq);
        gw_cmd_fail_unavailable(iq->cmd, why);
        free(iq->to);
        free(iq);
    }
    if (x->expiry_timer) {
        gw_loop_timer_cancel(x->loop, x->expiry_timer);
        x->expiry_timer = 0;
    }
}

/* Admits an IQ about to be sent and tracks its answer; 0, or -1 when cmd was failed. */
static int track_iq(struct gw_xmpp *x, const char *id, const char *to, struct gw_cmd *cmd,
                    gw_iq_cb cb, int step)
{
    if (x->state != ST_UP) {
        gw_cmd_fail_unavailable(cmd, "the gateway is not connected to its XMPP server");
        return -1;
    }
    if (x->npending >= x->cfg->max_inflight) {
        cmd->retry_after = 1;
        gw_cmd_fail(cmd, 503, "Too many requests in flight",
                    "the gateway is waiting for as many XMPP answers as it allows (--max-inflight)",
                    NULL);
        return -1;
    }
    struct gw_iq *iq = calloc(1, sizeof(*iq));
    if (iq == NULL || (to != NULL && (iq->to = strdup(to)) == NULL)) {
        free(iq);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return -1;
    }
    snprintf(iq->id, sizeof(iq->id), "%s", id);
    iq->deadline = gw_now_ms() + x->cfg->iq_timeout_ms;
    iq->sent_us = now_us();
    iq->cmd = cmd;
    iq->cb = cb;
    iq->step = step;
    iq->prev = x->tail;
    if (x->tail)
        x->tail->next = iq;
    else
        x->head = iq;
    x->tail = iq;
    x->npending++;
    return 0;
}

void gw_xmpp_send_iq(struct gw_xmpp *x, xmpp_stanza_t *stanza, struct gw_cmd *cmd, gw_iq_cb cb,
                     int step)
{
    if (stanza == NULL) {
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    if (track_iq(x, xmpp_stanza_get_id(stanza), xmpp_stanza_get_to(stanza), cmd, cb, step) == 0) {
        send_stanza(x, stanza);
        atomic_fetch_add(&gw_status.iq_sent, 1);
        arm_expiry(x);
    }
    xmpp_stanza_release(stanza);
}

void gw_xmpp_send_iq_text(struct gw_xmpp *x, char *text, size_t len, const char *id, const char *to,
                          struct gw_cmd *cmd, gw_iq_cb cb, int step)
{
    if (text == NULL) {
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    if (track_iq(x, id, to, cmd, cb, step) == 0) {
        send_text(x, text, len);
        atomic_fetch_add(&gw_status.iq_sent, 1);
        arm_expiry(x);
    }
    free(text);
}

void gw_xmpp_fail_from_error(struct gw_cmd *cmd, xmpp_stanza_t *answer)
{
    struct gw_xmpp_error e;
    gw_pubsub_error_parse(answer, &e);
    char field[200];
    int status = gw_xmpp_error_status(&e, field, sizeof(field));
    char title[160], detail[1500];
    snprintf(title, sizeof(title), "XMPP error: %s", e.condition);
    if (field[0] != '\0') {
        /* Name the request member the field came from. */
        const char *member = cmd->op == GW_OP_PUBLISH ? "publish_options" : "config";
        snprintf(detail, sizeof(detail), "%s: the service refused the field '%s' (%.1000s)", member,
                 field, e.text);
    } else if (status == 404 && strcmp(e.condition, "item-not-found") == 0 && cmd->node != NULL &&
               cmd->item_id == NULL) {
        snprintf(detail, sizeof(detail), "node: no node '%.300s' at %.300s%s%.600s", cmd->node,
                 cmd->service ? cmd->service : "the pubsub service", e.text ? " (" : "",
                 e.text ? e.text : "");
        if (e.text)
            strncat(detail, ")", sizeof(detail) - strlen(detail) - 1);
    } else if (e.text != NULL)
        snprintf(detail, sizeof(detail), "%.1000s", e.text);
    else if (e.pubsub_condition != NULL)
        snprintf(detail, sizeof(detail), "the service answered %s (%s)", e.condition,
                 e.pubsub_condition);
    else
        snprintf(detail, sizeof(detail), "the service answered %s", e.condition);
    json_t *problem = gw_problem_new(status, title, detail, e.condition);
    if (problem != NULL && e.pubsub_condition != NULL)
        json_object_set_new(problem, "pubsub_condition", json_string(e.pubsub_condition));
    if (problem != NULL && field[0] != '\0')
        json_object_set_new(problem, "field", json_string(field));
    if (status == 503 || status == 429)
        cmd->retry_after = 5;
    gw_cmd_finish(cmd, status, problem);
}

/* Whether an answer from `from` can be the answer to a request sent to `to`. A stanza without
 * from comes from our own account (RFC 6120 8.1.2.1): valid for requests to our bare JID or
 * our server, as with PEP. */
static int answered_by(struct gw_xmpp *x, const char *to, const char *from)
{
    if (to == NULL)
        return from == NULL;
    if (from != NULL)
        return strcasecmp(to, from) == 0;
    const char *domain = strchr(x->bare, '@');
    return strcasecmp(to, x->bare) == 0 || (domain && strcasecmp(to, domain + 1) == 0);
}

static void flush_events(struct gw_xmpp *x);

static int iq_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    (void)conn;
    struct gw_xmpp *x = userdata;
    x->progress = 1;
    const char *type = xmpp_stanza_get_type(stanza);
    const char *id = xmpp_stanza_get_id(stanza);
    if (type == NULL)
        return 1;
    if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
        /* Requests addressed to us: answer ping, refuse the rest as RFC 6120 asks. */
        xmpp_stanza_t *reply;
        if (strcmp(type, "get") == 0 && gw_stanza_child(stanza, "ping", "urn:xmpp:ping")) {
            reply = xmpp_stanza_reply(stanza);
            if (reply)
                xmpp_stanza_set_type(reply, "result");
        } else {
            reply = xmpp_stanza_reply_error(stanza, "cancel", "service-unavailable", NULL);
        }
        if (reply) {
            send_stanza(x, reply);
            xmpp_stanza_release(reply);
        }
        return 1;
    }
    if (id == NULL || (strcmp(type, "result") != 0 && strcmp(type, "error") != 0))
        return 1;
    if (x->ping_id[0] != '\0' && strcmp(id, x->ping_id) == 0) {
        x->ping_id[0] = '\0'; /* any answer, even an error, shows the server is alive */
        x->ping_sent_ms = 0;
        return 1;
    }
    /* Only the entity we asked may answer: an answer from elsewhere with a guessed id is
     * ignored, as is a late answer to a request that already timed out. */
    const char *from = xmpp_stanza_get_from(stanza);
    struct gw_iq *iq = x->head;
    while (iq && (strcmp(iq->id, id) != 0 || !answered_by(x, iq->to, from)))
        iq = iq->next;
    if (iq == NULL)
        return 1;
    /* Events read before this answer are handed on first, as they came, unless it answers a
     * publish (nothing there depends on them, and publishing with callbacks would otherwise
     * store each event alone). */
    if (iq->cmd == NULL || iq->cmd->op != GW_OP_PUBLISH)
        flush_events(x);
    unlink_iq(x, iq);
    gw_hist_observe(&gw_status.xmpp_rtt, now_us() - iq->sent_us);
    free(iq->to);
    struct gw_cmd *cmd = iq->cmd;
    gw_iq_cb cb = iq->cb;
    int step = iq->step;
    free(iq);
    if (strcmp(type, "error") == 0 && cb == NULL)
        gw_xmpp_fail_from_error(cmd, stanza);
    else
        cb(x, cmd, stanza, step);
    return 1;
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata);

/* Hands on the events read so far, in the order they came. */
static void flush_events(struct gw_xmpp *x)
{
    json_t *events = x->events;
    x->events = NULL;
    if (events != NULL && json_array_size(events) > 0 && x->event_cb != NULL)
        x->event_cb(events, x->event_arg);
    json_decref(events);
}

static void set_state(struct gw_xmpp *x, enum state st)
{
    if (st != ST_UP)
        flush_events(x); /* what was read before the session went is taken all the same */
    int was_up = x->state == ST_UP;
    if (st != ST_UP)
        x->outlen = 0; /* what was not written goes with the session */
    x->state = st;
    atomic_store(&gw_status.xmpp_up, st == ST_UP);
    if (st == ST_UP && !was_up && x->state_cb)
        x->state_cb(1, x->state_arg);
    else if (st != ST_UP && was_up && x->state_cb)
        x->state_cb(0, x->state_arg);
}

static void connect_now(struct gw_xmpp *x);

static void on_reconnect(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct gw_xmpp *x = arg;
    x->reconnect_timer = 0;
    if (x->state == ST_DOWN)
        connect_now(x);
}

static void schedule_reconnect(struct gw_xmpp *x)
{
    if (x->state == ST_STOPPED || x->reconnect_timer)
        return;
    unsigned int r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = 0;
    /* +-20% jitter so several gateways do not reconnect in lockstep. */
    int delay = x->backoff_ms + (int)((long)x->backoff_ms * ((int)(r % 41) - 20) / 100);
    gw_info("reconnecting to XMPP in %d ms", delay);
    x->reconnect_timer = gw_loop_timer_add(x->loop, delay, on_reconnect, x);
    x->backoff_ms =
        x->backoff_ms * 2 > x->cfg->reconnect_max_ms ? x->cfg->reconnect_max_ms : x->backoff_ms * 2;
}

static void unwatch(struct gw_xmpp *x)
{
    if (x->watched_fd >= 0)
        gw_loop_watch(x->loop, x->watched_fd, 0, NULL, NULL);
    x->watched_fd = -1;
    x->watched_events = 0;
}

/* Counts every stanza received: the keepalive pings only when the stream is quiet. */
static int rx_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    (void)conn;
    (void)stanza;
    ((struct gw_xmpp *)userdata)->last_rx_ms = gw_now_ms();
    return 1;
}

static void send_presence(struct gw_xmpp *x)
{
    /* Presence with priority >= 0, or notifications to the bare JID are not delivered. */
    xmpp_stanza_t *pres = xmpp_presence_new(x->ctx);
    if (pres == NULL)
        return;
    xmpp_stanza_t *prio = xmpp_stanza_new(x->ctx);
    xmpp_stanza_t *txt = xmpp_stanza_new(x->ctx);
    if (prio && txt) {
        xmpp_stanza_set_name(prio, "priority");
        xmpp_stanza_set_text(txt, "1");
        xmpp_stanza_add_child(prio, txt);
        xmpp_stanza_add_child(pres, prio);
    }
    if (txt)
        xmpp_stanza_release(txt);
    if (prio)
        xmpp_stanza_release(prio);
    send_stanza(x, pres);
    xmpp_stanza_release(pres);
}

static void session_up(struct gw_xmpp *x, xmpp_conn_t *conn)
{
    xmpp_handler_delete(conn, iq_handler);
    xmpp_handler_delete(conn, message_handler);
    xmpp_handler_delete(conn, rx_handler);
    xmpp_handler_add(conn, rx_handler, NULL, NULL, NULL, x);
    xmpp_handler_add(conn, iq_handler, NULL, "iq", NULL, x);
    xmpp_handler_add(conn, message_handler, NULL, "message", NULL, x);
    send_presence(x);
    x->need_run = 1;
    x->backoff_ms = 500;
    x->auth_failed = 0;
    x->teardown[0] = '\0';
    x->ping_id[0] = '\0';
    x->ping_sent_ms = 0;
    x->last_rx_ms = x->up_since_ms = gw_now_ms();
    gw_status_set_jid(xmpp_conn_get_bound_jid(conn));
    gw_status_set_reason(NULL);
    atomic_fetch_add(&gw_status.xmpp_connects, 1);
    gw_info("XMPP session up as %s (%s)", xmpp_conn_get_bound_jid(conn),
            xmpp_conn_is_secured(conn) ? "TLS" : "no TLS");
    set_state(x, ST_UP);
}

/* "host:port" of the server the gateway connects to, for messages. */
static void server_where(const struct gw_xmpp *x, char *buf, size_t len)
{
    const char *host = x->cfg->xmpp_host ? x->cfg->xmpp_host : x->domain;
    if (x->cfg->xmpp_port > 0)
        snprintf(buf, len, "%s:%d", host, x->cfg->xmpp_port);
    else
        snprintf(buf, len, "%s", host);
}

/* Why the session ended, in words a person can act on; returns the delay before the next
 * attempt, or -1 when the gateway should not try again. */
static int explain_down(struct gw_xmpp *x, int was_up, int error,
                        const xmpp_stream_error_t *stream_error, char *why, size_t len)
{
    char where[1200];
    server_where(x, where, sizeof(where));
    int delay = x->backoff_ms;
    if (x->teardown[0] != '\0') {
        snprintf(why, len, "%s", x->teardown);
    } else if (stream_error != NULL && stream_error->type == XMPP_SE_CONFLICT) {
        /* Another client logged in with the same account and resource: two gateways would
         * throw each other out twice a second. Wait longer each time instead. */
        x->conflicts++;
        long d = (long)x->cfg->reconnect_max_ms << (x->conflicts < 5 ? x->conflicts - 1 : 4);
        delay = d > 600000 ? 600000 : (int)d;
        snprintf(why, len,
                 "another client logged in as %.300s/%.100s (stream conflict): is a second gateway "
                 "using "
                 "this account and resource? Give each its own --resource; retrying in %d s",
                 x->bare, x->cfg->resource, delay / 1000);
    } else if (stream_error != NULL) {
        const char *cond = "error";
        for (xmpp_stanza_t *c =
                 stream_error->stanza ? xmpp_stanza_get_children(stream_error->stanza) : NULL;
             c; c = xmpp_stanza_get_next(c)) {
            const char *n = xmpp_stanza_get_name(c);
            if (xmpp_stanza_is_tag(c) && n && strcmp(n, "text") != 0) {
                cond = n;
                break;
            }
        }
        snprintf(why, len, "the server at %.300s closed the stream: %.100s%s%.300s", where, cond,
                 stream_error->text ? ": " : "", stream_error->text ? stream_error->text : "");
    } else if (x->auth_failed) {
        if (x->cfg->exit_on_auth_failure)
            delay = -1;
        else
            delay = x->cfg->reconnect_max_ms > 60000 ? x->cfg->reconnect_max_ms : 60000;
        snprintf(why, len,
                 "authentication failed for %.300s at %.300s: the server refused the password (or "
                 "offered no mechanism libstrophe supports)%s",
                 x->bare, where, delay < 0 ? "" : "; retrying with a long backoff");
    } else if (error != 0 || (!was_up && x->connect_errno != 0)) {
        int e = !was_up && x->connect_errno != 0 ? x->connect_errno : error;
        snprintf(why, len, "%s %.300s: %s", was_up ? "lost the connection to" : "cannot connect to",
                 where, e == ETIMEDOUT ? "timed out" : strerror(e));
    } else {
        snprintf(why, len, "the server at %.300s closed the connection", where);
    }
    x->teardown[0] = '\0';
    return delay;
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
    struct gw_xmpp *x = userdata;
    x->progress = 1;
    if (status == XMPP_CONN_CONNECT) {
        session_up(x, conn);
        return;
    }
    /* XMPP_CONN_DISCONNECT or XMPP_CONN_FAIL */
    int was_up = x->state == ST_UP;
    if (was_up)
        atomic_fetch_add(&gw_status.xmpp_disconnects, 1);
    if (was_up && gw_now_ms() - x->up_since_ms > 60000)
        x->conflicts = 0; /* a session that lasted is no longer flapping */
    gw_status_set_jid(NULL);
    unwatch(x);
    x->fd = -1;
    x->ping_id[0] = '\0';
    x->ping_sent_ms = 0;
    if (x->state == ST_STOPPED) {
        fail_all_pending(x, "the gateway is shutting down");
        return;
    }
    char why[1024];
    int delay = explain_down(x, was_up, error, stream_error, why, sizeof(why));
    gw_status_set_reason(why);
    set_state(x, ST_DOWN);
    fail_all_pending(x, "the XMPP connection was lost");
    gw_warn("XMPP %s: %s", was_up ? "session lost" : "connection attempt failed", why);
    if (delay < 0) {
        gw_error("exiting: --exit-on-auth-failure is set");
        x->fatal = 1;
        gw_loop_stop(x->loop);
        return;
    }
    if (delay > x->backoff_ms)
        x->backoff_ms = delay;
    schedule_reconnect(x);
}

/* libstrophe gives the sockopt callback no user data; a process runs one session, so the
 * session is found through its connection here. */
static struct gw_xmpp *sessions[4];

static struct gw_xmpp *session_of(xmpp_conn_t *conn)
{
    for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++)
        if (sessions[i] && sessions[i]->conn == conn)
            return sessions[i];
    return NULL;
}

static int sockopt_cb(xmpp_conn_t *conn, void *sock)
{
    struct gw_xmpp *x = session_of(conn);
    int fd = *(int *)sock;
    if (x != NULL) {
        x->fd = fd;
        x->need_run = 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    return 0;
}

/* The TLS layer could not verify the server's certificate: name the reason and the certificate,
 * and refuse (unless --tls-insecure, which also set XMPP_CONN_FLAG_TRUST_TLS). */
static int certfail_cb(const xmpp_tlscert_t *cert, const char *const errormsg)
{
    xmpp_conn_t *conn = xmpp_tlscert_get_conn(cert);
    struct gw_xmpp *x = session_of(conn);
    for (size_t i = 0; x == NULL && i < sizeof(sessions) / sizeof(sessions[0]); i++)
        x = sessions[i]; /* the OpenSSL backend leaves the certificate's connection unset */
    const char *subject = xmpp_tlscert_get_string(cert, XMPP_CERT_SUBJECT);
    const char *issuer = xmpp_tlscert_get_string(cert, XMPP_CERT_ISSUER);
    const char *until = xmpp_tlscert_get_string(cert, XMPP_CERT_NOTAFTER);
    char why[600];
    snprintf(why, sizeof(why),
             "the server's TLS certificate is not trusted: %.120s (subject %.120s, issuer %.120s, "
             "valid until %.40s)%s",
             errormsg ? errormsg : "verification failed", subject ? subject : "?",
             issuer ? issuer : "?", until ? until : "?",
             x && x->cfg->tls_insecure ? "" : "; use --tls-ca FILE to trust its CA");
    if (x != NULL && x->cfg->tls_insecure) {
        gw_warn("--tls-insecure: accepting a certificate that failed verification: %s", why);
        return 1;
    }
    gw_error("XMPP: %s", why);
    if (x != NULL)
        snprintf(x->teardown, sizeof(x->teardown), "%s", why);
    return 0;
}

static void on_fd(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    struct gw_xmpp *x = arg;
    x->need_run = 1;
}

/* Ends the session from our side: the reason is kept for explain_down, and shutting the
 * socket down makes libstrophe report the disconnect in its next round without waiting for a
 * server that may be frozen. */
static void tear_down(struct gw_xmpp *x, const char *why)
{
    snprintf(x->teardown, sizeof(x->teardown), "%s", why);
    gw_warn("XMPP: %s; closing the connection", why);
    if (x->fd >= 0)
        shutdown(x->fd, SHUT_RDWR);
    else
        xmpp_disconnect(x->conn);
    x->need_run = 1;
}

/* Liveness, checked every tick: a quiet stream gets a ping (XEP-0199) to the server, and a ping
 * not answered in time, or a connection attempt that does not reach a session, ends it. TCP
 * keepalive alone would not notice: the kernel of a frozen server still answers it. */
static void check_liveness(struct gw_xmpp *x)
{
    int64_t now = gw_now_ms();
    char why[300];
    if (x->state == ST_CONNECTING && x->connect_started_ms > 0 &&
        now - x->connect_started_ms > x->cfg->connect_timeout_ms) {
        x->connect_started_ms = 0;
        snprintf(why, sizeof(why),
                 "no XMPP session within %d s of connecting (server not answering)",
                 x->cfg->connect_timeout_ms / 1000);
        tear_down(x, why);
        return;
    }
    if (x->state != ST_UP || x->cfg->ping_interval_ms <= 0)
        return;
    if (x->ping_sent_ms > 0) {
        if (now - x->ping_sent_ms >= x->cfg->ping_timeout_ms) {
            snprintf(why, sizeof(why), "the XMPP server did not answer a ping within %d s",
                     x->cfg->ping_timeout_ms / 1000);
            x->ping_sent_ms = 0;
            x->ping_id[0] = '\0';
            tear_down(x, why);
        }
        return;
    }
    if (now - x->last_rx_ms < x->cfg->ping_interval_ms)
        return;
    xmpp_stanza_t *iq = xmpp_iq_new(x->ctx, "get", NULL);
    xmpp_stanza_t *ping = xmpp_stanza_new(x->ctx);
    if (iq != NULL && ping != NULL) {
        snprintf(x->ping_id, sizeof(x->ping_id), "ping%llx", ++x->next_id);
        xmpp_stanza_set_id(iq, x->ping_id);
        xmpp_stanza_set_to(iq, x->domain);
        xmpp_stanza_set_name(ping, "ping");
        xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
        xmpp_stanza_add_child(iq, ping);
        send_stanza(x, iq);
        x->ping_sent_ms = now;
    }
    if (ping)
        xmpp_stanza_release(ping);
    if (iq)
        xmpp_stanza_release(iq);
}

static void on_tick(struct gw_loop *loop, void *arg)
{
    struct gw_xmpp *x = arg;
    x->need_run = 1;
    check_liveness(x);
    x->tick_timer = gw_loop_timer_add(loop, 1000, on_tick, x);
}

/* Per loop round: let libstrophe read and write, then watch its socket for what it needs. */
static int on_round(struct gw_loop *loop, void *arg)
{
    struct gw_xmpp *x = arg;
    if (!x->need_run || x->state == ST_DOWN)
        return 0;
    x->need_run = 0;
    x->progress = 0;
    if (x->outlen > 0 && x->state == ST_UP) {
        xmpp_send_raw(x->conn, x->out, x->outlen);
        x->outlen = 0;
    }
    xmpp_run_once(x->ctx, 0);
    /* libstrophe reads at most 4 KiB a round; a TLS record (up to 16 KiB) may leave decrypted
     * data behind while the socket is quiet, so a secured session drains a few more rounds. */
    if (x->conn && xmpp_conn_is_secured(x->conn))
        for (int i = 0; i < 3; i++)
            xmpp_run_once(x->ctx, 0);
    flush_events(x);
    if (x->fd >= 0 && x->state != ST_DOWN) {
        short events = POLLIN;
        if (x->state == ST_CONNECTING || xmpp_conn_send_queue_len(x->conn) > 0)
            events |= POLLOUT;
        if (x->watched_fd != x->fd || x->watched_events != events) {
            if (x->watched_fd >= 0 && x->watched_fd != x->fd)
                gw_loop_watch(loop, x->watched_fd, 0, NULL, NULL);
            gw_loop_watch(loop, x->fd, events, on_fd, x);
            x->watched_fd = x->fd;
            x->watched_events = events;
        }
    }
    /* A round that handled stanzas may have queued replies or left more input buffered. */
    return x->progress || x->need_run;
}

static void connect_now(struct gw_xmpp *x)
{
    /* No stream management: a resumed stream would re-send requests that were already failed
     * with 503 when the connection dropped; the gateway reconnects and catches up by itself. */
    long flags = XMPP_CONN_FLAG_DISABLE_SM;
    if (x->cfg->tls == GW_TLS_OFF)
        flags |= XMPP_CONN_FLAG_DISABLE_TLS;
    else if (x->cfg->tls == GW_TLS_REQUIRED)
        flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
    if (x->cfg->tls_insecure)
        flags |= XMPP_CONN_FLAG_TRUST_TLS;
    xmpp_conn_set_flags(x->conn, flags);
    set_state(x, ST_CONNECTING);
    x->fd = -1;
    x->auth_failed = 0;
    x->connect_errno = 0;
    x->connect_started_ms = gw_now_ms();
    int rc = xmpp_connect_client(x->conn, x->cfg->xmpp_host, (unsigned short)x->cfg->xmpp_port,
                                 conn_handler, x);
    if (rc != XMPP_EOK) {
        /* libstrophe resolves the name (SRV, then A/AAAA) before it returns. */
        char why[1300], where[1200];
        server_where(x, where, sizeof(where));
        snprintf(why, sizeof(why), "cannot connect to %.300s: %s", where,
                 rc == XMPP_EMEM ? "out of memory" : "the name does not resolve (DNS failure)");
        gw_warn("XMPP connection attempt failed: %s", why);
        gw_status_set_reason(why);
        set_state(x, ST_DOWN);
        schedule_reconnect(x);
        return;
    }
    x->need_run = 1;
}

struct gw_xmpp *gw_xmpp_new(const struct gw_config *cfg, struct gw_loop *loop)
{
    struct gw_xmpp *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return NULL;
    x->cfg = cfg;
    x->loop = loop;
    x->fd = x->watched_fd = -1;
    x->backoff_ms = 500;
    x->log.handler = strophe_log;
    x->log.userdata = x;
    xmpp_initialize();
    x->ctx = xmpp_ctx_new(NULL, &x->log);
    x->conn = x->ctx ? xmpp_conn_new(x->ctx) : NULL;
    size_t slot = 0;
    while (slot < sizeof(sessions) / sizeof(sessions[0]) && sessions[slot] != NULL)
        slot++;
    if (x->conn == NULL || slot == sizeof(sessions) / sizeof(sessions[0])) {
        gw_xmpp_free(x);
        return NULL;
    }
    sessions[slot] = x;
    char *full = NULL;
    if (strchr(cfg->jid, '/') == NULL && asprintf(&full, "%s/%s", cfg->jid, cfg->resource) > 0) {
        xmpp_conn_set_jid(x->conn, full);
        free(full);
    } else {
        xmpp_conn_set_jid(x->conn, cfg->jid);
    }
    xmpp_conn_set_pass(x->conn, cfg->password);
    snprintf(x->bare, sizeof(x->bare), "%.*s", (int)strcspn(cfg->jid, "/"), cfg->jid);
    const char *at = strchr(x->bare, '@');
    snprintf(x->domain, sizeof(x->domain), "%s", at ? at + 1 : x->bare);
    xmpp_conn_set_sockopt_callback(x->conn, sockopt_cb);
    xmpp_conn_set_certfail_handler(x->conn, certfail_cb);
    if (cfg->tls_ca != NULL)
        xmpp_conn_set_cafile(x->conn, cfg->tls_ca);
    if (cfg->tls_insecure && cfg->tls != GW_TLS_OFF)
        gw_warn("--tls-insecure: the XMPP server's certificate is NOT verified; anyone between "
                "the gateway and the server can read and change everything. Development only.");
    x->known = gw_hmap_new();
    if (x->known == NULL) {
        gw_xmpp_free(x);
        return NULL;
    }
    gw_loop_on_round(loop, on_round, x);
    return x;
}

void gw_xmpp_set_event_cb(struct gw_xmpp *x, gw_xmpp_event_cb cb, void *arg)
{
    x->event_cb = cb;
    x->event_arg = arg;
}

void gw_xmpp_set_node_cb(struct gw_xmpp *x, gw_xmpp_node_cb cb, void *arg)
{
    x->node_cb = cb;
    x->node_arg = arg;
}

int gw_xmpp_fatal(const struct gw_xmpp *x)
{
    return x->fatal;
}

struct gw_hmap *gw_xmpp_known_nodes(struct gw_xmpp *x)
{
    return x->known;
}

void gw_xmpp_node_appeared(struct gw_xmpp *x, const char *service, const char *node)
{
    if (x->node_cb != NULL)
        x->node_cb(service, node, x->node_arg);
}

void gw_xmpp_set_state_cb(struct gw_xmpp *x, gw_xmpp_state_cb cb, void *arg)
{
    x->state_cb = cb;
    x->state_arg = arg;
}

void gw_xmpp_start(struct gw_xmpp *x)
{
    x->tick_timer = gw_loop_timer_add(x->loop, 1000, on_tick, x);
    connect_now(x);
}

void gw_xmpp_shutdown(struct gw_xmpp *x)
{
    if (x == NULL || x->state == ST_STOPPED)
        return;
    int was_connected = x->state != ST_DOWN;
    set_state(x, ST_STOPPED);
    fail_all_pending(x, "the gateway is shutting down");
    if (x->reconnect_timer)
        gw_loop_timer_cancel(x->loop, x->reconnect_timer);
    if (x->tick_timer)
        gw_loop_timer_cancel(x->loop, x->tick_timer);
    x->reconnect_timer = x->tick_timer = 0;
    if (was_connected) {
        xmpp_disconnect(x->conn);
        /* Flush </stream> and let libstrophe close the socket; bounded, never a hang. */
        for (int i = 0; i < 20 && !xmpp_conn_is_disconnected(x->conn); i++)
            xmpp_run_once(x->ctx, 10);
        flush_events(x);
    }
    unwatch(x);
}

void gw_xmpp_free(struct gw_xmpp *x)
{
    if (x == NULL)
        return;
    for (size_t i = 0; i < sizeof(sessions) / sizeof(sessions[0]); i++)
        if (sessions[i] == x)
            sessions[i] = NULL;
    fail_all_pending(x, "the gateway is shutting down");
    gw_hmap_free(x->known);
    if (x->conn)
        xmpp_conn_release(x->conn);
    if (x->ctx)
        xmpp_ctx_free(x->ctx);
    xmpp_shutdown();
    json_decref(x->events);
    free(x->out);
    free(x);
}

/* Approximate serialized size of a stanza (names, attributes, text), stopping past limit. */
static size_t stanza_size(xmpp_stanza_t *st, size_t limit)
{
    size_t n = 0;
    if (xmpp_stanza_is_text(st)) {
        const char *t = xmpp_stanza_get_text_ptr(st);
        return t ? strlen(t) : 0;
    }
    const char *name = xmpp_stanza_get_name(st);
    n += name ? 2 * strlen(name) + 5 : 0;
    int count = xmpp_stanza_get_attribute_count(st);
    if (count > 0) {
        const char **attrs = calloc((size_t)count * 2, sizeof(*attrs));
        if (attrs != NULL) {
            int got = xmpp_stanza_get_attributes(st, attrs, count * 2);
            for (int i = 0; i < got; i++)
                n += strlen(attrs[i]) + 2;
            free(attrs);
        }
    }
    for (xmpp_stanza_t *c = xmpp_stanza_get_children(st); c && n <= limit;
         c = xmpp_stanza_get_next(c))
        n += stanza_size(c, limit - n);
    return n;
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    (void)conn;
    struct gw_xmpp *x = userdata;
    x->progress = 1;
    xmpp_stanza_t *event = gw_stanza_child(stanza, "event", GW_NS_PUBSUB_EVENT);
    if (event == NULL)
        return 1;
    atomic_fetch_add(&gw_status.events_received, 1);
    /* libstrophe has no limit of its own; an oversized notification is not turned into events
     * (nor stored, nor delivered). */
    size_t size = stanza_size(stanza, (size_t)x->cfg->max_stanza + 1);
    if (size > (size_t)x->cfg->max_stanza) {
        gw_warn("dropped a notification from %s larger than --max-stanza (%ld bytes)",
                xmpp_stanza_get_from(stanza) ? xmpp_stanza_get_from(stanza) : "?",
                x->cfg->max_stanza);
        return 1;
    }
    json_t *events = gw_event_parse(x->ctx, stanza);
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *service = json_string_value(json_object_get(ev, "service"));
        const char *node = json_string_value(json_object_get(ev, "node"));
        if (type && service && node && strcmp(type, "node.deleted") == 0)
            gw_xmpp_node_forget(x, service, node);
    }
    /* Several gateways on one account may all receive this message (a server sends a
     * notification to the bare JID to every resource): the sender and the message id make a key
     * that lets exactly one of them take each event into the outbox. */
    const char *msg_id = xmpp_stanza_get_id(stanza);
    const char *from = xmpp_stanza_get_from(stanza);
    if (msg_id != NULL && from != NULL && strlen(msg_id) <= 128 && strlen(from) <= 1024) {
        json_array_foreach(events, i, ev)
        {
            char key[1200];
            snprintf(key, sizeof(key), "m|%s|%s|%zu", from, msg_id, i);
            json_object_set_new(ev, "_key", json_string(key));
        }
    }
    if (events != NULL && x->events == NULL) {
        x->events = events; /* handed on at the end of the round (flush_events) */
    } else if (events != NULL) {
        json_array_extend(x->events, events);
        json_decref(events);
    }
    return 1;
}
