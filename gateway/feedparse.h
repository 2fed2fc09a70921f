/* Feeds read for publishing: RSS 2.0 (and 1.0), Atom 1.0 and JSON Feed 1.1, each entry turned
 * into an item payload with a stable id. Pure: a document in, entries out (expat and jansson);
 * the XML from the network is never trusted (no DTD, no entities, bounded sizes). */
#ifndef GW_FEEDPARSE_H
#define GW_FEEDPARSE_H

#include <stddef.h>

struct gw_feed_entry {
    char *item_id; /* the item id to publish under: the entry's id (Atom id, RSS guid, JSON Feed
                    * id; else its link) when it is short printable ASCII, else "h-" and the hex
                    * SHA-256 of it */
    char *payload; /* an Atom <entry> element as it came (xml = 1), or a JSON object (xml = 0):
                    * RSS items become {"id","title","link","summary","content","published",
                    * "author"} (members present in the item), JSON Feed items stay as they are */
    int xml;
    char hash[65]; /* hex SHA-256 of the payload: a changed entry has another */
};

/* Parses a feed document of len bytes (content_type may be NULL: sniffed). Fills *out with a
 * malloc'd array of entries in document order (at most max_entries) and returns their number,
 * with the format in kind ("atom", "rss", "json"); or returns -1 with the reason in err. */
int gw_feed_parse(const char *content_type, const char *doc, size_t len, int max_entries,
                  struct gw_feed_entry **out, const char **kind, char *err, size_t errlen);
void gw_feed_entries_free(struct gw_feed_entry *e, int n);

#endif
