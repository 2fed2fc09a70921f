/* The command line as a user meets it: --help, one-line errors with exit code 2, and a gateway
 * configured entirely from a config file. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs the binary with args, captures stdout+stderr into out; returns the exit code. */
static int run(const char *args, char *out, size_t cap)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "env -u PUBSUBGW_XMPP_PASSWORD %s %s 2>&1", getenv("PUBSUBGW_BIN"),
             args);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, cap - 1, f) : 0;
    out[n] = '\0';
    int st = f ? pclose(f) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

int main(void)
{
    char out[8192];
    CHECK_INT(run("--help", out, sizeof(out)), 0);
    const char *options[] = {"--config",
                             "--listen",
                             "--jid",
                             "--password-file",
                             "--xmpp-server",
                             "--service",
                             "--data-dir",
                             "--tls",
                             "--log-level",
                             "--iq-timeout",
                             "PUBSUBGW_XMPP_PASSWORD"};
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        CHECK(strstr(out, options[i]) != NULL);
        if (strstr(out, options[i]) == NULL)
            fprintf(stderr, "  --help lacks %s\n", options[i]);
    }
    CHECK_INT(run("--version", out, sizeof(out)), 0);
    CHECK(strncmp(out, "pubsubgw ", 9) == 0);

    CHECK_INT(run("--no-such-option", out, sizeof(out)), 2);
    CHECK_INT(lines(out), 1);
    CHECK_INT(run("--jid gw@localhost --tls sometimes", out, sizeof(out)), 2);
    CHECK_INT(lines(out), 1);
    CHECK(strstr(out, "--tls") != NULL);
    CHECK_INT(run("--config /nonexistent/pubsubgw.conf", out, sizeof(out)), 2);
    CHECK_INT(lines(out), 1);
    CHECK_INT(run("--jid gw@localhost", out, sizeof(out)), 2);
    CHECK(strstr(out, "password") != NULL);
    CHECK_INT(run("--jid gw@localhost --password-file /nonexistent", out, sizeof(out)), 2);
    CHECK_INT(lines(out), 1);

    /* Everything from a config file, the password included. */
    char dir[] = "/tmp/pubsubgw-cfg-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    int port = it_free_port();
    char path[300];
    snprintf(path, sizeof(path), "%s/gw.conf", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "# test configuration\njid = gw@localhost\npassword = gw\nxmpp-server = 127.0.0.1:%d\n"
            "listen = 127.0.0.1:%d\ntls = off\ndata-dir = %s/data\nservice = pubsub.localhost\n",
            it_server_port(), port, dir);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        char logp[320];
        snprintf(logp, sizeof(logp), "%s/log", dir);
        FILE *lf = freopen(logp, "w", stderr);
        (void)lf;
        unsetenv("PUBSUBGW_XMPP_PASSWORD");
        execl(getenv("PUBSUBGW_BIN"), "pubsubgw", "--config", path, (char *)NULL);
        _exit(127);
    }
    struct it_gw gw = {.pid = pid, .port = port};
    snprintf(gw.base, sizeof(gw.base), "http://127.0.0.1:%d", port);
    CHECK_INT(it_gw_wait_health(&gw, 1, 10000), 0);
    struct it_resp r;
    it_get(&gw, "/v1/health", &r);
    CHECK_STR(json_string_value(json_object_get(r.json, "service")), "pubsub.localhost");
    CHECK(strstr(r.body, "\"gw\"") == NULL); /* the password is never in an answer */
    it_resp_free(&r);
    /* A second gateway on the same data directory is refused, with a reason, before it does
     * anything; the first one carries on. */
    char args[600];
    snprintf(args, sizeof(args),
             "--jid gw@localhost --password-file %s/gw.conf --xmpp-server 127.0.0.1:%d --tls off "
             "--listen 127.0.0.1:%d --data-dir %s/data",
             dir, it_server_port(), it_free_port(), dir);
    CHECK_INT(run(args, out, sizeof(out)), 1);
    CHECK(strstr(out, "in use by another gateway") != NULL);
    CHECK_INT(lines(out), 1);
    CHECK_INT(it_gw_wait_health(&gw, 1, 1000), 0);
    CHECK_INT(it_gw_stop(&gw, SIGINT), 0);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    CHECK_DONE();
}
