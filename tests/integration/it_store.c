/* The store interface, the same checks for each backend: SQLite on a scratch file, or a fresh
 * database on the suite's PostgreSQL (PUBSUBGW_TEST_PG). Every call the core makes, with the
 * answers it relies on: order, dead letters, retry, pruning, attempts, seen items, rollback,
 * and a reopen that finds everything again. On PostgreSQL also: several gateways starting at
 * once migrate the schema exactly once. And the store's thread: jobs in order, off the calling
 * thread, done callbacks on the loop in the same order; a call from the loop waits for the jobs
 * before it, and a transaction of the loop keeps jobs waiting until it ends. */
#include "harness.h"
#include "receiver.h"

#include "gateway/loop.h"
#include "gateway/store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int64_t pending_a, pending_b;
static int subs_seen, dead_seen, attempts_seen;
static char last_attempt_error[64];

static void count_pending(const char *sub_id, int64_t n, void *arg)
{
    (void)arg;
    if (strcmp(sub_id, "sub_a") == 0)
        pending_a = n;
    if (strcmp(sub_id, "sub_b") == 0)
        pending_b = n;
}

/* Dead letters counted: per subscription, and how many subscriptions were reported. */
static int64_t dead_of_a;
static int dead_subs;

static void count_dead(const char *sub_id, int64_t n, void *arg)
{
    (void)arg;
    dead_subs++;
    if (strcmp(sub_id, "sub_a") == 0)
        dead_of_a = n;
}

/* What sub_b (a WebSub subscription) is expected to hold. */
static const char *b_secret = "whsec_b", *b_websub = "{\"topic\":\"t1\"}";

static void on_sub(const struct gw_store_sub *s, void *arg)
{
    (void)arg;
    if (strcmp(s->id, "sub_a") == 0 && strcmp(s->callback, "http://127.0.0.1:9/a") == 0 &&
        s->events == 5 && s->created_ms == 1700000000123LL && s->websub == NULL && s->options &&
        strcmp(s->options, "{\"batch\":{\"max_events\":5}}") == 0)
        subs_seen++;
    else if (strcmp(s->id, "sub_b") == 0 && strcmp(s->secret, b_secret) == 0 && s->websub &&
             s->options == NULL && strcmp(s->websub, b_websub) == 0)
        subs_seen += 10;
}

static int feeds_seen;
static char feed_state[64];

static void on_feed(const struct gw_store_feed *f, void *arg)
{
    (void)arg;
    if (strcmp(f->id, "feed_1") == 0 && strcmp(f->url, "http://127.0.0.1:9/f.xml") == 0 &&
        strcmp(f->node, "news") == 0 && f->created_ms == 1700000000000LL) {
        feeds_seen++;
        snprintf(feed_state, sizeof(feed_state), "%s/%d", f->state, f->interval_s);
    }
}

static int many_seen;
static unsigned char many_once[12000];

static void on_many(const struct gw_store_sub *s, void *arg)
{
    (void)arg;
    int i = 0;
    if (sscanf(s->id, "sub_many%d", &i) == 1 && i >= 0 && i < 12000 && !many_once[i]) {
        many_once[i] = 1;
        many_seen++;
    }
}

static void on_dead(const struct gw_store_delivery *d, void *arg)
{
    (void)arg;
    if (d->last_error && strcmp(d->last_error, "HTTP 500") == 0 && d->attempts == 3)
        dead_seen++;
}

static void on_attempt(const struct gw_store_attempt *a, void *arg)
{
    (void)arg;
    attempts_seen++;
    snprintf(last_attempt_error, sizeof(last_attempt_error), "%s", a->error ? a->error : "-");
}

static int64_t add_event(struct gw_store *st, const char *id, const char *sub1, const char *sub2)
{
    CHECK_INT(gw_store_begin(st), 0);
    int64_t ev =
        gw_store_event_add(st, id, "pubsub.localhost", "news", "{\"n\":\"\\u00e9\"}", 1000);
    CHECK(ev > 0);
    if (sub1)
        CHECK_INT(gw_store_delivery_add(st, sub1, ev, 0, NULL), 0);
    if (sub2)
        CHECK_INT(gw_store_delivery_add(st, sub2, ev, 0, NULL), 0);
    CHECK_INT(gw_store_commit(st), 0);
    return ev;
}

