/* Request validation and command building for the node and item routes. Every refusal names
 * the field at fault in its detail, as the API contract asks. */
#include "request.h"

#include "replay.h"

#include "../gateway/itemid.h"
#include "../gateway/sign.h"
#include "../gateway/webhooks.h"
#include "../gateway/websub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(struct gw_http_reply *reply, int status, const char *title, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct gw_http_reply *reply, int status, const char *title, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    reply->status = status;
    reply->body = gw_problem_new(status, title, detail, NULL);
    reply->retry_after = 0;
    return -1;
}

int gw_valid_jid(const char *jid)
{
    size_t len = strlen(jid);
    if (len == 0 || len > 3071 || !gw_valid_utf8(jid, len))
        return 0;
    const char *slash = strchr(jid, '/');
    size_t bare_len = slash ? (size_t)(slash - jid) : len;
    if (slash != NULL && slash[1] == '\0')
        return 0;
    const char *at = memchr(jid, '@', bare_len);
    const char *domain = at ? at + 1 : jid;
    size_t dlen = bare_len - (size_t)(domain - jid);
    if (dlen == 0 || dlen > 1023 || at == jid || (at && (size_t)(at - jid) > 1023))
        return 0;
    for (const char *p = jid; p < jid + bare_len; p++) {
        unsigned char c = (unsigned char)*p;
        /* RFC 7622 forbids these in local parts and domains alike. */
        if (c <= 0x20 || c == 0x7F || strchr("\"&'<>", c) != NULL || (at && p > at && c == '@'))
            return 0;
    }
    for (const char *p = slash; p && *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            return 0;
    return 1;
}

/* Data-form values as JSON: an object of strings, numbers, booleans or arrays of strings. */
static const char unfit_text[] =
    "holds a character XML cannot carry (a control character, U+FFFE or U+FFFF)";

static int form_check(json_t *form, const char *field, char *err, size_t errlen)
{
    if (!json_is_object(form)) {
        snprintf(err, errlen, "%s: expected an object", field);
        return -1;
    }
    const char *key;
    json_t *value;
    json_object_foreach(form, key, value)
    {
        size_t klen = strlen(key);
        if (klen == 0 || klen > 256 || !gw_valid_id(key, klen)) {
            snprintf(err, errlen, "%s: field names must be 1 to 256 characters", field);
            return -1;
        }
        if (json_is_string(value) &&
            !gw_valid_xml_text(json_string_value(value), json_string_length(value))) {
            snprintf(err, errlen, "%s.%s: %s", field, key, unfit_text);
            return -1;
        }
        if (json_is_string(value) || json_is_number(value) || json_is_boolean(value))
            continue;
        if (json_is_array(value)) {
            size_t i;
            json_t *v;
            json_array_foreach(value, i, v)
            {
                if (!json_is_string(v)) {
                    snprintf(err, errlen, "%s.%s[%zu]: expected a string", field, key, i);
                    return -1;
                }
                if (!gw_valid_xml_text(json_string_value(v), json_string_length(v))) {
                    snprintf(err, errlen, "%s.%s[%zu]: %s", field, key, i, unfit_text);
                    return -1;
                }
            }
            continue;
        }
        snprintf(err, errlen, "%s.%s: expected a string, number, boolean or array of strings",
                 field, key);
        return -1;
    }
    return 0;
}

static const char *query_get(const struct gw_http_request *req, const char *key)
{
    for (size_t i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0)
            return req->query[i].value;
    return NULL;
}

/* The media type without parameters, lower-cased, in buf; "" when absent. Returns -1 when a
 * charset other than UTF-8 is declared. */
static int media_type(const char *content_type, char *buf, size_t len)
{
    buf[0] = '\0';
    if (content_type == NULL)
        return 0;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    if (n >= len)
        n = len - 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)((content_type[i] >= 'A' && content_type[i] <= 'Z') ? content_type[i] + 32
                                                                           : content_type[i]);
    buf[n] = '\0';
    const char *cs = strcasestr(content_type, "charset=");
    if (cs != NULL) {
        cs += 8;
        if (*cs == '"')
            cs++;
        if (strncasecmp(cs, "utf-8", 5) != 0 && strncasecmp(cs, "utf8", 4) != 0)
            return -1;
    }
    return 0;
}

static int is_json_type(const char *mt)
{
    size_t n = strlen(mt);
    return strcmp(mt, "application/json") == 0 || (n > 5 && strcmp(mt + n - 5, "+json") == 0);
}

static int is_xml_type(const char *mt)
{
    size_t n = strlen(mt);
    return strcmp(mt, "application/xml") == 0 || strcmp(mt, "text/xml") == 0 ||
           (n > 4 && strcmp(mt + n - 4, "+xml") == 0);
}

/* The deepest nesting of arrays and objects in a JSON text, counted before parsing so that a
 * hostile document cannot make the parser recurse (strings are skipped, escapes honoured). */
static int json_depth(const char *s, size_t len)
{
    int depth = 0, max = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max)
                max = depth;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

