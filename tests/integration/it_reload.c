/* Configuration reload on SIGHUP: tokens, log format and limits change at once; the XMPP session
 * and open connections (an event stream) stay; an option that needs a restart is named and
 * keeps its value; an invalid file changes nothing. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

static struct it_gw gw;
static char conf[400];

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static long status_with(const char *token, const char *method, const char *path, const char *json)
{
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    struct it_resp r;
    long st = it_req_auth(&gw, method, path, auth, json, &r);
    it_resp_free(&r);
    return st;
}

static int log_has(const char *text)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "grep -q -- '%s' %s", text, gw.log);
    return system(cmd) == 0;
}

static long metric(const char *name)
{
    struct it_resp r;
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer second-token-000000002");
    it_req_auth(&gw, "GET", "/metrics", auth, NULL, &r);
    char needle[200];
    snprintf(needle, sizeof(needle), "\n%s ", name);
    const char *p = r.body ? strstr(r.body, needle) : NULL;
    long v = p ? atol(p + strlen(needle)) : -1;
    it_resp_free(&r);
    return v;
}

int main(void)
{
    char dir[] = "/tmp/pubsubgw-it-reload-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    snprintf(conf, sizeof(conf), "%s/pubsubgw.conf", dir);
    write_conf("api-token = first-token-0000000001 name=first\nlog-level = info\n");
    const char *extra[] = {"--config", conf, NULL};
    if (it_gw_start(&gw, "gw15@localhost", "gw15", it_server_port(), extra, 1) != 0)
        return 1;
    const char *node = it_unique("reload");
    char body[300], path[300], sse_out[400], cmd[900];
    snprintf(body, sizeof(body), "{\"node\":\"%s\"}", node);
    CHECK_INT(status_with("first-token-0000000001", "POST", "/v1/nodes", body), 201);

    /* An event stream opened with the first token before the reload. */
    snprintf(sse_out, sizeof(sse_out), "%s/sse.out", dir);
    snprintf(cmd, sizeof(cmd),
             "curl -sN -m 8 -H 'Authorization: Bearer first-token-0000000001' "
             "%s/v1/nodes/%s/events > %s 2>/dev/null &",
             gw.base, node, sse_out);
    CHECK_INT(system(cmd), 0);
    usleep(500000);

    write_conf("api-token = second-token-000000002 name=second\nlog-format = json\n"
               "max-body = 2048\nresource = elsewhere\n");
    kill(gw.pid, SIGHUP);
    usleep(300000);
    CHECK(log_has("configuration reloaded: 1 API tokens"));
    CHECK(log_has("need a restart and keep their running values: resource"));
    CHECK(log_has("^{\"ts\":")); /* the log format took effect */
    CHECK_INT(status_with("first-token-0000000001", "GET", "/v1/nodes", NULL), 401);
    CHECK_INT(status_with("second-token-000000002", "GET", "/v1/nodes", NULL), 200);
    char big[3000];
    memset(big, ' ', sizeof(big) - 1);
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    snprintf(path, sizeof(path), "/v1/nodes/%s/items", node);
    CHECK_INT(status_with("second-token-000000002", "POST", path, big), 413); /* max-body */
    /* The session stayed (one connect), and so did the stream: it gets an item published now. */
    CHECK_INT(metric("pubsubgw_xmpp_connects_total"), 1);
    snprintf(path, sizeof(path), "/v1/nodes/%s/items?id=after-reload", node);
    CHECK_INT(status_with("second-token-000000002", "POST", path, "{\"r\":1}"), 201);
    usleep(500000);
    snprintf(cmd, sizeof(cmd), "grep -q after-reload %s", sse_out);
    CHECK(system(cmd) == 0);

    /* An invalid file: refused, nothing changes. */
    write_conf("api-token = short\n");
    kill(gw.pid, SIGHUP);
    usleep(300000);
    CHECK(log_has("configuration not reloaded, the running one is unchanged"));
    CHECK_INT(status_with("second-token-000000002", "GET", "/v1/nodes", NULL), 200);
    CHECK(!log_has("second-token-000000002") && !log_has("first-token-0000000001"));

    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    CHECK_DONE();
}
