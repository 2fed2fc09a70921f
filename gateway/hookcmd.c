/* Registry commands from the REST API. Creating a subscription is a small pipeline run on the
 * loop thread: intent verification (a GET with a fresh challenge); for a node not followed yet,
 * its current items (the baseline: never delivered unless replay asks) and the XMPP
 * subscription; the replay of stored items; then one transaction that stores it all. A node
 * already followed shares its XMPP subscription: subscribing again would only make some servers
 * re-send its last item. */
#include "itemid.h"
#include "log.h"
#include "webhooks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct creating {
    struct gw_hooks *h;
    struct gw_cmd *cmd; /* the client's command */
    struct hsub *s;     /* until it is in the registry */
    int replay;
    int generated;
    int fresh;             /* the node was not followed: baseline taken before subscribing */
    uint64_t unsubscribes; /* h->unsubscribes when the node's XMPP subscription was known good */
    json_t *baseline;      /* its items then, oldest first */
    char challenge[65];
    /* stored on the store's thread: the row (its own copies), the replay, the outcome */
    struct gw_store_sub row;
    struct gw_store *st;
    struct intake *replayed;
    json_t *answer; /* the 201's body, made before the registry could change */
    int crossed, rc;
};

/* 503 with Retry-After: the store is away, the client may simply try again. */
static void store_unavailable(struct gw_cmd *cmd)
{
    cmd->retry_after = 5;
    gw_cmd_fail(cmd, 503, "Store unavailable",
                "the gateway cannot reach its store at the moment; try again shortly", NULL);
}

/* A store that failed: 503 while it is away, else 500. */
static void store_failed(struct gw_hooks *h, struct gw_cmd *cmd, const char *detail)
{
    if (!gw_store_known_up(h->store))
        store_unavailable(cmd);
    else
        gw_cmd_fail(cmd, 500, "Internal error", detail, NULL);
}

static void creating_free(struct creating *c)
{
    gw_hsub_free(c->s);
    json_decref(c->baseline);
    json_decref(c->answer);
    if (c->row.secret != NULL)
        memset(c->row.secret, 0, strlen(c->row.secret));
    gw_store_sub_clear(&c->row);
    free(c);
}

void gw_url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

/* One transaction: the row, the baseline's ids (seen: never turned into events), the replay. */
static void create_job(void *arg)
{
    struct creating *c = arg;
    struct gw_store *st = c->st;
    c->rc = -1;
    if (gw_store_begin(st) != 0)
        goto fail;
    if (gw_store_sub_insert(st, &c->row) != 0)
        goto undo;
    size_t k;
    json_t *bi;
    json_array_foreach(c->baseline, k, bi)
    {
        const char *id = json_string_value(json_object_get(bi, "id"));
        if (id != NULL)
            gw_store_seen_add(st, c->row.service, c->row.node, id);
    }
    if (c->replayed != NULL && gw_intake_store(c->replayed) != 0)
        goto undo;
    if (gw_store_commit(st) == 0) {
        c->rc = 0;
        return;
    }
undo:
    gw_store_rollback(st);
fail:
    /* Intakes built since it joined the registry name it: they skip it (see gw_hooks_remove). */
    gw_hmap_put(c->h->removed, c->row.id, strlen(c->row.id), c->h);
}

static void create_done(void *arg)
{
    struct creating *c = arg;
    struct gw_hooks *h = c->h;
    struct hsub *s = gw_hooks_sub(h, c->row.id);
    if (c->replayed != NULL)
        gw_intake_finish(c->replayed, c->rc == 0);
    c->replayed = NULL;
    if (c->rc != 0) {
        if (s != NULL)
            gw_hooks_forget(h, s, 1);
        gw_hooks_unremove(h, c->row.id);
        store_failed(h, c->cmd, "the subscription could not be stored");
        creating_free(c);
        return;
    }
    if (s != NULL) { /* (another gateway may have removed it already) */
        s->creating = 0;
        /* What was published between the baseline and now is caught up; a re-send of the last
         * item that the subscribe caused is held and dropped (nodesync.c). */
        if (c->crossed)
            gw_nodesync_resubscribe(h, s->hn);
        else if (c->fresh && !s->hn->syncing)
            gw_nodesync_start(h, s->hn, 0);
        gw_delivery_kick(h, s);
        gw_hsub_drop_secret(s);
    }
    gw_info("subscription %s: %s/%s -> %s rid=%s", c->row.id, c->row.service, c->row.node,
            c->row.callback, c->cmd->rid);
    gw_cmd_finish(c->cmd, 201, c->answer);
    c->answer = NULL;
    creating_free(c);
}

