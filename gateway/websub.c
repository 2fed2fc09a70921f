/* The WebSub hub (W3C Recommendation, 2018). A subscription request is answered 202 at once;
 * the hub then verifies the subscriber's intent with a GET carrying a challenge, and only an
 * echo of it activates, renews or ends the subscription. A refused request (a topic that names
 * no node, a node that cannot be followed) is told to the callback as hub.mode=denied.
 *
 * A WebSub subscription is a webhook subscription of the registry with a topic and a lease: it
 * shares the durable outbox, the order, the retries and the dead letters, and only what is sent
 * differs (websub_compose: the new entry as an Atom feed, Link headers, X-Hub-Signature). */
#include "websub.h"

#include "../http/atom.h"
#include "../http/router.h"
#include "itemid.h"
#include "log.h"
#include "loop.h"
#include "webhooks_int.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The n bytes at s percent-decoded, malloc'd; NULL when malformed, empty, longer than 1024
 * bytes decoded, or holding a control character. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    long len = out ? gw_percent_decode(s, n, out, n + 1, 0) : -1;
    for (long i = 0; i < len; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            len = -1;
    if (len <= 0 || len > 1024) {
        free(out);
        return NULL;
    }
    return out;
}

int gw_websub_topic(const char *topic, const char *default_service, char **service, char **node,
                    char *err, size_t errlen)
{
    *service = *node = NULL;
    int bad_service = 0;
    if (strncmp(topic, "xmpp:", 5) == 0) {
        const char *q = strstr(topic + 5, "?;node=");
        if (q == NULL) {
            snprintf(err, errlen,
                     "hub.topic: an xmpp: topic names a node (xmpp:SERVICE?;node=NODE)");
            return -1;
        }
        const char *v = q + 7;
        *service = pct_decode(topic + 5, (size_t)(q - topic - 5));
        *node = pct_decode(v, strcspn(v, ";"));
    } else if (strncmp(topic, "http://", 7) == 0 || strncmp(topic, "https://", 8) == 0) {
        const char *path = strchr(strstr(topic, "://") + 3, '/');
        const char *query = path ? strchr(path, '?') : NULL;
        size_t plen = path ? (query ? (size_t)(query - path) : strlen(path)) : 0;
        const char *at = NULL;
        for (const char *p = path; p && (p = strstr(p, "/v1/nodes/")) && p < path + plen; p++)
            if (at == NULL)
                at = p;
        if (at == NULL || plen < 15 || strncmp(path + plen - 5, "/feed", 5) != 0 ||
            path + plen - 5 <= at + 10) {
            snprintf(err, errlen,
                     "hub.topic: not a topic of this hub (a node's feed, …/v1/nodes/NODE/feed, or "
                     "xmpp:SERVICE?;node=NODE)");
            return -1;
        }
        *node = pct_decode(at + 10, (size_t)(path + plen - 5 - (at + 10)));
        int given = 0;
        for (const char *p = query ? query + 1 : NULL; p && *p; p += strcspn(p, "&"), p += !!*p)
            if (strncmp(p, "service=", 8) == 0 && !given) {
                given = 1;
                *service = pct_decode(p + 8, strcspn(p + 8, "&"));
                if (*service == NULL)
                    bad_service = 1;
            }
        if (!given && default_service != NULL)
            *service = strdup(default_service);
    } else {
        snprintf(err, errlen, "hub.topic: an http(s) or xmpp: URL");
        return -1;
    }
    if (*service == NULL && (default_service != NULL || strncmp(topic, "xmpp:", 5) == 0))
        bad_service = 1;
    if (*service != NULL && strpbrk(*service, " /") == *service)
        bad_service = 1;
    if (*node == NULL || bad_service) {
        free(*service);
        free(*node);
        *service = *node = NULL;
        snprintf(err, errlen, "hub.topic: the node or service it names is malformed");
        return -1;
    }
    return 0;
}

int gw_websub_alg_known(const char *alg)
{
    return alg != NULL && (strcmp(alg, "sha1") == 0 || strcmp(alg, "sha256") == 0 ||
                           strcmp(alg, "sha384") == 0 || strcmp(alg, "sha512") == 0);
}