/* The path ("body.a.b[2]") of the first string in v that holds U+0000, or 0 when none. */
static int find_nul(json_t *v, char *path, size_t cap)
{
    size_t len = strlen(path);
    if (json_is_string(v))
        return json_string_length(v) != strlen(json_string_value(v));
    if (json_is_object(v)) {
        const char *key;
        json_t *child;
        json_object_foreach(v, key, child)
        {
            snprintf(path + len, cap - len, ".%.100s", key);
            if (find_nul(child, path, cap))
                return 1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *child;
        json_array_foreach(v, i, child)
        {
            snprintf(path + len, cap - len, "[%zu]", i);
            if (find_nul(child, path, cap))
                return 1;
        }
    }
    path[len] = '\0';
    return 0;
}

/* Parses the body as JSON into *out. flags: JSON_DECODE_ANY for any value. Strings holding
 * U+0000 are refused by name: XML, and so XMPP, cannot carry that character. */
static int parse_json(const struct gw_http_request *req, size_t flags, json_t **out,
                      struct gw_http_reply *reply)
{
    if (req->body == NULL || req->body_len == 0)
        return fail(reply, 400, "Invalid request body", "body: a JSON document is required");
    int max_depth = req->cfg ? req->cfg->max_json_depth : 64;
    if (json_depth(req->body, req->body_len) > max_depth)
        return fail(reply, 400, "Invalid request body", "body: JSON nested deeper than %d levels",
                    max_depth);
    json_error_t e;
    *out =
        json_loadb(req->body, req->body_len, flags | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    if (*out == NULL && strstr(e.text, "NUL") != NULL)
        return fail(reply, 400, "Invalid request body",
                    "body: an object key at line %d, column %d contains U+0000 (\\u0000), "
                    "which XML cannot carry",
                    e.line, e.column);
    if (*out == NULL)
        return fail(reply, 400, "Invalid request body",
                    "body: invalid JSON at line %d, column %d: %s", e.line, e.column, e.text);
    /* Only the escape \u0000 makes a NUL (a raw one is not JSON): without it, no walk. */
    char path[512] = "body";
    if (memmem(req->body, req->body_len, "\\u0000", 6) != NULL &&
        find_nul(*out, path, sizeof(path))) {
        json_decref(*out);
        *out = NULL;
        return fail(reply, 400, "Invalid request body",
                    "%s: contains U+0000 (\\u0000), which XML cannot carry", path);
    }
    return 0;
}

/* A JSON object body: 415 unless the content type is JSON, 400 unless it parses to an object. */
static int json_object_body(const struct gw_http_request *req, json_t **out,
                            struct gw_http_reply *reply)
{
    char mt[128];
    if (media_type(req->content_type, mt, sizeof(mt)) != 0 || !is_json_type(mt))
        return fail(reply, 415, "Unsupported media type",
                    "Content-Type: application/json expected");
    if (parse_json(req, 0, out, reply) != 0)
        return -1;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return fail(reply, 400, "Invalid request body", "body: expected a JSON object");
    }
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Common parameters: ?service= and the node of the path. */
static int common(const struct gw_http_request *req, struct gw_cmd *cmd,
                  struct gw_http_reply *reply)
{
    const char *service = query_get(req, "service");
    if (service != NULL && !gw_valid_jid(service))
        return fail(reply, 400, "Invalid parameter", "service: not a valid JID");
    cmd->service = dup_or_null(service);
    if (req->match->node[0] != '\0')
        cmd->node = strdup(req->match->node);
    if (req->match->id[0] != '\0')
        cmd->item_id = strdup(req->match->id);
    return 0;
}

static int check_publish_options(json_t *opts, struct gw_http_reply *reply)
{
    char err[400];
    if (form_check(opts, "publish_options", err, sizeof(err)) != 0)
        return fail(reply, 400, "Invalid request body", "%s", err);
    return 0;
}

/* Collects ?publish-option.FIELD=VALUE parameters into an object (NULL when there are none). */
/* Publish-options from the query: `publish-option.FIELD=V`, or the OpenAPI deepObject form
 * `publish-option[FIELD]=V` that generated clients send. */
static json_t *query_publish_options(const struct gw_http_request *req)
{
    json_t *opts = NULL;
    for (size_t i = 0; i < req->nquery; i++) {
        const char *k = req->query[i].key;
        char field[1100];
        if (strncmp(k, "publish-option.", 15) == 0 && k[15] != '\0') {
            snprintf(field, sizeof(field), "%s", k + 15);
        } else if (strncmp(k, "publish-option[", 15) == 0 && k[15] != ']' && strlen(k) > 16 &&
                   k[strlen(k) - 1] == ']') {
            snprintf(field, sizeof(field), "%.*s", (int)(strlen(k) - 16), k + 15);
        } else {
            continue;
        }
        if (opts == NULL)
            opts = json_object();
        json_object_set_new(opts, field, json_string(req->query[i].value));
    }
    return opts;
}

static int prepare_publish(const struct gw_http_request *req, struct gw_cmd *cmd,
                           struct gw_http_reply *reply)
{
    char mt[128];
    if (media_type(req->content_type, mt, sizeof(mt)) != 0)
        return fail(reply, 415, "Unsupported media type", "Content-Type: only UTF-8 is accepted");
    const char *qid = query_get(req, "id");
    if (qid != NULL && !gw_valid_id(qid, strlen(qid)))
        return fail(reply, 400, "Invalid parameter",
                    "id: 1 to 1024 bytes of UTF-8 without control characters");
    if (qid != NULL) {
        free(cmd->item_id);
        cmd->item_id = strdup(qid);
    }
    cmd->config = query_publish_options(req);
    if (strcmp(mt, "application/vnd.pubsubgw.publish+json") == 0) {
        json_t *env;
        if (parse_json(req, 0, &env, reply) != 0)
            return -1;
        if (!json_is_object(env)) {
            json_decref(env);
            return fail(reply, 400, "Invalid request body", "body: expected a JSON object");
        }
        int rc = 0;
        const char *key;
        json_t *value;
        json_object_foreach(env, key, value)
        {
            if (strcmp(key, "id") != 0 && strcmp(key, "payload") != 0 &&
                strcmp(key, "publish_options") != 0) {
                rc = fail(reply, 400, "Invalid request body", "%.100s: unknown field", key);
                break;
            }
        }
        json_t *id = json_object_get(env, "id");
        json_t *payload = json_object_get(env, "payload");
        json_t *opts = json_object_get(env, "publish_options");
        if (rc == 0 && id != NULL &&
            (!json_is_string(id) || !gw_valid_id(json_string_value(id), json_string_length(id))))
            rc = fail(reply, 400, "Invalid request body",
                      "id: a string of 1 to 1024 bytes without control characters");
        else if (rc == 0 && payload == NULL)
            rc = fail(reply, 400, "Invalid request body", "payload: required");
        else if (rc == 0 && opts != NULL && check_publish_options(opts, reply) != 0)
            rc = -1;
        if (rc == 0) {
            if (id != NULL) {
                free(cmd->item_id);
                cmd->item_id = strdup(json_string_value(id));
            }
            if (opts != NULL) {
                json_decref(cmd->config);
                cmd->config = json_incref(opts);
            }
            cmd->payload_kind = GW_PAYLOAD_JSON;
            cmd->payload = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        }
        json_decref(env);
        return rc;
    }
    if (is_json_type(mt)) {
        json_t *value;
        if (parse_json(req, JSON_DECODE_ANY, &value, reply) != 0)
            return -1;
        cmd->payload_kind = GW_PAYLOAD_JSON;
        cmd->payload = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(value);
    } else if (is_xml_type(mt)) {
        if (req->body == NULL || req->body_len == 0)
            return fail(reply, 400, "Invalid request body", "body: an XML element is required");
        if (!gw_valid_utf8(req->body, req->body_len))
            return fail(reply, 400, "Invalid request body", "body: not valid UTF-8");
        cmd->payload_kind = GW_PAYLOAD_XML;
        cmd->payload = strndup(req->body, req->body_len);
    } else {
        return fail(reply, 415, "Unsupported media type",
                    "Content-Type: use application/json, application/xml, text/xml, "
                    "application/atom+xml or application/vnd.pubsubgw.publish+json");
    }
    if (cmd->config != NULL && check_publish_options(cmd->config, reply) != 0)
        return -1;
    if (cmd->item_id == NULL) {
        char id[GW_ITEMID_LEN + 1];
        if (gw_itemid_new(id) != 0)
            return fail(reply, 500, "Internal error", "no randomness for an item id");
        cmd->item_id = strdup(id);
    }
    return cmd->payload && cmd->item_id ? 0 : fail(reply, 500, "Internal error", "out of memory");
}

static int prepare_create(const struct gw_http_request *req, struct gw_cmd *cmd,
                          struct gw_http_reply *reply)
{
    if (req->body == NULL || req->body_len == 0)
        return 0; /* instant node with the default configuration */
    json_t *obj;
    if (json_object_body(req, &obj, reply) != 0)
        return -1;
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        if (strcmp(key, "node") != 0 && strcmp(key, "config") != 0) {
            rc = fail(reply, 400, "Invalid request body", "%.100s: unknown field", key);
            break;
        }
    }
    json_t *node = json_object_get(obj, "node");
    json_t *config = json_object_get(obj, "config");
    char err[400];
    if (rc == 0 && node != NULL && !json_is_null(node) &&
        (!json_is_string(node) || !gw_valid_id(json_string_value(node), json_string_length(node))))
        rc = fail(reply, 400, "Invalid request body",
                  "node: a string of 1 to 1024 bytes without control characters");
    else if (rc == 0 && config != NULL && form_check(config, "config", err, sizeof(err)) != 0)
        rc = fail(reply, 400, "Invalid request body", "%s", err);
    if (rc == 0) {
        if (json_is_string(node))
            cmd->node = strdup(json_string_value(node));
        cmd->config = json_incref(config);
    }
    json_decref(obj);
    return rc;
}

int gw_valid_callback(const char *url, char *err, size_t errlen)
{
    size_t len = strlen(url);
    size_t skip = strncasecmp(url, "http://", 7) == 0    ? 7
                  : strncasecmp(url, "https://", 8) == 0 ? 8
                                                         : 0;
    if (skip == 0) {
        snprintf(err, errlen, "must be an http or https URL");
        return 0;
    }
    if (len > 2048) {
        snprintf(err, errlen, "longer than 2048 characters");
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7F) {
            snprintf(err, errlen,
                     "spaces, control and non-ASCII characters must be "
                     "percent-encoded");
            return 0;
        }
    }
    const char *host = url + skip;
    size_t alen = strcspn(host, "/?#");
    if (memchr(host, '@', alen) != NULL) {
        snprintf(err, errlen, "user information in the URL is not accepted");
        return 0;
    }
    if (strchr(url, '#') != NULL) {
        snprintf(err, errlen, "a fragment is not accepted");
        return 0;
    }
    size_t hlen = alen;
    if (host[0] == '[') {
        const char *close = memchr(host, ']', alen);
        if (close == NULL || close == host + 1) {
            snprintf(err, errlen, "malformed IPv6 host");
            return 0;
        }
        hlen = (size_t)(close - host) + 1;
    } else {
        const char *colon = memchr(host, ':', alen);
        if (colon)
            hlen = (size_t)(colon - host);
    }
    if (hlen == 0) {
        snprintf(err, errlen, "the URL has no host");
        return 0;
    }
    if (hlen < alen) {
        const char *port = host + hlen;
        if (*port != ':' || alen - hlen < 2 || alen - hlen > 6 ||
            strspn(port + 1, "0123456789") != alen - hlen - 1 || atoi(port + 1) < 1 ||
            atoi(port + 1) > 65535) {
            snprintf(err, errlen, "invalid port");
            return 0;
        }
    }
    return 1;
}

