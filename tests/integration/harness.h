/* Integration test kit: the private Prosody started by the CTest fixture, the real gateway
 * binary on a free port, a libcurl HTTP client, and an independent libstrophe client. */
#ifndef GW_IT_HARNESS_H
#define GW_IT_HARNESS_H

#include "../check.h"

#include <jansson.h>
#include <strophe.h>
#include <sys/types.h>

/* The XMPP server the suite runs against ("prosody" or "ejabberd", from PUBSUBGW_TEST_SERVER),
 * and whether it is the one named. */
const char *it_server_name(void);
int it_server_is(const char *name);
/* The fixture's server: directory and c2s port (exits the test with failure when absent). */
const char *it_server_dir(void);
int it_server_port(void);
int it_free_port(void);
/* A name unique to this run, e.g. "publish-1234-1", for nodes that must not collide. */
const char *it_unique(const char *prefix);

/* A server of the test's own (scripts/prosody.sh or scripts/ejabberd.sh, the suite's kind) in a
 * temporary directory on a fixed port, for tests that stop, freeze or kill the server. */
struct it_server {
    char dir[256];
    int port;
    int started; /* once started, restarts keep the port */
};
/* Creates the directory and picks a port on the first start; starts the server. 0 or -1. */
int it_server_start(struct it_server *p);
int it_server_stop(struct it_server *p);
/* The server's process id (for SIGSTOP, SIGKILL), or 0. */
pid_t it_server_pid(const struct it_server *p);
/* Stops the server and removes its directory. */
void it_server_remove(struct it_server *p);

struct it_gw {
    pid_t pid;
    int port;
    char base[64]; /* "http://127.0.0.1:PORT" */
    char dir[256]; /* data dir and log */
    char log[300];
    char store[300]; /* --store URL: a database of its own when the suite runs on PostgreSQL */
};

/* The gateway's store, opened by the test (the gateway stopped first): its --store URL, or the
 * SQLite file in its data directory. NULL (reason on stderr) when it cannot be opened. */
struct gw_store *it_gw_store_open(const struct it_gw *gw);

/* The first line of DIR/NAME (without its newline) into out; 0, or -1 (out then empty) when the
 * file is missing or empty. For what the scripts write (url, port). */
int it_read_line(const char *dir, const char *name, char *out, size_t len);

/* Runs one of the project's scripts (scripts/NAME with the arguments given, already quoted as
 * needed), its output appended to log; on failure prints the log's end. Returns the status. */
int it_script(const char *log, const char *name, const char *args);

/* The store the suite runs on: "postgresql" when PUBSUBGW_TEST_PG names a server (the URL of
 * its database, as scripts/postgres.sh writes it), else "sqlite". */
const char *it_store_name(void);
/* Creates an empty database on the suite's PostgreSQL server and writes its URL to url.
 * 0, or -1 (reason printed). */
int it_pg_fresh(char *url, size_t len);

/* Starts the gateway as jid with password against 127.0.0.1:xmpp_port, plus extra args
 * (NULL-terminated, may be NULL). With wait_up it waits until /v1/health says connected, else
 * only until HTTP answers; IT_NO_WAIT waits for nothing (HTTPS, or a gateway meant to exit).
 * Returns 0, or -1 (log printed). */
#define IT_NO_WAIT 2
int it_gw_start(struct it_gw *gw, const char *jid, const char *password, int xmpp_port,
                const char *const *extra, int wait_up);
/* Starts the gateway again on the same port and data directory (after it_gw_stop). */
int it_gw_restart(struct it_gw *gw, const char *jid, const char *password, int xmpp_port,
                  const char *const *extra, int wait_up);
/* Sends sig, waits up to 10 s; returns the exit status (or 128+signal), -1 on timeout (then kills).
 */
int it_gw_stop(struct it_gw *gw, int sig);
/* Waits until health reports up (1) or down (0); returns 0 or -1 after timeout_ms. */
int it_gw_wait_health(struct it_gw *gw, int up, int timeout_ms);

struct it_resp {
    long status;
    char *body;
    json_t *json; /* parsed body, or NULL */
    char content_type[128];
    char retry_after[32];
    char allow[64];
    char request_id[80];
    double seconds;
    int curl_code; /* CURLE_* of the transfer: 0 when an answer came */
};

/* Performs one request (body may be NULL). Returns 0 when an HTTP answer came. */
int it_http(const char *method, const char *url, const char *content_type, const char *body,
            size_t len, struct it_resp *r);
/* it_http with extra "Name: value" headers (NULL entries are skipped). */
int it_http_ex(const char *method, const char *url, const char *content_type, const char *body,
               size_t len, const char *const *headers, int nheaders, struct it_resp *r);
void it_resp_free(struct it_resp *r);
/* Short forms on the gateway's base URL; it_req sends json (may be NULL) as application/json
 * and returns the status (0 when no answer came). */
long it_req(struct it_gw *gw, const char *method, const char *path, const char *json,
            struct it_resp *r);
int it_get(struct it_gw *gw, const char *path, struct it_resp *r);
int it_post_json(struct it_gw *gw, const char *path, const char *json, struct it_resp *r);

/* it_req with an "Authorization: …" header line (NULL: none). */
long it_req_auth(struct it_gw *gw, const char *method, const char *path, const char *auth,
                 const char *json, struct it_resp *r);
/* A "Vm…" figure of /proc/PID/status in kB (field e.g. "VmRSS", "VmHWM"), 0 when unknown. */
long it_proc_kb(pid_t pid, const char *field);

/* Checks a problem+json answer: status, content type, and that detail contains field (if any). */
void it_check_problem(struct it_resp *r, int status, const char *field);

struct it_xmpp;
/* Connects and logs in (plain, no TLS) within 10 s, sends presence; NULL on failure. */
struct it_xmpp *it_xmpp_connect(const char *jid, const char *password, int port);
void it_xmpp_close(struct it_xmpp *c);
xmpp_ctx_t *it_xmpp_ctx(struct it_xmpp *c);
/* Sends iq (released here) and waits for its answer; returns the answer (caller releases) or NULL.
 */
xmpp_stanza_t *it_xmpp_iq(struct it_xmpp *c, xmpp_stanza_t *iq, int timeout_ms);
/* Subscribes the client's bare JID to service/node; returns 0 when the service agreed. */
int it_xmpp_subscribe(struct it_xmpp *c, const char *service, const char *node);
int it_xmpp_unsubscribe(struct it_xmpp *c, const char *service, const char *node);
/* Publishes a JSON payload (text) as item id without waiting for the answer; counts answers
 * in it_xmpp_wait_published. */
int it_xmpp_publish(struct it_xmpp *c, const char *service, const char *node, const char *id,
                    const char *json_text);
/* Runs the client's event loop once, blocking at most timeout_ms for input. */
void it_xmpp_poll(struct it_xmpp *c, int timeout_ms);
/* Runs the client until n publish answers (results) arrived; returns the number of results. */
int it_xmpp_wait_published(struct it_xmpp *c, int n, int timeout_ms);
/* The node ids the client's bare JID is subscribed to at service, as a JSON array, or NULL. */
json_t *it_xmpp_subscriptions(struct it_xmpp *c, const char *service);
/* Next pubsub event message about node (any node when NULL) received (caller releases), waiting
 * up to timeout_ms; NULL if none. Test accounts are shared by tests running at the same time,
 * so events of other nodes are skipped. */
xmpp_stanza_t *it_xmpp_next_event(struct it_xmpp *c, const char *node, int timeout_ms);

#endif
