/* Token checks. What is compared are SHA-256 digests, in constant time, against every
 * configured token whatever matched: the time taken tells neither how much of a guess was right,
 * nor which token was close, nor how long any token is. */
#include "auth.h"

#include "../gateway/sign.h"

#include <string.h>
#include <strings.h>

unsigned gw_route_scope(enum gw_route route)
{
    switch (route) {
    case GW_ROUTE_HEALTH:
    case GW_ROUTE_READY:
        return 0;
    case GW_ROUTE_TOKEN:
        return GW_SCOPE_TOKEN;
    case GW_ROUTE_STATS:
    case GW_ROUTE_METRICS:
    case GW_ROUTE_OPENAPI_JSON:
    case GW_ROUTE_OPENAPI_YAML:
    case GW_ROUTE_NODES_LIST:
    case GW_ROUTE_NODE_GET:
    case GW_ROUTE_ITEMS_LIST:
    case GW_ROUTE_NODE_FEED:
    case GW_ROUTE_ITEM_GET:
    case GW_ROUTE_NODE_CONFIG_GET:
    case GW_ROUTE_NODE_EVENTS:
        return GW_SCOPE_READ;
    case GW_ROUTE_ITEM_PUBLISH:
    case GW_ROUTE_ITEM_DELETE:
    case GW_ROUTE_HOOK:
    case GW_ROUTE_FEEDS_LIST:
    case GW_ROUTE_FEED_CREATE:
    case GW_ROUTE_FEED_GET:
    case GW_ROUTE_FEED_DELETE:
        return GW_SCOPE_PUBLISH;
    case GW_ROUTE_SUBS_LIST:
    case GW_ROUTE_SUB_CREATE:
    case GW_ROUTE_SUB_GET:
    case GW_ROUTE_SUB_DELETE:
    case GW_ROUTE_DEAD_LIST:
    case GW_ROUTE_DEAD_RETRY:
    case GW_ROUTE_ATTEMPTS_LIST:
    case GW_ROUTE_DEAD_RETRY_ALL:
    case GW_ROUTE_SUB_TEST:
    case GW_ROUTE_WEBSUB:
        return GW_SCOPE_SUBSCRIBE;
    case GW_ROUTE_NODE_CREATE:
    case GW_ROUTE_NODE_DELETE:
    case GW_ROUTE_NODE_CONFIG_SET:
    case GW_ROUTE_NODE_PURGE:
    case GW_ROUTE_NODE_SUBS_GET:
    case GW_ROUTE_NODE_SUBS_SET:
    case GW_ROUTE_NODE_AFFS_GET:
    case GW_ROUTE_NODE_AFFS_SET:
        return GW_SCOPE_ADMIN;
    case GW_ROUTE_COUNT:
        break;
    }
    return GW_SCOPE_ADMIN;
}

int gw_auth_check(const struct gw_config *cfg, const char *authorization, enum gw_route route,
                  const struct gw_token **token)
{
    *token = NULL;
    unsigned need = gw_route_scope(route);
    const struct gw_policy *pol = gw_config_policy(cfg);
    if (pol == NULL || pol->ntokens == 0 || need == 0)
        return 200;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 401;
    const char *given = authorization + 7;
    while (*given == ' ')
        given++;
    unsigned char digest[32];
    gw_sha256(given, strlen(given), digest);
    const struct gw_token *found = NULL;
    for (int i = 0; i < pol->ntokens; i++)
        if (gw_const_eq_n(digest, pol->tokens[i].digest, sizeof(digest)) && found == NULL)
            found = &pol->tokens[i];
    if (found == NULL)
        return 401;
    *token = found;
    if (need == GW_SCOPE_TOKEN)
        return 200;
    return (found->scopes & need) == need ? 200 : 403;
}

int gw_auth_node_allowed(const struct gw_token *token, const char *node)
{
    return gw_token_allows_node(token, node);
}
