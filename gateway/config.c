/* Configuration loading. Every option has one setter shared by the command line and the config
 * file, so both accept exactly the same names and values. */
#include "config.h"

#include "log.h"
#include "sign.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gw_scope_names[GW_SCOPES] = {"read", "publish", "subscribe", "admin"};

static const char usage_text[] =
    "Usage: pubsubgw [OPTION]...\n"
    "HTTP to XMPP publish/subscribe (XEP-0060) gateway.\n"
    "\n"
    "  --config FILE          read options from FILE (key = value per line, same names)\n"
    "  --listen ADDR:PORT     HTTP listen address (default 127.0.0.1:8080; [::1]:8080 for IPv6)\n"
    "  --jid JID              XMPP account of the gateway (required)\n"
    "  --password-file FILE   read the XMPP password from FILE (first line); or set\n"
    "                         PUBSUBGW_XMPP_PASSWORD, or 'password' in the config file\n"
    "  --xmpp-server HOST[:PORT]  XMPP server to connect to (default: the JID's domain)\n"
    "  --service JID          default pubsub service (default: pubsub.DOMAIN)\n"
    "  --resource NAME        XMPP resource (default pubsubgw)\n"
    "  --data-dir DIR         directory for persistent state (default ./pubsubgw-data)\n"
    "  --store URL            where state is kept: sqlite:PATH (default DIR/pubsubgw.db) or\n"
    "                         postgresql://USER@HOST:PORT/DB (libpq URI; shared by replicas)\n"
    "  --tls MODE             required | optional | off (default required)\n"
    "  --log-level LEVEL      error | warn | info | debug (default info)\n"
    "  --log-format FORMAT    text | json: one JSON object per line (default text)\n"
    "  --iq-timeout SECONDS   time to wait for an XMPP answer (default 10)\n"
    "  --reconnect-max SECONDS  cap of the reconnect backoff (default 30)\n"
    "  --ping-interval SECONDS  ping the server after this long without traffic; no answer\n"
    "                         within --ping-timeout ends the session (default 10, 0 = never)\n"
    "  --ping-timeout SECONDS time a ping has to be answered (default 10)\n"
    "  --connect-timeout SECONDS  time from connecting to a ready session (default 20)\n"
    "  --tls-ca FILE          CA certificates (PEM) to verify the server with (default: the\n"
    "                         system store)\n"
    "  --tls-insecure         accept any server certificate: development only, logged loudly\n"
    "  --tls-cert FILE        serve HTTPS: the listener's certificate (PEM, chain first)\n"
    "  --tls-key FILE         ... and its private key (PEM); both or neither\n"
    "  --exit-on-auth-failure exit with status 3 when the server refuses the password, instead\n"
    "                         of retrying with a long backoff\n"
    "  --auto-create          publishing to a node that does not exist creates it (default:\n"
    "                         404 on every server, also where the server would create it)\n"
    "  --max-body BYTES       largest accepted request body (default 1048576)\n"
    "  --http-threads N       HTTP worker threads; 0 (default) serves HTTP on the event loop\n"
    "  --max-connections N    concurrent HTTP connections (default 512)\n"
    "  --http-timeout SECONDS idle HTTP connection timeout (default 30)\n"
    "  --ui on|off            the console in the browser at /ui/ (default on)\n"
    "WebSub hub (POST /websub; topics are node feeds, see the README):\n"
    "  --public-url URL       the gateway's address as subscribers reach it, for topic and hub\n"
    "                         links (default: http://LISTEN)\n"
    "  --websub               the hub answers at /websub (default; --websub=false: off)\n"
    "  --websub-lease SECONDS lease when a subscriber asks for none (default 864000)\n"
    "  --websub-lease-min SECONDS  shortest lease granted (default 60)\n"
    "  --websub-lease-max SECONDS  longest lease granted (default 2592000)\n"
    "Feeds polled into nodes (POST /v1/feeds):\n"
    "  --feed-interval-min SECONDS  shortest polling interval granted (default 60)\n"
    "Webhook delivery:\n"
    "  --delivery-timeout SECONDS  time a callback has to answer (default 10)\n"
    "  --retry-attempts N     attempts before an event goes to the dead letters (default 10)\n"
    "  --retry-max-age SECONDS  age after which a failing event goes to the dead letters\n"
    "                         (default 86400)\n"
    "  --retry-initial MS     first retry interval, doubled each time (default 1000)\n"
    "  --retry-max-interval SECONDS  longest retry interval (default 3600)\n"
    "  --catchup-max N        items fetched per node to catch up after downtime (default 1000)\n"
    "  --max-host-connections N  connections to one callback host (default 8)\n"
    "  --max-delivery-connections N  callback connections in total (default 256)\n"
    "Security and limits:\n"
    "  --api-token TOKEN      bearer token required on every route but /v1/health; repeatable.\n"
    "                         'TOKEN name=ci scopes=read,publish,subscribe,admin "
    "nodes=news,team/*'\n"
    "                         names (for logs; default token-N) and limits a token (default:\n"
    "                         every scope, every node)\n"
    "  --callback-allow CIDR  let callbacks reach this otherwise refused range (loopback,\n"
    "                         private, link-local...), e.g. 127.0.0.0/8; repeatable\n"
    "  --max-json-depth N     deepest nesting accepted in JSON bodies (default 64)\n"
    "  --max-inflight N       XMPP requests waiting for an answer before 503 (default 1000)\n"
    "  --max-pending-per-subscription N  undelivered events one subscription may have;\n"
    "                         further events go to its dead letters (default 100000)\n"
    "  --max-pending N        undelivered events in all; beyond it publishing and new\n"
    "                         subscriptions get 503 (default 5000000)\n"
    "  --max-stanza BYTES     larger notifications from the server are dropped (default 1048576)\n"
    "  --dead-letter-max N    dead letters kept per subscription; older ones go (default 10000)\n"
    "  --dead-letter-max-age SECONDS  dead letters are removed after this (default 2592000)\n"
    "  --attempts-max N       delivery attempts logged per subscription (default 100)\n"
    "  --attempts-max-age SECONDS  logged attempts are removed after this (default 604800)\n"
    "Inbound webhooks and event streams:\n"
    "  --hook-secret NODE=SECRET  secret for POST /v1/hooks/NODE (X-Hub-Signature-256);\n"
    "                         NODE '*' for every node; repeatable\n"
    "  --hook-replay-window SECONDS  a signed hook body accepted under one delivery id is\n"
    "                         refused (409) under another within this window (default 86400;\n"
    "                         0 = off)\n"
    "  --sse-heartbeat SECONDS  comment line sent to idle event streams (default 15)\n"
    "  --sse-history N        events kept per node for Last-Event-ID resume (default 256)\n"
    "  --sse-history-bytes BYTES  ... and at most this many bytes of them (default 1048576)\n"
    "  --sse-queue-bytes BYTES  a stream client further behind is cut off (default 1048576)\n"
    "  --check-config         check the options and the config file, then exit (0 or 2)\n"
    "  --help                 show this text and exit\n"
    "  --version              show the version and exit\n";