/* 0 when every member of obj is named in known (NULL-terminated), else -1 with a 400 naming
 * the first that is not. */
static int unknown_field(json_t *obj, const char *const *known, struct gw_http_reply *reply)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t k = 0;
        while (known[k] != NULL && strcmp(key, known[k]) != 0)
            k++;
        if (known[k] == NULL)
            return fail(reply, 400, "Invalid request body", "%.100s: unknown field", key);
    }
    return 0;
}

static int prepare_sub_create(const struct gw_http_request *req, struct gw_cmd *cmd,
                              struct gw_http_reply *reply)
{
    json_t *obj;
    if (json_object_body(req, &obj, reply) != 0)
        return -1;
    int rc = 0;
    char err[300];
    json_t *args = json_object();
    static const char *const known[] = {"node",   "service", "callback", "secret", "events",
                                        "verify", "replay",  "batch",    NULL};
    if (unknown_field(obj, known, reply) != 0) {
        rc = -1;
        goto out;
    }
    json_t *node = json_object_get(obj, "node");
    if (!json_is_string(node) || !gw_valid_id(json_string_value(node), json_string_length(node))) {
        rc = fail(reply, 400, "Invalid request body",
                  "node: required, a string of 1 to 1024 bytes without control characters");
        goto out;
    }
    json_object_set(args, "node", node);
    json_t *service = json_object_get(obj, "service");
    if (service != NULL && !json_is_null(service)) {
        if (!json_is_string(service) || !gw_valid_jid(json_string_value(service))) {
            rc = fail(reply, 400, "Invalid request body", "service: not a valid JID");
            goto out;
        }
        json_object_set(args, "service", service);
    }
    json_t *callback = json_object_get(obj, "callback");
    if (!json_is_string(callback)) {
        rc = fail(reply, 400, "Invalid request body", "callback: required, an http or https URL");
        goto out;
    }
    if (!gw_valid_callback(json_string_value(callback), err, sizeof(err))) {
        rc = fail(reply, 400, "Invalid request body", "callback: %s", err);
        goto out;
    }
    json_object_set(args, "callback", callback);
    json_t *secret = json_object_get(obj, "secret");
    if (secret != NULL && !json_is_null(secret)) {
        unsigned char key_bytes[GW_KEY_MAX];
        if (!json_is_string(secret) || gw_secret_decode(json_string_value(secret), key_bytes) < 0) {
            rc = fail(reply, 400, "Invalid request body",
                      "secret: expected whsec_ followed by base64 of 24 to 64 bytes");
            goto out;
        }
        memset(key_bytes, 0, sizeof(key_bytes));
        json_object_set(args, "secret", secret);
    }
    unsigned mask = GW_EV_ALL;
    json_t *events = json_object_get(obj, "events");
    if (events != NULL) {
        if (!json_is_array(events) || json_array_size(events) == 0) {
            rc = fail(reply, 400, "Invalid request body",
                      "events: a non-empty array of items, retract, purge, delete, subscription, "
                      "configuration");
            goto out;
        }
        mask = 0;
        size_t i;
        json_t *e;
        json_array_foreach(events, i, e)
        {
            unsigned bit = json_is_string(e) ? gw_event_kind_bit(json_string_value(e)) : 0;
            if (bit == 0) {
                rc = fail(reply, 400, "Invalid request body",
                          "events[%zu]: one of items, retract, purge, delete, subscription, "
                          "configuration",
                          i);
                goto out;
            }
            mask |= bit;
        }
    }
    json_object_set_new(args, "events_mask", json_integer(mask));
    json_t *verify = json_object_get(obj, "verify");
    if (verify != NULL && !json_is_boolean(verify)) {
        rc = fail(reply, 400, "Invalid request body", "verify: expected true or false");
        goto out;
    }
    json_object_set_new(args, "verify", json_boolean(json_is_true(verify)));
    json_t *replay = json_object_get(obj, "replay");
    if (replay != NULL && (!json_is_integer(replay) || json_integer_value(replay) < 0 ||
                           json_integer_value(replay) > 1000)) {
        rc = fail(reply, 400, "Invalid request body", "replay: an integer from 0 to 1000");
        goto out;
    }
    json_object_set_new(args, "replay", json_integer(replay ? json_integer_value(replay) : 0));
    /* Batched delivery: {"max_events": 1..1000, "max_bytes": 1 KiB..10 MiB, "max_wait_ms":
     * 0..60000}. */
    json_t *batch = json_object_get(obj, "batch");
    if (batch != NULL && !json_is_null(batch)) {
        static const char *const bknown[] = {"max_events", "max_bytes", "max_wait_ms", NULL};
        json_t *me = json_object_get(batch, "max_events"),
               *mb = json_object_get(batch, "max_bytes"),
               *mw = json_object_get(batch, "max_wait_ms");
        if (!json_is_object(batch)) {
            rc = fail(reply, 400, "Invalid request body",
                      "batch: an object {max_events, max_bytes, max_wait_ms}");
            goto out;
        }
        if (unknown_field(batch, bknown, reply) != 0) {
            json_t *p = json_object_get(reply->body, "detail");
            char d[200];
            snprintf(d, sizeof(d), "batch.%s", json_string_value(p) ? json_string_value(p) : "");
            json_object_set_new(reply->body, "detail", json_string(d));
            rc = -1;
            goto out;
        }
        if (!json_is_integer(me) || json_integer_value(me) < 1 || json_integer_value(me) > 1000) {
            rc = fail(reply, 400, "Invalid request body",
                      "batch.max_events: required, an integer from 1 to 1000");
            goto out;
        }
        if (mb != NULL && (!json_is_integer(mb) || json_integer_value(mb) < 1024 ||
                           json_integer_value(mb) > 10 * 1024 * 1024)) {
            rc = fail(reply, 400, "Invalid request body",
                      "batch.max_bytes: an integer from 1024 to 10485760");
            goto out;
        }
        if (mw != NULL && (!json_is_integer(mw) || json_integer_value(mw) < 0 ||
                           json_integer_value(mw) > 60000)) {
            rc = fail(reply, 400, "Invalid request body",
                      "batch.max_wait_ms: an integer from 0 to 60000");
            goto out;
        }
        json_object_set_new(args, "batch",
                            json_pack("{s:I, s:I, s:I}", "max_events", json_integer_value(me),
                                      "max_bytes", mb ? json_integer_value(mb) : 1048576,
                                      "max_wait_ms", mw ? json_integer_value(mw) : 0));
    }
    cmd->args = args;
    args = NULL;
out:
    json_decref(args);
    json_decref(obj);
    return rc;
}

