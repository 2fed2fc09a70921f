/* Fuzz target: building payload stanzas from client input (JSON text and XML bodies) and
 * serializing them, and node configuration forms. */
#include "xmpp/payload.h"
#include "xmpp/pubsub.h"

#include "fuzz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_ctx_t *ctx = fuzz_ctx();
    char *text = fuzz_text(data, size);
    char err[256];
    xmpp_stanza_t *el = gw_payload_xml_element(ctx, text, err, sizeof(err));
    if (el != NULL) {
        xmpp_stanza_t *iq = gw_pubsub_publish(ctx, "f1", "ps", "n", "i", el, NULL);
        free(gw_stanza_text(ctx, iq));
        xmpp_stanza_release(iq);
        xmpp_stanza_release(el);
    }
    json_t *v = json_loadb(text, size, JSON_DECODE_ANY, NULL);
    if (v != NULL) {
        char *compact = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        xmpp_stanza_t *j = compact ? gw_payload_json_element(ctx, compact) : NULL;
        if (j != NULL) {
            /* Round trip through the parser the subscriber side uses. */
            char *xml = gw_stanza_text(ctx, j);
            xmpp_stanza_t *back = xml ? xmpp_stanza_new_from_string(ctx, xml) : NULL;
            if (back) {
                xmpp_stanza_t *item = xmpp_stanza_new(ctx);
                xmpp_stanza_set_name(item, "item");
                xmpp_stanza_add_child(item, back);
                json_t *got = gw_payload_item_json(ctx, item);
                json_decref(got);
                xmpp_stanza_release(item);
                xmpp_stanza_release(back);
            }
            free(xml);
            xmpp_stanza_release(j);
        }
        if (json_is_object(v)) {
            xmpp_stanza_t *iq = gw_pubsub_create(ctx, "f2", "ps", "n", v);
            free(iq ? gw_stanza_text(ctx, iq) : NULL);
            if (iq)
                xmpp_stanza_release(iq);
        }
        free(compact);
        json_decref(v);
    }
    free(text);
    return 0;
}
