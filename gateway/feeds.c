/* Feeds in: RSS, Atom and JSON Feed documents polled into nodes. Each fetch is conditional
 * (If-None-Match / If-Modified-Since from the last answer); a 200 is parsed and every entry
 * that is new or changed (its content hash differs) is published under its stable item id,
 * oldest first. The validators are kept only when every publish succeeded, so a failed one is
 * tried again at the next fetch instead of hiding behind a 304. The next fetch waits at least
 * the feed's interval, longer when the server asks (Cache-Control max-age, Retry-After on 429
 * and 503) or keeps failing (doubling up to an hour). State is written to the store after each
 * fetch. On a shared store, the replica that holds a feed's partition polls it. */
#include "feedparse.h"
#include "itemid.h"
#include "log.h"
#include "loop.h"
#include "status.h"
#include "webhooks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FEED_BODY_MAX (5 * 1024 * 1024)
#define FEED_ENTRIES_MAX 200
#define FEED_BACKOFF_MAX_S 3600
#define FEED_ENTRIES_KEEP 1000

struct feed {
    struct gw_hooks *h;
    char *id, *url, *service, *node;
    int interval_s;
    int64_t created_ms;
    /* state, stored as JSON */
    char *etag, *last_modified;
    json_t *entries; /* item id -> content hash, of what was published */
    int64_t next_at_ms, last_fetch_ms;
    long last_status;
    char *last_error;
    long fetches, not_modified, published, failures;
    int fail_streak;
    char kind[8]; /* the format of the last document read: atom, rss, json */
    /* activity */
    uint64_t timer;
    int busy;     /* a fetch and its publishes are under way */
    int pending;  /* publishes not answered yet */
    int failed;   /* publishes of this round refused */
    int again;    /* a ping came while busy: fetch once more when done */
    int gone;     /* deleted while busy: freed when done */
    int deleting; /* its removal is being stored: its state is not written again */
    char *new_etag, *new_last_modified;
    int64_t wait_s; /* the round's delay before the next fetch */
    struct feed *next;
};

static void feed_free(struct feed *f)
{
    if (f == NULL)
        return;
    free(f->id);
    free(f->url);
    free(f->service);
    free(f->node);
    free(f->etag);
    free(f->last_modified);
    free(f->new_etag);
    free(f->new_last_modified);
    free(f->last_error);
    json_decref(f->entries);
    free(f);
}

static void set(char **dst, const char *v)
{
    free(*dst);
    *dst = v && *v ? strdup(v) : NULL;
}

static json_t *state_json(const struct feed *f)
{
    return json_pack("{s:s?, s:s?, s:O, s:I, s:I, s:I, s:s?, s:I, s:I, s:I, s:I, s:i, s:s}", "etag",
                     f->etag, "last_modified", f->last_modified, "entries", f->entries, "next_at",
                     (json_int_t)f->next_at_ms, "last_fetch", (json_int_t)f->last_fetch_ms,
                     "last_status", (json_int_t)f->last_status, "last_error", f->last_error,
                     "fetches", (json_int_t)f->fetches, "not_modified", (json_int_t)f->not_modified,
                     "published", (json_int_t)f->published, "failures", (json_int_t)f->failures,
                     "fail_streak", f->fail_streak, "kind", f->kind);
}

/* A feed's row written (put, or deleted) on the store's thread; the other gateways told ('f')
 * when notify; then, on the loop, done (may be NULL) with the outcome. */
struct feed_write {
    struct gw_hooks *h;
    struct gw_store *st;
    struct gw_store_feed row; /* its own copies */
    int del, notify, rc;
    struct feed *f; /* a feed being created: linked once stored */
    struct gw_cmd *cmd;
    void (*done)(struct feed_write *w);
};

static void feed_write_free(struct feed_write *w)
{
    free(w->row.id);
    free(w->row.url);
    free(w->row.service);
    free(w->row.node);
    free(w->row.state);
    free(w);
}

