/* SQLite persistence. WAL with synchronous=NORMAL: a committed event survives a crash of the
 * process (kill -9), which is the failure the outbox is for; only a power loss may drop the
 * last commits. Statements are prepared once and reused.
 *
 * Commits never wait for the disk, but a WAL checkpoint does (it syncs the log and the database
 * file), for several milliseconds. Run on the loop thread, as SQLite's automatic checkpoint
 * would, it stalls everything queued behind it; so checkpoints run on a thread of their own
 * with a second connection, started from the WAL hook when enough of the log is new. Such a
 * checkpoint runs beside the loop's commits and so never copies the frames written meanwhile;
 * once the log is long, the loop finishes the little that is left itself, which lets the next
 * commit start the log over. */
#include "store_int.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* A background checkpoint starts once this many log frames (pages) are new since the last one;
 * the loop finishes a checkpoint when the log has grown to RESTART_FRAMES. */
#define CKPT_FRAMES 1000
#define RESTART_FRAMES 4096
/* When the background checkpoints fall this far behind (a busy machine starves their thread),
 * the loop waits for the one under way and copies the rest itself: the log stays bounded. */
#define HARD_FRAMES (2 * RESTART_FRAMES)

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_SUB_INSERT,
    S_SUB_DELETE,
    S_SUB_DELETE_DELIVERIES,
    S_SUB_ALL,
    S_SUB_RENEW,
    S_FEED_PUT,
    S_FEED_DELETE,
    S_FEED_ALL,
    S_EVENT_ADD,
    S_EVENT_GC,
    S_DELIVERY_ADD,
    S_DELIVERY_HEAD,
    S_DELIVERY_DONE,
    S_DELIVERY_FAILED,
    S_DEAD_LIST,
    S_DEAD_RETRY,
    S_SEEN_ADD,
    S_SEEN_HAS,
    S_SEEN_PRUNE,
    S_EVENTS_ORPHANS,
    S_SUB_EVENTS_ORPHANED,
    S_DEAD_OLD,
    S_DEAD_EXCESS,
    S_ATTEMPT_ADD,
    S_ATTEMPT_LIST,
    S_ATTEMPT_EXCESS,
    S_ATTEMPT_OLD,
    S_SUB_DELETE_ATTEMPTS,
    S_OLDEST_PENDING,
    S_PENDING_BY_SUB,
    S_DEAD_BY_SUB,
    S_DEAD_OF_SUB,
    S_COUNT
};

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_SUB_INSERT] = "INSERT INTO subscriptions(id, service, node, callback, secret, events, "
                     "created_ms, websub, options, key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                     "?9, ?10)",
    [S_SUB_RENEW] = "UPDATE subscriptions SET secret = ?2, websub = ?3 WHERE id = ?1",
    [S_FEED_PUT] = "INSERT INTO feeds(id, url, service, node, interval_s, created_ms, state) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO UPDATE SET "
                   "interval_s = excluded.interval_s, state = excluded.state",
    [S_FEED_DELETE] = "DELETE FROM feeds WHERE id = ?1",
    [S_FEED_ALL] = "SELECT id, url, service, node, interval_s, created_ms, state FROM feeds "
                   "ORDER BY created_ms, id",
    [S_SUB_DELETE] = "DELETE FROM subscriptions WHERE id = ?1",
    [S_SUB_DELETE_DELIVERIES] = "DELETE FROM deliveries WHERE sub_key = ?1",
    [S_SUB_ALL] = "SELECT id, service, node, callback, secret, events, created_ms, websub, "
                  "options FROM subscriptions ORDER BY created_ms, id",
    [S_EVENT_ADD] = "INSERT INTO events(event_id, service, node, body, created_ms) "
                    "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_EVENT_GC] = "DELETE FROM events WHERE id = ?1 AND NOT EXISTS "
                   "(SELECT 1 FROM deliveries WHERE event = ?1)",
    [S_DELIVERY_ADD] = "INSERT INTO deliveries(sub_key, event, next_at, dead, last_error) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [S_DELIVERY_HEAD] =
        "SELECT d.seq, d.event, e.event_id, e.body, d.attempts, d.next_at, "
        "e.created_ms, d.last_error FROM deliveries d JOIN events e ON e.id = "
        "d.event WHERE d.sub_key = ?1 AND d.dead = 0 AND d.seq > ?2 ORDER BY d.seq LIMIT ?3",
    [S_DELIVERY_DONE] = "DELETE FROM deliveries WHERE seq = ?1",
    [S_DELIVERY_FAILED] = "UPDATE deliveries SET attempts = ?2, next_at = ?3, last_error = ?4, "
                          "dead = ?5 WHERE seq = ?1",
    [S_DEAD_LIST] = "SELECT d.seq, d.event, e.event_id, e.body, d.attempts, d.next_at, "
                    "e.created_ms, d.last_error FROM deliveries d JOIN events e ON e.id = d.event "
                    "WHERE d.sub_key = ?1 AND d.dead = 1 ORDER BY d.seq LIMIT 1000",
    [S_DEAD_RETRY] = "UPDATE deliveries SET dead = 0, attempts = 0, next_at = ?3 "
                     "WHERE sub_key = ?1 AND seq = ?2 AND dead = 1",
    [S_SEEN_ADD] = "INSERT OR IGNORE INTO seen_items(service, node, item) VALUES (?1, ?2, ?3)",
    [S_SEEN_HAS] = "SELECT 1 FROM seen_items WHERE service = ?1 AND node = ?2 AND item = ?3",
    [S_SEEN_PRUNE] = "DELETE FROM seen_items WHERE service = ?1 AND node = ?2 AND rowid <= "
                     "(SELECT rowid FROM seen_items WHERE service = ?1 AND node = ?2 "
                     "ORDER BY rowid DESC LIMIT 1 OFFSET ?3)",
    /* Rows of a subscription carry its key (sub_key), not its id: the id comes from its row. */
    [S_PENDING_BY_SUB] = "SELECT s.id, count(*) FROM deliveries d JOIN subscriptions s ON s.key = "
                         "d.sub_key WHERE d.dead = 0 GROUP BY d.sub_key",
    [S_DEAD_BY_SUB] = "SELECT s.id, count(*) FROM deliveries d JOIN subscriptions s ON s.key = "
                      "d.sub_key WHERE d.dead = 1 GROUP BY d.sub_key",
    [S_DEAD_OF_SUB] = "SELECT ?2, count(*) FROM deliveries WHERE sub_key = ?1 AND dead = 1 "
                      "GROUP BY sub_key",
    [S_EVENTS_ORPHANS] = "DELETE FROM events WHERE NOT EXISTS "
                         "(SELECT 1 FROM deliveries WHERE event = events.id)",
    /* The events of one subscription's deliveries that no other subscription still needs: by
     * id through both delivery indexes, not a scan of the events table. */
    /* Dead letters past their age (next_at is when they died), through deliveries_dead. */
    [S_DEAD_OLD] = "SELECT seq, event FROM deliveries WHERE dead = 1 AND next_at < ?1 LIMIT ?2",
    /* A subscription's dead letters beyond the newest ?2, through deliveries_sub. */
    [S_DEAD_EXCESS] =
        "SELECT seq, event FROM deliveries WHERE sub_key = ?1 AND dead = 1 AND seq <= "
        "(SELECT seq FROM deliveries WHERE sub_key = ?1 AND dead = 1 "
        "ORDER BY seq DESC LIMIT 1 OFFSET ?2) LIMIT ?3",
    [S_ATTEMPT_ADD] = "INSERT INTO attempts(sub_key, at_ms, event_id, attempt, status, error, "
                      "duration_ms, answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_ATTEMPT_LIST] = "SELECT id, at_ms, event_id, attempt, status, error, duration_ms, answer "
                       "FROM attempts WHERE sub_key = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
    [S_ATTEMPT_EXCESS] = "DELETE FROM attempts WHERE sub_key = ?1 AND id <= (SELECT id FROM "
                         "attempts WHERE sub_key = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
    /* The oldest thousand by id, those of them past their age: ids follow the time of the
     * attempts (written as they end: a slow one is seconds behind), so no index on at_ms, which
     * every delivery would write. */
    [S_ATTEMPT_OLD] = "DELETE FROM attempts WHERE id IN (SELECT id FROM (SELECT id, at_ms FROM "
                      "attempts ORDER BY id LIMIT 1000) WHERE at_ms < ?1)",
    [S_SUB_DELETE_ATTEMPTS] = "DELETE FROM attempts WHERE sub_key = ?1",
    /* deliveries in seq order (the primary key), past the dead letters kept at the front */
    [S_OLDEST_PENDING] = "SELECT e.created_ms FROM deliveries d JOIN events e ON e.id = d.event "
                         "WHERE d.dead = 0 ORDER BY d.seq LIMIT 1",
    [S_SUB_EVENTS_ORPHANED] =
        "DELETE FROM events WHERE id IN (SELECT event FROM deliveries WHERE sub_key = ?1) "
        "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event = events.id AND sub_key <> ?1)",
};