const char *gw_config_usage(void)
{
    return usage_text;
}

static int set_str(char **dst, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

static int parse_int(const char *value, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int gw_config_split_hostport(const char *text, char **host, int *port)
{
    const char *h = text, *colon = NULL;
    size_t hlen;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close == text + 1)
            return -1;
        h = text + 1;
        hlen = (size_t)(close - h);
        if (close[1] == ':')
            colon = close + 1;
        else if (close[1] != '\0')
            return -1;
    } else {
        colon = strrchr(text, ':');
        if (colon != NULL && strchr(text, ':') != colon)
            return -1; /* bare IPv6 needs brackets */
        hlen = colon ? (size_t)(colon - text) : strlen(text);
    }
    if (hlen == 0)
        return -1;
    if (colon != NULL) {
        long p;
        if (parse_int(colon + 1, 1, 65535, &p) != 0)
            return -1;
        *port = (int)p;
    }
    *host = strndup(h, hlen);
    return *host ? 0 : -1;
}

static int read_first_line(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read password file %s: %s", path, strerror(errno));
        return -1;
    }
    char buf[1024];
    if (fgets(buf, sizeof(buf), f) == NULL)
        buf[0] = '\0';
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0') {
        snprintf(err, errlen, "password file %s is empty", path);
        return -1;
    }
    return set_str(out, buf);
}

/* "TOKEN [scopes=a,b] [nodes=x,y*]" */
static int add_token(struct gw_config *cfg, const char *value, char *err, size_t errlen)
{
    char *copy = strdup(value), *save = NULL;
    if (copy == NULL)
        return -1;
    struct gw_token t = {0};
    t.scopes = GW_SCOPE_ALL;
    int rc = 0;
    for (char *word = strtok_r(copy, " \t", &save); word; word = strtok_r(NULL, " \t", &save)) {
        if (t.token == NULL) {
            if (strlen(word) < 16) {
                snprintf(err, errlen, "--api-token: a token must be at least 16 characters");
                rc = -1;
                break;
            }
            t.token = strdup(word);
        } else if (strncmp(word, "scopes=", 7) == 0) {
            t.scopes = 0;
            char *s2 = NULL;
            for (char *sc = strtok_r(word + 7, ",", &s2); sc; sc = strtok_r(NULL, ",", &s2)) {
                unsigned bit = 0;
                for (unsigned i = 0; i < GW_SCOPES; i++)
                    if (strcmp(sc, gw_scope_names[i]) == 0)
                        bit = 1u << i;
                if (bit == 0) {
                    snprintf(err, errlen, "--api-token: unknown scope '%.40s'", sc);
                    rc = -1;
                    break;
                }
                t.scopes |= bit;
            }
        } else if (strncmp(word, "name=", 5) == 0 && word[5] != '\0') {
            free(t.name);
            t.name = strdup(word + 5);
        } else if (strncmp(word, "nodes=", 6) == 0) {
            char *s2 = NULL;
            for (char *n = strtok_r(word + 6, ",", &s2); n; n = strtok_r(NULL, ",", &s2)) {
                char **nodes = realloc(t.nodes, (size_t)(t.nnodes + 1) * sizeof(*nodes));
                if (nodes == NULL) {
                    rc = -1;
                    break;
                }
                t.nodes = nodes;
                t.nodes[t.nnodes++] = strdup(n);
            }
        } else {
            snprintf(err, errlen,
                     "--api-token: expected 'TOKEN [name=LABEL] [scopes=…] [nodes=…]'");
            rc = -1;
        }
        if (rc != 0)
            break;
    }
    if (rc == 0 && t.token == NULL) {
        snprintf(err, errlen, "--api-token: empty");
        rc = -1;
    }
    struct gw_token *list =
        rc == 0 ? realloc(cfg->tokens, (size_t)(cfg->ntokens + 1) * sizeof(*list)) : NULL;
    if (list == NULL) {
        free(t.token);
        free(t.name);
        for (int i = 0; i < t.nnodes; i++)
            free(t.nodes[i]);
        free(t.nodes);
        rc = -1;
    } else {
        gw_sha256(t.token, strlen(t.token), t.digest);
        if (t.name == NULL) {
            char name[32];
            snprintf(name, sizeof(name), "token-%d", cfg->ntokens + 1);
            t.name = strdup(name);
        }
        cfg->tokens = list;
        list[cfg->ntokens++] = t;
    }
    memset(copy, 0, strlen(value));
    free(copy);
    return rc;
}