static void write_job(void *arg)
{
    struct feed_write *w = arg;
    w->rc = w->del ? gw_store_feed_delete(w->st, w->row.id) : gw_store_feed_put(w->st, &w->row);
    if (w->rc == 0 && w->notify)
        gw_store_notify(w->st, 'f', w->row.id);
}

static void write_done(void *arg)
{
    struct feed_write *w = arg;
    if (w->done != NULL)
        w->done(w);
    else if (w->rc != 0)
        gw_warn("feed %s: its state could not be stored", w->row.id);
    feed_write_free(w);
}

static int copy(char **dst, const char *v)
{
    *dst = v ? strdup(v) : NULL;
    return v != NULL && *dst == NULL ? -1 : 0;
}

static int save(struct feed *f, int del, int notify, struct gw_cmd *cmd,
                void (*done)(struct feed_write *w), int creating)
{
    struct feed_write *w = calloc(1, sizeof(*w));
    json_t *st = del ? NULL : state_json(f);
    if (w == NULL ||
        (!del && (st == NULL || (w->row.state = json_dumps(st, JSON_COMPACT)) == NULL)) ||
        copy(&w->row.id, f->id) || copy(&w->row.url, f->url) || copy(&w->row.service, f->service) ||
        copy(&w->row.node, f->node)) {
        json_decref(st);
        if (w != NULL)
            feed_write_free(w);
        gw_warn("feed %s: its state could not be stored (out of memory)", f->id);
        return -1;
    }
    json_decref(st);
    w->row.interval_s = f->interval_s;
    w->row.created_ms = f->created_ms;
    w->h = f->h;
    w->st = f->h->store;
    w->del = del;
    w->notify = notify && f->h->shared;
    w->cmd = cmd;
    w->done = done;
    w->f = creating ? f : NULL;
    gw_store_submit(w->st, write_job, write_done, w);
    return 0;
}

static json_t *gw_feed_json(const struct feed *f)
{
    char created[GW_ISO_LEN], next[GW_ISO_LEN], last[GW_ISO_LEN];
    gw_iso_time(f->created_ms, created, sizeof(created));
    gw_iso_time(f->next_at_ms, next, sizeof(next));
    gw_iso_time(f->last_fetch_ms, last, sizeof(last));
    json_t *state = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:I}", "next_fetch_at", next, "fetches", (json_int_t)f->fetches,
        "not_modified", (json_int_t)f->not_modified, "published", (json_int_t)f->published,
        "failures", (json_int_t)f->failures, "entries", (json_int_t)json_object_size(f->entries));
    if (state != NULL && f->last_fetch_ms > 0) {
        json_object_set_new(state, "last_fetch_at", json_string(last));
        json_object_set_new(state, "last_status", json_integer(f->last_status));
    }
    if (state != NULL && f->last_error != NULL)
        json_object_set_new(state, "last_error", json_string(f->last_error));
    return json_pack("{s:s, s:s, s:s, s:s, s:i, s:s, s:o*}", "id", f->id, "url", f->url, "service",
                     f->service, "node", f->node, "interval", f->interval_s, "created_at", created,
                     "state", state);
}

