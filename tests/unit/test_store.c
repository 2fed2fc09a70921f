/* The SQLite store on a scratch directory: one gateway per data directory, the outbox round
 * trip, and a log that stays bounded under a sustained stream of commits (checkpoints run on
 * their own thread, so nothing else would bound it). */
#include "../check.h"
#include "gateway/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* The count reported for one subscription (a store's per-subscription counts). */
struct tally {
    const char *sub_id;
    int64_t n;
};

static void count_sub(const char *sub_id, int64_t n, void *arg)
{
    struct tally *t = arg;
    if (strcmp(sub_id, t->sub_id) == 0)
        t->n = n;
}

/* A database as version 4 of the schema left it, with one pending delivery and one dead letter
 * that died at 100. */
static const char v4[] =
    "PRAGMA journal_mode = WAL;"
    "CREATE TABLE subscriptions (id TEXT PRIMARY KEY, service TEXT NOT NULL, node TEXT NOT NULL,"
    " callback TEXT NOT NULL, secret TEXT NOT NULL, events INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL, websub TEXT, options TEXT);"
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,"
    " service TEXT NOT NULL, node TEXT NOT NULL, body TEXT NOT NULL, created_ms INTEGER NOT NULL);"
    "CREATE TABLE deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, sub_id TEXT NOT NULL,"
    " event INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,"
    " last_error TEXT, dead INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_sub ON deliveries(sub_id, dead, seq);"
    "CREATE INDEX deliveries_event ON deliveries(event);"
    "CREATE INDEX deliveries_dead ON deliveries(dead, next_at);"
    "CREATE TABLE attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, sub_id TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL, event_id TEXT NOT NULL, attempt INTEGER NOT NULL,"
    " status INTEGER NOT NULL, error TEXT, duration_ms INTEGER NOT NULL, answer TEXT);"
    "CREATE INDEX attempts_sub ON attempts(sub_id, id);"
    "CREATE TABLE seen_items (service TEXT NOT NULL, node TEXT NOT NULL, item TEXT NOT NULL,"
    " UNIQUE(service, node, item));"
    "CREATE TABLE feeds (id TEXT PRIMARY KEY, url TEXT NOT NULL, service TEXT NOT NULL,"
    " node TEXT NOT NULL, interval_s INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL);"
    "INSERT INTO subscriptions VALUES ('sub_old', 'pubsub.localhost', 'news',"
    " 'http://127.0.0.1:9/', 'whsec_x', 1, 1, NULL, NULL);"
    "INSERT INTO events(event_id, service, node, body, created_ms) VALUES"
    " ('msg_p', 'pubsub.localhost', 'news', '{}', 1), ('msg_d', 'pubsub.localhost', 'news', '{}', "
    "1);"
    "INSERT INTO deliveries(sub_id, event, next_at, dead) VALUES ('sub_old', 1, 0, 0),"
    " ('sub_old', 2, 100, 1);"
    "INSERT INTO attempts(sub_id, at_ms, event_id, attempt, status, duration_ms) VALUES"
    " ('sub_old', 4102444800000, 'msg_p', 1, 500, 3);"
    "PRAGMA user_version = 4;";

static void count_attempt(const struct gw_store_attempt *a, void *arg)
{
    if (strcmp(a->event_id, "msg_p") == 0 && a->status == 500)
        ++*(int *)arg;
}

