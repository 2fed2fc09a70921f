/* The delivery engine. Each subscription has at most one delivery in flight and takes its
 * deliveries in outbox order, so its events arrive in order; a slow or failing callback only
 * ever holds up its own queue. A delivery leaves the outbox only after a 2xx. */
#include "hmap.h"
#include "log.h"
#include "loop.h"
#include "status.h"
#include "webhooks_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct attempt {
    struct gw_hooks *h;
    struct hsub *s;
    int64_t seq, event, created_ms;
    int attempts;
    int64_t sent_ms;
    char event_id[96]; /* webhook-id: the event's, or the batch's */
    /* a batch: the n deliveries it carries, oldest first (seq and event above are the first) */
    int n;
    int64_t *seqs, *events; /* into ids */
    int64_t ids[];
};

int64_t gw_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next deliveries of a subscription, read from the store a few at a time when it has a
 * backlog (one query per delivery would bound a callback's rate by the store's round trip). */
#define QUEUE_MAX 16

static void queue_clear(struct hsub *s)
{
    for (int i = s->qpos; i < s->qn; i++)
        gw_store_delivery_clear(&s->q[i]);
    free(s->q);
    s->q = NULL;
    s->qn = s->qpos = 0;
    s->stale = s->fetching; /* a read under way started before this */
}

/* Reading a subscription's next deliveries, on the store's thread. */
struct gw_fetch {
    struct hsub *s; /* kept (not freed) while s->fetching */
    struct gw_store *st;
    char *sub_id;
    int64_t after;
    int limit, n;
    struct gw_store_delivery q[];
};

struct gw_fetch *gw_delivery_fetch_new(struct gw_hooks *h, struct hsub *s, int limit)
{
    struct gw_fetch *f = calloc(1, sizeof(*f) + (size_t)limit * sizeof(f->q[0]));
    if (f == NULL || (f->sub_id = strdup(s->id)) == NULL) {
        free(f);
        return NULL;
    }
    f->s = s;
    f->st = h->store;
    f->after = s->done_seq;
    f->limit = limit;
    s->fetching = 1;
    s->stale = s->rekick = 0;
    return f;
}

/* Also while one delivery is in flight with nothing queued behind it (not a batch): the read
 * finds that one again (its row stays until answered) and what came after it, so the next
 * delivery starts as soon as the answer is in, without a read of its own. Followed live, a
 * callback's events otherwise each waited for the previous answer and then for a read on the
 * store's thread, behind whatever else was queued there. */
int gw_delivery_can_prefetch(const struct gw_hooks *h, const struct hsub *s)
{
    if (!s->owned || s->gone || s->fetching || s->timer || h->stopping)
        return 0;
    if (s->inflight)
        return s->batch_max == 0 && s->qpos + 1 >= s->qn;
    return s->qpos >= s->qn;
}

void gw_delivery_fetch_run(struct gw_fetch *f)
{
    f->n = gw_store_delivery_next(f->st, f->sub_id, f->after, f->limit, f->q);
}

static void fetch_job(void *arg)
{
    gw_delivery_fetch_run(arg);
}

void gw_delivery_fetch_done(struct gw_fetch *f)
{
    struct hsub *s = f->s;
    s->fetching = 0;
    int use = !s->stale && !s->gone && f->n > 0, again = s->stale || s->rekick;
    s->stale = s->rekick = 0;
    if (use) {
        struct gw_store_delivery *q = calloc((size_t)f->n, sizeof(*q));
        if (q != NULL) {
            queue_clear(s); /* read while one was in flight: it is in the new queue too */
            memcpy(q, f->q, (size_t)f->n * sizeof(*q));
            s->q = q;
            s->qn = f->n;
            s->qpos = 0;
        } else {
            use = 0;
        }
    }
    if (!use)
        for (int i = 0; i < f->n; i++)
            gw_store_delivery_clear(&f->q[i]);
    free(f->sub_id);
    free(f);
    if (s->gone) {
        if (!s->inflight)
            gw_hsub_free(s);
        return;
    }
    if (use || again) /* with what came, or to read again (reset or kicked meanwhile) */
        gw_delivery_kick(s->hn->hooks, s);
}

static void fetch_done(void *arg)
{
    gw_delivery_fetch_done(arg);
}

