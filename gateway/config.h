/* Gateway configuration: defaults, command-line options, a key = value config file and the
 * password sources. Command-line options override the file; the file overrides defaults. */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "netpolicy.h"

enum gw_tls_mode { GW_TLS_REQUIRED = 0, GW_TLS_OPTIONAL, GW_TLS_OFF };

enum {
    GW_SCOPE_READ = 1 << 0,
    GW_SCOPE_PUBLISH = 1 << 1,
    GW_SCOPE_SUBSCRIBE = 1 << 2,
    GW_SCOPE_ADMIN = 1 << 3,
    GW_SCOPE_ALL = (1 << 4) - 1,
};
/* The scopes' names as tokens and the API write them: gw_scope_names[i] is scope 1 << i. */
#define GW_SCOPES 4
extern const char *const gw_scope_names[GW_SCOPES];
_Static_assert(GW_SCOPE_ALL == (1 << GW_SCOPES) - 1, "a name for every scope");

/* An API bearer token with what it may do and, optionally, on which nodes (glob patterns). */
struct gw_token {
    char *token;
    char *name;               /* shown in logs instead of the token: name=, else "token-N" */
    unsigned char digest[32]; /* SHA-256 of token: what requests are compared against */
    unsigned scopes;
    char **nodes; /* NULL: every node */
    int nnodes;
};

/* A secret for inbound webhooks to a node ("*" for every node without one of its own). */
struct gw_hook_secret {
    char *node;
    char *secret;
};

/* What a reload may replace while other threads read it: the tokens and the callback
 * allow-list, swapped as one pointer. A replaced policy stays allocated until the configuration
 * is freed (a request in flight may still hold one of its tokens). */
struct gw_policy {
    const struct gw_token *tokens;
    int ntokens;
    const struct gw_cidr *allow;
    int nallow;
    struct gw_policy *retired; /* the policies it replaced (reload) */
    struct gw_config *owner;   /* the loaded configuration whose arrays these are, or NULL */
};

struct gw_config {
    char *listen_host; /* numeric address, e.g. "127.0.0.1" or "::1" */
    int listen_port;
    char *jid;       /* bare or full JID of the gateway's account */
    char *password;  /* never logged */
    char *xmpp_host; /* NULL: resolved from the JID's domain */
    int xmpp_port;   /* 0: default */
    char *service;   /* default pubsub service JID */
    char *data_dir;
    char *store; /* store URL; may hold a password: never logged */
    char *resource;
    enum gw_tls_mode tls;
    int log_level;
    int log_json; /* --log-format json */
    int iq_timeout_ms;
    int reconnect_max_ms;
    int ping_interval_ms; /* 0: no keepalive pings */
    int ping_timeout_ms;
    int connect_timeout_ms;
    char *tls_ca;     /* CA file for the server's certificate, NULL: the system store */
    char *https_cert; /* HTTPS on the listener: PEM certificate (chain) and key files */
    char *https_key;
    int tls_insecure; /* accept any certificate (development only) */
    int exit_on_auth_failure;
    int auto_create; /* publishing to a missing node creates it */
    size_t max_body;
    int http_threads;
    int max_connections;
    int http_timeout_s;
    /* webhooks */
    long delivery_timeout_ms;
    int retry_attempts;
    int64_t retry_max_age_ms;
    int64_t retry_initial_ms;
    int64_t retry_max_interval_ms;
    int catchup_max;
    long max_host_connections;
    long max_delivery_connections;
    /* inbound webhooks and streams */
    struct gw_hook_secret *hook_secrets;
    int nhook_secrets;
    int64_t hook_replay_window_ms; /* 0: no replay check */
    int sse_heartbeat_ms;
    int sse_history;
    /* security and limits */
    struct gw_token *tokens;
    int ntokens;
    struct gw_cidr *callback_allow;
    int ncallback_allow;
    /* The tokens and allow-list in force (see struct gw_policy); set by gw_config_load. */
    _Atomic(struct gw_policy *) policy;
    int max_json_depth;
    int max_inflight;
    int64_t max_pending_sub;
    int64_t max_pending;
    int dead_letter_max; /* per subscription */
    int attempts_max;    /* delivery attempts logged per subscription */
    int64_t attempts_max_age_ms;
    int64_t dead_letter_max_age_ms;
    size_t sse_history_bytes; /* per node */
    size_t sse_queue_bytes;   /* per client */
    long max_stanza;
    /* WebSub hub */
    char *public_url; /* the gateway's address as subscribers see it (no trailing slash); NULL:
                       * http(s)://LISTEN:PORT */
    int websub;       /* the hub at /websub answers (default on) */
    int ui;           /* the console at /ui/ is served (default on) */
    int64_t websub_lease_default_ms, websub_lease_min_ms, websub_lease_max_ms;
    int feed_interval_min_s; /* feeds are not fetched more often */
    int check_only;          /* --check-config: validate and exit */
};

/* 1 when token may act on node: it has no node patterns, or one matches (NULL token: no tokens
 * are configured, everything is allowed). */
int gw_token_allows_node(const struct gw_token *token, const char *node);

/* The policy in force. Thread-safe. */
const struct gw_policy *gw_config_policy(const struct gw_config *cfg);

/* Reloads what may change while running from the same arguments and file (SIGHUP): tokens,
 * the callback allow-list, log level and format, limits, retry and retention settings, ping
 * settings. Options that need a restart keep their running value and are named in err (a
 * comma-separated list, "" when none). Loop thread; returns 0, or -1 with the reason in err
 * when the new configuration is invalid (nothing changes then). */
int gw_config_reload(struct gw_config *cfg, int argc, char **argv, char *err, size_t errlen);

/* The hook secret that applies to node (its own, else "*"), or NULL when none is configured. */
const char *gw_config_hook_secret(const struct gw_config *cfg, const char *node);

enum gw_config_result { GW_CONFIG_OK = 0, GW_CONFIG_HELP, GW_CONFIG_VERSION, GW_CONFIG_ERROR };

/* Fills cfg from defaults, the config file named by --config, argv and the environment.
 * On GW_CONFIG_ERROR a one-line reason is in err. Release with gw_config_free(). */
enum gw_config_result gw_config_load(struct gw_config *cfg, int argc, char **argv, char *err,
                                     size_t errlen);

/* Frees every string of cfg (not cfg itself); accepts a zeroed cfg. */
void gw_config_free(struct gw_config *cfg);

/* The --help text. */
const char *gw_config_usage(void);

/* Splits "host[:port]" or "[v6]:port" into a newly allocated host (caller frees) and a port;
 * *port is left alone when the text has none. Returns 0, or -1 when the text is malformed. */
int gw_config_split_hostport(const char *text, char **host, int *port);

#endif