int gw_websub_sign(const char *alg, const char *secret, const char *body, size_t len, char *out,
                   size_t outlen)
{
    if (!gw_websub_alg_known(alg))
        return -1;
    const EVP_MD *md = EVP_get_digestbyname(alg);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (md == NULL || HMAC(md, secret, (int)strlen(secret), (const unsigned char *)body, len, mac,
                           &maclen) == NULL)
        return -1;
    size_t need = strlen(alg) + 1 + 2 * (size_t)maclen + 1;
    if (need > outlen)
        return -1;
    int o = snprintf(out, outlen, "%s=", alg);
    gw_hex(mac, maclen, out + o);
    return 0;
}

int gw_websub_parse(struct hsub *s, const char *websub)
{
    json_t *j = json_loads(websub, 0, NULL);
    const char *topic = json_string_value(json_object_get(j, "topic"));
    const char *alg = json_string_value(json_object_get(j, "alg"));
    json_t *expires = json_object_get(j, "expires");
    char *t = topic ? strdup(topic) : NULL;
    if (t == NULL || !json_is_integer(expires)) {
        free(t);
        json_decref(j);
        return -1;
    }
    free(s->topic);
    s->topic = t;
    s->expires_ms = json_integer_value(expires);
    snprintf(s->alg, sizeof(s->alg), "%s", gw_websub_alg_known(alg) ? alg : "sha256");
    const char *format = json_string_value(json_object_get(j, "format"));
    snprintf(s->format, sizeof(s->format), "%s",
             format && (strcmp(format, "rss") == 0 || strcmp(format, "json") == 0) ? format
                                                                                   : "atom");
    json_decref(j);
    return 0;
}

char *gw_websub_describe(const struct hsub *s)
{
    json_t *j =
        json_pack("{s:s, s:I, s:s, s:s}", "topic", s->topic, "expires", (json_int_t)s->expires_ms,
                  "alg", s->alg, "format", s->format[0] ? s->format : "atom");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

int gw_websub_compose(const struct gw_hooks *h, const struct hsub *s, const char *event_body,
                      char **body, char hdr[][2200], size_t hdrlen)
{
    *body = NULL;
    json_t *ev = json_loads(event_body, 0, NULL);
    json_t *item = json_object_get(ev, "item");
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(item) || type == NULL || strcmp(type, "item.published") != 0) {
        json_decref(ev);
        return -1;
    }
    json_t *items = json_pack("{s:[O]}", "items", item);
    char hub[1100];
    snprintf(hub, sizeof(hub), "%s/websub", h->cfg->public_url);
    /* The topic's own content type: a feed fetched as RSS or JSON Feed is distributed so. */
    const char *ctype = "application/atom+xml; charset=utf-8";
    if (items == NULL)
        *body = NULL;
    else if (strcmp(s->format, "rss") == 0 && json_is_object(json_object_get(item, "payload"))) {
        *body = gw_rss_feed(items, s->node, s->topic, hub);
        ctype = "application/rss+xml; charset=utf-8";
    } else if (strcmp(s->format, "json") == 0) {
        *body = gw_json_feed(items, s->node, s->topic, hub);
        ctype = "application/feed+json";
    } else {
        *body = gw_atom_feed(items, s->service, s->node, s->topic, hub, gw_wall_ms());
    }
    json_decref(items);
    json_decref(ev);
    if (*body == NULL)
        return -1;
    snprintf(hdr[0], hdrlen, "Content-Type: %s", ctype);
    /* The topic first: some subscriber libraries read only the first link of the header. */
    snprintf(hdr[1], hdrlen, "Link: <%s>; rel=\"self\", <%s>; rel=\"hub\"", s->topic, hub);
    hdr[2][0] = '\0';
    char sig[160];
    if (s->secret[0] != '\0') {
        if (gw_websub_sign(s->alg, s->secret, *body, strlen(*body), sig, sizeof(sig)) != 0) {
            free(*body);
            *body = NULL;
            return -1;
        }
        snprintf(hdr[2], hdrlen, "X-Hub-Signature: %s", sig);
    }
    return 0;
}

/* ---- leases ---- */

static void on_lease(struct gw_loop *loop, void *arg);