static const char schema[] =
    "PRAGMA journal_mode = WAL;"
    "PRAGMA synchronous = NORMAL;"
    "PRAGMA wal_autocheckpoint = 0;"
    /* A transaction's dirty pages stay in memory up to 8 MiB (the cache keeps 2 MiB of clean
     * ones): a batch of a fan-out's attempts dirties about 6 MiB of index leaves, and spilling
     * them at 2 MiB wrote half of them to the log twice. */
    "PRAGMA cache_spill = 2048;"
    "PRAGMA foreign_keys = OFF;"
    "CREATE TABLE IF NOT EXISTS subscriptions ("
    " id TEXT PRIMARY KEY, service TEXT NOT NULL, node TEXT NOT NULL, callback TEXT NOT NULL,"
    " secret TEXT NOT NULL, events INTEGER NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, service TEXT NOT NULL,"
    " node TEXT NOT NULL, body TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, sub_id TEXT NOT NULL, event INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, last_error TEXT,"
    " dead INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS deliveries_sub ON deliveries(sub_id, dead, seq);"
    "CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries(event);"
    "CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries(dead, next_at);"
    "CREATE TABLE IF NOT EXISTS attempts ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, sub_id TEXT NOT NULL, at_ms INTEGER NOT NULL,"
    " event_id TEXT NOT NULL, attempt INTEGER NOT NULL, status INTEGER NOT NULL, error TEXT,"
    " duration_ms INTEGER NOT NULL, answer TEXT);"
    "CREATE INDEX IF NOT EXISTS attempts_sub ON attempts(sub_id, id);"
    "CREATE TABLE IF NOT EXISTS seen_items ("
    " service TEXT NOT NULL, node TEXT NOT NULL, item TEXT NOT NULL,"
    " UNIQUE(service, node, item));";

