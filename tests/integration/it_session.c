/* The XMPP session under faults, on a server of its own: IQ timeout (504), a server killed with
 * requests pending (503 at once, not after the timeout), reconnection when the server returns,
 * and SIGTERM with a request pending (answered, clean exit). */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static struct it_server px;

struct bg {
    struct it_gw *gw;
    const char *node;
    struct it_resp r;
    pthread_t t;
};

static void *bg_publish(void *arg)
{
    struct bg *b = arg;
    char url[600];
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items", b->gw->base, b->node);
    it_http("POST", url, "application/json", "{\"bg\":1}", 8, &b->r);
    return NULL;
}

/* may_exist: after a restart, where a server that stores nodes on disk (ejabberd) may still
 * have it. */
static void create_node(struct it_gw *gw, const char *node, int may_exist)
{
    struct it_resp r;
    char body[200];
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    it_post_json(gw, "/v1/nodes", body, &r);
    if (may_exist && r.status == 409)
        r.status = 201;
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
}

int main(void)
{
    if (it_server_start(&px) != 0) {
        fprintf(stderr, "could not start a private Prosody\n");
        return 1;
    }
    struct it_resp r;
    const char *node = it_unique("sess");

    /* IQ timeout: a frozen server answers nothing; the request gets 504 after --iq-timeout. */
    struct it_gw gw1;
    const char *fast[] = {"--iq-timeout", "1", NULL};
    CHECK_INT(it_gw_start(&gw1, "gw@localhost", "gw", px.port, fast, 1), 0);
    create_node(&gw1, node, 0);
    kill(it_server_pid(&px), SIGSTOP);
    char url[600];
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items", gw1.base, node);
    it_http("POST", url, "application/json", "{}", 2, &r);
    it_check_problem(&r, 504, NULL);
    CHECK_STR(json_string_value(json_object_get(r.json, "xmpp_condition")),
              "remote-server-timeout");
    CHECK(r.seconds >= 0.9 && r.seconds < 3.0);
    it_resp_free(&r);
    kill(it_server_pid(&px), SIGCONT);
    CHECK_INT(it_gw_stop(&gw1, SIGTERM), 0);

    /* Server killed while a request waits: the request fails at once with 503. */
    struct it_gw gw;
    CHECK_INT(it_gw_start(&gw, "gw@localhost", "gw", px.port, NULL, 1), 0);
    kill(it_server_pid(&px), SIGSTOP);
    struct bg b = {.gw = &gw, .node = node};
    pthread_create(&b.t, NULL, bg_publish, &b);
    usleep(300000);
    kill(it_server_pid(&px), SIGKILL);
    pthread_join(b.t, NULL);
    it_check_problem(&b.r, 503, NULL);
    CHECK(b.r.seconds < 2.0); /* not the 10 s IQ timeout */
    CHECK(atoi(b.r.retry_after) > 0);
    it_resp_free(&b.r);
    CHECK_INT(it_gw_wait_health(&gw, 0, 2000), 0);
    it_get(&gw, "/v1/nodes", &r);
    it_check_problem(&r, 503, NULL);
    it_resp_free(&r);

    /* The server comes back on the same port: the gateway reconnects by itself. */
    CHECK_INT(it_server_start(&px), 0);
    CHECK_INT(it_gw_wait_health(&gw, 1, 15000), 0);
    create_node(&gw, node, 1); /* Prosody's memory storage: the node went with the process */
    snprintf(url, sizeof(url), "%s/v1/nodes/%s/items", gw.base, node);
    it_http("POST", url, "application/json", "{\"after\":\"reconnect\"}", 21, &r);
    CHECK_INT(r.status, 201);
    it_resp_free(&r);
    it_get(&gw, "/metrics", &r);
    CHECK(strstr(r.body, "pubsubgw_xmpp_connects_total 2") != NULL);
    CHECK(strstr(r.body, "pubsubgw_xmpp_disconnects_total 1") != NULL);
    it_resp_free(&r);

    /* SIGTERM with a request pending: it is answered, and the gateway exits cleanly. */
    kill(it_server_pid(&px), SIGSTOP);
    struct bg b2 = {.gw = &gw, .node = node};
    pthread_create(&b2.t, NULL, bg_publish, &b2);
    usleep(300000);
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    pthread_join(b2.t, NULL);
    it_check_problem(&b2.r, 503, NULL);
    CHECK(b2.r.seconds < 5.0);
    it_resp_free(&b2.r);
    kill(it_server_pid(&px), SIGCONT);

    it_server_remove(&px);
    CHECK_DONE();
}