/* {"config": {...}} for PUT /v1/nodes/{node}/config */
static int prepare_config_set(const struct gw_http_request *req, struct gw_cmd *cmd,
                              struct gw_http_reply *reply)
{
    char err[400];
    json_t *obj;
    if (json_object_body(req, &obj, reply) != 0)
        return -1;
    int rc = 0;
    json_t *config = json_object_get(obj, "config");
    if (json_object_size(obj) != 1 || config == NULL)
        rc = fail(reply, 400, "Invalid request body", "config: required, and the only field");
    else if (form_check(config, "config", err, sizeof(err)) != 0)
        rc = fail(reply, 400, "Invalid request body", "%s", err);
    else
        cmd->config = json_incref(config);
    json_decref(obj);
    return rc;
}

/* {"subscriptions":[{"jid","subscription","subid"?}]} or {"affiliations":[{"jid","affiliation"}]}
 */
static int prepare_owner_set(const struct gw_http_request *req, struct gw_cmd *cmd,
                             struct gw_http_reply *reply, const char *what)
{
    static const char *const sub_states[] = {"none", "pending", "subscribed", "unconfigured", NULL};
    static const char *const affiliations[] = {
        "owner", "publisher", "publish-only", "member", "none", "outcast", NULL};
    int subs = strcmp(what, "subscriptions") == 0;
    const char *field = subs ? "subscription" : "affiliation";
    const char *const *allowed = subs ? sub_states : affiliations;
    json_t *obj;
    if (json_object_body(req, &obj, reply) != 0)
        return -1;
    int rc = 0;
    json_t *list = json_object_get(obj, what);
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > 1000) {
        rc = fail(reply, 400, "Invalid request body", "%s: a non-empty array (at most 1000)", what);
        goto out;
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *jid = json_string_value(json_object_get(e, "jid"));
        const char *value = json_string_value(json_object_get(e, field));
        json_t *subid = json_object_get(e, "subid");
        if (!json_is_object(e) || jid == NULL || !gw_valid_jid(jid)) {
            rc = fail(reply, 400, "Invalid request body", "%s[%zu].jid: a valid JID is required",
                      what, i);
            goto out;
        }
        size_t k = 0;
        while (value && allowed[k] && strcmp(allowed[k], value) != 0)
            k++;
        if (value == NULL || allowed[k] == NULL) {
            rc = fail(reply, 400, "Invalid request body", "%s[%zu].%s: not a valid value", what, i,
                      field);
            goto out;
        }
        if (subid != NULL && (!subs || !json_is_string(subid) ||
                              !gw_valid_id(json_string_value(subid), json_string_length(subid)))) {
            rc = fail(reply, 400, "Invalid request body", "%s[%zu].subid: not valid here", what, i);
            goto out;
        }
    }
    cmd->args = json_pack("{s:O}", what, list);
