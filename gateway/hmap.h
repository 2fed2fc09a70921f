/* A small string-keyed hash map (separate chaining, doubling) for the registries. Keys are
 * copied; values are the caller's. */
#ifndef GW_HMAP_H
#define GW_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct gw_hmap;

struct gw_hmap *gw_hmap_new(void);
/* Frees the map and its keys, not the values. */
void gw_hmap_free(struct gw_hmap *m);
/* Key of klen bytes (may contain NUL). Returns the value or NULL. */
void *gw_hmap_get(const struct gw_hmap *m, const void *key, size_t klen);
/* Sets key to value (replacing); 0 or -1 when out of memory. */
int gw_hmap_put(struct gw_hmap *m, const void *key, size_t klen, void *value);
/* Removes key; returns the old value or NULL. */
void *gw_hmap_del(struct gw_hmap *m, const void *key, size_t klen);
size_t gw_hmap_size(const struct gw_hmap *m);
/* The hash the map uses (FNV-1a, 64 bits), for indexes of their own. */
uint64_t gw_hmap_hash(const void *key, size_t len);
/* Calls cb for every entry; cb must not change the map. */
void gw_hmap_each(const struct gw_hmap *m, void (*cb)(void *value, void *arg), void *arg);

/* Writes the two-part key "a NUL b" (registries keyed by service and node) into buf; returns
 * its length, or 0 when it does not fit in cap bytes. */
size_t gw_hmap_pair_key(const char *a, const char *b, char *buf, size_t cap);

#endif
