/* Configuration: defaults, every option, the config file, precedence and the refusals. */
#include "../check.h"
#include "gateway/config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

static enum gw_config_result load(struct gw_config *cfg, char *err, int argc, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, argc);
    argv[0] = "pubsubgw";
    for (int i = 1; i < argc; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[argc] = NULL;
    return gw_config_load(cfg, argc, argv, err, 512);
}

int main(void)
{
    struct gw_config cfg;
    char err[512];
    unsetenv("PUBSUBGW_XMPP_PASSWORD");

    CHECK_INT(load(&cfg, err, 2, "--help"), GW_CONFIG_HELP);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 3, "--jid", "gw@example.org"), GW_CONFIG_ERROR);
    CHECK(strstr(err, "password") != NULL);
    gw_config_free(&cfg);

    setenv("PUBSUBGW_XMPP_PASSWORD", "s3cret", 1);
    CHECK_INT(load(&cfg, err, 3, "--jid", "gw@example.org"), GW_CONFIG_OK);
    CHECK_STR(cfg.listen_host, "127.0.0.1");
    CHECK_INT(cfg.listen_port, 8080);
    CHECK_STR(cfg.service, "pubsub.example.org");
    CHECK_STR(cfg.password, "s3cret");
    CHECK_INT(cfg.tls, GW_TLS_REQUIRED);
    CHECK_INT(cfg.iq_timeout_ms, 10000);
    CHECK(cfg.xmpp_host == NULL);
    gw_config_free(&cfg);

    CHECK_INT(load(&cfg, err, 15, "--jid", "gw@example.org/r", "--listen", "[::1]:9000",
                   "--xmpp-server", "127.0.0.1:5299", "--tls", "off", "--iq-timeout", "3",
                   "--service", "ps.other", "--log-level", "debug"),
              GW_CONFIG_OK);
    CHECK_STR(cfg.listen_host, "::1");
    CHECK_INT(cfg.listen_port, 9000);
    CHECK_STR(cfg.xmpp_host, "127.0.0.1");
    CHECK_INT(cfg.xmpp_port, 5299);
    CHECK_INT(cfg.tls, GW_TLS_OFF);
    CHECK_INT(cfg.iq_timeout_ms, 3000);
    CHECK_STR(cfg.service, "ps.other");
    gw_config_free(&cfg);

    /* --listen needs its port; flags take no value or a boolean; --check-config only checks. */
    CHECK_INT(load(&cfg, err, 5, "--jid", "gw@example.org", "--listen", "127.0.0.1"),
              GW_CONFIG_ERROR);
    CHECK(strstr(err, "no port") != NULL);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 6, "--jid", "gw@example.org", "--tls-insecure", "--auto-create=no",
                   "--check-config"),
              GW_CONFIG_OK);
    CHECK_INT(cfg.tls_insecure, 1);
    CHECK_INT(cfg.auto_create, 0);
    CHECK_INT(cfg.check_only, 1);
    CHECK_INT(cfg.ping_interval_ms, 10000);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 4, "--jid", "gw@example.org", "--exit-on-auth-failure=maybe"),
              GW_CONFIG_ERROR);
    gw_config_free(&cfg);
    /* the console: on unless --ui off */
    CHECK_INT(load(&cfg, err, 3, "--jid", "gw@example.org"), GW_CONFIG_OK);
    CHECK_INT(cfg.ui, 1);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 5, "--jid", "gw@example.org", "--ui", "off"), GW_CONFIG_OK);
    CHECK_INT(cfg.ui, 0);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 5, "--jid", "gw@example.org", "--ui", "on"), GW_CONFIG_OK);
    CHECK_INT(cfg.ui, 1);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 5, "--jid", "gw@example.org", "--ui", "sometimes"), GW_CONFIG_ERROR);
    CHECK(strstr(err, "ui") != NULL);
    gw_config_free(&cfg);

    CHECK_INT(load(&cfg, err, 5, "--jid", "gw@example.org", "--tls", "maybe"), GW_CONFIG_ERROR);
    CHECK(strstr(err, "--tls") != NULL);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 5, "--jid", "gw@example.org", "--listen", "1.2.3.4:99999"),
              GW_CONFIG_ERROR);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 3, "--jid", "nodomain"), GW_CONFIG_ERROR);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 2, "--nope"), GW_CONFIG_ERROR);
    CHECK(strstr(err, "--nope") != NULL);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 2, "--jid"), GW_CONFIG_ERROR);
    gw_config_free(&cfg);
    CHECK_INT(load(&cfg, err, 3, "--config", "/nonexistent/file"), GW_CONFIG_ERROR);
    CHECK(strstr(err, "/nonexistent/file") != NULL);
    gw_config_free(&cfg);

    /* File plus command line: the command line wins whatever the order. */
    unsetenv("PUBSUBGW_XMPP_PASSWORD");
    char path[] = "/tmp/pubsubgw-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("# comment\n\njid = file@example.org\npassword = \"from file\"\nlisten = 127.0.0.1:7000\n"
          "iq-timeout = 4\n",
          f);
    fclose(f);
    CHECK_INT(load(&cfg, err, 5, "--listen", "127.0.0.1:7001", "--config", path), GW_CONFIG_OK);
    CHECK_STR(cfg.jid, "file@example.org");
    CHECK_STR(cfg.password, "from file");
    CHECK_INT(cfg.listen_port, 7001);
    CHECK_INT(cfg.iq_timeout_ms, 4000);
    gw_config_free(&cfg);

    /* Reload: tokens swapped as one policy, restart-only options named and kept. */
    f = fopen(path, "w");
    fputs("jid = r@example.org\npassword = p\napi-token = reload-token-one-0001\n", f);
    fclose(f);
    char *rargv[] = {"pubsubgw", "--config", path, NULL};
    CHECK_INT(gw_config_load(&cfg, 3, rargv, err, sizeof(err)), GW_CONFIG_OK);
    const struct gw_policy *before = gw_config_policy(&cfg);
    CHECK_INT(before->ntokens, 1);
    f = fopen(path, "w");
    fputs("jid = r@example.org\npassword = p\napi-token = reload-token-two-0002\n"
          "api-token = reload-token-three-03\nresource = other\nmax-body = 4096\n",
          f);
    fclose(f);
    CHECK_INT(gw_config_reload(&cfg, 3, rargv, err, sizeof(err)), 0);
    CHECK_STR(err, "resource");
    CHECK_INT(gw_config_policy(&cfg)->ntokens, 2);
    CHECK_STR(gw_config_policy(&cfg)->tokens[0].token, "reload-token-two-0002");
    CHECK_STR(before->tokens[0].token, "reload-token-one-0001"); /* still valid */
    CHECK_STR(cfg.resource, "pubsubgw");
    CHECK_INT((long)cfg.max_body, 4096);
    f = fopen(path, "w");
    fputs("jid = r@example.org\nbogus = 1\n", f);
    fclose(f);
    CHECK_INT(gw_config_reload(&cfg, 3, rargv, err, sizeof(err)), -1);
    CHECK_INT(gw_config_policy(&cfg)->ntokens, 2);
    gw_config_free(&cfg);

    f = fopen(path, "w");
    fputs("jid = a@b\npassword = \"unterminated\n", f);
    fclose(f);
    CHECK_INT(load(&cfg, err, 3, "--config", path), GW_CONFIG_ERROR);
    CHECK(strstr(err, ":2:") != NULL && strstr(err, "quote") != NULL &&
          strstr(err, "unterminated") == NULL); /* named, not echoed */
    gw_config_free(&cfg);
    f = fopen(path, "w");
    fputs("jid = a@b\nbogus-key = 1\n", f);
    fclose(f);
    CHECK_INT(load(&cfg, err, 3, "--config", path), GW_CONFIG_ERROR);
    CHECK(strstr(err, ":2:") != NULL && strstr(err, "bogus-key") != NULL);
    gw_config_free(&cfg);
    f = fopen(path, "w");
    fputs("jid a@b\n", f);
    fclose(f);
    CHECK_INT(load(&cfg, err, 3, "--config", path), GW_CONFIG_ERROR);
    gw_config_free(&cfg);

    /* Password file: first line only; a bad value never echoes a secret. */
    f = fopen(path, "w");
    fputs("pw-from-file\nsecond line\n", f);
    fclose(f);
    CHECK_INT(load(&cfg, err, 5, "--jid", "gw@example.org", "--password-file", path), GW_CONFIG_OK);
    CHECK_STR(cfg.password, "pw-from-file");
    gw_config_free(&cfg);
    unlink(path);

    char *host = NULL;
    int port = 0;
    CHECK_INT(gw_config_split_hostport("[::1]:5222", &host, &port), 0);
    CHECK_STR(host, "::1");
    CHECK_INT(port, 5222);
    free(host);
    CHECK_INT(gw_config_split_hostport("::1", &host, &port), -1);
    CHECK_INT(gw_config_split_hostport(":80", &host, &port), -1);
    CHECK_DONE();
}