static struct feed *feed_new(struct gw_hooks *h, const struct gw_store_feed *sf)
{
    struct feed *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->h = h;
    f->id = strdup(sf->id);
    f->url = strdup(sf->url);
    f->service = strdup(sf->service);
    f->node = strdup(sf->node);
    f->interval_s = sf->interval_s;
    f->created_ms = sf->created_ms;
    json_t *st = json_loads(sf->state ? sf->state : "{}", 0, NULL);
    set(&f->etag, json_string_value(json_object_get(st, "etag")));
    set(&f->last_modified, json_string_value(json_object_get(st, "last_modified")));
    set(&f->last_error, json_string_value(json_object_get(st, "last_error")));
    json_t *entries = json_object_get(st, "entries");
    f->entries = json_is_object(entries) ? json_incref(entries) : json_object();
    f->next_at_ms = json_integer_value(json_object_get(st, "next_at"));
    f->last_fetch_ms = json_integer_value(json_object_get(st, "last_fetch"));
    f->last_status = (long)json_integer_value(json_object_get(st, "last_status"));
    f->fetches = (long)json_integer_value(json_object_get(st, "fetches"));
    f->not_modified = (long)json_integer_value(json_object_get(st, "not_modified"));
    f->published = (long)json_integer_value(json_object_get(st, "published"));
    f->failures = (long)json_integer_value(json_object_get(st, "failures"));
    f->fail_streak = (int)json_integer_value(json_object_get(st, "fail_streak"));
    const char *kind = json_string_value(json_object_get(st, "kind"));
    snprintf(f->kind, sizeof(f->kind), "%s", kind ? kind : "");
    json_decref(st);
    if (!f->id || !f->url || !f->service || !f->node || !f->entries) {
        feed_free(f);
        return NULL;
    }
    return f;
}

static void fetch(struct feed *f);

static void on_timer(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct feed *f = arg;
    f->timer = 0;
    fetch(f);
}

static void schedule(struct feed *f, int64_t delay_ms)
{
    if (f->timer)
        gw_loop_timer_cancel(f->h->loop, f->timer);
    f->timer = gw_loop_timer_add(f->h->loop, delay_ms > 0 ? delay_ms : 0, on_timer, f);
}

static struct feed *find(struct gw_hooks *h, const char *id)
{
    for (struct feed *f = h->feeds; f; f = f->next)
        if (strcmp(f->id, id) == 0)
            return f;
    return NULL;
}

