/* Feed documents to item payloads. XML is parsed by expat with namespace processing, so an
 * Atom entry is written out again with the namespace declarations it needs (a slice of the
 * document would lose those made on <feed>); a DOCTYPE ends the parse, so no entity is ever
 * expanded. */
#include "feedparse.h"

#include "sign.h"
#include "textbuf.h"

#include <expat.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_ATOM "http://www.w3.org/2005/Atom"
#define NS_RSS1 "http://purl.org/rss/1.0/"
#define NS_RDF "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#define NS_CONTENT "http://purl.org/rss/1.0/modules/content/"
#define NS_DC "http://purl.org/dc/elements/1.1/"
#define NS_XML "http://www.w3.org/XML/1998/namespace"
#define SEP '\x01'
#define MAX_DEPTH 64
#define MAX_FIELD (256 * 1024)

static void put_escaped(struct gw_textbuf *b, const char *s, size_t n, int attr)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = s[i] == '&'            ? "&amp;"
                          : s[i] == '<'          ? "&lt;"
                          : s[i] == '>'          ? "&gt;"
                          : attr && s[i] == '"'  ? "&quot;"
                          : attr && s[i] == '\n' ? "&#10;"
                          : attr && s[i] == '\t' ? "&#9;"
                          : s[i] == '\r'         ? "&#13;"
                                                 : NULL;
        if (rep != NULL) {
            gw_textbuf_put_n(b, s + start, i - start);
            gw_textbuf_put(b, rep);
            start = i + 1;
        }
    }
    gw_textbuf_put_n(b, s + start, n - start);
}

/* "uri\x01local" or "local": the two parts. */
static void split(const char *name, const char **uri, size_t *urilen, const char **local)
{
    const char *sep = strchr(name, SEP);
    if (sep == NULL) {
        *uri = "";
        *urilen = 0;
        *local = name;
    } else {
        *uri = name;
        *urilen = (size_t)(sep - name);
        *local = sep + 1;
    }
}

static int is(const char *name, const char *uri, const char *local)
{
    const char *u, *l;
    size_t ul;
    split(name, &u, &ul, &l);
    return ul == strlen(uri) && strncmp(u, uri, ul) == 0 && strcmp(l, local) == 0;
}

enum kind { K_NONE, K_ATOM, K_RSS };

struct entry_acc {
    struct gw_feed_entry *v;
    int n, cap, max;
};

struct parse {
    XML_Parser p;
    enum kind kind;
    int depth;
    const char *error;
    struct entry_acc *acc;
    /* the entry (Atom) or item (RSS) being read: depth of its element, 0 when none */
    int in_entry;
    struct gw_textbuf ser;      /* Atom: the entry written out again */
    char *ns_at[MAX_DEPTH + 2]; /* Atom: the default namespace in force at each depth */
    int prefixes;
    /* a direct child's text (id, title, ...) */
    int field_depth;
    struct gw_textbuf text;
    char *field; /* which: "id", "link", "title", ... (static strings) */
    json_t *rss; /* RSS: the item's members */
    char *id, *link;
};

