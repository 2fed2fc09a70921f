/* Keeping each node's XMPP subscription true to the registry, the same way on every server:
 * the re-check against the service's list whenever the session comes up, catch-up of what was
 * published meanwhile, the baseline of a node newly followed, and nodes that were deleted.
 *
 * While a node is being synchronised its live events are held back. Servers may re-send the
 * last published item on subscription or on presence (ejabberd's default
 * send_last_published_item), and such a re-send must not reach a callback twice or ahead of
 * older missed items. The items request that ends a synchronisation is answered after every
 * re-send that our subscribe or presence caused, so the held events whose item is in that
 * answer are dropped: catch-up delivered them already, or they were seen before. */
#include "log.h"
#include "loop.h"
#include "webhooks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Held events per node beyond which they are delivered at once (order may then suffer). */
#define HELD_MAX 10000
#define PROBE_FIRST_MS 5000
#define PROBE_MAX_MS 300000

static void end_sync(struct gw_hooks *h, struct hnode *hn, json_t *fetched)
{
    json_t *held = hn->held;
    hn->held = NULL;
    hn->syncing = 0;
    if (held == NULL)
        return;
    json_t *keep = json_array();
    size_t i;
    json_t *ev;
    json_array_foreach(held, i, ev)
    {
        const char *type = json_string_value(json_object_get(ev, "type"));
        const char *id = json_string_value(json_object_get(json_object_get(ev, "item"), "id"));
        if (fetched != NULL && type != NULL && strcmp(type, "item.published") == 0 && id &&
            json_object_get(fetched, id) != NULL)
            continue;
        json_array_append(keep, ev);
    }
    json_decref(held);
    if (json_array_size(keep) > 0)
        gw_hooks_deliver_live(h, keep);
    json_decref(keep);
}

int gw_nodesync_hold(struct gw_hooks *h, struct hnode *hn, json_t *event)
{
    (void)h;
    if (!hn->syncing)
        return 0;
    if (hn->held == NULL)
        hn->held = json_array();
    if (hn->held == NULL || json_array_size(hn->held) >= HELD_MAX)
        return 0;
    json_array_append(hn->held, event);
    return 1;
}

struct syncing {
    struct gw_hooks *h;
    int baseline;
};

struct synced {
    char *service, *node;
    unsigned gen;
    json_t *fetched; /* the item ids the service listed */
};

static void on_synced(struct gw_hooks *h, size_t missed, void *arg)
{
    struct synced *sd = arg;
    if (missed > 0)
        gw_info("catch-up of %s/%s: %zu missed items", sd->service, sd->node, missed);
    struct hnode *hn = gw_hooks_find_node(h, sd->service, sd->node);
    if (hn != NULL && hn->syncing && hn->sync_gen == sd->gen)
        end_sync(h, hn, sd->fetched);
    json_decref(sd->fetched);
    free(sd->service);
    free(sd->node);
    free(sd);
}

/* The node's items: in a baseline they are only marked seen; in a catch-up those never turned
 * into events (published while the gateway was away) become events now, oldest first. */
static void on_sync_items(struct gw_cmd *cmd)
{
    struct syncing *sy = cmd->done_arg;
    struct gw_hooks *h = sy->h;
    int baseline = sy->baseline;
    free(sy);
    struct hnode *hn = gw_hooks_find_node(h, cmd->service, cmd->node);
    if (hn == NULL) {
        gw_cmd_free(cmd);
        return;
    }
    if (cmd->status != 200) {
        gw_warn("catch-up of %s/%s failed with %d", cmd->service, cmd->node, cmd->status);
        end_sync(h, hn, NULL);
        gw_cmd_free(cmd);
        return;
    }
    json_t *fetched = json_object(), *items = json_object_get(cmd->result, "items");
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        const char *id = json_string_value(json_object_get(item, "id"));
        if (id != NULL)
            json_object_set_new(fetched, id, json_true());
    }
    /* The store's part (which items are new, storing them) on its thread; the node's held
     * events go on when it is done. */
    struct synced *sd = calloc(1, sizeof(*sd));
    if (sd == NULL || (sd->service = strdup(cmd->service)) == NULL ||
        (sd->node = strdup(cmd->node)) == NULL ||
        gw_hooks_catchup(h, cmd->service, cmd->node, items, baseline, 2 * h->cfg->catchup_max,
                         on_synced, sd) != 0) {
        if (sd != NULL) {
            free(sd->service);
            free(sd->node);
        }
        free(sd);
        gw_error("catch-up of %s/%s: out of memory", cmd->service, cmd->node);
        end_sync(h, hn, fetched);
        json_decref(fetched);
        gw_cmd_free(cmd);
        return;
    }
    sd->gen = hn->sync_gen;
    sd->fetched = fetched;
    gw_cmd_free(cmd);
}

