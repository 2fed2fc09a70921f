/* PostgreSQL persistence through libpq: the same tables as the SQLite store, prepared statements,
 * and a schema that the gateway creates and migrates itself. Migrations are numbered and run
 * under a transaction-scoped advisory lock, so replicas that start at once apply each exactly
 * once; a database migrated by a newer gateway is refused rather than guessed at.
 *
 * The connection is the loop's own. When it breaks (the server restarted, the network went),
 * calls fail at once and gw_store_up() says so; the next call at least a second later connects
 * again and prepares the statements anew, so the gateway recovers by itself. */
#include "store_int.h"

#include "log.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* pg_advisory_xact_lock key for migrations ("psgw" in ASCII). */
#define MIGRATE_LOCK "1886611319"

/* Each entry moves the schema from version i to i + 1. Never edit one that has shipped: add. */
static const char *const migrations[] = {
    "CREATE TABLE subscriptions ("
    " id text PRIMARY KEY, service text NOT NULL, node text NOT NULL, callback text NOT NULL,"
    " secret text NOT NULL, events integer NOT NULL, created_ms bigint NOT NULL);"
    "CREATE TABLE events ("
    " id bigserial PRIMARY KEY, event_id text NOT NULL, service text NOT NULL,"
    " node text NOT NULL, body text NOT NULL, created_ms bigint NOT NULL);"
    "CREATE TABLE deliveries ("
    " seq bigserial PRIMARY KEY, sub_id text NOT NULL, event bigint NOT NULL,"
    " attempts integer NOT NULL DEFAULT 0, next_at bigint NOT NULL, last_error text,"
    " dead integer NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_sub ON deliveries(sub_id, dead, seq);"
    "CREATE INDEX deliveries_event ON deliveries(event);"
    "CREATE INDEX deliveries_dead ON deliveries(dead, next_at);"
    "CREATE TABLE attempts ("
    " id bigserial PRIMARY KEY, sub_id text NOT NULL, at_ms bigint NOT NULL,"
    " event_id text NOT NULL, attempt integer NOT NULL, status integer NOT NULL, error text,"
    " duration_ms bigint NOT NULL, answer text);"
    "CREATE INDEX attempts_sub ON attempts(sub_id, id);"
    "CREATE INDEX attempts_at ON attempts(at_ms);"
    "CREATE TABLE seen_items ("
    " id bigserial PRIMARY KEY, service text NOT NULL, node text NOT NULL, item text NOT NULL,"
    " UNIQUE(service, node, item));",
    /* 2: several gateways. Notifications that tell the others what changed (one per
     * subscription and transaction: PostgreSQL folds identical ones), and claims that let one
     * gateway of several take a notification they all received. */
    "CREATE TABLE intake_claims (key text PRIMARY KEY, at_ms bigint NOT NULL);"
    "CREATE INDEX intake_claims_at ON intake_claims(at_ms);"
    "CREATE FUNCTION pubsubgw_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN PERFORM pg_notify('pubsubgw',"
    " CASE WHEN TG_OP = 'UPDATE' THEN 'r' ELSE 'w' END || NEW.sub_id); RETURN NULL; END $$;"
    "CREATE TRIGGER deliveries_added AFTER INSERT ON deliveries FOR EACH ROW"
    " WHEN (NEW.dead = 0) EXECUTE FUNCTION pubsubgw_notify_work();"
    "CREATE TRIGGER deliveries_revived AFTER UPDATE OF dead ON deliveries FOR EACH ROW"
    " WHEN (OLD.dead = 1 AND NEW.dead = 0) EXECUTE FUNCTION pubsubgw_notify_work();"
    "CREATE FUNCTION pubsubgw_notify_sub() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN IF TG_OP = 'INSERT' THEN PERFORM pg_notify('pubsubgw', '+' || NEW.id);"
    " ELSE PERFORM pg_notify('pubsubgw', '-' || OLD.id); END IF; RETURN NULL; END $$;"
    "CREATE TRIGGER subscriptions_changed AFTER INSERT OR DELETE ON subscriptions"
    " FOR EACH ROW EXECUTE FUNCTION pubsubgw_notify_sub();",
    /* 3: the registry is read in pages, in this order. */
    "CREATE INDEX subscriptions_order ON subscriptions(created_ms, id);",
    /* 4: new deliveries are notified by the gateway that stores them, only to the gateway that
     * delivers them (a trigger notified of every row, a single gateway included). */
    "DROP TRIGGER deliveries_added ON deliveries;"
    "DROP TRIGGER deliveries_revived ON deliveries;"
    "DROP FUNCTION pubsubgw_notify_work();",
    /* 5: WebSub subscriptions (topic, lease, signature algorithm as JSON). */
    "ALTER TABLE subscriptions ADD COLUMN websub text;",
    /* 6: feeds polled into nodes. */
    "CREATE TABLE feeds (id text PRIMARY KEY, url text NOT NULL, service text NOT NULL,"
    " node text NOT NULL, interval_s integer NOT NULL, created_ms bigint NOT NULL,"
    " state text NOT NULL);",
    /* 7: delivery options of a subscription (batching). */
    "ALTER TABLE subscriptions ADD COLUMN options text;",
    /* 8: attempts age out in id order (P_ATTEMPT_OLD): one index less written per delivery. */
    "DROP INDEX IF EXISTS attempts_at;",
    /* 9: only dead letters are looked up by age (P_DEAD_OLD); a pending delivery, which lives
     * milliseconds, no longer enters and leaves this index. */
    ("DROP INDEX IF EXISTS deliveries_dead;"
     "CREATE INDEX deliveries_dead ON deliveries(next_at) WHERE dead = 1;"),
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

enum {
    P_SUB_INSERT,
    P_SUB_DELETE,
    P_SUB_RENEW,
    P_FEED_PUT,
    P_FEED_DELETE,
    P_FEED_ALL,
    P_SUB_DELETE_DELIVERIES,
    P_SUB_DELETE_ATTEMPTS,
    P_SUB_EVENTS_ORPHANED,
    P_SUB_ALL,
    P_EVENT_ADD,
    P_EVENT_GC,
    P_DELIVERY_ADD,
    P_DELIVERY_HEAD,
    P_DELIVERY_DONE,
    P_DELIVERY_FAILED,
    P_DEAD_LIST,
    P_DEAD_RETRY,
    P_DEAD_OLD,
    P_DEAD_EXCESS,
    P_SEEN_ADD,
    P_SEEN_HAS,
    P_SEEN_PRUNE,
    P_PENDING_BY_SUB,
    P_DEAD_BY_SUB,
    P_DEAD_OF_SUB,
    P_OLDEST_PENDING,
    P_ATTEMPT_ADD,
    P_ATTEMPT_LIST,
    P_ATTEMPT_EXCESS,
    P_ATTEMPT_OLD,
    P_CLAIM,
    P_CLAIMS_PRUNE,
    P_SUB_GET,
    P_NOTIFY,
    P_COUNT
};

static const char *const sql[P_COUNT] = {
    [P_SUB_INSERT] = "INSERT INTO subscriptions(id, service, node, callback, secret, events, "
                     "created_ms, websub, options) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    [P_SUB_RENEW] = "UPDATE subscriptions SET secret = $2, websub = $3 WHERE id = $1",
    [P_FEED_PUT] = "INSERT INTO feeds(id, url, service, node, interval_s, created_ms, state) "
                   "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT(id) DO UPDATE SET "
                   "interval_s = excluded.interval_s, state = excluded.state",
    [P_FEED_DELETE] = "DELETE FROM feeds WHERE id = $1",
    [P_FEED_ALL] = "SELECT id, url, service, node, interval_s, created_ms, state FROM feeds "
                   "ORDER BY created_ms, id",
    [P_SUB_DELETE] = "DELETE FROM subscriptions WHERE id = $1",
    [P_SUB_DELETE_DELIVERIES] = "DELETE FROM deliveries WHERE sub_id = $1",
    [P_SUB_DELETE_ATTEMPTS] = "DELETE FROM attempts WHERE sub_id = $1",
    [P_SUB_EVENTS_ORPHANED] =
        "DELETE FROM events WHERE id IN (SELECT event FROM deliveries WHERE sub_id = $1) "
        "AND NOT EXISTS (SELECT 1 FROM deliveries WHERE event = events.id AND sub_id <> $1)",
    [P_SUB_ALL] = "SELECT id, service, node, callback, secret, events, created_ms, websub, options "
                  "FROM subscriptions WHERE (created_ms, id) > ($1, $2) "
                  "ORDER BY created_ms, id LIMIT 5000",
    [P_EVENT_ADD] = "INSERT INTO events(event_id, service, node, body, created_ms) "
                    "VALUES ($1, $2, $3, $4, $5) RETURNING id",
    [P_EVENT_GC] = "DELETE FROM events WHERE id = $1 AND NOT EXISTS "
                   "(SELECT 1 FROM deliveries WHERE event = $1)",
    [P_DELIVERY_ADD] = "INSERT INTO deliveries(sub_id, event, next_at, dead, last_error) "
                       "VALUES ($1, $2, $3, $4, $5)",
    [P_DELIVERY_HEAD] =
        "SELECT d.seq, d.event, e.event_id, e.body, d.attempts, d.next_at, "
        "e.created_ms, d.last_error FROM deliveries d JOIN events e ON e.id = "
        "d.event WHERE d.sub_id = $1 AND d.dead = 0 AND d.seq > $2 ORDER BY d.seq LIMIT $3",
    [P_DELIVERY_DONE] = "DELETE FROM deliveries WHERE seq = $1",
    [P_DELIVERY_FAILED] = "UPDATE deliveries SET attempts = $2, next_at = $3, last_error = $4, "
                          "dead = $5 WHERE seq = $1",
    [P_DEAD_LIST] = "SELECT d.seq, d.event, e.event_id, e.body, d.attempts, d.next_at, "
                    "e.created_ms, d.last_error FROM deliveries d JOIN events e ON e.id = d.event "
                    "WHERE d.sub_id = $1 AND d.dead = 1 ORDER BY d.seq LIMIT 1000",
    [P_DEAD_RETRY] = "UPDATE deliveries SET dead = 0, attempts = 0, next_at = $3 "
                     "WHERE sub_id = $1 AND seq = $2 AND dead = 1",
    [P_DEAD_OLD] = "SELECT seq, event FROM deliveries WHERE dead = 1 AND next_at < $1 LIMIT $2",
    [P_DEAD_EXCESS] = "SELECT seq, event FROM deliveries WHERE sub_id = $1 AND dead = 1 AND seq <= "
                      "(SELECT seq FROM deliveries WHERE sub_id = $1 AND dead = 1 "
                      "ORDER BY seq DESC LIMIT 1 OFFSET $2) LIMIT $3",
    [P_SEEN_ADD] = "INSERT INTO seen_items(service, node, item) VALUES ($1, $2, $3) "
                   "ON CONFLICT DO NOTHING",
    [P_SEEN_HAS] = "SELECT 1 FROM seen_items WHERE service = $1 AND node = $2 AND item = $3",
    [P_SEEN_PRUNE] = "DELETE FROM seen_items WHERE service = $1 AND node = $2 AND id <= "
                     "(SELECT id FROM seen_items WHERE service = $1 AND node = $2 "
                     "ORDER BY id DESC LIMIT 1 OFFSET $3)",
    [P_PENDING_BY_SUB] = "SELECT sub_id, count(*) FROM deliveries WHERE dead = 0 GROUP BY sub_id",
    [P_DEAD_BY_SUB] = "SELECT sub_id, count(*) FROM deliveries WHERE dead = 1 GROUP BY sub_id",
    [P_DEAD_OF_SUB] = "SELECT sub_id, count(*) FROM deliveries WHERE sub_id = $1 AND dead = 1 "
                      "GROUP BY sub_id",
    [P_OLDEST_PENDING] = "SELECT e.created_ms FROM deliveries d JOIN events e ON e.id = d.event "
                         "WHERE d.dead = 0 ORDER BY d.seq LIMIT 1",
    [P_ATTEMPT_ADD] = "INSERT INTO attempts(sub_id, at_ms, event_id, attempt, status, error, "
                      "duration_ms, answer) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    [P_ATTEMPT_LIST] = "SELECT id, at_ms, event_id, attempt, status, error, duration_ms, answer "
                       "FROM attempts WHERE sub_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
    [P_ATTEMPT_EXCESS] = "DELETE FROM attempts WHERE sub_id = $1 AND id <= (SELECT id FROM "
                         "attempts WHERE sub_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
    /* The oldest thousand by id, those of them past their age: ids follow the time of the
     * attempts (logged as they end: a slow one is seconds behind), so no index on at_ms, which
     * every delivery would write. */
    [P_ATTEMPT_OLD] = "DELETE FROM attempts WHERE id IN (SELECT id FROM (SELECT id, at_ms FROM "
                      "attempts ORDER BY id LIMIT 1000) o WHERE at_ms < $1)",
    /* The claim and the event in one statement: no event when the claim was taken. */
    [P_CLAIM] = "WITH c AS (INSERT INTO intake_claims(key, at_ms) VALUES ($6, $5) "
                "ON CONFLICT DO NOTHING RETURNING 1) "
                "INSERT INTO events(event_id, service, node, body, created_ms) "
                "SELECT $1, $2, $3, $4, $5 FROM c RETURNING id",
    [P_CLAIMS_PRUNE] = "DELETE FROM intake_claims WHERE key IN (SELECT key FROM intake_claims "
                       "WHERE at_ms < $1 LIMIT 5000)",
    [P_SUB_GET] = "SELECT id, service, node, callback, secret, events, created_ms, websub, options "
                  "FROM subscriptions WHERE id = $1",
    [P_NOTIFY] = "SELECT pg_notify('pubsubgw', $1)",
};

/* A connection being made without waiting: started with PQconnectStartParams, moved on by
 * PQconnectPoll only when its socket is ready, given up after CONNECT_MS. The loop never
 * blocks on a server that is slow to answer or unreachable. */
struct dial {
    PGconn *c;
    PostgresPollingStatusType want;
    int64_t started;
};

#define CONNECT_MS 5000

/* Advisory lock classes (the first key of the two-key form): a gateway that is alive holds
 * (LOCK_MEMBER, its backend pid); the one delivering a partition of the subscriptions
 * (LOCK_SUB, the partition). */
#define LOCK_MEMBER 1886611320
#define LOCK_SUB 1886611321

struct pg_store {
    struct gw_store base;
    PGconn *conn;
    int up;           /* connected with the statements prepared */
    int64_t last_try; /* monotonic ms of the last connection attempt */
    /* the control connection: notifications and locks */
    char *url; /* may hold a password: never logged */
    PGconn *ctl;
    int64_t ctl_last_try;
    unsigned epoch;
    struct dial dial, ctl_dial; /* connections being made again */
    /* A transaction runs in pipeline mode: statements whose answers nobody waits for are sent
     * without waiting, and their answers read at the commit, or when a statement's result is
     * needed, or every PIPE_MAX statements. A failure among them fails the commit. */
    int tx, pipe, queued, pipe_failed;
    /* the main connection's backend, for the control connection to tell this gateway's own
     * notifications (read without the main connection, which the store's thread may be using) */
    atomic_int self_pid;
};

#define PIPE_MAX 256

extern const struct gw_store_ops gw_store_pg_ops;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's own messages, trimmed of their final newline. */
static const char *pg_msg(const char *m, char *buf, size_t len)
{
    snprintf(buf, len, "%s", m ? m : "?");
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    return buf;
}

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char buf[512];
    gw_debug("store: postgresql: %s", pg_msg(message, buf, sizeof(buf)));
}

