/* The webhook registry: subscriptions in memory and in the store, the node entries they share
 * with event streams, and the intake of events from XMPP into the outbox. */
#include "itemid.h"
#include "log.h"
#include "loop.h"
#include "status.h"
#include "webhooks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const kind_names[] = {"items",  "retract",      "purge",
                                         "delete", "subscription", "configuration"};
static const char *const kind_types[] = {"item.published",       "item.retracted",
                                         "node.purged",          "node.deleted",
                                         "subscription.changed", "node.configured"};
#define NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

unsigned gw_event_kind_bit(const char *name)
{
    for (size_t i = 0; i < NKINDS; i++)
        if (strcmp(kind_names[i], name) == 0)
            return 1u << i;
    return 0;
}

static unsigned type_bit(const char *type)
{
    for (size_t i = 0; type && i < NKINDS; i++)
        if (strcmp(kind_types[i], type) == 0)
            return 1u << i;
    return 0;
}

void gw_iso_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

struct hnode *gw_hooks_find_node(struct gw_hooks *h, const char *service, const char *node)
{
    char key[4200];
    size_t k = gw_hmap_pair_key(service, node, key, sizeof(key));
    return k ? gw_hmap_get(h->nodes, key, k) : NULL;
}

struct hnode *gw_hooks_event_node(struct gw_hooks *h, json_t *ev)
{
    const char *service = json_string_value(json_object_get(ev, "service"));
    const char *node = json_string_value(json_object_get(ev, "node"));
    return service && node ? gw_hooks_find_node(h, service, node) : NULL;
}

/* s's batch setting as the API and the store write it. */
static json_t *batch_json(const struct hsub *s)
{
    return json_pack("{s:i, s:I, s:i}", "max_events", s->batch_max, "max_bytes",
                     (json_int_t)s->batch_bytes, "max_wait_ms", s->batch_wait_ms);
}

json_t *gw_hsub_json(const struct hsub *s)
{
    char created[GW_ISO_LEN];
    gw_iso_time(s->created_ms, created, sizeof(created));
    json_t *events = json_array();
    for (size_t i = 0; i < NKINDS; i++)
        if (s->events & (1u << i))
            json_array_append_new(events, json_string(kind_names[i]));
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s}", "id", s->id, "service", s->service, "node",
                  s->node, "callback", s->callback, "events", events, "state",
                  s->hn && s->hn->missing ? "node_deleted" : "active", "created_at", created);
    if (out != NULL && s->batch_max > 0)
        json_object_set_new(out, "batch", batch_json(s));
    if (out != NULL && s->topic != NULL) {
        char expires[GW_ISO_LEN];
        gw_iso_time(s->expires_ms, expires, sizeof(expires));
        json_object_set_new(out, "websub",
                            json_pack("{s:s, s:s, s:b}", "topic", s->topic, "expires_at", expires,
                                      "signed", s->secret[0] != '\0'));
    }
    return out;
}

/* Registers s in memory (it is already stored). Returns 0 or -1. */
/* Fire-and-forget XMPP command whose answer is only logged. */
void gw_hooks_background_done(struct gw_cmd *cmd)
{
    if (cmd->status >= 400)
        gw_warn("XMPP %s of node %s failed with %d",
                cmd->op == GW_OP_UNSUBSCRIBE ? "unsubscribe" : "request",
                cmd->node ? cmd->node : "?", cmd->status);
    gw_cmd_free(cmd); /* our own command: nothing reads it after its done callback */
}

struct hnode *gw_hooks_node(struct gw_hooks *h, const char *service, const char *node)
{
    struct hnode *hn = gw_hooks_find_node(h, service, node);
    if (hn != NULL)
        return hn;
    char key[4200];
    size_t k = gw_hmap_pair_key(service, node, key, sizeof(key));
    hn = calloc(1, sizeof(*hn));
    if (hn != NULL)
        hn->hooks = h;
    if (hn == NULL || k == 0 || (hn->service = strdup(service)) == NULL ||
        (hn->node = strdup(node)) == NULL || gw_hmap_put(h->nodes, key, k, hn) != 0) {
        if (hn)
            gw_streams_node_free(hn);
        return NULL;
    }
    return hn;
}

void gw_hooks_node_release(struct gw_hooks *h, struct hnode *hn)
{
    if (hn->nsubs > 0 || hn->nstreams > 0)
        return;
    /* Nothing needs the node any more: neither does the gateway need the XMPP subscription.
     * When other gateways share the store they may still stream a node no callback follows: a
     * subscription kept for streams alone then stays. */
    if (!hn->missing && (!h->shared || h->replicas <= 1 || hn->had_subs)) {
        struct gw_cmd *c = gw_hooks_xmpp_cmd(GW_OP_UNSUBSCRIBE, hn->service, hn->node,
                                             gw_hooks_background_done, NULL);
        if (c)
            h->exec(h->exec_arg, c);
        h->unsubscribes++;
    }
    gw_hooks_node_drop(h, hn);
}

void gw_hooks_node_drop(struct gw_hooks *h, struct hnode *hn)
{
    if (hn->nsubs > 0 || hn->nstreams > 0)
        return;
    gw_nodesync_forget(h, hn);
    char key[4200];
    size_t k = gw_hmap_pair_key(hn->service, hn->node, key, sizeof(key));
    gw_hmap_del(h->nodes, key, k);
    gw_streams_node_free(hn);
}

static size_t id_slot(const char *id, size_t nslots)
{
    return (size_t)(gw_hmap_hash(id, strlen(id)) & (nslots - 1));
}

struct hsub *gw_hooks_sub(const struct gw_hooks *h, const char *id)
{
    if (h->nids == 0 || id == NULL)
        return NULL;
    for (struct hsub *s = h->ids[id_slot(id, h->nids)]; s; s = s->id_next)
        if (strcmp(s->id, id) == 0)
            return s;
    return NULL;
}

