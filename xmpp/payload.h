/* Item payloads between JSON and XML: a JSON value travels as XEP-0335
 * <json xmlns='urn:xmpp:json:0'>TEXT</json>; an XML body must be exactly one well-formed element
 * and travels as is. Pure functions: no socket, only a libstrophe context for allocation. */
#ifndef GW_XMPP_PAYLOAD_H
#define GW_XMPP_PAYLOAD_H

#include <jansson.h>
#include <stddef.h>
#include <strophe.h>

#define GW_JSON_NS "urn:xmpp:json:0"
#define GW_XML_MAX_DEPTH 64

/* Checks that xml (len bytes) is one well-formed element with nothing but whitespace and an
 * optional XML declaration around it, no DOCTYPE, nesting at most GW_XML_MAX_DEPTH. On success
 * returns 0 and sets *start to where the element begins; on failure returns -1 with a reason. */
int gw_payload_check_xml(const char *xml, size_t len, size_t *start, char *err, size_t errlen);

/* Builds the payload element for publishing. kind JSON: text is compact JSON; kind XML: text was
 * accepted by gw_payload_check_xml(). Returns a new stanza (caller releases) or NULL with a reason.
 */
xmpp_stanza_t *gw_payload_json_element(xmpp_ctx_t *ctx, const char *json_text);
/* U+FFFE and U+FFFF cannot stand in any XML document (a server ends the whole stream on one),
 * but in JSON text they can only stand inside a string, where the escapes \ufffe and \uffff
 * mean the same: at p (NUL-terminated), the 6-byte escape to write instead of the 3 bytes of
 * either, or NULL when p starts neither. */
const char *gw_json_nonchar_escape(const unsigned char *p);
xmpp_stanza_t *gw_payload_xml_element(xmpp_ctx_t *ctx, const char *xml, char *err, size_t errlen);

/* Converts one <item/> into {"id":…,"payload":…} or {"id":…,"xml":"…"}; an item without a
 * payload has neither. Returns a new reference or NULL when out of memory. */
json_t *gw_payload_item_json(xmpp_ctx_t *ctx, xmpp_stanza_t *item);

/* Serializes a stanza to a newly malloc'd string (free with free()), or NULL. */
char *gw_stanza_text(xmpp_ctx_t *ctx, xmpp_stanza_t *stanza);

#endif