out:
    json_decref(obj);
    return rc;
}

/* ?id=A&id=B (items by id), ?max=N&after=X&before=Y (XEP-0059 paging) */
static int prepare_items(const struct gw_http_request *req, struct gw_cmd *cmd,
                         struct gw_http_reply *reply)
{
    json_t *args = json_object(), *ids = json_array();
    json_object_set_new(args, "ids", ids);
    cmd->args = args;
    for (size_t i = 0; i < req->nquery; i++) {
        const char *k = req->query[i].key, *v = req->query[i].value;
        if (strcmp(k, "id") == 0) {
            if (!gw_valid_id(v, strlen(v)) || json_array_size(ids) >= 1000)
                return fail(reply, 400, "Invalid parameter", "id: not a valid item id");
            json_array_append_new(ids, json_string(v));
        } else if (strcmp(k, "max") == 0) {
            char *end;
            long n = strtol(v, &end, 10);
            if (*v == '\0' || *end != '\0' || n < 1 || n > 10000)
                return fail(reply, 400, "Invalid parameter", "max: an integer from 1 to 10000");
            json_object_set_new(args, "max", json_integer(n));
        } else if (strcmp(k, "after") == 0 || strcmp(k, "before") == 0) {
            if (strlen(v) > GW_PARAM_MAX || !gw_valid_utf8(v, strlen(v)))
                return fail(reply, 400, "Invalid parameter", "%s: not a valid paging key", k);
            json_object_set_new(args, k, json_string(v));
        }
    }
    if ((json_object_get(args, "after") || json_object_get(args, "before")) &&
        !json_object_get(args, "max"))
        json_object_set_new(args, "max", json_integer(100));
    return 0;
}

/* POST /v1/hooks/{node}: the raw body is published; a configured secret must sign it. */
static int prepare_hook(const struct gw_http_request *req, struct gw_cmd *cmd,
                        struct gw_http_reply *reply)
{
    const char *secret = gw_config_hook_secret(req->cfg, req->match->node);
    if (secret != NULL) {
        char hex[65], want[80];
        const char *sig = req->hub_signature;
        if (gw_hmac_hex((const unsigned char *)secret, strlen(secret), req->body ? req->body : "",
                        req->body_len, hex) != 0)
            return fail(reply, 500, "Internal error", "cannot compute the signature");
        snprintf(want, sizeof(want), "sha256=%s", hex);
        if (sig == NULL || !gw_const_eq(sig, want))
            return fail(reply, 403, "Invalid signature",
                        "X-Hub-Signature-256: missing or does not match the body");
        /* A captured request sent again under another delivery id would publish its body
         * again as a new item: the signature is remembered with the id it came with. */
        if (req->replay != NULL &&
            gw_replay_check(req->replay, req->match->node, want, req->delivery_id, req->now_ms))
            return fail(reply, 409, "Replayed hook",
                        "X-Hub-Signature-256: this signed body was already accepted under another "
                        "delivery id (or without one); resend it with its original delivery id");
    }
    if (req->delivery_id != NULL && gw_valid_id(req->delivery_id, strlen(req->delivery_id))) {
        /* The sender's delivery id: a redelivered hook overwrites instead of duplicating. */
        free(cmd->item_id);
        cmd->item_id = strdup(req->delivery_id);
    }
    return prepare_publish(req, cmd, reply);
}

