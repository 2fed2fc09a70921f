/* What the libFuzzer targets on XMPP data share. */
#ifndef GW_FUZZ_H
#define GW_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

/* One libstrophe context for all inputs, made on first use. */
static xmpp_ctx_t *fuzz_ctx(void)
{
    static xmpp_ctx_t *ctx;
    if (ctx == NULL) {
        xmpp_initialize();
        ctx = xmpp_ctx_new(NULL, NULL);
    }
    return ctx;
}

/* The input as a NUL-terminated string; the caller frees it. */
static char *fuzz_text(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    return text;
}

#endif
