/* Integration test kit implementation. */
#include "harness.h"

#include "gateway/store.h"

#include "xmpp/payload.h"
#include "xmpp/pubsub.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *it_server_name(void)
{
    const char *n = getenv("PUBSUBGW_TEST_SERVER");
    return n != NULL && n[0] != '\0' ? n : "prosody";
}

int it_server_is(const char *name)
{
    return strcmp(it_server_name(), name) == 0;
}

const char *it_server_dir(void)
{
    const char *d = getenv("PUBSUBGW_TEST_XMPP");
    if (d == NULL) {
        fprintf(stderr, "PUBSUBGW_TEST_XMPP is not set: run through ctest\n");
        exit(1);
    }
    return d;
}

static int read_int_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    int v = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%d", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

int it_server_port(void)
{
    int port = read_int_file(it_server_dir(), "port");
    if (port <= 0) {
        fprintf(stderr, "no %s port in %s: did the %s_start fixture run?\n", it_server_name(),
                it_server_dir(), it_server_name());
        exit(1);
    }
    return port;
}

int it_free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(s);
    return port;
}

const char *it_unique(const char *prefix)
{
    static char buf[8][128];
    static int n;
    char *b = buf[n % 8];
    snprintf(b, 128, "%s-%d-%lld-%d", prefix, (int)getpid(), now_ms() % 100000, ++n);
    return b;
}

int it_server_start(struct it_server *p)
{
    if (p->dir[0] == '\0') {
        snprintf(p->dir, sizeof(p->dir), "/tmp/pubsubgw-it-%s-XXXXXX", it_server_name());
        if (mkdtemp(p->dir) == NULL)
            return -1;
        chmod(p->dir, 0755); /* ejabberd runs as its own user */
        p->port = it_free_port();
    }
    char cmd[600];
    for (int attempt = 0; attempt < 3; attempt++) {
        snprintf(cmd, sizeof(cmd), "%s/%s.sh start %s %d >/dev/null", PUBSUBGW_SCRIPTS,
                 it_server_name(), p->dir, p->port);
        if (system(cmd) == 0) {
            p->started = 1;
            return 0;
        }
        /* Another test's server may have taken the port since it was picked (the scripts
         * check that the port is theirs): a first start tries another. */
        if (p->started)
            break;
        p->port = it_free_port();
    }
    return -1;
}

int it_server_stop(struct it_server *p)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "%s/%s.sh stop %s", PUBSUBGW_SCRIPTS, it_server_name(), p->dir);
    return system(cmd) == 0 ? 0 : -1;
}

pid_t it_server_pid(const struct it_server *p)
{
    return read_int_file(p->dir, it_server_is("ejabberd") ? "ejabberd.pid" : "prosody.pid");
}

void it_server_remove(struct it_server *p)
{
    it_server_stop(p);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", p->dir);
}

int it_gw_wait_health(struct it_gw *gw, int up, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        struct it_resp r;
        int rc = it_get(gw, "/v1/health", &r);
        long st = r.status;
        it_resp_free(&r);
        if (rc == 0 && ((up > 0 && st == 200) || (up == 0 && st == 503) || up < 0))
            return 0;
        usleep(50000);
    }
    return -1;
}

static int launch(struct it_gw *gw, const char *jid, const char *password, int xmpp_port,
                  const char *const *extra, int wait_up);

/* The suite's PostgreSQL: PUBSUBGW_TEST_PG (a URL), or the url file scripts/postgres.sh wrote
 * in PUBSUBGW_TEST_PG_DIR (the CTest fixture's, whose port is picked when it starts). */
static const char *pg_base(void)
{
    static char url[400];
    const char *v = getenv("PUBSUBGW_TEST_PG");
    if (v && v[0])
        return v;
    const char *dir = getenv("PUBSUBGW_TEST_PG_DIR");
    if (url[0] == '\0' && dir && dir[0] && it_read_line(dir, "url", url, sizeof(url)) != 0) {
        fprintf(stderr, "no PostgreSQL URL in %s/url\n", dir);
        exit(1);
    }
    return url[0] ? url : NULL;
}