static void unlink_feed(struct gw_hooks *h, struct feed *f)
{
    for (struct feed **pp = &h->feeds; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    if (f->timer)
        gw_loop_timer_cancel(h->loop, f->timer);
    f->timer = 0;
}

/* The round is over: state stored, the next fetch planned. */
static void round_done(struct feed *f)
{
    f->busy = 0;
    if (f->gone) {
        feed_free(f);
        return;
    }
    if (f->failed == 0) {
        /* Every entry is published: the validators may now spare the next download. */
        if (f->new_etag || f->new_last_modified) {
            set(&f->etag, f->new_etag);
            set(&f->last_modified, f->new_last_modified);
        }
    }
    free(f->new_etag);
    free(f->new_last_modified);
    f->new_etag = f->new_last_modified = NULL;
    int64_t wait = f->wait_s > f->interval_s ? f->wait_s : f->interval_s;
    f->next_at_ms = gw_wall_ms() + wait * 1000;
    if (!f->deleting) /* (a write after the delete would bring its row back) */
        save(f, 0, 0, NULL, NULL, 0);
    if (f->again) {
        f->again = 0;
        schedule(f, 0);
    } else {
        schedule(f, wait * 1000);
    }
}

struct pub {
    struct feed *f;
    char *item_id;
    char hash[65];
};

static void on_published(struct gw_cmd *cmd)
{
    struct pub *p = cmd->done_arg;
    struct feed *f = p->f;
    if (cmd->status >= 200 && cmd->status < 300) {
        json_object_set_new(f->entries, p->item_id, json_string(p->hash));
        f->published++;
        atomic_fetch_add(&gw_status.feed_items, 1);
    } else {
        const char *detail = json_string_value(json_object_get(cmd->result, "detail"));
        char why[400];
        snprintf(why, sizeof(why), "publish of %.100s: HTTP %d %.250s", p->item_id, cmd->status,
                 detail ? detail : "");
        set(&f->last_error, why);
        f->failed++;
        gw_warn("feed %s: %s", f->id, why);
    }
    free(p->item_id);
    free(p);
    gw_cmd_free(cmd);
    if (--f->pending == 0)
        round_done(f);
}

/* Publishes the entries that are new or changed, oldest first (feeds list newest first). */
static void publish_entries(struct feed *f, struct gw_feed_entry *e, int n)
{
    json_t *present = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(present, e[i].item_id, json_true());
    /* What left the document is forgotten, unless the map is small: an entry that comes back
     * soon after is not published again. */
    if (json_object_size(f->entries) > FEED_ENTRIES_KEEP) {
        const char *k;
        json_t *v, *tmp;
        json_object_foreach_safe(f->entries, tmp, k, v)
        {
            if (json_object_get(present, k) == NULL)
                json_object_del(f->entries, k);
        }
    }
    json_decref(present);
    f->pending = 1; /* held while the publishes are sent */
    for (int i = n - 1; i >= 0; i--) {
        const char *had = json_string_value(json_object_get(f->entries, e[i].item_id));
        if (had != NULL && strcmp(had, e[i].hash) == 0)
            continue;
        struct pub *p = calloc(1, sizeof(*p));
        struct gw_cmd *cmd = p ? gw_cmd_new(GW_OP_PUBLISH) : NULL;
        if (cmd == NULL) {
            free(p);
            f->failed++;
            continue;
        }
        p->f = f;
        p->item_id = strdup(e[i].item_id);
        memcpy(p->hash, e[i].hash, sizeof(p->hash));
        cmd->service = strdup(f->service);
        cmd->node = strdup(f->node);
        cmd->item_id = strdup(e[i].item_id);
        cmd->payload = strdup(e[i].payload);
        cmd->payload_kind = e[i].xml ? GW_PAYLOAD_XML : GW_PAYLOAD_JSON;
        cmd->done = on_published;
        cmd->done_arg = p;
        snprintf(cmd->rid, sizeof(cmd->rid), "%s", f->id);
        f->pending++;
        f->h->exec(f->h->exec_arg, cmd);
    }
    if (--f->pending == 0)
        round_done(f);
}

/* max-age of a Cache-Control value, or 0. */
static long max_age(const char *cc)
{
    const char *m = cc ? strstr(cc, "max-age=") : NULL;
    return m ? atol(m + 8) : 0;
}

static void failed_fetch(struct feed *f, const char *why, long retry_after_s)
{
    set(&f->last_error, why);
    f->failures++;
    f->fail_streak++;
    atomic_fetch_add(&gw_status.feed_failures, 1);
    long backoff = (long)f->interval_s;
    for (int i = 1; i < f->fail_streak && backoff < FEED_BACKOFF_MAX_S; i++)
        backoff *= 2;
    if (backoff > FEED_BACKOFF_MAX_S)
        backoff = FEED_BACKOFF_MAX_S > f->interval_s ? FEED_BACKOFF_MAX_S : f->interval_s;
    f->wait_s = retry_after_s > backoff ? retry_after_s : backoff;
    gw_info("feed %s: %s; next fetch in %lld s", f->id, why, (long long)f->wait_s);
}

static void on_fetched(void *arg, const struct gw_send_result *res)
{
    struct feed *f = arg;
    f->fetches++;
    f->last_fetch_ms = gw_wall_ms();
    f->last_status = res->status;
    f->wait_s = 0;
    atomic_fetch_add(&gw_status.feed_fetches, 1);
    if (f->gone) {
        round_done(f);
        return;
    }
    long ma = max_age(res->cache_control);
    char why[400];
    if (res->status == 304) {
        f->not_modified++;
        f->fail_streak = 0;
        atomic_fetch_add(&gw_status.feed_not_modified, 1);
        f->wait_s = ma;
        round_done(f);
        return;
    }
    if (res->status == 200 && !res->truncated) {
        struct gw_feed_entry *e = NULL;
        const char *kind = "";
        char err[300];
        int n = gw_feed_parse(res->content_type, res->body, res->body_len, FEED_ENTRIES_MAX, &e,
                              &kind, err, sizeof(err));
        if (n < 0) {
            snprintf(why, sizeof(why), "the document is not a feed: %s", err);
            failed_fetch(f, why, 0);
            round_done(f);
            return;
        }
        f->fail_streak = 0;
        set(&f->last_error, NULL);
        f->wait_s = ma;
        set(&f->new_etag, res->etag);
        set(&f->new_last_modified, res->last_modified);
        f->failed = 0;
        gw_debug("feed %s: %s with %d entries", f->id, kind, n);
        snprintf(f->kind, sizeof(f->kind), "%s", kind);
        publish_entries(f, e, n);
        gw_feed_entries_free(e, n);
        return;
    }
    if (res->status == 0)
        snprintf(why, sizeof(why), "fetch failed: %.300s", res->error ? res->error : "no answer");
    else if (res->truncated)
        snprintf(why, sizeof(why), "the document is larger than %d bytes", FEED_BODY_MAX);
    else
        snprintf(why, sizeof(why), "fetch answered HTTP %ld", res->status);
    /* 429 and 503 say when to come back; any other failure backs off. */
    failed_fetch(f, why, (res->status == 429 || res->status == 503) ? res->retry_after_s : 0);
    round_done(f);
}

static void fetch(struct feed *f)
{
    struct gw_hooks *h = f->h;
    if (f->busy) {
        f->again = 1;
        return;
    }
    if (!gw_cluster_owns(h, f->id) || h->stopping) {
        /* Another replica polls it; look again later (ownership moves with replicas). */
        schedule(f, (int64_t)f->interval_s * 1000);
        return;
    }
    char inm[300], ims[100];
    const char *headers[4] = {"Accept: application/atom+xml, application/rss+xml, "
                              "application/feed+json, application/json;q=0.9, "
                              "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1",
                              NULL, NULL, NULL};
    int k = 1;
    if (f->etag != NULL) {
        snprintf(inm, sizeof(inm), "If-None-Match: %s", f->etag);
        headers[k++] = inm;
    }
    if (f->last_modified != NULL) {
        snprintf(ims, sizeof(ims), "If-Modified-Since: %s", f->last_modified);
        headers[k++] = ims;
    }
    struct gw_send_req req = {"GET", f->url, headers, NULL, 0, 30000, FEED_BODY_MAX, 0};
    f->busy = 1;
    f->failed = 0;
    if (h->sender->send(h->sender, &req, on_fetched, f) != 0) {
        f->busy = 0;
        schedule(f, (int64_t)f->interval_s * 1000);
    }
}

/* A ping: the next fetch now, or, when one is under way, once more after it. */
static void fetch_soon(struct feed *f)
{
    if (f->busy)
        f->again = 1;
    else
        schedule(f, 0);
}

static void add_loaded(const struct gw_store_feed *sf, void *arg)
{
    struct gw_hooks *h = arg;
    if (find(h, sf->id) != NULL)
        return;
    struct feed *f = feed_new(h, sf);
    if (f == NULL) {
        gw_error("cannot load feed %s", sf->id);
        return;
    }
    f->next = h->feeds;
    h->feeds = f;
    int64_t wait = f->next_at_ms - gw_wall_ms();
    schedule(f, wait > 0 ? wait : 0);
}

int gw_feeds_load(struct gw_hooks *h)
{
    return gw_store_feed_each(h->store, add_loaded, h);
}

/* Another replica changed the feeds: the new ones are taken, the removed ones dropped. The
 * rows are read on the store's thread. */
struct feed_rows {
    struct gw_hooks *h;
    struct gw_store *st;
    struct gw_store_feed *v;
    size_t n, cap;
    int rc, oom;
};

static void keep_row(const struct gw_store_feed *sf, void *arg)
{
    struct feed_rows *r = arg;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct gw_store_feed *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL) {
            r->oom = 1;
            return;
        }
        r->v = v;
        r->cap = cap;
    }
    struct gw_store_feed *d = &r->v[r->n];
    memset(d, 0, sizeof(*d));
    if (copy(&d->id, sf->id) || copy(&d->url, sf->url) || copy(&d->service, sf->service) ||
        copy(&d->node, sf->node) || copy(&d->state, sf->state)) {
        r->oom = 1;
        free(d->id);
        free(d->url);
        free(d->service);
        free(d->node);
        return;
    }
    d->interval_s = sf->interval_s;
    d->created_ms = sf->created_ms;
    r->n++;
}