static char *db_text(const char *path, const char *query)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    char *out = NULL;
    if (sqlite3_open(path, &db) == SQLITE_OK &&
        sqlite3_prepare_v2(db, query, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        out = strdup((const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    return out;
}

/* An older database is brought up to date when opened, its rows kept. */
static void upgrade(const char *dir)
{
    char path[300], url[320], err[512];
    snprintf(path, sizeof(path), "%s/old.db", dir);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    sqlite3 *db = NULL;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, v4, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    struct gw_store *st = gw_store_open(url, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        return;
    }
    char *version = db_text(path, "PRAGMA user_version");
    char *index = db_text(path, "SELECT sql FROM sqlite_master WHERE name = 'deliveries_dead'");
    CHECK(version != NULL && atoi(version) >= 5);
    CHECK(index != NULL && strstr(index, "WHERE dead = 1") != NULL); /* pending rows left out */
    free(version);
    free(index);
    /* version 6: the outbox and the attempts name their subscription by its integer key */
    char *by_key = db_text(path, "SELECT sql FROM sqlite_master WHERE name = 'deliveries_sub'");
    char *keyed = db_text(path, "SELECT count(*) FROM deliveries d JOIN subscriptions s ON "
                                "s.key = d.sub_key WHERE s.id = 'sub_old'");
    CHECK(by_key != NULL && strstr(by_key, "sub_key") != NULL);
    CHECK_STR(keyed, "2");
    free(by_key);
    free(keyed);
    struct tally pending = {"sub_old", 0};
    CHECK_INT(gw_store_pending_each(st, count_sub, &pending), 0);
    CHECK_INT((int)pending.n, 1);
    int attempts = 0;
    CHECK_INT(gw_store_attempts_each(st, "sub_old", 0, 10, count_attempt, &attempts), 0);
    CHECK_INT(attempts, 1);
    struct tally dead = {"sub_old", 0};
    CHECK_INT(gw_store_dead_count_each(st, NULL, count_sub, &dead), 0);
    CHECK_INT((int)dead.n, 1);
    CHECK_INT(gw_store_dead_prune_age(st, 200, 100), 1); /* found through the new index */
    dead.n = 0;
    CHECK_INT(gw_store_dead_count_each(st, NULL, count_sub, &dead), 0);
    CHECK_INT((int)dead.n, 0);
    struct gw_store_delivery d;
    CHECK_INT(gw_store_delivery_head(st, "sub_old", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_p");
    gw_store_delivery_clear(&d);
    gw_store_close(st);
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

int main(void)
{
    char dir[] = "/tmp/pubsubgw-store-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char err[512], wal[300];
    snprintf(wal, sizeof(wal), "%s/pubsubgw.db-wal", dir);

    char url[300];
    snprintf(url, sizeof(url), "sqlite:%s/pubsubgw.db", dir);
    struct gw_store *st = gw_store_open(url, err, sizeof(err));
    CHECK(st != NULL);
    struct gw_store *second = gw_store_open(url, err, sizeof(err));
    CHECK(second == NULL);
    CHECK(strstr(err, "in use by another gateway") != NULL);

    /* Round trip: an event with one delivery is the head; once done, nothing is pending. */
    struct gw_store_sub sub = {
        "sub_a", "pubsub.localhost", "news", "http://127.0.0.1:9/", "whsec_x", 1, 1, NULL, NULL};
    CHECK_INT(gw_store_sub_insert(st, &sub), 0);
    CHECK_INT(gw_store_begin(st), 0);
    int64_t ev = gw_store_event_add(st, "msg_1", "pubsub.localhost", "news", "{\"n\":1}", 1);
    CHECK(ev > 0);
    CHECK_INT(gw_store_delivery_add(st, "sub_a", ev, 0, NULL), 0);
    CHECK_INT(gw_store_commit(st), 0);
    struct gw_store_delivery d;
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_1");
    CHECK_STR(d.body, "{\"n\":1}");
    int64_t seq = d.seq;
    gw_store_delivery_clear(&d);
    CHECK_INT(gw_store_delivery_done(st, seq, ev), 0);
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 0);

    /* A sustained stream: each transaction stores an event and removes the one before, as the
     * gateway does at a steady rate. Without checkpoints the log would reach hundreds of MB. */
    char body[600];
    memset(body, 'x', sizeof(body));
    memcpy(body, "{\"p\":\"", 6);
    memcpy(body + sizeof(body) - 3, "\"}", 3);
    int64_t prev_seq = 0, prev_ev = 0;
    long long wal_max = 0;
    int failed = 0;
    for (int i = 0; i < 30000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "msg_s%d", i);
        failed |= gw_store_begin(st) != 0;
        if (prev_seq)
            failed |= gw_store_delivery_done(st, prev_seq, prev_ev) != 0;
        int64_t e = gw_store_event_add(st, id, "pubsub.localhost", "news", body, i);
        failed |= e <= 0 || gw_store_delivery_add(st, "sub_a", e, 0, NULL) != 0;
        failed |= gw_store_seen_add(st, "pubsub.localhost", "news", id) != 0;
        failed |= gw_store_commit(st) != 0;
        failed |= gw_store_delivery_head(st, "sub_a", prev_seq, &d) != 1;
        prev_seq = d.seq;
        prev_ev = d.event;
        gw_store_delivery_clear(&d);
        if (i % 500 == 0 && file_size(wal) > wal_max)
            wal_max = file_size(wal);
    }
    CHECK(!failed);
    fprintf(stderr, "  largest log: %lld bytes\n", wal_max);
    CHECK(wal_max > 0 && wal_max < 64LL * 1024 * 1024);

    /* Reopened, the outbox holds exactly the last event. */
    gw_store_close(st);
    st = gw_store_open(url, err, sizeof(err));
    CHECK(st != NULL);
    struct tally pending = {"sub_a", 0};
    CHECK_INT(gw_store_pending_each(st, count_sub, &pending), 0);
    CHECK_INT((int)pending.n, 1);
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_s29999");
    gw_store_delivery_clear(&d);
    gw_store_close(st);
    CHECK(file_size(wal) == 0); /* the last connection checkpoints and removes the log */

    upgrade(dir);

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    CHECK_DONE();
}