/* Runs a statement that returns nothing; 0 or -1 with the reason in err. */
static int exec_plain(PGconn *c, const char *q, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, q);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        char buf[512];
        snprintf(err, errlen, "%s", pg_msg(PQresultErrorMessage(r), buf, sizeof(buf)));
    }
    PQclear(r);
    return ok ? 0 : -1;
}

static int migrate(PGconn *c, char *err, size_t errlen)
{
    char e[512];
    if (exec_plain(c,
                   "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ");"
                   "CREATE TABLE IF NOT EXISTS pubsubgw_schema ("
                   " version integer PRIMARY KEY, applied_ms bigint NOT NULL)",
                   e, sizeof(e)) != 0) {
        snprintf(err, errlen, "cannot set up the schema: %s", e);
        exec_plain(c, "ROLLBACK", e, sizeof(e));
        return -1;
    }
    PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM pubsubgw_schema");
    int have =
        PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    int rc = -1;
    if (have < 0) {
        snprintf(err, errlen, "cannot read the schema version");
        goto out;
    }
    if (have > NMIGRATIONS) {
        snprintf(err, errlen,
                 "the database's schema is version %d, newer than this gateway's %d: upgrade the "
                 "gateway",
                 have, NMIGRATIONS);
        goto out;
    }
    for (int v = have; v < NMIGRATIONS; v++) {
        char q[160];
        snprintf(q, sizeof(q),
                 "INSERT INTO pubsubgw_schema(version, applied_ms) VALUES (%d, "
                 "(extract(epoch from now()) * 1000)::bigint)",
                 v + 1);
        if (exec_plain(c, migrations[v], e, sizeof(e)) != 0 ||
            exec_plain(c, q, e, sizeof(e)) != 0) {
            snprintf(err, errlen, "schema migration %d failed: %s", v + 1, e);
            goto out;
        }
        gw_info("store: postgresql schema migrated to version %d", v + 1);
    }
    if (exec_plain(c, "COMMIT", e, sizeof(e)) != 0) {
        snprintf(err, errlen, "schema migration failed: %s", e);
        goto out;
    }
    return 0;