/* Boolean options: no value (or true/yes/1, false/no/0). restart: a running gateway keeps its
 * value on reload (SIGHUP). */
static const struct {
    const char *name;
    size_t offset;
    int restart;
} flags[] = {
    {"tls-insecure", offsetof(struct gw_config, tls_insecure), 1},
    {"exit-on-auth-failure", offsetof(struct gw_config, exit_on_auth_failure), 0},
    {"auto-create", offsetof(struct gw_config, auto_create), 0},
    {"websub", offsetof(struct gw_config, websub), 0},
    {"ui", offsetof(struct gw_config, ui), 0},
};

/* Numeric options: range, the factor to the stored unit (1000: seconds given, ms kept), the
 * field and its type, and whether a reload may change it. */
enum { NUM_INT, NUM_LONG, NUM_INT64, NUM_SIZE };
static const struct {
    const char *name;
    long min, max, scale;
    size_t offset;
    int kind;
    int restart;
} numbers[] = {
    {"delivery-timeout", 1, 3600, 1000, offsetof(struct gw_config, delivery_timeout_ms), NUM_LONG,
     0},
    {"retry-attempts", 1, 1000, 1, offsetof(struct gw_config, retry_attempts), NUM_INT, 0},
    {"retry-max-age", 1, 30L * 86400, 1000, offsetof(struct gw_config, retry_max_age_ms), NUM_INT64,
     0},
    {"retry-initial", 1, 3600000, 1, offsetof(struct gw_config, retry_initial_ms), NUM_INT64, 0},
    {"retry-max-interval", 1, 86400, 1000, offsetof(struct gw_config, retry_max_interval_ms),
     NUM_INT64, 0},
    {"catchup-max", 0, 100000, 1, offsetof(struct gw_config, catchup_max), NUM_INT, 0},
    {"ping-interval", 0, 3600, 1000, offsetof(struct gw_config, ping_interval_ms), NUM_INT, 0},
    {"ping-timeout", 1, 3600, 1000, offsetof(struct gw_config, ping_timeout_ms), NUM_INT, 0},
    {"connect-timeout", 1, 3600, 1000, offsetof(struct gw_config, connect_timeout_ms), NUM_INT, 0},
    /* the connection caps are given to libcurl at start */
    {"max-host-connections", 1, 1000, 1, offsetof(struct gw_config, max_host_connections), NUM_LONG,
     1},
    {"max-delivery-connections", 1, 800, 1, offsetof(struct gw_config, max_delivery_connections),
     NUM_LONG, 1},
    {"sse-heartbeat", 1, 3600, 1000, offsetof(struct gw_config, sse_heartbeat_ms), NUM_INT, 0},
    /* the replay window is sized at start */
    {"hook-replay-window", 0, 30L * 86400, 1000, offsetof(struct gw_config, hook_replay_window_ms),
     NUM_INT64, 1},
    /* nodes' history rings are allocated with this capacity */
    {"sse-history", 0, 100000, 1, offsetof(struct gw_config, sse_history), NUM_INT, 1},
    {"max-json-depth", 1, 1000, 1, offsetof(struct gw_config, max_json_depth), NUM_INT, 0},
    {"max-inflight", 1, 1000000, 1, offsetof(struct gw_config, max_inflight), NUM_INT, 0},
    {"max-pending-per-subscription", 1, 100000000, 1, offsetof(struct gw_config, max_pending_sub),
     NUM_INT64, 0},
    {"max-pending", 1, 1000000000, 1, offsetof(struct gw_config, max_pending), NUM_INT64, 0},
    {"max-stanza", 1024, 64L * 1024 * 1024, 1, offsetof(struct gw_config, max_stanza), NUM_LONG, 0},
    {"dead-letter-max", 1, 10000000, 1, offsetof(struct gw_config, dead_letter_max), NUM_INT, 0},
    {"attempts-max", 1, 100000, 1, offsetof(struct gw_config, attempts_max), NUM_INT, 0},
    {"attempts-max-age", 60, 3650L * 86400, 1000, offsetof(struct gw_config, attempts_max_age_ms),
     NUM_INT64, 0},
    {"dead-letter-max-age", 60, 3650L * 86400, 1000,
     offsetof(struct gw_config, dead_letter_max_age_ms), NUM_INT64, 0},
    {"sse-history-bytes", 0, 1L << 30, 1, offsetof(struct gw_config, sse_history_bytes), NUM_SIZE,
     0},
    {"sse-queue-bytes", 4096, 1L << 30, 1, offsetof(struct gw_config, sse_queue_bytes), NUM_SIZE,
     0},
    {"websub-lease", 1, 3650L * 86400, 1000, offsetof(struct gw_config, websub_lease_default_ms),
     NUM_INT64, 0},
    {"websub-lease-min", 1, 3650L * 86400, 1000, offsetof(struct gw_config, websub_lease_min_ms),
     NUM_INT64, 0},
    {"websub-lease-max", 1, 3650L * 86400, 1000, offsetof(struct gw_config, websub_lease_max_ms),
     NUM_INT64, 0},
    {"feed-interval-min", 1, 86400, 1, offsetof(struct gw_config, feed_interval_min_s), NUM_INT, 0},
};

