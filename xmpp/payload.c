/* Payload conversion. XML bodies are checked with expat before libstrophe sees them: libstrophe's
 * own string parser silently keeps the first of several elements and ignores stray text, and
 * expat's messages name the line and column of the fault for the 400 answer. */
#include "payload.h"

#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct xml_check {
    XML_Parser parser;
    int depth;
    int too_deep;
    int doctype;
};

static void XMLCALL on_start(void *data, const XML_Char *name, const XML_Char **attrs)
{
    (void)name;
    (void)attrs;
    struct xml_check *c = data;
    if (++c->depth > GW_XML_MAX_DEPTH) {
        c->too_deep = 1;
        XML_StopParser(c->parser, XML_FALSE);
    }
}

static void XMLCALL on_end(void *data, const XML_Char *name)
{
    (void)name;
    struct xml_check *c = data;
    c->depth--;
}

static void XMLCALL on_doctype(void *data, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    struct xml_check *c = data;
    c->doctype = 1;
    XML_StopParser(c->parser, XML_FALSE);
}

int gw_payload_check_xml(const char *xml, size_t len, size_t *start, char *err, size_t errlen)
{
    size_t i = 0;
    if (len >= 3 && memcmp(xml, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    while (i < len && strchr(" \t\r\n", xml[i]) != NULL)
        i++;
    if (len - i >= 5 && memcmp(xml + i, "<?xml", 5) == 0) {
        const char *end = memmem(xml + i, len - i, "?>", 2);
        if (end == NULL) {
            snprintf(err, errlen, "unterminated XML declaration");
            return -1;
        }
        i = (size_t)(end - xml) + 2;
        while (i < len && strchr(" \t\r\n", xml[i]) != NULL)
            i++;
    }
    if (i == len) {
        snprintf(err, errlen, "no XML element");
        return -1;
    }
    if (memchr(xml, '\0', len) != NULL) {
        snprintf(err, errlen, "NUL byte in XML");
        return -1;
    }
    struct xml_check c = {0};
    c.parser = XML_ParserCreate("UTF-8");
    if (c.parser == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    XML_SetUserData(c.parser, &c);
    XML_SetElementHandler(c.parser, on_start, on_end);
    XML_SetStartDoctypeDeclHandler(c.parser, on_doctype);
    enum XML_Status st = XML_Parse(c.parser, xml + i, (int)(len - i), XML_TRUE);
    int rc = 0;
    if (c.doctype) {
        snprintf(err, errlen, "DOCTYPE is not allowed");
        rc = -1;
    } else if (c.too_deep) {
        snprintf(err, errlen, "XML nested deeper than %d elements", GW_XML_MAX_DEPTH);
        rc = -1;
    } else if (st != XML_STATUS_OK) {
        snprintf(err, errlen, "malformed XML at line %lu, column %lu: %s",
                 (unsigned long)XML_GetCurrentLineNumber(c.parser),
                 (unsigned long)XML_GetCurrentColumnNumber(c.parser) + 1,
                 XML_ErrorString(XML_GetErrorCode(c.parser)));
        rc = -1;
    }
    XML_ParserFree(c.parser);
    if (rc == 0)
        *start = i;
    return rc;
}

const char *gw_json_nonchar_escape(const unsigned char *p)
{
    if (p[0] != 0xEF || p[1] != 0xBF || (p[2] != 0xBE && p[2] != 0xBF))
        return NULL;
    return p[2] == 0xBE ? "\\ufffe" : "\\uffff";
}

/* JSON text as XML can carry it: U+FFFE and U+FFFF as their JSON escapes (see
 * gw_json_nonchar_escape). A new string, or NULL when out of memory. */
static char *json_for_xml(const char *json_text)
{
    size_t n = strlen(json_text);
    char *out = malloc(n * 2 + 1); /* 3 bytes become 6 at most */
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)json_text; *p; p++) {
        const char *esc = gw_json_nonchar_escape(p);
        if (esc != NULL) {
            memcpy(out + k, esc, 6);
            k += 6;
            p += 2;
        } else {
            out[k++] = (char)*p;
        }
    }
    out[k] = '\0';
    return out;
}

xmpp_stanza_t *gw_payload_json_element(xmpp_ctx_t *ctx, const char *json_text)
{
    xmpp_stanza_t *el = xmpp_stanza_new(ctx);
    xmpp_stanza_t *text = xmpp_stanza_new(ctx);
    char *safe = json_for_xml(json_text);
    if (el == NULL || text == NULL || safe == NULL)
        goto fail;
    /* libstrophe escapes text and attribute values when it serializes. */
    if (xmpp_stanza_set_name(el, "json") != XMPP_EOK ||
        xmpp_stanza_set_ns(el, GW_JSON_NS) != XMPP_EOK ||
        xmpp_stanza_set_text(text, safe) != XMPP_EOK || xmpp_stanza_add_child(el, text) != XMPP_EOK)
        goto fail;
    free(safe);
    xmpp_stanza_release(text);
    return el;
fail:
    free(safe);
    if (text)
        xmpp_stanza_release(text);
    if (el)
        xmpp_stanza_release(el);
    return NULL;
}

xmpp_stanza_t *gw_payload_xml_element(xmpp_ctx_t *ctx, const char *xml, char *err, size_t errlen)
{
    size_t start;
    if (gw_payload_check_xml(xml, strlen(xml), &start, err, errlen) != 0)
        return NULL;
    xmpp_stanza_t *el = xmpp_stanza_new_from_string(ctx, xml + start);
    if (el == NULL)
        snprintf(err, errlen, "XML could not be parsed");
    return el;
}

char *gw_stanza_text(xmpp_ctx_t *ctx, xmpp_stanza_t *stanza)
{
    char *buf = NULL;
    size_t len = 0;
    if (xmpp_stanza_to_text(stanza, &buf, &len) != XMPP_EOK)
        return NULL;
    char *copy = malloc(len + 1);
    if (copy != NULL) {
        memcpy(copy, buf, len);
        copy[len] = '\0';
    }
    xmpp_free(ctx, buf);
    return copy;
}

json_t *gw_payload_item_json(xmpp_ctx_t *ctx, xmpp_stanza_t *item)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    const char *id = xmpp_stanza_get_id(item);
    if (id != NULL)
        json_object_set_new(obj, "id", json_string(id));
    const char *publisher = xmpp_stanza_get_attribute(item, "publisher");
    if (publisher != NULL)
        json_object_set_new(obj, "publisher", json_string(publisher));
    xmpp_stanza_t *payload = xmpp_stanza_get_children(item);
    while (payload != NULL && !xmpp_stanza_is_tag(payload))
        payload = xmpp_stanza_get_next(payload);
    if (payload == NULL)
        return obj;
    const char *name = xmpp_stanza_get_name(payload);
    const char *ns = xmpp_stanza_get_ns(payload);
    if (name && ns && strcmp(name, "json") == 0 && strcmp(ns, GW_JSON_NS) == 0) {
        char *text = xmpp_stanza_get_text(payload);
        json_t *value = text ? json_loads(text, JSON_DECODE_ANY, NULL) : NULL;
        if (text)
            xmpp_free(ctx, text);
        if (value != NULL) {
            json_object_set_new(obj, "payload", value);
            return obj;
        }
        /* Not valid JSON after all: hand it over as XML rather than lose it. */
    }
    char *xml = gw_stanza_text(ctx, payload);
    if (xml != NULL) {
        json_object_set_new(obj, "xml", json_string(xml));
        free(xml);
    }
    return obj;
}
