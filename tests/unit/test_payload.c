/* Payload conversion and escaping: JSON <-> XEP-0335 element, XML checks, item parsing, and the
 * serialized form of hostile text (quotes, '<', '&', non-ASCII, control characters). */
#include "../check.h"
#include "xmpp/payload.h"

#include <stdlib.h>

static char *serialize(xmpp_ctx_t *ctx, xmpp_stanza_t *st)
{
    char *s = gw_stanza_text(ctx, st);
    xmpp_stanza_release(st);
    return s;
}

/* Builds an <item> around payload text as a server would send it, and converts it back. */
static json_t *item_roundtrip(xmpp_ctx_t *ctx, const char *payload_xml)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "<item id='i1' xmlns='http://jabber.org/protocol/pubsub'>%s</item>",
             payload_xml);
    xmpp_stanza_t *item = xmpp_stanza_new_from_string(ctx, buf);
    if (item == NULL)
        return NULL;
    json_t *j = gw_payload_item_json(ctx, item);
    xmpp_stanza_release(item);
    return j;
}

static int check_xml(const char *xml, char *err)
{
    size_t start;
    return gw_payload_check_xml(xml, strlen(xml), &start, err, 256);
}

int main(void)
{
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);

    /* Hostile JSON: compact text as jansson emits it, then escaped by the XML serializer. */
    json_t *v = json_pack("{s:s}", "k", "\"quoted\" <tag> & 'apos' caf\xC3\xA9 \x01\x1f end");
    char *compact = json_dumps(v, JSON_COMPACT);
    char *xml = serialize(ctx, gw_payload_json_element(ctx, compact));
    CHECK(xml != NULL);
    CHECK(strstr(xml, "<json xmlns=\"urn:xmpp:json:0\">") == xml);
    CHECK(strstr(xml, "&lt;tag&gt;") != NULL);
    CHECK(strstr(xml, "&amp;") != NULL);
    CHECK(strstr(xml, "<tag>") == NULL);
    CHECK(strstr(xml, "caf\xC3\xA9") != NULL); /* non-ASCII stays UTF-8 */
    CHECK(strstr(xml, "\\u0001") != NULL);     /* control characters as JSON escapes */
    for (const char *p = xml; *p; p++)
        CHECK((unsigned char)*p >= 0x20);
    /* And back: the item parser restores the exact value. */
    json_t *item = item_roundtrip(ctx, xml);
    CHECK(item != NULL);
    CHECK_STR(json_string_value(json_object_get(item, "id")), "i1");
    CHECK(json_equal(json_object_get(item, "payload"), v));
    CHECK(json_object_get(item, "xml") == NULL);
    json_decref(item);
    free(xml);
    free(compact);
    json_decref(v);

    /* Scalars and arrays are JSON payloads too. */
    xml = serialize(ctx, gw_payload_json_element(ctx, "[1,\"two\",null]"));
    item = item_roundtrip(ctx, xml);
    CHECK(json_is_array(json_object_get(item, "payload")));
    CHECK_INT(json_array_size(json_object_get(item, "payload")), 3);
    json_decref(item);
    free(xml);

    /* Non-JSON payloads come back as XML text; a broken <json/> is not lost but given as XML. */
    item = item_roundtrip(
        ctx, "<entry xmlns='http://www.w3.org/2005/Atom'><title>a &amp; b</title></entry>");
    CHECK_STR(json_string_value(json_object_get(item, "xml")),
              "<entry xmlns=\"http://www.w3.org/2005/Atom\"><title>a &amp; b</title></entry>");
    json_decref(item);
    item = item_roundtrip(ctx, "<json xmlns='urn:xmpp:json:0'>{not json</json>");
    CHECK(json_object_get(item, "payload") == NULL);
    CHECK(strstr(json_string_value(json_object_get(item, "xml")), "{not json") != NULL);
    json_decref(item);
    item = item_roundtrip(ctx, "");
    CHECK(json_object_get(item, "payload") == NULL && json_object_get(item, "xml") == NULL);
    json_decref(item);

    /* XML bodies: exactly one well-formed element. */
    char err[256];
    CHECK_INT(check_xml("<a/>", err), 0);
    CHECK_INT(check_xml("  <?xml version='1.0' encoding='UTF-8'?>\n<a x='&quot;'>t</a>\n", err), 0);
    CHECK_INT(check_xml("\xEF\xBB\xBF<a/>", err), 0);
    CHECK_INT(check_xml("<a/><b/>", err), -1);
    CHECK(strstr(err, "junk") != NULL);
    CHECK_INT(check_xml("hello<a/>", err), -1);
    CHECK_INT(check_xml("<a/>junk", err), -1);
    CHECK_INT(check_xml("<a>", err), -1);
    CHECK_INT(check_xml("<a><b></a>", err), -1);
    CHECK(strstr(err, "line 1") != NULL);
    CHECK_INT(check_xml("", err), -1);
    CHECK_INT(check_xml("   ", err), -1);
    CHECK_INT(check_xml("<a>&#x1;</a>", err), -1);
    CHECK_INT(check_xml("<a>&undefined;</a>", err), -1);
    CHECK_INT(check_xml("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>", err), -1);
    CHECK(strstr(err, "DOCTYPE") != NULL);
    CHECK_INT(check_xml("<a/></stream><b/>", err), -1);
    CHECK_INT(check_xml("<a>\xFF</a>", err), -1);
    char deep[2048] = "";
    for (int i = 0; i < GW_XML_MAX_DEPTH + 1; i++)
        strcat(deep, "<d>");
    for (int i = 0; i < GW_XML_MAX_DEPTH + 1; i++)
        strcat(deep, "</d>");
    CHECK_INT(check_xml(deep, err), -1);
    CHECK(strstr(err, "deeper") != NULL);

    xmpp_stanza_t *el = gw_payload_xml_element(
        ctx, "<?xml version='1.0'?><p xmlns='urn:x'>caf\xC3\xA9 &lt;</p>", err, sizeof(err));
    CHECK(el != NULL);
    if (el) {
        xml = serialize(ctx, el);
        CHECK_STR(xml, "<p xmlns=\"urn:x\">caf\xC3\xA9 &lt;</p>");
        free(xml);
    }
    CHECK(gw_payload_xml_element(ctx, "<a/><b/>", err, sizeof(err)) == NULL);

    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    CHECK_DONE();
}