out:
    exec_plain(c, "ROLLBACK", e, sizeof(e));
    return rc;
}

static int prepare_all(struct pg_store *s, char *err, size_t errlen)
{
    for (int i = 0; i < P_COUNT; i++) {
        char name[16];
        snprintf(name, sizeof(name), "gw%d", i);
        PGresult *r = PQprepare(s->conn, name, sql[i], 0, NULL);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) {
            char buf[512];
            snprintf(err, errlen, "cannot prepare statement %d: %s", i,
                     pg_msg(PQresultErrorMessage(r), buf, sizeof(buf)));
        }
        PQclear(r);
        if (!ok)
            return -1;
    }
    return 0;
}

/* Connected and prepared, connecting again at most once a second while the server is away. */
static PGconn *redial(struct dial *d, int64_t *last_try, const char *url);
static int ctl_ready(struct pg_store *s);

static int ensure(struct pg_store *s)
{
    if (s->up && PQstatus(s->conn) == CONNECTION_OK)
        return 1;
    if (s->up) {
        gw_warn("store: postgresql connection lost");
        s->up = 0;
        atomic_store(&s->base.up_known, 0);
        s->tx = s->pipe = s->queued = 0;
        PQfinish(s->conn);
        s->conn = NULL;
    }
    PQfinish(s->conn);
    s->conn = redial(&s->dial, &s->last_try, s->url);
    if (s->conn == NULL)
        return 0;
    PQclear(PQexec(s->conn, "SET enable_seqscan = off")); /* as connect_url does */
    char err[512];
    if (prepare_all(s, err, sizeof(err)) != 0) {
        gw_warn("store: postgresql: %s", err);
        PQfinish(s->conn);
        s->conn = NULL;
        return 0;
    }
    gw_info("store: postgresql connection back");
    s->up = 1;
    atomic_store(&s->base.up_known, 1);
    atomic_store(&s->self_pid, PQbackendPID(s->conn));
    return 1;
}

/* Reads the answer of the oldest statement in the pipeline: into *keep when wanted and good.
 * 0, or -1 when it failed (or an earlier one did: the rest of the pipeline is then skipped). */
static int pipe_read_one(struct pg_store *s, PGresult **keep)
{
    PGresult *r = PQgetResult(s->conn);
    s->queued--;
    if (r == NULL) { /* the connection failed under us */
        s->pipe_failed = 1;
        s->queued = 0;
        return -1;
    }
    ExecStatusType t = PQresultStatus(r);
    int ok = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;
    if (!ok && t != PGRES_PIPELINE_ABORTED) {
        char buf[512];
        gw_error("store: %s", pg_msg(PQresultErrorMessage(r), buf, sizeof(buf)));
    }
    s->pipe_failed |= !ok;
    PGresult *end;
    while ((end = PQgetResult(s->conn)) != NULL) /* each statement's answers end with NULL */
        PQclear(end);
    if (ok && keep != NULL)
        *keep = r;
    else
        PQclear(r);
    return ok ? 0 : -1;
}

