/* Event messages to event objects: every XEP-0060 notification kind, and hostile input. */
#include "../check.h"
#include "xmpp/event.h"

#include <stdlib.h>

static json_t *parse(xmpp_ctx_t *ctx, const char *xml)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, xml);
    if (st == NULL)
        return NULL;
    json_t *j = gw_event_parse(ctx, st);
    xmpp_stanza_release(st);
    return j;
}

#define EV "<event xmlns='http://jabber.org/protocol/pubsub#event'>"

int main(void)
{
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    json_t *j = parse(ctx, "<message from='ps.example' to='gw@example'>" EV
                           "<items node='n'><item id='1' publisher='a@example'>"
                           "<json xmlns='urn:xmpp:json:0'>{\"x\":[1,\"&lt;\"]}</json></item>"
                           "<item id='2'><entry xmlns='http://www.w3.org/2005/Atom'/></item>"
                           "<retract id='3'/><retract/></items></event></message>");
    CHECK_INT(json_array_size(j), 3);
    json_t *e = json_array_get(j, 0);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "item.published");
    CHECK_STR(json_string_value(json_object_get(e, "service")), "ps.example");
    CHECK_STR(json_string_value(json_object_get(e, "node")), "n");
    json_t *item = json_object_get(e, "item");
    CHECK_STR(json_string_value(json_object_get(item, "id")), "1");
    CHECK_STR(json_string_value(json_object_get(item, "publisher")), "a@example");
    CHECK_STR(json_string_value(
                  json_array_get(json_object_get(json_object_get(item, "payload"), "x"), 1)),
              "<");
    e = json_array_get(j, 1);
    CHECK_STR(json_string_value(json_object_get(json_object_get(e, "item"), "xml")),
              "<entry xmlns=\"http://www.w3.org/2005/Atom\"/>");
    e = json_array_get(j, 2);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "item.retracted");
    CHECK_STR(json_string_value(json_object_get(json_object_get(e, "item"), "id")), "3");
    json_decref(j);

    j = parse(ctx, "<message from='ps'>" EV "<purge node='p'/></event></message>");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "type")), "node.purged");
    json_decref(j);
    j = parse(ctx, "<message from='ps'>" EV
                   "<delete node='d'><redirect uri='xmpp:ps?;node=e'/></delete></event></message>");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "type")), "node.deleted");
    CHECK_STR(json_string_value(json_object_get(json_array_get(j, 0), "redirect")),
              "xmpp:ps?;node=e");
    json_decref(j);
    j = parse(ctx, "<message from='ps'>" EV
                   "<subscription node='s' jid='gw@x' subscription='none'/></event></message>");
    e = json_array_get(j, 0);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "subscription.changed");
    CHECK_STR(
        json_string_value(json_object_get(json_object_get(e, "xmpp_subscription"), "subscription")),
        "none");
    json_decref(j);
    j = parse(
        ctx,
        "<message from='ps'>" EV "<configuration node='c'><x xmlns='jabber:x:data' type='result'>"
        "<field var='pubsub#title'><value>T</value></field></x></configuration></event></message>");
    e = json_array_get(j, 0);
    CHECK_STR(json_string_value(json_object_get(e, "type")), "node.configured");
    CHECK_STR(json_string_value(json_object_get(json_object_get(e, "config"), "pubsub#title")),
              "T");
    json_decref(j);

    /* Not events, or malformed ones: nothing, never a crash. */
    CHECK(parse(ctx, "<message from='ps'><body>hi</body></message>") == NULL);
    CHECK(parse(ctx, "<message>" EV "<purge node='p'/></event></message>") == NULL);
    CHECK(parse(ctx, "<message from='ps' type='error'>" EV "<purge node='p'/></event></message>") ==
          NULL);
    j = parse(ctx,
              "<message from='ps'>" EV
              "<purge/><items/><items node='n'><item/></items><bogus node='b'/></event></message>");
    CHECK_INT(json_array_size(j), 1); /* the item without an id still carries its node */
    json_decref(j);

    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    CHECK_DONE();
}