void gw_nodesync_start(struct gw_hooks *h, struct hnode *hn, int baseline)
{
    struct syncing *sy = calloc(1, sizeof(*sy));
    struct gw_cmd *c =
        sy ? gw_hooks_xmpp_cmd(GW_OP_ITEMS_GET, hn->service, hn->node, on_sync_items, sy) : NULL;
    if (c == NULL) {
        free(sy);
        end_sync(h, hn, NULL);
        return;
    }
    sy->h = h;
    sy->baseline = baseline;
    hn->syncing = 1;
    hn->sync_gen++;
    c->max_items = h->cfg->catchup_max;
    h->exec(h->exec_arg, c);
}

static void probe(struct gw_hooks *h, struct hnode *hn);

static void on_probe_timer(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct hnode *hn = arg;
    hn->probe_timer = 0;
    probe(hn->hooks, hn);
}

static void arm_probe(struct gw_hooks *h, struct hnode *hn)
{
    if (hn->probe_timer != 0)
        return;
    hn->probe_ms = hn->probe_ms == 0
                       ? PROBE_FIRST_MS
                       : (hn->probe_ms * 2 > PROBE_MAX_MS ? PROBE_MAX_MS : hn->probe_ms * 2);
    hn->probe_timer = gw_loop_timer_add(h->loop, hn->probe_ms, on_probe_timer, hn);
}

/* The answer to subscribing again: after a reconnect, or to a node that was missing. */
static void on_resubscribed(struct gw_cmd *cmd)
{
    struct gw_hooks *h = cmd->done_arg;
    struct hnode *hn = gw_hooks_find_node(h, cmd->service, cmd->node);
    if (hn == NULL) {
        gw_cmd_free(cmd);
        return;
    }
    hn->probing = 0;
    if (cmd->status == 200) {
        if (hn->missing)
            gw_info("node %s/%s exists again: subscribed, its callbacks are active", hn->service,
                    hn->node);
        hn->missing = 0;
        hn->probe_ms = 0;
        hn->subscribed = 1;
        gw_nodesync_start(h, hn, 0);
    } else if (cmd->status == 404) {
        if (!hn->missing)
            gw_warn("node %s/%s does not exist: its subscriptions are node_deleted until it is "
                    "created again",
                    hn->service, hn->node);
        hn->missing = 1;
        end_sync(h, hn, NULL);
        arm_probe(h, hn);
    } else {
        gw_warn("cannot subscribe to %s/%s (status %d); its callbacks get nothing until it works",
                cmd->service, cmd->node, cmd->status);
        end_sync(h, hn, NULL);
        if (cmd->status != 503)
            arm_probe(h, hn); /* 503: the session dropped, the next one re-checks anyway */
    }
    gw_cmd_free(cmd);
}

static void subscribe_again(struct gw_hooks *h, struct hnode *hn)
{
    struct gw_cmd *c =
        gw_hooks_xmpp_cmd(GW_OP_SUBSCRIBE, hn->service, hn->node, on_resubscribed, h);
    if (c == NULL) {
        end_sync(h, hn, NULL);
        return;
    }
    hn->syncing = 1;
    hn->sync_gen++;
    hn->probing = 1;
    h->exec(h->exec_arg, c);
}

void gw_nodesync_resubscribe(struct gw_hooks *h, struct hnode *hn)
{
    hn->subscribed = 0;
    subscribe_again(h, hn);
}

static void probe(struct gw_hooks *h, struct hnode *hn)
{
    if (hn->probing || hn->subscribed)
        return;
    subscribe_again(h, hn);
}

struct forgetting {
    struct gw_store *st;
    char *service, *node;
};

static void forget_job(void *arg)
{
    struct forgetting *f = arg;
    gw_store_seen_prune(f->st, f->service, f->node, 0);
}

static void forget_done(void *arg)
{
    struct forgetting *f = arg;
    free(f->service);
    free(f->node);
    free(f);
}

void gw_nodesync_deleted(struct gw_hooks *h, struct hnode *hn)
{
    gw_info("node %s/%s was deleted: its subscriptions are node_deleted until it is created again",
            hn->service, hn->node);
    hn->missing = 1;
    hn->subscribed = 0;
    /* A node created again under the same name starts with fresh item ids (forgotten on the
     * store's thread: after the events of its items queued before). */
    struct forgetting *f = calloc(1, sizeof(*f));
    if (f != NULL && (f->service = strdup(hn->service)) != NULL &&
        (f->node = strdup(hn->node)) != NULL) {
        f->st = h->store;
        gw_store_submit(h->store, forget_job, forget_done, f);
    } else if (f != NULL) {
        forget_done(f);
    }
    arm_probe(h, hn);
}

