/* Fuzz target: the publish of a JSON item written as text (gw_pubsub_publish_text) must mean
 * exactly what the stanza built by gw_pubsub_publish means. The input holds the IQ id, the
 * service, the node, the item id and the JSON text, separated by NUL bytes. Whenever the text
 * is built, libstrophe's parser must read it back with every value intact, and the stanza path
 * must give the same values; when it is refused, a value must hold a character XML cannot
 * carry. Any difference aborts. */
#include "xmpp/payload.h"
#include "xmpp/pubsub.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Valid UTF-8 without NUL, as the HTTP layer admits (the XML parser rejects the rest). */
static int utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        if (n == 0)
            return 0;
        unsigned long cp = n == 1 ? *p : *p & (0x7F >> n);
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        p += n;
    }
    return 1;
}

/* Whether s holds a character XML cannot carry here: a control character (in an attribute
 * value, any; in text, any but tab, newline and carriage return), or U+FFFE/U+FFFF outside
 * JSON text. */
static int unfit(const char *s, int attribute, int json)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 && (attribute || (*p != '\t' && *p != '\n' && *p != '\r')))
            return 1;
        if (!json && p[0] == 0xEF && p[1] == 0xBF && (p[2] == 0xBE || p[2] == 0xBF))
            return 1;
    }
    return 0;
}

static void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_publish: %s\n", what);
        abort();
    }
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The values a publish stanza carries: id, to, node, item id, and the JSON text. */
struct values {
    const char *id, *to, *node, *item;
    char *json;
};

static int read_values(xmpp_stanza_t *iq, struct values *v)
{
    xmpp_stanza_t *ps = xmpp_stanza_get_child_by_name_and_ns(iq, "pubsub", GW_NS_PUBSUB);
    xmpp_stanza_t *pub = ps ? xmpp_stanza_get_child_by_name(ps, "publish") : NULL;
    xmpp_stanza_t *item = pub ? xmpp_stanza_get_child_by_name(pub, "item") : NULL;
    xmpp_stanza_t *json =
        item ? xmpp_stanza_get_child_by_name_and_ns(item, "json", GW_JSON_NS) : NULL;
    if (json == NULL || strcmp(xmpp_stanza_get_name(iq), "iq") != 0 ||
        !same(xmpp_stanza_get_type(iq), "set"))
        return -1;
    v->id = xmpp_stanza_get_id(iq);
    v->to = xmpp_stanza_get_to(iq);
    v->node = xmpp_stanza_get_attribute(pub, "node");
    v->item = xmpp_stanza_get_id(item);
    v->json = xmpp_stanza_get_text(json); /* NULL when empty */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_ctx_t *ctx = fuzz_ctx();
    char *in = fuzz_text(data, size);
    const char *f[5] = {"f1", "pubsub.example", "node", NULL, "{}"};
    const char *p = in, *end = in + size;
    for (int i = 0; i < 5 && p <= end; i++) {
        f[i] = p;
        p += strlen(p) + 1;
    }
    /* an empty item id means none; the service is always named */
    const char *id = f[0], *service = f[1][0] ? f[1] : "pubsub.example", *node = f[2];
    const char *item = f[3] && f[3][0] ? f[3] : NULL, *json = f[4];
    if (!utf8_ok(id) || !utf8_ok(service) || !utf8_ok(node) || (item && !utf8_ok(item)) ||
        !utf8_ok(json) || strlen(id) >= 24) {
        free(in);
        return 0;
    }
    size_t len = 0;
    char *text = gw_pubsub_publish_text(id, service, node, item, json, &len);
    int refused = unfit(id, 1, 0) || unfit(service, 1, 0) || unfit(node, 1, 0) ||
                  (item && unfit(item, 1, 0)) || unfit(json, 0, 1);
    if (text == NULL) {
        expect(refused, "refused values XML can carry");
        free(in);
        return 0;
    }
    expect(!refused, "wrote a value XML cannot carry");
    expect(strlen(text) == len, "length");
    xmpp_stanza_t *got = xmpp_stanza_new_from_string(ctx, text);
    expect(got != NULL, "libstrophe cannot parse the text");
    struct values a;
    expect(read_values(got, &a) == 0, "not a publish of a JSON item");
    expect(same(a.id, id) && same(a.to, service) && same(a.node, node) && same(a.item, item),
           "an attribute changed");

    /* The stanza path, serialized and parsed the same way, carries the same values. */
    xmpp_stanza_t *payload = gw_payload_json_element(ctx, json);
    xmpp_stanza_t *iq =
        payload ? gw_pubsub_publish(ctx, id, service, node, item, payload, NULL) : NULL;
    char *ref = iq ? gw_stanza_text(ctx, iq) : NULL;
    xmpp_stanza_t *back = ref ? xmpp_stanza_new_from_string(ctx, ref) : NULL;
    struct values b;
    expect(back != NULL && read_values(back, &b) == 0, "the stanza path failed");
    expect(same(a.id, b.id) && same(a.to, b.to) && same(a.node, b.node) && same(a.item, b.item),
           "the two paths differ in an attribute");
    /* The JSON text: exactly the input (U+FFFE and U+FFFF as their JSON escapes) on the text
     * path; the stanza path sends carriage returns raw, which a parser reads as newlines. */
    char *want = malloc(strlen(json) * 2 + 1), *norm = malloc(strlen(json) * 2 + 1);
    size_t k = 0, m = 0;
    for (const unsigned char *q = (const unsigned char *)json; *q; q++) {
        if (q[0] == 0xEF && q[1] == 0xBF && (q[2] == 0xBE || q[2] == 0xBF)) {
            memcpy(want + k, q[2] == 0xBE ? "\\ufffe" : "\\uffff", 6);
            k += 6;
            q += 2;
        } else {
            want[k++] = (char)*q;
        }
    }
    want[k] = '\0';
    for (size_t i = 0; i < k; i++) {
        if (want[i] == '\r' && want[i + 1] == '\n')
            continue;
        norm[m++] = want[i] == '\r' ? '\n' : want[i];
    }
    norm[m] = '\0';
    expect(same(a.json ? a.json : "", want), "the JSON text changed");
    expect(same(b.json ? b.json : "", norm), "the two paths differ in the JSON text");
    free(want);
    free(norm);
    xmpp_free(ctx, a.json);
    xmpp_free(ctx, b.json);
    if (back)
        xmpp_stanza_release(back);
    free(ref);
    if (iq)
        xmpp_stanza_release(iq);
    if (payload)
        xmpp_stanza_release(payload);
    xmpp_stanza_release(got);
    free(text);
    free(in);
    return 0;
}