static char *dup_or_null(const char *v, int *oom)
{
    char *d = v ? strdup(v) : NULL;
    if (v != NULL && d == NULL)
        *oom = 1;
    return d;
}

/* Into the registry now (marked creating: not shown, not delivered to before its row), so that
 * every event taken from here on gives it a delivery; stored on the store's thread, answered when
 * committed. */
static void finish_create(struct creating *c, json_t *replay_items)
{
    struct gw_hooks *h = c->h;
    struct hsub *s = c->s;
    int oom = 0;
    struct gw_store_sub *r = &c->row;
    r->id = dup_or_null(s->id, &oom);
    r->service = dup_or_null(s->service, &oom);
    r->node = dup_or_null(s->node, &oom);
    r->callback = dup_or_null(s->callback, &oom);
    r->secret = dup_or_null(s->secret, &oom);
    r->events = s->events;
    r->created_ms = s->created_ms;
    r->websub = s->topic ? gw_websub_describe(s) : NULL;
    r->options = gw_hsub_options(s);
    c->answer = gw_hsub_json(s);
    if (c->answer != NULL && c->generated)
        json_object_set_new(c->answer, "secret", json_string(s->secret)); /* this once only */
    /* The node's last user left while this one was being created, and its unsubscribe went out
     * after our subscription was made or found: subscribe again, after it. */
    c->crossed =
        gw_hooks_find_node(h, s->service, s->node) == NULL && h->unsubscribes != c->unsubscribes;
    if (oom || c->answer == NULL || (s->topic && r->websub == NULL) || gw_hooks_attach(h, s) != 0) {
        gw_cmd_fail(c->cmd, 500, "Internal error", "out of memory", NULL);
        creating_free(c);
        return;
    }
    c->s = NULL; /* the registry owns it now */
    s->creating = 1;
    s->hn->subscribed = 1;
    s->hn->missing = 0;
    if (replay_items != NULL && json_array_size(replay_items) > 0) {
        json_t *events = json_array();
        size_t i;
        json_t *item;
        json_array_foreach(replay_items, i, item)
        {
            json_array_append_new(events,
                                  json_pack("{s:s, s:s, s:s, s:O}", "type", "item.published",
                                            "service", s->service, "node", s->node, "item", item));
        }
        c->replayed = events ? gw_intake_new(h, events, "replay", s) : NULL;
        json_decref(events);
        if (c->replayed == NULL) {
            gw_hooks_forget(h, s, 1);
            gw_cmd_fail(c->cmd, 500, "Internal error", "out of memory", NULL);
            creating_free(c);
            return;
        }
    }
    c->st = h->store;
    gw_store_submit(h->store, create_job, create_done, c);
}

/* A step's XMPP request failed (e.g. 404: no such node): its answer goes to the client as is. */
static void fail_with(struct creating *c, struct gw_cmd *xc)
{
    c->cmd->retry_after = xc->retry_after;
    gw_cmd_finish(c->cmd, xc->status, json_incref(xc->result));
    creating_free(c);
}

/* The service's stored items, for the replay, oldest first. */
static void on_replay_items(struct gw_cmd *xc)
{
    struct creating *c = xc->done_arg;
    if (xc->status != 200) {
        gw_cmd_finish(c->cmd, xc->status, json_incref(xc->result));
        creating_free(c);
    } else {
        finish_create(c, json_object_get(xc->result, "items"));
    }
    gw_cmd_free(xc);
}

