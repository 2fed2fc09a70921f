/* HTTPS on the listener (--tls-cert, --tls-key), checked with the curl command-line client
 * against a test certificate made here: the API answers over TLS with the certificate verified,
 * plain HTTP on that port gets nothing, and a key that does not match its certificate is refused
 * at start. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static int run_out(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
    char dir[] = "/tmp/pubsubgw-it-https-XXXXXX", cmd[2000], out[4096];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
             "-addext subjectAltName=DNS:localhost -keyout %s/key.pem -out %s/cert.pem "
             ">/dev/null 2>&1 && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
             "-subj /CN=other -keyout %s/other-key.pem -out %s/other.pem >/dev/null 2>&1",
             dir, dir, dir, dir);
    CHECK_INT(system(cmd), 0);
    char cert[300], key[300], other_key[300];
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(other_key, sizeof(other_key), "%s/other-key.pem", dir);

    struct it_gw gw;
    const char *extra[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    /* The harness speaks http://: the start is judged by curl over https below. */
    CHECK_INT(it_gw_start(&gw, "gw14@localhost", "gw14", it_server_port(), extra, IT_NO_WAIT), 0);
    int up = 0;
    for (int i = 0; i < 100 && !up; i++) {
        snprintf(
            cmd, sizeof(cmd),
            "curl -s --cacert %s https://localhost:%d/v1/health -o /dev/null -w '%%{http_code}'",
            cert, gw.port);
        up = run_out(cmd, out, sizeof(out)) == 0 && strcmp(out, "200") == 0;
        if (!up)
            usleep(100000);
    }
    CHECK(up);
    snprintf(cmd, sizeof(cmd),
             "curl -s --cacert %s -X POST https://localhost:%d/v1/nodes -H 'Content-Type: "
             "application/json' -d '{\"node\":\"%s\"}' -w ' %%{http_code}'",
             cert, gw.port, it_unique("https"));
    CHECK_INT(run_out(cmd, out, sizeof(out)), 0);
    CHECK(strstr(out, " 201") != NULL);
    /* without the CA, curl refuses the certificate; plain HTTP gets no HTTP answer */
    snprintf(cmd, sizeof(cmd), "curl -s https://localhost:%d/v1/health -o /dev/null", gw.port);
    CHECK(run_out(cmd, out, sizeof(out)) != 0);
    snprintf(cmd, sizeof(cmd),
             "curl -s -m 5 http://127.0.0.1:%d/v1/health -o /dev/null -w '%%{http_code}'", gw.port);
    run_out(cmd, out, sizeof(out));
    CHECK_STR(out, "000");
    CHECK_INT(it_gw_stop(&gw, SIGTERM), 0);

    /* a key that is not the certificate's: refused at start, exit 1 with the reason */
    snprintf(cmd, sizeof(cmd),
             "PUBSUBGW_XMPP_PASSWORD=x %s --jid gw14@localhost --listen 127.0.0.1:%d "
             "--tls-cert %s --tls-key %s --data-dir %s/data 2>&1",
             getenv("PUBSUBGW_BIN"), it_free_port(), cert, other_key, dir);
    CHECK_INT(run_out(cmd, out, sizeof(out)), 1);
    CHECK(strstr(out, "certificate and key do not match") != NULL);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK_INT(system(cmd), 0);
    CHECK_DONE();
}