struct sq_store {
    struct gw_store base;
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    int lock_fd; /* flock()ed: one gateway per data directory */
    /* the checkpointer */
    sqlite3 *ck_db;
    pthread_t ck_thread;
    int ck_started;
    pthread_mutex_t ck_lock;
    pthread_cond_t ck_cond;
    pthread_cond_t ck_done; /* signalled when a background checkpoint ends */
    int ck_wanted, ck_stop; /* under ck_lock */
    atomic_int ck_busy;     /* a checkpoint was asked for and has not finished */
    atomic_int ck_frames;   /* log frames copied by the last background checkpoint... */
    atomic_int ck_log;      /* ...of this many in the log then */
};

/* Changes to the schema above, each moving PRAGMA user_version from i to i + 1. Never edit one
 * that has shipped: add. */
static const char *const migrations[] = {
    /* 1: WebSub subscriptions (topic, lease, signature algorithm as JSON). */
    "ALTER TABLE subscriptions ADD COLUMN websub TEXT;",
    /* 2: feeds polled into nodes. */
    "CREATE TABLE feeds (id TEXT PRIMARY KEY, url TEXT NOT NULL, service TEXT NOT NULL,"
    " node TEXT NOT NULL, interval_s INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL);",
    /* 3: delivery options of a subscription (batching). */
    "ALTER TABLE subscriptions ADD COLUMN options TEXT;",
    /* 4: attempts age out in id order (S_ATTEMPT_OLD): one index less written per delivery. */
    "DROP INDEX IF EXISTS attempts_at;",
    /* 5: only dead letters are looked up by age (S_DEAD_OLD); a pending delivery, which lives
     * milliseconds, no longer enters and leaves this index. */
    ("DROP INDEX IF EXISTS deliveries_dead;"
     "CREATE INDEX deliveries_dead ON deliveries(next_at) WHERE dead = 1;"),
    /* 6: the outbox and the attempts name their subscription by its key (sub_key), a 64-bit
     * hash of its id, instead of the 30-character id: every delivery writes both tables and
     * their indexes by subscription, and an integer is a third of the bytes and compares at
     * once. The key is unique (index): a subscription whose key is taken is refused. */
    ("ALTER TABLE subscriptions ADD COLUMN key INTEGER;"
     "UPDATE subscriptions SET key = gw_subkey(id);"
     "CREATE UNIQUE INDEX subscriptions_key ON subscriptions(key);"
     "ALTER TABLE deliveries ADD COLUMN sub_key INTEGER NOT NULL DEFAULT 0;"
     "UPDATE deliveries SET sub_key = gw_subkey(sub_id);"
     "DROP INDEX deliveries_sub;"
     "ALTER TABLE deliveries DROP COLUMN sub_id;"
     "CREATE INDEX deliveries_sub ON deliveries(sub_key, dead, seq);"
     "ALTER TABLE attempts ADD COLUMN sub_key INTEGER NOT NULL DEFAULT 0;"
     "UPDATE attempts SET sub_key = gw_subkey(sub_id);"
     "DROP INDEX attempts_sub;"
     "ALTER TABLE attempts DROP COLUMN sub_id;"
     "CREATE INDEX attempts_sub ON attempts(sub_key, id);"),
};