static void fetch_replay(struct creating *c);

static void on_subscribed(struct gw_cmd *xc)
{
    struct creating *c = xc->done_arg;
    if (xc->status != 200) {
        fail_with(c, xc);
        gw_cmd_free(xc);
        return;
    }
    gw_cmd_free(xc);
    if (c->fresh) {
        /* The replay is the newest items of the baseline. */
        json_t *tail = json_array();
        size_t n = json_array_size(c->baseline);
        for (size_t i = n > (size_t)c->replay ? n - (size_t)c->replay : 0; i < n; i++)
            json_array_append(tail, json_array_get(c->baseline, i));
        finish_create(c, tail);
        json_decref(tail);
        return;
    }
    fetch_replay(c);
}

static void fetch_replay(struct creating *c)
{
    if (c->replay > 0) {
        struct gw_cmd *ic =
            gw_hooks_xmpp_cmd(GW_OP_ITEMS_GET, c->s->service, c->s->node, on_replay_items, c);
        if (ic == NULL) {
            gw_cmd_fail(c->cmd, 500, "Internal error", "out of memory", NULL);
            creating_free(c);
            return;
        }
        ic->max_items = c->replay;
        c->h->exec(c->h->exec_arg, ic);
        return;
    }
    finish_create(c, NULL);
}

static void subscribe_node(struct creating *c);

static void on_baseline(struct gw_cmd *xc)
{
    struct creating *c = xc->done_arg;
    if (xc->status != 200) {
        fail_with(c, xc);
    } else {
        c->baseline = json_incref(json_object_get(xc->result, "items"));
        subscribe_node(c);
    }
    gw_cmd_free(xc);
}

/* After verification: the baseline and subscription for a node not followed yet, nothing for
 * one followed and subscribed, the subscription alone for one waiting to be subscribed. */
static void follow_node(struct creating *c)
{
    struct gw_hooks *h = c->h;
    struct hnode *hn = gw_hooks_find_node(h, c->s->service, c->s->node);
    c->unsubscribes = h->unsubscribes;
    if (hn != NULL && hn->subscribed && !hn->missing) {
        fetch_replay(c);
        return;
    }
    if (hn != NULL) {
        subscribe_node(c);
        return;
    }
    c->fresh = 1;
    struct gw_cmd *xc =
        gw_hooks_xmpp_cmd(GW_OP_ITEMS_GET, c->s->service, c->s->node, on_baseline, c);
    if (xc == NULL) {
        gw_cmd_fail(c->cmd, 500, "Internal error", "out of memory", NULL);
        creating_free(c);
        return;
    }
    xc->max_items = h->cfg->catchup_max;
    h->exec(h->exec_arg, xc);
}

static void subscribe_node(struct creating *c)
{
    c->unsubscribes = c->h->unsubscribes;
    struct gw_cmd *xc =
        gw_hooks_xmpp_cmd(GW_OP_SUBSCRIBE, c->s->service, c->s->node, on_subscribed, c);
    if (xc == NULL) {
        gw_cmd_fail(c->cmd, 500, "Internal error", "out of memory", NULL);
        creating_free(c);
        return;
    }
    c->h->exec(c->h->exec_arg, xc);
}

static void on_verified(void *arg, const struct gw_send_result *res)
{
    struct creating *c = arg;
    char detail[400];
    if (res->status < 200 || res->status >= 300) {
        if (res->status == 0)
            snprintf(detail, sizeof(detail), "callback: verification request failed: %.300s",
                     res->error ? res->error : "no answer");
        else
            snprintf(detail, sizeof(detail), "callback: verification answered HTTP %ld",
                     res->status);
    } else if (res->body_len != strlen(c->challenge) || !gw_const_eq(res->body, c->challenge)) {
        snprintf(detail, sizeof(detail),
                 "callback: verification answer is not the challenge (the body must be exactly "
                 "hub.challenge)");
    } else {
        follow_node(c);
        return;
    }
    gw_cmd_fail(c->cmd, 400, "Callback verification failed", detail, NULL);
    creating_free(c);
}