int it_read_line(const char *dir, const char *name, char *out, size_t len)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    out[0] = '\0';
    if (f != NULL) {
        if (fgets(out, (int)len, f) == NULL)
            out[0] = '\0';
        fclose(f);
    }
    out[strcspn(out, "\n")] = '\0';
    return out[0] ? 0 : -1;
}

int it_script(const char *log, const char *name, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "'%s/%s' %s >>'%s' 2>&1", PUBSUBGW_SCRIPTS, name, args, log);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no output in %s)\n", log);
    }
    return rc;
}

struct gw_store *it_gw_store_open(const struct it_gw *gw)
{
    char url[600], err[400];
    if (gw->store[0])
        snprintf(url, sizeof(url), "%s", gw->store);
    else
        snprintf(url, sizeof(url), "sqlite:%s/data/pubsubgw.db", gw->dir);
    struct gw_store *st = gw_store_open(url, err, sizeof(err));
    if (st == NULL)
        fprintf(stderr, "cannot open the gateway's store: %s\n", err);
    return st;
}

const char *it_store_name(void)
{
    return pg_base() ? "postgresql" : "sqlite";
}

int it_pg_fresh(char *url, size_t len)
{
    static int counter;
    const char *base = pg_base();
    const char *slash = base ? strrchr(base, '/') : NULL;
    if (slash == NULL || strncmp(base, "postgresql://", 13) != 0) {
        fprintf(stderr, "PUBSUBGW_TEST_PG is not a postgresql:// URL\n");
        return -1;
    }
    char name[64];
    snprintf(name, sizeof(name), "it_%d_%d", (int)getpid(), ++counter);
    PGconn *c = PQconnectdb(base);
    char q[128];
    snprintf(q, sizeof(q), "CREATE DATABASE %s", name);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, q) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "cannot create database %s: %s\n", name, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (!ok)
        return -1;
    snprintf(url, len, "%.*s/%s", (int)(slash - base), base, name);
    return 0;
}

int it_gw_start(struct it_gw *gw, const char *jid, const char *password, int xmpp_port,
                const char *const *extra, int wait_up)
{
    memset(gw, 0, sizeof(*gw));
    int own_store = 0;
    for (int i = 0; extra && extra[i]; i++)
        own_store |= strcmp(extra[i], "--store") == 0;
    if (!own_store && strcmp(it_store_name(), "postgresql") == 0 &&
        it_pg_fresh(gw->store, sizeof(gw->store)) != 0)
        return -1;
    gw->port = it_free_port();
    snprintf(gw->base, sizeof(gw->base), "http://127.0.0.1:%d", gw->port);
    snprintf(gw->dir, sizeof(gw->dir), "/tmp/pubsubgw-it-XXXXXX");
    if (mkdtemp(gw->dir) == NULL)
        return -1;
    snprintf(gw->log, sizeof(gw->log), "%s/gateway.log", gw->dir);
    return launch(gw, jid, password, xmpp_port, extra, wait_up);
}

int it_gw_restart(struct it_gw *gw, const char *jid, const char *password, int xmpp_port,
                  const char *const *extra, int wait_up)
{
    return launch(gw, jid, password, xmpp_port, extra, wait_up);
}