void gw_websub_arm(struct gw_hooks *h, struct hsub *s)
{
    if (s->lease_timer)
        gw_loop_timer_cancel(h->loop, s->lease_timer);
    int64_t left = s->expires_ms - gw_wall_ms();
    s->lease_timer = gw_loop_timer_add(h->loop, left > 0 ? left : 0, on_lease, s);
}

/* Reads a subscription's secret and lease from the store again (another gateway may have
 * renewed it), on the store's thread; then, on the loop, `then` with found: 1 when read, 0
 * when it is no longer stored, -1 when the store failed. */
struct rereading {
    struct gw_hooks *h;
    struct gw_store *st;
    char *id;
    struct gw_store_sub row;
    int found;
    void (*then)(struct gw_hooks *h, struct hsub *s, int found);
};

static void reread_job(void *arg)
{
    struct rereading *r = arg;
    r->found = gw_store_sub_get(r->st, r->id, &r->row);
}

static void reread_done(void *arg)
{
    struct rereading *r = arg;
    struct hsub *s = gw_hooks_sub(r->h, r->id);
    int found = r->found;
    if (s != NULL && found == 1) {
        char *secret = strdup(r->row.secret);
        if (secret == NULL || r->row.websub == NULL || gw_websub_parse(s, r->row.websub) != 0) {
            free(secret);
            found = -1;
        } else {
            memset(s->secret, 0, strlen(s->secret));
            free(s->secret);
            s->secret = secret;
        }
    }
    if (s != NULL)
        r->then(r->h, s, found);
    if (r->row.secret != NULL)
        memset(r->row.secret, 0, strlen(r->row.secret));
    if (r->found == 1)
        gw_store_sub_clear(&r->row);
    free(r->id);
    free(r);
}

static int reread(struct gw_hooks *h, struct hsub *s,
                  void (*then)(struct gw_hooks *h, struct hsub *s, int found))
{
    struct rereading *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->id = strdup(s->id)) == NULL) {
        free(r);
        return -1;
    }
    r->h = h;
    r->st = h->store;
    r->then = then;
    gw_store_submit(h->store, reread_job, reread_done, r);
    return 0;
}

static void rearm(struct gw_hooks *h, struct hsub *s, int found)
{
    if (found == 1)
        gw_websub_arm(h, s);
}

void gw_websub_renewed(struct gw_hooks *h, struct hsub *s)
{
    reread(h, s, rearm);
}

static void on_lease(struct gw_loop *loop, void *arg);

/* The store refused (it is away): the lease is ended again in 5 s. */
static void lease_ended(struct gw_hooks *h, const char *id, int rc, void *arg)
{
    (void)arg;
    struct hsub *s = rc != 0 ? gw_hooks_sub(h, id) : NULL;
    if (s != NULL && s->lease_timer == 0)
        s->lease_timer = gw_loop_timer_add(h->loop, 5000, on_lease, s);
}

static void lease_checked(struct gw_hooks *h, struct hsub *s, int found);

static void on_lease(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct hsub *s = arg;
    struct gw_hooks *h = s->hn->hooks; /* the lease timer runs only while s is attached */
    s->lease_timer = 0;
    if (!h->shared) {
        lease_checked(h, s, 1);
        return;
    }
    /* Another gateway may have renewed it; the one that delivers it ends it. */
    if (reread(h, s, lease_checked) != 0)
        s->lease_timer = gw_loop_timer_add(h->loop, 5000, on_lease, s);
}

static void lease_checked(struct gw_hooks *h, struct hsub *s, int found)
{
    if (s->lease_timer != 0 || s->deleting)
        return; /* armed again meanwhile (renewed), or being removed */
    if (h->shared) {
        if (found == 0)
            return; /* removed: the store's notification takes it out of memory */
        /* Renewed (or the timer ran a moment early: it keeps the monotonic clock, the lease
         * the wall clock): again when it ends. The store away, or another gateway's to end:
         * look again in 5 s. */
        int64_t left = s->expires_ms - gw_wall_ms();
        if (found > 0 && left > 0) {
            s->lease_timer = gw_loop_timer_add(h->loop, left + 1, on_lease, s);
            return;
        }
        if (found < 0 || !s->owned) {
            s->lease_timer = gw_loop_timer_add(h->loop, 5000, on_lease, s);
            return;
        }
    }
    gw_info("subscription %s: its WebSub lease on %s ended", s->id, s->topic);
    if (gw_hooks_remove(h, s, "its WebSub lease ended", lease_ended, NULL) != 0)
        s->lease_timer = gw_loop_timer_add(h->loop, 5000, on_lease, s); /* out of memory */
}

