/* Test webhook receiver. */
#include "receiver.h"

#include "harness.h"

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_DELIVERIES 100000

struct it_receiver {
    struct MHD_Daemon *d;
    char url[64];
    pthread_mutex_t lock;
    enum it_mode mode;
    int n, posts, gets, bad_challenge, stopping;
    int active, max_active; /* POSTs being answered now, and the most at once */
    char location[128];
    struct it_delivery *got;
    int ngot;
    int nevents;        /* events in accepted deliveries (a batch counts each) */
    json_t *get_params; /* one object per GET */
};

long long it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct upload {
    char *data;
    size_t len;
};

static void copy_header(struct MHD_Connection *c, const char *name, char *dst, size_t cap)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned int status, const char *body,
                              const char *retry_after, const char *location)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (retry_after)
        MHD_add_response_header(resp, "Retry-After", retry_after);
    if (location)
        MHD_add_response_header(resp, "Location", location);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    json_object_set_new(cls, key, json_string(value ? value : ""));
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)url;
    (void)version;
    struct it_receiver *r = cls;
    struct upload *u = *con_cls;
    if (u == NULL) {
        u = calloc(1, sizeof(*u));
        *con_cls = u;
        return MHD_YES;
    }
    if (*size > 0) {
        u->data = realloc(u->data, u->len + *size + 1);
        memcpy(u->data + u->len, data, *size);
        u->len += *size;
        u->data[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") == 0) {
        const char *ch = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "hub.challenge");
        json_t *params = json_object();
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_param, params);
        pthread_mutex_lock(&r->lock);
        json_array_append_new(r->get_params, params);
        r->gets++;
        int bad = r->bad_challenge;
        pthread_mutex_unlock(&r->lock);
        return answer(c, 200, bad ? "wrong" : (ch ? ch : ""), NULL, NULL);
    }
    pthread_mutex_lock(&r->lock);
    int k = r->posts++;
    enum it_mode mode = r->mode;
    int n = r->n;
    if (++r->active > r->max_active)
        r->max_active = r->active;
    pthread_mutex_unlock(&r->lock);
    unsigned int status = 200;
    const char *ra = NULL;
    if (mode == IT_FAIL || (mode == IT_FAIL_FIRST && k < n))
        status = 500;
    else if (mode == IT_GONE)
        status = 410;
    else if (mode == IT_REDIRECT)
        status = 302;
    else if (mode == IT_BUSY_FIRST && k < n) {
        status = 503;
        ra = "1";
    } else if (mode == IT_HANG) {
        for (int waited = 0; waited < n; waited += 10) {
            usleep(10000);
            pthread_mutex_lock(&r->lock);
            int stop = r->stopping;
            pthread_mutex_unlock(&r->lock);
            if (stop)
                break;
        }
    }
    if (status == 200) {
        pthread_mutex_lock(&r->lock);
        if (r->ngot < MAX_DELIVERIES) {
            struct it_delivery *d = &r->got[r->ngot++];
            d->body = strdup(u->data ? u->data : "");
            d->json = json_loads(d->body, 0, NULL);
            r->nevents += json_is_array(d->json) ? (int)json_array_size(d->json) : 1;
            copy_header(c, "webhook-id", d->id, sizeof(d->id));
            copy_header(c, "webhook-timestamp", d->ts, sizeof(d->ts));
            copy_header(c, "webhook-signature", d->sig, sizeof(d->sig));
            copy_header(c, "Content-Type", d->ctype, sizeof(d->ctype));
            const char *link = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Link");
            const char *hs = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Hub-Signature");
            d->link = link ? strdup(link) : NULL;
            d->hub_sig = hs ? strdup(hs) : NULL;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            d->at_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
            d->at_ms = (long long)(d->at_s * 1000);
        }
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    r->active--;
    pthread_mutex_unlock(&r->lock);
    return answer(c, status, status == 200 ? "ok" : "no", ra, status == 302 ? r->location : NULL);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct upload *u = *con_cls;
    if (u) {
        free(u->data);
        free(u);
    }
    *con_cls = NULL;
}

static struct it_receiver *start(enum it_mode mode, int n, unsigned int flags);

struct it_receiver *it_receiver_start(enum it_mode mode, int n)
{
    return start(mode, n, MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD);
}

struct it_receiver *it_receiver_start_fast(void)
{
    return start(IT_OK, 0, MHD_USE_EPOLL_INTERNAL_THREAD);
}

static struct it_receiver *start(enum it_mode mode, int n, unsigned int flags)
{
    struct it_receiver *r = calloc(1, sizeof(*r));
    r->got = calloc(MAX_DELIVERIES, sizeof(*r->got));
    r->get_params = json_array();
    pthread_mutex_init(&r->lock, NULL);
    r->mode = mode;
    r->n = n;
    int port = 0;
    for (int tries = 0; tries < 20 && r->d == NULL; tries++) {
        port = it_free_port();
        r->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, r,
                                MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                                MHD_OPTION_CONNECTION_TIMEOUT, 30U, MHD_OPTION_END);
    }
    if (r->d == NULL) {
        fprintf(stderr, "cannot start the test receiver\n");
        exit(1);
    }
    snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d/hook", port);
    return r;
}

