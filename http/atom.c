/* Atom rendering. Everything from the items (ids, JSON text, titles) is escaped as XML text or
 * attribute values; characters XML 1.0 cannot carry are left out. An Atom <entry/> payload was
 * checked as well-formed XML when it was published (or came from the service) and is copied as
 * it is. */
#include "atom.h"

#include "../gateway/textbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ATOM_NS "http://www.w3.org/2005/Atom"

/* s as XML text (or attribute value: quotes escaped too). */
static void put_esc(struct gw_textbuf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        switch (*p) {
        case '&':
            gw_textbuf_put(b, "&amp;");
            break;
        case '<':
            gw_textbuf_put(b, "&lt;");
            break;
        case '>':
            gw_textbuf_put(b, "&gt;");
            break;
        case '"':
            gw_textbuf_put(b, "&quot;");
            break;
        default:
            if (*p >= 0x20 || *p == '\t' || *p == '\n' || *p == '\r')
                gw_textbuf_put_n(b, (const char *)p, 1);
        }
    }
}

static void put_time(struct gw_textbuf *b, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char out[64];
    snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    gw_textbuf_put(b, out);
}

int64_t gw_atom_ulid_ms(const char *id)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (id == NULL || strlen(id) != 26 || id[0] > '7')
        return -1;
    int64_t ms = 0;
    for (int i = 0; i < 26; i++) {
        const char *c = strchr(alphabet, id[i]);
        if (id[i] == '\0' || c == NULL)
            return -1;
        if (i < 10)
            ms = ms * 32 + (c - alphabet);
    }
    return ms;
}

/* Whether xml is an Atom <entry> element (its text starts with it, with the Atom namespace). */
static int is_atom_entry(const char *xml)
{
    while (*xml == ' ' || *xml == '\n' || *xml == '\r' || *xml == '\t')
        xml++;
    if (strncmp(xml, "<entry", 6) != 0 || (xml[6] != ' ' && xml[6] != '>' && xml[6] != '\n'))
        return 0;
    const char *end = strchr(xml, '>');
    const char *ns = strstr(xml, "xmlns=\"" ATOM_NS "\"");
    const char *ns2 = strstr(xml, "xmlns='" ATOM_NS "'");
    return end != NULL && ((ns != NULL && ns < end) || (ns2 != NULL && ns2 < end));
}

static const char *member(const json_t *o, const char *name)
{
    return json_string_value(json_object_get(o, name));
}

static void entry(struct gw_textbuf *b, const json_t *item, const char *service, const char *node,
                  int64_t now_ms)
{
    const char *id = member(item, "id");
    const char *xml = member(item, "xml");
    if (xml != NULL && is_atom_entry(xml)) {
        gw_textbuf_put(b, xml);
        gw_textbuf_put(b, "\n");
        return;
    }
    const json_t *payload = json_object_get(item, "payload");
    int64_t at = gw_atom_ulid_ms(id);
    gw_textbuf_put(b, "<entry><id>xmpp:");
    put_esc(b, service);
    gw_textbuf_put(b, "?;node=");
    put_esc(b, node);
    gw_textbuf_put(b, ";item=");
    put_esc(b, id ? id : "");
    gw_textbuf_put(b, "</id><title>");
    const char *title = json_is_object(payload) ? member(payload, "title") : NULL;
    put_esc(b, title ? title : (id ? id : "item"));
    gw_textbuf_put(b, "</title><updated>");
    put_time(b, at >= 0 ? at : now_ms);
    gw_textbuf_put(b, "</updated>");
    const char *link = json_is_object(payload) ? member(payload, "link") : NULL;
    if (link != NULL) {
        gw_textbuf_put(b, "<link rel=\"alternate\" href=\"");
        put_esc(b, link);
        gw_textbuf_put(b, "\"/>");
    }
    const char *summary = json_is_object(payload) ? member(payload, "summary") : NULL;
    if (summary != NULL) {
        gw_textbuf_put(b, "<summary>");
        put_esc(b, summary);
        gw_textbuf_put(b, "</summary>");
    }
    if (payload != NULL) {
        char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        gw_textbuf_put(b, "<content type=\"text\">");
        put_esc(b, text ? text : "");
        gw_textbuf_put(b, "</content>");
        free(text);
    } else if (xml != NULL) {
        gw_textbuf_put(b, "<content type=\"application/xml\">");
        gw_textbuf_put(b, xml);
        gw_textbuf_put(b, "</content>");
    }
    gw_textbuf_put(b, "</entry>\n");
}