static int launch(struct it_gw *gw, const char *jid, const char *password, int xmpp_port,
                  const char *const *extra, int wait_up)
{
    const char *bin = getenv("PUBSUBGW_BIN");
    if (bin == NULL) {
        fprintf(stderr, "PUBSUBGW_BIN is not set\n");
        return -1;
    }
    char listen[64], server[64], data[300];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", gw->port);
    snprintf(server, sizeof(server), "127.0.0.1:%d", xmpp_port);
    snprintf(data, sizeof(data), "%s/data", gw->dir);
    /* PUBSUBGW_VALGRIND=1 runs the gateway under memcheck: any error or leak makes it exit 99,
     * which it_gw_stop reports. */
    const char *argv[80];
    int argc = 0;
    const char *vg_env = getenv("PUBSUBGW_VALGRIND");
    if (vg_env != NULL && strcmp(vg_env, "1") == 0) {
        const char *vg[] = {"valgrind",
                            "--quiet",
                            "--error-exitcode=99",
                            "--leak-check=full",
                            "--show-leak-kinds=definite,indirect",
                            "--errors-for-leak-kinds=definite,indirect",
                            "--suppressions=" PUBSUBGW_TESTS_DIR "/valgrind.supp"};
        for (size_t i = 0; i < sizeof(vg) / sizeof(vg[0]); i++)
            argv[argc++] = vg[i];
    }
    const char *base_args[] = {bin,        "--jid",       jid,     "--xmpp-server", server,
                               "--listen", listen,        "--tls", "off",           "--data-dir",
                               data,       "--log-level", "debug"};
    for (size_t i = 0; i < sizeof(base_args) / sizeof(base_args[0]); i++)
        argv[argc++] = base_args[i];
    if (gw->store[0]) {
        argv[argc++] = "--store";
        argv[argc++] = gw->store;
    }
    for (int i = 0; extra && extra[i] && argc < 78; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    gw->pid = fork();
    if (gw->pid == 0) {
        int fd = open(gw->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        setenv("PUBSUBGW_XMPP_PASSWORD", password, 1);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (wait_up == IT_NO_WAIT)
        return 0;
    if (it_gw_wait_health(gw, wait_up ? 1 : -1, 15000) != 0) {
        fprintf(stderr, "gateway did not come up; log %s:\n", gw->log);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "tail -n 30 %s >&2", gw->log);
        if (system(cmd) != 0)
            fprintf(stderr, "(no log)\n");
        return -1;
    }
    return 0;
}

int it_gw_stop(struct it_gw *gw, int sig)
{
    if (gw->pid <= 0)
        return -1;
    kill(gw->pid, sig);
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        pid_t p = waitpid(gw->pid, &status, WNOHANG);
        if (p == gw->pid) {
            gw->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(10000);
    }
    kill(gw->pid, SIGKILL);
    waitpid(gw->pid, &status, 0);
    gw->pid = 0;
    return -1;
}

struct buf {
    char *data;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
    struct buf *b = arg;
    char *d = realloc(b->data, b->len + size * n + 1);
    if (d == NULL)
        return 0;
    memcpy(d + b->len, ptr, size * n);
    b->data = d;
    b->len += size * n;
    d[b->len] = '\0';
    return size * n;
}

static void header_value(const char *line, size_t len, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    while (*v == ' ')
        v++;
    size_t vl = len - (size_t)(v - line);
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(dst, v, vl);
    dst[vl] = '\0';
}

static size_t on_header(char *ptr, size_t size, size_t n, void *arg)
{
    struct it_resp *r = arg;
    header_value(ptr, size * n, "Content-Type", r->content_type, sizeof(r->content_type));
    header_value(ptr, size * n, "Retry-After", r->retry_after, sizeof(r->retry_after));
    header_value(ptr, size * n, "Allow", r->allow, sizeof(r->allow));
    header_value(ptr, size * n, "X-Request-Id", r->request_id, sizeof(r->request_id));
    return size * n;
}

int it_http(const char *method, const char *url, const char *content_type, const char *body,
            size_t len, struct it_resp *r)
{
    return it_http_ex(method, url, content_type, body, len, NULL, 0, r);
}

/* With PUBSUBGW_CONTRACT_LOG set, every answer the suite receives is appended to that file as
 * one JSON line (method, path, status, headers, body) for the contract check against
 * openapi/openapi.json (tests/contract/check.py). */
static void contract_log(const char *method, const char *url, const struct it_resp *r,
                         size_t body_len)
{
    const char *file = getenv("PUBSUBGW_CONTRACT_LOG");
    if (file == NULL || file[0] == '\0')
        return;
    const char *path = strstr(url, "://");
    path = path ? strchr(path + 3, '/') : NULL;
    json_t *line = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s}", "method", method, "path",
                             path ? path : "/", "status", (json_int_t)r->status, "content_type",
                             r->content_type, "retry_after", r->retry_after, "allow", r->allow,
                             "body", body_len <= 256 * 1024 ? r->body : "");
    if (line != NULL && body_len > 256 * 1024)
        json_object_set_new(line, "body_skipped", json_true());
    char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);
    if (text == NULL)
        return;
    int fd = open(file, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        size_t n = strlen(text);
        text[n] = '\n'; /* replaces the NUL: written as one line with one write */
        if (write(fd, text, n + 1) != (ssize_t)(n + 1))
            fprintf(stderr, "contract log: short write to %s\n", file);
        close(fd);
    }
    free(text);
}

