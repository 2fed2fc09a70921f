/* API tokens: scopes per route, node patterns, the refusals, and the listen-address rule. */
#include "../check.h"
#include "gateway/config.h"
#include "http/auth.h"

#include <stdlib.h>

static enum gw_config_result load(struct gw_config *cfg, char *err, char **argv, int argc)
{
    return gw_config_load(cfg, argc, argv, err, 512);
}

int main(void)
{
    setenv("PUBSUBGW_XMPP_PASSWORD", "pw", 1);
    struct gw_config cfg;
    char err[512];
    char *argv[] = {"pubsubgw",
                    "--jid",
                    "gw@example.org",
                    "--api-token",
                    "full-access-token-0001",
                    "--api-token",
                    "read-only-token-000002 scopes=read",
                    "--api-token",
                    "team-publisher-tok-003 scopes=read,publish nodes=team/*,alerts"};
    CHECK_INT(load(&cfg, err, argv, 9), GW_CONFIG_OK);
    CHECK_INT(cfg.ntokens, 3);
    const struct gw_token *t;

    CHECK_INT(gw_auth_check(&cfg, NULL, GW_ROUTE_HEALTH, &t), 200);
    CHECK_INT(gw_auth_check(&cfg, NULL, GW_ROUTE_NODES_LIST, &t), 401);
    CHECK_INT(gw_auth_check(&cfg, "Basic abc", GW_ROUTE_NODES_LIST, &t), 401);
    CHECK_INT(gw_auth_check(&cfg, "Bearer wrong", GW_ROUTE_NODES_LIST, &t), 401);
    CHECK_INT(gw_auth_check(&cfg, "Bearer full-access-token-000", GW_ROUTE_NODES_LIST, &t), 401);
    CHECK_INT(gw_auth_check(&cfg, "Bearer full-access-token-00011", GW_ROUTE_NODES_LIST, &t), 401);
    CHECK_INT(gw_auth_check(&cfg, "Bearer full-access-token-0001", GW_ROUTE_NODE_CREATE, &t), 200);
    CHECK(t == &cfg.tokens[0]);
    CHECK_INT(gw_auth_check(&cfg, "bearer full-access-token-0001", GW_ROUTE_METRICS, &t), 200);
    CHECK_INT(gw_auth_check(&cfg, "Bearer read-only-token-000002", GW_ROUTE_ITEMS_LIST, &t), 200);
    CHECK_INT(gw_auth_check(&cfg, "Bearer read-only-token-000002", GW_ROUTE_ITEM_PUBLISH, &t), 403);
    CHECK_INT(gw_auth_check(&cfg, "Bearer read-only-token-000002", GW_ROUTE_SUB_CREATE, &t), 403);
    CHECK_INT(gw_auth_check(&cfg, "Bearer team-publisher-tok-003", GW_ROUTE_ITEM_PUBLISH, &t), 200);
    CHECK(gw_auth_node_allowed(t, "team/news"));
    CHECK(gw_auth_node_allowed(t, "alerts"));
    CHECK(!gw_auth_node_allowed(t, "alerts2"));
    CHECK(!gw_auth_node_allowed(t, "other"));
    CHECK(gw_auth_node_allowed(&cfg.tokens[0], "anything"));
    CHECK(gw_auth_node_allowed(NULL, "anything"));
    CHECK_INT(gw_auth_check(&cfg, "Bearer team-publisher-tok-003", GW_ROUTE_NODE_DELETE, &t), 403);
    /* what a token may do: asked with any valid token, whatever its scopes, never without */
    CHECK_INT(gw_auth_check(&cfg, "Bearer read-only-token-000002", GW_ROUTE_TOKEN, &t), 200);
    CHECK(t == &cfg.tokens[1]);
    CHECK_INT(gw_auth_check(&cfg, NULL, GW_ROUTE_TOKEN, &t), 401);
    CHECK_INT(gw_auth_check(&cfg, "Bearer wrong", GW_ROUTE_TOKEN, &t), 401);
    CHECK_INT(gw_auth_check(&cfg, "Bearer read-only-token-000002", GW_ROUTE_STATS, &t), 200);
    CHECK_INT(gw_auth_check(&cfg, "Bearer read-only-token-000002", GW_ROUTE_SUB_TEST, &t), 403);
    CHECK_INT(gw_auth_check(&cfg, "Bearer read-only-token-000002", GW_ROUTE_DEAD_RETRY_ALL, &t),
              403);
    CHECK_INT(gw_auth_check(&cfg, "Bearer full-access-token-0001", GW_ROUTE_DEAD_RETRY_ALL, &t),
              200);
    for (int r = 0; r < GW_ROUTE_COUNT; r++)
        CHECK(r == GW_ROUTE_HEALTH || r == GW_ROUTE_READY || gw_route_scope((enum gw_route)r) != 0);
    gw_config_free(&cfg);

    /* No token: every request passes, but only on loopback. */
    char *open_argv[] = {"pubsubgw", "--jid", "gw@example.org", "--listen", "0.0.0.0:8080"};
    CHECK_INT(load(&cfg, err, open_argv, 5), GW_CONFIG_ERROR);
    CHECK(strstr(err, "--api-token") != NULL);
    gw_config_free(&cfg);
    char *v6_argv[] = {"pubsubgw", "--jid", "gw@example.org", "--listen", "[::1]:8080"};
    CHECK_INT(load(&cfg, err, v6_argv, 5), GW_CONFIG_OK);
    CHECK_INT(gw_auth_check(&cfg, NULL, GW_ROUTE_NODE_CREATE, &t), 200);
    gw_config_free(&cfg);
    char *short_argv[] = {"pubsubgw", "--jid", "gw@example.org", "--api-token", "short"};
    CHECK_INT(load(&cfg, err, short_argv, 5), GW_CONFIG_ERROR);
    CHECK(strstr(err, "short") == NULL); /* a token is never echoed */
    gw_config_free(&cfg);
    char *scope_argv[] = {"pubsubgw", "--jid", "gw@example.org", "--api-token",
                          "abcdefghijklmnopqrstu scopes=read,sudo"};
    CHECK_INT(load(&cfg, err, scope_argv, 5), GW_CONFIG_ERROR);
    CHECK(strstr(err, "sudo") != NULL);
    CHECK(strstr(err, "abcdefghijklmnop") == NULL);
    gw_config_free(&cfg);
    CHECK_DONE();
}
