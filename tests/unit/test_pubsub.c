/* XEP-0060 stanzas: what the builders produce (attributes escaped, forms typed), and what the
 * parsers make of results and errors. */
#include "../check.h"
#include "xmpp/payload.h"
#include "xmpp/pubsub.h"

#include <stdlib.h>

static char *text_of(xmpp_ctx_t *ctx, xmpp_stanza_t *st)
{
    char *s = gw_stanza_text(ctx, st);
    xmpp_stanza_release(st);
    return s;
}

static xmpp_stanza_t *parse(xmpp_ctx_t *ctx, const char *s)
{
    return xmpp_stanza_new_from_string(ctx, s);
}

int main(void)
{
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);

    xmpp_stanza_t *payload = gw_payload_json_element(ctx, "{}");
    json_t *opts = json_pack("{s:s}", "pubsub#access_model", "open");
    char *s = text_of(
        ctx, gw_pubsub_publish(ctx, "q1", "pubsub.example", "a\"<&'b", "i&1", payload, opts));
    xmpp_stanza_release(payload);
    json_decref(opts);
    CHECK(strstr(s, "node=\"a&quot;&lt;&amp;'b\"") != NULL);
    CHECK(strstr(s, "id=\"i&amp;1\"") != NULL);
    CHECK(strstr(s, "to=\"pubsub.example\"") != NULL);
    CHECK(strstr(s, "type=\"set\"") != NULL);
    CHECK(strstr(s, "<publish-options><x xmlns=\"jabber:x:data\" type=\"submit\">") != NULL);
    CHECK(strstr(s, "http://jabber.org/protocol/pubsub#publish-options") != NULL);
    CHECK(strstr(s, "<field var=\"pubsub#access_model\"><value>open</value></field>") != NULL);
    free(s);

    json_t *cfg =
        json_pack("{s:i, s:b, s:[s,s], s:s}", "pubsub#max_items", 100, "pubsub#persist_items", 1,
                  "pubsub#children", "a", "b", "pubsub#title", "<T>");
    s = text_of(ctx, gw_pubsub_create(ctx, "q2", "ps", "n", cfg));
    json_decref(cfg);
    CHECK(strstr(s, "<create node=\"n\"/>") != NULL);
    CHECK(strstr(s, "<field var=\"pubsub#max_items\"><value>100</value></field>") != NULL);
    CHECK(strstr(s, "<field var=\"pubsub#persist_items\"><value>1</value></field>") != NULL);
    CHECK(strstr(s, "<value>a</value><value>b</value>") != NULL);
    CHECK(strstr(s, "<value>&lt;T&gt;</value>") != NULL);
    free(s);
    s = text_of(ctx, gw_pubsub_create(ctx, "q3", "ps", NULL, NULL));
    CHECK(strstr(s, "<create/>") != NULL);
    CHECK(strstr(s, "configure") == NULL);
    free(s);

    s = text_of(ctx, gw_pubsub_items(ctx, "q4", "ps", "n", 5, NULL));
    CHECK(strstr(s, "<items node=\"n\" max_items=\"5\"/>") != NULL ||
          strstr(s, "<items max_items=\"5\" node=\"n\"/>") != NULL);
    free(s);
    s = text_of(ctx, gw_pubsub_retract(ctx, "q5", "ps", "n", "i"));
    CHECK(strstr(s, "notify=\"true\"") != NULL);
    CHECK(strstr(s, "<item id=\"i\"/>") != NULL);
    free(s);
    s = text_of(ctx, gw_pubsub_delete(ctx, "q6", "ps", "n", NULL));
    CHECK(strstr(s, "http://jabber.org/protocol/pubsub#owner") != NULL);
    CHECK(strstr(s, "<delete node=\"n\"/>") != NULL);
    free(s);

    /* Errors: condition, pubsub condition and text. */
    xmpp_stanza_t *e =
        parse(ctx, "<iq type='error' id='q1'><error type='cancel'>"
                   "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                   "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>exists</text>"
                   "<precondition-not-met xmlns='http://jabber.org/protocol/pubsub#errors'/>"
                   "</error></iq>");
    struct gw_xmpp_error xe;
    gw_pubsub_error_parse(e, &xe);
    CHECK_STR(xe.condition, "conflict");
    CHECK_STR(xe.pubsub_condition, "precondition-not-met");
    CHECK_STR(xe.text, "exists");
    xmpp_stanza_release(e);
    e = parse(ctx, "<iq type='error' id='q1'/>");
    gw_pubsub_error_parse(e, &xe);
    CHECK_STR(xe.condition, "undefined-condition");
    xmpp_stanza_release(e);

    CHECK_INT(gw_xmpp_condition_status("bad-request"), 400);
    CHECK_INT(gw_xmpp_condition_status("not-authorized"), 403);
    CHECK_INT(gw_xmpp_condition_status("forbidden"), 403);
    CHECK_INT(gw_xmpp_condition_status("item-not-found"), 404);
    CHECK_INT(gw_xmpp_condition_status("not-allowed"), 405);
    CHECK_INT(gw_xmpp_condition_status("conflict"), 409);
    CHECK_INT(gw_xmpp_condition_status("not-acceptable"), 422);
    CHECK_INT(gw_xmpp_condition_status("policy-violation"), 422);
    CHECK_INT(gw_xmpp_condition_status("resource-constraint"), 429);
    CHECK_INT(gw_xmpp_condition_status("internal-server-error"), 502);
    CHECK_INT(gw_xmpp_condition_status("remote-server-not-found"), 502);
    CHECK_INT(gw_xmpp_condition_status("feature-not-implemented"), 501);
    CHECK_INT(gw_xmpp_condition_status("service-unavailable"), 503);
    CHECK_INT(gw_xmpp_condition_status("remote-server-timeout"), 504);
    CHECK_INT(gw_xmpp_condition_status("made-up"), 502);

    /* Results. */
    xmpp_stanza_t *r =
        parse(ctx, "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#items'>"
                   "<item jid='ps' node='a' name='A'/><item jid='ps'/><item jid='ps' node='b'/>"
                   "</query></iq>");
    json_t *j = gw_disco_items_json(r);
    CHECK_INT(json_array_size(json_object_get(j, "nodes")), 2);
    CHECK_STR(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "nodes"), 0), "name")),
        "A");
    json_decref(j);
    xmpp_stanza_release(r);

    r = parse(ctx,
              "<iq type='result'><query xmlns='http://jabber.org/protocol/disco#info'>"
              "<identity category='pubsub' type='collection'/><feature var='f1'/></query></iq>");
    j = gw_disco_info_json(r);
    CHECK_STR(json_string_value(json_object_get(j, "type")), "collection");
    CHECK_STR(json_string_value(json_array_get(json_object_get(j, "features"), 0)), "f1");
    json_decref(j);
    xmpp_stanza_release(r);

    r = parse(ctx, "<x xmlns='jabber:x:data' type='form'>"
                   "<field var='FORM_TYPE' type='hidden'><value>t</value></field>"
                   "<field var='b' type='boolean'><value>1</value></field>"
                   "<field var='m' type='list-multi'><value>x</value><value>y</value></field>"
                   "<field var='s' type='text-single'><value>20</value></field>"
                   "<field var='e' type='text-single'/></x>");
    j = gw_data_form_json(r);
    CHECK(json_object_get(j, "FORM_TYPE") == NULL);
    CHECK(json_is_true(json_object_get(j, "b")));
    CHECK_INT(json_array_size(json_object_get(j, "m")), 2);
    CHECK_STR(json_string_value(json_object_get(j, "s")), "20");
    /* A field without <value/> (ejabberd) reads as the empty string, as with <value/>. */
    CHECK_STR(json_string_value(json_object_get(j, "e")), "");
    json_decref(j);
    xmpp_stanza_release(r);

    /* The form as declared: fields in order, types, labels, options; hidden ones left out. */
    r = parse(ctx, "<x xmlns='jabber:x:data' type='form'>"
                   "<field var='FORM_TYPE' type='hidden'><value>t</value></field>"
                   "<field var='h' type='hidden'><value>secret</value></field>"
                   "<field var='pubsub#access_model' type='list-single' label='Who may subscribe'>"
                   "<desc>access</desc><option label='Anyone'><value>open</value></option>"
                   "<option><value>whitelist</value></option><option/><value>open</value></field>"
                   "<field var='b' type='boolean' label='&lt;b&gt;'><value>1</value></field>"
                   "<field var='plain'/></x>");
    j = gw_data_form_fields(r);
    CHECK_INT(json_array_size(j), 3);
    json_t *f0 = json_array_get(j, 0);
    CHECK_STR(json_string_value(json_object_get(f0, "var")), "pubsub#access_model");
    CHECK_STR(json_string_value(json_object_get(f0, "type")), "list-single");
    CHECK_STR(json_string_value(json_object_get(f0, "label")), "Who may subscribe");
    CHECK_STR(json_string_value(json_object_get(f0, "desc")), "access");
    json_t *fopts = json_object_get(f0, "options");
    CHECK_INT(json_array_size(fopts), 2); /* an option without a value is left out */
    CHECK_STR(json_string_value(json_object_get(json_array_get(fopts, 0), "label")), "Anyone");
    CHECK_STR(json_string_value(json_object_get(json_array_get(fopts, 1), "value")), "whitelist");
    CHECK(json_object_get(json_array_get(fopts, 1), "label") == NULL);
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 1), "label")), "<b>");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 2), "type")), "text-single");
    json_decref(j);
    xmpp_stanza_release(r);

    /* Error answers: retryable statuses only for type='wait' errors not about the request. */
    struct {
        const char *xml;
        int status;
        const char *field;
    } errs[] = {
        {"<iq type='error'><error type='wait'><resource-constraint "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Unknown field 'pubsub#bogus' of type "
         "'x'</text></error></iq>",
         400, "pubsub#bogus"},
        {"<iq type='error'><error type='wait'><resource-constraint "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
         429, ""},
        {"<iq type='error'><error type='modify'><resource-constraint "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
         400, ""},
        {"<iq type='error'><error type='cancel'><service-unavailable "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
         502, ""},
        {"<iq type='error'><error type='wait'><service-unavailable "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
         503, ""},
        {"<iq type='error'><error type='cancel'><item-not-found "
         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
         404, ""},
    };
    for (size_t k = 0; k < sizeof(errs) / sizeof(errs[0]); k++) {
        xmpp_stanza_t *es = parse(ctx, errs[k].xml);
        struct gw_xmpp_error pe;
        gw_pubsub_error_parse(es, &pe);
        char field[64];
        CHECK_INT(gw_xmpp_error_status(&pe, field, sizeof(field)), errs[k].status);
        CHECK_STR(field, errs[k].field);
        xmpp_stanza_release(es);
    }

    /* XEP-0059 paging: the page object from the service's <set/>. */
    r = parse(ctx, "<iq type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'>"
                   "<set xmlns='http://jabber.org/protocol/rsm'><count>5</count>"
                   "<first index='0'>t1</first><last>t2</last></set><items node='n'>"
                   "<item id='1'/></items></pubsub></iq>");
    j = gw_pubsub_items_json(ctx, r);
    json_t *page = json_object_get(j, "page");
    CHECK_STR(json_string_value(json_object_get(page, "first")), "t1");
    CHECK_STR(json_string_value(json_object_get(page, "last")), "t2");
    CHECK_INT(json_integer_value(json_object_get(page, "count")), 5);
    CHECK_INT(json_integer_value(json_object_get(page, "first_index")), 0);
    json_decref(j);
    xmpp_stanza_release(r);

    r = parse(ctx,
              "<iq type='result'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>"
              "<item id='1'><json xmlns='urn:xmpp:json:0'>{\"a\":1}</json></item>"
              "<item id='2'><p xmlns='urn:p'/></item></items></pubsub></iq>");
    j = gw_pubsub_items_json(ctx, r);
    json_t *items = json_object_get(j, "items");
    CHECK_INT(json_array_size(items), 2);
    CHECK_INT(json_integer_value(
                  json_object_get(json_object_get(json_array_get(items, 0), "payload"), "a")),
              1);
    CHECK_STR(json_string_value(json_object_get(json_array_get(items, 1), "xml")),
              "<p xmlns=\"urn:p\"/>");
    json_decref(j);
    xmpp_stanza_release(r);

    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    CHECK_DONE();
}
