#include "textbuf.h"

#include <stdlib.h>
#include <string.h>

void gw_textbuf_put_n(struct gw_textbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512; /* a publish stanza: from malloc's per-thread cache */
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void gw_textbuf_put(struct gw_textbuf *b, const char *s)
{
    gw_textbuf_put_n(b, s, strlen(s));
}