static size_t num_size(int kind)
{
    return kind == NUM_INT     ? sizeof(int)
           : kind == NUM_LONG  ? sizeof(long)
           : kind == NUM_INT64 ? sizeof(int64_t)
                               : sizeof(size_t);
}

/* Applies one option; name is the long option name without dashes. */
static int apply(struct gw_config *cfg, const char *name, const char *value, char *err,
                 size_t errlen)
{
    long v;
    if (strcmp(name, "listen") == 0) {
        char *host = NULL;
        int port = -1;
        if (gw_config_split_hostport(value, &host, &port) != 0)
            goto bad;
        if (port < 0) {
            free(host);
            snprintf(err, errlen, "invalid value for --listen: '%.200s' has no port (ADDR:PORT)",
                     value);
            return -1;
        }
        free(cfg->listen_host);
        cfg->listen_host = host;
        cfg->listen_port = port;
        return 0;
    }
    if (strcmp(name, "jid") == 0) {
        const char *at = strchr(value, '@');
        if (at == NULL || at == value || at[1] == '\0' || at[1] == '/')
            goto bad;
        return set_str(&cfg->jid, value);
    }
    if (strcmp(name, "password") == 0)
        return set_str(&cfg->password, value);
    if (strcmp(name, "password-file") == 0)
        return read_first_line(value, &cfg->password, err, errlen);
    if (strcmp(name, "xmpp-server") == 0) {
        char *host = NULL;
        int port = 0;
        if (gw_config_split_hostport(value, &host, &port) != 0)
            goto bad;
        free(cfg->xmpp_host);
        cfg->xmpp_host = host;
        cfg->xmpp_port = port;
        return 0;
    }
    if (strcmp(name, "service") == 0) {
        if (value[0] == '\0' || strchr(value, '/') == value)
            goto bad;
        return set_str(&cfg->service, value);
    }
    if (strcmp(name, "resource") == 0) {
        if (value[0] == '\0')
            goto bad;
        return set_str(&cfg->resource, value);
    }
    if (strcmp(name, "public-url") == 0) {
        size_t n = strlen(value);
        while (n > 0 && value[n - 1] == '/')
            n--;
        if ((strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) || n <= 8 ||
            n > 1024 || strpbrk(value, " \"<>?#") != NULL)
            goto bad;
        free(cfg->public_url);
        cfg->public_url = strndup(value, n);
        return cfg->public_url ? 0 : -1;
    }
    if (strcmp(name, "data-dir") == 0) {
        if (value[0] == '\0')
            goto bad;
        return set_str(&cfg->data_dir, value);
    }
    if (strcmp(name, "store") == 0) {
        char why[128];
        if (gw_store_url_check(value, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "invalid value for --store: %s", why);
            return -1;
        }
        return set_str(&cfg->store, value);
    }
    if (strcmp(name, "tls") == 0) {
        if (strcmp(value, "required") == 0)
            cfg->tls = GW_TLS_REQUIRED;
        else if (strcmp(value, "optional") == 0)
            cfg->tls = GW_TLS_OPTIONAL;
        else if (strcmp(value, "off") == 0)
            cfg->tls = GW_TLS_OFF;
        else
            goto bad;
        return 0;
    }
    if (strcmp(name, "log-level") == 0) {
        int level = gw_log_level_parse(value);
        if (level < 0)
            goto bad;
        cfg->log_level = level;
        return 0;
    }
    if (strcmp(name, "log-format") == 0) {
        if (strcmp(value, "text") != 0 && strcmp(value, "json") != 0)
            goto bad;
        cfg->log_json = strcmp(value, "json") == 0;
        return 0;
    }
    if (strcmp(name, "iq-timeout") == 0) {
        if (parse_int(value, 1, 3600, &v) != 0)
            goto bad;
        cfg->iq_timeout_ms = (int)v * 1000;
        return 0;
    }
    if (strcmp(name, "tls-ca") == 0)
        return set_str(&cfg->tls_ca, value);
    if (strcmp(name, "tls-cert") == 0)
        return set_str(&cfg->https_cert, value);
    if (strcmp(name, "tls-key") == 0)
        return set_str(&cfg->https_key, value);
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strcmp(name, flags[i].name) != 0)
            continue;
        int *field = (int *)((char *)cfg + flags[i].offset);
        if (value == NULL || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
            strcmp(value, "on") == 0 || strcmp(value, "1") == 0)
            *field = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                 strcmp(value, "off") == 0 || strcmp(value, "0") == 0)
            *field = 0;
        else
            goto bad;
        return 0;
    }
    if (strcmp(name, "reconnect-max") == 0) {
        if (parse_int(value, 1, 3600, &v) != 0)
            goto bad;
        cfg->reconnect_max_ms = (int)v * 1000;
        return 0;
    }
    if (strcmp(name, "max-body") == 0) {
        if (parse_int(value, 1024, 64L * 1024 * 1024, &v) != 0)
            goto bad;
        cfg->max_body = (size_t)v;
        return 0;
    }
    if (strcmp(name, "http-threads") == 0) {
        if (parse_int(value, 0, 64, &v) != 0)
            goto bad;
        cfg->http_threads = (int)v;
        return 0;
    }
    if (strcmp(name, "max-connections") == 0) {
        if (parse_int(value, 1, 900, &v) != 0)
            goto bad;
        cfg->max_connections = (int)v;
        return 0;
    }
    if (strcmp(name, "http-timeout") == 0) {
        if (parse_int(value, 1, 3600, &v) != 0)
            goto bad;
        cfg->http_timeout_s = (int)v;
        return 0;
    }
    if (strcmp(name, "api-token") == 0)
        return add_token(cfg, value, err, errlen);
    if (strcmp(name, "callback-allow") == 0) {
        struct gw_cidr c;
        if (gw_cidr_parse(value, &c) != 0)
            goto bad;
        struct gw_cidr *list =
            realloc(cfg->callback_allow, (size_t)(cfg->ncallback_allow + 1) * sizeof(*list));
        if (list == NULL)
            return -1;
        cfg->callback_allow = list;
        list[cfg->ncallback_allow++] = c;
        return 0;
    }
    if (strcmp(name, "hook-secret") == 0) {
        const char *eq = strchr(value, '=');
        if (eq == NULL || eq == value || eq[1] == '\0') {
            snprintf(err, errlen, "invalid value for --hook-secret: expected NODE=SECRET");
            return -1;
        }
        struct gw_hook_secret *hs =
            realloc(cfg->hook_secrets, (size_t)(cfg->nhook_secrets + 1) * sizeof(*hs));
        if (hs == NULL)
            return -1;
        cfg->hook_secrets = hs;
        hs[cfg->nhook_secrets].node = strndup(value, (size_t)(eq - value));
        hs[cfg->nhook_secrets].secret = strdup(eq + 1);
        cfg->nhook_secrets++;
        return 0;
    }
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        if (strcmp(name, numbers[i].name) != 0)
            continue;
        if (parse_int(value, numbers[i].min, numbers[i].max, &v) != 0)
            goto bad;
        char *field = (char *)cfg + numbers[i].offset;
        if (numbers[i].kind == NUM_INT)
            *(int *)field = (int)(v * numbers[i].scale);
        else if (numbers[i].kind == NUM_LONG)
            *(long *)field = v * numbers[i].scale;
        else if (numbers[i].kind == NUM_INT64)
            *(int64_t *)field = (int64_t)v * numbers[i].scale;
        else
            *(size_t *)field = (size_t)v * (size_t)numbers[i].scale;
        return 0;
    }
    snprintf(err, errlen, "unknown option '%s'", name);
    return -1;
