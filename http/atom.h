/* A node's items as an Atom 1.0 feed (RFC 4287), for feed readers and WebSub subscribers. Pure:
 * JSON in, text out. */
#ifndef GW_HTTP_ATOM_H
#define GW_HTTP_ATOM_H

#include <jansson.h>
#include <stdint.h>

/* Renders the items of an items answer ({"items": [{"id", "payload" | "xml"}, …]}) as a feed,
 * newest entry first when the ids are ULIDs (else in the service's order):
 * - an item whose payload is an Atom <entry/> is included as it is;
 * - a JSON payload becomes an entry whose content is the JSON text (its "title", "summary" and
 *   "link" members, when strings, fill the entry's), other XML is inline content;
 * - entry ids are XEP-0060 item URIs (xmpp:SERVICE?;node=NODE;item=ID); an entry's updated time
 *   is the time in its id when the id is a ULID (the gateway's own ids), else now_ms.
 * self_url is the feed's own address; hub_url (NULL: none) the WebSub hub to link. Returns a
 * malloc'd NUL-terminated document (free with free()), or NULL when out of memory. */
char *gw_atom_feed(const json_t *items, const char *service, const char *node, const char *self_url,
                   const char *hub_url, int64_t now_ms);

/* The same items as an RSS 2.0 channel (JSON payloads' title, link, summary, published, author
 * and id as the item's elements) or as a JSON Feed 1.1 document (JSON payloads as its items),
 * for WebSub subscribers of RSS and JSON Feed topics. malloc'd, or NULL when out of memory. */
char *gw_rss_feed(const json_t *items, const char *node, const char *self_url, const char *hub_url);
char *gw_json_feed(const json_t *items, const char *node, const char *self_url,
                   const char *hub_url);

/* Milliseconds encoded in a ULID item id, or -1 when id is not one. */
int64_t gw_atom_ulid_ms(const char *id);

#endif