/* A subscription's key: FNV-1a over its id, mixed by SplitMix64's finalizer. Stored (migration
 * 6 computes it in SQL through gw_subkey): never change it. */
static int64_t sub_key(const char *id)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebu;
    h ^= h >> 31;
    return (int64_t)h;
}

static void sql_subkey(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    (void)argc;
    const unsigned char *id = sqlite3_value_text(argv[0]);
    if (id == NULL)
        sqlite3_result_null(c);
    else
        sqlite3_result_int64(c, sub_key((const char *)id));
}

static int migrate(struct sq_store *s, char *err, size_t errlen)
{
    sqlite3_stmt *q = NULL;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    int n = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (version > n) {
        snprintf(err, errlen, "the database has schema version %d, newer than this gateway's %d",
                 version, n);
        return -1;
    }
    for (; version < n; version++) {
        char step[2000], *msg = NULL;
        snprintf(step, sizeof(step), "BEGIN IMMEDIATE; %s PRAGMA user_version = %d; COMMIT;",
                 migrations[version], version + 1);
        if (sqlite3_exec(s->db, step, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "cannot migrate the database to version %d: %s", version + 1,
                     msg ? msg : "?");
            sqlite3_free(msg);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
    }
    return 0;
}

static sqlite3_stmt *stmt(struct sq_store *s, int which)
{
    sqlite3_stmt *q = s->st[which];
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return q;
}

static int step_done(struct sq_store *s, sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        gw_error("store: %s", sqlite3_errmsg(s->db));
        return -1;
    }
    return 0;
}

static void bind_text(sqlite3_stmt *q, int i, const char *v)
{
    sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
}

static void *checkpointer(void *arg)
{
    pthread_setname_np(pthread_self(), "pubsubgw-ckpt"); /* top -H, perf */
    struct sq_store *s = arg;
    pthread_mutex_lock(&s->ck_lock);
    for (;;) {
        while (!s->ck_wanted && !s->ck_stop)
            pthread_cond_wait(&s->ck_cond, &s->ck_lock);
        if (s->ck_stop)
            break;
        s->ck_wanted = 0;
        pthread_mutex_unlock(&s->ck_lock);
        int log = 0, copied = 0;
        int rc =
            sqlite3_wal_checkpoint_v2(s->ck_db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            gw_warn("store: checkpoint: %s", sqlite3_errmsg(s->ck_db));
        atomic_store(&s->ck_frames, rc == SQLITE_OK ? copied : 0);
        atomic_store(&s->ck_log, rc == SQLITE_OK ? log : 0);
        pthread_mutex_lock(&s->ck_lock);
        atomic_store(&s->ck_busy, 0);
        pthread_cond_broadcast(&s->ck_done);
    }
    pthread_mutex_unlock(&s->ck_lock);
    return NULL;
}

/* Called on the loop thread after each commit with the number of frames in the log. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)name;
    struct sq_store *s = arg;
    if (frames >= HARD_FRAMES) {
        pthread_mutex_lock(&s->ck_lock);
        while (atomic_load(&s->ck_busy))
            pthread_cond_wait(&s->ck_done, &s->ck_lock);
        pthread_mutex_unlock(&s->ck_lock);
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        atomic_store(&s->ck_frames, 0);
        atomic_store(&s->ck_log, 0);
        return SQLITE_OK;
    }
    if (atomic_load(&s->ck_busy))
        return SQLITE_OK;
    int copied = atomic_load(&s->ck_frames);
    if (frames < atomic_load(&s->ck_log)) { /* the log started over since */
        copied = 0;
        atomic_store(&s->ck_frames, 0);
        atomic_store(&s->ck_log, 0);
    }
    if (frames >= RESTART_FRAMES && copied > 0 && frames - copied < CKPT_FRAMES) {
        /* Only what was committed during the background checkpoint is left to copy. */
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        atomic_store(&s->ck_frames, 0);
        atomic_store(&s->ck_log, 0);
    } else if (frames - copied >= CKPT_FRAMES) {
        atomic_store(&s->ck_busy, 1);
        pthread_mutex_lock(&s->ck_lock);
        s->ck_wanted = 1;
        pthread_cond_signal(&s->ck_cond);
        pthread_mutex_unlock(&s->ck_lock);
    }
    return SQLITE_OK;
}

/* One gateway per database: a lock file beside it, flock()ed for the life of the store (not
 * the database file itself, whose POSIX locks SQLite owns). */
