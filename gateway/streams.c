/* Server-Sent Event streams of a node: frames built from the same event objects as webhook
 * deliveries, a per-node history for Last-Event-ID resume, heartbeats that keep idle streams
 * alive and reveal clients that went away. Loop thread only. */
#include "log.h"
#include "loop.h"
#include "status.h"
#include "webhooks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "id: …\nevent: TYPE\ndata: JSON\n\n"; JSON is compact, so it holds no newline. text, when not
 * NULL, is ev as compact JSON already (the stored event). */
static char *frame(const char *id, json_t *ev, const char *text, size_t *len)
{
    char *data = text ? NULL : json_dumps(ev, JSON_COMPACT);
    const char *type = json_string_value(json_object_get(ev, "type"));
    char *out = NULL;
    int n = text || data ? asprintf(&out, "id: %s\nevent: %s\ndata: %s\n\n", id,
                                    type ? type : "event", text ? text : data)
                         : -1;
    free(data);
    if (n < 0)
        return NULL;
    *len = (size_t)n;
    return out;
}

/* The node's history keeps the last --sse-history frames within --sse-history-bytes. */
static void remember(struct gw_hooks *h, struct hnode *hn, const char *id, char *text, size_t len)
{
    int cap = h->cfg->sse_history;
    if (cap <= 0 || len > h->cfg->sse_history_bytes) {
        free(text);
        return;
    }
    if (hn->history == NULL) {
        if ((hn->history = calloc((size_t)cap, sizeof(*hn->history))) == NULL) {
            free(text);
            return;
        }
        hn->hcap = cap;
    }
    while (hn->hcount == cap || (hn->hcount > 0 && hn->hbytes + len > h->cfg->sse_history_bytes)) {
        struct history_entry *old = &hn->history[hn->hhead];
        hn->hbytes -= old->len;
        free(old->text);
        old->text = NULL;
        hn->hhead = (hn->hhead + 1) % cap;
        hn->hcount--;
    }
    struct history_entry *e = &hn->history[(hn->hhead + hn->hcount) % cap];
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->text = text;
    e->len = len;
    hn->hbytes += len;
    hn->hcount++;
}

/* Drops streams whose client went away; releases the node when nothing uses it then. */
static void sweep(struct gw_hooks *h, struct hnode *hn)
{
    for (struct gw_stream **pp = &hn->streams; *pp;) {
        struct gw_stream *st = *pp;
        if (gw_stream_ended(st)) {
            *pp = st->next;
            hn->nstreams--;
            atomic_fetch_sub(&gw_status.streams_open, 1);
            gw_stream_close(st);
            gw_stream_unref(st);
        } else {
            pp = &st->next;
        }
    }
    gw_hooks_node_release(h, hn);
}

void gw_streams_publish(struct gw_hooks *h, json_t *events, char (*ids)[40],
                        const char *const *texts)
{
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        struct hnode *hn = gw_hooks_event_node(h, ev);
        if (hn == NULL)
            continue;
        size_t len;
        char *text = frame(ids[i], ev, texts ? texts[i] : NULL, &len);
        if (text != NULL && len > h->cfg->sse_queue_bytes / 2) {
            /* A frame no client queue could hold comfortably would cut off every client: they
             * get the event without its payload, marked, and fetch the item over REST. */
            free(text);
            json_t *slim = json_deep_copy(ev);
            json_t *item = json_object_get(slim, "item");
            json_object_del(item, "payload");
            json_object_del(item, "xml");
            json_object_set_new(slim, "truncated", json_true());
            text = slim ? frame(ids[i], slim, NULL, &len) : NULL;
            json_decref(slim);
        }
        if (text == NULL)
            continue;
        int dead = 0;
        for (struct gw_stream *st = hn->streams; st; st = st->next)
            dead |= gw_stream_push(st, text, len) != 0;
        remember(h, hn, ids[i], text, len);
        if (dead)
            sweep(h, hn);
    }
}

void gw_streams_attach(struct gw_hooks *h, struct hnode *hn, struct gw_stream *st)
{
    gw_stream_ref(st);
    st->next = hn->streams;
    hn->streams = st;
    hn->nstreams++;
    atomic_fetch_add(&gw_status.streams_open, 1);
    char hello[64];
    int n = snprintf(hello, sizeof(hello), "retry: 3000\n\n");
    gw_stream_push(st, hello, (size_t)n);
    if (st->last_event_id == NULL || hn->hcount == 0)
        return;
    /* Resume: everything after the client's last id, if the history still holds it. */
    int cap = h->cfg->sse_history, found = -1;
    for (int k = 0; k < hn->hcount; k++)
        if (strcmp(hn->history[(hn->hhead + k) % cap].id, st->last_event_id) == 0)
            found = k;
    if (found < 0) {
        static const char miss[] = ": the last event id is no longer held; resuming live\n\n";
        gw_stream_push(st, miss, sizeof(miss) - 1);
        return;
    }
    /* What follows it, newest last; as much as fits in half the client's queue, so that a
     * resume never cuts the client off (it is told what was left out). */
    size_t room = h->cfg->sse_queue_bytes / 2, sum = 0;
    int from = hn->hcount;
    while (from > found + 1 && sum + hn->history[(hn->hhead + from - 1) % cap].len <= room)
        sum += hn->history[(hn->hhead + --from) % cap].len;
    if (from > found + 1) {
        char note[160];
        int len = snprintf(note, sizeof(note),
                           ": %d events after the last event id do not fit this stream; fetch them "
                           "from the node's items\n\n",
                           from - found - 1);
        gw_stream_push(st, note, (size_t)len);
    }
    for (int k = from; k < hn->hcount; k++) {
        struct history_entry *e = &hn->history[(hn->hhead + k) % cap];
        gw_stream_push(st, e->text, e->len);
    }
}