static void stop(struct parse *ps, const char *why)
{
    if (ps->error == NULL)
        ps->error = why;
    if (ps->p != NULL)
        XML_StopParser(ps->p, XML_FALSE);
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

static void item_id(const char *id, char **out)
{
    size_t n = strlen(id);
    int plain = n > 0 && n <= 200;
    for (size_t i = 0; plain && i < n; i++)
        plain = id[i] > 0x20 && id[i] < 0x7f;
    if (plain) {
        *out = strdup(id);
        return;
    }
    unsigned char d[32];
    gw_sha256(id, n, d);
    char hex[70] = "h-";
    gw_hex(d, sizeof(d), hex + 2);
    *out = strdup(hex);
}

/* Adds an entry (takes payload); its id from id, else link, else the payload's hash. */
static void add_entry(struct parse *ps, char *payload, int xml, const char *id, const char *link)
{
    struct entry_acc *a = ps->acc;
    if (payload == NULL || a->n >= a->max) {
        free(payload);
        return;
    }
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 16;
        struct gw_feed_entry *v = realloc(a->v, (size_t)cap * sizeof(*v));
        if (v == NULL) {
            free(payload);
            stop(ps, "out of memory");
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    struct gw_feed_entry *e = &a->v[a->n];
    memset(e, 0, sizeof(*e));
    e->payload = payload;
    e->xml = xml;
    unsigned char d[32];
    gw_sha256(payload, strlen(payload), d);
    gw_hex(d, sizeof(d), e->hash);
    char by_content[70];
    snprintf(by_content, sizeof(by_content), "h-%s", e->hash); /* no id at all: its content */
    if (id && *id)
        item_id(id, &e->item_id);
    else if (link && *link)
        item_id(link, &e->item_id);
    else
        e->item_id = strdup(by_content);
    if (e->item_id == NULL) {
        free(payload);
        stop(ps, "out of memory");
        return;
    }
    a->n++;
}

/* The fields read from an entry's or item's direct children. */
static const char *field_of(enum kind k, const char *name, const char **attrs, struct parse *ps)
{
    if (k == K_ATOM) {
        if (is(name, NS_ATOM, "id"))
            return "id";
        if (is(name, NS_ATOM, "link")) {
            const char *rel = NULL, *href = NULL;
            for (int i = 0; attrs[i]; i += 2) {
                if (strcmp(attrs[i], "rel") == 0)
                    rel = attrs[i + 1];
                if (strcmp(attrs[i], "href") == 0)
                    href = attrs[i + 1];
            }
            if (href && (rel == NULL || strcmp(rel, "alternate") == 0) && ps->link == NULL)
                set_str(&ps->link, href);
        }
        return NULL;
    }
    static const struct {
        const char *uri, *local, *member;
    } rss[] = {
        {"", "title", "title"},
        {NS_RSS1, "title", "title"},
        {"", "link", "link"},
        {NS_RSS1, "link", "link"},
        {"", "description", "summary"},
        {NS_RSS1, "description", "summary"},
        {"", "guid", "id"},
        {"", "pubDate", "published"},
        {NS_DC, "date", "published"},
        {"", "author", "author"},
        {NS_DC, "creator", "author"},
        {NS_CONTENT, "encoded", "content"},
    };
    for (size_t i = 0; i < sizeof(rss) / sizeof(rss[0]); i++)
        if (is(name, rss[i].uri, rss[i].local))
            return rss[i].member;
    return NULL;
}

static void XMLCALL on_start(void *arg, const char *name, const char **attrs)
{
    struct parse *ps = arg;
    if (++ps->depth > MAX_DEPTH) {
        stop(ps, "nested too deeply");
        return;
    }
    if (ps->depth == 1) {
        if (is(name, NS_ATOM, "feed"))
            ps->kind = K_ATOM;
        else if (is(name, "", "rss") || is(name, NS_RDF, "RDF"))
            ps->kind = K_RSS;
        else
            stop(ps, "neither an Atom feed nor an RSS channel");
        return;
    }
    if (!ps->in_entry) {
        int entry = ps->kind == K_ATOM ? ps->depth == 2 && is(name, NS_ATOM, "entry")
                                       : (ps->depth == 2 || ps->depth == 3) &&
                                             (is(name, "", "item") || is(name, NS_RSS1, "item"));
        if (!entry)
            return;
        ps->in_entry = ps->depth;
        ps->ser.len = 0;
        ps->prefixes = 0;
        set_str(&ps->id, NULL);
        set_str(&ps->link, NULL);
        if (ps->kind == K_RSS)
            ps->rss = json_object();
    } else if (ps->depth == ps->in_entry + 1) {
        const char *f = field_of(ps->kind, name, attrs, ps);
        if (f != NULL) {
            ps->field = (char *)f;
            ps->field_depth = ps->depth;
            ps->text.len = 0;
            if (ps->text.p)
                ps->text.p[0] = '\0';
        }
    }
    if (ps->kind != K_ATOM)
        return;
    /* The entry's markup, written out again with the declarations it needs. */
    const char *uri, *local;
    size_t ul;
    split(name, &uri, &ul, &local);
    const char *parent = ps->depth == ps->in_entry ? "" : ps->ns_at[ps->depth - 1];
    char *mine = strndup(uri, ul);
    if (mine == NULL) {
        stop(ps, "out of memory");
        return;
    }
    free(ps->ns_at[ps->depth]);
    ps->ns_at[ps->depth] = mine;
    gw_textbuf_put(&ps->ser, "<");
    gw_textbuf_put(&ps->ser, local);
    if (strcmp(parent, mine) != 0) {
        gw_textbuf_put(&ps->ser, " xmlns=\"");
        put_escaped(&ps->ser, mine, strlen(mine), 1);
        gw_textbuf_put(&ps->ser, "\"");
    }
    for (int i = 0; attrs[i]; i += 2) {
        const char *au, *al;
        size_t aul;
        split(attrs[i], &au, &aul, &al);
        char prefix[24] = "";
        if (aul > 0 && aul == strlen(NS_XML) && strncmp(au, NS_XML, aul) == 0) {
            snprintf(prefix, sizeof(prefix), "xml:");
        } else if (aul > 0) {
            snprintf(prefix, sizeof(prefix), "p%d", ps->prefixes++);
            gw_textbuf_put(&ps->ser, " xmlns:");
            gw_textbuf_put(&ps->ser, prefix);
            gw_textbuf_put(&ps->ser, "=\"");
            put_escaped(&ps->ser, au, aul, 1);
            gw_textbuf_put(&ps->ser, "\"");
            strcat(prefix, ":");
        }
        gw_textbuf_put(&ps->ser, " ");
        gw_textbuf_put(&ps->ser, prefix);
        gw_textbuf_put(&ps->ser, al);
        gw_textbuf_put(&ps->ser, "=\"");
        put_escaped(&ps->ser, attrs[i + 1], strlen(attrs[i + 1]), 1);
        gw_textbuf_put(&ps->ser, "\"");
    }
    gw_textbuf_put(&ps->ser, ">");
}

static void XMLCALL on_text(void *arg, const char *s, int len)
{
    struct parse *ps = arg;
    if (!ps->in_entry)
        return;
    if (ps->field_depth == ps->depth) {
        if (ps->text.len + (size_t)len > MAX_FIELD)
            stop(ps, "an entry's field is too large");
        else
            gw_textbuf_put_n(&ps->text, s, (size_t)len);
    }
    if (ps->kind == K_ATOM)
        put_escaped(&ps->ser, s, (size_t)len, 0);
}

/* Trimmed copy of a field's text. */
static char *trimmed(const struct gw_textbuf *b)
{
    const char *s = b->p ? b->p : "";
    size_t n = b->len;
    while (n > 0 && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
        s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    return strndup(s, n);
}

static void XMLCALL on_end(void *arg, const char *name)
{
    struct parse *ps = arg;
    if (ps->in_entry && ps->kind == K_ATOM) {
        const char *uri, *local;
        size_t ul;
        split(name, &uri, &ul, &local);
        gw_textbuf_put(&ps->ser, "</");
        gw_textbuf_put(&ps->ser, local);
        gw_textbuf_put(&ps->ser, ">");
    }
    if (ps->in_entry && ps->field_depth == ps->depth) {
        char *v = trimmed(&ps->text);
        if (v != NULL && ps->kind == K_ATOM && strcmp(ps->field, "id") == 0) {
            set_str(&ps->id, v);
        } else if (v != NULL && ps->kind == K_RSS && v[0] != '\0' &&
                   json_object_get(ps->rss, ps->field) == NULL) {
            json_object_set_new(ps->rss, ps->field, json_string(v));
        }
        free(v);
        ps->field_depth = 0;
    }
    if (ps->in_entry && ps->depth == ps->in_entry) {
        ps->in_entry = 0;
        if (ps->kind == K_ATOM) {
            if (ps->ser.failed) {
                stop(ps, "out of memory");
            } else {
                add_entry(ps, strdup(ps->ser.p), 1, ps->id, ps->link);
            }
        } else {
            const char *guid = json_string_value(json_object_get(ps->rss, "id"));
            const char *link = json_string_value(json_object_get(ps->rss, "link"));
            if (guid == NULL && link != NULL)
                json_object_set_new(ps->rss, "id", json_string(link));
            char *text = json_object_size(ps->rss) > 0 ? json_dumps(ps->rss, JSON_COMPACT) : NULL;
            add_entry(ps, text, 0, guid, link);
            json_decref(ps->rss);
            ps->rss = NULL;
        }
    }
    ps->depth--;
}

static void XMLCALL on_doctype(void *arg, const XML_Char *name, const XML_Char *sysid,
                               const XML_Char *pubid, int has_internal)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal;
    stop(arg, "a document type declaration is not accepted");
}

static int parse_xml(const char *doc, size_t len, struct entry_acc *acc, const char **kind,
                     char *err, size_t errlen)
{
    struct parse ps = {0};
    ps.acc = acc;
    ps.p = XML_ParserCreateNS(NULL, SEP);
    if (ps.p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    XML_SetUserData(ps.p, &ps);
    XML_SetElementHandler(ps.p, on_start, on_end);
    XML_SetCharacterDataHandler(ps.p, on_text);
    XML_SetStartDoctypeDeclHandler(ps.p, on_doctype);
    XML_SetParamEntityParsing(ps.p, XML_PARAM_ENTITY_PARSING_NEVER);
    enum XML_Status st = XML_Parse(ps.p, doc, (int)len, 1);
    int rc = 0;
    if (ps.error != NULL) {
        snprintf(err, errlen, "%s", ps.error);
        rc = -1;
    } else if (st != XML_STATUS_OK) {
        snprintf(err, errlen, "not well-formed XML: %s at line %lu",
                 XML_ErrorString(XML_GetErrorCode(ps.p)),
                 (unsigned long)XML_GetCurrentLineNumber(ps.p));
        rc = -1;
    }
    *kind = ps.kind == K_ATOM ? "atom" : "rss";
    XML_ParserFree(ps.p);
    free(ps.ser.p);
    free(ps.text.p);
    free(ps.id);
    free(ps.link);
    json_decref(ps.rss);
    for (int i = 0; i < MAX_DEPTH + 2; i++)
        free(ps.ns_at[i]);
    return rc;
}

static int parse_json(const char *doc, size_t len, struct entry_acc *acc, char *err, size_t errlen)
{
    json_error_t je;
    json_t *feed = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &je);
    const char *version = json_string_value(json_object_get(feed, "version"));
    json_t *items = json_object_get(feed, "items");
    if (feed == NULL) {
        snprintf(err, errlen, "not valid JSON: %s at line %d", je.text, je.line);
        return -1;
    }
    if (version == NULL || strncmp(version, "https://jsonfeed.org/version/1", 30) != 0 ||
        !json_is_array(items)) {
        json_decref(feed);
        snprintf(err, errlen, "not a JSON Feed (version https://jsonfeed.org/version/1.x, items)");
        return -1;
    }
    struct parse ps = {0};
    ps.acc = acc;
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        if (!json_is_object(item))
            continue;
        json_t *idv = json_object_get(item, "id");
        char num[32] = "";
        const char *id = json_string_value(idv);
        if (json_is_integer(idv)) { /* 1.0 feeds sometimes give numbers */
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(idv));
            id = num;
        }
        add_entry(&ps, json_dumps(item, JSON_COMPACT), 0, id,
                  json_string_value(json_object_get(item, "url")));
        if (ps.error != NULL)
            break;
    }
    json_decref(feed);
    if (ps.error != NULL) {
        snprintf(err, errlen, "%s", ps.error);
        return -1;
    }
    return 0;
}