/* The command of a route that goes to the loop thread; -1 for routes answered in place. */
static int route_op(enum gw_route route)
{
    switch (route) {
    case GW_ROUTE_NODES_LIST:
        return GW_OP_NODES_LIST;
    case GW_ROUTE_NODE_CREATE:
        return GW_OP_NODE_CREATE;
    case GW_ROUTE_NODE_GET:
        return GW_OP_NODE_GET;
    case GW_ROUTE_NODE_DELETE:
        return GW_OP_NODE_DELETE;
    case GW_ROUTE_ITEMS_LIST:
    case GW_ROUTE_NODE_FEED:
        return GW_OP_ITEMS_GET;
    case GW_ROUTE_ITEM_PUBLISH:
        return GW_OP_PUBLISH;
    case GW_ROUTE_ITEM_GET:
        return GW_OP_ITEM_GET;
    case GW_ROUTE_ITEM_DELETE:
        return GW_OP_ITEM_RETRACT;
    case GW_ROUTE_NODE_CONFIG_GET:
        return GW_OP_CONFIG_GET;
    case GW_ROUTE_NODE_CONFIG_SET:
        return GW_OP_CONFIG_SET;
    case GW_ROUTE_NODE_PURGE:
        return GW_OP_PURGE;
    case GW_ROUTE_NODE_SUBS_GET:
        return GW_OP_OWNER_SUBS_GET;
    case GW_ROUTE_NODE_SUBS_SET:
        return GW_OP_OWNER_SUBS_SET;
    case GW_ROUTE_NODE_AFFS_GET:
        return GW_OP_AFFILIATIONS_GET;
    case GW_ROUTE_NODE_AFFS_SET:
        return GW_OP_AFFILIATIONS_SET;
    case GW_ROUTE_NODE_EVENTS:
        return GW_OP_STREAM_OPEN;
    case GW_ROUTE_HOOK:
        return GW_OP_PUBLISH;
    case GW_ROUTE_SUBS_LIST:
        return GW_OP_SUB_LIST;
    case GW_ROUTE_SUB_CREATE:
        return GW_OP_SUB_CREATE;
    case GW_ROUTE_SUB_GET:
        return GW_OP_SUB_GET;
    case GW_ROUTE_SUB_DELETE:
        return GW_OP_SUB_DELETE;
    case GW_ROUTE_DEAD_LIST:
        return GW_OP_DEAD_LIST;
    case GW_ROUTE_DEAD_RETRY:
        return GW_OP_DEAD_RETRY;
    case GW_ROUTE_ATTEMPTS_LIST:
        return GW_OP_ATTEMPTS_LIST;
    case GW_ROUTE_WEBSUB:
        return GW_OP_WEBSUB;
    case GW_ROUTE_FEEDS_LIST:
        return GW_OP_FEED_LIST;
    case GW_ROUTE_FEED_CREATE:
        return GW_OP_FEED_CREATE;
    case GW_ROUTE_FEED_GET:
        return GW_OP_FEED_GET;
    case GW_ROUTE_FEED_DELETE:
        return GW_OP_FEED_DELETE;
    case GW_ROUTE_DEAD_RETRY_ALL:
        return GW_OP_DEAD_RETRY_ALL;
    case GW_ROUTE_SUB_TEST:
        return GW_OP_SUB_TEST;
    default:
        return -1;
    }
}