/* Makes the server answer what was sent so far, and reads all but the last `leave` answers. */
static void pipe_collect(struct pg_store *s, int leave)
{
    PQsendFlushRequest(s->conn);
    PQflush(s->conn);
    while (s->queued > leave)
        pipe_read_one(s, NULL);
}

/* Ends the pipeline (at the commit or a rollback): reads every answer and the sync. */
static void pipe_end(struct pg_store *s)
{
    if (!s->pipe)
        return;
    PQpipelineSync(s->conn);
    while (s->queued > 0)
        pipe_read_one(s, NULL);
    PGresult *r;
    while ((r = PQgetResult(s->conn)) != NULL) { /* the sync, or nothing if the link failed */
        int sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (sync)
            break;
    }
    PQexitPipelineMode(s->conn);
    s->pipe = 0;
}

static int pipe_send(struct pg_store *s, int which, int n, const char *const *v)
{
    char name[16];
    snprintf(name, sizeof(name), "gw%d", which);
    if (PQsendQueryPrepared(s->conn, name, n, v, NULL, NULL, 0) != 1) {
        char buf[512];
        gw_error("store: %s", pg_msg(PQerrorMessage(s->conn), buf, sizeof(buf)));
        s->pipe_failed = 1;
        return -1;
    }
    s->queued++;
    if (s->queued >= PIPE_MAX)
        pipe_collect(s, 0);
    return 0;
}

/* Runs prepared statement `which` with n text parameters (NULL for SQL NULL). The result, to
 * PQclear(), or NULL on failure (logged). */
static PGresult *run(struct pg_store *s, int which, int n, const char *const *v)
{
    if (s->pipe) {
        PGresult *r = NULL;
        if (s->pipe_failed || pipe_send(s, which, n, v) != 0)
            return NULL;
        pipe_collect(s, 1);
        pipe_read_one(s, &r);
        return r;
    }
    if (!ensure(s))
        return NULL;
    char name[16];
    snprintf(name, sizeof(name), "gw%d", which);
    PGresult *r = PQexecPrepared(s->conn, name, n, v, NULL, NULL, 0);
    ExecStatusType t = PQresultStatus(r);
    if (t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK)
        return r;
    char buf[512];
    gw_error("store: %s", pg_msg(PQresultErrorMessage(r), buf, sizeof(buf)));
    PQclear(r);
    if (PQstatus(s->conn) != CONNECTION_OK)
        ensure(s); /* notes the loss; the next call a second later connects again */
    return NULL;
}

static int run_done(struct pg_store *s, int which, int n, const char *const *v)
{
    if (s->pipe) /* its answer is read later: a failure fails the commit */
        return s->pipe_failed ? -1 : pipe_send(s, which, n, v);
    PGresult *r = run(s, which, n, v);
    PQclear(r);
    return r ? 0 : -1;
}

/* Runs a statement that changes rows: how many it changed, or -1. */
static int run_count(struct pg_store *s, int which, int n, const char *const *v)
{
    PGresult *r = run(s, which, n, v);
    if (r == NULL)
        return -1;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return changed;
}

static int exec_simple(struct pg_store *s, const char *q)
{
    if (!ensure(s))
        return -1;
    char err[512];
    if (exec_plain(s->conn, q, err, sizeof(err)) != 0) {
        gw_error("store: %s: %s", q, err);
        return -1;
    }
    return 0;
}

/* Advisory locks are per database; pg_locks shows those of every database of the server. */
#define THIS_DB "(SELECT oid FROM pg_database WHERE datname = current_database())"
#define STR_(x) #x
#define STR(x) STR_(x)
#define I64(buf, v) (snprintf(buf, sizeof(buf), "%" PRId64, (int64_t)(v)), buf)