/* ---- requests ---- */

struct wsreq {
    struct gw_hooks *h;
    int subscribe;
    char *service, *node, *topic, *callback, *secret;
    char alg[8];
    char format[8];
    int64_t lease_ms;
    char challenge[65];
};

static void wsreq_free(struct wsreq *w)
{
    if (w == NULL)
        return;
    free(w->service);
    free(w->node);
    free(w->topic);
    free(w->callback);
    if (w->secret)
        memset(w->secret, 0, strlen(w->secret));
    free(w->secret);
    free(w);
}

/* callback?hub.mode=MODE&hub.topic=TOPIC plus extra ("&k=v…", already encoded), into url. */
static void callback_url(const struct wsreq *w, const char *mode, const char *extra, char *url,
                         size_t cap)
{
    char topic[3200];
    gw_url_encode(w->topic, topic, sizeof(topic));
    snprintf(url, cap, "%s%shub.mode=%s&hub.topic=%s%s", w->callback,
             strchr(w->callback, '?') ? "&" : "?", mode, topic, extra);
}

static void on_denial_sent(void *arg, const struct gw_send_result *res)
{
    struct wsreq *w = arg;
    gw_info("websub: denial of %s for %s sent (HTTP %ld)", w->callback, w->topic, res->status);
    wsreq_free(w);
}

/* Tells the callback the hub refused (hub.mode=denied); frees w. */
static void deny(struct wsreq *w, const char *reason)
{
    gw_info("websub: %s of %s to %s denied: %s", w->subscribe ? "subscription" : "unsubscription",
            w->callback, w->topic, reason);
    char enc[1200], extra[1300], url[8192];
    gw_url_encode(reason, enc, sizeof(enc));
    snprintf(extra, sizeof(extra), "&hub.reason=%s", enc);
    callback_url(w, "denied", extra, url, sizeof(url));
    struct gw_send_req req = {"GET", url, NULL, NULL, 0, w->h->cfg->delivery_timeout_ms, 0, 0};
    if (w->h->sender->send(w->h->sender, &req, on_denial_sent, w) != 0)
        wsreq_free(w);
}

/* The WebSub subscription of callback to topic on its node, or NULL. */
static struct hsub *find(struct gw_hooks *h, const struct wsreq *w)
{
    struct hnode *hn = gw_hooks_find_node(h, w->service, w->node);
    for (struct hsub *s = hn ? hn->subs : NULL; s; s = s->node_next)
        if (s->topic && strcmp(s->topic, w->topic) == 0 && strcmp(s->callback, w->callback) == 0)
            return s;
    return NULL;
}

static void on_created(struct gw_cmd *cmd)
{
    struct wsreq *w = cmd->done_arg;
    if (cmd->status >= 300) {
        const char *detail = json_string_value(json_object_get(cmd->result, "detail"));
        const char *title = json_string_value(json_object_get(cmd->result, "title"));
        char reason[600];
        snprintf(reason, sizeof(reason), "%s", detail ? detail : title ? title : "refused");
        gw_cmd_free(cmd);
        deny(w, reason);
        return;
    }
    gw_info("websub: %s subscribed to %s as %s", w->callback, w->topic,
            json_string_value(json_object_get(cmd->result, "id")));
    gw_cmd_free(cmd);
    wsreq_free(w);
}

/* The new lease and secret, stored (on the store's thread) before they are used. */
struct renewing {
    struct gw_hooks *h;
    struct gw_store *st;
    char *id, *secret, *desc;
    int64_t expires_ms, lease_ms;
    char alg[8], format[8];
    int shared, rc;
};

static void renew_job(void *arg)
{
    struct renewing *r = arg;
    r->rc = gw_store_sub_renew(r->st, r->id, r->secret, r->desc) == 1 &&
                    (!r->shared || gw_store_notify(r->st, 'u', r->id) == 0)
                ? 0
                : -1;
}