/* Adds s to the index by id (doubling its slots at one subscription per slot); 0 or -1. */
static int index_add(struct gw_hooks *h, struct hsub *s)
{
    if (h->nsubs + 1 > h->nids) {
        size_t n = h->nids ? h->nids * 2 : 256;
        struct hsub **slots = calloc(n, sizeof(*slots));
        if (slots == NULL)
            return -1;
        for (size_t i = 0; i < h->nids; i++) {
            for (struct hsub *e = h->ids[i], *next; e; e = next) {
                next = e->id_next;
                size_t k = id_slot(e->id, n);
                e->id_next = slots[k];
                slots[k] = e;
            }
        }
        free(h->ids);
        h->ids = slots;
        h->nids = n;
    }
    size_t k = id_slot(s->id, h->nids);
    s->id_next = h->ids[k];
    h->ids[k] = s;
    h->nsubs++;
    return 0;
}

static void index_remove(struct gw_hooks *h, struct hsub *s)
{
    if (h->nids == 0)
        return;
    for (struct hsub **pp = &h->ids[id_slot(s->id, h->nids)]; *pp; pp = &(*pp)->id_next) {
        if (*pp == s) {
            *pp = s->id_next;
            s->id_next = NULL;
            h->nsubs--;
            return;
        }
    }
}

int gw_hooks_attach(struct gw_hooks *h, struct hsub *s)
{
    struct hnode *hn = gw_hooks_node(h, s->service, s->node);
    if (hn == NULL)
        return -1;
    if (gw_hooks_sub(h, s->id) != NULL || index_add(h, s) != 0)
        return -1;
    s->hn = hn;
    s->owned = !h->shared; /* on a shared store, gateways share them out (cluster.c) */
    gw_cluster_adopt(h, s);
    s->node_next = hn->subs;
    hn->subs = s;
    hn->nsubs++;
    hn->had_subs = 1;
    s->prev = h->last;
    s->next = NULL;
    if (h->last)
        h->last->next = s;
    else
        h->first = s;
    h->last = s;
    if (s->topic != NULL)
        gw_websub_arm(h, s);
    return 0;
}

struct gw_cmd *gw_hooks_xmpp_cmd(enum gw_op op, const char *service, const char *node,
                                 void (*done)(struct gw_cmd *), void *arg)
{
    struct gw_cmd *c = gw_cmd_new(op);
    if (c == NULL)
        return NULL;
    c->service = strdup(service);
    c->node = node ? strdup(node) : NULL;
    c->done = done;
    c->done_arg = arg;
    if (c->service == NULL || (node && c->node == NULL)) {
        gw_cmd_free(c);
        return NULL;
    }
    return c;
}

struct removing {
    struct gw_hooks *h;
    char *id, *why;
    int rc;
    int wait_only; /* another removal of it is under way: its outcome is this one's */
    void (*done)(struct gw_hooks *h, const char *id, int rc, void *arg);
    void *arg;
};

static void remove_job(void *arg)
{
    struct removing *r = arg;
    if (r->wait_only)
        return;
    r->rc = gw_store_sub_delete(r->h->store, r->id);
    if (r->rc == 0 && gw_hmap_put(r->h->removed, r->id, strlen(r->id), r->h) != 0)
        gw_error("subscription %s: out of memory; events taken during its removal may leave "
                 "rows behind",
                 r->id);
}

static void unremove_job(void *arg)
{
    struct removing *r = arg;
    gw_hmap_del(r->h->removed, r->id, strlen(r->id));
}

static void removing_free(void *arg)
{
    struct removing *r = arg;
    free(r->id);
    free(r->why);
    free(r);
}

static void remove_done(void *arg)
{
    struct removing *r = arg;
    struct gw_hooks *h = r->h;
    struct hsub *s = gw_hooks_sub(h, r->id);
    if (r->wait_only) {
        r->rc = s != NULL ? -1 : 0; /* the first failed: it is still here */
    } else if (r->rc != 0) {
        gw_error("subscription %s could not be removed from the store (%s); it stays", r->id,
                 r->why ? r->why : "");
        if (s != NULL) { /* what it was given meanwhile goes out */
            s->deleting = 0;
            if (r->done != NULL)
                gw_delivery_kick(h, s);
            else /* a callback that answered 410 is not asked again at once */
                gw_delivery_kick_later(h, s, 5000);
        }
    } else {
        gw_info("subscription %s removed: %s", r->id, r->why ? r->why : "");
        if (s != NULL)
            gw_hooks_forget(h, s, 1);
    }
    if (r->done != NULL)
        r->done(h, r->id, r->rc, r->arg);
    if (!r->wait_only && r->rc == 0)
        gw_store_submit(h->store, unremove_job, removing_free, r);
    else
        removing_free(r);
}

void gw_hooks_unremove(struct gw_hooks *h, const char *id)
{
    struct removing *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->id = strdup(id)) == NULL) {
        free(r);
        return; /* the id stays in the set: its intakes skip a subscription that is gone */
    }
    r->h = h;
    gw_store_submit(h->store, unremove_job, removing_free, r);
}

int gw_hooks_remove(struct gw_hooks *h, struct hsub *s, const char *why,
                    void (*done)(struct gw_hooks *h, const char *id, int rc, void *arg), void *arg)
{
    struct removing *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->id = strdup(s->id)) == NULL || (r->why = strdup(why)) == NULL) {
        if (r != NULL)
            free(r->id);
        free(r);
        return -1;
    }
    r->h = h;
    r->done = done;
    r->arg = arg;
    r->wait_only = s->deleting;
    s->deleting = 1;
    gw_store_submit(h->store, remove_job, remove_done, r);
    return 0;
}

void gw_hooks_forget(struct gw_hooks *h, struct hsub *s, int unsubscribe)
{
    gw_cluster_release(h, s);
    gw_pending_add(h, s, -s->pending);
    index_remove(h, s);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        h->last = s->prev;
    struct hnode *hn = s->hn;
    for (struct hsub **pp = &hn->subs; *pp; pp = &(*pp)->node_next) {
        if (*pp == s) {
            *pp = s->node_next;
            break;
        }
    }
    hn->nsubs--;
    if (unsubscribe)
        gw_hooks_node_release(h, hn);
    else
        gw_hooks_node_drop(h, hn);
    if (gw_delivery_detach(h, s))
        gw_hsub_free(s);
}