static int64_t col_i64(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static char *col_dup(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static const char *col_str(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static void pg_close(struct gw_store *g)
{
    struct pg_store *s = (struct pg_store *)g;
    if (s->conn != NULL)
        PQfinish(s->conn);
    if (s->ctl != NULL)
        PQfinish(s->ctl);
    if (s->dial.c != NULL)
        PQfinish(s->dial.c);
    if (s->ctl_dial.c != NULL)
        PQfinish(s->ctl_dial.c);
    if (s->url != NULL)
        memset(s->url, 0, strlen(s->url));
    free(s->url);
    free(s);
}

/* Defaults first: what the URL says wins. TCP keepalives and a user timeout make a link to a
 * server that vanished from the network (no reset) fail within seconds rather than never. */
#define NPARAMS 9
static void connect_params(const char *url, const char **keys, const char **vals)
{
    const char *k[NPARAMS + 1] = {"application_name", "connect_timeout",
                                  "options",          "keepalives",
                                  "keepalives_idle",  "keepalives_interval",
                                  "keepalives_count", "tcp_user_timeout",
                                  "dbname",           NULL};
    const char *v[NPARAMS + 1] = {
        "pubsubgw", "5", "-c synchronous_commit=off", "1", "5", "2", "3", "10000", url, NULL};
    memcpy(keys, k, sizeof(k));
    memcpy(vals, v, sizeof(v));
}

static void dial_start(struct dial *d, const char *url, int64_t now)
{
    const char *keys[NPARAMS + 1], *vals[NPARAMS + 1];
    connect_params(url, keys, vals);
    d->c = PQconnectStartParams(keys, vals, 1);
    d->want = PGRES_POLLING_WRITING;
    d->started = now;
    if (d->c != NULL && PQstatus(d->c) == CONNECTION_BAD) {
        PQfinish(d->c);
        d->c = NULL;
    }
}

/* 1 when the connection is made (d->c then ready to use), 0 while under way, -1 when it failed
 * (d->c freed). */
static int dial_step(struct dial *d, int64_t now)
{
    if (d->c == NULL)
        return -1;
    int fd = PQsocket(d->c);
    if (fd >= 0 && now - d->started < CONNECT_MS) {
        struct pollfd p = {fd, d->want == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
        if (poll(&p, 1, 0) == 0)
            return 0;
        d->want = PQconnectPoll(d->c);
        if (d->want == PGRES_POLLING_OK)
            return 1;
        if (d->want != PGRES_POLLING_FAILED)
            return 0;
    }
    char buf[512];
    gw_debug("store: postgresql: %s", now - d->started >= CONNECT_MS
                                          ? "no answer in time"
                                          : pg_msg(PQerrorMessage(d->c), buf, sizeof(buf)));
    PQfinish(d->c);
    d->c = NULL;
    return -1;
}

/* Moves a lost connection's replacement on: the new connection once it is made, else NULL (an
 * attempt starts at most once a second). */
static PGconn *redial(struct dial *d, int64_t *last_try, const char *url)
{
    int64_t now = mono_ms();
    if (d->c == NULL) {
        if (now - *last_try < 1000)
            return NULL;
        *last_try = now;
        dial_start(d, url, now);
    }
    if (dial_step(d, now) != 1)
        return NULL;
    PGconn *c = d->c;
    d->c = NULL;
    PQsetNoticeProcessor(c, on_notice, NULL);
    return c;
}

static PGconn *connect_url(const char *url)
{
    /* Defaults first: what the URL says wins. */
    /* synchronous_commit=off: a commit does not wait for the disk, as the SQLite store does
     * not (synchronous=NORMAL). Should PostgreSQL itself crash, its last commits (at most
     * three times wal_writer_delay) may go; the gateway sees the connection drop and catches up
     * from the nodes when it is back, so items are delivered again rather than lost. A URL
     * that sets options (…?options=-c%20synchronous_commit%3Don) replaces this. */
    const char *keys[NPARAMS + 1], *vals[NPARAMS + 1];
    connect_params(url, keys, vals);
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c != NULL && PQstatus(c) == CONNECTION_OK) {
        PQsetNoticeProcessor(c, on_notice, NULL);
        /* Every statement here is an index lookup; a prepared statement's generic plan may
         * still pick a sequential scan from statistics skewed by fan-out (an event with many
         * deliveries), which for the event clean-up reads the whole outbox each time. */
        PQclear(PQexec(c, "SET enable_seqscan = off"));
    }
    return c;
}

struct gw_store *gw_store_pg_open(const char *url, char *err, size_t errlen)
{
    struct pg_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &gw_store_pg_ops;
    s->url = strdup(url);
    s->conn = connect_url(url);
    char buf[512];
    if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to postgresql: %s",
                 s->conn ? pg_msg(PQerrorMessage(s->conn), buf, sizeof(buf)) : "out of memory");
        goto fail;
    }
    if (migrate(s->conn, err, errlen) != 0 || prepare_all(s, err, errlen) != 0)
        goto fail;
    s->up = 1;
    atomic_store(&s->base.up_known, 1);
    atomic_store(&s->self_pid, PQbackendPID(s->conn));
    s->last_try = mono_ms();
    s->ctl_last_try = s->last_try;
    s->ctl = connect_url(url); /* at start the gateway may wait; later it never does */
    if (PQstatus(s->ctl) != CONNECTION_OK || ctl_ready(s) != 1) {
        snprintf(err, errlen, "cannot connect to postgresql: %s",
                 pg_msg(PQerrorMessage(s->ctl), buf, sizeof(buf)));
        goto fail;
    }
    /* Events whose deliveries all ended while no gateway ran. */
    exec_simple(s, "DELETE FROM events WHERE NOT EXISTS "
                   "(SELECT 1 FROM deliveries WHERE event = events.id)");
    return &s->base;
fail:
    pg_close(&s->base);
    return NULL;
}

static int pg_up(struct gw_store *g)
{
    struct pg_store *s = (struct pg_store *)g;
    /* An idle connection learns that the server went (it says so as it stops) only by reading. */
    if (s->up && PQtransactionStatus(s->conn) == PQTRANS_IDLE)
        PQconsumeInput(s->conn);
    return ensure(s);
}

static int pg_begin(struct gw_store *g)
{
    struct pg_store *s = (struct pg_store *)g;
    if (s->tx || !ensure(s))
        return -1;
    s->tx = 1;
    s->pipe_failed = 0;
    s->queued = 0;
    if (PQenterPipelineMode(s->conn) == 1) {
        s->pipe = 1;
        if (PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) == 1) {
            s->queued = 1;
            return 0;
        }
        pipe_end(s);
    }
    if (exec_simple(s, "BEGIN") != 0) {
        s->tx = 0;
        return -1;
    }
    return 0;
}

static int pg_commit(struct gw_store *g)
{
    struct pg_store *s = (struct pg_store *)g;
    if (!s->tx)
        return -1;
    int rc = 0;
    if (s->pipe) {
        if (!s->pipe_failed &&
            PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1)
            s->queued++;
        else
            s->pipe_failed = 1;
        pipe_end(s);
        rc = s->pipe_failed ? -1 : 0;
    } else {
        rc = exec_simple(s, "COMMIT");
    }
    s->tx = 0;
    /* What failed left the transaction open and aborted: end it. */
    if (PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        exec_simple(s, "ROLLBACK");
    return rc;
}

static void pg_rollback(struct gw_store *g)
{
    struct pg_store *s = (struct pg_store *)g;
    pipe_end(s);
    s->tx = 0;
    if (s->up && PQstatus(s->conn) == CONNECTION_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        exec_simple(s, "ROLLBACK");
}

static int pg_sub_insert(struct gw_store *g, const struct gw_store_sub *sub)
{
    char ev[24], created[24];
    const char *v[] = {sub->id,
                       sub->service,
                       sub->node,
                       sub->callback,
                       sub->secret,
                       I64(ev, sub->events),
                       I64(created, sub->created_ms),
                       sub->websub,
                       sub->options};
    return run_done((struct pg_store *)g, P_SUB_INSERT, 9, v);
}

static int pg_sub_renew(struct gw_store *g, const char *id, const char *secret, const char *websub)
{
    const char *v[] = {id, secret, websub};
    return run_count((struct pg_store *)g, P_SUB_RENEW, 3, v);
}

static int pg_feed_put(struct gw_store *g, const struct gw_store_feed *f)
{
    char iv[24], created[24];
    const char *v[] = {
        f->id,   f->url, f->service, f->node, I64(iv, f->interval_s), I64(created, f->created_ms),
        f->state};
    return run_done((struct pg_store *)g, P_FEED_PUT, 7, v);
}

static int pg_feed_delete(struct gw_store *g, const char *id)
{
    const char *v[] = {id};
    return run_done((struct pg_store *)g, P_FEED_DELETE, 1, v);
}

static int pg_feed_each(struct gw_store *g, void (*cb)(const struct gw_store_feed *f, void *arg),
                        void *arg)
{
    PGresult *r = run((struct pg_store *)g, P_FEED_ALL, 0, NULL);
    if (r == NULL)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        struct gw_store_feed f = {
            .id = (char *)col_str(r, i, 0),
            .url = (char *)col_str(r, i, 1),
            .service = (char *)col_str(r, i, 2),
            .node = (char *)col_str(r, i, 3),
            .interval_s = (int)col_i64(r, i, 4),
            .created_ms = col_i64(r, i, 5),
            .state = (char *)col_str(r, i, 6),
        };
        cb(&f, arg);
    }
    PQclear(r);
    return 0;
}

static int pg_sub_delete(struct gw_store *g, const char *id)
{
    struct pg_store *s = (struct pg_store *)g;
    if (pg_begin(g) != 0)
        return -1;
    const int steps[] = {P_SUB_EVENTS_ORPHANED, P_SUB_DELETE_DELIVERIES, P_SUB_DELETE_ATTEMPTS,
                         P_SUB_DELETE};
    const char *v[] = {id};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        if (run_done(s, steps[i], 1, v) != 0) {
            pg_rollback(g);
            return -1;
        }
    }
    if (pg_commit(g) != 0) {
        pg_rollback(g);
        return -1;
    }
    return 0;
}