void it_receiver_stop(struct it_receiver *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    pthread_mutex_unlock(&r->lock);
    MHD_stop_daemon(r->d);
    for (int i = 0; i < r->ngot; i++) {
        free(r->got[i].body);
        free(r->got[i].link);
        free(r->got[i].hub_sig);
        json_decref(r->got[i].json);
    }
    free(r->got);
    json_decref(r->get_params);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

const char *it_receiver_url(struct it_receiver *r)
{
    return r->url;
}

void it_receiver_set_mode(struct it_receiver *r, enum it_mode mode, int n)
{
    pthread_mutex_lock(&r->lock);
    r->mode = mode;
    r->n = n;
    r->posts = 0;
    pthread_mutex_unlock(&r->lock);
}

void it_receiver_redirect(struct it_receiver *r, const char *location)
{
    pthread_mutex_lock(&r->lock);
    snprintf(r->location, sizeof(r->location), "%s", location);
    pthread_mutex_unlock(&r->lock);
}

void it_receiver_bad_challenge(struct it_receiver *r, int bad)
{
    pthread_mutex_lock(&r->lock);
    r->bad_challenge = bad;
    pthread_mutex_unlock(&r->lock);
}

static int read_int(struct it_receiver *r, int *field)
{
    pthread_mutex_lock(&r->lock);
    int v = *field;
    pthread_mutex_unlock(&r->lock);
    return v;
}

int it_receiver_count(struct it_receiver *r)
{
    return read_int(r, &r->ngot);
}

int it_receiver_events(struct it_receiver *r)
{
    return read_int(r, &r->nevents);
}

int it_receiver_posts(struct it_receiver *r)
{
    return read_int(r, &r->posts);
}

int it_receiver_gets(struct it_receiver *r)
{
    return read_int(r, &r->gets);
}

json_t *it_receiver_get_params(struct it_receiver *r, int i)
{
    pthread_mutex_lock(&r->lock);
    json_t *p = json_array_get(r->get_params, (size_t)i);
    pthread_mutex_unlock(&r->lock);
    return p;
}

int it_receiver_wait_gets(struct it_receiver *r, int count, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    int n;
    while ((n = it_receiver_gets(r)) < count && it_now_ms() < end)
        usleep(10000);
    return n;
}

int it_receiver_max_concurrent(struct it_receiver *r)
{
    return read_int(r, &r->max_active);
}

int it_receiver_wait(struct it_receiver *r, int count, int timeout_ms)
{
    long long end = it_now_ms() + timeout_ms;
    int n;
    while ((n = it_receiver_count(r)) < count && it_now_ms() < end)
        usleep(10000);
    return n;
}

const struct it_delivery *it_receiver_get(struct it_receiver *r, int i)
{
    pthread_mutex_lock(&r->lock);
    const struct it_delivery *d = i < r->ngot ? &r->got[i] : NULL;
    pthread_mutex_unlock(&r->lock);
    return d;
}

int it_verify_signature(const char *secret, const struct it_delivery *d)
{
    if (strncmp(secret, "whsec_", 6) != 0 || strncmp(d->sig, "v1,", 3) != 0)
        return 0;
    unsigned char key[128];
    int klen = EVP_DecodeBlock(key, (const unsigned char *)secret + 6, (int)strlen(secret + 6));
    if (klen < 0)
        return 0;
    size_t slen = strlen(secret);
    klen -= (secret[slen - 1] == '=') + (secret[slen - 2] == '=');
    char *msg = NULL;
    if (asprintf(&msg, "%s.%s.%s", d->id, d->ts, d->body) < 0)
        return 0;
    unsigned char mac[64];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key, klen, (unsigned char *)msg, strlen(msg), mac, &maclen);
    free(msg);
    char b64[128];
    EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
    return strcmp(b64, d->sig + 3) == 0;
}

int it_verify_hub_signature(const char *secret, const struct it_delivery *d)
{
    const char *eq = d->hub_sig ? strchr(d->hub_sig, '=') : NULL;
    if (eq == NULL)
        return 0;
    char alg[16];
    snprintf(alg, sizeof(alg), "%.*s", (int)(eq - d->hub_sig), d->hub_sig);
    const EVP_MD *md = strcmp(alg, "sha1") == 0     ? EVP_sha1()
                       : strcmp(alg, "sha256") == 0 ? EVP_sha256()
                       : strcmp(alg, "sha384") == 0 ? EVP_sha384()
                       : strcmp(alg, "sha512") == 0 ? EVP_sha512()
                                                    : NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (md == NULL || HMAC(md, secret, (int)strlen(secret), (const unsigned char *)d->body,
                           strlen(d->body), mac, &len) == NULL)
        return 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", mac[i]);
    return strcmp(hex, eq + 1) == 0;
}