/* An intake in three steps: built on the loop from the events and the registry (what to
 * store for whom), stored (on the store's thread, or inline), finished on the loop (counts,
 * dead letters, kicks). What is stored carries no pointer into the registry: a subscription
 * removed meanwhile is looked up by id and found gone. */
struct intake_tgt {
    char *sub_id;
    unsigned char full;  /* straight to the dead letters (outbox full) */
    unsigned char owned; /* this gateway delivers it (counted pending), else told to the other */
    unsigned char kick;  /* the first of its deliveries in this intake */
    struct gw_fetch *pf; /* its queue, read after the commit in the same job (live intakes) */
};

struct intake_ev {
    char *claim, *service, *node, *body, *seen;
    size_t src; /* its index in the events built from */
    char id[40];
    int seen_keep; /* > 0: prune the node's seen ids to this many */
    size_t t0, nt; /* its targets */
    int64_t row;
    int skipped; /* a catch-up's item found seen: nothing of it stored */
};

struct intake {
    struct gw_hooks *h;
    struct gw_store *st;
    struct gw_flush *flush; /* removals and attempts written in the same transaction */
    int64_t now;
    int in_tx, rc;
    size_t nev, ntgt, captgt;
    struct intake_ev *ev;
    struct intake_tgt *tgt;
    /* live events on a shared store: kept to wait in the spool if the store fails them */
    json_t *copy;
    char (*ids)[40];
    /* a catch-up: events of items already seen are dropped in the job; the node's seen ids are
     * pruned to prune_keep after it; done(missed) is told on the loop */
    int unseen_only, prune_keep;
    char *sync_service, *sync_node;
    void (*done)(struct gw_hooks *h, size_t missed, void *arg);
    void *done_arg;
    /* gw_hooks_intake_submit: told on the loop */
    void (*told)(struct gw_hooks *h, int rc, void *arg);
};

static void intake_free(struct intake *in)
{
    for (size_t i = 0; i < in->nev; i++) {
        free(in->ev[i].claim);
        free(in->ev[i].service);
        free(in->ev[i].node);
        free(in->ev[i].body);
        free(in->ev[i].seen);
    }
    for (size_t i = 0; i < in->ntgt; i++)
        free(in->tgt[i].sub_id);
    free(in->ev);
    free(in->tgt);
    gw_delivery_flush_free(in->flush);
    json_decref(in->copy);
    free(in->ids);
    free(in->sync_service);
    free(in->sync_node);
    free(in);
}

static int intake_target(struct intake *in, struct hsub *s, int full, int kick)
{
    if (in->ntgt == in->captgt) {
        size_t cap = in->captgt ? in->captgt * 2 : 16;
        struct intake_tgt *t = realloc(in->tgt, cap * sizeof(*t));
        if (t == NULL)
            return -1;
        in->tgt = t;
        in->captgt = cap;
    }
    struct intake_tgt *t = &in->tgt[in->ntgt];
    if ((t->sub_id = strdup(s->id)) == NULL)
        return -1;
    t->full = (unsigned char)full;
    t->owned = s->owned;
    t->kick = (unsigned char)kick;
    t->pf = NULL;
    in->ntgt++;
    return 0;
}

/* The reads of the subscriptions' queues that came with the intake are handed on (after the
 * counts moved: what was stored is pending by then). */
static void intake_fetched(struct intake *in)
{
    for (size_t k = 0; k < in->ntgt; k++) {
        if (in->tgt[k].pf != NULL)
            gw_delivery_fetch_done(in->tgt[k].pf);
        in->tgt[k].pf = NULL;
    }
}

/* The intake's deliveries leave the subscriptions' counts of those being stored. */
static void intake_untake(struct intake *in)
{
    for (size_t k = 0; k < in->ntgt; k++) {
        struct intake_tgt *t = &in->tgt[k];
        struct hsub *s = t->owned && !t->full ? gw_hooks_sub(in->h, t->sub_id) : NULL;
        if (s != NULL && s->taking > 0)
            s->taking--;
    }
}