int it_http_ex(const char *method, const char *url, const char *content_type, const char *body,
               size_t len, const char *const *headers, int nheaders, struct it_resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    if (c == NULL)
        return -1;
    struct buf b = {NULL, 0};
    struct curl_slist *hdr = NULL;
    char ct[200];
    if (content_type != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hdr = curl_slist_append(hdr, ct);
    }
    hdr = curl_slist_append(hdr, "Expect:");
    for (int i = 0; i < nheaders; i++)
        if (headers[i] != NULL)
            hdr = curl_slist_append(hdr, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    }
    long long t0 = now_ms();
    CURLcode rc = curl_easy_perform(c);
    r->seconds = (double)(now_ms() - t0) / 1000.0;
    r->curl_code = (int)rc;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(c);
    r->body = b.data ? b.data : strdup("");
    if (b.len > 0)
        r->json = json_loads(b.data, JSON_DECODE_ANY, NULL);
    if (rc == CURLE_OK)
        contract_log(method, url, r, b.len);
    return rc == CURLE_OK ? 0 : -1;
}

void it_resp_free(struct it_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

long it_req(struct it_gw *gw, const char *method, const char *path, const char *json,
            struct it_resp *r)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", gw->base, path);
    it_http(method, url, json ? "application/json" : NULL, json, json ? strlen(json) : 0, r);
    return r->status;
}

long it_req_auth(struct it_gw *gw, const char *method, const char *path, const char *auth,
                 const char *json, struct it_resp *r)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", gw->base, path);
    const char *h[] = {auth};
    it_http_ex(method, url, json ? "application/json" : NULL, json, json ? strlen(json) : 0, h,
               auth ? 1 : 0, r);
    return r->status;
}

long it_proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    size_t n = strlen(field);
    FILE *f = fopen(path, "r");
    long kb = 0;
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = atol(line + n + 1);
            break;
        }
    }
    if (f)
        fclose(f);
    return kb;
}

int it_get(struct it_gw *gw, const char *path, struct it_resp *r)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", gw->base, path);
    return it_http("GET", url, NULL, NULL, 0, r);
}

int it_post_json(struct it_gw *gw, const char *path, const char *json, struct it_resp *r)
{
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", gw->base, path);
    return it_http("POST", url, "application/json", json, strlen(json), r);
}

void it_check_problem(struct it_resp *r, int status, const char *field)
{
    CHECK_INT(r->status, status);
    CHECK_STR(r->content_type, "application/problem+json");
    CHECK_INT(json_integer_value(json_object_get(r->json, "status")), status);
    CHECK(json_string_value(json_object_get(r->json, "title")) != NULL);
    if (field != NULL) {
        const char *d = json_string_value(json_object_get(r->json, "detail"));
        CHECK(d != NULL && strstr(d, field) != NULL);
        if (d == NULL || strstr(d, field) == NULL)
            fprintf(stderr, "  body: %s (wanted '%s' in detail)\n", r->body, field);
    }
}

/* The independent XMPP client. */
#define IT_MAX_EVENTS 4096

struct it_xmpp {
    int published;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    int state; /* 0 connecting, 1 up, -1 failed */
    xmpp_stanza_t *answer;
    char want_id[32];
    xmpp_stanza_t *events[IT_MAX_EVENTS];
    int head, tail;
    int next_id;
};

