/* pubsubgw: wires the configuration, the loop, the XMPP session and the HTTP front end
 * together, and shuts them down in the order that answers every request in flight. */
#include "cmd.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "status.h"
#include "store.h"
#include "webhooks.h"

#include "../http/client.h"
#include "../http/server.h"
#include "../xmpp/session.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PUBSUBGW_VERSION
#define PUBSUBGW_VERSION "0.0.0"
#endif

struct app {
    struct gw_config *cfg;
    int argc;
    char **argv;
    struct gw_loop *loop;
    struct gw_mailbox mb;
    struct gw_xmpp *xmpp;
    struct gw_store *store;
    struct gw_httpc *httpc;
    struct gw_hooks *hooks;
    int sigfd;
    int quiescing; /* stopping: the loop runs on until no delivery is in flight */
};

/* While the gateway stops: ends the last loop run once no delivery is in flight. */
static int on_round(struct gw_loop *loop, void *arg)
{
    struct app *app = arg;
    if (app->quiescing && gw_hooks_quiesce(app->hooks) == 0)
        gw_loop_stop(loop);
    return 0;
}

static void on_quiesce_timeout(struct gw_loop *loop, void *arg)
{
    (void)arg;
    gw_loop_stop(loop);
}

static void exec_xmpp(void *arg, struct gw_cmd *cmd)
{
    struct app *app = arg;
    gw_xmpp_execute(app->xmpp, cmd);
}

static void on_events(json_t *events, void *arg)
{
    struct app *app = arg;
    gw_hooks_on_events(app->hooks, events);
}

static void on_xmpp_state(int up, void *arg)
{
    struct app *app = arg;
    if (up)
        gw_hooks_on_xmpp_up(app->hooks);
    else
        gw_hooks_on_xmpp_down(app->hooks);
}

static void on_node_appeared(const char *service, const char *node, void *arg)
{
    struct app *app = arg;
    gw_hooks_on_node_appeared(app->hooks, service, node);
}

static void drain_mailbox(struct gw_loop *loop, void *arg)
{
    (void)loop;
    struct app *app = arg;
    struct gw_cmd *cmd = gw_mailbox_take(&app->mb);
    while (cmd != NULL) {
        struct gw_cmd *next = cmd->next;
        if (cmd->status != 0) {
            /* Settled before it reached the loop (a refused callback): just complete it here. */
            json_t *result = cmd->result;
            cmd->result = NULL;
            gw_cmd_finish(cmd, cmd->status, result);
        } else if ((cmd->op == GW_OP_PUBLISH || cmd->op == GW_OP_SUB_CREATE) &&
                   gw_hooks_backlog_full(app->hooks)) {
            /* Backpressure: the callbacks are this far behind; take no more until they catch up. */
            cmd->retry_after = 30;
            gw_cmd_fail(cmd, 503, "Delivery backlog full",
                        "webhook deliveries are behind by --max-pending events", NULL);
        } else if (GW_OP_IS_REGISTRY(cmd->op))
            gw_hooks_execute(app->hooks, cmd);
        else
            gw_xmpp_execute(app->xmpp, cmd);
        cmd = next;
    }
}

/* SIGHUP: what may change while running changes now; connections and the XMPP session stay. */
static void reload(struct app *app)
{
    char err[512];
    if (gw_config_reload(app->cfg, app->argc, app->argv, err, sizeof(err)) != 0) {
        gw_error("configuration not reloaded, the running one is unchanged: %s", err);
        return;
    }
    gw_log_threshold = app->cfg->log_level;
    gw_log_json = app->cfg->log_json;
    const struct gw_policy *pol = gw_config_policy(app->cfg);
    gw_httpc_set_policy(app->httpc, pol->allow, (size_t)pol->nallow);
    gw_info("configuration reloaded: %d API tokens, %d allowed callback ranges", pol->ntokens,
            pol->nallow);
    if (err[0] != '\0')
        gw_warn("configuration: changed options need a restart and keep their running values: %s",
                err);
}