void gw_hooks_on_node_appeared(struct gw_hooks *h, const char *service, const char *node)
{
    struct hnode *hn = gw_hooks_find_node(h, service, node);
    if (hn == NULL || !hn->missing || hn->probing)
        return;
    if (hn->probe_timer) {
        gw_loop_timer_cancel(h->loop, hn->probe_timer);
        hn->probe_timer = 0;
    }
    subscribe_again(h, hn);
}

void gw_nodesync_forget(struct gw_hooks *h, struct hnode *hn)
{
    if (hn->probe_timer)
        gw_loop_timer_cancel(h->loop, hn->probe_timer);
    hn->probe_timer = 0;
    json_decref(hn->held);
    hn->held = NULL;
}

struct resync {
    struct gw_hooks *h;
    json_t *listed; /* node -> true for nodes the service says we are subscribed to */
    const char *service;
};

static void resync_node(void *value, void *arg)
{
    struct hnode *hn = value;
    struct resync *r = arg;
    if (strcmp(hn->service, r->service) != 0)
        return;
    if (json_object_get(r->listed, hn->node)) {
        json_object_set_new(r->listed, hn->node, json_false()); /* needed: keep it */
        hn->subscribed = 1;
        hn->missing = 0;
        gw_nodesync_start(r->h, hn, 0);
        return;
    }
    subscribe_again(r->h, hn);
}

static void end_sync_service(void *value, void *arg)
{
    struct resync *r = arg;
    struct hnode *hn = value;
    if (strcmp(hn->service, r->service) == 0)
        end_sync(r->h, hn, NULL);
}

/* The service's list of our subscriptions is the truth: subscribe where one is missing,
 * unsubscribe where no callback needs it any more. */
static void on_subscriptions(struct gw_cmd *cmd)
{
    struct gw_hooks *h = cmd->done_arg;
    struct resync r = {h, NULL, cmd->service};
    if (cmd->status != 200) {
        gw_warn("cannot list subscriptions at %s (status %d)", cmd->service, cmd->status);
        gw_hmap_each(h->nodes, end_sync_service, &r);
        gw_cmd_free(cmd);
        return;
    }
    r.listed = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(cmd->result, "subscriptions"), i, e)
    {
        const char *node = json_string_value(json_object_get(e, "node"));
        const char *state = json_string_value(json_object_get(e, "subscription"));
        if (node && state && strcmp(state, "subscribed") == 0)
            json_object_set_new(r.listed, node, json_true());
    }
    gw_hmap_each(h->nodes, resync_node, &r);
    const char *node;
    json_t *v;
    json_object_foreach(r.listed, node, v)
    {
        /* On a shared store another gateway may need what this one does not know of. */
        if (!json_is_true(v) || (h->shared && h->replicas != 1))
            continue;
        gw_info("unsubscribing from %s/%s: no callback needs it", cmd->service, node);
        struct gw_cmd *c = gw_hooks_xmpp_cmd(GW_OP_UNSUBSCRIBE, cmd->service, node,
                                             gw_hooks_background_done, NULL);
        if (c)
            h->exec(h->exec_arg, c);
    }
    json_decref(r.listed);
    gw_cmd_free(cmd);
}

static void mark_down(void *value, void *arg)
{
    struct gw_hooks *h = arg;
    struct hnode *hn = value;
    hn->subscribed = 0;
    hn->probing = 0;
    json_decref(hn->held); /* not marked seen: the next catch-up brings them */
    hn->held = NULL;
    hn->syncing = 0;
    if (hn->probe_timer) {
        gw_loop_timer_cancel(h->loop, hn->probe_timer);
        hn->probe_timer = 0;
    }
}

void gw_hooks_on_xmpp_down(struct gw_hooks *h)
{
    gw_hmap_each(h->nodes, mark_down, h);
}

static void start_up(void *value, void *arg)
{
    struct hnode *hn = value;
    json_object_set_new(arg, hn->service, json_true());
    hn->syncing = 1;
    hn->sync_gen++; /* from the first stanza of the session: presence may bring re-sends */
}

void gw_hooks_on_xmpp_up(struct gw_hooks *h)
{
    json_t *services = json_object();
    gw_hmap_each(h->nodes, start_up, services);
    const char *service;
    json_t *v;
    json_object_foreach(services, service, v)
    {
        struct gw_cmd *c =
            gw_hooks_xmpp_cmd(GW_OP_SUBSCRIPTIONS, service, NULL, on_subscriptions, h);
        if (c)
            h->exec(h->exec_arg, c);
    }
    json_decref(services);
}

static void catch_up_node(void *value, void *arg)
{
    struct hnode *hn = value;
    if (hn->subscribed && !hn->syncing && !hn->missing)
        gw_nodesync_start(arg, hn, 0);
}

void gw_nodesync_all(struct gw_hooks *h)
{
    gw_hmap_each(h->nodes, catch_up_node, h);
}