static void rows_job(void *arg)
{
    struct feed_rows *r = arg;
    r->rc = gw_store_feed_each(r->st, keep_row, r);
}

static void rows_done(void *arg)
{
    struct feed_rows *r = arg;
    struct gw_hooks *h = r->h;
    if (r->rc == 0 && !r->oom && !h->stopping) {
        json_t *present = json_object();
        for (size_t i = 0; present && i < r->n; i++)
            json_object_set_new(present, r->v[i].id, json_true());
        for (struct feed *f = h->feeds, *next; present && f; f = next) {
            next = f->next;
            if (json_object_get(present, f->id) == NULL) {
                unlink_feed(h, f);
                if (f->busy)
                    f->gone = 1;
                else
                    feed_free(f);
            }
        }
        for (size_t i = 0; present && i < r->n; i++)
            add_loaded(&r->v[i], h);
        json_decref(present);
    }
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].id);
        free(r->v[i].url);
        free(r->v[i].service);
        free(r->v[i].node);
        free(r->v[i].state);
    }
    free(r->v);
    free(r);
}

void gw_feeds_reload(struct gw_hooks *h)
{
    struct feed_rows *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return;
    r->h = h;
    r->st = h->store;
    gw_store_submit(h->store, rows_job, rows_done, r);
}