int gw_delivery_queue_max(const struct hsub *s)
{
    return s->batch_max > QUEUE_MAX ? s->batch_max : QUEUE_MAX;
}

/* The oldest live delivery of s not yet answered 2xx, or NULL: none, or being read (the kick
 * comes again when it is there), or the store failed. */
static struct gw_store_delivery *queue_head(struct gw_hooks *h, struct hsub *s)
{
    while (s->qpos < s->qn && s->q[s->qpos].seq <= s->done_seq)
        gw_store_delivery_clear(&s->q[s->qpos++]);
    if (s->qpos < s->qn)
        return &s->q[s->qpos];
    queue_clear(s);
    /* Nothing stored for it: what stores some kicks it. (On a shared store the count of what
     * other gateways stored is only a lower bound: read all the same.) */
    if (s->pending <= 0 && !h->shared)
        return NULL;
    int limit = s->pending > 1 ? gw_delivery_queue_max(s) : 1;
    struct gw_fetch *f = gw_delivery_fetch_new(h, s, limit);
    if (f != NULL)
        gw_store_submit(h->store, fetch_job, fetch_done, f);
    return NULL;
}

/* The head delivery seq left the live ones (dead letter): the queue moves past it. */
static void queue_drop(struct hsub *s, int64_t seq)
{
    if (s->qpos < s->qn && s->q[s->qpos].seq == seq)
        gw_store_delivery_clear(&s->q[s->qpos++]);
}

void gw_delivery_rewind(struct gw_hooks *h, struct hsub *s)
{
    (void)h;
    s->done_seq = 0;
    queue_clear(s);
}

void gw_hsub_free(struct hsub *s)
{
    if (s == NULL)
        return;
    queue_clear(s);
    free(s->id);
    gw_hsub_service_unref(s->service);
    free(s->node);
    free(s->callback);
    free(s->topic);
    if (s->secret)
        memset(s->secret, 0, strlen(s->secret));
    free(s->secret);
    memset(s->key, 0, sizeof(s->key));
    free(s);
}

int gw_delivery_detach(struct gw_hooks *h, struct hsub *s)
{
    if (s->timer) {
        gw_loop_timer_cancel(h->loop, s->timer);
        s->timer = 0;
    }
    if (s->lease_timer) {
        gw_loop_timer_cancel(h->loop, s->lease_timer);
        s->lease_timer = 0;
    }
    s->gone = 1;
    return !s->inflight && !s->fetching;
}

static void on_timer(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct hsub *s = arg;
    s->timer = 0;
    gw_delivery_kick(s->hn->hooks, s); /* a timer runs only while s is attached */
}

static void arm(struct gw_hooks *h, struct hsub *s, int64_t delay_ms)
{
    s->timer = gw_loop_timer_add(h->loop, delay_ms, on_timer, s);
}

void gw_delivery_kick_later(struct gw_hooks *h, struct hsub *s, int64_t delay_ms)
{
    if (s->timer == 0 && !s->gone)
        arm(h, s, delay_ms);
}

/* Exponential backoff from the configured initial interval, capped, with +-20% jitter. */
static int64_t backoff_ms(const struct gw_config *cfg, int attempts);

int64_t gw_retry_delay_ms(const struct gw_config *cfg, int attempts, long status,
                          long retry_after_s)
{
    /* A callback's Retry-After is clamped to an hour before any arithmetic: the header is the
     * receiver's to choose, and a huge value must not overflow. */
    if ((status == 429 || status == 503) && retry_after_s > 0)
        return (int64_t)(retry_after_s > 3600 ? 3600 : retry_after_s) * 1000;
    return backoff_ms(cfg, attempts);
}

static int64_t backoff_ms(const struct gw_config *cfg, int attempts)
{
    int64_t d = cfg->retry_initial_ms;
    for (int i = 1; i < attempts && d < cfg->retry_max_interval_ms; i++)
        d *= 2;
    if (d > cfg->retry_max_interval_ms)
        d = cfg->retry_max_interval_ms;
    unsigned int r = 0;
    gw_random(&r, sizeof(r));
    return d + d * ((int)(r % 41) - 20) / 100;
}