static void on_signal(struct gw_loop *loop, int fd, int revents, void *arg)
{
    (void)revents;
    struct app *app = arg;
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return;
    if (si.ssi_signo == SIGHUP) {
        reload(app);
        return;
    }
    gw_info("signal %u: shutting down", si.ssi_signo);
    gw_loop_stop(loop);
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* Samples the counters for the rates of GET /v1/stats. */
static void on_sample(struct gw_loop *loop, void *arg)
{
    gw_status_sample(gw_wall_ms());
    gw_loop_timer_add(loop, GW_STATS_INTERVAL_S * 1000, on_sample, arg);
}

int main(int argc, char **argv)
{
    struct gw_config cfg;
    char err[512];
    switch (gw_config_load(&cfg, argc, argv, err, sizeof(err))) {
    case GW_CONFIG_HELP:
        fputs(gw_config_usage(), stdout);
        gw_config_free(&cfg);
        return 0;
    case GW_CONFIG_VERSION:
        puts("pubsubgw " PUBSUBGW_VERSION);
        gw_config_free(&cfg);
        return 0;
    case GW_CONFIG_ERROR:
        fprintf(stderr, "pubsubgw: %s (see --help)\n", err);
        gw_config_free(&cfg);
        return 2;
    case GW_CONFIG_OK:
        break;
    }
    if (cfg.check_only) {
        printf("pubsubgw: configuration OK\n");
        gw_config_free(&cfg);
        return 0;
    }
    gw_log_threshold = cfg.log_level;
    gw_log_json = cfg.log_json;
    atomic_store(&gw_status.started_at, (long)time(NULL));

    /* Signals are taken through a signalfd in the loop: block them before any thread starts so
     * that the HTTP threads inherit the mask. */
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct app app = {0};
    app.cfg = &cfg;
    app.argc = argc;
    app.argv = argv;
    struct gw_http *http = NULL;
    app.sigfd = -1;
    if (make_dir(cfg.data_dir) != 0) {
        fprintf(stderr, "pubsubgw: cannot create --data-dir %s: %s\n", cfg.data_dir,
                strerror(errno));
        goto out;
    }
    app.loop = gw_loop_new();
    if (app.loop == NULL || gw_mailbox_init(&app.mb, app.loop) != 0)
        goto out;
    app.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (app.sigfd < 0)
        goto out;
    gw_loop_watch(app.loop, app.sigfd, POLLIN, on_signal, &app);
    app.xmpp = gw_xmpp_new(&cfg, app.loop);
    if (app.xmpp == NULL) {
        fprintf(stderr, "pubsubgw: cannot set up the XMPP session\n");
        goto out;
    }
    if (strncmp(cfg.store, "sqlite:", 7) == 0)
        gw_status_set_store_file(cfg.store + 7);
    app.store = gw_store_open(cfg.store, err, sizeof(err));
    if (app.store == NULL) {
        fprintf(stderr, "pubsubgw: %s\n", err);
        goto out;
    }
    gw_status.store_kind = gw_store_kind(app.store);
    atomic_store(&gw_status.store_up, 1);
    app.httpc = gw_httpc_new(app.loop, cfg.max_host_connections, cfg.max_delivery_connections);
    if (app.httpc != NULL)
        gw_httpc_set_policy(app.httpc, gw_config_policy(&cfg)->allow,
                            (size_t)gw_config_policy(&cfg)->nallow);
    app.hooks = app.httpc ? gw_hooks_new(&cfg, app.loop, app.store, gw_httpc_sender(app.httpc),
                                         exec_xmpp, &app)
                          : NULL;
    if (app.hooks == NULL) {
        fprintf(stderr, "pubsubgw: cannot load the webhook subscriptions\n");
        goto out;
    }
    /* From here on the loop hands the store's hot work (events in, deliveries read and
     * written) to the store's own thread. */
    if (gw_store_thread_start(app.store, app.loop) != 0) {
        fprintf(stderr, "pubsubgw: cannot start the store's thread\n");
        goto out;
    }
    gw_xmpp_set_event_cb(app.xmpp, on_events, &app);
    gw_xmpp_set_state_cb(app.xmpp, on_xmpp_state, &app);
    gw_xmpp_set_node_cb(app.xmpp, on_node_appeared, &app);
    gw_loop_on_wake(app.loop, drain_mailbox, &app);
    http = gw_http_start(&cfg, &app.mb, app.loop, err, sizeof(err));
    if (http == NULL) {
        fprintf(stderr, "pubsubgw: %s\n", err);
        goto out;
    }
    gw_info("pubsubgw %s listening on http://%s%s%s:%d as %s, default service %s", PUBSUBGW_VERSION,
            strchr(cfg.listen_host, ':') ? "[" : "", cfg.listen_host,
            strchr(cfg.listen_host, ':') ? "]" : "", gw_http_port(http), cfg.jid, cfg.service);
    gw_xmpp_start(app.xmpp);
    on_sample(app.loop, NULL);
    rc = gw_loop_run(app.loop) == 0 ? 0 : 1;
    if (gw_xmpp_fatal(app.xmpp))
        rc = 3;

    /* Shutdown: new requests get 503 at once, queued and pending commands are answered, then
     * HTTP stops. */
    gw_http_drain(http);
    struct gw_cmd *left = gw_mailbox_close(&app.mb);
    while (left != NULL) {
        struct gw_cmd *next = left->next;
        left->retry_after = 5;
        gw_cmd_fail(left, 503, "Shutting down", "the gateway is stopping", NULL);
        left = next;
    }
    /* Deliveries in flight are answered first (two seconds at most): each would otherwise be
     * made again at the next start. None starts meanwhile. */
    int inflight = gw_hooks_quiesce(app.hooks);
    if (inflight > 0 && gw_loop_on_round(app.loop, on_round, &app) == 0) {
        gw_info("waiting for %d deliver%s in flight", inflight, inflight == 1 ? "y" : "ies");
        app.quiescing = 1;
        gw_loop_rearm(app.loop);
        uint64_t t = gw_loop_timer_add(app.loop, 2000, on_quiesce_timeout, NULL);
        gw_loop_run(app.loop);
        gw_loop_timer_cancel(app.loop, t);
        app.quiescing = 0;
    }
    gw_xmpp_shutdown(app.xmpp);
    gw_hooks_close_streams(app.hooks);
    gw_store_settle(app.store); /* requests waiting for the store's thread are answered */
    gw_http_stop(http);
    http = NULL;
    gw_info("stopped");
out:
    gw_http_stop(http);
    gw_hooks_free(app.hooks);
    gw_httpc_free(app.httpc);
    gw_store_close(app.store);
    gw_xmpp_free(app.xmpp);
    if (app.sigfd >= 0)
        close(app.sigfd);
    if (app.loop != NULL) {
        gw_mailbox_destroy(&app.mb);
        gw_loop_free(app.loop);
    }
    gw_config_free(&cfg);
    return rc;
}