static int lock_db(struct sq_store *s, const char *path, char *err, size_t errlen)
{
    char lock[4200];
    snprintf(lock, sizeof(lock), "%s-lock", path);
    s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", lock, strerror(errno));
        return -1;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(err, errlen, "database %s is in use by another gateway", path);
        return -1;
    }
    return 0;
}

static void sq_close(struct gw_store *g);
extern const struct gw_store_ops gw_store_sqlite_ops;

/* Before SQLite's first use in the process: no statistics of its memory, which cost a global
 * mutex around every allocation (5% of the store's thread in a fan-out profile). Refused, and
 * harmless, once SQLite is in use. */
static void sqlite_once(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct gw_store *gw_store_sqlite_open(const char *path, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_once);
    struct sq_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &gw_store_sqlite_ops;
    atomic_store(&s->base.up_known, 1);
    s->lock_fd = -1;
    pthread_mutex_init(&s->ck_lock, NULL);
    pthread_cond_init(&s->ck_cond, NULL);
    pthread_cond_init(&s->ck_done, NULL);
    if (lock_db(s, path, err, errlen) != 0)
        goto fail;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "?");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(s->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        goto fail;
    }
    if (sqlite3_create_function_v2(s->db, "gw_subkey", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                   sql_subkey, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up %s: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (migrate(s, err, errlen) != 0)
        goto fail;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "cannot prepare statement %d: %s", i, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    /* Events whose deliveries all ended while the process was away. */
    step_done(s, stmt(s, S_EVENTS_ORPHANS));
    if (sqlite3_open_v2(path, &s->ck_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        pthread_create(&s->ck_thread, NULL, checkpointer, s) != 0) {
        snprintf(err, errlen, "cannot start the checkpointer for %s", path);
        goto fail;
    }
    s->ck_started = 1;
    sqlite3_busy_timeout(s->ck_db, 5000);
    /* A connection learns that the database is in WAL mode when it first reads it. */
    sqlite3_exec(s->ck_db, "PRAGMA journal_mode", NULL, NULL, NULL);
    sqlite3_wal_hook(s->db, on_wal_commit, s);
    return &s->base;
fail:
    sq_close(&s->base);
    return NULL;
}

static void sq_close(struct gw_store *g)
{
    struct sq_store *s = (struct sq_store *)g;
    if (s == NULL)
        return;
    if (s->ck_started) {
        pthread_mutex_lock(&s->ck_lock);
        s->ck_stop = 1;
        pthread_cond_signal(&s->ck_cond);
        pthread_mutex_unlock(&s->ck_lock);
        pthread_join(s->ck_thread, NULL);
    }
    sqlite3_close(s->ck_db);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db); /* the last connection: checkpoints and removes the log */
    pthread_cond_destroy(&s->ck_cond);
    pthread_cond_destroy(&s->ck_done);
    pthread_mutex_destroy(&s->ck_lock);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
}

static int sq_begin(struct gw_store *g)
{
    struct sq_store *s = (struct sq_store *)g;
    return step_done(s, stmt(s, S_BEGIN));
}

static int sq_commit(struct gw_store *g)
{
    struct sq_store *s = (struct sq_store *)g;
    return step_done(s, stmt(s, S_COMMIT));
}

static void sq_rollback(struct gw_store *g)
{
    struct sq_store *s = (struct sq_store *)g;
    step_done(s, stmt(s, S_ROLLBACK));
}

static int sq_sub_insert(struct gw_store *g, const struct gw_store_sub *sub)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_SUB_INSERT);
    bind_text(q, 1, sub->id);
    bind_text(q, 2, sub->service);
    bind_text(q, 3, sub->node);
    bind_text(q, 4, sub->callback);
    bind_text(q, 5, sub->secret);
    sqlite3_bind_int(q, 6, (int)sub->events);
    sqlite3_bind_int64(q, 7, sub->created_ms);
    if (sub->websub != NULL)
        bind_text(q, 8, sub->websub);
    if (sub->options != NULL)
        bind_text(q, 9, sub->options);
    sqlite3_bind_int64(q, 10, sub_key(sub->id));
    return step_done(s, q);
}

static int sq_sub_renew(struct gw_store *g, const char *id, const char *secret, const char *websub)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_SUB_RENEW);
    bind_text(q, 1, id);
    bind_text(q, 2, secret);
    bind_text(q, 3, websub);
    if (step_done(s, q) != 0)
        return -1;
    return sqlite3_changes(s->db) > 0;
}