/* Delivered rows leave the outbox in batches: within the next transaction that stores events,
 * or FLUSH_DELAY_MS after the first of them. Removing each in a transaction of its own would
 * write the same pages twice per event. Each commit writes every page it touched, and with many
 * subscriptions that is a leaf of the per-subscription indexes for nearly each row: under a wide
 * load (FLUSH_BUSY_RATE rows a second or more since the last batch, of FLUSH_WIDE subscriptions
 * or more) a batch waits FLUSH_BUSY_DELAY_MS, so that a commit carries many rows for the same
 * pages (a fan-out to a thousand callbacks wrote 30 KB per delivery in batches of about 500
 * rows). With fewer subscriptions a batch touches few pages anyway, and a crash delivers again
 * only what the last 20 ms removed. One batch is written at a time; the next one grows
 * meanwhile, up to FLUSH_MAX. A crash before a batch is committed delivers its events again
 * (at-least-once; webhook-id tells repeats apart). */
#define FLUSH_DELAY_MS 20
#define FLUSH_BUSY_RATE 5000
#define FLUSH_WIDE 64
#define FLUSH_BUSY_DELAY_MS 200
#define FLUSH_MAX 16384

static void on_flush_timer(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct gw_hooks *h = arg;
    h->flush_timer = 0;
    if (h->flushing == 0) /* else when that batch is written */
        gw_delivery_flush(h);
}

/* waiting rows: written now, or when the batch being written is done, or after the delay */
static void flush_soon(struct gw_hooks *h, size_t waiting)
{
    if (h->flushing > 0)
        return; /* flush_done looks again */
    if (waiting >= FLUSH_MAX || (waiting > 0 && h->stopping))
        gw_delivery_flush(h);
    else if (waiting > 0 && h->flush_timer == 0)
        h->flush_timer = gw_loop_timer_add(
            h->loop, h->flush_busy ? FLUSH_BUSY_DELAY_MS : FLUSH_DELAY_MS, on_flush_timer, h);
}

/* Attempts go to the store with the next batch of removals (one transaction for both). */
static void record_attempt(struct gw_hooks *h, struct hsub *s, const struct attempt *a,
                           const struct gw_send_result *res)
{
    if (h->nrec == h->caprec) {
        size_t cap = h->caprec ? h->caprec * 2 : 64;
        struct attempt_rec *r = realloc(h->recs, cap * sizeof(*r));
        if (r == NULL)
            return; /* the log misses one line; the delivery itself is unaffected */
        h->recs = r;
        h->caprec = cap;
    }
    struct attempt_rec *r = &h->recs[h->nrec];
    int64_t now = gw_now_ms();
    r->sub_id = strdup(s->id);
    r->event_id = strdup(a->event_id);
    r->error = res->status == 0 ? strdup(res->error ? res->error : "no answer") : NULL;
    r->answer = res->body && res->body_len > 0 ? strndup(res->body, 256) : NULL;
    if (r->answer != NULL) {
        /* Cut at 256 bytes: drop a UTF-8 sequence left incomplete at the end. */
        size_t n = strlen(r->answer), k = n;
        while (k > 0 && ((unsigned char)r->answer[k - 1] & 0xC0) == 0x80)
            k--;
        if (k > 0 && (unsigned char)r->answer[k - 1] >= 0xC0) {
            unsigned char lead = (unsigned char)r->answer[k - 1];
            size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
            if (n - (k - 1) < need)
                r->answer[k - 1] = '\0';
        }
    }
    r->at_ms = gw_wall_ms() - (now - a->sent_ms);
    r->duration_ms = now - a->sent_ms;
    r->number = a->attempts + 1;
    r->status = res->status;
    if (r->sub_id == NULL || r->event_id == NULL) {
        free(r->sub_id);
        free(r->event_id);
        free(r->error);
        free(r->answer);
        return;
    }
    h->nrec++;
    flush_soon(h, h->nrec);
}

/* Failed attempts recorded on the store's thread: the rows of one POST (a batch dies as a
 * unit), then the subscription's dead letters capped when asked. */
struct failed {
    struct gw_store *st;
    char *sub_id; /* with keep > 0: cap its dead letters at keep */
    int attempts, dead, n, keep;
    int64_t next_at;
    char error[300];
    int64_t seqs[];
};

static void failed_job(void *arg)
{
    struct failed *f = arg;
    for (int i = 0; i < f->n; i++)
        gw_store_delivery_failed(f->st, f->seqs[i], f->attempts, f->next_at, f->error, f->dead);
    int n;
    if (f->keep > 0 && f->sub_id != NULL)
        do
            n = gw_store_dead_prune_count(f->st, f->sub_id, f->keep, 256);
        while (n == 256);
}

