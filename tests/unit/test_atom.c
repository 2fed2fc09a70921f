/* The Atom rendering of a node's items: well-formed (parsed back with expat) whatever the items
 * hold, user data escaped, Atom entries kept as they are, newest first, ULID times. */
#include "../check.h"
#include "http/atom.h"

#include <expat.h>
#include <stdlib.h>

static int well_formed(const char *doc)
{
    XML_Parser p = XML_ParserCreateNS(NULL, ' ');
    int ok = XML_Parse(p, doc, (int)strlen(doc), 1) == XML_STATUS_OK;
    if (!ok)
        fprintf(stderr, "not well-formed: %s at line %lu\n%s\n",
                XML_ErrorString(XML_GetErrorCode(p)), XML_GetCurrentLineNumber(p), doc);
    XML_ParserFree(p);
    return ok;
}

int main(void)
{
    /* 01M8MHM719XPJE01C9EYQ9XCFH is a ULID of 2026-11-29T20:58:26.721Z */
    CHECK(gw_atom_ulid_ms("01M8MHM719XPJE01C9EYQ9XCFH") > 1790000000000LL);
    CHECK_INT(gw_atom_ulid_ms("not-a-ulid"), -1);
    CHECK_INT(gw_atom_ulid_ms("01M8MHM719XPJE01C9EYQ9XCFU"), -1); /* U is not Crockford */
    CHECK_INT(gw_atom_ulid_ms(NULL), -1);

    json_t *items = json_pack(
        "{s:[{s:s, s:{s:s, s:s, s:i}}, {s:s, s:s}, {s:s, s:s}, {s:s}]}", "items", "id",
        "01M8MHM719XPJE01C9EYQ9XCFH", "payload", "title", "Fish & <chips> \"now\"", "link",
        "https://example.org/?a=1&b=2", "n", 1, "id", "01M8MHM8000000000000000000", "xml",
        "<entry xmlns=\"http://www.w3.org/2005/Atom\"><id>tag:x,2026:1</id><title>As is</title>"
        "<updated>2026-11-29T00:00:00Z</updated></entry>",
        "id", "01M8MHM6000000000000000000", "xml", "<thing xmlns=\"urn:x\">a &amp; b</thing>", "id",
        "01M8MHM5000000000000000000");
    char *doc = gw_atom_feed(items, "pubsub.example.org", "news & <views>",
                             "http://gw.example/v1/nodes/news/feed?a=1&b=2",
                             "http://gw.example/websub", 1700000000000LL);
    CHECK(doc != NULL);
    if (doc == NULL)
        CHECK_DONE();
    CHECK(well_formed(doc));
    CHECK(strstr(doc, "<title>news &amp; &lt;views&gt;</title>") != NULL);
    CHECK(strstr(doc, "<title>Fish &amp; &lt;chips&gt; &quot;now&quot;</title>") != NULL);
    CHECK(strstr(doc, "href=\"https://example.org/?a=1&amp;b=2\"") != NULL);
    CHECK(
        strstr(doc,
               "<link rel=\"self\" href=\"http://gw.example/v1/nodes/news/feed?a=1&amp;b=2\"/>") !=
        NULL);
    CHECK(strstr(doc, "<link rel=\"hub\" href=\"http://gw.example/websub\"/>") != NULL);
    CHECK(strstr(doc, "<title>As is</title>") != NULL); /* an Atom entry as it is */
    CHECK(strstr(doc, "<content type=\"application/xml\"><thing xmlns=\"urn:x\">a &amp; "
                      "b</thing></content>") != NULL);
    CHECK(strstr(doc, "xmpp:pubsub.example.org?;node=news &amp; &lt;views&gt;;item=") != NULL);
    /* newest first: the entry kept as is (…M8000…) before the JSON one (…M719…) */
    const char *as_is = strstr(doc, "As is"), *fish = strstr(doc, "Fish");
    CHECK(as_is != NULL && fish != NULL && as_is < fish);
    CHECK(strstr(doc, "<updated>2026-11-29T20:58:26") != NULL);
    free(doc);
    json_decref(items);

    /* Characters XML cannot carry are left out; an empty node list still makes a feed. */
    items = json_pack("{s:[{s:s, s:s}]}", "items", "id", "odd\x01id", "xml", "<a/>");
    doc = gw_atom_feed(items, "svc", "n\x02ode", "http://x/feed", NULL, 1700000000000LL);
    CHECK(doc != NULL && well_formed(doc));
    CHECK(doc != NULL && strstr(doc, "rel=\"hub\"") == NULL);
    CHECK(doc != NULL && strstr(doc, "<updated>2023-11-14T22:13:20.000Z</updated>") != NULL);
    free(doc);
    json_decref(items);
    items = json_pack("{s:[]}", "items");
    doc = gw_atom_feed(items, "svc", "empty", "http://x/feed", NULL, 0);
    CHECK(doc != NULL && well_formed(doc));
    free(doc);
    json_decref(items);
    CHECK_DONE();
}
