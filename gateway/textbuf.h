/* A growing text buffer for documents written piece by piece (feeds, entries). Out of memory is
 * remembered (failed) instead of checked at every piece: the writer looks once at the end. */
#ifndef GW_TEXTBUF_H
#define GW_TEXTBUF_H

#include <stddef.h>

struct gw_textbuf {
    char *p; /* NUL-terminated once anything was put; free() it */
    size_t len, cap;
    int failed;
};

void gw_textbuf_put_n(struct gw_textbuf *b, const char *s, size_t n);
void gw_textbuf_put(struct gw_textbuf *b, const char *s);

#endif