/* The value of name in a form-encoded body (the first, decoded, malloc'd), or NULL. */
static char *form_get(const struct gw_http_request *req, const char *name)
{
    size_t nlen = strlen(name);
    const char *p = req->body, *end = req->body ? req->body + req->body_len : NULL;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        char key[64];
        long klen = gw_percent_decode(p, (size_t)(kend - p), key, sizeof(key), 1);
        if (klen == (long)nlen && memcmp(key, name, nlen) == 0) {
            size_t vlen = eq ? (size_t)(stop - eq - 1) : 0;
            char *v = malloc(vlen + 1);
            long n = v ? gw_percent_decode(eq ? eq + 1 : stop, vlen, v, vlen + 1, 1) : -1;
            if (n < 0) {
                free(v);
                return NULL;
            }
            v[n] = '\0';
            return v;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* POST /websub: a W3C WebSub subscription request (form-encoded). Unknown parameters are
 * ignored, as the Recommendation asks; a topic that names no node is not refused here but
 * denied to the callback (hub.mode=denied), once the request was accepted. */
static int prepare_websub(const struct gw_http_request *req, struct gw_cmd *cmd,
                          struct gw_http_reply *reply)
{
    char ctype[128], err[400];
    if (req->cfg != NULL && !req->cfg->websub)
        return fail(reply, 404, "Not found", "the WebSub hub is switched off (--websub)");
    if (media_type(req->content_type, ctype, sizeof(ctype)) != 0 ||
        strcmp(ctype, "application/x-www-form-urlencoded") != 0)
        return fail(reply, 415, "Unsupported media type",
                    "body: application/x-www-form-urlencoded, as WebSub requests are");
    static const char *const names[] = {"hub.mode",          "hub.topic",
                                        "hub.callback",      "hub.secret",
                                        "hub.lease_seconds", "hub.signature_algorithm"};
    char *v[6];
    for (int i = 0; i < 6; i++)
        v[i] = form_get(req, names[i]);
    const char *mode = v[0], *topic = v[1], *callback = v[2], *secret = v[3], *lease = v[4],
               *alg = v[5];
    int rc = 0;
    long long lease_s = 0;
    char *end = NULL;
    if (lease != NULL)
        lease_s = strtoll(lease, &end, 10);
    if (mode != NULL && strcmp(mode, "publish") == 0) {
        /* The publisher's ping: the feeds fetched from hub.url (or hub.topic) are fetched now. */
        char *url = form_get(req, "hub.url");
        const char *u = url ? url : topic;
        if (u == NULL || u[0] == '\0' || strlen(u) > 2048)
            rc =
                fail(reply, 400, "Invalid request body", "hub.url: required with hub.mode=publish");
        else if ((cmd->args = json_pack("{s:s, s:s}", "mode", "publish", "url", u)) == NULL)
            rc = fail(reply, 500, "Internal error", "out of memory");
        free(url);
        for (int i = 0; i < 6; i++)
            free(v[i]);
        return rc;
    }
    if (mode == NULL || (strcmp(mode, "subscribe") != 0 && strcmp(mode, "unsubscribe") != 0))
        rc = fail(reply, 400, "Invalid request body",
                  "hub.mode: required, subscribe, unsubscribe or publish");
    else if (callback == NULL)
        rc = fail(reply, 400, "Invalid request body", "hub.callback: required, an http(s) URL");
    else if (!gw_valid_callback(callback, err, sizeof(err)))
        rc = fail(reply, 400, "Invalid request body", "hub.callback: %s", err);
    else if (topic == NULL || topic[0] == '\0' || strlen(topic) > 1024 ||
             !gw_valid_id(topic, strlen(topic)))
        rc = fail(reply, 400, "Invalid request body",
                  "hub.topic: required, a URL of at most 1024 characters");
    else if (secret != NULL && strlen(secret) >= 200)
        rc = fail(reply, 400, "Invalid request body", "hub.secret: shorter than 200 bytes");
    else if (lease != NULL &&
             (*lease == '\0' || *end != '\0' || lease_s < 1 || lease_s > 100LL * 365 * 86400))
        rc = fail(reply, 400, "Invalid request body",
                  "hub.lease_seconds: a positive number of seconds");
    else if (alg != NULL && !gw_websub_alg_known(alg))
        rc = fail(reply, 400, "Invalid request body",
                  "hub.signature_algorithm: sha1, sha256, sha384 or sha512");
    if (rc == 0) {
        json_t *args =
            json_pack("{s:s, s:s, s:s, s:I, s:s}", "mode", mode, "topic", topic, "callback",
                      callback, "lease_seconds", (json_int_t)lease_s, "alg", alg ? alg : "sha256");
        if (args != NULL && secret != NULL && secret[0] != '\0')
            json_object_set_new(args, "secret", json_string(secret));
        char *service = NULL, *node = NULL;
        if (args != NULL && gw_websub_topic(topic, req->cfg ? req->cfg->service : NULL, &service,
                                            &node, err, sizeof(err)) == 0) {
            json_object_set_new(args, "node", json_string(node));
            if (service != NULL)
                json_object_set_new(args, "service", json_string(service));
        } else if (args != NULL) {
            json_object_set_new(args, "denied", json_string(err));
        }
        free(service);
        free(node);
        cmd->args = args;
        if (args == NULL)
            rc = fail(reply, 500, "Internal error", "out of memory");
    }
    for (int i = 0; i < 6; i++) {
        if (v[i] != NULL && i == 3)
            memset(v[i], 0, strlen(v[i]));
        free(v[i]);
    }
    return rc;
}

/* {"url", "node", "service"?, "interval"?} for POST /v1/feeds */
static int prepare_feed_create(const struct gw_http_request *req, struct gw_cmd *cmd,
                               struct gw_http_reply *reply)
{
    json_t *obj;
    if (json_object_body(req, &obj, reply) != 0)
        return -1;
    int rc = 0;
    char err[300];
    static const char *const known[] = {"url", "node", "service", "interval", NULL};
    if (unknown_field(obj, known, reply) != 0) {
        rc = -1;
        goto out;
    }
    json_t *url = json_object_get(obj, "url"), *node = json_object_get(obj, "node");
    json_t *service = json_object_get(obj, "service"), *interval = json_object_get(obj, "interval");
    if (!json_is_string(url)) {
        rc = fail(reply, 400, "Invalid request body", "url: required, an http or https URL");
    } else if (!gw_valid_callback(json_string_value(url), err, sizeof(err))) {
        rc = fail(reply, 400, "Invalid request body", "url: %s", err);
    } else if (!json_is_string(node) ||
               !gw_valid_id(json_string_value(node), json_string_length(node))) {
        rc = fail(reply, 400, "Invalid request body",
                  "node: required, a string of 1 to 1024 bytes without control characters");
    } else if (service != NULL && !json_is_null(service) &&
               (!json_is_string(service) || !gw_valid_jid(json_string_value(service)))) {
        rc = fail(reply, 400, "Invalid request body", "service: not a valid JID");
    } else if (interval != NULL &&
               (!json_is_integer(interval) || json_integer_value(interval) < 1 ||
                json_integer_value(interval) > 86400)) {
        rc = fail(reply, 400, "Invalid request body",
                  "interval: seconds between fetches, an integer from 1 to 86400");
    } else {
        cmd->args = json_pack("{s:O, s:O, s:I}", "url", url, "node", node, "interval",
                              (json_int_t)(interval ? json_integer_value(interval) : 900));
        if (cmd->args && json_is_string(service))
            json_object_set(cmd->args, "service", service);
    }
out:
    json_decref(obj);
    return rc;
}

/* ?limit= (1..1000, default 50) and ?before= (an id from a previous page's `next`). */
static int prepare_page(const struct gw_http_request *req, struct gw_cmd *cmd,
                        struct gw_http_reply *reply)
{
    const char *names[] = {"limit", "before"};
    long long v[2] = {50, 0};
    for (int i = 0; i < 2; i++) {
        const char *t = query_get(req, names[i]);
        if (t == NULL)
            continue;
        char *end = NULL;
        v[i] = strtoll(t, &end, 10);
        if (*t == '\0' || *end != '\0' || v[i] < 1 || (i == 0 && v[i] > 1000))
            return fail(reply, 400, "Invalid parameter",
                        i == 0 ? "limit: an integer from 1 to 1000"
                               : "before: the `next` of a previous page");
    }
    cmd->args = json_pack("{s:I, s:I}", "limit", (json_int_t)v[0], "before", (json_int_t)v[1]);
    return cmd->args ? 0 : fail(reply, 500, "Internal error", "out of memory");
}

int gw_http_prepare(const struct gw_http_request *req, struct gw_cmd **out,
                    struct gw_http_reply *reply)
{
    enum gw_route route = req->match->route;
    *out = NULL;
    int op = route_op(route);
    struct gw_cmd *cmd = op < 0 ? NULL : gw_cmd_new((enum gw_op)op);
    if (cmd == NULL)
        return fail(reply, 500, "Internal error", "out of memory");
    int rc = common(req, cmd, reply);
    if (rc == 0 && route == GW_ROUTE_ITEMS_LIST)
        rc = prepare_items(req, cmd, reply);
    if (rc == 0 && route == GW_ROUTE_NODE_FEED) {
        /* The latest `max` items (XEP-0060 max_items: every service honours it), 20 unless
         * asked. */
        const char *m = query_get(req, "max");
        char *end = NULL;
        long v = m ? strtol(m, &end, 10) : 20;
        if (m != NULL && (*m == '\0' || *end != '\0' || v < 1 || v > 1000))
            rc = fail(reply, 400, "Invalid parameter", "max: an integer from 1 to 1000");
        cmd->max_items = (int)v;
        cmd->args = json_pack("{s:[]}", "ids");
    }
    if (rc == 0 && route == GW_ROUTE_ITEMS_LIST) {
        const char *mi = query_get(req, "max_items");
        if (mi != NULL) {
            char *end;
            long v = strtol(mi, &end, 10);
            if (*mi == '\0' || *end != '\0' || v < 1 || v > 100000)
                rc =
                    fail(reply, 400, "Invalid parameter", "max_items: an integer from 1 to 100000");
            else
                cmd->max_items = (int)v;
        }
    } else if (rc == 0 && route == GW_ROUTE_ITEM_PUBLISH) {
        rc = prepare_publish(req, cmd, reply);
    } else if (rc == 0 && route == GW_ROUTE_NODE_CREATE) {
        rc = prepare_create(req, cmd, reply);
    } else if (rc == 0 && route == GW_ROUTE_NODE_CONFIG_SET) {
        rc = prepare_config_set(req, cmd, reply);
    } else if (rc == 0 && route == GW_ROUTE_NODE_SUBS_SET) {
        rc = prepare_owner_set(req, cmd, reply, "subscriptions");
    } else if (rc == 0 && route == GW_ROUTE_NODE_AFFS_SET) {
        rc = prepare_owner_set(req, cmd, reply, "affiliations");
    } else if (rc == 0 && route == GW_ROUTE_HOOK) {
        rc = prepare_hook(req, cmd, reply);
    } else if (rc == 0 && route == GW_ROUTE_NODE_DELETE) {
        const char *redirect = query_get(req, "redirect");
        if (redirect != NULL && (redirect[0] == '\0' || strlen(redirect) > 2048 ||
                                 !gw_valid_id(redirect, strlen(redirect))))
            rc =
                fail(reply, 400, "Invalid parameter", "redirect: a URI of at most 2048 characters");
        else if (redirect != NULL)
            cmd->args = json_pack("{s:s}", "redirect", redirect);
    } else if (rc == 0 && (route == GW_ROUTE_NODES_LIST || route == GW_ROUTE_SUBS_LIST)) {
        /* ?node=: the parent collection, or the node whose subscriptions are listed */
        const char *node = query_get(req, "node");
        if (node != NULL && !gw_valid_id(node, strlen(node)))
            rc = fail(reply, 400, "Invalid parameter", "node: not a valid node id");
        else if (node != NULL)
            cmd->node = strdup(node);
    } else if (rc == 0 && route == GW_ROUTE_SUB_CREATE) {
        rc = prepare_sub_create(req, cmd, reply);
    } else if (rc == 0 && route == GW_ROUTE_ATTEMPTS_LIST) {
        rc = prepare_page(req, cmd, reply);
    } else if (rc == 0 && route == GW_ROUTE_WEBSUB) {
        rc = prepare_websub(req, cmd, reply);
    } else if (rc == 0 && route == GW_ROUTE_FEED_CREATE) {
        rc = prepare_feed_create(req, cmd, reply);
    }
    if (rc == 0 && req->match->sub[0] != '\0') {
        cmd->sub_id = strdup(req->match->sub);
        if (route == GW_ROUTE_DEAD_RETRY) {
            cmd->letter = cmd->item_id; /* the {id} of this route is the dead letter's */
            cmd->item_id = NULL;
        }
    }
    if (rc != 0) {
        gw_cmd_free(cmd);
        return -1;
    }
    *out = cmd;
    return 0;
}