static void each_sub_row(PGresult *r, void (*cb)(const struct gw_store_sub *sub, void *arg),
                         void *arg);

/* In pages of 5,000 (a million subscriptions in one result would hold them all twice). */
static int pg_sub_each(struct gw_store *g, void (*cb)(const struct gw_store_sub *sub, void *arg),
                       void *arg)
{
    char after_ms[24] = "-9223372036854775808", after_id[256] = "";
    for (;;) {
        const char *v[] = {after_ms, after_id};
        PGresult *r = run((struct pg_store *)g, P_SUB_ALL, 2, v);
        if (r == NULL)
            return -1;
        int n = PQntuples(r);
        if (n > 0) {
            snprintf(after_ms, sizeof(after_ms), "%s", PQgetvalue(r, n - 1, 6));
            snprintf(after_id, sizeof(after_id), "%s", PQgetvalue(r, n - 1, 0));
        }
        each_sub_row(r, cb, arg);
        PQclear(r);
        if (n < 5000)
            return 0;
    }
}

static void each_sub_row(PGresult *r, void (*cb)(const struct gw_store_sub *sub, void *arg),
                         void *arg)
{
    for (int i = 0; i < PQntuples(r); i++) {
        struct gw_store_sub sub = {
            .id = (char *)col_str(r, i, 0),
            .service = (char *)col_str(r, i, 1),
            .node = (char *)col_str(r, i, 2),
            .callback = (char *)col_str(r, i, 3),
            .secret = (char *)col_str(r, i, 4),
            .events = (unsigned)col_i64(r, i, 5),
            .created_ms = col_i64(r, i, 6),
            .websub = PQgetisnull(r, i, 7) ? NULL : (char *)col_str(r, i, 7),
            .options = PQgetisnull(r, i, 8) ? NULL : (char *)col_str(r, i, 8),
        };
        cb(&sub, arg);
    }
}

static int64_t pg_event_add(struct gw_store *g, const char *event_id, const char *service,
                            const char *node, const char *body, int64_t created_ms)
{
    char created[24];
    const char *v[] = {event_id, service, node, body, I64(created, created_ms)};
    PGresult *r = run((struct pg_store *)g, P_EVENT_ADD, 5, v);
    if (r == NULL)
        return -1;
    int64_t id = PQntuples(r) == 1 ? col_i64(r, 0, 0) : -1;
    PQclear(r);
    return id;
}

static int pg_delivery_add(struct gw_store *g, const char *sub_id, int64_t event, int64_t next_at,
                           const char *dead_reason)
{
    char e[24], n[24];
    const char *v[] = {sub_id, I64(e, event), I64(n, next_at), dead_reason ? "1" : "0",
                       dead_reason};
    return run_done((struct pg_store *)g, P_DELIVERY_ADD, 5, v);
}

static int pg_count_each(struct gw_store *g, int dead, const char *sub_id,
                         void (*cb)(const char *sub_id, int64_t n, void *arg), void *arg)
{
    const char *v[] = {sub_id};
    PGresult *r = run((struct pg_store *)g,
                      sub_id ? P_DEAD_OF_SUB
                      : dead ? P_DEAD_BY_SUB
                             : P_PENDING_BY_SUB,
                      sub_id ? 1 : 0, sub_id ? v : NULL);
    if (r == NULL)
        return -1;
    for (int i = 0; i < PQntuples(r); i++)
        cb(PQgetvalue(r, i, 0), col_i64(r, i, 1), arg);
    PQclear(r);
    return 0;
}

static void read_delivery(const PGresult *r, int row, struct gw_store_delivery *d)
{
    d->seq = col_i64(r, row, 0);
    d->event = col_i64(r, row, 1);
    d->event_id = col_dup(r, row, 2);
    d->body = col_dup(r, row, 3);
    d->attempts = (int)col_i64(r, row, 4);
    d->next_at = col_i64(r, row, 5);
    d->created_ms = col_i64(r, row, 6);
    d->last_error = col_dup(r, row, 7);
}

static int pg_delivery_next(struct gw_store *g, const char *sub_id, int64_t after, int limit,
                            struct gw_store_delivery *out)
{
    char a[24], l[24];
    const char *v[] = {sub_id, I64(a, after), I64(l, limit)};
    PGresult *r = run((struct pg_store *)g, P_DELIVERY_HEAD, 3, v);
    if (r == NULL)
        return -1;
    int n = 0;
    for (int i = 0; i < PQntuples(r) && n < limit; i++) {
        read_delivery(r, i, &out[n]);
        if (out[n].event_id == NULL || out[n].body == NULL) {
            gw_store_delivery_clear(&out[n]);
            break;
        }
        n++;
    }
    PQclear(r);
    return n;
}

static int pg_delivery_remove(struct gw_store *g, int64_t seq)
{
    char a[24];
    const char *v[] = {I64(a, seq)};
    return run_done((struct pg_store *)g, P_DELIVERY_DONE, 1, v);
}

static int pg_event_gc(struct gw_store *g, int64_t event)
{
    char b[24];
    const char *v[] = {I64(b, event)};
    return run_done((struct pg_store *)g, P_EVENT_GC, 1, v);
}

static int pg_delivery_done(struct gw_store *g, int64_t seq, int64_t event)
{
    return pg_delivery_remove(g, seq) == 0 ? pg_event_gc(g, event) : -1;
}

static int pg_delivery_failed(struct gw_store *g, int64_t seq, int attempts, int64_t next_at,
                              const char *error, int dead)
{
    char a[24], b[24], c[24];
    const char *v[] = {I64(a, seq), I64(b, attempts), I64(c, next_at), error, dead ? "1" : "0"};
    return run_done((struct pg_store *)g, P_DELIVERY_FAILED, 5, v);
}

static int pg_dead_each(struct gw_store *g, const char *sub_id,
                        void (*cb)(const struct gw_store_delivery *d, void *arg), void *arg)
{
    const char *v[] = {sub_id};
    PGresult *r = run((struct pg_store *)g, P_DEAD_LIST, 1, v);
    if (r == NULL)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        struct gw_store_delivery d;
        read_delivery(r, i, &d);
        cb(&d, arg);
        gw_store_delivery_clear(&d);
    }
    PQclear(r);
    return 0;
}