/* What to store, from the loop's view of the registry. NULL when out of memory. */
static struct intake *intake_build(struct gw_hooks *h, json_t *events, char (*ids)[40],
                                   const char *extra, struct hsub *only_sub, int mark_seen,
                                   int prefetch)
{
    uint64_t mark = ++h->intake_mark;
    struct intake *in = calloc(1, sizeof(*in));
    size_t n = json_array_size(events);
    if (in == NULL || (in->ev = calloc(n ? n : 1, sizeof(*in->ev))) == NULL) {
        free(in);
        return NULL;
    }
    in->h = h;
    in->st = h->store;
    in->now = gw_wall_ms();
    char stamp[GW_ISO_LEN];
    gw_iso_time(in->now, stamp, sizeof(stamp));
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        struct intake_ev *e = &in->ev[in->nev];
        e->src = i;
        /* The claim key travels in the event only as far as here (see gw_cluster_claim). */
        const char *key = json_string_value(json_object_get(ev, "_key"));
        if (key != NULL) {
            if (h->shared && (e->claim = strdup(key)) == NULL)
                goto fail;
            json_object_del(ev, "_key");
        }
        const char *service = json_string_value(json_object_get(ev, "service"));
        const char *node = json_string_value(json_object_get(ev, "node"));
        const char *type = json_string_value(json_object_get(ev, "type"));
        struct hnode *hn = gw_hooks_event_node(h, ev);
        if (hn == NULL) {
            free(e->claim);
            e->claim = NULL;
            continue;
        }
        in->nev++;
        if ((e->service = strdup(service)) == NULL || (e->node = strdup(node)) == NULL)
            goto fail;
        const char *item_id = json_string_value(json_object_get(json_object_get(ev, "item"), "id"));
        if (mark_seen && item_id && strcmp(type, "item.published") == 0) {
            if ((e->seen = strdup(item_id)) == NULL)
                goto fail;
            /* Catch-up looks at no more than --catchup-max items, so twice that many seen ids
             * per node are all it needs; pruned as they come, not only at reconnects. */
            int keep = 2 * h->cfg->catchup_max > 16 ? 2 * h->cfg->catchup_max : 16;
            if (++hn->seen_added >= keep / 2) {
                hn->seen_added = 0;
                e->seen_keep = keep;
            }
        }
        unsigned bit = type_bit(type);
        e->t0 = in->ntgt;
        for (struct hsub *s = hn->subs; s; s = s->node_next) {
            if (!(s->events & bit) || (only_sub && s != only_sub))
                continue;
            if (e->body == NULL) {
                memcpy(e->id, "msg_", 5);
                if (ids != NULL)
                    memcpy(e->id, ids[i], sizeof(e->id));
                else
                    gw_itemid_new(e->id + 4);
                if (json_object_get(ev, "timestamp") == NULL)
                    json_object_set_new(ev, "timestamp", json_string(stamp));
                if (extra)
                    json_object_set_new(ev, extra, json_true());
                if ((e->body = json_dumps(ev, JSON_COMPACT)) == NULL)
                    goto fail;
            }
            /* A subscription whose callback cannot keep up does not grow the outbox without
             * bound: past its cap, events go straight to its dead letters. (Only the gateway
             * that delivers a subscription knows its backlog; the others tell it.) */
            int full = s->owned && s->pending + s->taking >= h->cfg->max_pending_sub;
            int kick = s->owned && !full && s->mark != mark;
            if (intake_target(in, s, full, kick) != 0)
                goto fail;
            if (s->owned && !full)
                s->taking++; /* until the intake is finished */
            if (kick)
                s->mark = mark;
            /* A subscription with nothing queued reads its queue in the intake's own job, after
             * the commit: one hand-off to the store's thread less per event followed live. */
            if (kick && prefetch && gw_delivery_can_prefetch(h, s))
                in->tgt[in->ntgt - 1].pf = gw_delivery_fetch_new(h, s, gw_delivery_queue_max(s));
        }
        e->nt = in->ntgt - e->t0;
    }
    return in;
fail:
    intake_untake(in);
    intake_fetched(in); /* nothing read: each is kicked if it was meanwhile */
    intake_free(in);
    return NULL;
}

/* Writes the intake: in its own transaction unless in_tx. Sets in->rc. Any thread. */
static void intake_store(struct intake *in)
{
    struct gw_store *st = in->st;
    struct gw_hmap *told = NULL; /* the other gateways' subscriptions already told */
    in->rc = -1;
    if (!in->in_tx && gw_store_begin(st) != 0)
        return;
    if (in->flush != NULL)
        gw_delivery_flush_run(in->flush); /* the same pages are written anyway */
    for (size_t i = 0; i < in->nev; i++) {
        struct intake_ev *e = &in->ev[i];
        if (in->unseen_only && e->seen != NULL &&
            gw_store_seen_has(st, e->service, e->node, e->seen) == 1) {
            e->skipped = 1; /* turned into an event before (or seen in a baseline) */
            continue;
        }
        if (e->seen != NULL) {
            gw_store_seen_add(st, e->service, e->node, e->seen);
            if (e->seen_keep > 0)
                gw_store_seen_prune(st, e->service, e->node, e->seen_keep);
        }
        if (e->nt == 0)
            continue;
        /* On a shared store the event is claimed by its key as it is stored: when another
         * gateway took it first, none of it is this one's. An event without a key (a test
         * event) came to this gateway alone and is not claimed. */
        e->row =
            gw_store_event_add_claimed(st, e->claim, e->id, e->service, e->node, e->body, in->now);
        if (e->row < 0)
            goto fail;
        for (size_t k = e->t0; e->row > 0 && k < e->t0 + e->nt; k++) {
            struct intake_tgt *t = &in->tgt[k];
            if (gw_hmap_size(in->h->removed) > 0 &&
                gw_hmap_get(in->h->removed, t->sub_id, strlen(t->sub_id)) != NULL)
                continue; /* removed from the store after this intake was built */
            if (gw_store_delivery_add(st, t->sub_id, e->row, in->now,
                                      t->full ? "outbox full" : NULL) != 0)
                goto fail;
            if (t->owned || t->full)
                continue;
            /* its gateway is told, once the transaction commits */
            size_t len = strlen(t->sub_id);
            if (told == NULL && (told = gw_hmap_new()) == NULL)
                goto fail;
            if (gw_hmap_get(told, t->sub_id, len) != NULL)
                continue;
            if (gw_store_notify(st, 'w', t->sub_id) != 0 ||
                gw_hmap_put(told, t->sub_id, len, t) != 0)
                goto fail;
        }
    }
    gw_hmap_free(told);
    if (in->in_tx || gw_store_commit(st) == 0) {
        in->rc = 0;
        for (size_t k = 0; k < in->ntgt; k++) /* reads after the commit: they see it */
            if (in->tgt[k].pf != NULL)
                gw_delivery_fetch_run(in->tgt[k].pf);
        return;
    }
    told = NULL;
fail:
    gw_hmap_free(told);
    if (!in->in_tx)
        gw_store_rollback(st);
}

/* Back on the loop: what was stored is pending (counted only now, so that a subscription's
 * count never runs ahead of the rows a read of its queue finds); deliveries start after the
 * commit. */
static void intake_finish(struct intake *in)
{
    struct gw_hooks *h = in->h;
    intake_untake(in);
    for (size_t i = 0; in->rc == 0 && i < in->nev; i++) {
        struct intake_ev *e = &in->ev[i];
        for (size_t k = e->t0; e->row > 0 && k < e->t0 + e->nt; k++) {
            struct intake_tgt *t = &in->tgt[k];
            struct hsub *s = t->owned ? gw_hooks_sub(h, t->sub_id) : NULL;
            if (s == NULL)
                continue;
            if (t->full)
                gw_dead_letter_added(h, s);
            else
                gw_pending_add(h, s, 1);
        }
    }
    intake_fetched(in);
    if (in->rc != 0 || in->in_tx)
        return; /* in_tx: the caller commits, then kicks */
    /* Only after the commit: an event is on disk before any delivery of it starts. */
    for (size_t k = 0; k < in->ntgt; k++) {
        if (!in->tgt[k].kick)
            continue;
        struct hsub *s = gw_hooks_sub(h, in->tgt[k].sub_id);
        if (s != NULL)
            gw_delivery_kick(h, s);
    }
}