struct opening {
    struct gw_hooks *h;
    struct gw_cmd *cmd;
};

static void on_stream_subscribed(struct gw_cmd *xc)
{
    struct opening *o = xc->done_arg;
    struct gw_cmd *cmd = o->cmd;
    if (xc->status != 200) {
        cmd->retry_after = xc->retry_after;
        gw_cmd_finish(cmd, xc->status, json_incref(xc->result));
    } else {
        int fresh = gw_hooks_find_node(o->h, xc->service, xc->node) == NULL;
        struct hnode *hn = gw_hooks_node(o->h, xc->service, xc->node);
        if (hn == NULL) {
            gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        } else {
            hn->subscribed = 1;
            hn->missing = 0;
            gw_streams_attach(o->h, hn, cmd->stream);
            gw_cmd_finish(cmd, 200, NULL);
            /* A node newly followed: its items so far are not events (a server may re-send
             * the last one on subscription). */
            if (fresh && !hn->syncing)
                gw_nodesync_start(o->h, hn, 1);
        }
    }
    free(o);
    gw_cmd_free(xc);
}

void gw_streams_open(struct gw_hooks *h, struct gw_cmd *cmd)
{
    const char *service = cmd->service ? cmd->service : h->cfg->service;
    struct hnode *hn = gw_hooks_find_node(h, service, cmd->node);
    if (hn != NULL && hn->subscribed) {
        gw_streams_attach(h, hn, cmd->stream);
        gw_cmd_finish(cmd, 200, NULL);
        return;
    }
    /* First reader of this node, or a node whose subscription is not confirmed (yet): the
     * gateway subscribes first (404 when there is no such node). */
    struct opening *o = calloc(1, sizeof(*o));
    struct gw_cmd *xc =
        o ? gw_hooks_xmpp_cmd(GW_OP_SUBSCRIBE, service, cmd->node, on_stream_subscribed, o) : NULL;
    if (xc == NULL) {
        free(o);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    o->h = h;
    o->cmd = cmd;
    h->exec(h->exec_arg, xc);
}

struct beat {
    struct hnode **dirty;
    size_t n, cap;
};

static void beat_node(void *value, void *arg)
{
    struct hnode *hn = value;
    struct beat *b = arg;
    static const char beat[] = ": keep-alive\n\n";
    int dead = 0;
    for (struct gw_stream *st = hn->streams; st; st = st->next)
        dead |= gw_stream_push(st, beat, sizeof(beat) - 1) != 0;
    if (!dead)
        return;
    /* Swept after the walk (the map must not change during it), each node once. */
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        struct hnode **d = realloc(b->dirty, cap * sizeof(*d));
        if (d == NULL)
            return; /* swept at the next heartbeat */
        b->dirty = d;
        b->cap = cap;
    }
    b->dirty[b->n++] = hn;
}

static void on_heartbeat(struct gw_loop *loop, void *arg)
{
    struct gw_hooks *h = arg;
    struct beat b = {NULL, 0, 0};
    gw_hmap_each(h->nodes, beat_node, &b);
    for (size_t i = 0; i < b.n; i++)
        sweep(h, b.dirty[i]);
    free(b.dirty);
    h->heartbeat_timer = gw_loop_timer_add(loop, h->cfg->sse_heartbeat_ms, on_heartbeat, h);
}

void gw_streams_heartbeat_start(struct gw_hooks *h)
{
    if (h->cfg->sse_heartbeat_ms > 0)
        h->heartbeat_timer = gw_loop_timer_add(h->loop, h->cfg->sse_heartbeat_ms, on_heartbeat, h);
}

static void close_node_streams(void *value, void *arg)
{
    (void)arg;
    struct hnode *hn = value;
    for (struct gw_stream *st = hn->streams; st; st = st->next)
        gw_stream_close(st);
}

void gw_hooks_close_streams(struct gw_hooks *h)
{
    gw_hmap_each(h->nodes, close_node_streams, NULL);
}

void gw_streams_node_free(struct hnode *hn)
{
    while (hn->streams) {
        struct gw_stream *st = hn->streams;
        hn->streams = st->next;
        atomic_fetch_sub(&gw_status.streams_open, 1);
        gw_stream_close(st);
        gw_stream_unref(st);
    }
    if (hn->history != NULL) {
        for (int k = 0; k < hn->hcap; k++)
            free(hn->history[k].text);
        free(hn->history);
    }
    free(hn->service);
    free(hn->node);
    free(hn);
}