static int sq_feed_put(struct gw_store *g, const struct gw_store_feed *f)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_FEED_PUT);
    bind_text(q, 1, f->id);
    bind_text(q, 2, f->url);
    bind_text(q, 3, f->service);
    bind_text(q, 4, f->node);
    sqlite3_bind_int(q, 5, f->interval_s);
    sqlite3_bind_int64(q, 6, f->created_ms);
    bind_text(q, 7, f->state);
    return step_done(s, q);
}

static int sq_feed_delete(struct gw_store *g, const char *id)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_FEED_DELETE);
    bind_text(q, 1, id);
    return step_done(s, q);
}

static int sq_feed_each(struct gw_store *g, void (*cb)(const struct gw_store_feed *f, void *arg),
                        void *arg)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_FEED_ALL);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct gw_store_feed f = {
            .id = (char *)sqlite3_column_text(q, 0),
            .url = (char *)sqlite3_column_text(q, 1),
            .service = (char *)sqlite3_column_text(q, 2),
            .node = (char *)sqlite3_column_text(q, 3),
            .interval_s = sqlite3_column_int(q, 4),
            .created_ms = sqlite3_column_int64(q, 5),
            .state = (char *)sqlite3_column_text(q, 6),
        };
        if (f.id && f.url && f.service && f.node && f.state)
            cb(&f, arg);
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_sub_delete(struct gw_store *g, const char *id)
{
    struct sq_store *s = (struct sq_store *)g;
    if (sq_begin(&s->base) != 0)
        return -1;
    const int steps[] = {S_SUB_EVENTS_ORPHANED, S_SUB_DELETE_DELIVERIES, S_SUB_DELETE_ATTEMPTS,
                         S_SUB_DELETE};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        sqlite3_stmt *q = stmt(s, steps[i]);
        if (steps[i] == S_SUB_DELETE)
            bind_text(q, 1, id);
        else
            sqlite3_bind_int64(q, 1, sub_key(id));
        if (step_done(s, q) != 0) {
            sq_rollback(&s->base);
            return -1;
        }
    }
    if (sq_commit(&s->base) != 0) {
        sq_rollback(&s->base);
        return -1;
    }
    return 0;
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? strdup((const char *)t) : NULL;
}

static int sq_sub_each(struct gw_store *g, void (*cb)(const struct gw_store_sub *sub, void *arg),
                       void *arg)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_SUB_ALL);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct gw_store_sub sub = {
            .id = col_dup(q, 0),
            .service = col_dup(q, 1),
            .node = col_dup(q, 2),
            .callback = col_dup(q, 3),
            .secret = col_dup(q, 4),
            .events = (unsigned)sqlite3_column_int(q, 5),
            .created_ms = sqlite3_column_int64(q, 6),
            .websub = col_dup(q, 7),
            .options = col_dup(q, 8),
        };
        if (sub.id && sub.service && sub.node && sub.callback && sub.secret)
            cb(&sub, arg);
        gw_store_sub_clear(&sub);
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

static int64_t sq_event_add(struct gw_store *g, const char *event_id, const char *service,
                            const char *node, const char *body, int64_t created_ms)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_EVENT_ADD);
    bind_text(q, 1, event_id);
    bind_text(q, 2, service);
    bind_text(q, 3, node);
    bind_text(q, 4, body);
    sqlite3_bind_int64(q, 5, created_ms);
    if (step_done(s, q) != 0)
        return -1;
    return sqlite3_last_insert_rowid(s->db);
}

static int sq_delivery_add(struct gw_store *g, const char *sub_id, int64_t event, int64_t next_at,
                           const char *dead_reason)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DELIVERY_ADD);
    sqlite3_bind_int64(q, 1, sub_key(sub_id));
    sqlite3_bind_int64(q, 2, event);
    sqlite3_bind_int64(q, 3, next_at);
    sqlite3_bind_int(q, 4, dead_reason != NULL);
    bind_text(q, 5, dead_reason);
    return step_done(s, q);
}

static int sq_count_each(struct gw_store *g, int dead, const char *sub_id,
                         void (*cb)(const char *sub_id, int64_t n, void *arg), void *arg)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, sub_id ? S_DEAD_OF_SUB : dead ? S_DEAD_BY_SUB : S_PENDING_BY_SUB);
    if (sub_id != NULL) {
        sqlite3_bind_int64(q, 1, sub_key(sub_id));
        bind_text(q, 2, sub_id);
    }
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        cb((const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1), arg);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void read_delivery(sqlite3_stmt *q, struct gw_store_delivery *d)
{
    d->seq = sqlite3_column_int64(q, 0);
    d->event = sqlite3_column_int64(q, 1);
    d->event_id = col_dup(q, 2);
    d->body = col_dup(q, 3);
    d->attempts = sqlite3_column_int(q, 4);
    d->next_at = sqlite3_column_int64(q, 5);
    d->created_ms = sqlite3_column_int64(q, 6);
    d->last_error = col_dup(q, 7);
}