bad:
    /* The value of a password option is never echoed. */
    snprintf(err, errlen, "invalid value for --%s: '%.200s'", name, value);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int load_file(struct gw_config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        } else if (value[0] == '"' || (vlen > 0 && value[vlen - 1] == '"')) {
            /* Never taken literally: a password with a stray quote would fail to log in later,
             * far from the cause. The value is not echoed (it may be a secret). */
            snprintf(err, errlen, "%s:%d: unbalanced double quote in the value of '%.100s'", path,
                     lineno, key);
            rc = -1;
            break;
        }
        if (strcmp(key, "config") == 0) {
            snprintf(err, errlen, "%s:%d: 'config' cannot be nested", path, lineno);
            rc = -1;
            break;
        }
        char inner[512];
        if (apply(cfg, key, value, inner, sizeof(inner)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, inner);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

static const struct option long_options[] = {
    {"config", required_argument, NULL, 0},
    {"listen", required_argument, NULL, 0},
    {"jid", required_argument, NULL, 0},
    {"password-file", required_argument, NULL, 0},
    {"xmpp-server", required_argument, NULL, 0},
    {"service", required_argument, NULL, 0},
    {"public-url", required_argument, NULL, 0},
    {"websub", optional_argument, NULL, 0},
    {"ui", required_argument, NULL, 0},
    {"websub-lease", required_argument, NULL, 0},
    {"websub-lease-min", required_argument, NULL, 0},
    {"websub-lease-max", required_argument, NULL, 0},
    {"feed-interval-min", required_argument, NULL, 0},
    {"resource", required_argument, NULL, 0},
    {"data-dir", required_argument, NULL, 0},
    {"store", required_argument, NULL, 0},
    {"tls", required_argument, NULL, 0},
    {"log-level", required_argument, NULL, 0},
    {"log-format", required_argument, NULL, 0},
    {"iq-timeout", required_argument, NULL, 0},
    {"reconnect-max", required_argument, NULL, 0},
    {"ping-interval", required_argument, NULL, 0},
    {"ping-timeout", required_argument, NULL, 0},
    {"connect-timeout", required_argument, NULL, 0},
    {"tls-ca", required_argument, NULL, 0},
    {"tls-cert", required_argument, NULL, 0},
    {"tls-key", required_argument, NULL, 0},
    {"tls-insecure", optional_argument, NULL, 0},
    {"exit-on-auth-failure", optional_argument, NULL, 0},
    {"auto-create", optional_argument, NULL, 0},
    {"max-body", required_argument, NULL, 0},
    {"http-threads", required_argument, NULL, 0},
    {"max-connections", required_argument, NULL, 0},
    {"http-timeout", required_argument, NULL, 0},
    {"delivery-timeout", required_argument, NULL, 0},
    {"retry-attempts", required_argument, NULL, 0},
    {"retry-max-age", required_argument, NULL, 0},
    {"retry-initial", required_argument, NULL, 0},
    {"retry-max-interval", required_argument, NULL, 0},
    {"catchup-max", required_argument, NULL, 0},
    {"max-host-connections", required_argument, NULL, 0},
    {"max-delivery-connections", required_argument, NULL, 0},
    {"hook-secret", required_argument, NULL, 0},
    {"api-token", required_argument, NULL, 0},
    {"callback-allow", required_argument, NULL, 0},
    {"max-json-depth", required_argument, NULL, 0},
    {"max-inflight", required_argument, NULL, 0},
    {"max-pending-per-subscription", required_argument, NULL, 0},
    {"max-pending", required_argument, NULL, 0},
    {"max-stanza", required_argument, NULL, 0},
    {"dead-letter-max", required_argument, NULL, 0},
    {"attempts-max", required_argument, NULL, 0},
    {"attempts-max-age", required_argument, NULL, 0},
    {"dead-letter-max-age", required_argument, NULL, 0},
    {"sse-history-bytes", required_argument, NULL, 0},
    {"sse-queue-bytes", required_argument, NULL, 0},
    {"sse-heartbeat", required_argument, NULL, 0},
    {"hook-replay-window", required_argument, NULL, 0},
    {"sse-history", required_argument, NULL, 0},
    {"check-config", no_argument, NULL, 'C'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void set_defaults(struct gw_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_port = 8080;
    cfg->tls = GW_TLS_REQUIRED;
    cfg->log_level = GW_LOG_INFO;
    cfg->iq_timeout_ms = 10000;
    cfg->reconnect_max_ms = 30000;
    cfg->ping_interval_ms = 10000;
    cfg->ping_timeout_ms = 10000;
    cfg->connect_timeout_ms = 20000;
    cfg->max_body = 1024 * 1024;
    cfg->http_threads = 0;
    cfg->max_connections = 512;
    cfg->http_timeout_s = 30;
    cfg->delivery_timeout_ms = 10000;
    cfg->retry_attempts = 10;
    cfg->retry_max_age_ms = 86400000;
    cfg->retry_initial_ms = 1000;
    cfg->retry_max_interval_ms = 3600000;
    cfg->catchup_max = 1000;
    cfg->max_host_connections = 8;
    cfg->max_delivery_connections = 256;
    cfg->sse_heartbeat_ms = 15000;
    cfg->hook_replay_window_ms = 86400000;
    cfg->sse_history = 256;
    cfg->max_json_depth = 64;
    cfg->max_inflight = 1000;
    cfg->max_pending_sub = 100000;
    cfg->max_pending = 5000000;
    cfg->max_stanza = 1024 * 1024;
    cfg->dead_letter_max = 10000;
    cfg->attempts_max = 100;
    cfg->attempts_max_age_ms = 7LL * 86400 * 1000;
    cfg->dead_letter_max_age_ms = 30LL * 86400 * 1000;
    cfg->sse_history_bytes = 1024 * 1024;
    cfg->sse_queue_bytes = 1024 * 1024;
    cfg->websub = 1;
    cfg->ui = 1;
    cfg->websub_lease_default_ms = 10LL * 86400 * 1000;
    cfg->websub_lease_min_ms = 60LL * 1000;
    cfg->websub_lease_max_ms = 30LL * 86400 * 1000;
    cfg->feed_interval_min_s = 60;
}

int gw_token_allows_node(const struct gw_token *token, const char *node)
{
    if (token == NULL || token->nnodes == 0)
        return 1;
    if (node == NULL)
        return 0;
    for (int i = 0; i < token->nnodes; i++)
        if (fnmatch(token->nodes[i], node, 0) == 0)
            return 1;
    return 0;
}

const char *gw_config_hook_secret(const struct gw_config *cfg, const char *node)
{
    const char *wildcard = NULL;
    for (int i = 0; cfg && i < cfg->nhook_secrets; i++) {
        if (strcmp(cfg->hook_secrets[i].node, node) == 0)
            return cfg->hook_secrets[i].secret;
        if (strcmp(cfg->hook_secrets[i].node, "*") == 0)
            wildcard = cfg->hook_secrets[i].secret;
    }
    return wildcard;
}

enum gw_config_result gw_config_load(struct gw_config *cfg, int argc, char **argv, char *err,
                                     size_t errlen)
{
    set_defaults(cfg);
    err[0] = '\0';
    /* First pass: only --config, --help and --version, so the file is applied before the
     * command line whatever the order of the arguments. */
    const char *config_path = NULL;
    int idx = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_options, &idx)) != -1) {
        if (c == 'h')
            return GW_CONFIG_HELP;
        if (c == 'V')
            return GW_CONFIG_VERSION;
        if (c == 'C')
            cfg->check_only = 1;
        if (c == '?') {
            snprintf(err, errlen, "unknown option '%s'", argv[optind - 1]);
            return GW_CONFIG_ERROR;
        }
        if (c == ':') {
            snprintf(err, errlen, "option '%s' needs a value", argv[optind - 1]);
            return GW_CONFIG_ERROR;
        }
        if (c == 0 && strcmp(long_options[idx].name, "config") == 0)
            config_path = optarg;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return GW_CONFIG_ERROR;
    }
    if (config_path != NULL && load_file(cfg, config_path, err, errlen) != 0)
        return GW_CONFIG_ERROR;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":", long_options, &idx)) != -1) {
        if (c != 0 || strcmp(long_options[idx].name, "config") == 0)
            continue;
        if (apply(cfg, long_options[idx].name, optarg, err, errlen) != 0)
            return GW_CONFIG_ERROR;
    }
    const char *env_pass = getenv("PUBSUBGW_XMPP_PASSWORD");
    if (cfg->password == NULL && env_pass != NULL && env_pass[0] != '\0')
        set_str(&cfg->password, env_pass);

    if (cfg->listen_host == NULL && set_str(&cfg->listen_host, "127.0.0.1") != 0)
        goto nomem;
    if (cfg->jid == NULL) {
        snprintf(err, errlen, "--jid is required");
        return GW_CONFIG_ERROR;
    }
    if (cfg->password == NULL) {
        snprintf(err, errlen,
                 "no XMPP password: use --password-file, PUBSUBGW_XMPP_PASSWORD "
                 "or 'password' in the config file");
        return GW_CONFIG_ERROR;
    }
    const char *domain = strchr(cfg->jid, '@') + 1;
    size_t dlen = strcspn(domain, "/");
    if (cfg->service == NULL) {
        char buf[1100];
        snprintf(buf, sizeof(buf), "pubsub.%.*s", (int)dlen, domain);
        if (set_str(&cfg->service, buf) != 0)
            goto nomem;
    }
    if (cfg->resource == NULL && set_str(&cfg->resource, "pubsubgw") != 0)
        goto nomem;
    if (cfg->data_dir == NULL && set_str(&cfg->data_dir, "pubsubgw-data") != 0)
        goto nomem;
    if (cfg->store == NULL) {
        char buf[4200];
        snprintf(buf, sizeof(buf), "sqlite:%s/pubsubgw.db", cfg->data_dir);
        if (set_str(&cfg->store, buf) != 0)
            goto nomem;
    }
    if ((cfg->https_cert == NULL) != (cfg->https_key == NULL)) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return GW_CONFIG_ERROR;
    }
    if (cfg->public_url == NULL) {
        char buf[400];
        int v6 = strchr(cfg->listen_host, ':') != NULL;
        snprintf(buf, sizeof(buf), "%s://%s%s%s:%d", cfg->https_cert ? "https" : "http",
                 v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", cfg->listen_port);
        if (set_str(&cfg->public_url, buf) != 0)
            goto nomem;
    }
    if (cfg->websub_lease_min_ms > cfg->websub_lease_max_ms ||
        cfg->websub_lease_default_ms < cfg->websub_lease_min_ms ||
        cfg->websub_lease_default_ms > cfg->websub_lease_max_ms) {
        snprintf(err, errlen,
                 "--websub-lease must lie between --websub-lease-min and --websub-lease-max");
        return GW_CONFIG_ERROR;
    }
    const char *files[] = {cfg->https_cert, cfg->https_key};
    for (int i = 0; i < 2; i++) {
        FILE *f = files[i] ? fopen(files[i], "r") : NULL;
        if (files[i] != NULL && f == NULL) {
            snprintf(err, errlen, "cannot read %s %s: %s", i ? "--tls-key" : "--tls-cert", files[i],
                     strerror(errno));
            return GW_CONFIG_ERROR;
        }
        if (f)
            fclose(f);
    }
    if (cfg->ntokens == 0 && !gw_addr_is_loopback_text(cfg->listen_host)) {
        snprintf(err, errlen,
                 "refusing to listen on %s without --api-token: anyone who can reach "
                 "it could publish and subscribe",
                 cfg->listen_host);
        return GW_CONFIG_ERROR;
    }
    struct gw_policy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        goto nomem;
    p->tokens = cfg->tokens;
    p->ntokens = cfg->ntokens;
    p->allow = cfg->callback_allow;
    p->nallow = cfg->ncallback_allow;
    atomic_store(&cfg->policy, p);
    return GW_CONFIG_OK;
nomem:
    snprintf(err, errlen, "out of memory");
    return GW_CONFIG_ERROR;
}