static void catchup_job(void *arg)
{
    struct intake *in = arg;
    intake_store(in);
    gw_store_seen_prune(in->st, in->sync_service, in->sync_node, in->prune_keep);
}

static void catchup_done(void *arg)
{
    struct intake *in = arg;
    intake_finish(in);
    size_t missed = 0;
    for (size_t i = 0; i < in->nev; i++)
        if (in->rc == 0 && in->unseen_only && !in->ev[i].skipped)
            missed++;
    if (in->rc != 0)
        gw_error("could not store the %s of %s/%s; it is made again at the next session",
                 in->unseen_only ? "catch-up" : "baseline", in->sync_service, in->sync_node);
    in->done(in->h, missed, in->done_arg);
    intake_free(in);
}

int gw_hooks_catchup(struct gw_hooks *h, const char *service, const char *node, json_t *items,
                     int baseline, int prune_keep,
                     void (*done)(struct gw_hooks *h, size_t missed, void *arg), void *arg)
{
    struct intake *in = NULL;
    size_t i;
    json_t *item;
    if (baseline) { /* only marked seen */
        size_t n = json_array_size(items);
        in = calloc(1, sizeof(*in));
        if (in != NULL && (in->ev = calloc(n ? n : 1, sizeof(*in->ev))) == NULL) {
            free(in);
            in = NULL;
        }
        json_array_foreach(items, i, item)
        {
            const char *id = json_string_value(json_object_get(item, "id"));
            if (in == NULL || id == NULL)
                continue;
            struct intake_ev *e = &in->ev[in->nev++];
            if ((e->service = strdup(service)) == NULL || (e->node = strdup(node)) == NULL ||
                (e->seen = strdup(id)) == NULL) {
                intake_free(in);
                in = NULL;
            }
        }
        if (in != NULL) {
            in->h = h;
            in->st = h->store;
            in->now = gw_wall_ms();
        }
    } else {
        /* Several gateways on one store may catch up on the same node at once: one takes it. */
        json_t *events = json_array();
        json_array_foreach(items, i, item)
        {
            const char *id = json_string_value(json_object_get(item, "id"));
            if (id == NULL)
                continue;
            json_t *ev = json_pack("{s:s, s:s, s:s, s:O}", "type", "item.published", "service",
                                   service, "node", node, "item", item);
            if (ev != NULL && h->shared) {
                char key[1200];
                snprintf(key, sizeof(key), "c|%s|%s|%s", service, node, id);
                json_object_set_new(ev, "_key", json_string(key));
            }
            json_array_append_new(events, ev);
        }
        in = events ? intake_build(h, events, NULL, "catchup", NULL, 1, 0) : NULL;
        json_decref(events);
        if (in != NULL)
            in->unseen_only = 1;
    }
    if (in != NULL &&
        ((in->sync_service = strdup(service)) == NULL || (in->sync_node = strdup(node)) == NULL)) {
        intake_free(in);
        in = NULL;
    }
    if (in == NULL)
        return -1;
    in->prune_keep = prune_keep;
    in->done = done;
    in->done_arg = arg;
    gw_store_submit(h->store, catchup_job, catchup_done, in);
    return 0;
}

static void told_job(void *arg)
{
    intake_store(arg);
}

static void told_done(void *arg)
{
    struct intake *in = arg;
    intake_finish(in);
    in->told(in->h, in->rc, in->done_arg);
    intake_free(in);
}

int gw_hooks_intake_submit(struct gw_hooks *h, json_t *events, char (*ids)[40], const char *flag,
                           struct hsub *only_sub,
                           void (*done)(struct gw_hooks *h, int rc, void *arg), void *arg)
{
    struct intake *in = intake_build(h, events, ids, flag, only_sub, 0, 0);
    if (in == NULL)
        return -1;
    in->told = done;
    in->done_arg = arg;
    in->flush = gw_delivery_flush_take(h);
    gw_store_submit(h->store, told_job, told_done, in);
    return 0;
}

struct intake *gw_intake_new(struct gw_hooks *h, json_t *events, const char *flag,
                             struct hsub *only_sub)
{
    struct intake *in = intake_build(h, events, NULL, flag, only_sub, 0, 0);
    if (in != NULL)
        in->in_tx = 1;
    return in;
}

int gw_intake_store(struct intake *in)
{
    intake_store(in);
    return in->rc;
}

void gw_intake_finish(struct intake *in, int committed)
{
    if (!committed)
        in->rc = -1;
    intake_finish(in);
    intake_free(in);
}

/* Live events go to the store's thread. On a shared store a failed intake waits in the spool,
 * and so does every one queued behind it (they fail at once: order holds) until the spool is
 * drained. */
static void spool_add(struct gw_hooks *h, json_t *events, char (*ids)[40], size_t n, size_t front);

static void live_job(void *arg)
{
    struct intake *in = arg;
    if (in->copy != NULL && atomic_load(&in->h->intake_broken)) {
        in->rc = -1;
        return;
    }
    intake_store(in);
    if (in->rc != 0 && in->copy != NULL)
        atomic_store(&in->h->intake_broken, 1);
}

static void live_done(void *arg)
{
    struct intake *in = arg;
    intake_finish(in);
    if (in->rc != 0 && in->copy != NULL) {
        spool_add(in->h, in->copy, in->ids, json_array_size(in->copy), 0);
        in->copy = NULL;
    } else if (in->rc != 0) {
        gw_error("could not store events; they will be recovered by catch-up");
    }
    intake_free(in);
}

/* A live intake built, with (on a shared store) a copy of its events to wait in the spool if the
 * store fails them. NULL when out of memory (then they are in the spool, or lost to catch-up). */
