/* Feed documents to items: Atom entries kept as they are (with the namespaces declared on the
 * feed carried into the entry), RSS 2.0 / 1.0 items and JSON Feed items as JSON, stable ids,
 * changed content seen as a changed hash, and hostile documents refused. */
#include "../check.h"
#include "gateway/feedparse.h"

#include <expat.h>
#include <jansson.h>
#include <stdlib.h>

static int well_formed(const char *xml)
{
    XML_Parser p = XML_ParserCreateNS(NULL, '|');
    int ok = XML_Parse(p, xml, (int)strlen(xml), 1) == XML_STATUS_OK;
    XML_ParserFree(p);
    return ok;
}

static int parse(const char *doc, struct gw_feed_entry **e, const char **kind)
{
    char err[300] = "";
    int n = gw_feed_parse(NULL, doc, strlen(doc), 100, e, kind, err, sizeof(err));
    if (n < 0)
        fprintf(stderr, "  parse: %s\n", err);
    return n;
}

static const char *member(const char *json, const char *name, char *out, size_t cap)
{
    json_t *j = json_loads(json, 0, NULL);
    snprintf(out, cap, "%s", json_string_value(json_object_get(j, name)) ?: "(none)");
    json_decref(j);
    return out;
}

int main(void)
{
    struct gw_feed_entry *e;
    const char *kind;
    char v[200];

    const char *atom =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:media=\"http://search.yahoo.com/mrss/\">"
        "<title>T</title><id>urn:feed</id>"
        "<entry><id>tag:example.org,2026:1</id><title type=\"html\">A &amp; &lt;b&gt;</title>"
        "<media:thumbnail url=\"http://x/1.png\"/><content xml:lang=\"en\">one</content>"
        "<updated>2026-11-29T00:00:00Z</updated></entry>"
        "<entry><title>no id</title><link href=\"https://example.org/2\"/></entry>"
        "</feed>";
    CHECK_INT(parse(atom, &e, &kind), 2);
    CHECK_STR(kind, "atom");
    CHECK_STR(e[0].item_id, "tag:example.org,2026:1");
    CHECK(e[0].xml == 1 && well_formed(e[0].payload));
    CHECK(strncmp(e[0].payload, "<entry xmlns=\"http://www.w3.org/2005/Atom\">", 43) == 0);
    CHECK(strstr(e[0].payload, "A &amp; &lt;b&gt;") != NULL);
    CHECK(strstr(e[0].payload, "<thumbnail xmlns=\"http://search.yahoo.com/mrss/\" url=") != NULL);
    CHECK(strstr(e[0].payload, "xml:lang=\"en\"") != NULL);
    CHECK_STR(e[1].item_id, "https://example.org/2");
    char first_hash[65];
    memcpy(first_hash, e[0].hash, 65);
    gw_feed_entries_free(e, 2);
    /* the same entry updated: another hash, the same id */
    const char *atom2 = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>tag:example.org,"
                        "2026:1</id><title>changed</title></entry></feed>";
    CHECK_INT(parse(atom2, &e, &kind), 1);
    CHECK_STR(e[0].item_id, "tag:example.org,2026:1");
    CHECK(strcmp(e[0].hash, first_hash) != 0);
    gw_feed_entries_free(e, 1);

    const char *rss =
        "<?xml version=\"1.0\"?><rss version=\"2.0\" "
        "xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>C</title>"
        "<item><title>First</title><link>https://example.org/a</link>"
        "<description>&lt;p&gt;Hi&lt;/p&gt;</description><guid isPermaLink=\"false\">a-1</guid>"
        "<pubDate>Sun, 29 Nov 2026 10:00:00 GMT</pubDate>"
        "<content:encoded><![CDATA[<p>Full</p>]]></content:encoded></item>"
        "<item><title>Second</title><link>https://example.org/b</link></item>"
        "<item><description>only text, with spaces in it</description></item>"
        "</channel></rss>";
    CHECK_INT(parse(rss, &e, &kind), 3);
    CHECK_STR(kind, "rss");
    CHECK_STR(e[0].item_id, "a-1");
    CHECK(e[0].xml == 0);
    CHECK_STR(member(e[0].payload, "title", v, sizeof(v)), "First");
    CHECK_STR(member(e[0].payload, "summary", v, sizeof(v)), "<p>Hi</p>");
    CHECK_STR(member(e[0].payload, "content", v, sizeof(v)), "<p>Full</p>");
    CHECK_STR(member(e[0].payload, "published", v, sizeof(v)), "Sun, 29 Nov 2026 10:00:00 GMT");
    CHECK_STR(e[1].item_id, "https://example.org/b");
    CHECK_STR(member(e[1].payload, "id", v, sizeof(v)), "https://example.org/b");
    CHECK(strncmp(e[2].item_id, "h-", 2) == 0 && strlen(e[2].item_id) == 66);
    gw_feed_entries_free(e, 3);

    const char *rdf = "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" "
                      "xmlns=\"http://purl.org/rss/1.0/\"><channel/><item rdf:about=\"u\">"
                      "<title>R1</title><link>https://example.org/r1</link></item></rdf:RDF>";
    CHECK_INT(parse(rdf, &e, &kind), 1);
    CHECK_STR(e[0].item_id, "https://example.org/r1");
    gw_feed_entries_free(e, 1);

    const char *jf =
        "\xEF\xBB\xBF {\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"J\","
        "\"items\":[{\"id\":\"j1\",\"title\":\"Json one\",\"content_text\":\"x\"},"
        "{\"id\":42,\"url\":\"https://example.org/j2\"},"
        "{\"url\":\"https://example.org/j3 with space\"}]}";
    CHECK_INT(parse(jf, &e, &kind), 3);
    CHECK_STR(kind, "json");
    CHECK_STR(e[0].item_id, "j1");
    CHECK_STR(member(e[0].payload, "title", v, sizeof(v)), "Json one");
    CHECK_STR(e[1].item_id, "42");
    CHECK(strncmp(e[2].item_id, "h-", 2) == 0);
    gw_feed_entries_free(e, 3);

    /* Refused: a DTD (entities), not a feed, malformed, too deep, not JSON Feed. */
    char err[300];
    static const char dtd[] =
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">]><rss><channel><item>"
        "<title>&lol;</title></item></channel></rss>";
    const char *bad[] = {
        dtd,
        "<html><body>not a feed</body></html>",
        "<rss><channel><item><title>x</item></channel></rss>",
        "{\"version\":\"1\",\"items\":[]}",
        "plain text",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_INT(gw_feed_parse(NULL, bad[i], strlen(bad[i]), 100, &e, &kind, err, sizeof(err)),
                  -1);
        CHECK(err[0] != '\0');
    }
    char deep[4000] = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry>";
    for (int i = 0; i < 100; i++)
        strcat(deep, "<a>");
    CHECK_INT(gw_feed_parse(NULL, deep, strlen(deep), 100, &e, &kind, err, sizeof(err)), -1);
    /* at most max_entries */
    CHECK_INT(gw_feed_parse(NULL, rss, strlen(rss), 2, &e, &kind, err, sizeof(err)), 2);
    gw_feed_entries_free(e, 2);
    CHECK_DONE();
}