static void create(struct gw_hooks *h, struct gw_cmd *cmd)
{
    json_t *a = cmd->args;
    const char *service = json_string_value(json_object_get(a, "service"));
    const char *node = json_string_value(json_object_get(a, "node"));
    const char *callback = json_string_value(json_object_get(a, "callback"));
    const char *secret = json_string_value(json_object_get(a, "secret"));
    unsigned events = (unsigned)json_integer_value(json_object_get(a, "events_mask"));
    struct creating *c = calloc(1, sizeof(*c));
    char generated[128], id[GW_ITEMID_LEN + 5] = "sub_";
    if (c == NULL || gw_itemid_new(id + 4) != 0) {
        free(c);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    if (secret == NULL) {
        if (gw_secret_generate(generated, sizeof(generated)) != 0) {
            free(c);
            gw_cmd_fail(cmd, 500, "Internal error", "no randomness for a secret", NULL);
            return;
        }
        secret = generated;
        c->generated = 1;
    }
    c->h = h;
    c->cmd = cmd;
    c->replay = (int)json_integer_value(json_object_get(a, "replay"));
    c->s = gw_hsub_new(id, service ? service : h->cfg->service, node, callback, secret, events,
                       gw_wall_ms(), NULL);
    memset(generated, 0, sizeof(generated));
    json_t *batch = json_object_get(a, "batch"); /* validated by the API */
    if (c->s != NULL && batch != NULL)
        gw_hsub_set_batch(c->s, batch);
    if (c->s == NULL) {
        free(c);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    if (!json_is_true(json_object_get(a, "verify"))) {
        follow_node(c);
        return;
    }
    unsigned char rnd[24];
    gw_random(rnd, sizeof(rnd));
    gw_hex(rnd, sizeof(rnd), c->challenge);
    char topic[3200], url[8192];
    gw_url_encode(c->s->node, topic, sizeof(topic));
    snprintf(url, sizeof(url), "%s%shub.mode=subscribe&hub.topic=%s&hub.challenge=%s",
             c->s->callback, strchr(c->s->callback, '?') ? "&" : "?", topic, c->challenge);
    struct gw_send_req req = {"GET", url, NULL, NULL, 0, h->cfg->delivery_timeout_ms, 0, 0};
    if (h->sender->send(h->sender, &req, on_verified, c) != 0) {
        gw_cmd_fail(cmd, 500, "Internal error", "cannot start the verification request", NULL);
        creating_free(c);
    }
}

void gw_hooks_create(struct gw_hooks *h, struct gw_cmd *cmd, struct hsub *s)
{
    struct creating *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        gw_hsub_free(s);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    c->h = h;
    c->cmd = cmd;
    c->s = s;
    follow_node(c);
}

/* The subscription the command names. One on a node the token may not see is answered as if it
 * did not exist (404): its id is no proof of access, and its existence is not told. */
static struct hsub *lookup(struct gw_hooks *h, struct gw_cmd *cmd)
{
    struct hsub *s = gw_hooks_sub(h, cmd->sub_id);
    if (s != NULL && (s->creating || !gw_token_allows_node(cmd->token, s->node)))
        s = NULL;
    if (s == NULL)
        gw_cmd_fail(cmd, 404, "Subscription not found", "no subscription with this id", NULL);
    return s;
}

static void add_letter(const struct gw_store_delivery *d, void *arg)
{
    char created[GW_ISO_LEN], id[32];
    gw_iso_time(d->created_ms, created, sizeof(created));
    snprintf(id, sizeof(id), "%lld", (long long)d->seq);
    json_t *event = json_loads(d->body, 0, NULL);
    json_array_append_new(arg, json_pack("{s:s, s:s, s:i, s:s?, s:s, s:o*}", "id", id, "event_id",
                                         d->event_id, "attempts", d->attempts, "last_error",
                                         d->last_error, "created_at", created, "event", event));
}

static void add_attempt(const struct gw_store_attempt *a, void *arg)
{
    char at[GW_ISO_LEN], id[32];
    gw_iso_time(a->at_ms, at, sizeof(at));
    snprintf(id, sizeof(id), "%lld", (long long)a->id);
    json_t *e = json_pack("{s:s, s:s, s:s, s:i, s:I}", "id", id, "at", at, "event_id",
                          a->event_id ? a->event_id : "", "attempt", a->attempt, "duration_ms",
                          (json_int_t)a->duration_ms);
    if (e == NULL)
        return;
    json_object_set_new(e, "status", a->status > 0 ? json_integer(a->status) : json_null());
    json_object_set_new(e, "error", a->error ? json_string(a->error) : json_null());
    /* The answer's first bytes are the receiver's and may be anything: kept only as valid
     * UTF-8 (jansson refuses anything else). */
    json_t *answer = a->answer ? json_string(a->answer) : NULL;
    json_object_set_new(e, "answer", answer ? answer : json_null());
    json_array_append_new(arg, e);
}

/* Its backlog as listed. On a shared store the count is set from the store's rows now and then
 * (cluster.c), and an intake committed while they were being counted is missed until the next
 * count: its delivery can take the count below zero meanwhile. The rows are the truth; nothing
 * below zero is shown. */
static json_t *backlog_json(const struct hsub *s)
{
    return json_integer(s->pending > 0 ? s->pending : 0);
}

/* A subscription as listed: its description, and how its deliveries stand (the backlog only
 * where this gateway delivers it: the others do not count it). */
static json_t *sub_view(const struct hsub *s)
{
    json_t *o = gw_hsub_json(s);
    if (o != NULL && s->owned)
        json_object_set_new(o, "backlog", backlog_json(s));
    return o;
}

static void count_into(const char *sub_id, int64_t n, void *arg)
{
    json_object_set_new(arg, sub_id, json_integer(n));
}

/* Reads that answer a request, made on the store's thread: the answer goes out when the rows
 * are back. What the loop knows (the list of subscriptions) is put together before. */
enum read_kind { READ_SUBS, READ_SUB, READ_DEAD, READ_ATTEMPTS };

struct read_job {
    struct gw_hooks *h;
    struct gw_store *st;
    struct gw_cmd *cmd;
    enum read_kind kind;
    char *sub_id; /* READ_SUBS: NULL (every subscription's dead letters are counted) */
    int limit;
    json_int_t before;
    json_t *list; /* READ_SUBS, READ_SUB: the subscriptions as listed */
    json_t *rows; /* what was read */
    int rc;
};

static void read_run(void *arg)
{
    struct read_job *r = arg;
    switch (r->kind) {
    case READ_SUBS:
    case READ_SUB:
        r->rows = json_object();
        r->rc = r->rows && gw_store_up(r->st)
                    ? gw_store_dead_count_each(r->st, r->sub_id, count_into, r->rows)
                    : -1;
        break;
    case READ_DEAD:
        r->rows = json_array();
        r->rc = gw_store_dead_each(r->st, r->sub_id, add_letter, r->rows);
        break;
    case READ_ATTEMPTS:
        r->rows = json_array();
        r->rc = gw_store_attempts_each(r->st, r->sub_id, r->before, r->limit, add_attempt, r->rows);
        break;
    }
}

static void read_done(void *arg)
{
    struct read_job *r = arg;
    size_t i;
    json_t *o;
    switch (r->kind) {
    case READ_SUBS:
    case READ_SUB:
        /* "dead_letters" on each subscription, when the store could count them; the backlog
         * as of now, so that it agrees with them (jobs done before this one have moved it) */
        json_array_foreach(r->list, i, o)
        {
            const char *id = json_string_value(json_object_get(o, "id"));
            const struct hsub *s = id ? gw_hooks_sub(r->h, id) : NULL;
            if (s != NULL && s->owned)
                json_object_set_new(o, "backlog", backlog_json(s));
            if (r->rc != 0)
                continue;
            json_t *n = json_object_get(r->rows, id);
            json_object_set_new(o, "dead_letters", n ? json_incref(n) : json_integer(0));
        }
        if (r->kind == READ_SUB)
            gw_cmd_finish(r->cmd, 200, json_incref(json_array_get(r->list, 0)));
        else
            gw_cmd_finish(r->cmd, 200, json_pack("{s:O}", "subscriptions", r->list));
        break;
    case READ_DEAD:
        if (r->rc != 0)
            store_failed(r->h, r->cmd, "the dead letters could not be read");
        else
            gw_cmd_finish(r->cmd, 200, json_pack("{s:O}", "dead_letters", r->rows));
        break;
    case READ_ATTEMPTS: {
        if (r->rc != 0) {
            store_failed(r->h, r->cmd, "the attempts could not be read");
            break;
        }
        /* Newest first; `next` pages on to older ones. */
        json_t *last = json_array_get(r->rows, json_array_size(r->rows) - 1);
        json_t *next = json_array_size(r->rows) == (size_t)r->limit && last
                           ? json_incref(json_object_get(last, "id"))
                           : json_null();
        gw_cmd_finish(r->cmd, 200, json_pack("{s:O, s:o}", "attempts", r->rows, "next", next));
        break;
    }
    }
    json_decref(r->list);
    json_decref(r->rows);
    free(r->sub_id);
    free(r);
}

static void read_submit(struct gw_hooks *h, struct gw_cmd *cmd, enum read_kind kind,
                        const char *sub_id, json_t *list, int limit, json_int_t before)
{
    struct read_job *r = calloc(1, sizeof(*r));
    if (r == NULL || (sub_id != NULL && (r->sub_id = strdup(sub_id)) == NULL)) {
        free(r);
        json_decref(list);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    r->h = h;
    r->st = h->store;
    r->cmd = cmd;
    r->kind = kind;
    r->list = list;
    r->limit = limit;
    r->before = before;
    gw_store_submit(h->store, read_run, read_done, r);
}

/* n dead letters of s were made live again: they are older than what was delivered since, so
 * its delivery looks from the start again, once the delivered rows are really gone. */
static void requeued(struct gw_hooks *h, struct hsub *s, int64_t n)
{
    if (s->owned) {
        gw_delivery_flush(h);
        gw_delivery_rewind(h, s);
        gw_pending_add(h, s, n);
        gw_delivery_kick(h, s);
    } else { /* another gateway delivers it */
        gw_store_notify_later(h->store, 'r', s->id);
    }
}

struct seqs {
    int64_t *v;
    size_t n, cap;
    int oom;
};

static void add_seq(const struct gw_store_delivery *d, void *arg)
{
    struct seqs *q = arg;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        int64_t *v = realloc(q->v, cap * sizeof(*v));
        if (v == NULL) {
            q->oom = 1;
            return;
        }
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = d->seq;
}

/* Dead letters made live again, on the store's thread: one (seq > 0) or all of a subscription's,
 * in one transaction. */
struct retrying {
    struct gw_hooks *h;
    struct gw_store *st;
    struct gw_cmd *cmd;
    char *sub_id;
    int64_t seq, now, n; /* n: how many were made live */
    int rc;
};

static void retry_job(void *arg)
{
    struct retrying *r = arg;
    struct seqs q = {0};
    r->rc = -1;
    if (r->seq > 0) {
        int rc = gw_store_dead_retry(r->st, r->sub_id, r->seq, r->now);
        r->rc = rc < 0 ? -1 : 0;
        r->n = rc > 0 ? rc : 0;
        return;
    }
    if (gw_store_dead_each(r->st, r->sub_id, add_seq, &q) != 0 || q.oom ||
        gw_store_begin(r->st) != 0) {
        free(q.v);
        return;
    }
    for (size_t i = 0; i < q.n; i++) {
        int rc = gw_store_dead_retry(r->st, r->sub_id, q.v[i], r->now);
        if (rc < 0) {
            gw_store_rollback(r->st);
            free(q.v);
            r->n = 0;
            return;
        }
        r->n += rc;
    }
    free(q.v);
    if (gw_store_commit(r->st) != 0) {
        gw_store_rollback(r->st);
        r->n = 0;
        return;
    }
    r->rc = 0;
}

static void retry_done(void *arg)
{
    struct retrying *r = arg;
    struct gw_hooks *h = r->h;
    struct hsub *s = gw_hooks_sub(h, r->sub_id);
    if (r->rc == 0 && r->n > 0 && s != NULL)
        requeued(h, s, r->n);
    if (r->rc != 0)
        store_failed(h, r->cmd,
                     r->seq > 0 ? "the dead letter could not be retried"
                                : "the dead letters could not be retried; nothing was changed");
    else if (r->seq > 0 && r->n == 0)
        gw_cmd_fail(r->cmd, 404, "Dead letter not found", "no dead letter with this id", NULL);
    else if (r->seq > 0)
        gw_cmd_finish(r->cmd, 202,
                      json_pack("{s:s, s:s}", "id", r->cmd->letter, "state", "queued"));
    else
        gw_cmd_finish(r->cmd, 202,
                      json_pack("{s:I, s:s}", "retried", (json_int_t)r->n, "state", "queued"));
    free(r->sub_id);
    free(r);
}

/* POST .../dead-letters/retry (seq 0: every one) or .../dead-letters/{id}/retry. */
static void retry(struct gw_hooks *h, struct hsub *s, struct gw_cmd *cmd, int64_t seq)
{
    struct retrying *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->sub_id = strdup(s->id)) == NULL) {
        free(r);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    r->h = h;
    r->st = h->store;
    r->cmd = cmd;
    r->seq = seq;
    r->now = gw_wall_ms();
    gw_store_submit(h->store, retry_job, retry_done, r);
}

struct testing {
    struct gw_cmd *cmd;
    char id[40], item[40];
};

static void test_stored(struct gw_hooks *h, int rc, void *arg)
{
    struct testing *t = arg;
    if (rc != 0)
        store_failed(h, t->cmd, "the test event could not be stored; nothing was sent");
    else
        gw_cmd_finish(
            t->cmd, 202,
            json_pack("{s:s, s:s, s:s}", "event_id", t->id, "item_id", t->item, "state", "queued"));
    free(t);
}

/* POST .../test: an item.published event with "test": true for s alone, whatever its events
 * filter, through the outbox like any other (signed, retried, logged). */
static void send_test(struct gw_hooks *h, struct hsub *s, struct gw_cmd *cmd)
{
    struct testing *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    t->cmd = cmd;
    memcpy(t->id, "msg_", 5);
    memcpy(t->item, "test-", 6);
    if (gw_itemid_new(t->id + 4) != 0 || gw_itemid_new(t->item + 5) != 0) {
        free(t);
        gw_cmd_fail(cmd, 500, "Internal error", "no id could be made", NULL);
        return;
    }
    json_t *ev = json_pack("{s:s, s:s, s:s, s:{s:s, s:{s:s, s:s}}}", "type", "item.published",
                           "service", s->service, "node", s->node, "item", "id", t->item, "payload",
                           "message", "a test event sent through the API", "subscription", s->id);
    json_t *events = ev ? json_pack("[o]", ev) : NULL;
    unsigned filter = s->events;
    s->events |= gw_event_kind_bit("items");
    char ids[1][40];
    memcpy(ids[0], t->id, sizeof(ids[0]));
    int rc = events ? gw_hooks_intake_submit(h, events, ids, "test", s, test_stored, t) : -1;
    s->events = filter;
    json_decref(events);
    if (rc != 0) {
        free(t);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
    }
}

static void deleted(struct gw_hooks *h, const char *id, int rc, void *arg)
{
    (void)id;
    struct gw_cmd *cmd = arg;
    if (rc != 0)
        store_failed(h, cmd,
                     "the subscription could not be removed from the store; it is unchanged");
    else
        gw_cmd_finish(cmd, 204, NULL);
}

void gw_hooks_execute(struct gw_hooks *h, struct gw_cmd *cmd)
{
    struct hsub *s;
    /* What reads or writes the store waits for it to be back; the rest goes on. */
    int needs_store = cmd->op == GW_OP_SUB_CREATE || cmd->op == GW_OP_SUB_DELETE ||
                      cmd->op == GW_OP_DEAD_LIST || cmd->op == GW_OP_DEAD_RETRY ||
                      cmd->op == GW_OP_ATTEMPTS_LIST || cmd->op == GW_OP_WEBSUB ||
                      cmd->op == GW_OP_FEED_CREATE || cmd->op == GW_OP_FEED_DELETE ||
                      cmd->op == GW_OP_DEAD_RETRY_ALL || cmd->op == GW_OP_SUB_TEST;
    if (needs_store && !gw_store_known_up(h->store)) {
        store_unavailable(cmd);
        return;
    }
    switch (cmd->op) {
    case GW_OP_SUB_CREATE:
        create(h, cmd);
        return;
    case GW_OP_WEBSUB:
        gw_websub_execute(h, cmd);
        return;
    case GW_OP_FEED_CREATE:
    case GW_OP_FEED_LIST:
    case GW_OP_FEED_GET:
    case GW_OP_FEED_DELETE:
        gw_feeds_execute(h, cmd);
        return;
    case GW_OP_SUB_LIST: {
        json_t *list = json_array();
        for (s = h->first; s; s = s->next) {
            if ((cmd->node && strcmp(cmd->node, s->node) != 0) ||
                (cmd->service && strcmp(cmd->service, s->service) != 0) || s->creating ||
                !gw_token_allows_node(cmd->token, s->node))
                continue;
            json_array_append_new(list, sub_view(s));
        }
        read_submit(h, cmd, READ_SUBS, NULL, list, 0, 0);
        return;
    }
    case GW_OP_SUB_GET:
        if ((s = lookup(h, cmd)) != NULL)
            read_submit(h, cmd, READ_SUB, s->id, json_pack("[o]", sub_view(s)), 0, 0);
        return;
    case GW_OP_SUB_DELETE:
        if ((s = lookup(h, cmd)) != NULL) {
            char why[120];
            snprintf(why, sizeof(why), "deleted through the API (rid=%s)", cmd->rid);
            if (gw_hooks_remove(h, s, why, deleted, cmd) != 0)
                gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        }
        return;
    case GW_OP_DEAD_LIST:
        if ((s = lookup(h, cmd)) != NULL)
            read_submit(h, cmd, READ_DEAD, s->id, NULL, 0, 0);
        return;
    case GW_OP_DEAD_RETRY:
        if ((s = lookup(h, cmd)) != NULL) {
            char *end = NULL;
            long long seq = cmd->letter ? strtoll(cmd->letter, &end, 10) : 0;
            if (end == NULL || *end != '\0' || seq <= 0)
                gw_cmd_fail(cmd, 404, "Dead letter not found", "no dead letter with this id", NULL);
            else
                retry(h, s, cmd, seq);
        }
        return;
    case GW_OP_DEAD_RETRY_ALL:
        if ((s = lookup(h, cmd)) != NULL)
            retry(h, s, cmd, 0);
        return;
    case GW_OP_SUB_TEST:
        if ((s = lookup(h, cmd)) != NULL)
            send_test(h, s, cmd);
        return;
    case GW_OP_ATTEMPTS_LIST:
        if ((s = lookup(h, cmd)) != NULL) {
            gw_delivery_flush(h); /* attempts waiting for their batch are shown too */
            int limit = (int)json_integer_value(json_object_get(cmd->args, "limit"));
            json_int_t before = json_integer_value(json_object_get(cmd->args, "before"));
            read_submit(h, cmd, READ_ATTEMPTS, s->id, NULL, limit > 0 ? limit : 50, before);
        }
        return;
    case GW_OP_STREAM_OPEN:
        gw_streams_open(h, cmd);
        return;
    default:
        gw_cmd_fail(cmd, 500, "Internal error", "not a registry operation", NULL);
    }
}