/* The store's thread: each job stores an event for sub_b and says where it ran. */
#define JOBS 20
struct tjob {
    struct gw_store *st;
    struct gw_loop *loop;
    int n;
    int64_t row;
    pthread_t ran_on;
};
static int jobs_done[JOBS + 1], njobs_done;
static atomic_int jobs_run;
static int off_thread = 1; /* jobs are expected to run on the store's thread */

static void tjob_run(void *arg)
{
    struct tjob *j = arg;
    j->ran_on = pthread_self();
    char id[32];
    snprintf(id, sizeof(id), "msg_thread_%d", j->n);
    if (gw_store_begin(j->st) == 0) {
        j->row = gw_store_event_add(j->st, id, "pubsub.localhost", "news", "{}", 1000);
        if (j->row > 0 && gw_store_delivery_add(j->st, "sub_b", j->row, 0, NULL) != 0)
            j->row = -1;
        if (gw_store_commit(j->st) != 0)
            j->row = -1;
    }
    atomic_fetch_add(&jobs_run, 1);
}

static void tjob_done(void *arg)
{
    struct tjob *j = arg;
    CHECK_INT(pthread_equal(j->ran_on, pthread_self()) != 0, !off_thread);
    CHECK(j->row > 0);
    jobs_done[njobs_done++] = j->n;
    if (j->loop != NULL && njobs_done == JOBS)
        gw_loop_stop(j->loop);
    free(j);
}

static void tjob_submit(struct gw_store *st, struct gw_loop *loop, int n);

/* A done callback that submits one more job and settles the store (as the spool's drain does):
 * the callbacks already due still run before the new job's. */
static void settling_done(void *arg)
{
    struct tjob *j = arg;
    jobs_done[njobs_done++] = j->n;
    struct gw_store *st = j->st;
    free(j);
    tjob_submit(st, NULL, 3);
    gw_store_settle(st);
}

static void tjob_submit(struct gw_store *st, struct gw_loop *loop, int n)
{
    struct tjob *j = calloc(1, sizeof(*j));
    j->st = st;
    j->loop = loop;
    j->n = n;
    gw_store_submit(st, tjob_run, tjob_done, j);
}

static void on_stuck(struct gw_loop *loop, void *arg)
{
    (void)arg;
    gw_loop_stop(loop);
}

static void thread_checks(struct gw_store *st)
{
    struct gw_loop *loop = gw_loop_new();
    CHECK(loop != NULL);
    pending_b = 0;
    CHECK_INT(gw_store_pending_each(st, count_pending, NULL), 0);
    int64_t before = pending_b;
    CHECK_INT(gw_store_thread_start(st, loop), 0);

    /* Jobs run in order on the thread; a read from the loop sees all of them. */
    for (int i = 0; i < JOBS; i++)
        tjob_submit(st, loop, i);
    pending_b = 0;
    CHECK_INT(gw_store_pending_each(st, count_pending, NULL), 0);
    CHECK_INT(pending_b, before + JOBS);
    CHECK_INT(atomic_load(&jobs_run), JOBS);
    /* Their done callbacks come through the loop, in order. */
    uint64_t t = gw_loop_timer_add(loop, 10000, on_stuck, NULL);
    gw_loop_run(loop);
    gw_loop_timer_cancel(loop, t);
    CHECK_INT(njobs_done, JOBS);
    for (int i = 0; i < njobs_done; i++)
        CHECK_INT(jobs_done[i], i);

    /* A transaction of the loop keeps a job waiting until it ends. */
    atomic_store(&jobs_run, 0);
    njobs_done = 0;
    CHECK_INT(gw_store_begin(st), 0);
    tjob_submit(st, NULL, 100);
    usleep(100 * 1000);
    CHECK_INT(atomic_load(&jobs_run), 0);
    CHECK_INT(gw_store_seen_add(st, "pubsub.localhost", "news", "thread-item"), 0);
    CHECK_INT(gw_store_commit(st), 0);
    gw_store_settle(st);
    CHECK_INT(atomic_load(&jobs_run), 1);
    CHECK_INT(njobs_done, 1);
    CHECK_INT(gw_store_seen_has(st, "pubsub.localhost", "news", "thread-item"), 1);

    /* A callback that settles keeps the order of the others. */
    njobs_done = 0;
    struct tjob *first = calloc(1, sizeof(*first));
    first->st = st;
    gw_store_submit(st, tjob_run, settling_done, first);
    tjob_submit(st, NULL, 1);
    tjob_submit(st, NULL, 2);
    CHECK_INT(gw_store_seen_has(st, "pubsub.localhost", "news", "thread-item"), 1); /* all run */
    gw_store_settle(st);
    CHECK_INT(njobs_done, 4);
    for (int i = 0; i < njobs_done; i++)
        CHECK_INT(jobs_done[i], i);

    /* Stopping runs what is queued, and its done callbacks. */
    njobs_done = 0;
    for (int i = 0; i < 5; i++)
        tjob_submit(st, NULL, i);
    gw_store_thread_stop(st);
    CHECK_INT(njobs_done, 5);
    /* Without the thread a job runs at once. */
    off_thread = 0;
    tjob_submit(st, NULL, 6);
    CHECK_INT(njobs_done, 6);
    gw_loop_free(loop);
}