const struct gw_policy *gw_config_policy(const struct gw_config *cfg)
{
    return atomic_load(&((struct gw_config *)cfg)->policy);
}

static int differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

static int hook_secrets_differ(const struct gw_config *a, const struct gw_config *b)
{
    if (a->nhook_secrets != b->nhook_secrets)
        return 1;
    for (int i = 0; i < a->nhook_secrets; i++)
        if (differs(a->hook_secrets[i].node, b->hook_secrets[i].node) ||
            differs(a->hook_secrets[i].secret, b->hook_secrets[i].secret))
            return 1;
    return 0;
}

int gw_config_reload(struct gw_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct gw_config *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (gw_config_load(n, argc, argv, err, errlen) != GW_CONFIG_OK) {
        gw_config_free(n);
        free(n);
        return -1;
    }
    /* What the running gateway cannot take without restarting: named, and kept as it runs. */
    const struct {
        const char *name;
        int changed;
    } fixed[] = {
        {"listen", differs(cfg->listen_host, n->listen_host) || cfg->listen_port != n->listen_port},
        {"jid", differs(cfg->jid, n->jid)},
        {"password", differs(cfg->password, n->password)},
        {"xmpp-server", differs(cfg->xmpp_host, n->xmpp_host) || cfg->xmpp_port != n->xmpp_port},
        {"service", differs(cfg->service, n->service)},
        {"data-dir", differs(cfg->data_dir, n->data_dir)},
        {"store", differs(cfg->store, n->store)},
        {"resource", differs(cfg->resource, n->resource)},
        {"public-url", differs(cfg->public_url, n->public_url)},
        {"tls", cfg->tls != n->tls || differs(cfg->tls_ca, n->tls_ca)},
        {"tls-cert",
         differs(cfg->https_cert, n->https_cert) || differs(cfg->https_key, n->https_key)},
        {"http-threads", cfg->http_threads != n->http_threads},
        {"max-connections", cfg->max_connections != n->max_connections},
        {"http-timeout", cfg->http_timeout_s != n->http_timeout_s},
        {"hook-secret", hook_secrets_differ(cfg, n)},
    };
    size_t len = 0;
    err[0] = '\0';
#define NAME_CHANGED(opt)                                                                          \
    do {                                                                                           \
        if (len + strlen(opt) + 3 < errlen)                                                        \
            len += (size_t)snprintf(err + len, errlen - len, "%s%s", len ? ", " : "", (opt));      \
    } while (0)
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (fixed[i].changed)
            NAME_CHANGED(fixed[i].name);
    /* The tables say which options take effect now (read where they are used) and which wait
     * for a restart. */
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        char *to = (char *)cfg + numbers[i].offset;
        const char *from = (const char *)n + numbers[i].offset;
        size_t size = num_size(numbers[i].kind);
        if (!numbers[i].restart)
            memcpy(to, from, size);
        else if (memcmp(to, from, size) != 0)
            NAME_CHANGED(numbers[i].name);
    }
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        int *to = (int *)((char *)cfg + flags[i].offset);
        int from = *(const int *)((const char *)n + flags[i].offset);
        if (!flags[i].restart)
            *to = from;
        else if (*to != from)
            NAME_CHANGED(flags[i].name);
    }