void gw_feeds_free(struct gw_hooks *h)
{
    for (struct feed *f = h->feeds, *next; f; f = next) {
        next = f->next;
        unlink_feed(h, f);
        if (f->busy)
            f->gone = 1; /* its fetch or publishes end later and free it */
        else
            feed_free(f);
    }
}

int gw_feeds_topic(struct gw_hooks *h, const char *url, const char **service, const char **node,
                   const char **format)
{
    for (struct feed *f = h->feeds; f; f = f->next) {
        if (strcmp(f->url, url) == 0) {
            *service = f->service;
            *node = f->node;
            *format = f->kind[0] ? f->kind : "atom";
            return 1;
        }
    }
    return 0;
}

void gw_feeds_ping(struct gw_hooks *h, struct gw_cmd *cmd, const char *url)
{
    int n = 0;
    for (struct feed *f = h->feeds; f; f = f->next) {
        if (strcmp(f->url, url) != 0)
            continue;
        n++;
        fetch_soon(f);
    }
    if (n == 0 && h->shared) {
        gw_store_notify_later(h->store, 'p', url); /* the replica that polls it fetches it */
        n = 1;
    }
    if (n == 0)
        gw_cmd_fail(cmd, 404, "Not found", "hub.url: no feed is fetched from this URL", NULL);
    else
        gw_cmd_finish(cmd, 202, NULL);
}

void gw_feeds_pinged(struct gw_hooks *h, const char *url)
{
    for (struct feed *f = h->feeds; f; f = f->next)
        if (strcmp(f->url, url) == 0 && gw_cluster_owns(h, f->id))
            fetch_soon(f);
}

static void store_failed(struct gw_hooks *h, struct gw_cmd *cmd, const char *detail)
{
    int up = gw_store_known_up(h->store);
    if (!up)
        cmd->retry_after = 5;
    gw_cmd_fail(cmd, up ? 500 : 503, up ? "Internal error" : "Store unavailable", detail, NULL);
}

