/* Replay window: a hash map from "node NUL signature" to its entry, and the entries in a list
 * oldest first, so expiry and eviction take from the head. */
#include "replay.h"

#include "../gateway/hmap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *key;
    size_t klen;
    char *delivery; /* NULL: none */
    int64_t at_ms;
    struct entry *next;
};

struct gw_replay {
    pthread_mutex_t lock;
    struct gw_hmap *map;
    struct entry *head, *tail;
    size_t n, max;
    int64_t window_ms;
};

struct gw_replay *gw_replay_new(int64_t window_ms, size_t max)
{
    struct gw_replay *rp = calloc(1, sizeof(*rp));
    if (rp == NULL)
        return NULL;
    rp->map = gw_hmap_new();
    if (rp->map == NULL) {
        free(rp);
        return NULL;
    }
    pthread_mutex_init(&rp->lock, NULL);
    rp->window_ms = window_ms;
    rp->max = max ? max : 1;
    return rp;
}

static void drop_head(struct gw_replay *rp)
{
    struct entry *e = rp->head;
    rp->head = e->next;
    if (rp->head == NULL)
        rp->tail = NULL;
    if (e->klen > 0) /* 0: already forgotten */
        gw_hmap_del(rp->map, e->key, e->klen);
    rp->n--;
    free(e->key);
    free(e->delivery);
    free(e);
}

void gw_replay_free(struct gw_replay *rp)
{
    if (rp == NULL)
        return;
    while (rp->head)
        drop_head(rp);
    gw_hmap_free(rp->map);
    pthread_mutex_destroy(&rp->lock);
    free(rp);
}

/* "node NUL sig" into a new buffer; NULL when out of memory. */
static char *make_key(const char *node, const char *sig, size_t *klen)
{
    size_t cap = strlen(node) + strlen(sig) + 1;
    char *key = malloc(cap);
    if (key != NULL)
        *klen = gw_hmap_pair_key(node, sig, key, cap);
    return key;
}

void gw_replay_forget(struct gw_replay *rp, const char *node, const char *sig)
{
    size_t klen;
    char *key = make_key(node, sig, &klen);
    if (key == NULL)
        return;
    pthread_mutex_lock(&rp->lock);
    struct entry *e = gw_hmap_get(rp->map, key, klen);
    if (e != NULL) {
        /* Left in the list (it expires from there), but no longer matches. */
        gw_hmap_del(rp->map, key, klen);
        e->klen = 0;
    }
    pthread_mutex_unlock(&rp->lock);
    free(key);
}

int gw_replay_check(struct gw_replay *rp, const char *node, const char *sig,
                    const char *delivery_id, int64_t now_ms)
{
    size_t klen;
    char *key = make_key(node, sig, &klen);
    if (key == NULL)
        return 0;
    int replay = 0;
    pthread_mutex_lock(&rp->lock);
    while (rp->head && now_ms - rp->head->at_ms > rp->window_ms)
        drop_head(rp);
    struct entry *seen = gw_hmap_get(rp->map, key, klen);
    if (seen != NULL) {
        replay = seen->delivery == NULL || delivery_id == NULL ||
                 strcmp(seen->delivery, delivery_id) != 0;
        free(key);
    } else {
        struct entry *e = calloc(1, sizeof(*e));
        if (e != NULL && delivery_id != NULL && (e->delivery = strdup(delivery_id)) == NULL) {
            free(e);
            e = NULL;
        }
        if (e == NULL || gw_hmap_put(rp->map, key, klen, e) != 0) {
            if (e)
                free(e->delivery);
            free(e);
            free(key);
        } else {
            e->key = key;
            e->klen = klen;
            e->at_ms = now_ms;
            if (rp->tail)
                rp->tail->next = e;
            else
                rp->head = e;
            rp->tail = e;
            if (++rp->n > rp->max)
                drop_head(rp);
        }
    }
    pthread_mutex_unlock(&rp->lock);
    return replay;
}
