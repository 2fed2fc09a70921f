/* What a store backend provides: store.c calls through this table, the rest of the core sees
 * only store.h. A backend's own struct starts with struct gw_store. */
#ifndef GW_STORE_INT_H
#define GW_STORE_INT_H

#include "store.h"

#include <stdatomic.h>

struct gw_store_ops {
    const char *kind; /* "sqlite", "postgresql" */
    void (*close)(struct gw_store *st);
    int (*up)(struct gw_store *st);
    int (*begin)(struct gw_store *st);
    int (*commit)(struct gw_store *st);
    void (*rollback)(struct gw_store *st);
    int (*sub_insert)(struct gw_store *st, const struct gw_store_sub *s);
    int (*sub_delete)(struct gw_store *st, const char *id);
    int (*sub_renew)(struct gw_store *st, const char *id, const char *secret, const char *websub);
    int (*sub_each)(struct gw_store *st, void (*cb)(const struct gw_store_sub *s, void *arg),
                    void *arg);
    int64_t (*event_add)(struct gw_store *st, const char *event_id, const char *service,
                         const char *node, const char *body, int64_t created_ms);
    int (*delivery_add)(struct gw_store *st, const char *sub_id, int64_t event, int64_t next_at,
                        const char *dead_reason);
    /* live (dead 0) or dead (dead 1) deliveries counted per subscription; dead letters may be
     * counted for sub_id alone (NULL: every subscription; live ones always for all) */
    int (*count_each)(struct gw_store *st, int dead, const char *sub_id,
                      void (*cb)(const char *sub_id, int64_t n, void *arg), void *arg);
    int (*delivery_next)(struct gw_store *st, const char *sub_id, int64_t after, int limit,
                         struct gw_store_delivery *out);
    int (*delivery_done)(struct gw_store *st, int64_t seq, int64_t event);
    int (*delivery_remove)(struct gw_store *st, int64_t seq);
    int (*event_gc)(struct gw_store *st, int64_t event);
    int (*delivery_failed)(struct gw_store *st, int64_t seq, int attempts, int64_t next_at,
                           const char *error, int dead);
    int (*dead_each)(struct gw_store *st, const char *sub_id,
                     void (*cb)(const struct gw_store_delivery *d, void *arg), void *arg);
    int (*dead_prune_age)(struct gw_store *st, int64_t before_ms, int limit);
    int (*dead_prune_count)(struct gw_store *st, const char *sub_id, int keep, int limit);
    int (*dead_retry)(struct gw_store *st, const char *sub_id, int64_t seq, int64_t now_ms);
    int64_t (*oldest_pending_ms)(struct gw_store *st);
    int (*attempt_add)(struct gw_store *st, const struct gw_store_attempt *a);
    int (*attempts_each)(struct gw_store *st, const char *sub_id, int64_t before, int limit,
                         void (*cb)(const struct gw_store_attempt *a, void *arg), void *arg);
    int (*attempts_prune_count)(struct gw_store *st, const char *sub_id, int keep);
    int (*attempts_prune_age)(struct gw_store *st, int64_t before_ms);
    int (*seen_add)(struct gw_store *st, const char *service, const char *node, const char *item);
    int (*seen_has)(struct gw_store *st, const char *service, const char *node, const char *item);
    int (*seen_prune)(struct gw_store *st, const char *service, const char *node, int keep);
    /* several gateways on one store: NULL when the backend has none */
    int (*notify_fd)(struct gw_store *st);
    int (*connecting)(struct gw_store *st);
    int (*notify_read)(struct gw_store *st, void (*cb)(char kind, const char *id, void *arg),
                       void *arg);
    unsigned (*epoch)(struct gw_store *st);
    int (*lock_try)(struct gw_store *st, uint32_t key);
    int (*lock_release)(struct gw_store *st, uint32_t key);
    int (*locks_free)(struct gw_store *st, int n, int *out);
    int (*replicas)(struct gw_store *st);
    int64_t (*event_add_claimed)(struct gw_store *st, const char *claim, const char *event_id,
                                 const char *service, const char *node, const char *body,
                                 int64_t created_ms);
    int (*claims_prune)(struct gw_store *st, int64_t before_ms);
    int (*sub_get)(struct gw_store *st, const char *id, struct gw_store_sub *s);
    int (*notify)(struct gw_store *st, char kind, const char *id);
    int (*feed_put)(struct gw_store *st, const struct gw_store_feed *f);
    int (*feed_delete)(struct gw_store *st, const char *id);
    int (*feed_each)(struct gw_store *st, void (*cb)(const struct gw_store_feed *f, void *arg),
                     void *arg);
};

struct gw_store_thread;

struct gw_store {
    const struct gw_store_ops *ops;
    struct gw_store_thread *thr; /* the store's thread, once started */
    atomic_int up_known;         /* connected, as the last call that tried found it */
};

struct gw_store *gw_store_sqlite_open(const char *path, char *err, size_t errlen);
struct gw_store *gw_store_pg_open(const char *url, char *err, size_t errlen);

#endif
