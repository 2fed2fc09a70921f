/* The SQLite store on a scratch directory: one gateway per data directory, the outbox round
 * trip, and a log that stays bounded under a sustained stream of commits (checkpoints run on
 * their own thread, so nothing else would bound it). */
#include "../check.h"
#include "gateway/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int64_t pending_n;

static void count_pending(const char *sub_id, int64_t n, void *arg)
{
    (void)arg;
    if (strcmp(sub_id, "sub_a") == 0)
        pending_n = n;
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
    pending_n = 0;
    CHECK_INT(gw_store_pending_each(st, count_pending, NULL), 0);
    CHECK_INT((int)pending_n, 1);
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_s29999");
    gw_store_delivery_clear(&d);
    gw_store_close(st);
    CHECK(file_size(wal) == 0); /* the last connection checkpoints and removes the log */

    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    CHECK_DONE();
}
