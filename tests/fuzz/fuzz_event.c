/* Fuzz target: everything parsed from the network: event messages, IQ results (items, disco,
 * forms, subscriptions, affiliations) and errors. */
#include "xmpp/event.h"
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
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, text);
    if (st != NULL) {
        json_decref(gw_event_parse(ctx, st));
        json_decref(gw_pubsub_items_json(ctx, st));
        json_decref(gw_disco_items_json(st));
        json_decref(gw_disco_info_json(st));
        json_decref(gw_data_form_json(st));
        json_decref(gw_pubsub_subscriptions_json(st, GW_NS_PUBSUB));
        json_decref(gw_pubsub_affiliations_json(st));
        struct gw_xmpp_error e;
        gw_pubsub_error_parse(st, &e);
        (void)gw_xmpp_condition_status(e.condition);
        xmpp_stanza_release(st);
    }
    free(text);
    return 0;
}