static struct intake *intake_prepare(struct gw_hooks *h, json_t *events, char (*ids)[40],
                                     int prefetch)
{
    size_t n = json_array_size(events);
    json_t *copy = h->shared ? json_deep_copy(events) : NULL; /* the intake takes the keys out */
    struct intake *in = intake_build(h, events, ids, NULL, NULL, 1, prefetch);
    if (in == NULL) {
        if (copy != NULL)
            spool_add(h, copy, ids, n, 0);
        else
            gw_error("could not store events (out of memory); they will be recovered by catch-up");
        return NULL;
    }
    in->copy = copy;
    if (copy != NULL && (in->ids = malloc((n ? n : 1) * sizeof(*ids))) != NULL)
        memcpy(in->ids, ids, n * sizeof(*ids));
    else if (copy != NULL) { /* cannot wait in the spool: only catch-up could bring it back */
        json_decref(copy);
        in->copy = NULL;
    }
    in->flush = gw_delivery_flush_take(h);
    return in;
}

/* texts[i] is set to the stored JSON of event i, when it is stored: the intake keeps it until
 * it is finished on the loop, after the caller is done with it. */
static void intake_live(struct gw_hooks *h, json_t *events, char (*ids)[40], const char **texts)
{
    struct intake *in = intake_prepare(h, events, ids, 1);
    if (in == NULL)
        return;
    for (size_t k = 0; texts != NULL && k < in->nev; k++)
        texts[in->ev[k].src] = in->ev[k].body;
    gw_store_submit(h->store, live_job, live_done, in);
}

/* Events taken live from XMPP: one id and one timestamp per event, shared by webhooks and
 * streams. */
void gw_hooks_deliver_live(struct gw_hooks *h, json_t *events)
{
    size_t n = json_array_size(events);
    char(*ids)[40] = calloc(n ? n : 1, sizeof(*ids));
    if (ids == NULL)
        return;
    char stamp[GW_ISO_LEN];
    gw_iso_time(gw_wall_ms(), stamp, sizeof(stamp));
    for (size_t i = 0; i < n; i++) {
        memcpy(ids[i], "msg_", 4);
        gw_itemid_new(ids[i] + 4);
        json_object_set_new(json_array_get(events, i), "timestamp", json_string(stamp));
    }
    /* Event streams get the JSON stored for webhooks (serialized once), and never the claim
     * key, which is the store's business alone. */
    const char **texts = calloc(n ? n : 1, sizeof(*texts));
    if (h->shared && (json_array_size(h->spool) > 0 || h->draining))
        spool_add(h, json_deep_copy(events), ids, n, 0); /* behind those waiting: order holds */
    else
        intake_live(h, events, ids, texts);
    for (size_t i = 0; i < n; i++)
        json_object_del(json_array_get(events, i), "_key");
    gw_streams_publish(h, events, ids, texts);
    free(texts);
    free(ids);
}

/* A shared store can go away (PostgreSQL restarted, the network between): events taken from
 * XMPP meanwhile wait here, in order, up to SPOOL_MAX, and go into the outbox once it is back.
 * Beyond that only catch-up from the nodes can bring them (as much as the nodes keep). */
#define SPOOL_MAX 100000

/* Appends (front: 0), or puts back at position front - 1 (drained events that failed again:
 * before those that came meanwhile). */
static void spool_add(struct gw_hooks *h, json_t *events, char (*ids)[40], size_t n, size_t front)
{
    if (events == NULL)
        return;
    if (h->spool == NULL)
        h->spool = json_array();
    if (h->spooled + n > SPOOL_MAX) {
        gw_error("store away: %zu events could not be kept (more than %d wait); catch-up from "
                 "the nodes will bring what they still hold",
                 n, SPOOL_MAX);
        json_decref(events);
        return;
    }
    if (h->spooled == 0 && front == 0)
        gw_warn("store away: events wait in memory until it is back");
    json_t *idl = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(idl, json_string(ids[i]));
    json_t *entry = json_pack("{s:o, s:o}", "events", events, "ids", idl);
    if (front > 0)
        json_array_insert_new(h->spool, front - 1, entry);
    else
        json_array_append_new(h->spool, entry);
    h->spooled += n;
}

/* Draining the spool: a first job behind everything queued (the live intakes that failed are in
 * the spool once it is done; live events wait in the spool from its start), then one job that
 * stores what waited, in order, each batch in its transaction, stopping at the first failure.
 * What it could not store goes back to the front; what came meanwhile is drained next. */
struct draining {
    struct gw_hooks *h;
    struct intake **v;
    size_t n, events;
};

static void drain_start(struct gw_hooks *h);

static void barrier_job(void *arg)
{
    (void)arg;
}

static void barrier_done(void *arg)
{
    drain_start(arg);
}

static void drain_job(void *arg)
{
    struct draining *d = arg;
    atomic_store(&d->h->intake_broken, 0); /* nothing queued behind: live events wait */
    int failed = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct intake *in = d->v[i];
        if (failed) {
            in->rc = -1;
            continue;
        }
        intake_store(in);
        failed = in->rc != 0;
    }
    if (failed)
        atomic_store(&d->h->intake_broken, 1);
}

static void drain_done(void *arg)
{
    struct draining *d = arg;
    struct gw_hooks *h = d->h;
    size_t back = 0;
    for (size_t i = 0; i < d->n; i++) {
        struct intake *in = d->v[i];
        intake_finish(in);
        if (in->rc != 0 && in->copy != NULL) {
            spool_add(h, in->copy, in->ids, json_array_size(in->copy), ++back);
            in->copy = NULL;
        }
        intake_free(in);
    }
    free(d->v);
    size_t stored = d->events;
    free(d);
    if (back > 0 || h->stopping) {
        h->draining = 0; /* the next tick tries again */
        return;
    }
    if (json_array_size(h->spool) > 0) { /* came while this was stored */
        drain_start(h);
        return;
    }
    gw_info("store back: the %zu events that waited are in the outbox", stored);
    h->draining = 0;
    if (h->sync_after_drain) {
        h->sync_after_drain = 0;
        gw_nodesync_all(h);
    }
}