char *gw_atom_feed(const json_t *items, const char *service, const char *node, const char *self_url,
                   const char *hub_url, int64_t now_ms)
{
    struct gw_textbuf b = {0};
    const json_t *list = json_object_get(items, "items");
    size_t n = json_array_size(list);
    /* The feed's updated time: its newest entry's when known, else now. */
    int64_t newest = -1;
    for (size_t i = 0; i < n; i++) {
        int64_t t = gw_atom_ulid_ms(member(json_array_get(list, i), "id"));
        if (t > newest)
            newest = t;
    }
    gw_textbuf_put(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"" ATOM_NS
                       "\">\n<id>xmpp:");
    put_esc(&b, service);
    gw_textbuf_put(&b, "?;node=");
    put_esc(&b, node);
    gw_textbuf_put(&b, "</id>\n<title>");
    put_esc(&b, node);
    gw_textbuf_put(&b, "</title>\n<updated>");
    put_time(&b, newest >= 0 ? newest : now_ms);
    gw_textbuf_put(&b, "</updated>\n<author><name>");
    put_esc(&b, service);
    gw_textbuf_put(&b,
                   "</name></author>\n<generator>pubsubgw</generator>\n<link rel=\"self\" href=\"");
    put_esc(&b, self_url);
    gw_textbuf_put(&b, "\"/>\n");
    if (hub_url != NULL) {
        gw_textbuf_put(&b, "<link rel=\"hub\" href=\"");
        put_esc(&b, hub_url);
        gw_textbuf_put(&b, "\"/>\n");
    }
    /* Newest first when every id tells its time; else in the order the service gave. */
    size_t *order = malloc((n ? n : 1) * sizeof(*order));
    if (order == NULL) {
        free(b.p);
        return NULL;
    }
    int timed = 1;
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        timed &= gw_atom_ulid_ms(member(json_array_get(list, i), "id")) >= 0;
    }
    /* ULIDs sort as text in time order, those of one millisecond included. Insertion sort: a
     * page of items. */
    for (size_t i = 1; timed && i < n; i++) {
        size_t k = order[i], j = i;
        const char *t = member(json_array_get(list, k), "id");
        while (j > 0 && strcmp(member(json_array_get(list, order[j - 1]), "id"), t) < 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = k;
    }
    for (size_t i = 0; i < n; i++)
        entry(&b, json_array_get(list, order[i]), service, node, now_ms);
    free(order);
    gw_textbuf_put(&b, "</feed>\n");
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* One RSS member of a JSON payload as an element, when it is a string. */
static void rss_field(struct gw_textbuf *b, const json_t *payload, const char *member_name,
                      const char *element, const char *attrs)
{
    const char *v = json_string_value(json_object_get(payload, member_name));
    if (v == NULL)
        return;
    gw_textbuf_put(b, "<");
    gw_textbuf_put(b, element);
    gw_textbuf_put(b, attrs);
    gw_textbuf_put(b, ">");
    put_esc(b, v);
    gw_textbuf_put(b, "</");
    gw_textbuf_put(b, element);
    gw_textbuf_put(b, ">");
}

char *gw_rss_feed(const json_t *items, const char *node, const char *self_url, const char *hub_url)
{
    struct gw_textbuf b = {0};
    gw_textbuf_put(
        &b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\" xmlns:atom=\"" ATOM_NS
            "\">\n<channel>\n<title>");
    put_esc(&b, node);
    gw_textbuf_put(&b, "</title>\n<link>");
    put_esc(&b, self_url);
    gw_textbuf_put(&b, "</link>\n<description>");
    put_esc(&b, node);
    gw_textbuf_put(&b, "</description>\n<atom:link rel=\"self\" href=\"");
    put_esc(&b, self_url);
    gw_textbuf_put(&b, "\"/>\n");
    if (hub_url != NULL) {
        gw_textbuf_put(&b, "<atom:link rel=\"hub\" href=\"");
        put_esc(&b, hub_url);
        gw_textbuf_put(&b, "\"/>\n");
    }
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(items, "items"), i, item)
    {
        const json_t *payload = json_object_get(item, "payload");
        gw_textbuf_put(&b, "<item>");
        rss_field(&b, payload, "title", "title", "");
        rss_field(&b, payload, "link", "link", "");
        rss_field(&b, payload, "summary", "description", "");
        rss_field(&b, payload, "published", "pubDate", "");
        rss_field(&b, payload, "author", "author", "");
        if (json_string_value(json_object_get(payload, "id")) != NULL)
            rss_field(&b, payload, "id", "guid", " isPermaLink=\"false\"");
        else
            rss_field(&b, item, "id", "guid", " isPermaLink=\"false\"");
        gw_textbuf_put(&b, "</item>\n");
    }
    gw_textbuf_put(&b, "</channel>\n</rss>\n");
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

char *gw_json_feed(const json_t *items, const char *node, const char *self_url, const char *hub_url)
{
    json_t *list = json_array();
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(items, "items"), i, item)
    {
        const json_t *payload = json_object_get(item, "payload");
        if (json_is_object(payload))
            json_array_append(list, (json_t *)payload);
        else /* not a JSON Feed item: its text as the content */
            json_array_append_new(list, json_pack("{s:s*, s:s*}", "id", member(item, "id"),
                                                  "content_text", member(item, "xml")));
    }
    json_t *doc = json_pack("{s:s, s:s, s:s, s:o}", "version", "https://jsonfeed.org/version/1.1",
                            "title", node, "feed_url", self_url, "items", list);
    if (doc != NULL && hub_url != NULL)
        json_object_set_new(doc, "hubs",
                            json_pack("[{s:s, s:s}]", "type", "WebSub", "url", hub_url));
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}
