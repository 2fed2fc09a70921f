/* Hash map: FNV-1a, chains, table doubled at load factor 1. */
#include "hmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    uint64_t hash;
    size_t klen;
    void *value;
    char key[];
};

struct gw_hmap {
    struct entry **slots;
    size_t nslots, size;
};

uint64_t gw_hmap_hash(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

struct gw_hmap *gw_hmap_new(void)
{
    struct gw_hmap *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->nslots = 64;
    m->slots = calloc(m->nslots, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void gw_hmap_free(struct gw_hmap *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nslots; i++) {
        struct entry *e = m->slots[i];
        while (e) {
            struct entry *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->slots);
    free(m);
}

static struct entry **find(const struct gw_hmap *m, const void *key, size_t klen, uint64_t h)
{
    struct entry **pp = &m->slots[h & (m->nslots - 1)];
    while (*pp && ((*pp)->hash != h || (*pp)->klen != klen || memcmp((*pp)->key, key, klen) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *gw_hmap_get(const struct gw_hmap *m, const void *key, size_t klen)
{
    struct entry **pp = find(m, key, klen, gw_hmap_hash(key, klen));
    return *pp ? (*pp)->value : NULL;
}

static void grow(struct gw_hmap *m)
{
    size_t n = m->nslots * 2;
    struct entry **slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return; /* stay at the current size: slower, still correct */
    for (size_t i = 0; i < m->nslots; i++) {
        struct entry *e = m->slots[i];
        while (e) {
            struct entry *next = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

int gw_hmap_put(struct gw_hmap *m, const void *key, size_t klen, void *value)
{
    uint64_t h = gw_hmap_hash(key, klen);
    struct entry **pp = find(m, key, klen, h);
    if (*pp) {
        (*pp)->value = value;
        return 0;
    }
    struct entry *e = malloc(sizeof(*e) + klen);
    if (e == NULL)
        return -1;
    e->next = NULL;
    e->hash = h;
    e->klen = klen;
    e->value = value;
    memcpy(e->key, key, klen);
    *pp = e;
    if (++m->size > m->nslots)
        grow(m);
    return 0;
}

void *gw_hmap_del(struct gw_hmap *m, const void *key, size_t klen)
{
    struct entry **pp = find(m, key, klen, gw_hmap_hash(key, klen));
    struct entry *e = *pp;
    if (e == NULL)
        return NULL;
    void *v = e->value;
    *pp = e->next;
    free(e);
    m->size--;
    return v;
}

size_t gw_hmap_size(const struct gw_hmap *m)
{
    return m->size;
}

void gw_hmap_each(const struct gw_hmap *m, void (*cb)(void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->nslots; i++)
        for (struct entry *e = m->slots[i]; e; e = e->next)
            cb(e->value, arg);
}

size_t gw_hmap_pair_key(const char *a, const char *b, char *buf, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb + 1 > cap)
        return 0;
    memcpy(buf, a, la + 1);
    memcpy(buf + la + 1, b, lb);
    return la + 1 + lb;
}