/* Removes the rows r selected (seq, event), each with its event once unneeded: in one
 * transaction unless the caller's is open. Returns how many, or -1. */
static int remove_selected(struct pg_store *s, PGresult *r)
{
    int n = PQntuples(r);
    int own = n > 0 && !s->tx && pg_begin(&s->base) == 0;
    for (int i = 0; i < n; i++) {
        if (pg_delivery_done(&s->base, col_i64(r, i, 0), col_i64(r, i, 1)) != 0) {
            if (own)
                pg_rollback(&s->base);
            PQclear(r);
            return -1;
        }
    }
    PQclear(r);
    if (own && pg_commit(&s->base) != 0) {
        pg_rollback(&s->base);
        return -1;
    }
    return n;
}

static int pg_dead_prune_age(struct gw_store *g, int64_t before_ms, int limit)
{
    struct pg_store *s = (struct pg_store *)g;
    char a[24], b[24];
    const char *v[] = {I64(a, before_ms), I64(b, limit < 256 ? limit : 256)};
    PGresult *r = run(s, P_DEAD_OLD, 2, v);
    return r ? remove_selected(s, r) : -1;
}

static int pg_dead_prune_count(struct gw_store *g, const char *sub_id, int keep, int limit)
{
    struct pg_store *s = (struct pg_store *)g;
    char a[24], b[24];
    const char *v[] = {sub_id, I64(a, keep), I64(b, limit < 256 ? limit : 256)};
    PGresult *r = run(s, P_DEAD_EXCESS, 3, v);
    return r ? remove_selected(s, r) : -1;
}

static int pg_dead_retry(struct gw_store *g, const char *sub_id, int64_t seq, int64_t now_ms)
{
    char a[24], b[24];
    const char *v[] = {sub_id, I64(a, seq), I64(b, now_ms)};
    int changed = run_count((struct pg_store *)g, P_DEAD_RETRY, 3, v);
    return changed < 0 ? -1 : changed > 0;
}

static int64_t pg_oldest_pending_ms(struct gw_store *g)
{
    PGresult *r = run((struct pg_store *)g, P_OLDEST_PENDING, 0, NULL);
    int64_t v = r && PQntuples(r) > 0 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return v;
}

static int pg_attempt_add(struct gw_store *g, const struct gw_store_attempt *a)
{
    char at[24], n[24], st[24], dur[24];
    const char *v[] = {
        a->sub_id, I64(at, a->at_ms),        a->event_id, I64(n, a->attempt), I64(st, a->status),
        a->error,  I64(dur, a->duration_ms), a->answer};
    return run_done((struct pg_store *)g, P_ATTEMPT_ADD, 8, v);
}

static int pg_attempts_each(struct gw_store *g, const char *sub_id, int64_t before, int limit,
                            void (*cb)(const struct gw_store_attempt *a, void *arg), void *arg)
{
    char b[24], l[24];
    const char *v[] = {sub_id, I64(b, before > 0 ? before : INT64_MAX), I64(l, limit)};
    PGresult *r = run((struct pg_store *)g, P_ATTEMPT_LIST, 3, v);
    if (r == NULL)
        return -1;
    for (int i = 0; i < PQntuples(r); i++) {
        struct gw_store_attempt a = {
            .id = col_i64(r, i, 0),
            .sub_id = sub_id,
            .at_ms = col_i64(r, i, 1),
            .event_id = col_str(r, i, 2),
            .attempt = (int)col_i64(r, i, 3),
            .status = (long)col_i64(r, i, 4),
            .error = col_str(r, i, 5),
            .duration_ms = col_i64(r, i, 6),
            .answer = col_str(r, i, 7),
        };
        cb(&a, arg);
    }
    PQclear(r);
    return 0;
}

static int pg_attempts_prune_count(struct gw_store *g, const char *sub_id, int keep)
{
    char k[24];
    const char *v[] = {sub_id, I64(k, keep)};
    return run_done((struct pg_store *)g, P_ATTEMPT_EXCESS, 2, v);
}

static int pg_attempts_prune_age(struct gw_store *g, int64_t before_ms)
{
    char b[24];
    const char *v[] = {I64(b, before_ms)};
    return run_count((struct pg_store *)g, P_ATTEMPT_OLD, 1, v);
}

static int pg_seen_add(struct gw_store *g, const char *service, const char *node, const char *item)
{
    const char *v[] = {service, node, item};
    return run_done((struct pg_store *)g, P_SEEN_ADD, 3, v);
}

static int pg_seen_has(struct gw_store *g, const char *service, const char *node, const char *item)
{
    const char *v[] = {service, node, item};
    PGresult *r = run((struct pg_store *)g, P_SEEN_HAS, 3, v);
    int found = r && PQntuples(r) > 0;
    PQclear(r);
    return found;
}

static int pg_seen_prune(struct gw_store *g, const char *service, const char *node, int keep)
{
    char k[24];
    const char *v[] = {service, node, I64(k, keep)};
    return run_done((struct pg_store *)g, P_SEEN_PRUNE, 3, v);
}

/* The control connection, made again at most once a second while the server is away. */
static int ensure_ctl(struct pg_store *s)
{
    if (s->ctl != NULL && PQstatus(s->ctl) == CONNECTION_OK)
        return 1;
    PQfinish(s->ctl);
    s->ctl = redial(&s->ctl_dial, &s->ctl_last_try, s->url);
    return s->ctl != NULL ? ctl_ready(s) : 0;
}

/* A new control connection listens and says this gateway is alive. */
static int ctl_ready(struct pg_store *s)
{
    char err[512];
    if (exec_plain(
            s->ctl,
            "LISTEN pubsubgw; SELECT pg_advisory_lock(" STR(LOCK_MEMBER) ", pg_backend_pid())", err,
            sizeof(err)) != 0) {
        gw_debug("store: postgresql control connection: %s", err);
        PQfinish(s->ctl);
        s->ctl = NULL;
        return 0;
    }
    s->epoch++;
    return 1;
}

static int pg_connecting(struct gw_store *g)
{
    struct pg_store *s = (struct pg_store *)g;
    return s->dial.c != NULL || s->ctl_dial.c != NULL;
}

static int pg_notify_fd(struct gw_store *g)
{
    struct pg_store *s = (struct pg_store *)g;
    return ensure_ctl(s) ? PQsocket(s->ctl) : -1;
}

static int pg_notify_read(struct gw_store *g, void (*cb)(char kind, const char *id, void *arg),
                          void *arg)
{
    struct pg_store *s = (struct pg_store *)g;
    if (s->ctl == NULL || PQconsumeInput(s->ctl) == 0 || PQstatus(s->ctl) != CONNECTION_OK)
        return -1;
    PGnotify *n;
    int self = atomic_load(&s->self_pid);
    while ((n = PQnotifies(s->ctl)) != NULL) {
        /* What this gateway changed itself, it knows already. */
        if (n->extra != NULL && n->extra[0] != '\0' && n->be_pid != self)
            cb(n->extra[0], n->extra + 1, arg);
        PQfreemem(n);
    }
    return 0;
}