static void failed_free(void *arg)
{
    struct failed *f = arg;
    free(f->sub_id);
    free(f);
}

static void record_failed(struct gw_hooks *h, const int64_t *seqs, int n, int attempts,
                          int64_t next_at, const char *error, int dead)
{
    struct failed *f = calloc(1, sizeof(*f) + (size_t)n * sizeof(int64_t));
    if (f == NULL) {
        gw_error("out of memory recording a failed delivery; it is made again");
        return;
    }
    f->st = h->store;
    f->n = n;
    memcpy(f->seqs, seqs, (size_t)n * sizeof(int64_t));
    f->attempts = attempts;
    f->next_at = next_at;
    f->dead = dead;
    snprintf(f->error, sizeof(f->error), "%s", error);
    gw_store_submit(h->store, failed_job, failed_free, f);
}

static void on_result(void *arg, const struct gw_send_result *res)
{
    struct attempt *a = arg;
    struct gw_hooks *h = a->h;
    struct hsub *s = a->s;
    s->inflight = 0;
    /* Removed while in flight, or the gateway is stopping: the delivery stays in the outbox
     * unless it was the subscription that went. */
    if (s->gone) {
        if (!s->fetching)
            gw_hsub_free(s);
        free(a);
        return;
    }
    /* One line per attempt: what was sent where, and how it went. */
    if (res->status > 0)
        gw_info("delivery %s %s attempt %d: HTTP %ld in %lld ms", s->id, a->event_id,
                a->attempts + 1, res->status, (long long)(gw_now_ms() - a->sent_ms));
    else
        gw_info("delivery %s %s attempt %d: %.200s after %lld ms", s->id, a->event_id,
                a->attempts + 1, res->error ? res->error : "no answer",
                (long long)(gw_now_ms() - a->sent_ms));
    record_attempt(h, s, a, res);
    if (res->status >= 200 && res->status < 300) {
        /* Committing each removal would cost a transaction per delivery; they are batched (see
         * gw_delivery_flush). */
        for (int i = 0; i < a->n; i++) {
            if (h->ndone == h->capdone) {
                size_t cap = h->capdone ? h->capdone * 2 : 64;
                struct done_entry *d = realloc(h->done, cap * sizeof(*d));
                if (d != NULL) {
                    h->done = d;
                    h->capdone = cap;
                }
            }
            if (h->ndone < h->capdone)
                h->done[h->ndone++] = (struct done_entry){a->seqs[i], a->events[i]};
            else /* out of memory: its row stays, and is delivered again after a restart */
                gw_error("delivery %lld: out of memory; its outbox row stays",
                         (long long)a->seqs[i]);
        }
        flush_soon(h, h->ndone);
        s->done_seq = a->seqs[a->n - 1];
        gw_pending_add(h, s, -a->n);
        atomic_fetch_add(&gw_status.deliveries_ok, (unsigned long)a->n);
        gw_hist_observe(&gw_status.delivery_latency, (gw_wall_ms() - a->created_ms) * 1000);
        free(a);
        gw_delivery_kick(h, s);
        return;
    }
    /* A read of the queue under way (taken while this was in flight) may predate the failure
     * being written: its rows would carry the old attempts, or a row now dead as live. */
    if (s->fetching)
        s->stale = 1;
    if (res->status == 410) {
        atomic_fetch_add(&gw_status.attempts_gone, 1);
        free(a);
        if (gw_hooks_remove(h, s, "the callback answered 410 Gone", NULL, NULL) != 0)
            gw_error("subscription %s: out of memory; it stays", s->id);
        return;
    }
    atomic_fetch_add(&gw_status.deliveries_failed, 1);
    atomic_fetch_add(
        res->status > 0 ? &gw_status.attempts_http_error : &gw_status.attempts_network_error, 1);
    char error[300];
    if (res->status == 0)
        snprintf(error, sizeof(error), "%.280s", res->error ? res->error : "no answer");
    else if (res->status >= 300 && res->status < 400)
        snprintf(error, sizeof(error), "HTTP %ld (redirects are not followed)", res->status);
    else
        snprintf(error, sizeof(error), "HTTP %ld", res->status);
    int64_t now = gw_wall_ms();
    int attempts = a->attempts + 1;
    int dead =
        attempts >= h->cfg->retry_attempts || now - a->created_ms >= h->cfg->retry_max_age_ms;
    int64_t delay = gw_retry_delay_ms(h->cfg, attempts, res->status, res->retry_after_s);
    /* A batch is retried, and dies, as a unit. */
    record_failed(h, a->seqs, a->n, attempts, dead ? now : now + delay, error, dead);
    for (int i = 0; i < a->n; i++) {
        for (int k = s->qpos; k < s->qn; k++) { /* the queue's entries, as stored now */
            if (s->q[k].seq == a->seqs[i]) {
                s->q[k].attempts = attempts;
                s->q[k].next_at = dead ? now : now + delay;
            }
        }
    }
    if (dead) {
        for (int i = 0; i < a->n; i++) {
            queue_drop(s, a->seqs[i]);
            gw_dead_letter_added(h, s);
        }
        gw_pending_add(h, s, -a->n);
        gw_warn("subscription %s: event moved to dead letters after %d attempts (%s)", s->id,
                attempts, error);
        free(a);
        gw_delivery_kick(h, s);
        return;
    }
    gw_debug("subscription %s: delivery failed (%s), retry in %lld ms", s->id, error,
             (long long)delay);
    free(a);
    arm(h, s, delay);
}