static void renew_done(void *arg)
{
    struct renewing *r = arg;
    struct hsub *s = gw_hooks_sub(r->h, r->id);
    if (r->rc != 0) {
        gw_error("websub: subscription %s could not be renewed", r->id);
    } else if (s != NULL) {
        memset(s->secret, 0, strlen(s->secret));
        free(s->secret);
        s->secret = r->secret;
        r->secret = NULL;
        s->expires_ms = r->expires_ms;
        memcpy(s->alg, r->alg, sizeof(s->alg));
        memcpy(s->format, r->format, sizeof(s->format));
        gw_websub_arm(r->h, s);
        gw_info("websub: subscription %s renewed for %lld s", s->id,
                (long long)(r->lease_ms / 1000));
    }
    if (r->secret != NULL)
        memset(r->secret, 0, strlen(r->secret));
    free(r->secret);
    free(r->desc);
    free(r->id);
    free(r);
}

static void renew(struct gw_hooks *h, struct hsub *s, struct wsreq *w)
{
    struct hsub next = *s;
    next.topic = s->topic;
    next.expires_ms = gw_wall_ms() + w->lease_ms;
    memcpy(next.alg, w->alg, sizeof(next.alg));
    memcpy(next.format, w->format, sizeof(next.format));
    struct renewing *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->desc = gw_websub_describe(&next)) == NULL ||
        (r->secret = strdup(w->secret ? w->secret : "")) == NULL ||
        (r->id = strdup(s->id)) == NULL) {
        gw_error("websub: subscription %s could not be renewed (out of memory)", s->id);
        if (r != NULL) {
            free(r->desc);
            free(r->secret);
        }
        free(r);
        return;
    }
    r->h = h;
    r->st = h->store;
    r->shared = h->shared;
    r->expires_ms = next.expires_ms;
    r->lease_ms = w->lease_ms;
    memcpy(r->alg, w->alg, sizeof(r->alg));
    memcpy(r->format, w->format, sizeof(r->format));
    gw_store_submit(h->store, renew_job, renew_done, r);
}

static void activate(struct wsreq *w)
{
    struct gw_hooks *h = w->h;
    struct hsub *s = find(h, w);
    if (s != NULL) {
        renew(h, s, w);
        wsreq_free(w);
        return;
    }
    char id[GW_ITEMID_LEN + 5] = "sub_";
    struct gw_cmd *cmd = gw_cmd_new(GW_OP_SUB_CREATE);
    if (cmd == NULL || gw_itemid_new(id + 4) != 0) {
        gw_cmd_free(cmd);
        wsreq_free(w);
        return;
    }
    struct hsub lease = {.topic = w->topic, .expires_ms = gw_wall_ms() + w->lease_ms};
    memcpy(lease.alg, w->alg, sizeof(lease.alg));
    memcpy(lease.format, w->format, sizeof(lease.format));
    char *desc = gw_websub_describe(&lease);
    s = desc ? gw_hsub_new(id, w->service, w->node, w->callback, w->secret ? w->secret : "",
                           gw_event_kind_bit("items"), gw_wall_ms(), desc)
             : NULL;
    free(desc);
    if (s == NULL) {
        gw_cmd_free(cmd);
        wsreq_free(w);
        return;
    }
    cmd->done = on_created;
    cmd->done_arg = w;
    gw_hooks_create(h, cmd, s);
}

static void unsubscribed(struct gw_hooks *h, const char *id, int rc, void *arg)
{
    (void)h;
    (void)arg;
    if (rc != 0)
        gw_error("websub: subscription %s could not be removed; the store is away", id);
}

static void on_verified(void *arg, const struct gw_send_result *res)
{
    struct wsreq *w = arg;
    if (res->status < 200 || res->status >= 300 || res->body_len != strlen(w->challenge) ||
        !gw_const_eq(res->body, w->challenge)) {
        gw_info("websub: %s of %s to %s not confirmed (%s)",
                w->subscribe ? "subscription" : "unsubscription", w->callback, w->topic,
                res->status == 0                          ? "no answer"
                : res->status < 200 || res->status >= 300 ? "not a 2xx answer"
                                                          : "the answer is not the challenge");
        wsreq_free(w);
        return;
    }
    if (w->subscribe) {
        activate(w);
        return;
    }
    struct hsub *s = find(w->h, w);
    if (s != NULL &&
        gw_hooks_remove(w->h, s, "unsubscribed through the WebSub hub", unsubscribed, NULL) != 0)
        gw_error("websub: subscription %s could not be removed (out of memory)", s->id);
    wsreq_free(w);
}

