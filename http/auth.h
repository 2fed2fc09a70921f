/* API authentication: bearer tokens compared in constant time, each limited to scopes and
 * optionally to node name patterns. Pure: the HTTP glue passes the header and the route. */
#ifndef GW_HTTP_AUTH_H
#define GW_HTTP_AUTH_H

#include "../gateway/config.h"
#include "router.h"

#include <stddef.h>

/* What GET /v1/token needs: any valid token (when tokens are configured), whatever its scopes. */
#define GW_SCOPE_TOKEN (1u << 8)

/* The scope a route needs (0: none, e.g. health; GW_SCOPE_TOKEN: any token). */
unsigned gw_route_scope(enum gw_route route);

/* Finds the token of an "Authorization: Bearer …" header. Returns 200 with *token set, 401
 * (absent or unknown token), or 403 (the token lacks the route's scope). With no token
 * configured every request passes (200, *token NULL). */
int gw_auth_check(const struct gw_config *cfg, const char *authorization, enum gw_route route,
                  const struct gw_token **token);

/* 1 when token may act on node (NULL token: no tokens configured). */
int gw_auth_node_allowed(const struct gw_token *token, const char *node);

#endif