void gw_dead_letter_added(struct gw_hooks *h, struct hsub *s)
{
    atomic_fetch_add(&gw_status.dead_letters, 1);
    /* Dead letters are capped per subscription: every tenth of the cap, the oldest beyond it go
     * (an indexed delete of at most a few hundred rows, so the loop is never held long). */
    int every = h->cfg->dead_letter_max / 10 > 0 ? h->cfg->dead_letter_max / 10 : 1;
    if (++s->dead_added < every)
        return;
    s->dead_added = 0;
    struct failed *f = calloc(1, sizeof(*f));
    if (f == NULL || (f->sub_id = strdup(s->id)) == NULL) {
        free(f);
        return; /* capped the next time */
    }
    f->st = h->store;
    f->keep = h->cfg->dead_letter_max;
    gw_store_submit(h->store, failed_job, failed_free, f);
}

/* The delivery body: the stored event plus this subscription's id. The stored event is a compact
 * JSON object written by jansson, so the field is spliced in before its closing brace instead
 * of parsing and re-serializing the event for every subscriber. */
static char *compose(const char *event_body, const char *sub_id)
{
    size_t len = strlen(event_body);
    if (len < 2 || event_body[0] != '{' || event_body[len - 1] != '}')
        return NULL;
    /* The gateway's ids are letters, digits and '_' ('-' is as safe): quoted as they are;
     * anything else is escaped by jansson. */
    size_t idlen =
        strspn(sub_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-");
    char *escaped = NULL;
    if (sub_id[idlen] != '\0') {
        json_t *id = json_string(sub_id);
        escaped = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
        json_decref(id);
        if (escaped == NULL)
            return NULL;
    }
    static const char field[] = "\"subscription\":";
    size_t qlen = escaped ? strlen(escaped) : idlen + 2;
    char *body = malloc(len + 1 + (sizeof(field) - 1) + qlen + 2);
    if (body != NULL) {
        char *p = body;
        memcpy(p, event_body, len - 1);
        p += len - 1;
        if (len > 2)
            *p++ = ',';
        memcpy(p, field, sizeof(field) - 1);
        p += sizeof(field) - 1;
        if (escaped != NULL) {
            memcpy(p, escaped, qlen);
            p += qlen;
        } else {
            *p++ = '"';
            memcpy(p, sub_id, idlen);
            p += idlen;
            *p++ = '"';
        }
        *p++ = '}';
        *p = '\0';
    }
    free(escaped);
    return body;
}

/* The n deliveries at the head of s's queue as one JSON array of events. */
static char *compose_batch(struct hsub *s, int n)
{
    size_t cap = 2, len = 1;
    char **parts = calloc((size_t)n, sizeof(*parts));
    if (parts == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        parts[i] = compose(s->q[s->qpos + i].body, s->id);
        if (parts[i] == NULL) {
            for (int k = 0; k < i; k++)
                free(parts[k]);
            free(parts);
            return NULL;
        }
        cap += strlen(parts[i]) + 1;
    }
    char *body = malloc(cap + 1);
    if (body != NULL) {
        body[0] = '[';
        for (int i = 0; i < n; i++) {
            size_t l = strlen(parts[i]);
            memcpy(body + len, parts[i], l);
            len += l;
            body[len++] = i + 1 < n ? ',' : ']';
        }
        body[len] = '\0';
    }
    for (int i = 0; i < n; i++)
        free(parts[i]);
    free(parts);
    return body;
}

/* A batch waited max_wait_ms: it goes with what has come (read again from the store). */
static void on_batch_timer(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct hsub *s = arg;
    s->timer = 0;
    s->batch_ready = 1;
    queue_clear(s);
    gw_delivery_kick(s->hn->hooks, s);
}

void gw_delivery_kick(struct gw_hooks *h, struct hsub *s)
{
    if (s->fetching) {
        s->rekick = 1; /* what the read under way brings may predate why it was kicked */
        return;
    }
    if (s->inflight || s->timer || s->gone || s->deleting || !s->owned || h->stopping)
        return;
    struct gw_store_delivery *hd = queue_head(h, s);
    if (hd == NULL)
        return;
    const struct gw_store_delivery d = *hd; /* stays in the queue until answered */
    int64_t now = gw_wall_ms();
    if (d.next_at > now) {
        arm(h, s, d.next_at - now);
        return;
    }
    /* Batched delivery: the due deliveries at the head of the queue, up to the subscription's
     * limits, in one POST; with max_wait_ms, a lone event waits that long for company. */
    int n = 1;
    char msg_id[96];
    snprintf(msg_id, sizeof(msg_id), "%s", d.event_id);
    if (s->batch_max > 0) {
        size_t bytes = strlen(d.body);
        while (n < s->batch_max && s->qpos + n < s->qn && s->q[s->qpos + n].next_at <= now &&
               bytes + strlen(s->q[s->qpos + n].body) + 64 <= s->batch_bytes) {
            bytes += strlen(s->q[s->qpos + n].body) + 64;
            n++;
        }
        /* More are stored than the queue holds (stored after it was read): read it again, once,
         * and batch what is there. */
        if (n < s->batch_max && s->pending > n && s->qpos + n == s->qn && !s->reread) {
            s->reread = 1;
            queue_clear(s);
            queue_head(h, s); /* being read: the kick comes again */
            return;
        }
        s->reread = 0;
        if (n < s->batch_max && s->batch_wait_ms > 0 && !s->batch_ready &&
            now < d.created_ms + s->batch_wait_ms && s->pending <= n) {
            s->timer = gw_loop_timer_add(h->loop, d.created_ms + s->batch_wait_ms - now,
                                         on_batch_timer, s);
            return;
        }
        s->batch_ready = 0;
        snprintf(msg_id, sizeof(msg_id), "batch_%.60s_%d", d.event_id, n);
    }
    /* A WebSub subscriber gets the entry as a feed, signed as WebSub says; a webhook the event
     * as JSON (a batch: an array of events), signed per Standard Webhooks. */
    char *body = NULL;
    char sig[128], hid[200], hts[64], hsig[160], ws[3][2200];
    long long ts = now / 1000;
    int bad = s->topic ? gw_websub_compose(h, s, d.body, &body, ws, sizeof(ws[0])) != 0
                       : (body = s->batch_max > 0 ? compose_batch(s, n) : compose(d.body, s->id)) ==
                                 NULL ||
                             gw_sign(s->key, (size_t)s->keylen, msg_id, ts, body, strlen(body), sig,
                                     sizeof(sig)) != 0;
    struct attempt *a = calloc(1, sizeof(*a) + 2 * (size_t)n * sizeof(int64_t));
    if (bad || a == NULL) {
        /* A stored event that cannot be composed would block the queue forever. */
        gw_error("subscription %s: cannot compose event %s; moved to dead letters", s->id,
                 d.event_id);
        record_failed(h, &d.seq, 1, d.attempts, now, "cannot compose", 1);
        gw_pending_add(h, s, -1);
        queue_drop(s, d.seq);
        free(body);
        free(a);
        arm(h, s, 0);
        return;
    }
    const char *headers[] = {"Content-Type: application/json", hid, hts, hsig, NULL};
    if (s->topic != NULL) {
        headers[0] = ws[0];
        headers[1] = ws[1];
        headers[2] = ws[2][0] ? ws[2] : NULL;
        headers[3] = NULL;
    } else {
        snprintf(hid, sizeof(hid), "webhook-id: %s", msg_id);
        snprintf(hts, sizeof(hts), "webhook-timestamp: %lld", ts);
        snprintf(hsig, sizeof(hsig), "webhook-signature: %s", sig);
    }
    struct gw_send_req req = {
        "POST", s->callback, headers, body, strlen(body), h->cfg->delivery_timeout_ms, 0,
        1}; /* the body is taken */
    a->h = h;
    a->s = s;
    a->seq = d.seq;
    a->event = d.event;
    a->created_ms = d.created_ms;
    a->attempts = d.attempts;
    a->sent_ms = gw_now_ms();
    snprintf(a->event_id, sizeof(a->event_id), "%s", msg_id);
    a->n = n;
    a->seqs = a->ids;
    a->events = a->ids + n;
    for (int i = 0; i < n; i++) {
        a->seqs[i] = s->q[s->qpos + i].seq;
        a->events[i] = s->q[s->qpos + i].event;
    }
    s->inflight = 1;
    if (h->sender->send(h->sender, &req, on_result, a) != 0) {
        s->inflight = 0;
        free(a);
        arm(h, s, backoff_ms(h->cfg, 1));
    }
}

void gw_pending_add(struct gw_hooks *h, struct hsub *s, int64_t n)
{
    s->pending += n;
    h->pending_total += n;
    /* shown as at least zero: on a shared store a count can dip below it between two recounts
     * (hookcmd.c, backlog_json) */
    atomic_store_explicit(&gw_status.pending, (long)(h->pending_total > 0 ? h->pending_total : 0),
                          memory_order_relaxed);
}

/* A batch of removals and attempts, taken from the loop's buffers to be written. */
struct gw_flush {
    struct gw_hooks *h; /* told when written (gw_delivery_flush) */
    struct gw_store *st;
    size_t ndone, nrec, nprune;
    int64_t *seqs, *events;
    struct attempt_rec *recs;
    char **prune; /* subscriptions whose attempts are capped at keep */
    int keep;
};

struct gw_flush *gw_delivery_flush_take(struct gw_hooks *h)
{
    if (h->flush_timer) {
        gw_loop_timer_cancel(h->loop, h->flush_timer);
        h->flush_timer = 0;
    }
    if (h->ndone == 0 && h->nrec == 0)
        return NULL;
    struct gw_flush *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL; /* written with a later batch */
    f->st = h->store;
    f->seqs = malloc(h->ndone * sizeof(int64_t) * 2 + 1);
    f->prune = calloc(h->nrec + 1, sizeof(char *));
    if (f->seqs == NULL || f->prune == NULL) {
        free(f->seqs);
        free(f->prune);
        free(f);
        return NULL;
    }
    f->events = f->seqs + h->ndone;
    for (size_t i = 0; i < h->ndone; i++) {
        f->seqs[i] = h->done[i].seq;
        f->events[i] = h->done[i].event;
    }
    f->ndone = h->ndone;
    h->ndone = 0;
    /* The attempts move with their array; each subscription keeps its newest --attempts-max,
     * capped every tenth of that. */
    f->recs = h->recs;
    f->nrec = h->nrec;
    h->recs = NULL;
    h->nrec = h->caprec = 0;
    f->keep = h->cfg->attempts_max;
    int every = h->cfg->attempts_max / 10 > 0 ? h->cfg->attempts_max / 10 : 1;
    for (size_t i = 0; i < f->nrec; i++) {
        struct hsub *sub = gw_hooks_sub(h, f->recs[i].sub_id);
        if (sub != NULL && ++sub->attempts_added >= every) {
            sub->attempts_added = 0;
            f->prune[f->nprune++] = f->recs[i].sub_id;
        }
    }
    return f;
}

/* By subscription, then as they came (the array's order). */
static int cmp_rec(const void *a, const void *b)
{
    const struct attempt_rec *x = *(const struct attempt_rec *const *)a;
    const struct attempt_rec *y = *(const struct attempt_rec *const *)b;
    int c = strcmp(x->sub_id, y->sub_id);
    return c != 0 ? c : (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void gw_delivery_flush_run(struct gw_flush *f)
{
    if (f->ndone > 0)
        gw_store_delivery_done_many(f->st, f->seqs, f->events, f->ndone);
    /* Written by subscription: the log's index is by subscription, and a batch larger than
     * SQLite's page cache spills its dirty pages; in arrival order, a fan-out's batch came back
     * to each leaf after it had spilled and wrote it again. Grouped, each subscription's rows
     * go to their leaf at once (SQLite orders that index by a hash of the id, PostgreSQL by the
     * id itself, so only PostgreSQL's leaves are also visited in order). The order within one
     * subscription is kept, and so the order of its ids. */
    const struct attempt_rec **order = malloc(f->nrec * sizeof(*order) + 1);
    for (size_t i = 0; order != NULL && i < f->nrec; i++)
        order[i] = &f->recs[i];
    if (order != NULL)
        qsort(order, f->nrec, sizeof(*order), cmp_rec);
    for (size_t i = 0; i < f->nrec; i++) {
        const struct attempt_rec *r = order != NULL ? order[i] : &f->recs[i];
        struct gw_store_attempt a = {0,         r->sub_id, r->at_ms,       r->event_id, r->number,
                                     r->status, r->error,  r->duration_ms, r->answer};
        gw_store_attempt_add(f->st, &a);
    }
    free(order);
    qsort(f->prune, f->nprune, sizeof(*f->prune), cmp_str);
    for (size_t i = 0; i < f->nprune; i++)
        if (i == 0 || strcmp(f->prune[i], f->prune[i - 1]) != 0)
            gw_store_attempts_prune_count(f->st, f->prune[i], f->keep);
}

void gw_delivery_flush_free(struct gw_flush *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nrec; i++) {
        struct attempt_rec *r = &f->recs[i];
        free(r->sub_id);
        free(r->event_id);
        free(r->error);
        free(r->answer);
    }
    free(f->recs);
    free(f->prune);
    free(f->seqs);
    free(f);
}

void gw_delivery_flush_in_tx(struct gw_hooks *h)
{
    struct gw_flush *f = gw_delivery_flush_take(h);
    if (f != NULL)
        gw_delivery_flush_run(f);
    gw_delivery_flush_free(f);
}

static void flush_job(void *arg)
{
    struct gw_flush *f = arg;
    int tx = gw_store_begin(f->st) == 0;
    gw_delivery_flush_run(f);
    if (tx && gw_store_commit(f->st) != 0)
        gw_store_rollback(f->st);
}

/* Whether a batch's attempts span FLUSH_WIDE subscriptions or more. */
static int flush_wide(const struct attempt_rec *recs, size_t n)
{
    struct gw_hmap *subs = gw_hmap_new();
    for (size_t i = 0; subs != NULL && i < n && gw_hmap_size(subs) < FLUSH_WIDE; i++) {
        size_t len = strlen(recs[i].sub_id);
        if (gw_hmap_get(subs, recs[i].sub_id, len) == NULL &&
            gw_hmap_put(subs, recs[i].sub_id, len, recs[i].sub_id) != 0)
            break;
    }
    int wide = subs != NULL && gw_hmap_size(subs) >= FLUSH_WIDE;
    gw_hmap_free(subs);
    return wide;
}

static void flush_done(void *arg)
{
    struct gw_flush *f = arg;
    struct gw_hooks *h = f->h;
    gw_delivery_flush_free(f);
    h->flushing--;
    flush_soon(h, h->ndone > h->nrec ? h->ndone : h->nrec);
}

void gw_delivery_flush(struct gw_hooks *h)
{
    struct gw_flush *f = gw_delivery_flush_take(h);
    if (f == NULL)
        return;
    f->h = h;
    h->flushing++;
    /* rows per second since the last batch, not its size: a batch that waited longer holds
     * more rows at the same rate */
    int64_t now = gw_now_ms(), rows = (int64_t)(f->ndone > f->nrec ? f->ndone : f->nrec);
    h->flush_busy =
        rows * 1000 >= FLUSH_BUSY_RATE * (now - h->flush_last_ms) && flush_wide(f->recs, f->nrec);
    h->flush_last_ms = now;
    gw_store_submit(h->store, flush_job, flush_done, f);
}