static int schema_versions(const char *url)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "SELECT count(*), max(version) FROM pubsubgw_schema");
    int n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return n;
}

int main(void)
{
    char url[400], err[512], dir[] = "/tmp/pubsubgw-store-XXXXXX";
    int pg = strcmp(it_store_name(), "postgresql") == 0;
    if (pg) {
        CHECK_INT(it_pg_fresh(url, sizeof(url)), 0);
        /* Four gateways starting at once on an empty database. */
        pid_t kids[4];
        for (int i = 0; i < 4; i++) {
            kids[i] = fork();
            if (kids[i] == 0) {
                struct gw_store *s = gw_store_open(url, err, sizeof(err));
                if (s == NULL)
                    fprintf(stderr, "concurrent open: %s\n", err);
                gw_store_close(s);
                _exit(s ? 0 : 1);
            }
        }
        for (int i = 0; i < 4; i++) {
            int status = 0;
            waitpid(kids[i], &status, 0);
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        CHECK_INT(schema_versions(url), 9); /* each migration applied once */
    } else {
        CHECK(mkdtemp(dir) != NULL);
        snprintf(url, sizeof(url), "sqlite:%s/pubsubgw.db", dir);
    }
    fprintf(stderr, "store: %s\n", it_store_name());

    struct gw_store *st = gw_store_open(url, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL) {
        fprintf(stderr, "%s\n", err);
        CHECK_DONE();
    }
    CHECK_STR(gw_store_kind(st), pg ? "postgresql" : "sqlite");
    CHECK_INT(gw_store_up(st), 1);
    CHECK_INT(gw_store_shared(st), pg);
    if (pg) {
        /* Gateways alive are counted per database: one on another database is not a replica
         * of this one, a second on this one is. Partition locks likewise. */
        char other[400];
        CHECK_INT(it_pg_fresh(other, sizeof(other)), 0);
        struct gw_store *elsewhere = gw_store_open(other, err, sizeof(err));
        struct gw_store *beside = gw_store_open(url, err, sizeof(err));
        CHECK(elsewhere != NULL && beside != NULL);
        CHECK(gw_store_notify_fd(st) >= 0 && gw_store_notify_fd(elsewhere) >= 0);
        CHECK_INT(gw_store_replicas(elsewhere), 1);
        CHECK(gw_store_notify_fd(beside) >= 0);
        CHECK_INT(gw_store_replicas(st), 2);
        CHECK_INT(gw_store_lock_try(elsewhere, 7), 1);
        CHECK_INT(gw_store_lock_try(st, 7), 1);
        CHECK_INT(gw_store_lock_try(beside, 7), 0);
        int freel[16];
        CHECK_INT(gw_store_locks_free(beside, 16, freel), 15);
        CHECK_INT(gw_store_lock_release(st, 7), 1);
        CHECK_INT(gw_store_lock_try(beside, 7), 1);
        gw_store_close(beside);
        gw_store_close(elsewhere);
        /* A closed session leaves the server a moment later. */
        long long t0 = it_now_ms();
        while (gw_store_replicas(st) != 1 && it_now_ms() - t0 < 3000)
            usleep(20000);
        CHECK_INT(gw_store_replicas(st), 1);
    }

    /* Subscriptions. */
    struct gw_store_sub a = {
        "sub_a", "pubsub.localhost", "news", "http://127.0.0.1:9/a",          "whsec_a",
        5,       1700000000123LL,    NULL,   "{\"batch\":{\"max_events\":5}}"};
    struct gw_store_sub b = {
        "sub_b",         "pubsub.localhost",   "news", "http://127.0.0.1:9/b", "whsec_b", 1,
        1700000000124LL, "{\"topic\":\"t1\"}", NULL};
    CHECK_INT(gw_store_sub_insert(st, &a), 0);
    CHECK_INT(gw_store_sub_insert(st, &b), 0);
    CHECK(gw_store_sub_insert(st, &a) != 0); /* the id is unique */
    CHECK_INT(gw_store_sub_each(st, on_sub, NULL), 0);
    CHECK_INT(subs_seen, 11);

    /* Many subscriptions come back, each once (read in pages on PostgreSQL). */
    CHECK_INT(gw_store_begin(st), 0);
    for (int i = 0; i < 12000; i++) {
        char id[32];
        snprintf(id, sizeof(id), "sub_many%05d", i);
        struct gw_store_sub m = {id,
                                 "pubsub.localhost",
                                 "many",
                                 "http://127.0.0.1:9/m",
                                 "whsec_m",
                                 1,
                                 1700000000000LL + i % 7,
                                 NULL,
                                 NULL};
        if (gw_store_sub_insert(st, &m) != 0) {
            CHECK(0);
            break;
        }
    }
    CHECK_INT(gw_store_commit(st), 0);
    many_seen = 0;
    CHECK_INT(gw_store_sub_each(st, on_many, NULL), 0);
    CHECK_INT(many_seen, 12000);
    for (int i = 0; i < 12000; i += 1000)
        CHECK(many_once[i]);

    /* Deliveries in order, one event shared by two subscriptions. */
    int64_t e1 = add_event(st, "msg_1", "sub_a", "sub_b");
    int64_t e2 = add_event(st, "msg_2", "sub_a", NULL);
    int64_t e3 = add_event(st, "msg_3", "sub_a", "sub_b");
    CHECK(e1 < e2 && e2 < e3);
    CHECK_INT(gw_store_pending_each(st, count_pending, NULL), 0);
    CHECK_INT(pending_a, 3);
    CHECK_INT(pending_b, 2);
    CHECK(gw_store_oldest_pending_ms(st) == 1000);

    struct gw_store_delivery d;
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_1");
    CHECK_STR(d.body, "{\"n\":\"\\u00e9\"}");
    CHECK_INT(d.created_ms, 1000);
    int64_t s1 = d.seq;
    gw_store_delivery_clear(&d);
    CHECK_INT(gw_store_delivery_head(st, "sub_a", s1, &d), 1);
    CHECK_STR(d.event_id, "msg_2");
    int64_t s2 = d.seq;
    gw_store_delivery_clear(&d);

    /* A failure records the attempt; the third one is dead and skipped by the head. */
    CHECK_INT(gw_store_delivery_failed(st, s1, 1, 5000, "HTTP 500", 0), 0);
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 1);
    CHECK_INT(d.attempts, 1);
    CHECK_INT(d.next_at, 5000);
    CHECK_STR(d.last_error, "HTTP 500");
    gw_store_delivery_clear(&d);
    CHECK_INT(gw_store_delivery_failed(st, s1, 3, 7000, "HTTP 500", 1), 0);
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_2");
    gw_store_delivery_clear(&d);
    CHECK_INT(gw_store_dead_each(st, "sub_a", on_dead, NULL), 0);
    CHECK_INT(dead_seen, 1);
    /* counted for every subscription, or for one alone */
    CHECK_INT(gw_store_dead_count_each(st, NULL, count_dead, NULL), 0);
    CHECK_INT(dead_subs, 1);
    CHECK_INT((int)dead_of_a, 1);
    dead_subs = 0, dead_of_a = 0;
    CHECK_INT(gw_store_dead_count_each(st, "sub_a", count_dead, NULL), 0);
    CHECK_INT(dead_subs, 1);
    CHECK_INT((int)dead_of_a, 1);
    dead_subs = 0;
    CHECK_INT(gw_store_dead_count_each(st, "sub_b", count_dead, NULL), 0);
    CHECK_INT(dead_subs, 0);

    /* Retry makes it live again with a fresh count; a second retry finds nothing. */
    CHECK_INT(gw_store_dead_retry(st, "sub_a", s1, 9000), 1);
    CHECK_INT(gw_store_dead_retry(st, "sub_a", s1, 9000), 0);
    CHECK_INT(gw_store_delivery_head(st, "sub_a", 0, &d), 1);
    CHECK_INT(d.seq, s1);
    CHECK_INT(d.attempts, 0);
    gw_store_delivery_clear(&d);

    /* Done: the row goes, the shared event stays for sub_b. */
    CHECK_INT(gw_store_delivery_done(st, s1, e1), 0);
    CHECK_INT(gw_store_delivery_done(st, s2, e2), 0);
    CHECK_INT(gw_store_delivery_head(st, "sub_b", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_1");
    gw_store_delivery_clear(&d);

    /* A statement that fails inside a transaction is reported, by itself or by the commit
     * (PostgreSQL sends a transaction's writes without waiting for each answer), and the
     * store goes on working. */
    CHECK_INT(gw_store_begin(st), 0);
    int ins = gw_store_sub_insert(st, &a); /* the id exists */
    int com = gw_store_commit(st);
    CHECK(ins != 0 || com != 0);
    if (com != 0)
        gw_store_rollback(st);
    CHECK_INT(gw_store_delivery_head(st, "sub_b", 0, &d), 1);
    gw_store_delivery_clear(&d);

    /* A notification claimed once: a second gateway with the same key stores nothing. */
    CHECK_INT(gw_store_begin(st), 0);
    CHECK(gw_store_event_add_claimed(st, "m|svc|id1|0", "msg_c1", "pubsub.localhost", "news", "{}",
                                     5) > 0);
    int64_t again = gw_store_event_add_claimed(st, "m|svc|id1|0", "msg_c2", "pubsub.localhost",
                                               "news", "{}", 5);
    CHECK(pg ? again == 0 : again > 0); /* SQLite: one gateway, nothing to claim */
    CHECK(gw_store_event_add_claimed(st, "m|svc|id1|1", "msg_c3", "pubsub.localhost", "news", "{}",
                                     5) > 0);
    CHECK_INT(gw_store_commit(st), 0);
    if (pg)
        CHECK_INT(gw_store_claims_prune(st, 6), 2);

    /* Rollback leaves nothing behind. */
    CHECK_INT(gw_store_begin(st), 0);
    CHECK(gw_store_event_add(st, "msg_rolled", "pubsub.localhost", "news", "{}", 1) > 0);
    gw_store_rollback(st);

    /* Dead letters past an age, and beyond a count. */
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "msg_d%d", i);
        int64_t ev = add_event(st, id, NULL, NULL);
        CHECK_INT(gw_store_begin(st), 0);
        CHECK_INT(gw_store_delivery_add(st, "sub_b", ev, 100 + i, "outbox full"), 0);
        CHECK_INT(gw_store_commit(st), 0);
    }
    CHECK_INT(gw_store_dead_prune_age(st, 102, 100), 2);          /* died at 100 and 101 */
    CHECK_INT(gw_store_dead_prune_count(st, "sub_b", 1, 100), 2); /* keeps the newest */
    CHECK_INT(gw_store_dead_prune_count(st, "sub_b", 1, 100), 0);

    /* Attempts, newest first, paged, pruned. */
    for (int i = 1; i <= 5; i++) {
        char e[16];
        snprintf(e, sizeof(e), "err %d", i);
        struct gw_store_attempt at = {0, "sub_a", 1000 + i, "msg_3", i, 500, e, 12, "oops"};
        CHECK_INT(gw_store_attempt_add(st, &at), 0);
    }
    CHECK_INT(gw_store_attempts_each(st, "sub_a", 0, 2, on_attempt, NULL), 0);
    CHECK_INT(attempts_seen, 2);
    CHECK_STR(last_attempt_error, "err 4");
    CHECK_INT(gw_store_attempts_prune_count(st, "sub_a", 3), 0);
    attempts_seen = 0;
    CHECK_INT(gw_store_attempts_each(st, "sub_a", 0, 10, on_attempt, NULL), 0);
    CHECK_INT(attempts_seen, 3);
    CHECK_INT(gw_store_attempts_prune_age(st, 1004), 1); /* at 1003 */
    /* Logged as they end: a slow attempt comes after a later one, and still ages out. */
    struct gw_store_attempt late = {0, "sub_a", 2000, "msg_4", 1, 200, NULL, 3, "ok"};
    struct gw_store_attempt slow = {0, "sub_a", 1500, "msg_5", 1, 0, "timeout", 10000, NULL};
    CHECK_INT(gw_store_attempt_add(st, &late), 0);
    CHECK_INT(gw_store_attempt_add(st, &slow), 0);
    CHECK_INT(gw_store_attempts_prune_age(st, 1800), 3); /* at 1004, 1005 and 1500 */
    attempts_seen = 0;
    CHECK_INT(gw_store_attempts_each(st, "sub_a", 0, 10, on_attempt, NULL), 0);
    CHECK_INT(attempts_seen, 1);

    /* Seen items: once, and pruned to the newest. */
    CHECK_INT(gw_store_seen_add(st, "pubsub.localhost", "news", "i1"), 0);
    CHECK_INT(gw_store_seen_add(st, "pubsub.localhost", "news", "i1"), 0);
    CHECK_INT(gw_store_seen_add(st, "pubsub.localhost", "news", "i2"), 0);
    CHECK_INT(gw_store_seen_add(st, "pubsub.localhost", "news", "i3"), 0);
    CHECK_INT(gw_store_seen_has(st, "pubsub.localhost", "news", "i1"), 1);
    CHECK_INT(gw_store_seen_has(st, "pubsub.localhost", "other", "i1"), 0);
    CHECK_INT(gw_store_seen_prune(st, "pubsub.localhost", "news", 2), 0);
    CHECK_INT(gw_store_seen_has(st, "pubsub.localhost", "news", "i1"), 0);
    CHECK_INT(gw_store_seen_has(st, "pubsub.localhost", "news", "i3"), 1);

    /* Feeds: stored, replaced (state and interval), read back, removed. */
    struct gw_store_feed f = {
        "feed_1", "http://127.0.0.1:9/f.xml", "pubsub.localhost", "news", 60, 1700000000000LL,
        "{}"};
    CHECK_INT(gw_store_feed_put(st, &f), 0);
    f.state = "{\"etag\":\"x\"}";
    f.interval_s = 120;
    CHECK_INT(gw_store_feed_put(st, &f), 0);
    CHECK_INT(gw_store_feed_each(st, on_feed, NULL), 0);
    CHECK_INT(feeds_seen, 1);
    CHECK_STR(feed_state, "{\"etag\":\"x\"}/120");
    struct gw_store_feed f2 = {
        "feed_2", "http://127.0.0.1:9/g.xml", "pubsub.localhost", "news", 60, 1700000000001LL,
        "{}"};
    CHECK_INT(gw_store_feed_put(st, &f2), 0);
    CHECK_INT(gw_store_feed_delete(st, "feed_2"), 0);
    feeds_seen = 0;
    CHECK_INT(gw_store_feed_each(st, on_feed, NULL), 0);
    CHECK_INT(feeds_seen, 1);

    /* A WebSub subscription renewed: a new secret and lease, nothing else touched. */
    CHECK_INT(gw_store_sub_renew(st, "sub_b", "s2", "{\"topic\":\"t2\"}"), 1);
    CHECK_INT(gw_store_sub_renew(st, "sub_none", "s2", "{}"), 0);
    b_secret = "s2";
    b_websub = "{\"topic\":\"t2\"}";

    /* Reopened: everything is still there. */
    gw_store_close(st);
    st = gw_store_open(url, err, sizeof(err));
    CHECK(st != NULL);
    if (st == NULL)
        CHECK_DONE();
    subs_seen = 0;
    CHECK_INT(gw_store_sub_each(st, on_sub, NULL), 0);
    CHECK_INT(subs_seen, 11);
    pending_a = pending_b = 0;
    CHECK_INT(gw_store_pending_each(st, count_pending, NULL), 0);
    CHECK_INT(pending_a, 1);
    CHECK_INT(pending_b, 2);

    feeds_seen = 0;
    CHECK_INT(gw_store_feed_each(st, on_feed, NULL), 0);
    CHECK_INT(feeds_seen, 1); /* and the feed too */

    /* Deleting a subscription takes its deliveries and attempts, and the events only it had. */
    CHECK_INT(gw_store_sub_delete(st, "sub_a"), 0);
    subs_seen = 0;
    CHECK_INT(gw_store_sub_each(st, on_sub, NULL), 0);
    CHECK_INT(subs_seen, 10);
    attempts_seen = 0;
    CHECK_INT(gw_store_attempts_each(st, "sub_a", 0, 10, on_attempt, NULL), 0);
    CHECK_INT(attempts_seen, 0);
    CHECK_INT(gw_store_delivery_head(st, "sub_b", 0, &d), 1);
    CHECK_STR(d.event_id, "msg_1");
    gw_store_delivery_clear(&d);
    thread_checks(st);
    gw_store_close(st);

    if (!pg) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK_INT(system(cmd), 0);
    }
    CHECK_DONE();
}