static int it_on_iq(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    (void)conn;
    struct it_xmpp *c = arg;
    const char *id = xmpp_stanza_get_id(st);
    if (id && strncmp(id, "pub", 3) == 0 && strcmp(xmpp_stanza_get_type(st), "result") == 0)
        c->published++;
    else if (id && strcmp(id, c->want_id) == 0 && c->answer == NULL)
        c->answer = xmpp_stanza_copy(st);
    return 1;
}

static int it_on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    (void)conn;
    struct it_xmpp *c = arg;
    if (gw_stanza_child(st, "event", GW_NS_PUBSUB_EVENT) && c->tail - c->head < IT_MAX_EVENTS)
        c->events[c->tail++ % IT_MAX_EVENTS] = xmpp_stanza_copy(st);
    return 1;
}

static void it_on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int err, xmpp_stream_error_t *se,
                       void *arg)
{
    (void)err;
    (void)se;
    struct it_xmpp *c = arg;
    if (ev == XMPP_CONN_CONNECT) {
        xmpp_handler_add(conn, it_on_iq, NULL, "iq", NULL, c);
        xmpp_handler_add(conn, it_on_message, NULL, "message", NULL, c);
        xmpp_stanza_t *p = xmpp_presence_new(c->ctx);
        xmpp_send(conn, p);
        xmpp_stanza_release(p);
        c->state = 1;
    } else {
        c->state = -1;
    }
}

struct it_xmpp *it_xmpp_connect(const char *jid, const char *password, int port)
{
    struct it_xmpp *c = calloc(1, sizeof(*c));
    xmpp_initialize();
    c->ctx = xmpp_ctx_new(NULL, NULL);
    c->conn = xmpp_conn_new(c->ctx);
    xmpp_conn_set_jid(c->conn, jid);
    xmpp_conn_set_pass(c->conn, password);
    xmpp_conn_set_flags(c->conn, XMPP_CONN_FLAG_DISABLE_TLS);
    if (xmpp_connect_client(c->conn, "127.0.0.1", (unsigned short)port, it_on_conn, c) != XMPP_EOK)
        c->state = -1;
    long long end = now_ms() + 10000;
    while (c->state == 0 && now_ms() < end)
        xmpp_run_once(c->ctx, 20);
    if (c->state != 1) {
        fprintf(stderr, "test client %s could not log in\n", jid);
        it_xmpp_close(c);
        return NULL;
    }
    /* Let the presence reach the server before anything is published. */
    for (int i = 0; i < 5; i++)
        xmpp_run_once(c->ctx, 10);
    return c;
}

void it_xmpp_close(struct it_xmpp *c)
{
    if (c == NULL)
        return;
    if (c->state == 1) {
        xmpp_disconnect(c->conn);
        for (int i = 0; i < 50 && c->state == 1; i++)
            xmpp_run_once(c->ctx, 10);
    }
    while (c->head < c->tail)
        xmpp_stanza_release(c->events[c->head++ % IT_MAX_EVENTS]);
    if (c->answer)
        xmpp_stanza_release(c->answer);
    xmpp_conn_release(c->conn);
    xmpp_ctx_free(c->ctx);
    free(c);
}

xmpp_ctx_t *it_xmpp_ctx(struct it_xmpp *c)
{
    return c->ctx;
}

xmpp_stanza_t *it_xmpp_iq(struct it_xmpp *c, xmpp_stanza_t *iq, int timeout_ms)
{
    snprintf(c->want_id, sizeof(c->want_id), "%s", xmpp_stanza_get_id(iq));
    if (c->answer) {
        xmpp_stanza_release(c->answer);
        c->answer = NULL;
    }
    xmpp_send(c->conn, iq);
    xmpp_stanza_release(iq);
    long long end = now_ms() + timeout_ms;
    while (c->answer == NULL && c->state == 1 && now_ms() < end)
        xmpp_run_once(c->ctx, 10);
    xmpp_stanza_t *a = c->answer;
    c->answer = NULL;
    return a;
}