static int sq_delivery_next(struct gw_store *g, const char *sub_id, int64_t after, int limit,
                            struct gw_store_delivery *out)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DELIVERY_HEAD);
    sqlite3_bind_int64(q, 1, sub_key(sub_id));
    sqlite3_bind_int64(q, 2, after);
    sqlite3_bind_int(q, 3, limit);
    int n = 0, rc = SQLITE_DONE;
    while (n < limit && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        read_delivery(q, &out[n]);
        if (out[n].event_id == NULL || out[n].body == NULL) {
            gw_store_delivery_clear(&out[n]);
            break;
        }
        n++;
    }
    if (n < limit && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        gw_error("store: %s", sqlite3_errmsg(s->db));
        sqlite3_reset(q);
        for (int i = 0; i < n; i++)
            gw_store_delivery_clear(&out[i]);
        return -1;
    }
    sqlite3_reset(q);
    return n;
}

static int sq_delivery_remove(struct gw_store *g, int64_t seq)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DELIVERY_DONE);
    sqlite3_bind_int64(q, 1, seq);
    return step_done(s, q);
}

static int sq_event_gc(struct gw_store *g, int64_t event)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_EVENT_GC);
    sqlite3_bind_int64(q, 1, event);
    return step_done(s, q);
}

static int sq_delivery_done(struct gw_store *g, int64_t seq, int64_t event)
{
    return sq_delivery_remove(g, seq) == 0 ? sq_event_gc(g, event) : -1;
}

/* Removes the rows q selects (seq, event), at most limit, each with its event once unneeded. */
static int remove_selected(struct sq_store *s, sqlite3_stmt *q, int limit)
{
    int64_t rows[2][256];
    int n = 0, total = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && total < limit) {
        rows[0][n] = sqlite3_column_int64(q, 0);
        rows[1][n] = sqlite3_column_int64(q, 1);
        n++;
        total++;
        if (n == 256)
            break; /* the statement is reset below; the caller asks again */
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -1;
    /* One transaction for the lot, unless the caller's is open already. */
    int own = n > 0 && sqlite3_get_autocommit(s->db) && sq_begin(&s->base) == 0;
    for (int i = 0; i < n; i++) {
        if (sq_delivery_done(&s->base, rows[0][i], rows[1][i]) != 0) {
            if (own)
                sq_rollback(&s->base);
            return -1;
        }
    }
    if (own && sq_commit(&s->base) != 0) {
        sq_rollback(&s->base);
        return -1;
    }
    return n;
}

static int sq_dead_prune_age(struct gw_store *g, int64_t before_ms, int limit)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DEAD_OLD);
    sqlite3_bind_int64(q, 1, before_ms);
    sqlite3_bind_int(q, 2, limit < 256 ? limit : 256);
    return remove_selected(s, q, limit);
}

static int sq_dead_prune_count(struct gw_store *g, const char *sub_id, int keep, int limit)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DEAD_EXCESS);
    sqlite3_bind_int64(q, 1, sub_key(sub_id));
    sqlite3_bind_int(q, 2, keep);
    sqlite3_bind_int(q, 3, limit < 256 ? limit : 256);
    return remove_selected(s, q, limit);
}

static int64_t sq_oldest_pending_ms(struct gw_store *g)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_OLDEST_PENDING);
    int64_t v = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return v;
}

static int sq_attempt_add(struct gw_store *g, const struct gw_store_attempt *a)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_ATTEMPT_ADD);
    sqlite3_bind_int64(q, 1, sub_key(a->sub_id));
    sqlite3_bind_int64(q, 2, a->at_ms);
    bind_text(q, 3, a->event_id);
    sqlite3_bind_int(q, 4, a->attempt);
    sqlite3_bind_int64(q, 5, a->status);
    bind_text(q, 6, a->error);
    sqlite3_bind_int64(q, 7, a->duration_ms);
    bind_text(q, 8, a->answer);
    return step_done(s, q);
}