static char *dup_arg(json_t *args, const char *name)
{
    const char *v = json_string_value(json_object_get(args, name));
    return v ? strdup(v) : NULL;
}

void gw_websub_execute(struct gw_hooks *h, struct gw_cmd *cmd)
{
    json_t *a = cmd->args;
    struct wsreq *w = calloc(1, sizeof(*w));
    const char *mode = json_string_value(json_object_get(a, "mode"));
    const char *denied = json_string_value(json_object_get(a, "denied"));
    if (w == NULL || mode == NULL) {
        free(w);
        gw_cmd_fail(cmd, 500, "Internal error", "out of memory", NULL);
        return;
    }
    if (strcmp(mode, "publish") == 0) {
        free(w);
        gw_feeds_ping(h, cmd, json_string_value(json_object_get(a, "url")));
        return;
    }
    w->h = h;
    w->subscribe = strcmp(mode, "subscribe") == 0;
    w->topic = dup_arg(a, "topic");
    w->callback = dup_arg(a, "callback");
    w->service = dup_arg(a, "service");
    if (w->service == NULL)
        w->service = strdup(h->cfg->service);
    w->node = dup_arg(a, "node");
    w->secret = dup_arg(a, "secret");
    const char *alg = json_string_value(json_object_get(a, "alg"));
    snprintf(w->alg, sizeof(w->alg), "%s", gw_websub_alg_known(alg) ? alg : "sha256");
    int64_t lease = (int64_t)json_integer_value(json_object_get(a, "lease_seconds")) * 1000;
    const struct gw_config *cfg = h->cfg;
    w->lease_ms = lease <= 0                         ? cfg->websub_lease_default_ms
                  : lease < cfg->websub_lease_min_ms ? cfg->websub_lease_min_ms
                  : lease > cfg->websub_lease_max_ms ? cfg->websub_lease_max_ms
                                                     : lease;
    snprintf(w->format, sizeof(w->format), "atom");
    const char *fs, *fn, *ff;
    if ((denied != NULL || w->node == NULL) && gw_feeds_topic(h, w->topic, &fs, &fn, &ff)) {
        /* A feed this gateway fetches: its node is the topic's, in the feed's own format. */
        free(w->service);
        free(w->node);
        w->service = strdup(fs);
        w->node = strdup(fn);
        snprintf(w->format, sizeof(w->format), "%s", ff);
        denied = NULL;
        if (!gw_token_allows_node(cmd->token, w->node))
            denied = "hub.topic: the token may not act on this feed's node";
    }
    char reason[400] = "";
    if (denied != NULL || w->node == NULL || w->service == NULL)
        snprintf(reason, sizeof(reason), "%s",
                 denied ? denied : "hub.topic: not a topic of this hub");
    /* Answered now: the rest is told to the callback (cmd and its arguments go with the
     * answer). */
    gw_cmd_finish(cmd, 202, NULL);
    if (w->topic == NULL || w->callback == NULL) {
        wsreq_free(w);
        return;
    }
    if (reason[0] != '\0') {
        deny(w, reason);
        return;
    }
    unsigned char rnd[24];
    gw_random(rnd, sizeof(rnd));
    gw_hex(rnd, sizeof(rnd), w->challenge);
    char extra[200], url[8192];
    if (w->subscribe)
        snprintf(extra, sizeof(extra), "&hub.challenge=%s&hub.lease_seconds=%lld", w->challenge,
                 (long long)(w->lease_ms / 1000));
    else
        snprintf(extra, sizeof(extra), "&hub.challenge=%s", w->challenge);
    callback_url(w, w->subscribe ? "subscribe" : "unsubscribe", extra, url, sizeof(url));
    struct gw_send_req req = {"GET", url, NULL, NULL, 0, cfg->delivery_timeout_ms, 0, 0};
    if (h->sender->send(h->sender, &req, on_verified, w) != 0) {
        gw_error("websub: cannot start the verification of %s", w->callback);
        wsreq_free(w);
    }
}