static void drain_start(struct gw_hooks *h)
{
    size_t n = json_array_size(h->spool);
    struct draining *d = calloc(1, sizeof(*d));
    if (d == NULL || (d->v = calloc(n ? n : 1, sizeof(*d->v))) == NULL) {
        free(d);
        h->draining = 0;
        return;
    }
    d->h = h;
    json_t *spool = h->spool;
    h->spool = NULL;
    h->spooled = 0;
    for (size_t k = 0; k < n; k++) {
        json_t *entry = json_array_get(spool, k);
        json_t *events = json_deep_copy(json_object_get(entry, "events"));
        json_t *idl = json_object_get(entry, "ids");
        size_t m = json_array_size(idl);
        char(*ids)[40] = calloc(m ? m : 1, sizeof(*ids));
        for (size_t i = 0; ids && i < m; i++)
            snprintf(ids[i], sizeof(ids[i]), "%s", json_string_value(json_array_get(idl, i)));
        struct intake *in = events && ids ? intake_prepare(h, events, ids, 0) : NULL;
        free(ids);
        json_decref(events);
        if (in != NULL) {
            d->v[d->n++] = in;
            d->events += m;
        }
    }
    json_decref(spool);
    gw_store_submit(h->store, drain_job, drain_done, d);
}

void gw_hooks_spool_drain(struct gw_hooks *h)
{
    if (h->draining || h->stopping)
        return;
    h->draining = 1;
    gw_store_submit(h->store, barrier_job, barrier_done, h);
}

void gw_hooks_on_events(struct gw_hooks *h, json_t *events)
{
    /* Events of a node being synchronised wait for its catch-up (see nodesync.c); the others go
     * on, in the array they came in unless some were held. */
    json_t *now = events;
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        struct hnode *hn = gw_hooks_event_node(h, ev);
        int held = hn != NULL && gw_nodesync_hold(h, hn, ev);
        if (held && now == events) {
            now = json_array(); /* the first held one: those before it go on */
            for (size_t k = 0; k < i; k++)
                json_array_append(now, json_array_get(events, k));
        } else if (!held && now != events) {
            json_array_append(now, ev);
        }
    }
    if (json_array_size(now) > 0)
        gw_hooks_deliver_live(h, now);
    /* A deleted node loses its XMPP subscription; its subscriptions wait for it. */
    json_array_foreach(now, i, ev)
    {
        const char *type = json_string_value(json_object_get(ev, "type"));
        struct hnode *hn =
            type && strcmp(type, "node.deleted") == 0 ? gw_hooks_event_node(h, ev) : NULL;
        if (hn != NULL)
            gw_nodesync_deleted(h, hn);
    }
    if (now != events)
        json_decref(now);
}

/* The pubsub services subscriptions name, one copy each: nearly every subscription names the
 * same one or two, and a copy per subscription would be a tenth of its memory. Counted
 * references; loop thread only. The map exists while a name is held. */
struct shared_name {
    size_t refs;
    char text[];
};
static struct gw_hmap *service_names;

static char *service_ref(const char *service)
{
    size_t n = strlen(service);
    if (service_names == NULL && (service_names = gw_hmap_new()) == NULL)
        return NULL;
    struct shared_name *e = gw_hmap_get(service_names, service, n);
    if (e == NULL) {
        e = malloc(sizeof(*e) + n + 1);
        if (e == NULL)
            return NULL;
        e->refs = 0;
        memcpy(e->text, service, n + 1);
        if (gw_hmap_put(service_names, service, n, e) != 0) {
            free(e);
            return NULL;
        }
    }
    e->refs++;
    return e->text;
}

void gw_hsub_service_unref(char *service)
{
    struct shared_name *e =
        service && service_names ? gw_hmap_get(service_names, service, strlen(service)) : NULL;
    if (e == NULL || --e->refs > 0)
        return;
    gw_hmap_del(service_names, service, strlen(service));
    free(e);
    if (gw_hmap_size(service_names) == 0) {
        gw_hmap_free(service_names);
        service_names = NULL;
    }
}

struct hsub *gw_hsub_new(const char *id, const char *service, const char *node,
                         const char *callback, const char *secret, unsigned events,
                         int64_t created_ms, const char *websub)
{
    struct hsub *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->id = strdup(id);
    s->service = service_ref(service);
    s->node = strdup(node);
    s->callback = strdup(callback);
    s->secret = strdup(secret);
    s->events = events;
    s->created_ms = created_ms;
    /* A WebSub subscription signs with hub.secret as it was given. */
    s->keylen = websub ? 0 : gw_secret_decode(secret, s->key);
    if (websub && gw_websub_parse(s, websub) != 0)
        s->keylen = -1;
    if (!s->id || !s->service || !s->node || !s->callback || !s->secret || s->keylen < 0) {
        gw_hsub_free(s);
        return NULL;
    }
    return s;
}

int gw_hsub_set_batch(struct hsub *s, const json_t *batch)
{
    s->batch_max = (int)json_integer_value(json_object_get(batch, "max_events"));
    s->batch_bytes = (size_t)json_integer_value(json_object_get(batch, "max_bytes"));
    s->batch_wait_ms = (int)json_integer_value(json_object_get(batch, "max_wait_ms"));
    return s->batch_max >= 1 && s->batch_max <= GW_BATCH_MAX && s->batch_bytes >= 1024 ? 0 : -1;
}