static int sq_attempts_each(struct gw_store *g, const char *sub_id, int64_t before, int limit,
                            void (*cb)(const struct gw_store_attempt *a, void *arg), void *arg)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_ATTEMPT_LIST);
    sqlite3_bind_int64(q, 1, sub_key(sub_id));
    sqlite3_bind_int64(q, 2, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int(q, 3, limit);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct gw_store_attempt a = {
            .id = sqlite3_column_int64(q, 0),
            .sub_id = sub_id,
            .at_ms = sqlite3_column_int64(q, 1),
            .event_id = (const char *)sqlite3_column_text(q, 2),
            .attempt = sqlite3_column_int(q, 3),
            .status = (long)sqlite3_column_int64(q, 4),
            .error = (const char *)sqlite3_column_text(q, 5),
            .duration_ms = sqlite3_column_int64(q, 6),
            .answer = (const char *)sqlite3_column_text(q, 7),
        };
        cb(&a, arg);
    }
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_attempts_prune_count(struct gw_store *g, const char *sub_id, int keep)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_ATTEMPT_EXCESS);
    sqlite3_bind_int64(q, 1, sub_key(sub_id));
    sqlite3_bind_int(q, 2, keep);
    return step_done(s, q);
}

static int sq_attempts_prune_age(struct gw_store *g, int64_t before_ms)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_ATTEMPT_OLD);
    sqlite3_bind_int64(q, 1, before_ms);
    if (step_done(s, q) != 0)
        return -1;
    return sqlite3_changes(s->db);
}

static int sq_delivery_failed(struct gw_store *g, int64_t seq, int attempts, int64_t next_at,
                              const char *error, int dead)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DELIVERY_FAILED);
    sqlite3_bind_int64(q, 1, seq);
    sqlite3_bind_int(q, 2, attempts);
    sqlite3_bind_int64(q, 3, next_at);
    bind_text(q, 4, error);
    sqlite3_bind_int(q, 5, dead);
    return step_done(s, q);
}

static int sq_dead_each(struct gw_store *g, const char *sub_id,
                        void (*cb)(const struct gw_store_delivery *d, void *arg), void *arg)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DEAD_LIST);
    sqlite3_bind_int64(q, 1, sub_key(sub_id));
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct gw_store_delivery d;
        read_delivery(q, &d);
        cb(&d, arg);
        gw_store_delivery_clear(&d);
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

static int sq_dead_retry(struct gw_store *g, const char *sub_id, int64_t seq, int64_t now_ms)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_DEAD_RETRY);
    sqlite3_bind_int64(q, 1, sub_key(sub_id));
    sqlite3_bind_int64(q, 2, seq);
    sqlite3_bind_int64(q, 3, now_ms);
    if (step_done(s, q) != 0)
        return -1;
    return sqlite3_changes(s->db) > 0 ? 1 : 0;
}

static int sq_seen_add(struct gw_store *g, const char *service, const char *node, const char *item)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_SEEN_ADD);
    bind_text(q, 1, service);
    bind_text(q, 2, node);
    bind_text(q, 3, item);
    return step_done(s, q);
}

static int sq_seen_has(struct gw_store *g, const char *service, const char *node, const char *item)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_SEEN_HAS);
    bind_text(q, 1, service);
    bind_text(q, 2, node);
    bind_text(q, 3, item);
    int found = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_reset(q);
    return found;
}

static int sq_seen_prune(struct gw_store *g, const char *service, const char *node, int keep)
{
    struct sq_store *s = (struct sq_store *)g;
    sqlite3_stmt *q = stmt(s, S_SEEN_PRUNE);
    bind_text(q, 1, service);
    bind_text(q, 2, node);
    sqlite3_bind_int(q, 3, keep);
    return step_done(s, q);
}

static int sq_up(struct gw_store *g)
{
    (void)g;
    return 1;
}

const struct gw_store_ops gw_store_sqlite_ops = {
    .kind = "sqlite",
    .close = sq_close,
    .up = sq_up,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .sub_insert = sq_sub_insert,
    .sub_renew = sq_sub_renew,
    .feed_put = sq_feed_put,
    .feed_delete = sq_feed_delete,
    .feed_each = sq_feed_each,
    .sub_delete = sq_sub_delete,
    .sub_each = sq_sub_each,
    .event_add = sq_event_add,
    .delivery_add = sq_delivery_add,
    .count_each = sq_count_each,
    .delivery_next = sq_delivery_next,
    .delivery_done = sq_delivery_done,
    .delivery_remove = sq_delivery_remove,
    .event_gc = sq_event_gc,
    .delivery_failed = sq_delivery_failed,
    .dead_each = sq_dead_each,
    .dead_prune_age = sq_dead_prune_age,
    .dead_prune_count = sq_dead_prune_count,
    .dead_retry = sq_dead_retry,
    .oldest_pending_ms = sq_oldest_pending_ms,
    .attempt_add = sq_attempt_add,
    .attempts_each = sq_attempts_each,
    .attempts_prune_count = sq_attempts_prune_count,
    .attempts_prune_age = sq_attempts_prune_age,
    .seen_add = sq_seen_add,
    .seen_has = sq_seen_has,
    .seen_prune = sq_seen_prune,
};
