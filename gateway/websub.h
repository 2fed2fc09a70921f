/* W3C WebSub on the hub's side: which node a topic URL names, and the signature of a content
 * distribution. Pure functions (no loop, no store): the HTTP layer and the hub share them. */
#ifndef GW_WEBSUB_H
#define GW_WEBSUB_H

#include <stddef.h>

/* The (service, node) a topic names, each malloc'd into *service and *node:
 * - the node's feed at this gateway: http(s)://HOST[:PORT][/PREFIX]/v1/nodes/NODE/feed, with
 *   ?service=JID for a node of another service than default_service (NODE percent-encoded);
 * - an XEP-0060 node URI: xmpp:SERVICE?;node=NODE (RFC 5122 percent-encoding).
 * default_service NULL leaves *service NULL for a feed topic without ?service= (the caller's
 * default). Returns 0, or -1 with the reason in err when the topic names no node. */
int gw_websub_topic(const char *topic, const char *default_service, char **service, char **node,
                    char *err, size_t errlen);

/* 1 when alg is an X-Hub-Signature algorithm the hub signs with: sha1, sha256, sha384, sha512. */
int gw_websub_alg_known(const char *alg);

/* "ALG=HEX" (the X-Hub-Signature value: HMAC of body keyed with secret) into out (at least 140
 * bytes). 0 or -1. */
int gw_websub_sign(const char *alg, const char *secret, const char *body, size_t len, char *out,
                   size_t outlen);

#endif