char *gw_hsub_options(const struct hsub *s)
{
    if (s->batch_max == 0)
        return NULL;
    json_t *o = json_pack("{s:o}", "batch", batch_json(s));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

void gw_hsub_drop_secret(struct hsub *s)
{
    if (s->topic != NULL || s->secret == NULL)
        return;
    memset(s->secret, 0, strlen(s->secret));
    free(s->secret);
    s->secret = NULL;
}

struct hsub *gw_hsub_from_store(const struct gw_store_sub *st)
{
    struct hsub *s = gw_hsub_new(st->id, st->service, st->node, st->callback, st->secret,
                                 st->events, st->created_ms, st->websub);
    json_t *o = st->options ? json_loads(st->options, 0, NULL) : NULL;
    json_t *batch = json_object_get(o, "batch");
    if (s != NULL && ((st->options && o == NULL) || (batch && gw_hsub_set_batch(s, batch) != 0))) {
        gw_hsub_free(s);
        s = NULL;
    }
    json_decref(o);
    if (s != NULL)
        gw_hsub_drop_secret(s);
    return s;
}

int gw_hooks_quiesce(struct gw_hooks *h)
{
    h->stopping = 1;
    int n = 0;
    for (struct hsub *s = h->first; s; s = s->next)
        n += s->inflight;
    return n;
}

int gw_hooks_backlog_full(const struct gw_hooks *h)
{
    return h->pending_total >= h->cfg->max_pending;
}

static void count_pending(const char *sub_id, int64_t n, void *arg)
{
    struct gw_hooks *h = arg;
    struct hsub *s = gw_hooks_sub(h, sub_id);
    if (s != NULL && s->owned) {
        gw_pending_add(h, s, n);
    }
}

static void load_one(const struct gw_store_sub *st, void *arg)
{
    struct gw_hooks *h = arg;
    struct hsub *s = gw_hsub_from_store(st);
    if (s == NULL || gw_hooks_attach(h, s) != 0) {
        gw_error("cannot load subscription %s", st->id);
        gw_hsub_free(s);
    }
}

/* Every 15 s: dead letters and logged attempts past their age leave (a few hundred at a time,
 * at once again while there are more), and the age of the oldest pending event is sampled. */
struct aging {
    struct gw_hooks *h;
    struct gw_store *st;
    int64_t dead_before, attempts_before, oldest;
    int want_oldest, more;
};

static void aging_job(void *arg)
{
    struct aging *a = arg;
    a->more = gw_store_dead_prune_age(a->st, a->dead_before, 256) == 256;
    /* ... and so do logged delivery attempts past --attempts-max-age */
    if (gw_store_attempts_prune_age(a->st, a->attempts_before) == 1000)
        a->more = 1;
    a->oldest = a->want_oldest ? gw_store_oldest_pending_ms(a->st) : 0;
}

static void on_dead_age(struct gw_loop *loop, void *arg);

static void aging_done(void *arg)
{
    struct aging *a = arg;
    struct gw_hooks *h = a->h;
    int more = a->more;
    atomic_store(&gw_status.oldest_pending_ms, (long long)(a->oldest > 0 ? a->oldest : 0));
    free(a);
    if (h->stopping)
        return;
    gw_cluster_housekeeping(h);
    h->dead_age_timer = gw_loop_timer_add(h->loop, more ? 10 : 15000, on_dead_age, h);
}

static void on_dead_age(struct gw_loop *loop, void *arg)
{
    struct gw_hooks *h = arg;
    h->dead_age_timer = 0;
    struct aging *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        h->dead_age_timer = gw_loop_timer_add(loop, 15000, on_dead_age, h);
        return;
    }
    a->h = h;
    a->st = h->store;
    a->dead_before = gw_wall_ms() - h->cfg->dead_letter_max_age_ms;
    a->attempts_before = gw_wall_ms() - h->cfg->attempts_max_age_ms;
    a->want_oldest = h->pending_total > 0;
    gw_store_submit(h->store, aging_job, aging_done, a);
}

struct gw_hooks *gw_hooks_new(const struct gw_config *cfg, struct gw_loop *loop,
                              struct gw_store *store, struct gw_sender *sender,
                              gw_xmpp_exec_fn exec, void *exec_arg)
{
    struct gw_hooks *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->cfg = cfg;
    h->loop = loop;
    h->store = store;
    h->sender = sender;
    h->exec = exec;
    h->exec_arg = exec_arg;
    h->shared = gw_store_shared(store);
    h->nodes = gw_hmap_new();
    h->removed = gw_hmap_new();
    if (h->nodes == NULL || h->removed == NULL || gw_store_sub_each(store, load_one, h) != 0) {
        gw_hooks_free(h);
        return NULL;
    }
    gw_store_pending_each(store, count_pending, h);
    gw_info("%zu webhook subscriptions on %zu nodes, %lld deliveries pending", h->nsubs,
            gw_hmap_size(h->nodes), (long long)h->pending_total);
    gw_streams_heartbeat_start(h);
    gw_cluster_start(h);
    if (gw_feeds_load(h) != 0)
        gw_error("the feeds could not be read from the store");
    h->dead_age_timer = gw_loop_timer_add(loop, 1000, on_dead_age, h);
    /* Deliveries left in the outbox by the previous run start right away. */
    for (struct hsub *s = h->first; s; s = s->next)
        if (s->pending > 0)
            gw_delivery_kick(h, s);
    return h;
}

static void free_node(void *value, void *arg)
{
    gw_nodesync_forget(arg, value);
    gw_streams_node_free(value);
}

void gw_hooks_free(struct gw_hooks *h)
{
    if (h == NULL)
        return;
    if (h->heartbeat_timer)
        gw_loop_timer_cancel(h->loop, h->heartbeat_timer);
    if (h->dead_age_timer)
        gw_loop_timer_cancel(h->loop, h->dead_age_timer);
    h->stopping = 1; /* what the store's thread still answers starts nothing */
    gw_delivery_flush(h);
    gw_feeds_free(h);
    gw_cluster_stop(h);
    while (gw_store_settle(h->store) > 0) /* done callbacks may queue more (held events) */
        ;
    if (h->spooled > 0)
        gw_error("stopping with %zu events that waited for the store: catch-up from the nodes "
                 "brings them at the next start",
                 h->spooled);
    json_decref(h->spool);
    free(h->done);
    free(h->recs);
    gw_hmap_free(h->removed);
    struct hsub *s = h->first;
    while (s) {
        struct hsub *next = s->next;
        /* A delivery in flight stays in the outbox; its callback frees s when the HTTP client
         * ends it. */
        if (gw_delivery_detach(h, s))
            gw_hsub_free(s);
        s = next;
    }
    if (h->nodes)
        gw_hmap_each(h->nodes, free_node, h);
    gw_hmap_free(h->nodes);
    free(h->ids);
    free(h);
}