int gw_feed_parse(const char *content_type, const char *doc, size_t len, int max_entries,
                  struct gw_feed_entry **out, const char **kind, char *err, size_t errlen)
{
    (void)content_type; /* servers label feeds every which way: the document says what it is */
    struct entry_acc acc = {NULL, 0, 0, max_entries};
    *out = NULL;
    *kind = "";
    size_t skip = 0;
    if (len >= 3 && memcmp(doc, "\xEF\xBB\xBF", 3) == 0)
        skip = 3;
    while (skip < len &&
           (doc[skip] == ' ' || doc[skip] == '\n' || doc[skip] == '\r' || doc[skip] == '\t'))
        skip++;
    int rc;
    if (skip < len && doc[skip] == '{') {
        *kind = "json";
        rc = parse_json(doc + skip, len - skip, &acc, err, errlen);
    } else if (skip < len && doc[skip] == '<') {
        rc = parse_xml(doc, len, &acc, kind, err, errlen);
    } else {
        snprintf(err, errlen, "neither XML nor JSON");
        rc = -1;
    }
    if (rc != 0) {
        gw_feed_entries_free(acc.v, acc.n);
        return -1;
    }
    *out = acc.v;
    return acc.n;
}

void gw_feed_entries_free(struct gw_feed_entry *e, int n)
{
    for (int i = 0; i < n; i++) {
        free(e[i].item_id);
        free(e[i].payload);
    }
    free(e);
}