static unsigned pg_epoch(struct gw_store *g)
{
    return ((struct pg_store *)g)->epoch;
}

/* A one-value query on the control connection: the value as a number, or -1. */
static long long ctl_value(struct pg_store *s, const char *q, const char *param)
{
    if (!ensure_ctl(s))
        return -1;
    const char *v[] = {param};
    PGresult *r = PQexecParams(s->ctl, q, param ? 1 : 0, NULL, v, NULL, NULL, 0);
    long long out = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        const char *t = PQgetvalue(r, 0, 0);
        out = t[0] == 't' ? 1 : t[0] == 'f' ? 0 : strtoll(t, NULL, 10);
    } else {
        char buf[512];
        gw_warn("store: postgresql control connection: %s",
                pg_msg(PQresultErrorMessage(r), buf, sizeof(buf)));
    }
    PQclear(r);
    return out;
}

static int pg_lock_try(struct gw_store *g, uint32_t key)
{
    char k[24];
    return (int)ctl_value((struct pg_store *)g,
                          "SELECT pg_try_advisory_lock(" STR(LOCK_SUB) ", $1::int4)",
                          I64(k, (int32_t)key));
}

static int pg_lock_release(struct gw_store *g, uint32_t key)
{
    char k[24];
    return (int)ctl_value((struct pg_store *)g,
                          "SELECT pg_advisory_unlock(" STR(LOCK_SUB) ", $1::int4)",
                          I64(k, (int32_t)key));
}

static int pg_locks_free(struct gw_store *g, int n, int *out)
{
    struct pg_store *s = (struct pg_store *)g;
    if (!ensure_ctl(s))
        return -1;
    char nb[24];
    const char *v[] = {I64(nb, n - 1)};
    PGresult *r = PQexecParams(
        s->ctl,
        "SELECT p FROM generate_series(0, $1::int4) p WHERE NOT EXISTS (SELECT 1 FROM pg_locks "
        "WHERE locktype = 'advisory' AND database = " THIS_DB
        " AND classid = " STR(LOCK_SUB) " AND objid = p::oid AND "
                                        "objsubid = 2)",
        1, NULL, v, NULL, NULL, 0);
    int k = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        k = 0;
        for (int i = 0; i < PQntuples(r) && k < n; i++)
            out[k++] = atoi(PQgetvalue(r, i, 0));
    } else {
        char buf[512];
        gw_warn("store: postgresql control connection: %s",
                pg_msg(PQresultErrorMessage(r), buf, sizeof(buf)));
    }
    PQclear(r);
    return k;
}

static int pg_replicas(struct gw_store *g)
{
    return (int)ctl_value((struct pg_store *)g,
                          "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' "
                          "AND database = " THIS_DB
                          " AND classid = " STR(LOCK_MEMBER) " AND objsubid = 2 AND granted",
                          NULL);
}

static int64_t pg_event_add_claimed(struct gw_store *g, const char *claim, const char *event_id,
                                    const char *service, const char *node, const char *body,
                                    int64_t created_ms)
{
    char created[24];
    const char *v[] = {event_id, service, node, body, I64(created, created_ms), claim};
    PGresult *r = run((struct pg_store *)g, P_CLAIM, 6, v);
    if (r == NULL)
        return -1;
    int64_t id = PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return id;
}

static int pg_claims_prune(struct gw_store *g, int64_t before_ms)
{
    char t[24];
    const char *v[] = {I64(t, before_ms)};
    return run_count((struct pg_store *)g, P_CLAIMS_PRUNE, 1, v);
}

static int pg_sub_get(struct gw_store *g, const char *id, struct gw_store_sub *sub)
{
    const char *v[] = {id};
    PGresult *r = run((struct pg_store *)g, P_SUB_GET, 1, v);
    if (r == NULL)
        return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        *sub = (struct gw_store_sub){
            .id = col_dup(r, 0, 0),
            .service = col_dup(r, 0, 1),
            .node = col_dup(r, 0, 2),
            .callback = col_dup(r, 0, 3),
            .secret = col_dup(r, 0, 4),
            .events = (unsigned)col_i64(r, 0, 5),
            .created_ms = col_i64(r, 0, 6),
            .websub = PQgetisnull(r, 0, 7) ? NULL : col_dup(r, 0, 7),
            .options = PQgetisnull(r, 0, 8) ? NULL : col_dup(r, 0, 8),
        };
        if (!sub->id || !sub->service || !sub->node || !sub->callback || !sub->secret) {
            gw_store_sub_clear(sub);
            found = -1;
        }
    }
    PQclear(r);
    return found;
}

static int pg_notify(struct gw_store *g, char kind, const char *id)
{
    char payload[512];
    snprintf(payload, sizeof(payload), "%c%s", kind, id);
    const char *v[] = {payload};
    return run_done((struct pg_store *)g, P_NOTIFY, 1, v);
}

const struct gw_store_ops gw_store_pg_ops = {
    .notify_fd = pg_notify_fd,
    .connecting = pg_connecting,
    .notify_read = pg_notify_read,
    .epoch = pg_epoch,
    .lock_try = pg_lock_try,
    .lock_release = pg_lock_release,
    .locks_free = pg_locks_free,
    .replicas = pg_replicas,
    .event_add_claimed = pg_event_add_claimed,
    .claims_prune = pg_claims_prune,
    .sub_get = pg_sub_get,
    .notify = pg_notify,
    .kind = "postgresql",
    .close = pg_close,
    .up = pg_up,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .sub_insert = pg_sub_insert,
    .sub_renew = pg_sub_renew,
    .feed_put = pg_feed_put,
    .feed_delete = pg_feed_delete,
    .feed_each = pg_feed_each,
    .sub_delete = pg_sub_delete,
    .sub_each = pg_sub_each,
    .event_add = pg_event_add,
    .delivery_add = pg_delivery_add,
    .count_each = pg_count_each,
    .delivery_next = pg_delivery_next,
    .delivery_done = pg_delivery_done,
    .delivery_remove = pg_delivery_remove,
    .event_gc = pg_event_gc,
    .delivery_failed = pg_delivery_failed,
    .dead_each = pg_dead_each,
    .dead_prune_age = pg_dead_prune_age,
    .dead_prune_count = pg_dead_prune_count,
    .dead_retry = pg_dead_retry,
    .oldest_pending_ms = pg_oldest_pending_ms,
    .attempt_add = pg_attempt_add,
    .attempts_each = pg_attempts_each,
    .attempts_prune_count = pg_attempts_prune_count,
    .attempts_prune_age = pg_attempts_prune_age,
    .seen_add = pg_seen_add,
    .seen_has = pg_seen_has,
    .seen_prune = pg_seen_prune,
};