/* A new feed: polled from its first fetch on, once stored. */
static void created(struct feed_write *w)
{
    struct gw_hooks *h = w->h;
    struct feed *f = w->f;
    if (w->rc != 0 || h->stopping) {
        feed_free(f);
        store_failed(h, w->cmd, "the feed could not be stored");
        return;
    }
    struct feed *known = find(h, f->id);
    if (known != NULL) { /* loaded meanwhile (another gateway's change made this one read) */
        feed_free(f);
        f = known;
        gw_cmd_finish(w->cmd, 201, gw_feed_json(f));
        return;
    }
    f->next = h->feeds;
    h->feeds = f;
    gw_info("feed %s: %s -> %s/%s every %d s rid=%s", f->id, f->url, f->service, f->node,
            f->interval_s, w->cmd->rid);
    schedule(f, 0); /* the first fetch publishes what the feed holds now */
    gw_cmd_finish(w->cmd, 201, gw_feed_json(f));
}

/* A feed's row is gone: it stops (a fetch under way ends first). */
static void removed(struct feed_write *w)
{
    struct gw_hooks *h = w->h;
    struct feed *f = find(h, w->row.id);
    if (w->rc != 0) {
        if (f != NULL)
            f->deleting = 0;
        store_failed(h, w->cmd, "the feed could not be removed");
        return;
    }
    gw_info("feed %s removed rid=%s", w->row.id, w->cmd->rid);
    if (f != NULL) {
        unlink_feed(h, f);
        if (f->busy)
            f->gone = 1;
        else
            feed_free(f);
    }
    gw_cmd_finish(w->cmd, 204, NULL);
}

void gw_feeds_execute(struct gw_hooks *h, struct gw_cmd *cmd)
{
    struct feed *f;
    switch (cmd->op) {
    case GW_OP_FEED_CREATE: {
        json_t *a = cmd->args;
        char id[GW_ITEMID_LEN + 6] = "feed_";
        if (gw_itemid_new(id + 5) != 0) {
            gw_cmd_fail(cmd, 500, "Internal error", "no id", NULL);
            return;
        }
        const char *service = json_string_value(json_object_get(a, "service"));
        int interval = (int)json_integer_value(json_object_get(a, "interval"));
        if (interval < h->cfg->feed_interval_min_s)
            interval = h->cfg->feed_interval_min_s;
        struct gw_store_feed sf = {id,
                                   (char *)json_string_value(json_object_get(a, "url")),
                                   (char *)(service ? service : h->cfg->service),
                                   (char *)json_string_value(json_object_get(a, "node")),
                                   interval,
                                   gw_wall_ms(),
                                   "{}"};
        f = feed_new(h, &sf);
        if (f == NULL || save(f, 0, 1, cmd, created, 1) != 0) {
            feed_free(f);
            gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        }
        return;
    }
    case GW_OP_FEED_LIST: {
        json_t *list = json_array();
        for (f = h->feeds; f; f = f->next)
            if (gw_token_allows_node(cmd->token, f->node))
                json_array_append_new(list, gw_feed_json(f));
        gw_cmd_finish(cmd, 200, json_pack("{s:o}", "feeds", list));
        return;
    }
    case GW_OP_FEED_GET:
    case GW_OP_FEED_DELETE:
        f = cmd->item_id ? find(h, cmd->item_id) : NULL;
        if (f == NULL || !gw_token_allows_node(cmd->token, f->node)) {
            gw_cmd_fail(cmd, 404, "Feed not found", "id: no feed with this id", NULL);
            return;
        }
        if (cmd->op == GW_OP_FEED_GET) {
            gw_cmd_finish(cmd, 200, gw_feed_json(f));
            return;
        }
        if (save(f, 1, 1, cmd, removed, 0) != 0)
            gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        else
            f->deleting = 1;
        return;
    default:
        gw_cmd_fail(cmd, 500, "Internal error", "unknown feed operation", NULL);
    }
}