#undef NAME_CHANGED
    cfg->log_level = n->log_level;
    cfg->log_json = n->log_json;
    cfg->iq_timeout_ms = n->iq_timeout_ms;
    cfg->reconnect_max_ms = n->reconnect_max_ms;
    cfg->max_body = n->max_body;
    /* Tokens and the allow-list: one pointer, read by other threads. The new configuration
     * stays allocated with its policy (its arrays are the policy's). */
    struct gw_policy *np = atomic_load(&n->policy);
    atomic_store(&n->policy, NULL);
    np->owner = n;
    np->retired = atomic_load(&cfg->policy);
    atomic_store(&cfg->policy, np);
    return 0;
}

void gw_config_free(struct gw_config *cfg)
{
    if (cfg == NULL)
        return;
    struct gw_policy *p = atomic_load(&cfg->policy);
    while (p != NULL) {
        struct gw_policy *next = p->retired;
        if (p->owner != NULL) {
            gw_config_free(p->owner);
            free(p->owner);
        }
        free(p);
        p = next;
    }
    atomic_store(&cfg->policy, NULL);
    free(cfg->listen_host);
    if (cfg->password != NULL)
        memset(cfg->password, 0, strlen(cfg->password));
    free(cfg->password);
    free(cfg->jid);
    free(cfg->xmpp_host);
    free(cfg->tls_ca);
    free(cfg->https_cert);
    free(cfg->https_key);
    free(cfg->service);
    free(cfg->data_dir);
    free(cfg->store);
    free(cfg->resource);
    free(cfg->public_url);
    for (int i = 0; i < cfg->nhook_secrets; i++) {
        free(cfg->hook_secrets[i].node);
        if (cfg->hook_secrets[i].secret)
            memset(cfg->hook_secrets[i].secret, 0, strlen(cfg->hook_secrets[i].secret));
        free(cfg->hook_secrets[i].secret);
    }
    free(cfg->hook_secrets);
    for (int i = 0; i < cfg->ntokens; i++) {
        memset(cfg->tokens[i].token, 0, strlen(cfg->tokens[i].token));
        free(cfg->tokens[i].token);
        free(cfg->tokens[i].name);
        for (int k = 0; k < cfg->tokens[i].nnodes; k++)
            free(cfg->tokens[i].nodes[k]);
        free(cfg->tokens[i].nodes);
    }
    free(cfg->tokens);
    free(cfg->callback_allow);
    memset(cfg, 0, sizeof(*cfg));
}