static int subscription(struct it_xmpp *c, const char *service, const char *node, int subscribe)
{
    char id[32], bare[256];
    snprintf(id, sizeof(id), "t%d", ++c->next_id);
    snprintf(bare, sizeof(bare), "%s", xmpp_conn_get_bound_jid(c->conn));
    bare[strcspn(bare, "/")] = '\0';
    xmpp_stanza_t *iq = gw_pubsub_subscribe(c->ctx, id, service, node, bare, subscribe);
    xmpp_stanza_t *a = iq ? it_xmpp_iq(c, iq, 5000) : NULL;
    int ok = a && strcmp(xmpp_stanza_get_type(a), "result") == 0;
    if (a)
        xmpp_stanza_release(a);
    return ok ? 0 : -1;
}

int it_xmpp_subscribe(struct it_xmpp *c, const char *service, const char *node)
{
    return subscription(c, service, node, 1);
}

int it_xmpp_unsubscribe(struct it_xmpp *c, const char *service, const char *node)
{
    return subscription(c, service, node, 0);
}

static int about(xmpp_stanza_t *msg, const char *node)
{
    xmpp_stanza_t *ev = gw_stanza_child(msg, "event", GW_NS_PUBSUB_EVENT);
    for (xmpp_stanza_t *c = ev ? xmpp_stanza_get_children(ev) : NULL; c;
         c = xmpp_stanza_get_next(c)) {
        const char *n = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_attribute(c, "node") : NULL;
        if (n && strcmp(n, node) == 0)
            return 1;
    }
    return 0;
}

xmpp_stanza_t *it_xmpp_next_event(struct it_xmpp *c, const char *node, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        if (c->head == c->tail && c->state == 1)
            xmpp_run_once(c->ctx, 0); /* a zero timeout still reads what is there */
        while (c->head == c->tail && c->state == 1 && now_ms() < end)
            xmpp_run_once(c->ctx, 10);
        if (c->head == c->tail)
            return NULL;
        xmpp_stanza_t *m = c->events[c->head++ % IT_MAX_EVENTS];
        if (node == NULL || about(m, node))
            return m;
        xmpp_stanza_release(m);
    }
}

int it_xmpp_publish(struct it_xmpp *c, const char *service, const char *node, const char *id,
                    const char *json_text)
{
    char qid[32];
    snprintf(qid, sizeof(qid), "pub%d", ++c->next_id);
    xmpp_stanza_t *payload = gw_payload_json_element(c->ctx, json_text);
    xmpp_stanza_t *iq = gw_pubsub_publish(c->ctx, qid, service, node, id, payload, NULL);
    xmpp_stanza_release(payload);
    if (iq == NULL)
        return -1;
    xmpp_send(c->conn, iq);
    xmpp_stanza_release(iq);
    xmpp_run_once(c->ctx, 0);
    return 0;
}

void it_xmpp_poll(struct it_xmpp *c, int timeout_ms)
{
    xmpp_run_once(c->ctx, (unsigned long)timeout_ms);
}

int it_xmpp_wait_published(struct it_xmpp *c, int n, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    if (c->published < n && c->state == 1)
        xmpp_run_once(c->ctx, 0);
    while (c->published < n && c->state == 1 && now_ms() < end)
        xmpp_run_once(c->ctx, 10);
    return c->published;
}

json_t *it_xmpp_subscriptions(struct it_xmpp *c, const char *service)
{
    char id[32];
    snprintf(id, sizeof(id), "t%d", ++c->next_id);
    xmpp_stanza_t *a = it_xmpp_iq(c, gw_pubsub_subscriptions(c->ctx, id, service), 5000);
    if (a == NULL)
        return NULL;
    json_t *subs = gw_pubsub_subscriptions_json(a, GW_NS_PUBSUB);
    xmpp_stanza_release(a);
    json_t *nodes = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(subs, "subscriptions"), i, e)
    {
        const char *st = json_string_value(json_object_get(e, "subscription"));
        if (st && strcmp(st, "subscribed") == 0)
            json_array_append(nodes, json_object_get(e, "node"));
    }
    json_decref(subs);
    return nodes;
}
